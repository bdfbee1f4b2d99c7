//! A province deployment's keys, read from `NOL_KEYS_DIR`:
//!
//! ```text
//! auth.pub.pem           Ed25519 public key that verifies callers' tokens; during a rotation of
//!                        the identity provider's key also auth.<name>.pub.pem (e.g. auth.next.pub.pem)
//! revoked-tokens         ids (jti) of revoked tokens, one per line ('#' starts a comment)
//! data.key               base64, 32 bytes: encrypts personal data at rest, keys the blind index
//! seal.key               base64 X25519 secret: opens dossiers other provinces seal to us
//! sign.key               base64 Ed25519 secret: signs what this province sends over the exchange
//! peers/<code>.seal.pub  base64 X25519 public key of a province (our own included)
//! peers/<code>.sign.pub  base64 Ed25519 public key of a province: verifies what it sends
//! ```
//!
//! A province is a peer when both its keys are under `peers/`. The folder, the token keys and the
//! revoked tokens are read again on SIGHUP and every `NOL_PEERS_RELOAD_SECS`, so a province joins
//! (or leaves), a token key rotates and a token is revoked by configuration alone: no restarts.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use nol_auth::TokenVerifier;
use nol_pii::{DataKey, ExchangeSigningKey, ExchangeVerifyingKey, SealKeyPair, SealPublicKey};
use nol_region::RegionCode;

/// Everything secret or trusted that one province's services use.
#[derive(Clone, Debug)]
pub struct ProvinceKeys {
    /// Where they were read from (`NOL_KEYS_DIR`).
    pub dir: PathBuf,
    pub data: DataKey,
    pub seal: SealKeyPair,
    /// Signs this province's cross-province messages.
    pub sign: ExchangeSigningKey,
    /// The provinces this one exchanges with, and their public keys; reloadable.
    pub peers: Peers,
    pub verifier: TokenVerifierHandle,
}

/// The token verifier, wrapped so `ProvinceKeys` can derive `Debug`.
#[derive(Clone)]
pub struct TokenVerifierHandle(pub TokenVerifier);

impl TokenVerifierHandle {
    /// Reads the trusted token keys (`auth.pub.pem`, `auth.*.pub.pem`) and the revoked tokens
    /// (`revoked-tokens`) of `dir` again; every clone of the verifier sees them. Returns the ids of
    /// the keys trusted.
    pub fn reload(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        let mut pems = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            if name.starts_with("auth.") && name.ends_with(".pub.pem") {
                pems.push(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
            }
        }
        let pems: Vec<&[u8]> = pems.iter().map(Vec::as_slice).collect();
        self.0.trust(&pems).map_err(|error| anyhow::anyhow!("token keys in {}: {error}", dir.display()))?;
        let revoked = match std::fs::read_to_string(dir.join("revoked-tokens")) {
            Ok(text) => text
                .lines()
                .map(|line| line.split('#').next().unwrap_or_default().trim())
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(error) => return Err(error).context("reading revoked-tokens"),
        };
        self.0.set_revoked(revoked);
        Ok(self.0.key_ids())
    }
}

impl std::fmt::Debug for TokenVerifierHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(..)")
    }
}

/// One peer province's public keys.
#[derive(Clone, Debug)]
pub struct PeerKeys {
    pub seal: SealPublicKey,
    pub sign: ExchangeVerifyingKey,
}

/// The configured peer provinces (`peers/`), shared by a process's tasks and read again on
/// [`Peers::reload`].
#[derive(Clone, Debug)]
pub struct Peers {
    dir: PathBuf,
    current: Arc<RwLock<HashMap<RegionCode, PeerKeys>>>,
}

impl Peers {
    /// Reads `dir` (a missing folder is no peers).
    pub fn load(dir: &Path) -> anyhow::Result<Peers> {
        let peers = Peers { dir: dir.to_path_buf(), current: Default::default() };
        peers.reload()?;
        Ok(peers)
    }

