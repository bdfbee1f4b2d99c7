//! The local stack's certificate authority: one CA per deployment (its data folder), and a
//! certificate per service, per NATS server and for the operator's tools, made with `rcgen`.
//!
//! ```text
//! keys/tls/ca.pem, ca.key            the deployment's CA (the key never leaves this folder)
//! keys/tls/exchange.{pem,key}        the national exchange's hub
//! keys/tls/tools.{pem,key}           the operator's tools and the tests (NATS asks every client
//!                                    for a certificate)
//! keys/tls/<province>/<name>.{pem,key}  each service of the province and its NATS server
//! ```
//!
//! Production deployments bring their own CA (`nol keys` writes the same layout for the compose
//! file); every identity is only a certificate and key in PEM, named by `NOL_TLS_*`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Datelike, Utc};
use nol_tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A leaf certificate is made again when it has fewer days left than this.
const RENEW_BEFORE_DAYS: i64 = 30;
/// How long a leaf certificate lives (a little over a year, as public CAs allow).
const LEAF_DAYS: i64 = 397;

/// The deployment's CA, able to issue certificates.
pub struct LocalCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl LocalCa {
    /// Loads the CA under `dir` (`ca.pem`, `ca.key`), making one first if there is none.
    pub fn ensure(dir: &Path) -> anyhow::Result<LocalCa> {
        std::fs::create_dir_all(dir)?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        if !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut name = DistinguishedName::new();
            name.push(DnType::OrganizationName, "Not One Less (一个都不能少)");
            name.push(DnType::CommonName, "Not One Less deployment CA");
            params.distinguished_name = name;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            (params.not_before, params.not_after) = validity(3650)?;
            let cert = params.self_signed(&key)?;
            write_secret(&key_path, &key.serialize_pem())?;
            std::fs::write(&cert_path, cert.pem())?;
        }
        let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?).context("reading the CA's key")?;
        let issuer = Issuer::from_ca_cert_pem(&std::fs::read_to_string(&cert_path)?, key)
            .context("reading the CA's certificate")?;
        Ok(LocalCa { dir: dir.to_path_buf(), issuer })
    }

    /// The CA certificate, which every client and server checks its peers against.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The identity `name` in `dir` (`<name>.pem`, `<name>.key`), issued now unless a current one
    /// from this CA is there: a certificate for `dns_names` (the first is also its subject; NATS
    /// maps a client to its user by it), localhost and 127.0.0.1, usable as server and as client
    /// (mutual TLS, leaf links).
    pub fn identity(&self, dir: &Path, name: &str, dns_names: &[String]) -> anyhow::Result<TlsFiles> {
        let dns_name = dns_names.first().context("a certificate needs a name")?;
        std::fs::create_dir_all(dir)?;
        let files = TlsFiles {
            ca: self.ca_path(),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        if self.is_current(&files)? {
            return Ok(files);
        }
        let key = KeyPair::generate()?;
        let names = dns_names.iter().cloned().chain(["localhost".to_owned(), "127.0.0.1".to_owned()]);
        let mut params = CertificateParams::new(names.collect::<Vec<_>>())?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, dns_name.as_str());
        params.distinguished_name = subject;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        (params.not_before, params.not_after) = validity(LEAF_DAYS)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        write_secret(&files.key, &key.serialize_pem())?;
        std::fs::write(&files.cert, cert.pem())?;
        Ok(files)
    }

    /// Whether `files` hold a certificate of this CA with more than `RENEW_BEFORE_DAYS` left.
    fn is_current(&self, files: &TlsFiles) -> anyhow::Result<bool> {
        if !files.cert.exists() || !files.key.exists() {
            return Ok(false);
        }
        let pem = std::fs::read(&files.cert)?;
        let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else { return Ok(false) };
        let Ok(cert) = pem.parse_x509() else { return Ok(false) };
        let ca = std::fs::read(self.ca_path())?;
        let ca_subject = x509_parser::pem::parse_x509_pem(&ca)
            .ok()
            .and_then(|(_, pem)| pem.parse_x509().ok().map(|ca| ca.subject().to_string()));
        let renew_at = (Utc::now() + chrono::Duration::days(RENEW_BEFORE_DAYS)).timestamp();
        let issued_here = files.load().is_ok()
            && ca_subject.as_deref() == Some(cert.issuer().to_string().as_str())
            && std::fs::metadata(&files.cert)?.modified()? >= std::fs::metadata(self.ca_path())?.modified()?;
        Ok(issued_here && cert.validity().not_after.timestamp() > renew_at)
    }
}

/// The SHA-256 of a certificate's public key (its SubjectPublicKeyInfo), in base64: what
/// Chromium's `--ignore-certificate-errors-spki-list` pins, so a browser test trusts exactly the
/// dashboard's key instead of every certificate.
pub fn spki_sha256(cert: &Path) -> anyhow::Result<String> {
    use base64::Engine;
    use sha2::Digest;
    let pem = std::fs::read(cert)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|error| anyhow::anyhow!("{error}"))?;
    let cert = pem.parse_x509().map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(cert.public_key().raw)))
}

/// From yesterday (clocks drift) for `days`.
fn validity(days: i64) -> anyhow::Result<(time::OffsetDateTime, time::OffsetDateTime)> {
    let now = Utc::now();
    Ok((time_of(now - chrono::Duration::days(1))?, time_of(now + chrono::Duration::days(days))?))
}

fn time_of(at: chrono::DateTime<Utc>) -> anyhow::Result<time::OffsetDateTime> {
    Ok(rcgen::date_time_ymd(at.year(), u8::try_from(at.month())?, u8::try_from(at.day())?))
}

/// Writes a private key readable by its owner alone.
fn write_secret(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, pem)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::ensure(&dir.path().join("tls")).unwrap();
        let files = ca.identity(&dir.path().join("320000"), "cases", &["cases.320000.nol".to_owned()]).unwrap();
        let first = std::fs::read(&files.cert).unwrap();
        files.load().unwrap();
        let again = LocalCa::ensure(&dir.path().join("tls")).unwrap();
        let files = again.identity(&dir.path().join("320000"), "cases", &["cases.320000.nol".to_owned()]).unwrap();
        assert_eq!(std::fs::read(&files.cert).unwrap(), first, "a current certificate is kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "a private key is its owner's alone");
    }
}
