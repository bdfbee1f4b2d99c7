//! Fuzzing what parses or opens untrusted text and bytes (proptest, stable Rust): resident ID
//! numbers, keys, sealed boxes and exchange signatures end in a value or an error, never a panic;
//! a number that parses masks without its birth date digits and prints back as given.

use nol_pii::{DataKey, ExchangeVerifyingKey, Keyring, ResidentId, SealKeyPair, SealPublicKey};
use proptest::prelude::*;

proptest! {
    // No regression files; `PROPTEST_CASES` runs a longer campaign (256 cases per property here).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_resident_id(text in "\\PC{0,24}") {
        let _ = ResidentId::parse(&text);
    }

    #[test]
    fn id_shaped_text(text in "[0-9]{17}[0-9Xx]") {
        if let Ok(id) = ResidentId::parse(&text) {
            prop_assert_eq!(id.expose(), text.to_uppercase());
            prop_assert!(!id.masked().contains(&text[6..14]));
        }
    }

    #[test]
    fn any_text_as_a_key(text in "\\PC{0,64}") {
        let _ = DataKey::from_base64(&text);
        let _ = SealKeyPair::from_base64(&text);
        let _ = SealPublicKey::from_base64(&text);
        let _ = ExchangeVerifyingKey::from_base64(&text);
    }

    #[test]
    fn any_bytes_as_a_sealed_box_or_ciphertext(bytes in proptest::collection::vec(any::<u8>(), 0..512), signature in "\\PC{0,100}") {
        let pair = SealKeyPair::generate();
        let _ = pair.open(&bytes);
        let _ = pair.open_from(&bytes, "320000");
        let key = DataKey::from_base64(&DataKey::generate_base64()).unwrap();
        let _ = key.decrypt(&bytes, "resident_id");
        let secret = Keyring::secret_from_base64(&DataKey::generate_base64()).unwrap();
        let ring = Keyring::new(&[(0, secret), (1, secret)].into()).unwrap();
        let _ = Keyring::key_id_of(&bytes);
        let _ = ring.decrypt(&bytes, "resident_id", b"row");
        let verifying = nol_pii::ExchangeSigningKey::generate().verifying_key();
        let _ = verifying.verify_base64(&bytes, &signature);
    }
}
