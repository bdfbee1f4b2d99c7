//! One service's keys, read from `NOL_KEYS_DIR`. Each service of a province has a folder of its
//! own holding only the keys it uses (`keys/<province>/<service>/` in the local stack, one mount
//! per container in `docker-compose.yml`):
//!
//! ```text
//!                        registry  cases  transfer  reporting
//! auth.pub.pem, auth.<name>.pub.pem, revoked-tokens
//!                           ✓        ✓       ✓         ✓      verify callers' tokens
//! data/<id>.key             ✓        ✓                        the service's own at-rest keyring
//! index.key                 ✓        ✓                        the service's blind-index key (fixed)
//! event/<id>.key            ✓        ✓                        the registry → cases event keyring
//! seal.key                           ✓       ✓                opens what other provinces seal to us
//! sign.key                                   ✓                signs what the province sends
//! peers/<code>.{seal,sign}.pub               ✓                the provinces exchanged with
//! ```
//!
//! - `data/<id>.key` (base64, 32 bytes): a [`Keyring`]; the highest id is current and encrypts,
//!   every other still decrypts what it made. `nol keys rotate` adds one; the service's
//!   re-encryption task ([`crate::reencrypt`]) rewrites the rows under older ids, after which
//!   `nol keys retire` removes them. The registry and the case service hold different keys: a
//!   service reads only its own rows.
//! - `index.key`: the blind index's HMAC key. It never rotates (every stored index was made
//!   with it); see [`IndexKey`].
//! - `event/<id>.key`: the one personal field that travels between services of a province — the
//!   resident ID in the registry's `pupil.suspected_out_of_school` — is encrypted under a
//!   keyring of its own that only the registry (which writes it) and the case service (which
//!   opens it) hold, bound to the check item it is about. Not the case service's public key
//!   (a sealed box): the registry holds every number anyway, so a key it shares with the case
//!   service exposes nothing more, and one keyring gives events the same key ids, rotation and
//!   row binding as rows. Transfer and reporting never hold it. Events stay in the stream two
//!   years (`NOL_STREAM_MAX_AGE_DAYS`), so an event key is retired only after that (or when no
//!   replay of older events is expected).
//!
//! **A folder of before** (one per province: `data.key`, `seal.key`, `sign.key`, `peers/` and
//! the token files, read by all four services) still works as it is: its `data.key` is key 0
//! of both keyrings (the one that reads v1 ciphertexts) and keys the blind index as before.
//! `nol keys split` makes the per-service folders from it ([`split`]): key 0 and the index
//! key derived from `data.key` go to the registry and the case service (so every row and every
//! event already in the stream stays readable and every index still matches), `seal.key` to
//! cases and transfer, `sign.key` and `peers/` to transfer; then `nol keys rotate` gives the
//! registry and the case service keys of their own, and key 0 is retired once re-encrypted.
//!
//! The folder — token keys, revoked tokens, peers and both keyrings — is read again on SIGHUP
//! and every `NOL_PEERS_RELOAD_SECS`, so a province joins (or leaves), a token key rotates, a
//! token is revoked and a data key rotates by configuration alone: no restarts. A ciphertext
//! naming a key not held yet (another replica rotated first) reads the folder again at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use nol_auth::TokenVerifier;
use nol_pii::{
    ExchangeSigningKey, ExchangeVerifyingKey, IndexKey, KeyError, KeyId, Keyring, LEGACY_KEY_ID, SealKeyPair,
    SealPublicKey,
};
use nol_region::RegionCode;

/// The services of a province.
pub const SERVICES: [&str; 4] = ["registry", "cases", "transfer", "reporting"];

/// What each service holds beside the token files (see the module's table).
pub fn needs(service: &str) -> &'static [&'static str] {
    match service {
        "registry" => &["data", "index.key", "event"],
        "cases" => &["data", "index.key", "event", "seal.key"],
        "transfer" => &["seal.key", "sign.key", "peers"],
        _ => &[],
    }
}

