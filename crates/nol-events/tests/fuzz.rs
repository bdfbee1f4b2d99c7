//! Fuzzing the event decoders (proptest, stable Rust): any bytes from a stream decode to an
//! envelope and a payload or to an error naming why, never a panic.

use nol_events::{EventEnvelope, HANDOFF_REQUESTED, PUPIL_REGISTERED};
use nol_proto::v1::{HandoffRequested, PupilRegistered};
use proptest::prelude::*;

proptest! {
    // No regression files; `PROPTEST_CASES` runs a longer campaign (256 cases per property here).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_an_envelope(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = nol_events::decode_envelope(&bytes);
    }

    #[test]
    fn any_payload_in_a_well_formed_envelope(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        event_type in prop_oneof![Just("transfer.handoff_requested".to_owned()), Just("registry.pupil_registered".to_owned()), "\\PC{0,40}"],
        version in 0u32..4,
    ) {
        let envelope = EventEnvelope { event_type, schema_version: version, payload, ..Default::default() };
        let _ = nol_events::decode_payload::<HandoffRequested>(&envelope, HANDOFF_REQUESTED);
        let _ = nol_events::decode_payload::<PupilRegistered>(&envelope, PUPIL_REGISTERED);
    }
}
