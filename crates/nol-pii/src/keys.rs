use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

/// Why a key or a ciphertext could not be used. Never carries the protected data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key is 32 bytes in base64")]
    BadKey,
    #[error("the ciphertext is damaged or was made with another key")]
    Undecryptable,
    #[error("the sealed data was sealed by province {found}, not by {expected}")]
    WrongSender { expected: String, found: String },
    #[error("the signature does not verify")]
    BadSignature,
    #[error(
        "the ciphertext was made with data key {0}, which this service does not hold (retired, or not read yet: \
         `nol keys rotate` writes a key, SIGHUP or NOL_PEERS_RELOAD_SECS reads it)"
    )]
    UnknownKeyId(KeyId),
    #[error("a keyring needs at least one key")]
    EmptyKeyring,
}

/// What a sender-bound sealed box starts with inside: a marker and the sealing province's code.
const BOUND_MARKER: &[u8; 5] = b"NOLS1";
const PROVINCE_LEN: usize = 6;

const CIPHERTEXT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// Ciphertext v2: `[2][key id, u32 big-endian][nonce 12][AES-256-GCM]`, see [`Keyring`].
const CIPHERTEXT_V2: u8 = 2;
const KEY_ID_LEN: usize = 4;
const V2_HEADER: usize = 1 + KEY_ID_LEN;

/// Names one key of a [`Keyring`]. Key 0 is the province's data key of before keyrings
/// (`data.key`): the only key that opens v1 ciphertexts.
pub type KeyId = u32;
pub const LEGACY_KEY_ID: KeyId = 0;

fn aead_key_from_secret(secret: &[u8; 32]) -> [u8; 32] {
    let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"not-one-less"), secret);
    let mut aead_key = [0u8; 32];
    // Output lengths are far below HKDF's limit, so expand cannot fail.
    hkdf.expand(b"pii aead v1", &mut aead_key).unwrap_or_default();
    aead_key
}

fn index_key_from_secret(secret: &[u8; 32]) -> [u8; 32] {
    let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"not-one-less"), secret);
    let mut index_key = [0u8; 32];
    hkdf.expand(b"pii blind index v1", &mut index_key).unwrap_or_default();
    index_key
}

/// The keys that encrypt personal fields at rest (AES-256-GCM), by id, so they can rotate:
/// a new key becomes current (the highest id), the older ones still decrypt what they made until
/// a re-encryption has rewritten it, and are then retired.
///
/// A v2 ciphertext is `[2][key id][nonce][ciphertext]`; its associated data binds it to its
/// place — the column (`context`, e.g. `registry.pupil.resident_id`) *and* the row (`row`, e.g. the
/// row's blind index) — so a ciphertext copied into another column or another child's row does
/// not decrypt. A v1 ciphertext (`[1][nonce][ciphertext]`, bound to the column only) is still
/// read, with key 0 (`LEGACY_KEY_ID`).
#[derive(Clone)]
pub struct Keyring {
    keys: std::collections::BTreeMap<KeyId, Aes256Gcm>,
    current: KeyId,
}

impl Keyring {
    /// A keyring of 32-byte secrets by id; the highest id is current.
    pub fn new(secrets: &std::collections::BTreeMap<KeyId, [u8; 32]>) -> Result<Keyring, KeyError> {
        let current = *secrets.keys().next_back().ok_or(KeyError::EmptyKeyring)?;
        let keys =
            secrets.iter().map(|(id, secret)| (*id, Aes256Gcm::new(&aead_key_from_secret(secret).into()))).collect();
        Ok(Keyring { keys, current })
    }

    /// Reads a secret as written in a key file (base64, 32 bytes).
    pub fn secret_from_base64(text: &str) -> Result<[u8; 32], KeyError> {
        decode_32(text)
    }

    /// The key new ciphertexts are made with.
    pub fn current_id(&self) -> KeyId {
        self.current
    }

