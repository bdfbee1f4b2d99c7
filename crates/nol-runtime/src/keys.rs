//! A province deployment's keys, read from `NOL_KEYS_DIR`:
//!
//! ```text
//! auth.pub.pem           Ed25519 public key that verifies callers' tokens
//! data.key               base64, 32 bytes: encrypts personal data at rest, keys the blind index
//! seal.key               base64 X25519 secret: opens dossiers other provinces seal to us
//! peers/<code>.seal.pub  base64 X25519 public key of another province
//! ```

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use nol_auth::TokenVerifier;
use nol_pii::{DataKey, SealKeyPair, SealPublicKey};
use nol_region::RegionCode;

/// Everything secret or trusted that one province's services use.
#[derive(Clone, Debug)]
pub struct ProvinceKeys {
    pub data: DataKey,
    pub seal: SealKeyPair,
    pub peers: HashMap<RegionCode, SealPublicKey>,
    pub verifier: TokenVerifierHandle,
}

/// The token verifier, wrapped so `ProvinceKeys` can derive `Debug`.
#[derive(Clone)]
pub struct TokenVerifierHandle(pub TokenVerifier);

impl std::fmt::Debug for TokenVerifierHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(..)")
    }
}

impl ProvinceKeys {
    pub fn load(dir: &Path) -> anyhow::Result<ProvinceKeys> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let verifier = TokenVerifier::from_pem(read("auth.pub.pem")?.as_bytes())
            .map_err(|error| anyhow::anyhow!("auth.pub.pem: {error}"))?;
        let data = DataKey::from_base64(&read("data.key")?).map_err(|error| anyhow::anyhow!("data.key: {error}"))?;
        let seal =
            SealKeyPair::from_base64(&read("seal.key")?).map_err(|error| anyhow::anyhow!("seal.key: {error}"))?;
        let mut peers = HashMap::new();
        let peers_dir = dir.join("peers");
        if peers_dir.is_dir() {
            for entry in std::fs::read_dir(&peers_dir)? {
                let path = entry?.path();
                let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                    continue;
                };
                let Some(code) = name.strip_suffix(".seal.pub") else {
                    continue;
                };
                let region = RegionCode::parse(code).with_context(|| format!("{}", path.display()))?;
                let key = SealPublicKey::from_base64(&std::fs::read_to_string(&path)?)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                peers.insert(region.province(), key);
            }
        }
        Ok(ProvinceKeys { data, seal, peers, verifier: TokenVerifierHandle(verifier) })
    }

    /// The sealing key of `province` (our own included).
    pub fn seal_key_of(&self, province: &RegionCode) -> Option<SealPublicKey> {
        self.peers.get(&province.province()).cloned()
    }

    /// Writes a fresh key set for one province: data and sealing keys, the shared token
    /// verification key, and the peers' public sealing keys. Used by the local stack and tests.
    pub fn write_new(
        dir: &Path,
        auth_public_pem: &str,
        own: &SealKeyPair,
        peers: &[(RegionCode, SealPublicKey)],
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir.join("peers"))?;
        std::fs::write(dir.join("auth.pub.pem"), auth_public_pem)?;
        std::fs::write(dir.join("data.key"), DataKey::generate_base64())?;
        std::fs::write(dir.join("seal.key"), own.secret_base64())?;
        for (province, key) in peers {
            std::fs::write(dir.join("peers").join(format!("{province}.seal.pub")), key.to_base64())?;
        }
        restrict_permissions(dir)?;
        Ok(())
    }
}

fn restrict_permissions(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in ["data.key", "seal.key"] {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
