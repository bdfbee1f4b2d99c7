//! What travels on the backbone, and under which subject.
//!
//! An [`EventEnvelope`] carries one payload message of a known [`EventType`] with its id (UUIDv7,
//! also the `Nats-Msg-Id`), schema version, source region, aggregate id and sequence, time and
//! trace context. The [`SubjectScheme`] puts the province and region codes into every subject, so
//! each province's stream, its consumers' filters and the permissions on the link between
//! provinces can all be cut by subject.
#![forbid(unsafe_code)]

mod catalogue;
mod subjects;

use std::collections::HashMap;

pub use catalogue::*;
use chrono::{DateTime, Utc};
pub use nol_proto::v1::EventEnvelope;
use nol_region::RegionCode;
use prost::Message;
pub use subjects::{LinkPermissions, SubjectScheme, SubjectSchemeError};
use uuid::Uuid;

/// Header names set on every published message.
pub mod headers {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EVENT_TYPE: &str = "Nol-Event-Type";
    pub const SCHEMA_VERSION: &str = "Nol-Schema-Version";
}

/// A kind of event: the producing service, its name, and the payload schema version produced now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    pub service: &'static str,
    pub name: &'static str,
    pub version: u32,
}

impl EventType {
    /// `service.name`, as in the envelope's `event_type`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.service, self.name)
    }

    pub fn matches(&self, qualified: &str) -> bool {
        qualified.split_once('.') == Some((self.service, self.name))
    }
}

/// The parts of an envelope the producer decides; the rest is filled in by [`envelope`].
pub struct EventHeader<'a> {
    pub event_type: EventType,
    pub source_region: RegionCode,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub aggregate_sequence: u64,
    pub actor: &'a str,
}

/// Wraps a payload into a new envelope with a fresh UUIDv7.
pub fn envelope<P: Message>(
    header: EventHeader<'_>,
    payload: &P,
    occurred_at: DateTime<Utc>,
    trace_context: HashMap<String, String>,
) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: header.event_type.qualified(),
        schema_version: header.event_type.version,
        source_region_code: header.source_region.to_string(),
        aggregate_type: header.aggregate_type.to_owned(),
        aggregate_id: header.aggregate_id.to_owned(),
        aggregate_sequence: header.aggregate_sequence,
        occurred_at: Some(prost_types::Timestamp {
            seconds: occurred_at.timestamp(),
            nanos: occurred_at.timestamp_subsec_nanos() as i32,
        }),
        trace_context,
        payload: payload.encode_to_vec(),
        actor: header.actor.to_owned(),
    }
}

/// Why a message cannot be processed. All of these are permanent: retrying will not help, so the
/// message is parked as a dead letter with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndecodableEvent {
    #[error("the message is not an event envelope: {0}")]
    NotAnEnvelope(String),
    #[error("expected event type {expected}, got {actual}")]
    WrongType { expected: String, actual: String },
    #[error("{event_type} schema version {version} is newer than this consumer knows ({known})")]
    UnknownVersion { event_type: String, version: u32, known: u32 },
    #[error("the {event_type} payload does not decode: {reason}")]
    BadPayload { event_type: String, reason: String },
    #[error("field {field} of {event_type}: {reason}")]
    BadField { event_type: String, field: &'static str, reason: String },
}

/// Decodes a message body into an envelope.
pub fn decode_envelope(body: &[u8]) -> Result<EventEnvelope, UndecodableEvent> {
    let envelope = EventEnvelope::decode(body).map_err(|e| UndecodableEvent::NotAnEnvelope(e.to_string()))?;
    if Uuid::parse_str(&envelope.event_id).is_err() {
        return Err(UndecodableEvent::NotAnEnvelope("event_id is not a UUID".to_owned()));
    }
    Ok(envelope)
}

