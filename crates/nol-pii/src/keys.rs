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
}

/// What a sender-bound sealed box starts with inside: a marker and the sealing province's code.
const BOUND_MARKER: &[u8; 5] = b"NOLS1";
const PROVINCE_LEN: usize = 6;

const CIPHERTEXT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A province's data key: encrypts personal fields at rest (AES-256-GCM) and keys the blind index
/// (HMAC-SHA-256) that finds a record by resident ID without decrypting. The two sub-keys are
/// derived with HKDF so one secret is configured, and neither use weakens the other.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    index_key: [u8; 32],
}

impl DataKey {
    pub fn from_bytes(secret: &[u8; 32]) -> DataKey {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"not-one-less"), secret);
        let mut aead_key = [0u8; 32];
        let mut index_key = [0u8; 32];
        // Output lengths are far below HKDF's limit, so expand cannot fail.
        hkdf.expand(b"pii aead v1", &mut aead_key).unwrap_or_default();
        hkdf.expand(b"pii blind index v1", &mut index_key).unwrap_or_default();
        DataKey { cipher: Aes256Gcm::new(&aead_key.into()), index_key }
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
