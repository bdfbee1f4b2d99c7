//! TLS on every hop. Each service process holds one identity — its certificate and key, issued by
//! the deployment's CA — and the CA's certificate, named by three settings:
//!
//! ```text
//! NOL_TLS_CA    the deployment's CA certificate (PEM): what peers' certificates must chain to
//! NOL_TLS_CERT  this service's certificate (PEM)
//! NOL_TLS_KEY   this service's private key (PEM, readable by the service alone)
//! ```
//!
//! The same identity serves gRPC (and the dashboard over HTTPS), calls the province's other
//! services (mutual TLS: the callee checks the caller's certificate against the CA), and connects
//! to the province's NATS server, which requires a client certificate. There is no plaintext
//! mode: a service without the three settings does not start, a client refuses an `http://` URL,
//! and a TLS server answers a plaintext caller with a failed handshake.
//!
//! Bureau systems calling the API verify the server with the CA and either present a client
//! certificate of their own or call with a token only (the server asks for a certificate but
//! does not insist: every business call is authenticated by its token).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// Makes ring the process's rustls crypto provider (idempotent). Every server and client here
/// builds on the process default; two providers compiled in would otherwise leave it unset.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The name a province's service is known by: the subject and first DNS name of its certificate,
/// and its NATS user (`transfer.340000.nol`).
pub fn service_name(service: &str, province: &str) -> String {
    format!("{service}.{province}.nol")
}

/// Whether a caller's certificate chain (as the TLS handshake checked it against the CA) names
/// `name` among its leaf certificate's DNS names. No certificate, or one that does not parse,
/// names nothing.
pub fn peer_is<C: AsRef<[u8]>>(chain: &[C], name: &str) -> bool {
    let Some(leaf) = chain.first() else { return false };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else { return false };
    let Ok(Some(names)) = cert.subject_alternative_name() else { return false };
    names
        .value
        .general_names
        .iter()
        .any(|general| matches!(general, x509_parser::extensions::GeneralName::DNSName(dns) if *dns == name))
}

/// Where one identity's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads `NOL_TLS_CA`, `NOL_TLS_CERT` and `NOL_TLS_KEY` through `lookup`; all three are
    /// required, since nothing here speaks plaintext.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<TlsFiles> {
        let get = |name: &str| {
            lookup(name).filter(|value| !value.trim().is_empty()).map(PathBuf::from).with_context(|| {
                format!(
                    "{name} is required: every connection is TLS (NOL_TLS_CA, NOL_TLS_CERT, NOL_TLS_KEY; \
                     `nol up` makes a CA and a certificate per service)"
                )
            })
        };
        Ok(TlsFiles { ca: get("NOL_TLS_CA")?, cert: get("NOL_TLS_CERT")?, key: get("NOL_TLS_KEY")? })
    }

    /// The files as environment settings (for starting a process with this identity).
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("NOL_TLS_CA", self.ca.display().to_string()),
            ("NOL_TLS_CERT", self.cert.display().to_string()),
            ("NOL_TLS_KEY", self.key.display().to_string()),
        ]
    }

    /// Reads and checks the three files: each must hold what its name says.
    pub fn load(&self) -> anyhow::Result<Tls> {
        let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        let tls = Tls {
            files: self.clone(),
            ca_pem: read(&self.ca)?,
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
        };
        anyhow::ensure!(!certificates(&tls.ca_pem)?.is_empty(), "{} holds no certificate", self.ca.display());
        anyhow::ensure!(!certificates(&tls.cert_pem)?.is_empty(), "{} holds no certificate", self.cert.display());
        private_key(&tls.key_pem).with_context(|| format!("{} holds no private key", self.key.display()))?;
        Ok(tls)
    }
}

/// One loaded identity and the CA.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Tls {
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// A gRPC server's TLS: this identity, and callers' certificates checked against the CA when
    /// they present one.
    pub fn grpc_server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(true)
    }

    /// The client side of this identity: servers checked against the CA, this certificate shown.
    pub fn client(&self) -> ClientTls {
        ClientTls { ca_pem: self.ca_pem.clone(), identity: Some((self.cert_pem.clone(), self.key_pem.clone())) }
    }

    /// An HTTPS server's configuration (the dashboard): HTTP/2 and HTTP/1.1, no client
    /// certificate asked of browsers.
    pub fn https_server(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        install_crypto_provider();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certificates(&self.cert_pem)?, private_key(&self.key_pem)?)
            .context("the dashboard's certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// What a client needs: the CA to check servers against, and a certificate of its own where the
/// server asks for one (NATS does; the gRPC services accept a token alone).
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("identity", &self.identity.is_some()).finish_non_exhaustive()
    }
}

