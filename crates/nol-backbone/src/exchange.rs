//! Signed cross-province messages (the national exchange).
//!
//! Every message on a cross-province subject (`<prefix>.<dest>.xp.<origin>.…`) carries two
//! headers: `Nol-Signer`, the sending province's code, and `Nol-Signature`, its Ed25519
//! signature over [`signing_input`] — a domain tag, the subject and the envelope's bytes, so a
//! signature cannot be moved to another subject (another destination) or another payload. The
//! relay signs; the consumer verifies before anything is applied:
//!
//! - the signer is the origin the subject names, and the province of the envelope's
//!   `source_region_code`;
//! - the signer is a configured peer (its key under `peers/`);
//! - the signature verifies with that key.
//!
//! A message that fails is parked as a dead letter with the reason (`exchange: …`), counted
//! (`nol_exchange_refused`) and logged as an alarm; nothing of it is applied. The hub's leaf
//! permissions already keep a province from publishing as another; the signature also holds
//! against anyone else who can publish into a province's server (the hub's operator, a
//! compromised service), and lets the receiver prove who sent what.

use std::sync::Arc;

use nol_events::EventEnvelope;
use nol_pii::{ExchangeSigningKey, ExchangeVerifyingKey};
use nol_region::RegionCode;

/// Header naming the signing province.
pub const SIGNER_HEADER: &str = "Nol-Signer";
/// Header carrying the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "Nol-Signature";

const DOMAIN_TAG: &[u8] = b"nol-exchange-v1";

/// Where the public keys of peer provinces come from (the deployment's `peers/` folder).
pub trait PeerDirectory: Send + Sync + 'static {
    fn verifying_key(&self, province: &RegionCode) -> Option<ExchangeVerifyingKey>;
}

/// The origin and destination provinces a cross-province subject names, or `None` for any other
/// subject.
pub fn cross_province(subject: &str) -> Option<(String, String)> {
    let mut tokens = subject.split('.');
    let _prefix = tokens.next()?;
    let destination = tokens.next()?;
    if tokens.next()? != "xp" {
        return None;
    }
    let origin = tokens.next()?;
    Some((origin.to_owned(), destination.to_owned()))
}

/// The bytes a signature covers.
pub fn signing_input(subject: &str, envelope: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN_TAG.len() + subject.len() + envelope.len() + 2);
    input.extend_from_slice(DOMAIN_TAG);
    input.push(0);
    input.extend_from_slice(subject.as_bytes());
    input.push(0);
    input.extend_from_slice(envelope);
    input
}

/// Why a cross-province message was refused. The text is the dead letter's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeRefusal {
    #[error("exchange: unsigned message from province {origin}")]
    Unsigned { origin: String },
    #[error("exchange: signed by province {signer}, but the subject names province {origin} as its origin")]
    SignerNotOrigin { signer: String, origin: String },
    #[error("exchange: province {origin} is not configured here (no key under peers/)")]
    UnknownProvince { origin: String },
    #[error("exchange: the signature of province {origin} does not verify")]
    BadSignature { origin: String },
    #[error("exchange: the envelope names source region {source_region}, outside the signing province {origin}")]
    SourceNotSigner { source_region: String, origin: String },
    #[error("exchange: this service takes no cross-province messages (it has no exchange keys)")]
    NotConfigured,
}

/// A province's side of the exchange: its signing key and its peers' keys.
#[derive(Clone)]
pub struct Exchange {
    province: RegionCode,
    key: ExchangeSigningKey,
    peers: Arc<dyn PeerDirectory>,
}

impl Exchange {
    pub fn new(province: RegionCode, key: ExchangeSigningKey, peers: Arc<dyn PeerDirectory>) -> Exchange {
        Exchange { province: province.province(), key, peers }
    }

    pub fn province(&self) -> RegionCode {
        self.province
    }

