//! The case side of a hand-off (R11): reserving an open case for it (`CaseHandoffService`), and —
//! from the transfer service's events — taking an accepted hand-off's case in, releasing a case
//! whose hand-off was refused or withdrawn, and matching a transfer-in request to a case.

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_backbone::consumer::HandlerError;
use nol_events::{EventEnvelope, SubjectScheme, TRANSFER_IN_MATCHED};
use nol_messages::Case as CaseMsg;
use nol_messages::vocab::Action;
use nol_pii::{ResidentId, SealKeyPair};
use nol_proto::v1::{
    CaseHistoryEntry, HandoffAccepted, HandoffDossier, OriginDossier, ReserveCaseRequest, TakeInHandoffRequest,
    TransferInMatched, TransferInRequested,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::keys::DataKeys;
use nol_runtime::{ServiceError, audit};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{CaseService, CaseView};
use crate::case::domain::file::NewAttempt;
use crate::case::domain::stored::from_wire;
use crate::case::domain::{Case, Source, Transition, check_causes, is_joint};
use crate::case::grpc::{attempt_message, evidence_message, measure_message, officer_message};
use crate::case::ledger::{self, Intake, LedgerError, Reservation};
use crate::case::store::{self, NewCase, TakeInDecided, file as file_store};
use crate::child::{CASE_RESIDENT_ID_CONTEXT, ChildRecord, reveal};

/// The most attempts and history entries a dossier carries.
const DOSSIER_LIMIT: i64 = 500;

impl CaseService {
    /// ReserveCase: the case checked, marked pending for this hand-off and its dossier sealed to
    /// this province's key, in one transaction (R11). A repeat of the same hand-off answers again.
    pub async fn reserve(
        &self,
        caller: &Caller,
        request: ReserveCaseRequest,
    ) -> Result<(CaseView, Vec<u8>), ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::HandCasesOver)?;
        let case_id = parse_uuid("case_id", &request.case_id)?;
        let handoff_id = parse_uuid("handoff_id", &request.handoff_id)?;
        let destination = RegionCode::parse_county(&request.destination_region_code)
            .map_err(|error| ServiceError::invalid("destination_region_code", error))?;
        let new_inflow = Some(request.new_inflow_region_code.trim())
            .filter(|code| !code.is_empty())
            .map(RegionCode::parse_county)
            .transpose()
            .map_err(|error| ServiceError::invalid("new_inflow_region_code", error))?;
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, case_id).await?;
        // Read after the case's lock is held: the dossier is the case as reserved.
        let mut dossier = self.dossier(&mut tx, &case).await?;
        dossier.new_inflow_region_code = new_inflow.map(|region| region.to_string()).unwrap_or_default();
        let sealed = self.seal.public_key().seal(&dossier.encode_to_vec());
        let reservation = Reservation {
            handoff_id,
            destination,
            reason: request.reason.trim(),
            actor: &caller.subject,
            today: self.clock.today(),
            sealed_dossier: &sealed,
        };
        let transition = ledger::reserve(&mut tx, &self.scheme, &case, &reservation).await?;
        if transition != Transition::AlreadyDone {
            audit::record(&mut tx, caller, "case.reserve_for_handoff", "dropout_case", &[case_id.to_string()]).await?;
        }
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(case_id = %case_id, handoff_id = %handoff_id, destination = %destination, "case reserved for a hand-off");
        Ok((self.current(case_id).await?, sealed))
    }

    /// TakeInHandoff: this province's transfer service, on the accepting case worker's behalf,
    /// has the accepted hand-off's case opened here at once (or refused by R2), in one
    /// transaction, as the accept's event would have it; the first of the two decides. Checking
    /// that the caller is that service is the transport's part (its certificate).
    pub async fn take_in_now(
        &self,
        caller: &Caller,
        request: TakeInHandoffRequest,
    ) -> Result<TakeInDecided, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::AcceptHandoffs)?;
        parse_uuid("handoff_id", &request.handoff_id)?;
        parse_uuid("case_id", &request.case_id)?;
        RegionCode::parse_county(&request.origin_region_code)
            .map_err(|error| ServiceError::invalid("origin_region_code", error))?;
        let destination = RegionCode::parse_county(&request.destination_region_code)
            .map_err(|error| ServiceError::invalid("destination_region_code", error))?;
        caller.require_scope(&destination)?;
        let accepted = HandoffAccepted {
            handoff_id: request.handoff_id,
            case_id: request.case_id,
            origin_region_code: request.origin_region_code,
            destination_region_code: request.destination_region_code,
            accepted_by: caller.subject.clone(),
            sealed_dossier: request.sealed_dossier,
        };
        let events = HandoffEvents {
            scheme: &self.scheme,
            data_key: &self.data_key,
            seal: &self.seal,
            today: self.clock.today(),
        };
        // The consumer's work for the accept's event, done at once: planned as in its batches.
        let mut tx = self.pool.begin_with(nol_backbone::BEGIN_BATCH).await?;
        let decided = match events.decide_take_in(&mut tx, &accepted).await {
            Ok(decided) => decided,
            Err(TakeInError::Unusable(why)) => {
                return Err(ServiceError::precondition(CaseMsg::DossierUnreadable { why }));
            }
            Err(TakeInError::Refused(refusal)) => return Err(LedgerError::Refused(refusal).into()),
            Err(TakeInError::Database(error)) => return Err(error.into()),
        };
        let (TakeInDecided::Opened(case_id) | TakeInDecided::Refused(case_id)) = decided;
        audit::record(&mut tx, caller, "case.take_in_handoff", "dropout_case", &[case_id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(decided)
    }

    /// What the new owner needs (PIPL art. 6: nothing more): the child, causes, notes, the
    /// registered-poor household and disability grade (R3, R4), attempts, measures, evidence
    /// metadata, the officers as contacts, and a summary of the history.
    ///
    /// Read on the reservation's own connection: calls that each hold one connection and wait for a
    /// second from the pool wait on one another once there are as many as the pool holds (a bureau
    /// requesting several hand-offs at once), until the pool's timeout fails them all.
    async fn dossier(&self, conn: &mut PgConnection, case: &Case) -> Result<HandoffDossier, ServiceError> {
        let resident_id = reveal(
            &self.data_key,
            &case.child.resident_id_cipher,
            CASE_RESIDENT_ID_CONTEXT,
            &case.child.resident_id_index,
        )?;
        let child = crate::child::on_file(&case.child, Some(&resident_id));
        let attempts = file_store::attempts(&mut *conn, case.id, None, DOSSIER_LIMIT).await?;
        let history = store::history(&mut *conn, case.id, 0, DOSSIER_LIMIT).await?;
        Ok(HandoffDossier {
            child: Some(child),
            causes: case.causes.iter().map(|cause| *cause as i32).collect(),
            notes: case.notes.clone(),
            open_time: Some(nol_runtime::time::timestamp(case.opened_at)),
            registered_poor: case.registered_poor,
            disability_grade: i32::from(case.disability_grade),
            confirmed_on: case.confirmed_on.map(|day| day.to_string()).unwrap_or_default(),
            relapse_count: case.relapse_count,
            attempts: attempts.iter().map(attempt_message).collect(),
            measures: file_store::measures(&mut *conn, case.id).await?.iter().map(measure_message).collect(),
            evidence: file_store::evidence(&mut *conn, case.id).await?.iter().map(evidence_message).collect(),
            officers: file_store::officers(&mut *conn, case.id).await?.iter().map(officer_message).collect(),
            history: history
                .into_iter()
                .map(|entry| CaseHistoryEntry {
                    version: entry.version,
                    change_time: Some(nol_runtime::time::timestamp(entry.at)),
                    actor: entry.actor,
                    change: entry.change,
                    detail_json: String::new(),
                })
                .collect(),
            notice_pdf: Vec::new(),
            notice_number: String::new(),
            new_inflow_region_code: String::new(),
        })
    }
}