    /// Every key held, in id order.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.keys().copied().collect()
    }

    /// The key a ciphertext was made with (v1: the legacy key), without decrypting it.
    pub fn key_id_of(ciphertext: &[u8]) -> Result<KeyId, KeyError> {
        match ciphertext.first() {
            Some(&CIPHERTEXT_VERSION) if ciphertext.len() > NONCE_LEN => Ok(LEGACY_KEY_ID),
            Some(&CIPHERTEXT_V2) if ciphertext.len() >= V2_HEADER + NONCE_LEN => {
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&ciphertext[1..V2_HEADER]);
                Ok(KeyId::from_be_bytes(id))
            }
            _ => Err(KeyError::Undecryptable),
        }
    }

    /// The first bytes of every ciphertext the current key makes (version and key id): a row
    /// whose ciphertext does not start with them is due for re-encryption.
    pub fn current_prefix(&self) -> Vec<u8> {
        let mut prefix = vec![CIPHERTEXT_V2];
        prefix.extend_from_slice(&self.current.to_be_bytes());
        prefix
    }

    /// Encrypts `plaintext` with the current key, bound to the column `context` and the row `row`.
    pub fn encrypt(&self, plaintext: &[u8], context: &str, row: &[u8]) -> Vec<u8> {
        let Some(cipher) = self.keys.get(&self.current) else {
            unreachable!("the current key is one of the keyring's")
        };
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(V2_HEADER + NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&self.current_prefix());
        let aad = associated_data(&out, context, row);
        let payload = Payload { msg: plaintext, aad: &aad };
        // AES-GCM encryption of an in-memory buffer only fails for inputs beyond 64 GiB.
        let sealed = cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a v2 ciphertext with the key it names, checking its column and row; or a v1
    /// ciphertext with the legacy key, checking its column.
    pub fn decrypt(&self, ciphertext: &[u8], context: &str, row: &[u8]) -> Result<Vec<u8>, KeyError> {
        let id = Keyring::key_id_of(ciphertext)?;
        let cipher = self.keys.get(&id).ok_or(KeyError::UnknownKeyId(id))?;
        let (header, aad) = match ciphertext[0] {
            CIPHERTEXT_VERSION => (1, context.as_bytes().to_vec()),
            _ => (V2_HEADER, associated_data(&ciphertext[..V2_HEADER], context, row)),
        };
        let nonce = Nonce::from_slice(&ciphertext[header..header + NONCE_LEN]);
        let payload = Payload { msg: &ciphertext[header + NONCE_LEN..], aad: &aad };
        cipher.decrypt(nonce, payload).map_err(|_| KeyError::Undecryptable)
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(keys {:?}, current {})", self.key_ids(), self.current)
    }
}

/// A v2 ciphertext's associated data: its header (version, key id), the column and the row,
/// each length-prefixed so no two (column, row) pairs give the same bytes.
fn associated_data(header: &[u8], context: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + header.len() + context.len() + row.len());
    aad.extend_from_slice(b"nol-pii-v2");
    aad.extend_from_slice(header);
    aad.extend_from_slice(&(context.len() as u32).to_be_bytes());
    aad.extend_from_slice(context.as_bytes());
    aad.extend_from_slice(&(row.len() as u32).to_be_bytes());
    aad.extend_from_slice(row);
    aad
}

/// The key of the blind index (HMAC-SHA-256) that finds a record by resident ID without
/// decrypting. It never rotates with the data keys: every stored index was made with it, and a
/// new index key would mean recomputing every index from the decrypted numbers (a migration of
/// its own, not a rotation).
#[derive(Clone)]
pub struct IndexKey([u8; 32]);

impl IndexKey {
    /// The index key of a province data key of before keyrings (`data.key`), as [`DataKey`]
    /// derives it: what a split keeps, so the stored indexes still match.
    pub fn from_legacy_secret(secret: &[u8; 32]) -> IndexKey {
        IndexKey(index_key_from_secret(secret))
    }

