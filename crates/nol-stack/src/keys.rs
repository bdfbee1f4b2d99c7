//! The keys of a stack, kept in its data folder:
//!
//! ```text
//! keys/auth.pem            Ed25519 private key that signs tokens (`nol token`)
//! keys/<province>/<service>/…  one service's keys, only what it uses (see nol_runtime::keys):
//!                          the registry's and the case service's own data keyrings and index
//!                          keys, the event key the two share, the sealing key (cases,
//!                          transfer), the exchange key and every peer's public keys (transfer)
//! keys/tls/…               the deployment's CA and its certificates (`crate::tls`)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nol_auth::{Role, TokenIssuer};
use nol_pii::{ExchangeSigningKey, SealKeyPair};
use nol_region::RegionCode;
use nol_runtime::ProvinceKeys;
use nol_runtime::keys::{DATA_KEYS, EVENT_KEYS, PeerKeys, write_peer};
use nol_tls::{ClientTls, TlsFiles};

use crate::tls::LocalCa;

pub struct StackKeys {
    dir: PathBuf,
    issuer: TokenIssuer,
    ca: LocalCa,
}

/// The services of a province, each with its own TLS identity and key folder.
pub use nol_runtime::keys::SERVICES;

impl StackKeys {
    /// Loads the keys under `dir`, creating whatever is missing for `provinces`.
    pub fn ensure(dir: &Path, provinces: &[RegionCode]) -> anyhow::Result<StackKeys> {
        std::fs::create_dir_all(dir)?;
        let signing = dir.join("auth.pem");
        if !signing.exists() {
            let (private_pem, public_pem) =
                nol_auth::generate_signing_key_pem().map_err(|error| anyhow::anyhow!("{error}"))?;
            std::fs::write(&signing, private_pem)?;
            std::fs::write(dir.join("auth.pub.pem"), public_pem)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&signing, std::fs::Permissions::from_mode(0o600))?;
        }
        let public_pem = std::fs::read_to_string(dir.join("auth.pub.pem"))?;
        // A province new to this folder gets its own keys, a folder per service; one kept from
        // before the keys were split per service (`data.key` beside `seal.key`) is split, so its
        // rows, indexes and events stay readable.
        for province in provinces {
            let province_dir = dir.join(province.to_string());
            if province_dir.join("data.key").exists() && !province_dir.join("transfer").exists() {
                if !province_dir.join("sign.key").exists() {
                    let path = province_dir.join("sign.key");
                    std::fs::write(&path, ExchangeSigningKey::generate().secret_base64())?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                nol_runtime::keys::split(&province_dir)?;
            } else if !province_dir.join("transfer").join("seal.key").exists() {
                ProvinceKeys::write_new(
                    &province_dir,
                    &public_pem,
                    &SealKeyPair::generate(),
                    &ExchangeSigningKey::generate(),
                    &[],
                )?;
            }
        }
        // Every service verifies tokens (a split folder of before may lack the public key).
        for province in provinces {
            for service in SERVICES {
                let path = dir.join(province.to_string()).join(service).join("auth.pub.pem");
                if !path.exists() {
                    std::fs::write(&path, &public_pem)?;
                }
            }
        }
        // Every province of the folder is every other's peer: a province added later is
        // learned by the running ones from their peers/ folder, without a restart.
        let all = Self::provinces_in(dir)?;
        let mut public = Vec::new();
        for province in &all {
            let transfer_dir = dir.join(province.to_string()).join("transfer");
            let read = |name: &str| std::fs::read_to_string(transfer_dir.join(name));
            let seal = SealKeyPair::from_base64(&read("seal.key")?).map_err(|error| anyhow::anyhow!("{error}"))?;
            let sign =
                ExchangeSigningKey::from_base64(&read("sign.key")?).map_err(|error| anyhow::anyhow!("{error}"))?;
            public.push((*province, PeerKeys { seal: seal.public_key(), sign: sign.verifying_key() }));
        }
        for province in &all {
            let transfer_dir = dir.join(province.to_string()).join("transfer");
            for (peer, keys) in &public {
                let current = std::fs::read_to_string(transfer_dir.join("peers").join(format!("{peer}.sign.pub")));
                if current.ok().as_deref() != Some(keys.sign.to_base64().as_str()) {
                    write_peer(&transfer_dir, peer, keys)?;
                }
            }
        }
        let keys = StackKeys::load(dir)?;
        // Every identity of the deployment, made now so that `nol keys` leaves a complete folder.
        for province in &all {
            for service in SERVICES {
                keys.service_tls(province, service)?;
            }
            keys.nats_tls(province)?;
        }
        keys.exchange_tls()?;
        keys.tools_tls()?;
        Ok(keys)
    }

