//! The keys of a stack, kept in its data folder:
//!
//! ```text
//! keys/auth.pem            Ed25519 private key that signs tokens (`nol token`)
//! keys/<province>/…        one province's keys (see nol_runtime::keys), with every peer's
//!                          public sealing key under peers/
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nol_auth::{Role, TokenIssuer};
use nol_pii::SealKeyPair;
use nol_region::RegionCode;
use nol_runtime::ProvinceKeys;

pub struct StackKeys {
    dir: PathBuf,
    issuer: TokenIssuer,
}

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
        let missing: Vec<&RegionCode> =
            provinces.iter().filter(|province| !dir.join(province.to_string()).join("seal.key").exists()).collect();
        if !missing.is_empty() {
            let public_pem = std::fs::read_to_string(dir.join("auth.pub.pem"))?;
            let mut pairs = Vec::new();
            for province in provinces {
                let existing = dir.join(province.to_string()).join("seal.key");
                let pair = if existing.exists() {
                    SealKeyPair::from_base64(&std::fs::read_to_string(&existing)?)
                        .map_err(|error| anyhow::anyhow!("{}: {error}", existing.display()))?
                } else {
                    SealKeyPair::generate()
                };
                pairs.push((*province, pair));
            }
            let peers: Vec<_> = pairs.iter().map(|(code, pair)| (*code, pair.public_key())).collect();
            for (province, pair) in &pairs {
                let province_dir = dir.join(province.to_string());
                if missing.contains(&province) {
                    ProvinceKeys::write_new(&province_dir, &public_pem, pair, &peers)?;
                } else {
                    // An existing province learns the new peers' public keys.
                    for (peer, key) in &peers {
                        std::fs::write(province_dir.join("peers").join(format!("{peer}.seal.pub")), key.to_base64())?;
                    }
                }
            }
        }
        StackKeys::load(dir)
    }

    /// Loads existing keys (for `nol token`).
    pub fn load(dir: &Path) -> anyhow::Result<StackKeys> {
        let pem = std::fs::read(dir.join("auth.pem"))
            .with_context(|| format!("no signing key under {}; start the stack first (nol up)", dir.display()))?;
        let issuer = TokenIssuer::from_pem(&pem).map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(StackKeys { dir: dir.to_path_buf(), issuer })
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

    /// The folder to pass as `NOL_KEYS_DIR` to `province`'s services.
    pub fn province_dir(&self, province: &RegionCode) -> PathBuf {
        self.dir.join(province.province().to_string())
    }

    /// A token for a caller of `region` in `role`, valid for `lifetime`.
    pub fn token(&self, subject: &str, region: RegionCode, role: Role, lifetime: Duration) -> anyhow::Result<String> {
        self.issuer.issue(subject, region, role, lifetime).map_err(|error| anyhow::anyhow!("{error}"))
    }
}
