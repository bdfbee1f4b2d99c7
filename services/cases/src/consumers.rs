//! What the case service does with the province's events: the transfer service's hand-off steps
//! (through the case ledger), and the registry's cross-check suspects (into the suspected-dropout
//! ledger).

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    ASSISTANCE_ANSWERED, ASSISTANCE_ASKED, ASSISTANCE_CLOSED, ASSISTANCE_REPORTED, EventEnvelope, HANDOFF_ACCEPTED,
    HANDOFF_ARRIVED, HANDOFF_CANCELLED, HANDOFF_COMPLETED, HANDOFF_OVERDUE, HANDOFF_REJECTED, HANDOFF_REQUESTED,
    PUPIL_SUSPECTED_OUT_OF_SCHOOL, REPORT_OVERDUE, SubjectScheme, TRANSFER_IN_REQUESTED, decode_payload, region_field,
    uuid_field,
};
use nol_messages::Supervision as Says;
use nol_pii::SealKeyPair;
use nol_proto::v1::{
    HandoffAccepted, HandoffArrived, HandoffCancelled, HandoffCompleted, HandoffOverdue, HandoffRejected,
    HandoffRequested, ReportOverdue, TransferInRequested,
};
use nol_region::RegionCode;
use sqlx::PgConnection;

use crate::case::ledger::{self, HandoffStep, StepError};
use crate::case::service::assistance::Step as AssistanceStep;
use crate::case::service::handoff::HandoffEvents;

/// The subjects the case service consumes in `province`.
pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    [
        HANDOFF_REQUESTED,
        HANDOFF_ACCEPTED,
        HANDOFF_COMPLETED,
        HANDOFF_OVERDUE,
        HANDOFF_ARRIVED,
        HANDOFF_REJECTED,
        HANDOFF_CANCELLED,
        TRANSFER_IN_REQUESTED,
        PUPIL_SUSPECTED_OUT_OF_SCHOOL,
        REPORT_OVERDUE,
        ASSISTANCE_ASKED,
        ASSISTANCE_ANSWERED,
        ASSISTANCE_REPORTED,
        ASSISTANCE_CLOSED,
    ]
    .into_iter()
    .map(|event_type| scheme.local_filter(province, event_type))
    .collect()
}

pub struct CaseEvents {
    pub scheme: SubjectScheme,
    pub data_key: nol_runtime::keys::DataKeys,
    /// Opens the registry's `suspected_out_of_school` (the event keyring).
    pub event_keys: nol_runtime::keys::SharedKeyring,
    pub seal: SealKeyPair,
    pub clock: nol_runtime::clock::Clock,
}