    /// The provinces that have keys under `dir`.
    fn provinces_in(dir: &Path) -> anyhow::Result<Vec<RegionCode>> {
        let mut provinces = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else { continue };
            if let Ok(code) = RegionCode::parse(name)
                && code.province() == code
                && path.join("transfer").join("seal.key").exists()
            {
                provinces.push(code);
            }
        }
        provinces.sort();
        Ok(provinces)
    }

    /// Loads existing keys (for `nol token`).
    pub fn load(dir: &Path) -> anyhow::Result<StackKeys> {
        let pem = std::fs::read(dir.join("auth.pem"))
            .with_context(|| format!("no signing key under {}; start the stack first (nol up)", dir.display()))?;
        let issuer = TokenIssuer::from_pem(&pem).map_err(|error| anyhow::anyhow!("{error}"))?;
        let ca = LocalCa::ensure(&dir.join("tls"))?;
        Ok(StackKeys { dir: dir.to_path_buf(), issuer, ca })
    }

    /// The deployment's CA certificate (what `grpcurl -cacert` and a browser are given).
    pub fn ca_path(&self) -> PathBuf {
        self.ca.ca_path()
    }

    /// `service`'s TLS identity in `province` (`<service>.<province>.nol`), under
    /// `tls/<province>/` — outside the province's key folder, so that a deployment can give each
    /// service its own key and no other's.
    pub fn service_tls(&self, province: &RegionCode, service: &str) -> anyhow::Result<TlsFiles> {
        let province = province.province();
        let dir = self.dir.join("tls").join(province.to_string());
        self.ca.identity(&dir, service, &[nol_tls::service_name(service, province.as_str())])
    }

    /// The TLS identity of `province`'s NATS server (also its side of the link to the hub).
    pub fn nats_tls(&self, province: &RegionCode) -> anyhow::Result<TlsFiles> {
        let province = province.province();
        let dir = self.dir.join("tls").join(province.to_string());
        self.ca.identity(&dir, "nats", &[format!("nats.{province}.nol")])
    }

    /// The national exchange's hub (each node of its cluster: `exchange-N.nol`).
    pub fn exchange_tls(&self) -> anyhow::Result<TlsFiles> {
        let names = ["exchange.nol", "exchange-1.nol", "exchange-2.nol", "exchange-3.nol"].map(String::from);
        self.ca.identity(&self.dir.join("tls"), "exchange", &names)
    }

    /// The operator's tools and the tests: a client of gRPC and of NATS.
    pub fn tools_tls(&self) -> anyhow::Result<TlsFiles> {
        self.ca.identity(&self.dir.join("tls"), "tools", &["tools.nol".to_owned()])
    }

    /// A TLS client with the tools' identity.
    pub fn client_tls(&self) -> anyhow::Result<ClientTls> {
        Ok(self.tools_tls()?.load()?.client())
    }

    /// The password `province`'s NATS server uses on the hub's leaf-node port (made on first use).
    pub fn link_password(&self, province: &RegionCode) -> anyhow::Result<String> {
        let path = self.dir.join(format!("link-{}.password", province.province()));
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().to_owned());
        }
        use rand::Rng;
        let password: String =
            rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect();
        std::fs::write(&path, &password)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(password)
    }

    /// Revokes the token with id `token_id` in every province of the folder (`revoked-tokens`);
    /// services refuse it once they read their keys again (SIGHUP, or within
    /// `NOL_PEERS_RELOAD_SECS`).
    pub fn revoke(&self, token_id: &str) -> anyhow::Result<Vec<RegionCode>> {
        anyhow::ensure!(
            !token_id.is_empty() && token_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "not a token id: {token_id:?}"
        );
        let provinces = Self::provinces_in(&self.dir)?;
        for province in &provinces {
            for service in SERVICES {
                use std::io::Write;
                let path = self.service_dir(province, service).join("revoked-tokens");
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                writeln!(file, "{token_id}")?;
            }
        }
        Ok(provinces)
    }

    /// The provinces of the folder.
    pub fn provinces(&self) -> anyhow::Result<Vec<RegionCode>> {
        Self::provinces_in(&self.dir)
    }

    /// `province`'s folder, holding a folder per service.
    pub fn province_dir(&self, province: &RegionCode) -> PathBuf {
        self.dir.join(province.province().to_string())
    }

    /// The folder to pass as `NOL_KEYS_DIR` to `province`'s `service`.
    pub fn service_dir(&self, province: &RegionCode, service: &str) -> PathBuf {
        self.province_dir(province).join(service)
    }

    /// Adds a new current key to `province`'s keyring `keys` (`data` or `event`) of `service`
    /// (`data`: the registry or the case service, each its own; `event`: the two share it, so
    /// both are written, the case service, which reads it, first). Services use it once they
    /// read their keys again (SIGHUP, or within `NOL_PEERS_RELOAD_SECS`), and re-encrypt their
    /// rows under it in the background. Returns the new key's id.
    pub fn rotate(&self, province: &RegionCode, service: &str, keys: &str) -> anyhow::Result<u32> {
        let dirs = match keys {
            DATA_KEYS => {
                anyhow::ensure!(
                    nol_runtime::keys::needs(service).contains(&DATA_KEYS),
                    "{service} holds no data keys (registry, cases do)"
                );
                vec![self.service_dir(province, service)]
            }
            EVENT_KEYS => vec![self.service_dir(province, "cases"), self.service_dir(province, "registry")],
            other => anyhow::bail!("no keyring {other:?}: data or event"),
        };
        nol_runtime::keys::rotate(&dirs, keys)
    }

    /// Removes key `id` of `province`'s `service`'s keyring `keys` (for `event`, from both
    /// services): once its re-encryption logs that no row is under it (for `event`, once no
    /// event older than the rotation is to be replayed).
    pub fn retire(&self, province: &RegionCode, service: &str, keys: &str, id: u32) -> anyhow::Result<()> {
        match keys {
            EVENT_KEYS => {
                for service in ["registry", "cases"] {
                    nol_runtime::keys::retire(&self.service_dir(province, service), keys, id)?;
                }
                Ok(())
            }
            _ => nol_runtime::keys::retire(&self.service_dir(province, service), keys, id),
        }
    }

    /// A token for a caller of `region` in `role`, valid for `lifetime`.
    pub fn token(&self, subject: &str, region: RegionCode, role: Role, lifetime: Duration) -> anyhow::Result<String> {
        self.issuer.issue(subject, region, role, lifetime).map_err(|error| anyhow::anyhow!("{error}"))
    }

    /// A school's token: role school in `region`, naming `school_code`.
    pub fn school_token(
        &self,
        subject: &str,
        region: RegionCode,
        school_code: &str,
        lifetime: Duration,
    ) -> anyhow::Result<String> {
        self.issuer.issue_for_school(subject, region, school_code, lifetime).map_err(|error| anyhow::anyhow!("{error}"))
    }
}
