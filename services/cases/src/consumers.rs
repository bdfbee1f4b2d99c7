//! What the case service does with the province's events: the transfer service's hand-off steps
//! (through the case ledger), and the registry's cross-check suspects (into the suspected-dropout
//! ledger).

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    EventEnvelope, HANDOFF_ACCEPTED, HANDOFF_COMPLETED, HANDOFF_OVERDUE, HANDOFF_REQUESTED,
    PUPIL_SUSPECTED_OUT_OF_SCHOOL, SubjectScheme, decode_payload, region_field, uuid_field,
};
use nol_messages::Supervision as Says;
use nol_pii::{DataKey, ResidentId, SealKeyPair};
use nol_proto::v1::{HandoffAccepted, HandoffCompleted, HandoffDossier, HandoffOverdue, HandoffRequested};
use nol_region::RegionCode;
use prost::Message;
use sqlx::PgConnection;

use crate::case::domain::{Source, check_causes};
use crate::case::ledger::{self, HandoffStep, LedgerError, StepError};
use crate::case::store::{self, NewCase};
use crate::child::ChildRecord;

/// The subjects the case service consumes in `province`.
pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    [HANDOFF_REQUESTED, HANDOFF_ACCEPTED, HANDOFF_COMPLETED, HANDOFF_OVERDUE, PUPIL_SUSPECTED_OUT_OF_SCHOOL]
        .into_iter()
        .map(|event_type| scheme.local_filter(province, event_type))
        .collect()
}

pub struct CaseEvents {
    pub scheme: SubjectScheme,
    pub data_key: DataKey,
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
            let result = ledger::apply_handoff_step(
                conn,
                &self.scheme,
                step,
                case_id,
                handoff_id,
                &destination,
                &envelope.actor,
            )
            .await;
            step_result(result)
        } else if HANDOFF_ACCEPTED.matches(&envelope.event_type) {
            self.take_in(conn, envelope).await
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
        } else if PUPIL_SUSPECTED_OUT_OF_SCHOOL.matches(&envelope.event_type) {
            crate::suspects::service::take_in_cross_check(
                conn,
                &self.scheme,
                &self.data_key,
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
    /// Opens the case here for an accepted incoming hand-off, from the sealed dossier.
    async fn take_in(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let event: HandoffAccepted = decode_payload(envelope, HANDOFF_ACCEPTED)?;
        let handoff_id = uuid_field(envelope, "handoff_id", &event.handoff_id)?;
        let origin_case_id = uuid_field(envelope, "case_id", &event.case_id)?;
        let origin = region_field(envelope, "origin_region_code", &event.origin_region_code)?;
        let destination = region_field(envelope, "destination_region_code", &event.destination_region_code)?;
        if store::taken_in(conn, handoff_id).await? {
            // Already taken in (a redelivery that outlived the inbox): nothing to do.
            return Ok(());
        }
        let opened = self
            .seal
            .open(&event.sealed_dossier)
            .map_err(|error| HandlerError::Permanent(format!("hand-off dossier: {error}")))?;
        let dossier = HandoffDossier::decode(opened.as_slice())
            .map_err(|error| HandlerError::Permanent(format!("hand-off dossier does not decode: {error}")))?;
        let child = dossier.child.ok_or_else(|| HandlerError::Permanent("hand-off dossier has no child".to_owned()))?;
        let resident_id = ResidentId::parse(&child.resident_id)
            .map_err(|error| HandlerError::Permanent(format!("hand-off dossier: {error}")))?;
        let new = NewCase {
            id: uuid::Uuid::now_v7(),
            pupil_id: None,
            child: ChildRecord::new(&self.data_key, &child.full_name, &resident_id, &child.hukou_region_code),
            region: destination,
            causes: check_causes(&dossier.causes).unwrap_or_default(),
            notes: dossier.notes,
            source: Source::Handoff,
            origin_region: Some(origin),
            origin_case_id: Some(origin_case_id),
            handoff_id: Some(handoff_id),
            opened_by: event.accepted_by,
            confirmed_on: self.clock.today(),
            migrant: destination.is_migrant_here(&child.hukou_region_code),
            registered_poor: false,
            disability_grade: 0,
            suspect_id: None,
        };
        match ledger::open(conn, &self.scheme, &new, |_| true).await {
            Ok(case) => {
                tracing::info!(case_id = %case.id, handoff_id = %handoff_id, region = %destination, "case taken in");
                Ok(())
            }
            Err(LedgerError::Refused(refusal)) => {
                Err(HandlerError::Permanent(format!("hand-off {handoff_id}: {refusal}")))
            }
            Err(LedgerError::Database(error)) => Err(error.into()),
        }
    }
}

fn step_result(result: Result<(), StepError>) -> Result<(), HandlerError> {
    match result {
        Ok(()) => Ok(()),
        Err(StepError::Database(error)) => Err(error.into()),
        Err(rule @ (StepError::NoSuchCase(_) | StepError::Rule(_))) => Err(HandlerError::Permanent(rule.to_string())),
    }
}