impl EventHandler for CaseEvents {
    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let step = if HANDOFF_REQUESTED.matches(&envelope.event_type) {
            let event: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
            Some((HandoffStep::Begin, event.case_id, event.handoff_id, event.destination_region_code))
        } else if HANDOFF_COMPLETED.matches(&envelope.event_type) {
            let event: HandoffCompleted = decode_payload(envelope, HANDOFF_COMPLETED)?;
            Some((HandoffStep::Complete, event.case_id, event.handoff_id, event.destination_region_code))
        } else {
            None
        };
        if let Some((step, case_id, handoff_id, destination)) = step {
            let case_id = uuid_field(envelope, "case_id", &case_id)?;
            let handoff_id = uuid_field(envelope, "handoff_id", &handoff_id)?;
            let destination = region_field(envelope, "destination_region_code", &destination)?;
            let step_of = ledger::StepOf { step, case_id, handoff_id, destination };
            let today = self.clock.today();
            let result = ledger::apply_handoff_step(conn, &self.scheme, step_of, &envelope.actor, today).await;
            step_result(result)
        } else if HANDOFF_ACCEPTED.matches(&envelope.event_type) {
            let event: HandoffAccepted = decode_payload(envelope, HANDOFF_ACCEPTED)?;
            self.handoffs().take_in(conn, envelope, event).await
        } else if HANDOFF_ARRIVED.matches(&envelope.event_type) {
            let event: HandoffArrived = decode_payload(envelope, HANDOFF_ARRIVED)?;
            crate::supervision::service::watch_arrived(conn, &self.scheme, &event, self.clock.today()).await
        } else if HANDOFF_REJECTED.matches(&envelope.event_type) {
            let event: HandoffRejected = decode_payload(envelope, HANDOFF_REJECTED)?;
            let detail = serde_json::json!({
                "handoff_id": event.handoff_id, "destination_region_code": event.destination_region_code,
                "reject_reason": event.reason, "note": event.note, "rejected_by": event.rejected_by,
                "linked_case_id": event.linked_case_id,
            });
            self.handoffs()
                .release(conn, envelope, (&event.handoff_id, &event.case_id), "handoff_rejected", detail)
                .await
        } else if HANDOFF_CANCELLED.matches(&envelope.event_type) {
            let event: HandoffCancelled = decode_payload(envelope, HANDOFF_CANCELLED)?;
            let detail = serde_json::json!({
                "handoff_id": event.handoff_id, "destination_region_code": event.destination_region_code,
                "reason": event.reason, "cancelled_by": event.cancelled_by,
            });
            self.handoffs()
                .release(conn, envelope, (&event.handoff_id, &event.case_id), "handoff_cancelled", detail)
                .await
        } else if TRANSFER_IN_REQUESTED.matches(&envelope.event_type) {
            let event: TransferInRequested = decode_payload(envelope, TRANSFER_IN_REQUESTED)?;
            self.handoffs().match_transfer_in(conn, event).await
        } else if HANDOFF_OVERDUE.matches(&envelope.event_type) {
            let overdue: HandoffOverdue = decode_payload(envelope, HANDOFF_OVERDUE)?;
            let case_id = uuid_field(envelope, "case_id", &overdue.case_id)?;
            let supervisor = region_field(envelope, "escalated_to_region_code", &overdue.escalated_to_region_code)?;
            let reason = Says::HandoffOverdue {
                handoff_id: overdue.handoff_id.clone(),
                destination: overdue.destination_region_code.clone(),
                origin: overdue.origin_region_code.clone(),
            }
            .en();
            let detail = serde_json::json!({ "region_code": supervisor.as_str(), "reason": reason });
            let noted = ledger::note_supervision(
                conn,
                case_id,
                Some((&supervisor, &reason)),
                &envelope.actor,
                "supervision_raised",
                detail,
            )
            .await?;
            if !noted {
                return Err(HandlerError::Permanent(format!("case {case_id} does not exist here")));
            }
            tracing::warn!(case_id = %case_id, supervisor = %supervisor, "case escalated for supervision");
            Ok(())
        } else if let Some(step) = assistance_step(envelope)? {
            crate::case::service::assistance::apply(conn, &self.scheme, envelope, step).await
        } else if REPORT_OVERDUE.matches(&envelope.event_type) {
            let overdue: ReportOverdue = decode_payload(envelope, REPORT_OVERDUE)?;
            crate::supervision::service::raise_for_late_report(conn, &self.scheme, &overdue, self.clock.today()).await
        } else if PUPIL_SUSPECTED_OUT_OF_SCHOOL.matches(&envelope.event_type) {
            crate::suspects::service::take_in_cross_check(
                conn,
                &self.scheme,
                &self.data_key,
                &self.event_keys,
                self.clock.today(),
                envelope,
            )
            .await
        } else {
            Err(HandlerError::Permanent(format!("the case service does not handle {}", envelope.event_type)))
        }
    }
}

impl CaseEvents {
    fn handoffs(&self) -> HandoffEvents<'_> {
        HandoffEvents { scheme: &self.scheme, data_key: &self.data_key, seal: &self.seal, today: self.clock.today() }
    }
}

/// A step of a request for help on one of this province's cases, told by its transfer service.
fn assistance_step(envelope: &EventEnvelope) -> Result<Option<AssistanceStep>, HandlerError> {
    let kind = envelope.event_type.as_str();
    Ok(Some(if ASSISTANCE_ASKED.matches(kind) {
        AssistanceStep::Asked(decode_payload(envelope, ASSISTANCE_ASKED)?)
    } else if ASSISTANCE_ANSWERED.matches(kind) {
        AssistanceStep::Answered(decode_payload(envelope, ASSISTANCE_ANSWERED)?)
    } else if ASSISTANCE_REPORTED.matches(kind) {
        AssistanceStep::Reported(decode_payload(envelope, ASSISTANCE_REPORTED)?)
    } else if ASSISTANCE_CLOSED.matches(kind) {
        AssistanceStep::Closed(decode_payload(envelope, ASSISTANCE_CLOSED)?)
    } else {
        return Ok(None);
    }))
}

fn step_result(result: Result<(), StepError>) -> Result<(), HandlerError> {
    match result {
        Ok(()) => Ok(()),
        Err(StepError::Database(error)) => Err(error.into()),
        Err(rule @ (StepError::NoSuchCase(_) | StepError::Rule(_))) => Err(HandlerError::Permanent(rule.to_string())),
    }
}