/// The at-rest keyring's folder and the event keyring's.
pub const DATA_KEYS: &str = "data";
pub const EVENT_KEYS: &str = "event";

/// Everything secret or trusted that one service uses (`NOL_KEYS_DIR`); what a service does not
/// use is absent.
#[derive(Clone, Debug)]
pub struct ProvinceKeys {
    /// Where they were read from (`NOL_KEYS_DIR`).
    pub dir: PathBuf,
    data: Option<DataKeys>,
    events: Option<SharedKeyring>,
    seal: Option<SealKeyPair>,
    /// Signs this province's cross-province messages (the transfer service only).
    pub sign: Option<ExchangeSigningKey>,
    /// The provinces this one exchanges with, and their public keys; reloadable.
    pub peers: Peers,
    pub verifier: TokenVerifierHandle,
}

/// A service's at-rest keys: its keyring and its blind index.
#[derive(Clone, Debug)]
pub struct DataKeys {
    pub keyring: SharedKeyring,
    pub index: IndexKey,
}

impl DataKeys {
    /// Encrypts with the current key, bound to the column `context` and the row `row` (the row's
    /// blind index, for every resident ID column).
    pub fn encrypt(&self, plaintext: &[u8], context: &str, row: &[u8]) -> Vec<u8> {
        self.keyring.encrypt(plaintext, context, row)
    }

    pub fn decrypt(&self, ciphertext: &[u8], context: &str, row: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.keyring.decrypt(ciphertext, context, row)
    }

    pub fn blind_index(&self, value: &str) -> Vec<u8> {
        self.index.blind_index(value)
    }
}

/// A keyring read from a folder (`data/`, `event/`; plus a folder of before's `data.key` as key
/// 0), shared by a process's tasks and read again on [`SharedKeyring::reload`].
#[derive(Clone)]
pub struct SharedKeyring {
    dir: PathBuf,
    folder: &'static str,
    current: Arc<RwLock<Arc<Keyring>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedKeyring({}: {:?})", self.folder, self.get())
    }
}

impl SharedKeyring {
    /// Reads `dir/folder` (none there: `None`).
    pub fn load(dir: &Path, folder: &'static str) -> anyhow::Result<Option<SharedKeyring>> {
        Ok(read_keyring(dir, folder)?.map(|keyring| SharedKeyring {
            dir: dir.to_path_buf(),
            folder,
            current: Arc::new(RwLock::new(Arc::new(keyring))),
            changed: Default::default(),
        }))
    }

    /// The keyring in use.
    pub fn get(&self) -> Arc<Keyring> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Reads the folder again; a key that cannot be read fails the reload and keeps the keyring
    /// in use. Returns the key ids and the current one when they changed.
    pub fn reload(&self) -> anyhow::Result<Option<(Vec<KeyId>, KeyId)>> {
        let fresh = read_keyring(&self.dir, self.folder)?
            .with_context(|| format!("{}: no key left in {}/", self.dir.display(), self.folder))?;
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = current.key_ids() != fresh.key_ids() || current.current_id() != fresh.current_id();
        let ids = (fresh.key_ids(), fresh.current_id());
        *current = Arc::new(fresh);
        drop(current);
        if changed {
            self.changed.notify_one();
            return Ok(Some(ids));
        }
        Ok(None)
    }

    /// Resolves when a reload changes the keys.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    pub fn folder(&self) -> &'static str {
        self.folder
    }

    pub fn encrypt(&self, plaintext: &[u8], context: &str, row: &[u8]) -> Vec<u8> {
        self.get().encrypt(plaintext, context, row)
    }

    /// Decrypts; a ciphertext of a key not held yet reads the folder again first (a replica
    /// that rotated before this one read the new key).
    pub fn decrypt(&self, ciphertext: &[u8], context: &str, row: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self.get().decrypt(ciphertext, context, row) {
            Err(KeyError::UnknownKeyId(id)) => {
                if let Err(error) = self.reload() {
                    tracing::warn!(error = %error, folder = self.folder, "keys could not be read again");
                }
                let again = self.get().decrypt(ciphertext, context, row);
                if let Err(KeyError::UnknownKeyId(_)) = again {
                    tracing::warn!(
                        key_id = id,
                        folder = self.folder,
                        "a ciphertext names a key this service does not hold"
                    );
                }
                again
            }
            other => other,
        }
    }
}

