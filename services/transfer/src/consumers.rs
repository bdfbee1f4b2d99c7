//! What the transfer service does with messages addressed to its province: requests from other
//! regions (destination side), and receipts and acceptances of our own requests (origin side).

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    EventEnvelope, HANDOFF_ACCEPTED, HANDOFF_RECEIVED, HANDOFF_REQUESTED, SubjectScheme, decode_payload, occurred_at,
    region_field, uuid_field,
};
use nol_pii::{ResidentId, SealKeyPair};
use nol_proto::v1::{HandoffAccepted, HandoffDossier, HandoffReceived, HandoffRequested};
use nol_region::RegionCode;
use prost::Message;
use sqlx::PgConnection;

use crate::domain::{Direction, HandedChild, NewHandoff, State};
use crate::handoffs;

/// The cross-province subjects the transfer service consumes in `province`.
pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    [HANDOFF_REQUESTED, HANDOFF_RECEIVED, HANDOFF_ACCEPTED]
        .into_iter()
        .map(|event_type| scheme.cross_filter(province, event_type))
        .collect()
}

pub struct TransferEvents {
    pub scheme: SubjectScheme,
    pub seal: SealKeyPair,
    pub province: RegionCode,
}

impl EventHandler for TransferEvents {
    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        if HANDOFF_REQUESTED.matches(&envelope.event_type) {
            self.receive(conn, envelope).await
        } else if HANDOFF_RECEIVED.matches(&envelope.event_type) {
            let receipt: HandoffReceived = decode_payload(envelope, HANDOFF_RECEIVED)?;
            let id = uuid_field(envelope, "handoff_id", &receipt.handoff_id)?;
            Ok(handoffs::record_receipt(conn, id).await?)
        } else if HANDOFF_ACCEPTED.matches(&envelope.event_type) {
            let accepted: HandoffAccepted = decode_payload(envelope, HANDOFF_ACCEPTED)?;
            let id = uuid_field(envelope, "handoff_id", &accepted.handoff_id)?;
            Ok(handoffs::record_acceptance(conn, &self.scheme, id, &accepted.accepted_by).await?)
        } else {
            Err(HandlerError::Permanent(format!("the transfer service does not handle {}", envelope.event_type)))
        }
    }

    async fn handle_duplicate(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        self.answer_again(conn, envelope).await
    }
}

impl TransferEvents {
    /// A request seen before (the origin re-sent it for want of an answer): answer again.
    async fn answer_again(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        if !HANDOFF_REQUESTED.matches(&envelope.event_type) {
            return Ok(());
        }
        let request: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
        let id = uuid_field(envelope, "handoff_id", &request.handoff_id)?;
        Ok(handoffs::answer(conn, &self.scheme, id).await?)
    }

    async fn receive(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let request: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
        let id = uuid_field(envelope, "handoff_id", &request.handoff_id)?;
        let case_id = uuid_field(envelope, "case_id", &request.case_id)?;
        let origin = region_field(envelope, "origin_region_code", &request.origin_region_code)?;
        let destination = region_field(envelope, "destination_region_code", &request.destination_region_code)?;
        if destination.province() != self.province {
            return Err(HandlerError::Permanent(format!(
                "hand-off {id} is addressed to {destination}, outside this province"
            )));
        }
        let opened = self
            .seal
            .open(&request.sealed_dossier)
            .map_err(|error| HandlerError::Permanent(format!("hand-off {id} dossier: {error}")))?;
        let dossier = HandoffDossier::decode(opened.as_slice())
            .map_err(|error| HandlerError::Permanent(format!("hand-off {id} dossier does not decode: {error}")))?;
        let child = dossier.child.unwrap_or_default();
        let resident_id = ResidentId::parse(&child.resident_id)
            .map_err(|error| HandlerError::Permanent(format!("hand-off {id} dossier: {error}")))?;
        let handoff = NewHandoff {
            id,
            direction: Direction::Incoming,
            state: State::Delivered,
            case_id,
            origin,
            destination,
            reason: request.reason,
            child: HandedChild {
                full_name: child.full_name,
                resident_id_masked: resident_id.masked(),
                sex: crate::proto::sex_from_proto(child.sex),
                birth_date: resident_id.birth_date(),
                hukou_region: child.hukou_region_code,
            },
            sealed_dossier: Some(request.sealed_dossier),
            trace_context: envelope.trace_context.clone(),
            requested_by: request.requested_by,
            requested_at: occurred_at(envelope),
        };
        Ok(handoffs::receive(conn, &self.scheme, &handoff).await?)
    }
}