    pub fn from_base64(text: &str) -> Result<IndexKey, KeyError> {
        Ok(IndexKey(decode_32(text)?))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    pub fn generate() -> IndexKey {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        IndexKey(key)
    }

    /// The keyed blind index of a value: equal values give equal indexes, and without the key
    /// the index reveals nothing (no dictionary attack over the small space of valid IDs).
    pub fn blind_index(&self, value: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// A province's data key of before keyrings (`data.key`, v1 ciphertexts bound to the column
/// only): encrypts personal fields at rest (AES-256-GCM) and keys the blind index (HMAC-SHA-256).
/// The two sub-keys are derived with HKDF so one secret is configured, and neither use weakens
/// the other. Services now use a [`Keyring`] and an [`IndexKey`]; this makes and reads v1 data.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    index_key: [u8; 32],
}

impl DataKey {
    pub fn from_bytes(secret: &[u8; 32]) -> DataKey {
        DataKey {
            cipher: Aes256Gcm::new(&aead_key_from_secret(secret).into()),
            index_key: index_key_from_secret(secret),
        }
    }

    pub fn from_base64(text: &str) -> Result<DataKey, KeyError> {
        Ok(DataKey::from_bytes(&decode_32(text)?))
    }

    pub fn generate_base64() -> String {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        BASE64.encode(secret)
    }

    /// Encrypts `plaintext`, binding it to `context` (for example the column name) so a value
    /// copied into another column does not decrypt.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload { msg: plaintext, aad: context.as_bytes() };
        // AES-GCM encryption of an in-memory buffer only fails for inputs beyond 64 GiB.
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(CIPHERTEXT_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, ciphertext: &[u8], context: &str) -> Result<Vec<u8>, KeyError> {
        if ciphertext.len() < 1 + NONCE_LEN || ciphertext[0] != CIPHERTEXT_VERSION {
            return Err(KeyError::Undecryptable);
        }
        let nonce = Nonce::from_slice(&ciphertext[1..1 + NONCE_LEN]);
        let payload = Payload { msg: &ciphertext[1 + NONCE_LEN..], aad: context.as_bytes() };
        self.cipher.decrypt(nonce, payload).map_err(|_| KeyError::Undecryptable)
    }

    /// The keyed blind index of a value: equal values give equal indexes, and without the key
    /// the index reveals nothing (no dictionary attack over the small space of valid IDs).
    pub fn blind_index(&self, value: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A province's X25519 key pair for dossiers sealed to it by other provinces.
#[derive(Clone)]
pub struct SealKeyPair {
    secret: crypto_box::SecretKey,
}

/// Another province's public sealing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPublicKey(crypto_box::PublicKey);

impl SealKeyPair {
    pub fn generate() -> SealKeyPair {
        SealKeyPair { secret: crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng) }
    }

    pub fn from_base64(text: &str) -> Result<SealKeyPair, KeyError> {
        Ok(SealKeyPair { secret: crypto_box::SecretKey::from(decode_32(text)?) })
    }

    pub fn secret_base64(&self) -> String {
        BASE64.encode(self.secret.to_bytes())
    }

    pub fn public_key(&self) -> SealPublicKey {
        SealPublicKey(self.secret.public_key())
    }

    /// Opens a box sealed to this key pair.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.secret.unseal(sealed).map_err(|_| KeyError::Undecryptable)
    }

    /// Opens a box sealed with [`SealPublicKey::seal_from`], refusing one that `sender` (a
    /// province code) did not seal: a sealed box is anonymous, so without this a province could
    /// pass on, as its own, a box another province sealed to us.
    pub fn open_from(&self, sealed: &[u8], sender: &str) -> Result<Vec<u8>, KeyError> {
        let opened = self.open(sealed)?;
        let header = BOUND_MARKER.len() + PROVINCE_LEN;
        if opened.len() < header || &opened[..BOUND_MARKER.len()] != BOUND_MARKER {
            return Err(KeyError::WrongSender { expected: sender.to_owned(), found: "(unbound)".to_owned() });
        }
        let found = String::from_utf8_lossy(&opened[BOUND_MARKER.len()..header]).into_owned();
        if found != sender {
            return Err(KeyError::WrongSender { expected: sender.to_owned(), found });
        }
        Ok(opened[header..].to_vec())
    }
}

impl std::fmt::Debug for SealKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKeyPair(..)")
    }
}