    /// Reads the folder again. A file that cannot be read fails the reload and keeps the set
    /// in use (a half-copied key must not drop a working peer). Returns the provinces now
    /// configured when the set changed.
    pub fn reload(&self) -> anyhow::Result<Option<Vec<RegionCode>>> {
        let mut seal = HashMap::new();
        let mut sign = HashMap::new();
        if self.dir.is_dir() {
            for entry in std::fs::read_dir(&self.dir)? {
                let path = entry?.path();
                let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                    continue;
                };
                let text = || std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()));
                let code = |code: &str| {
                    RegionCode::parse(code).map(|code| code.province()).with_context(|| format!("{}", path.display()))
                };
                if let Some(province) = name.strip_suffix(".seal.pub") {
                    let key = SealPublicKey::from_base64(&text()?)
                        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                    seal.insert(code(province)?, key);
                } else if let Some(province) = name.strip_suffix(".sign.pub") {
                    let key = ExchangeVerifyingKey::from_base64(&text()?)
                        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                    sign.insert(code(province)?, key);
                }
            }
        }
        let fresh: HashMap<RegionCode, PeerKeys> = seal
            .into_iter()
            .filter_map(|(code, seal)| sign.remove(&code).map(|sign| (code, PeerKeys { seal, sign })))
            .collect();
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before: BTreeSet<(RegionCode, String, String)> =
            current.iter().map(|(code, keys)| (*code, keys.seal.to_base64(), keys.sign.to_base64())).collect();
        let after: BTreeSet<(RegionCode, String, String)> =
            fresh.iter().map(|(code, keys)| (*code, keys.seal.to_base64(), keys.sign.to_base64())).collect();
        if before == after {
            return Ok(None);
        }
        *current = fresh;
        let mut provinces: Vec<RegionCode> = current.keys().copied().collect();
        provinces.sort();
        Ok(Some(provinces))
    }

    /// The keys of `region`'s province, if it is a configured peer.
    pub fn get(&self, region: &RegionCode) -> Option<PeerKeys> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&region.province()).cloned()
    }

    /// The configured provinces, in code order.
    pub fn provinces(&self) -> Vec<RegionCode> {
        let mut provinces: Vec<RegionCode> =
            self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).keys().copied().collect();
        provinces.sort();
        provinces
    }
}

impl nol_backbone::exchange::PeerDirectory for Peers {
    fn verifying_key(&self, province: &RegionCode) -> Option<ExchangeVerifyingKey> {
        self.get(province).map(|keys| keys.sign)
    }
}

impl ProvinceKeys {
    pub fn load(dir: &Path) -> anyhow::Result<ProvinceKeys> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let verifier = TokenVerifier::from_pem(read("auth.pub.pem")?.as_bytes())
            .map_err(|error| anyhow::anyhow!("auth.pub.pem: {error}"))?;
        let verifier = TokenVerifierHandle(verifier);
        verifier.reload(dir)?;
        let data = DataKey::from_base64(&read("data.key")?).map_err(|error| anyhow::anyhow!("data.key: {error}"))?;
        let seal =
            SealKeyPair::from_base64(&read("seal.key")?).map_err(|error| anyhow::anyhow!("seal.key: {error}"))?;
        let sign = ExchangeSigningKey::from_base64(&read("sign.key")?)
            .map_err(|error| anyhow::anyhow!("sign.key: {error}"))?;
        let peers = Peers::load(&dir.join("peers"))?;
        Ok(ProvinceKeys { dir: dir.to_path_buf(), data, seal, sign, peers, verifier })
    }

    /// The sealing key of `province` (our own included), if it is a configured peer.
    pub fn seal_key_of(&self, province: &RegionCode) -> Option<SealPublicKey> {
        self.peers.get(province).map(|keys| keys.seal)
    }

    /// Writes a fresh key set for one province: data and sealing keys, the shared token
    /// verification key, and the peers' public sealing keys. Used by the local stack and tests.
    pub fn write_new(
        dir: &Path,
        auth_public_pem: &str,
        own: &SealKeyPair,
        own_sign: &ExchangeSigningKey,
        peers: &[(RegionCode, PeerKeys)],
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir.join("peers"))?;
        std::fs::write(dir.join("auth.pub.pem"), auth_public_pem)?;
        std::fs::write(dir.join("data.key"), DataKey::generate_base64())?;
        std::fs::write(dir.join("seal.key"), own.secret_base64())?;
        std::fs::write(dir.join("sign.key"), own_sign.secret_base64())?;
        for (province, keys) in peers {
            write_peer(dir, province, keys)?;
        }
        restrict_permissions(dir)?;
        Ok(())
    }
}

/// Adds (or replaces) a peer province's public keys under `dir/peers/`: the sign key first,
/// since a province counts as a peer from the moment both files are there.
pub fn write_peer(dir: &Path, province: &RegionCode, keys: &PeerKeys) -> anyhow::Result<()> {
    let peers = dir.join("peers");
    std::fs::create_dir_all(&peers)?;
    let write = |name: String, text: String| -> anyhow::Result<()> {
        // Written beside and renamed, so a reload never reads half a key.
        let partial = peers.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, peers.join(name))?;
        Ok(())
    };
    write(format!("{province}.sign.pub"), keys.sign.to_base64())?;
    write(format!("{province}.seal.pub"), keys.seal.to_base64())?;
    Ok(())
}

fn restrict_permissions(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in ["data.key", "seal.key", "sign.key"] {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