/// What the case service needs to apply hand-off events.
pub struct HandoffEvents<'a> {
    pub scheme: &'a SubjectScheme,
    pub data_key: &'a DataKeys,
    pub seal: &'a SealKeyPair,
    pub today: NaiveDate,
}

fn permanent(what: impl std::fmt::Display) -> HandlerError {
    HandlerError::Permanent(what.to_string())
}

/// Why an accepted hand-off's take-in could not be decided.
#[derive(Debug)]
pub enum TakeInError {
    /// The accept or its dossier is not what a take-in needs: it never will be.
    Unusable(String),
    /// A rule of the ledger refused (an in-province hand-off whose origin case no longer fits).
    Refused(crate::case::domain::CaseRefusal),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for TakeInError {
    fn from(error: sqlx::Error) -> Self {
        TakeInError::Database(error)
    }
}

fn unusable(what: impl std::fmt::Display) -> TakeInError {
    TakeInError::Unusable(what.to_string())
}

impl HandoffEvents<'_> {
    /// A destination case worker accepted (transfer's local `handoff_accepted`): open the case here
    /// from the dossier after R2 — or refuse it, naming the child's existing case — and publish the
    /// outcome for the transfer service. An accept already decided (by the transfer service's
    /// `TakeInHandoff` call, or a redelivery) changes nothing.
    pub async fn take_in(
        &self,
        conn: &mut PgConnection,
        envelope: &EventEnvelope,
        event: HandoffAccepted,
    ) -> Result<(), HandlerError> {
        match self.decide_take_in(conn, &event).await {
            Ok(_) => Ok(()),
            Err(TakeInError::Unusable(why)) => Err(permanent(format!("handoff_accepted: {why}"))),
            Err(TakeInError::Refused(refusal)) => Err(permanent(format!("hand-off {}: {refusal}", event.handoff_id))),
            Err(TakeInError::Database(error)) => {
                tracing::debug!(actor = %envelope.actor, "take-in to be retried");
                Err(error.into())
            }
        }
    }

