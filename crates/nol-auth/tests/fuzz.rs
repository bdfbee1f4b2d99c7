//! Fuzzing token checks (proptest, stable Rust): any `authorization` text ends in a caller or a
//! refusal, never a panic; reading a token's id for revocation never panics either.

use nol_auth::{TokenVerifier, generate_signing_key_pem, token_id};
use proptest::prelude::*;

proptest! {
    // No regression files; `PROPTEST_CASES` runs a longer campaign (256 cases per property here).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_token(text in prop_oneof!["\\PC{0,300}", "[A-Za-z0-9_-]{1,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}"]) {
        let (_, public) = generate_signing_key_pem().unwrap();
        let verifier = TokenVerifier::from_pem(public.as_bytes()).unwrap();
        prop_assert!(verifier.verify(&text).is_err());
        let _ = token_id(&text);
    }
}