impl SealPublicKey {
    pub fn from_base64(text: &str) -> Result<SealPublicKey, KeyError> {
        Ok(SealPublicKey(crypto_box::PublicKey::from(decode_32(text)?)))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    /// Seals `plaintext` so that only the holder of the matching secret key can open it
    /// (an anonymous crypto_box: ephemeral X25519, XSalsa20-Poly1305).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        // Sealing fails only when the system RNG does.
        self.0.seal(&mut crypto_box::aead::OsRng, plaintext).unwrap_or_default()
    }

    /// Seals `plaintext` bound to its sender, the province `sender` (six digits): the receiver
    /// opens it with [`SealKeyPair::open_from`] naming the province whose signature the message
    /// carried, so a box cannot be re-sent by another province as its own.
    pub fn seal_from(&self, plaintext: &[u8], sender: &str) -> Vec<u8> {
        debug_assert_eq!(sender.len(), PROVINCE_LEN, "a province code");
        let mut bound = Vec::with_capacity(BOUND_MARKER.len() + PROVINCE_LEN + plaintext.len());
        bound.extend_from_slice(BOUND_MARKER);
        bound.extend_from_slice(&sender.as_bytes()[..PROVINCE_LEN.min(sender.len())]);
        bound.extend_from_slice(plaintext);
        self.seal(&bound)
    }
}

/// A province's Ed25519 key that signs what it sends to other provinces over the exchange.
#[derive(Clone)]
pub struct ExchangeSigningKey(ed25519_dalek::SigningKey);

/// Another province's public exchange key: verifies what that province signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeVerifyingKey(ed25519_dalek::VerifyingKey);

impl ExchangeSigningKey {
    pub fn generate() -> ExchangeSigningKey {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        ExchangeSigningKey(ed25519_dalek::SigningKey::from_bytes(&secret))
    }

    pub fn from_base64(text: &str) -> Result<ExchangeSigningKey, KeyError> {
        Ok(ExchangeSigningKey(ed25519_dalek::SigningKey::from_bytes(&decode_32(text)?)))
    }

    pub fn secret_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    pub fn verifying_key(&self) -> ExchangeVerifyingKey {
        ExchangeVerifyingKey(self.0.verifying_key())
    }

    /// The signature of `message`, in base64.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        use ed25519_dalek::Signer;
        BASE64.encode(self.0.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for ExchangeSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExchangeSigningKey(..)")
    }
}

impl ExchangeVerifyingKey {
    pub fn from_base64(text: &str) -> Result<ExchangeVerifyingKey, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(&decode_32(text)?)
            .map(ExchangeVerifyingKey)
            .map_err(|_| KeyError::BadKey)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    /// Checks a base64 signature of `message` (strictly: no malleable or weak-key signatures).
    pub fn verify_base64(&self, message: &[u8], signature: &str) -> Result<(), KeyError> {
        let bytes = BASE64.decode(signature.trim()).map_err(|_| KeyError::BadSignature)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| KeyError::BadSignature)?;
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).map_err(|_| KeyError::BadSignature)
    }
}