    /// Decides an accepted hand-off's take-in once, whichever way the accept came (its event, or
    /// the transfer service's call): the case opened here from the dossier after R2, or the
    /// refusal naming the child's active case here, each with its event for the transfer service.
    /// The hand-off's id is held until the caller's transaction ends, and an accept decided
    /// already answers that decision again, so the two ways open one case at most and publish one
    /// outcome.
    pub async fn decide_take_in(
        &self,
        conn: &mut PgConnection,
        event: &HandoffAccepted,
    ) -> Result<TakeInDecided, TakeInError> {
        let handoff_id = Uuid::parse_str(&event.handoff_id).map_err(|_| unusable("handoff_id"))?;
        let origin_case_id = Uuid::parse_str(&event.case_id).map_err(|_| unusable("case_id"))?;
        let origin = RegionCode::parse(&event.origin_region_code).map_err(|_| unusable("origin"))?;
        let destination = RegionCode::parse(&event.destination_region_code).map_err(|_| unusable("destination"))?;
        if let Some(decided) = store::take_in_decided(conn, handoff_id).await? {
            return Ok(decided);
        }
        // Sealed by the origin's province, bound to it (checked against the signed message it came in).
        let opened = self
            .seal
            .open_from(&event.sealed_dossier, origin.province().as_str())
            .map_err(|error| unusable(format!("hand-off dossier: {error}")))?;
        let dossier = HandoffDossier::decode(opened.as_slice())
            .map_err(|error| unusable(format!("hand-off dossier does not decode: {error}")))?;
        let child = dossier.child.clone().ok_or_else(|| unusable("hand-off dossier has no child"))?;
        let resident_id =
            ResidentId::parse(&child.resident_id).map_err(|error| unusable(format!("hand-off dossier: {error}")))?;
        let new = NewCase {
            id: Uuid::now_v7(),
            pupil_id: None,
            child: ChildRecord::new(self.data_key, &child.full_name, &resident_id, &child.hukou_region_code),
            region: destination,
            causes: check_causes(&dossier.causes).unwrap_or_default(),
            notes: dossier.notes.clone(),
            source: Source::Handoff,
            origin_region: Some(origin),
            origin_case_id: Some(origin_case_id),
            handoff_id: Some(handoff_id),
            opened_by: event.accepted_by.clone(),
            confirmed_on: self.today,
            migrant: destination.is_migrant_here(&child.hukou_region_code),
            registered_poor: dossier.registered_poor,
            disability_grade: i16::try_from(dossier.disability_grade).unwrap_or(0),
            suspect_id: None,
        };
        let origin_dossier = OriginDossier {
            handoff_id: handoff_id.to_string(),
            origin_region_code: origin.to_string(),
            origin_case_id: origin_case_id.to_string(),
            notice_number: dossier.notice_number.clone(),
            confirmed_on: dossier.confirmed_on.clone(),
            relapse_count: dossier.relapse_count,
            measures: dossier.measures.clone(),
            evidence: dossier.evidence.clone(),
            contacts: dossier.officers.clone(),
            history: dossier.history.clone(),
            attempts: dossier.attempts.clone(),
        };
        let attempts: Vec<(NewAttempt, String)> =
            dossier.attempts.iter().filter_map(|attempt| origin_attempt(attempt, &origin)).collect();
        let intake = Intake {
            origin_region: origin,
            origin_case_id,
            handoff_id,
            dossier: &origin_dossier.encode_to_vec(),
            attempts: &attempts,
        };
        match ledger::take_in(conn, self.scheme, &new, &intake).await {
            Ok(Ok(case)) => {
                crate::supervision::store::incoming_decided(conn, handoff_id, "accepted").await?;
                tracing::info!(case_id = %case.id, handoff_id = %handoff_id, region = %destination, "case taken in");
                Ok(TakeInDecided::Opened(case.id))
            }
            Ok(Err(existing)) => {
                store::record_take_in_refusal(conn, handoff_id, existing).await?;
                tracing::warn!(handoff_id = %handoff_id, existing_case = %existing, "hand-off refused by R2: the child already has an active case here");
                Ok(TakeInDecided::Refused(existing))
            }
            Err(LedgerError::Refused(refusal)) => Err(TakeInError::Refused(refusal)),
            Err(LedgerError::Database(error)) => Err(error.into()),
        }
    }