    /// The headers to send with `envelope` on `subject`: a signature for a cross-province
    /// subject this province originates, nothing otherwise.
    pub fn sign(&self, subject: &str, envelope: &[u8]) -> Option<[(&'static str, String); 2]> {
        let (origin, _) = cross_province(subject)?;
        if origin != self.province.as_str() {
            return None;
        }
        let signature = self.key.sign_base64(&signing_input(subject, envelope));
        Some([(SIGNER_HEADER, self.province.to_string()), (SIGNATURE_HEADER, signature)])
    }

    /// Checks a received message; `Ok` for any subject that is not cross-province.
    pub fn verify(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
        envelope: Option<&EventEnvelope>,
    ) -> Result<(), ExchangeRefusal> {
        verify_with(&*self.peers, subject, headers, payload, envelope)
    }
}

/// [`Exchange::verify`] against any peer directory (a consumer without keys passes `None`).
pub fn verify_with(
    peers: &dyn PeerDirectory,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
    envelope: Option<&EventEnvelope>,
) -> Result<(), ExchangeRefusal> {
    let Some((origin, _)) = cross_province(subject) else {
        return Ok(());
    };
    let header = |name: &str| headers.and_then(|headers| headers.get(name)).map(|value| value.as_str().to_owned());
    let (Some(signer), Some(signature)) = (header(SIGNER_HEADER), header(SIGNATURE_HEADER)) else {
        return Err(ExchangeRefusal::Unsigned { origin });
    };
    if signer != origin {
        return Err(ExchangeRefusal::SignerNotOrigin { signer, origin });
    }
    let province = RegionCode::parse(&origin)
        .ok()
        .filter(|code| code.province() == *code)
        .ok_or_else(|| ExchangeRefusal::UnknownProvince { origin: origin.clone() })?;
    let key =
        peers.verifying_key(&province).ok_or_else(|| ExchangeRefusal::UnknownProvince { origin: origin.clone() })?;
    key.verify_base64(&signing_input(subject, payload), &signature)
        .map_err(|_| ExchangeRefusal::BadSignature { origin: origin.clone() })?;
    if let Some(envelope) = envelope {
        let source_province = RegionCode::parse(&envelope.source_region_code).ok().map(|code| code.province());
        if source_province != Some(province) {
            return Err(ExchangeRefusal::SourceNotSigner {
                source_region: envelope.source_region_code.clone(),
                origin,
            });
        }
    }
    Ok(())
}

/// Raises the alarm for a refused message: an error-level log line operators alert on.
pub fn alarm(consumer: &str, subject: &str, refusal: &ExchangeRefusal) {
    tracing::error!(
        alarm = "exchange_refused",
        consumer = %consumer,
        subject = %subject,
        reason = %refusal,
        "ALARM: a cross-province message was refused and parked as a dead letter"
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Keys(HashMap<RegionCode, ExchangeVerifyingKey>);
    impl PeerDirectory for Keys {
        fn verifying_key(&self, province: &RegionCode) -> Option<ExchangeVerifyingKey> {
            self.0.get(province).cloned()
        }
    }

    fn code(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    #[test]
    fn only_the_origin_named_by_the_subject_can_sign() {
        let jiangsu_key = ExchangeSigningKey::generate();
        let henan_key = ExchangeSigningKey::generate();
        let peers: Arc<dyn PeerDirectory> = Arc::new(Keys(HashMap::from([
            (code("320000"), jiangsu_key.verifying_key()),
            (code("410000"), henan_key.verifying_key()),
        ])));
        let jiangsu = Exchange::new(code("320102"), jiangsu_key, peers.clone());
        let henan = Exchange::new(code("410000"), henan_key, peers.clone());
        let subject = "nol.340000.xp.320000.transfer.handoff_requested.341221";
        let envelope = EventEnvelope { source_region_code: "320102".to_owned(), ..Default::default() };
        let payload = b"envelope bytes";
        let headers = |signed: Option<[(&'static str, String); 2]>| {
            let mut map = async_nats::HeaderMap::new();
            for (name, value) in signed.into_iter().flatten() {
                map.insert(name, value.as_str());
            }
            map
        };
        let good = headers(jiangsu.sign(subject, payload));
        assert_eq!(jiangsu.verify(subject, Some(&good), payload, Some(&envelope)), Ok(()));
        // Local subjects are neither signed nor checked.
        assert!(jiangsu.sign("nol.320000.evt.cases.case_opened.320102", payload).is_none());
        assert_eq!(jiangsu.verify("nol.320000.evt.cases.case_opened.320102", None, payload, None), Ok(()));
        // Henan does not sign Jiangsu's subjects, and a signature of its own is refused.
        assert!(henan.sign(subject, payload).is_none());
        let mut forged = async_nats::HeaderMap::new();
        forged.insert(SIGNER_HEADER, "320000");
        forged.insert(
            SIGNATURE_HEADER,
            ExchangeSigningKey::generate().sign_base64(&signing_input(subject, payload)).as_str(),
        );
        assert_eq!(
            jiangsu.verify(subject, Some(&forged), payload, Some(&envelope)),
            Err(ExchangeRefusal::BadSignature { origin: "320000".to_owned() })
        );
        let henan_subject = "nol.340000.xp.410000.transfer.handoff_requested.341221";
        let mut as_jiangsu = headers(henan.sign(henan_subject, payload));
        as_jiangsu.insert(SIGNER_HEADER, "320000");
        assert!(matches!(
            jiangsu.verify(henan_subject, Some(&as_jiangsu), payload, None),
            Err(ExchangeRefusal::SignerNotOrigin { .. })
        ));
        // Moved to another subject, or another payload: refused.
        let moved = "nol.410000.xp.320000.transfer.handoff_requested.410102";
        assert!(matches!(jiangsu.verify(moved, Some(&good), payload, None), Err(ExchangeRefusal::BadSignature { .. })));
        assert!(matches!(
            jiangsu.verify(subject, Some(&good), b"other", None),
            Err(ExchangeRefusal::BadSignature { .. })
        ));
        assert_eq!(
            jiangsu.verify(subject, None, payload, None),
            Err(ExchangeRefusal::Unsigned { origin: "320000".to_owned() })
        );
        // The envelope must come from the signing province.
        let elsewhere = EventEnvelope { source_region_code: "410102".to_owned(), ..Default::default() };
        assert!(matches!(
            jiangsu.verify(subject, Some(&good), payload, Some(&elsewhere)),
            Err(ExchangeRefusal::SourceNotSigner { .. })
        ));
        // A province with no key here.
        let stranger = Exchange::new(code("450000"), ExchangeSigningKey::generate(), peers);
        let stranger_subject = "nol.340000.xp.450000.transfer.handoff_requested.341221";
        let signed = headers(stranger.sign(stranger_subject, payload));
        assert_eq!(
            jiangsu.verify(stranger_subject, Some(&signed), payload, None),
            Err(ExchangeRefusal::UnknownProvince { origin: "450000".to_owned() })
        );
    }
}