impl ClientTls {
    /// A client that checks servers against the CA in `ca` and shows no certificate.
    pub fn from_ca_file(ca: &Path) -> anyhow::Result<ClientTls> {
        let ca_pem = std::fs::read(ca).with_context(|| format!("reading the CA certificate {}", ca.display()))?;
        anyhow::ensure!(!certificates(&ca_pem)?.is_empty(), "{} holds no certificate", ca.display());
        Ok(ClientTls { ca_pem, identity: None })
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// A gRPC endpoint at `url`, which must be `https://`: a plaintext URL is refused, never
    /// quietly used.
    pub fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(url.to_owned()).with_context(|| format!("not a URL: {url:?}"))?;
        anyhow::ensure!(
            endpoint.uri().scheme_str() == Some("https"),
            "{url} is not an https:// URL: every call is TLS, plaintext is refused"
        );
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        Ok(endpoint.tls_config(config)?)
    }

    /// A lazy channel to `url` (connected on first use).
    pub fn channel(&self, url: &str) -> anyhow::Result<Channel> {
        Ok(self.endpoint(url)?.connect_lazy())
    }

    /// A rustls client configuration checking servers against the CA (HTTP clients, e.g. of the
    /// dashboard's API in tests).
    pub fn rustls_client(&self) -> anyhow::Result<rustls::ClientConfig> {
        install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates(&self.ca_pem)? {
            roots.add(certificate).context("the CA certificate is not usable as a trust anchor")?;
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        Ok(match &self.identity {
            Some((cert, key)) => builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?,
            None => builder.with_no_client_auth(),
        })
    }
}

fn certificates(pem: &[u8]) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    rustls_pemfile::certs(&mut &pem[..]).collect::<Result<Vec<_>, _>>().context("not PEM certificates")
}

fn private_key(pem: &[u8]) -> anyhow::Result<rustls::pki_types::PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut &pem[..]).context("not a PEM private key")?.context("no private key in the PEM")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_identity(dir: &Path) -> TlsFiles {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let files = TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("svc.pem"), key: dir.join("svc.key") };
        std::fs::write(&files.ca, ca.pem()).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn a_peer_is_known_by_its_certificates_dns_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let name = service_name("transfer", "340000");
        assert_eq!(name, "transfer.340000.nol");
        let params = rcgen::CertificateParams::new(vec![name.clone(), "localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let chain = [cert.der().to_vec()];
        assert!(peer_is(&chain, &name));
        assert!(!peer_is(&chain, &service_name("transfer", "320000")), "another province's transfer");
        assert!(!peer_is(&chain, &service_name("cases", "340000")), "another service");
        assert!(!peer_is::<Vec<u8>>(&[], &name), "no certificate");
        assert!(!peer_is(&[b"not a certificate".to_vec()], &name));
    }

    #[test]
    fn every_setting_is_required() {
        let error = TlsFiles::from_lookup(|name| (name != "NOL_TLS_KEY").then(|| "/x".to_owned())).unwrap_err();
        assert!(error.to_string().contains("NOL_TLS_KEY is required"), "{error}");
        let files = TlsFiles::from_lookup(|name| Some(format!("/{name}"))).unwrap();
        assert_eq!(files.cert, PathBuf::from("/NOL_TLS_CERT"));
    }

    #[test]
    fn files_hold_what_their_names_say() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_identity(dir.path());
        let tls = files.load().unwrap();
        tls.https_server().unwrap();
        tls.client().rustls_client().unwrap();
        let swapped = TlsFiles { cert: files.key.clone(), ..files.clone() };
        assert!(swapped.load().is_err(), "a key is not a certificate");
        let swapped = TlsFiles { key: files.cert.clone(), ..files };
        assert!(swapped.load().is_err(), "a certificate is not a key");
    }

    #[tokio::test]
    async fn plaintext_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let client = write_identity(dir.path()).load().unwrap().client();
        let error = client.endpoint("http://127.0.0.1:50051").unwrap_err();
        assert!(error.to_string().contains("plaintext is refused"), "{error}");
        client.endpoint("https://127.0.0.1:50051").unwrap();
        let anonymous = ClientTls::from_ca_file(&dir.path().join("ca.pem")).unwrap();
        anonymous.channel("https://localhost:1").unwrap();
    }
}