    /// A hand-off was refused or withdrawn (transfer's local `handoff_rejected` / `handoff_cancelled`):
    /// at the origin the case is open here again; at the destination the decision is no longer owed.
    pub async fn release(
        &self,
        conn: &mut PgConnection,
        envelope: &EventEnvelope,
        handoff: (&str, &str),
        change: &str,
        detail: serde_json::Value,
    ) -> Result<(), HandlerError> {
        let (handoff_id, case_id) = handoff;
        let handoff_id = Uuid::parse_str(handoff_id).map_err(|_| permanent(format!("{change}: handoff_id")))?;
        let case_id = Uuid::parse_str(case_id).map_err(|_| permanent(format!("{change}: case_id")))?;
        match ledger::release(conn, self.scheme, case_id, handoff_id, &envelope.actor, change, detail).await {
            Ok(_) => {}
            Err(ledger::StepError::Database(error)) => return Err(error.into()),
            Err(other) => return Err(permanent(other)),
        }
        let outcome = if change == "handoff_rejected" { "rejected" } else { "cancelled" };
        crate::supervision::store::incoming_decided(conn, handoff_id, outcome).await?;
        Ok(())
    }

    /// A region asks this province for a child's case (transfer's local `transfer_in_requested`,
    /// the number sealed to this province): look the child up by the blind index in the owner
    /// county's subtree and publish what was found (or that nothing was).
    pub async fn match_transfer_in(
        &self,
        conn: &mut PgConnection,
        event: TransferInRequested,
    ) -> Result<(), HandlerError> {
        let owner = RegionCode::parse(&event.owner_region_code).map_err(|_| permanent("transfer_in: owner"))?;
        let asking =
            RegionCode::parse(&event.asking_region_code).map_err(|_| permanent("transfer_in: asking region"))?;
        let clear = self
            .seal
            .open_from(&event.resident_id_sealed, asking.province().as_str())
            .map_err(|error| permanent(format!("transfer_in: {error}")))?;
        let text = String::from_utf8(clear).map_err(|_| permanent("transfer_in: resident ID is not text"))?;
        let resident_id = ResidentId::parse(&text).map_err(|error| permanent(format!("transfer_in: {error}")))?;
        let index = self.data_key.blind_index(resident_id.expose());
        let found = store::find_active_in(conn, &index, owner.subtree_prefix()).await?;
        let matched = TransferInMatched {
            request_id: event.request_id.clone(),
            case_id: found.as_ref().map(|case| case.id.to_string()).unwrap_or_default(),
            child: found.as_ref().map(|case| crate::child::on_file(&case.child, None)),
        };
        let region = found.as_ref().map(|case| case.region).unwrap_or(owner);
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(TRANSFER_IN_MATCHED, &region),
            nol_events::EventHeader {
                event_type: TRANSFER_IN_MATCHED,
                source_region: region,
                aggregate_type: "transfer_in",
                aggregate_id: &event.request_id,
                aggregate_sequence: 2,
                actor: "system",
            },
            &matched,
        )
        .await?;
        Ok(())
    }
}

/// An attempt of the origin, recorded on the case taken in (so it counts for R6 here), attributed
/// to the origin.
pub(crate) fn origin_attempt(
    attempt: &nol_proto::v1::PersuasionAttempt,
    origin: &RegionCode,
) -> Option<(NewAttempt, String)> {
    let departments: Vec<_> = attempt.departments.iter().filter_map(|value| from_wire(*value)).collect();
    let new = NewAttempt {
        attempt_on: NaiveDate::parse_from_str(&attempt.attempt_date, "%Y-%m-%d").ok()?,
        joint: is_joint(&departments),
        departments,
        means: attempt.means.iter().filter_map(|value| from_wire(*value)).collect(),
        place: from_wire(attempt.place)?,
        place_region: RegionCode::parse(&attempt.place_region_code).ok(),
        outcome: from_wire(attempt.outcome)?,
        notes: attempt.notes.clone(),
        assisted: None,
    };
    Some((new, format!("{} ({})", attempt.recorded_by, origin.full_name())))
}