fn decode_32(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::BadKey)?;
    bytes.try_into().map_err(|_| KeyError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_is_bound_to_its_context() {
        let key = DataKey::from_base64(&DataKey::generate_base64()).unwrap();
        let sealed = key.encrypt(b"11010519491231002X", "resident_id");
        assert!(!sealed.windows(8).any(|window| window == b"19491231"));
        assert_eq!(key.decrypt(&sealed, "resident_id").unwrap(), b"11010519491231002X");
        assert_eq!(key.decrypt(&sealed, "name"), Err(KeyError::Undecryptable));
        let other = DataKey::from_base64(&DataKey::generate_base64()).unwrap();
        assert_eq!(other.decrypt(&sealed, "resident_id"), Err(KeyError::Undecryptable));
    }

    fn secret() -> [u8; 32] {
        Keyring::secret_from_base64(&DataKey::generate_base64()).unwrap()
    }

    #[test]
    fn a_keyring_reads_v1_with_the_legacy_key_and_writes_v2_with_the_current_one() {
        let legacy = secret();
        let v1 = DataKey::from_bytes(&legacy).encrypt(b"11010519491231002X", "registry.pupil.resident_id");
        let ring = Keyring::new(&[(LEGACY_KEY_ID, legacy)].into()).unwrap();
        assert_eq!(Keyring::key_id_of(&v1), Ok(LEGACY_KEY_ID));
        // A v1 ciphertext is bound to its column only: any row reads it.
        assert_eq!(ring.decrypt(&v1, "registry.pupil.resident_id", b"any row").unwrap(), b"11010519491231002X");
        assert_eq!(ring.decrypt(&v1, "cases.suspect.resident_id", b"any row"), Err(KeyError::Undecryptable));
        let v2 = ring.encrypt(b"11010519491231002X", "registry.pupil.resident_id", b"row 1");
        assert_eq!(v2[0], 2);
        assert_eq!(Keyring::key_id_of(&v2), Ok(LEGACY_KEY_ID));
        assert!(!v2.windows(8).any(|window| window == b"19491231"));
        assert_eq!(ring.decrypt(&v2, "registry.pupil.resident_id", b"row 1").unwrap(), b"11010519491231002X");
    }

    #[test]
    fn a_v2_ciphertext_is_bound_to_its_column_and_its_row() {
        let ring = Keyring::new(&[(1, secret())].into()).unwrap();
        let sealed = ring.encrypt(b"11010519491231002X", "registry.pupil.resident_id", b"row 1");
        assert_eq!(ring.decrypt(&sealed, "registry.pupil.resident_id", b"row 2"), Err(KeyError::Undecryptable));
        assert_eq!(ring.decrypt(&sealed, "registry.agency.resident_id", b"row 1"), Err(KeyError::Undecryptable));
        // The length prefixes keep the column and the row apart.
        assert_eq!(ring.decrypt(&sealed, "registry.pupil.resident_idrow", b" 1"), Err(KeyError::Undecryptable));
        // The key id is bound too: changing it does not find another key's way in.
        let mut moved = sealed.clone();
        moved[4] = 0;
        assert!(ring.decrypt(&moved, "registry.pupil.resident_id", b"row 1").is_err());
    }

    #[test]
    fn after_a_rotation_new_ciphertexts_use_the_new_key_and_old_ones_still_read() {
        let (first, second) = (secret(), secret());
        let before = Keyring::new(&[(1, first)].into()).unwrap();
        let old = before.encrypt(b"320102201001011234", "cases.dropout_case.resident_id", b"idx");
        let after = Keyring::new(&[(1, first), (2, second)].into()).unwrap();
        assert_eq!(after.current_id(), 2);
        assert_eq!(after.key_ids(), vec![1, 2]);
        let new = after.encrypt(b"320102201001011234", "cases.dropout_case.resident_id", b"idx");
        assert_eq!(Keyring::key_id_of(&new), Ok(2));
        assert!(new.starts_with(&after.current_prefix()));
        assert!(!old.starts_with(&after.current_prefix()));
        assert_eq!(after.decrypt(&old, "cases.dropout_case.resident_id", b"idx").unwrap(), b"320102201001011234");
        // Key 1 retired: what it made is refused with its id named, never read as garbage.
        let retired = Keyring::new(&[(2, second)].into()).unwrap();
        let error = retired.decrypt(&old, "cases.dropout_case.resident_id", b"idx").unwrap_err();
        assert_eq!(error, KeyError::UnknownKeyId(1));
        assert!(error.to_string().contains("data key 1"), "{error}");
        assert_eq!(retired.decrypt(&new, "cases.dropout_case.resident_id", b"idx").unwrap(), b"320102201001011234");
        assert_eq!(Keyring::new(&Default::default()).unwrap_err(), KeyError::EmptyKeyring);
        assert_eq!(Keyring::key_id_of(&[2, 0, 0]), Err(KeyError::Undecryptable));
        assert_eq!(Keyring::key_id_of(&[]), Err(KeyError::Undecryptable));
    }

    #[test]
    fn the_index_key_of_a_legacy_data_key_keeps_its_indexes() {
        let legacy = secret();
        let index = IndexKey::from_legacy_secret(&legacy);
        assert_eq!(index.blind_index("a"), DataKey::from_bytes(&legacy).blind_index("a"));
        let restored = IndexKey::from_base64(&index.to_base64()).unwrap();
        assert_eq!(restored.blind_index("a"), index.blind_index("a"));
        assert_ne!(IndexKey::generate().blind_index("a"), index.blind_index("a"));
    }

    #[test]
    fn blind_index_is_stable_per_key() {
        let key = DataKey::from_base64(&DataKey::generate_base64()).unwrap();
        let other = DataKey::from_base64(&DataKey::generate_base64()).unwrap();
        assert_eq!(key.blind_index("a"), key.blind_index("a"));
        assert_ne!(key.blind_index("a"), key.blind_index("b"));
        assert_ne!(key.blind_index("a"), other.blind_index("a"));
    }

    #[test]
    fn a_bound_box_opens_only_for_its_sender() {
        let anhui = SealKeyPair::generate();
        let sealed = anhui.public_key().seal_from(b"dossier", "320000");
        assert_eq!(anhui.open_from(&sealed, "320000").unwrap(), b"dossier");
        assert_eq!(
            anhui.open_from(&sealed, "410000"),
            Err(KeyError::WrongSender { expected: "410000".to_owned(), found: "320000".to_owned() })
        );
        let unbound = anhui.public_key().seal(b"dossier");
        assert!(matches!(anhui.open_from(&unbound, "320000"), Err(KeyError::WrongSender { .. })));
    }

    #[test]
    fn exchange_signatures_verify_only_with_the_signers_key() {
        let jiangsu = ExchangeSigningKey::generate();
        let henan = ExchangeSigningKey::generate();
        let published = ExchangeVerifyingKey::from_base64(&jiangsu.verifying_key().to_base64()).unwrap();
        let signature = jiangsu.sign_base64(b"envelope");
        assert_eq!(published.verify_base64(b"envelope", &signature), Ok(()));
        assert_eq!(published.verify_base64(b"envelopf", &signature), Err(KeyError::BadSignature));
        assert_eq!(published.verify_base64(b"envelope", &henan.sign_base64(b"envelope")), Err(KeyError::BadSignature));
        assert_eq!(published.verify_base64(b"envelope", "not base64"), Err(KeyError::BadSignature));
        let restored = ExchangeSigningKey::from_base64(&jiangsu.secret_base64()).unwrap();
        assert_eq!(published.verify_base64(b"envelope", &restored.sign_base64(b"envelope")), Ok(()));
    }

    #[test]
    fn only_the_destination_opens_a_sealed_dossier() {
        let anhui = SealKeyPair::generate();
        let jiangsu = SealKeyPair::generate();
        let published = SealPublicKey::from_base64(&anhui.public_key().to_base64()).unwrap();
        let sealed = published.seal(b"dossier");
        assert_eq!(anhui.open(&sealed).unwrap(), b"dossier");
        assert_eq!(jiangsu.open(&sealed), Err(KeyError::Undecryptable));
        let restored = SealKeyPair::from_base64(&anhui.secret_base64()).unwrap();
        assert_eq!(restored.open(&sealed).unwrap(), b"dossier");
    }
}