/// Decodes the payload of an envelope that should be of `expected` type, refusing versions newer
/// than the one this build produces.
pub fn decode_payload<P: Message + Default>(
    envelope: &EventEnvelope,
    expected: EventType,
) -> Result<P, UndecodableEvent> {
    if !expected.matches(&envelope.event_type) {
        return Err(UndecodableEvent::WrongType {
            expected: expected.qualified(),
            actual: envelope.event_type.clone(),
        });
    }
    if envelope.schema_version == 0 || envelope.schema_version > expected.version {
        return Err(UndecodableEvent::UnknownVersion {
            event_type: envelope.event_type.clone(),
            version: envelope.schema_version,
            known: expected.version,
        });
    }
    P::decode(envelope.payload.as_slice())
        .map_err(|e| UndecodableEvent::BadPayload { event_type: envelope.event_type.clone(), reason: e.to_string() })
}

/// Parses a region code carried in a payload field, as a permanent error when it is not one.
pub fn region_field(
    envelope: &EventEnvelope,
    field: &'static str,
    value: &str,
) -> Result<RegionCode, UndecodableEvent> {
    RegionCode::parse(value).map_err(|e| UndecodableEvent::BadField {
        event_type: envelope.event_type.clone(),
        field,
        reason: e.to_string(),
    })
}

/// Parses a UUID carried in a payload field, as a permanent error when it is not one.
pub fn uuid_field(envelope: &EventEnvelope, field: &'static str, value: &str) -> Result<Uuid, UndecodableEvent> {
    Uuid::parse_str(value).map_err(|e| UndecodableEvent::BadField {
        event_type: envelope.event_type.clone(),
        field,
        reason: e.to_string(),
    })
}

/// The time an envelope says its change happened.
pub fn occurred_at(envelope: &EventEnvelope) -> DateTime<Utc> {
    envelope
        .occurred_at
        .as_ref()
        .and_then(|time| DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32))
        .unwrap_or_else(Utc::now)
}

/// The AES-GCM context under which an event carries a resident ID number, e.g.
/// `SuspectedOutOfSchool.resident_id_sealed`: encrypted under the registry → cases event keyring
/// (`nol_runtime::keys`, `event/`), bound to this context and the check item's id; an event of
/// before keyrings was encrypted under the province's `data.key` (v1, key 0 of that keyring).
pub const RESIDENT_ID_EVENT_CONTEXT: &str = "event.resident_id";

#[cfg(test)]
mod tests {
    use super::*;
    use nol_proto::v1::HandoffReceived;

    fn sample() -> EventEnvelope {
        let payload = HandoffReceived {
            handoff_id: Uuid::now_v7().to_string(),
            origin_region_code: "320102".into(),
            destination_region_code: "341221".into(),
        };
        envelope(
            EventHeader {
                event_type: HANDOFF_RECEIVED,
                source_region: RegionCode::parse("341221").unwrap(),
                aggregate_type: "handoff",
                aggregate_id: &payload.handoff_id,
                aggregate_sequence: 2,
                actor: "system",
            },
            &payload,
            Utc::now(),
            HashMap::new(),
        )
    }

    #[test]
    fn an_envelope_round_trips() {
        let original = sample();
        let decoded = decode_envelope(&original.encode_to_vec()).unwrap();
        assert_eq!(decoded, original);
        let payload: HandoffReceived = decode_payload(&decoded, HANDOFF_RECEIVED).unwrap();
        assert_eq!(payload.destination_region_code, "341221");
        assert_eq!(Uuid::parse_str(&decoded.event_id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn poison_is_named_for_what_it_is() {
        assert!(matches!(decode_envelope(b"\xff\xff\xff"), Err(UndecodableEvent::NotAnEnvelope(_))));
        let mut newer = sample();
        newer.schema_version = 99;
        assert!(matches!(
            decode_payload::<HandoffReceived>(&newer, HANDOFF_RECEIVED),
            Err(UndecodableEvent::UnknownVersion { version: 99, .. })
        ));
        assert!(matches!(
            decode_payload::<HandoffReceived>(&sample(), HANDOFF_ACCEPTED),
            Err(UndecodableEvent::WrongType { .. })
        ));
    }
}