/// The secrets of `dir/folder/<id>.key`, with a folder of before's `dir/data.key` as key 0.
fn read_keyring(dir: &Path, folder: &str) -> anyhow::Result<Option<Keyring>> {
    let mut secrets = BTreeMap::new();
    let secret = |path: &Path| -> anyhow::Result<[u8; 32]> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Keyring::secret_from_base64(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    };
    let legacy = dir.join("data.key");
    if legacy.exists() {
        secrets.insert(LEGACY_KEY_ID, secret(&legacy)?);
    }
    let folder = dir.join(folder);
    if folder.is_dir() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".key"))
                .and_then(|id| id.parse::<KeyId>().ok())
            else {
                continue;
            };
            secrets.insert(id, secret(&path)?);
        }
    }
    if secrets.is_empty() {
        return Ok(None);
    }
    Ok(Some(Keyring::new(&secrets).map_err(|error| anyhow::anyhow!("{}: {error}", folder.display()))?))
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
        let optional = |name: &str| -> anyhow::Result<Option<String>> {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error).with_context(|| format!("reading {}", dir.join(name).display())),
            }
        };
        let verifier = TokenVerifier::from_pem(read("auth.pub.pem")?.as_bytes())
            .map_err(|error| anyhow::anyhow!("auth.pub.pem: {error}"))?;
        let verifier = TokenVerifierHandle(verifier);
        verifier.reload(dir)?;
        let keyring = SharedKeyring::load(dir, DATA_KEYS)?;
        let index = match (optional("index.key")?, optional("data.key")?) {
            (Some(text), _) => {
                Some(IndexKey::from_base64(&text).map_err(|error| anyhow::anyhow!("index.key: {error}"))?)
            }
            (None, Some(legacy)) => Some(IndexKey::from_legacy_secret(
                &Keyring::secret_from_base64(&legacy).map_err(|error| anyhow::anyhow!("data.key: {error}"))?,
            )),
            (None, None) => None,
        };
        let data = match (keyring, index) {
            (Some(keyring), Some(index)) => Some(DataKeys { keyring, index }),
            (Some(_), None) => anyhow::bail!("{}: data/ without index.key", dir.display()),
            (None, _) => None,
        };
        let events = SharedKeyring::load(dir, EVENT_KEYS)?;
        let seal = optional("seal.key")?
            .map(|text| SealKeyPair::from_base64(&text).map_err(|error| anyhow::anyhow!("seal.key: {error}")))
            .transpose()?;
        let sign = optional("sign.key")?
            .map(|text| ExchangeSigningKey::from_base64(&text).map_err(|error| anyhow::anyhow!("sign.key: {error}")))
            .transpose()?;
        let peers = Peers::load(&dir.join("peers"))?;
        Ok(ProvinceKeys { dir: dir.to_path_buf(), data, events, seal, sign, peers, verifier })
    }

    /// The service's at-rest keys (registry, cases).
    pub fn data(&self) -> anyhow::Result<DataKeys> {
        self.data
            .clone()
            .with_context(|| format!("no data keys under {} (data/, index.key: nol keys)", self.dir.display()))
    }

    /// The registry → cases event keyring.
    pub fn events(&self) -> anyhow::Result<SharedKeyring> {
        self.events.clone().with_context(|| format!("no event keys under {} (event/: nol keys)", self.dir.display()))
    }

    /// The province's sealing key pair (cases, transfer).
    pub fn seal(&self) -> anyhow::Result<SealKeyPair> {
        self.seal.clone().with_context(|| format!("no seal.key under {}", self.dir.display()))
    }

    /// The keyrings this service holds (for reloads and re-encryption).
    pub fn keyrings(&self) -> Vec<SharedKeyring> {
        self.data.iter().map(|data| data.keyring.clone()).chain(self.events.clone()).collect()
    }

    /// The sealing key of `province` (our own included), if it is a configured peer.
    pub fn seal_key_of(&self, province: &RegionCode) -> Option<SealPublicKey> {
        self.peers.get(province).map(|keys| keys.seal)
    }

    /// Writes a fresh key set for one province, a folder per service under `dir` holding what
    /// that service uses: the token verification key, each at-rest keyring's first key and index
    /// key (the registry's and the case service's differ), the event key the two share, the
    /// sealing and exchange keys, and the peers' public keys. Used by the local stack and tests.
    pub fn write_new(
        dir: &Path,
        auth_public_pem: &str,
        own: &SealKeyPair,
        own_sign: &ExchangeSigningKey,
        peers: &[(RegionCode, PeerKeys)],
    ) -> anyhow::Result<()> {
        let event = nol_pii::DataKey::generate_base64();
        for service in SERVICES {
            let folder = dir.join(service);
            std::fs::create_dir_all(&folder)?;
            std::fs::write(folder.join("auth.pub.pem"), auth_public_pem)?;
            for need in needs(service) {
                match *need {
                    "data" => write_key(&folder, DATA_KEYS, 1, &nol_pii::DataKey::generate_base64())?,
                    "index.key" => write_secret(&folder.join("index.key"), &IndexKey::generate().to_base64())?,
                    "event" => write_key(&folder, EVENT_KEYS, 1, &event)?,
                    "seal.key" => write_secret(&folder.join("seal.key"), &own.secret_base64())?,
                    "sign.key" => write_secret(&folder.join("sign.key"), &own_sign.secret_base64())?,
                    "peers" => {
                        std::fs::create_dir_all(folder.join("peers"))?;
                        for (province, keys) in peers {
                            write_peer(&folder, province, keys)?;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Writes a secret beside and renames it (a reload never reads half a key), readable by its
/// owner only.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("key");
    let partial = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// Writes key `id` of the keyring `folder` (`data`, `event`) of a service's folder.
pub fn write_key(dir: &Path, folder: &str, id: KeyId, secret_base64: &str) -> anyhow::Result<()> {
    let keys = dir.join(folder);
    std::fs::create_dir_all(&keys)?;
    let path = keys.join(format!("{id}.key"));
    anyhow::ensure!(!path.exists(), "{} exists", path.display());
    write_secret(&path, secret_base64)
}

/// The key ids of a service's keyring `folder` and its current one (none: `None`).
pub fn key_ids(dir: &Path, folder: &str) -> anyhow::Result<Option<(Vec<KeyId>, KeyId)>> {
    Ok(read_keyring(dir, folder)?.map(|keyring| (keyring.key_ids(), keyring.current_id())))
}

/// Adds a new current key to the keyring `folder` of each of `dirs` (one secret for all: the
/// event keyring is held by two services, written to the reader first). Returns its id. The
/// services use it once they read their folders again (SIGHUP, or within
/// `NOL_PEERS_RELOAD_SECS`); their re-encryption then rewrites the rows under older keys.
pub fn rotate(dirs: &[PathBuf], folder: &str) -> anyhow::Result<KeyId> {
    let mut next = 1;
    for dir in dirs {
        let (ids, _) =
            key_ids(dir, folder)?.with_context(|| format!("{}: no {folder} keys to rotate", dir.display()))?;
        next = next.max(ids.iter().max().map_or(1, |max| max + 1));
    }
    let secret = nol_pii::DataKey::generate_base64();
    for dir in dirs {
        write_key(dir, folder, next, &secret)?;
    }
    Ok(next)
}

/// Removes key `id` from the keyring `folder` of `dir`. The current key is never removed, nor a
/// folder of before's `data.key` (split it first). Call it once the service logs that no row is
/// under the key (`re-encryption: every row is under the current key`).
pub fn retire(dir: &Path, folder: &str, id: KeyId) -> anyhow::Result<()> {
    let (ids, current) = key_ids(dir, folder)?.with_context(|| format!("{}: no {folder} keys", dir.display()))?;
    anyhow::ensure!(id != current, "key {id} is the current {folder} key of {}: rotate first", dir.display());
    anyhow::ensure!(ids.contains(&id), "{}: no {folder} key {id}", dir.display());
    let path = dir.join(folder).join(format!("{id}.key"));
    anyhow::ensure!(path.exists(), "{}: key {id} is data.key (a folder of before): split it first", dir.display());
    std::fs::remove_file(&path)?;
    Ok(())
}

/// Makes the per-service folders `province_dir/<service>/` from a province folder of before
/// (`data.key`, `seal.key`, `sign.key`, `peers/`, token files), each with only what its service
/// uses; `data.key` becomes key 0 of the registry's and the case service's at-rest and event
/// keyrings and their index key (derived as before), so every stored row and every event in the
/// stream stays readable and every blind index still matches. The old files are left for the
/// operator to remove once every service reads its own folder. A service folder already there is
/// left as it is.
pub fn split(province_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let read = |name: &str| {
        std::fs::read_to_string(province_dir.join(name))
            .with_context(|| format!("reading {}", province_dir.join(name).display()))
    };
    let legacy = read("data.key")?;
    let secret = Keyring::secret_from_base64(&legacy).map_err(|error| anyhow::anyhow!("data.key: {error}"))?;
    let index = IndexKey::from_legacy_secret(&secret);
    let mut made = Vec::new();
    for service in SERVICES {
        let folder = province_dir.join(service);
        if folder.exists() {
            continue;
        }
        let partial = province_dir.join(format!(".{service}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        std::fs::create_dir_all(&partial)?;
        for entry in std::fs::read_dir(province_dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            if path.is_file() && ((name.starts_with("auth.") && name.ends_with(".pub.pem")) || name == "revoked-tokens")
            {
                std::fs::copy(&path, partial.join(name))?;
            }
        }
        for need in needs(service) {
            match *need {
                "data" => write_key(&partial, DATA_KEYS, LEGACY_KEY_ID, legacy.trim())?,
                "index.key" => write_secret(&partial.join("index.key"), &index.to_base64())?,
                "event" => write_key(&partial, EVENT_KEYS, LEGACY_KEY_ID, legacy.trim())?,
                "seal.key" | "sign.key" => write_secret(&partial.join(need), read(need)?.trim())?,
                "peers" => {
                    std::fs::create_dir_all(partial.join("peers"))?;
                    if province_dir.join("peers").is_dir() {
                        for entry in std::fs::read_dir(province_dir.join("peers"))? {
                            let path = entry?.path();
                            if let Some(name) = path.file_name().filter(|_| path.is_file()) {
                                std::fs::copy(&path, partial.join("peers").join(name))?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        std::fs::rename(&partial, &folder)?;
        made.push(folder);
    }
    Ok(made)
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

#[cfg(test)]
mod tests {
    use super::*;
    use nol_pii::DataKey;

    const CONTEXT: &str = "registry.pupil.resident_id";

    /// A province folder of before: one data.key, seal.key, sign.key, peers/, the token key.
    fn folder_of_before(dir: &Path) -> String {
        let (_, public_pem) = nol_auth::generate_signing_key_pem().unwrap();
        std::fs::create_dir_all(dir.join("peers")).unwrap();
        std::fs::write(dir.join("auth.pub.pem"), public_pem).unwrap();
        std::fs::write(dir.join("revoked-tokens"), "gone\n").unwrap();
        let secret = DataKey::generate_base64();
        std::fs::write(dir.join("data.key"), &secret).unwrap();
        let seal = SealKeyPair::generate();
        let sign = ExchangeSigningKey::generate();
        std::fs::write(dir.join("seal.key"), seal.secret_base64()).unwrap();
        std::fs::write(dir.join("sign.key"), sign.secret_base64()).unwrap();
        let code = RegionCode::parse("340000").unwrap();
        write_peer(dir, &code, &PeerKeys { seal: seal.public_key(), sign: sign.verifying_key() }).unwrap();
        secret
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_folder_of_before_still_works_and_its_split_keeps_every_row_readable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = folder_of_before(dir.path());
        let old = DataKey::from_base64(&secret).unwrap();
        let v1_row = old.encrypt(b"11010519491231002X", CONTEXT);
        let v1_event = old.encrypt(b"11010519491231002X", "event.resident_id");
        let index = old.blind_index("11010519491231002X");

        // As it is: all four services read the one folder.
        let keys = ProvinceKeys::load(dir.path()).unwrap();
        let data = keys.data().unwrap();
        assert_eq!(data.decrypt(&v1_row, CONTEXT, &index).unwrap(), b"11010519491231002X");
        assert_eq!(data.blind_index("11010519491231002X"), index);
        assert_eq!(data.keyring.get().current_id(), LEGACY_KEY_ID);

        let made = split(dir.path()).unwrap();
        assert_eq!(made.len(), 4);
        assert_eq!(
            files(&dir.path().join("registry")),
            ["auth.pub.pem", "data", "event", "index.key", "revoked-tokens"]
        );
        assert_eq!(
            files(&dir.path().join("cases")),
            ["auth.pub.pem", "data", "event", "index.key", "revoked-tokens", "seal.key"]
        );
        assert_eq!(
            files(&dir.path().join("transfer")),
            ["auth.pub.pem", "peers", "revoked-tokens", "seal.key", "sign.key"]
        );
        assert_eq!(files(&dir.path().join("reporting")), ["auth.pub.pem", "revoked-tokens"]);
        assert_eq!(split(dir.path()).unwrap(), Vec::<PathBuf>::new(), "a second split changes nothing");

        let registry = ProvinceKeys::load(&dir.path().join("registry")).unwrap();
        assert!(registry.seal().is_err() && registry.sign.is_none());
        let data = registry.data().unwrap();
        assert_eq!(data.decrypt(&v1_row, CONTEXT, &index).unwrap(), b"11010519491231002X");
        assert_eq!(data.blind_index("11010519491231002X"), index, "the blind index is kept");
        let cases = ProvinceKeys::load(&dir.path().join("cases")).unwrap();
        let event = cases.events().unwrap().decrypt(&v1_event, "event.resident_id", b"item").unwrap();
        assert_eq!(event, b"11010519491231002X", "an event already in the stream");
        let transfer = ProvinceKeys::load(&dir.path().join("transfer")).unwrap();
        assert!(transfer.data().is_err() && transfer.events().is_err() && transfer.sign.is_some());
        assert_eq!(transfer.peers.provinces().len(), 1);
        let reporting = ProvinceKeys::load(&dir.path().join("reporting")).unwrap();
        assert!(reporting.data().is_err() && reporting.seal().is_err() && reporting.sign.is_none());
    }

    /// A new province's key folders, one per service.
    fn new_deployment() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (_, public_pem) = nol_auth::generate_signing_key_pem().unwrap();
        ProvinceKeys::write_new(
            dir.path(),
            &public_pem,
            &SealKeyPair::generate(),
            &ExchangeSigningKey::generate(),
            &[],
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_rotation_is_read_on_reload_and_the_old_key_retires_only_when_not_current() {
        let dir = new_deployment();
        let registry_dir = dir.path().join("registry");
        let cases_dir = dir.path().join("cases");
        // A new deployment's folders: each service only what it uses.
        assert_eq!(files(&registry_dir), ["auth.pub.pem", "data", "event", "index.key"]);
        assert_eq!(files(&cases_dir), ["auth.pub.pem", "data", "event", "index.key", "seal.key"]);
        assert_eq!(files(&dir.path().join("transfer")), ["auth.pub.pem", "peers", "seal.key", "sign.key"]);
        assert_eq!(files(&dir.path().join("reporting")), ["auth.pub.pem"]);
        assert_eq!(files(&registry_dir.join("data")), ["1.key"]);
        assert_eq!(
            std::fs::read(registry_dir.join("event/1.key")).unwrap(),
            std::fs::read(cases_dir.join("event/1.key")).unwrap(),
            "the event key is the registry's and the case service's"
        );
        let registry = ProvinceKeys::load(&registry_dir).unwrap().data().unwrap();
        let cases = ProvinceKeys::load(&cases_dir).unwrap().data().unwrap();
        let index = registry.blind_index("11010519491231002X");
        let before = registry.encrypt(b"11010519491231002X", CONTEXT, &index);
        // Each service its own key: the case service cannot read the registry's rows.
        assert!(cases.decrypt(&before, CONTEXT, &index).is_err());
        assert_ne!(cases.blind_index("11010519491231002X"), index);

        assert_eq!(rotate(std::slice::from_ref(&registry_dir), DATA_KEYS).unwrap(), 2);
        assert_eq!(registry.keyring.get().current_id(), 1, "not read before a reload");
        assert_eq!(registry.keyring.reload().unwrap(), Some((vec![1, 2], 2)));
        let after = registry.encrypt(b"11010519491231002X", CONTEXT, &index);
        assert_eq!(Keyring::key_id_of(&after), Ok(2));
        assert_eq!(registry.decrypt(&before, CONTEXT, &index).unwrap(), b"11010519491231002X");
        assert_eq!(registry.blind_index("11010519491231002X"), index, "the index key does not rotate");

        assert!(retire(&registry_dir, DATA_KEYS, 2).unwrap_err().to_string().contains("current"));
        retire(&registry_dir, DATA_KEYS, 1).unwrap();
        registry.keyring.reload().unwrap();
        assert_eq!(registry.decrypt(&before, CONTEXT, &index), Err(KeyError::UnknownKeyId(1)));
        assert_eq!(registry.decrypt(&after, CONTEXT, &index).unwrap(), b"11010519491231002X");

        // The event key: both services, one secret.
        assert_eq!(rotate(&[cases_dir.clone(), registry_dir.clone()], EVENT_KEYS).unwrap(), 2);
        let sent = SharedKeyring::load(&registry_dir, EVENT_KEYS).unwrap().unwrap();
        let opened = SharedKeyring::load(&cases_dir, EVENT_KEYS).unwrap().unwrap();
        let event = sent.encrypt(b"11010519491231002X", "event.resident_id", b"item");
        assert_eq!(Keyring::key_id_of(&event), Ok(2));
        assert_eq!(opened.decrypt(&event, "event.resident_id", b"item").unwrap(), b"11010519491231002X");
        assert!(opened.decrypt(&event, "event.resident_id", b"another item").is_err());
    }

    #[test]
    fn a_key_not_read_yet_is_read_when_a_ciphertext_names_it() {
        let dir = new_deployment();
        let registry_dir = dir.path().join("registry");
        let early = ProvinceKeys::load(&registry_dir).unwrap().data().unwrap();
        let late = ProvinceKeys::load(&registry_dir).unwrap().data().unwrap();
        rotate(std::slice::from_ref(&registry_dir), DATA_KEYS).unwrap();
        early.keyring.reload().unwrap();
        let sealed = early.encrypt(b"x", CONTEXT, b"row");
        assert_eq!(late.decrypt(&sealed, CONTEXT, b"row").unwrap(), b"x");
        assert_eq!(late.keyring.get().current_id(), 2);
    }
}
