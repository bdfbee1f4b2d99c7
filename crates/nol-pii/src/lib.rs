//! Minors' personal data (未成年人个人信息).
//!
//! A resident ID number (居民身份证号) is validated once, at the edge, into a [`ResidentId`] whose
//! `Debug` and `Display` are masked, so it cannot reach a log line by accident. At rest it is
//! encrypted with a key that lives outside the database ([`DataKey`]) and found by a keyed blind
//! index; when a case crosses to another province its dossier is sealed to that province's public
//! key ([`SealKeyPair`]), so events and NATS streams never carry it in clear.
#![forbid(unsafe_code)]

mod keys;
mod resident_id;

pub use keys::{
    DataKey, ExchangeSigningKey, ExchangeVerifyingKey, IndexKey, KeyError, KeyId, Keyring, LEGACY_KEY_ID, SealKeyPair,
    SealPublicKey,
};
pub use resident_id::{ResidentId, ResidentIdError, Sex, mask_last_four};
