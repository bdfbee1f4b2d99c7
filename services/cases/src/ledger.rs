//! The case ledger's operations: each is one transaction holding the change, its history and
//! its event in the outbox. Used by the gRPC handlers and by the event consumer alike.

use nol_events::{
    CASE_HANDED_OVER, CASE_HANDOFF_PENDING, CASE_OPENED, CASE_STATUS_CHANGED, EventHeader, SubjectScheme,
};
use nol_proto::v1::{CaseHandedOver, CaseHandoffPending, CaseOpened, CaseSource, CaseStatusChanged};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{RuleViolation, Status, Transition, cause_from_name};
use crate::store::{self, CaseRow, NewCase, StatusChange};

/// Inserts a case and its `case_opened` event. A unique violation of
/// `dropout_case_one_active_per_child` means the child already has an active case.
pub async fn open(conn: &mut PgConnection, scheme: &SubjectScheme, case: &NewCase) -> sqlx::Result<CaseRow> {
    let row = store::insert(conn, case).await?;
    let region = parse_stored_region(&row.region)?;
    let payload = CaseOpened {
        case_id: row.id.to_string(),
        pupil_id: row.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        region_code: row.region.clone(),
        causes: row.causes.iter().map(|name| cause_from_name(name) as i32).collect(),
        source: if row.source == "handoff" { CaseSource::Handoff } else { CaseSource::Local } as i32,
        origin_region_code: row.origin_region.clone().unwrap_or_default(),
        handoff_id: row.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(CASE_OPENED, &region),
        EventHeader {
            event_type: CASE_OPENED,
            source_region: region,
            aggregate_type: "dropout_case",
            aggregate_id: &payload.case_id,
            aggregate_sequence: row.version as u64,
            actor: &row.opened_by,
        },
        &payload,
    )
    .await?;
    Ok(row)
}

/// Moves a case to another status: the row, its history entry and its `case_status_changed`
/// event, in the caller's transaction. The caller has locked the row (`store::get_for_update`) and
/// checked the transition against the rules in `domain`.
pub async fn change_status(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    row: &CaseRow,
    change: &StatusChange<'_>,
    reason: &str,
) -> sqlx::Result<CaseRow> {
    let from = Status::parse(&row.status).ok_or_else(|| sqlx::Error::Decode("stored case status unreadable".into()))?;
    let updated = store::set_status(conn, row, change).await?;
    let region = parse_stored_region(&updated.region)?;
    let payload = CaseStatusChanged {
        case_id: updated.id.to_string(),
        region_code: updated.region.clone(),
        from_status: from.to_proto() as i32,
        to_status: change.to.to_proto() as i32,
        relapse: change.relapse,
        reason: reason.to_owned(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(CASE_STATUS_CHANGED, &region),
        EventHeader {
            event_type: CASE_STATUS_CHANGED,
            source_region: region,
            aggregate_type: "dropout_case",
            aggregate_id: &payload.case_id,
            aggregate_sequence: updated.version as u64,
            actor: change.actor,
        },
        &payload,
    )
    .await?;
    Ok(updated)
}

/// Why a hand-off step could not be applied to a case.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("case {0} does not exist here")]
    NoSuchCase(Uuid),
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A step of a hand-off, as the case service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffStep {
    /// A hand-off was requested: the case is pending, still owned here.
    Begin,
    /// The destination accepted: the case is handed over; its history stays here.
    Complete,
}

/// Applies a hand-off step to a case, with its history and its event; a step already applied
/// (redelivered, or overtaken by a later one) changes nothing.
pub async fn apply_handoff_step(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    step: HandoffStep,
    case_id: Uuid,
    handoff_id: Uuid,
    destination: &str,
    actor: &str,
) -> Result<(), StepError> {
    let row = store::get_for_update(conn, case_id).await?.ok_or(StepError::NoSuchCase(case_id))?;
    let state = crate::domain::CaseState::from_row(&row)?;
    let transition = match step {
        HandoffStep::Begin => state.begin_handoff(handoff_id)?,
        HandoffStep::Complete => state.complete_handoff(handoff_id)?,
    };
    let Transition::To(status) = transition else {
        return Ok(());
    };
    let version = store::set_handoff_status(conn, &row, status, handoff_id, destination, actor).await?;
    let region = parse_stored_region(&row.region)?;
    let event_type = match step {
        HandoffStep::Begin => CASE_HANDOFF_PENDING,
        HandoffStep::Complete => CASE_HANDED_OVER,
    };
    let aggregate_id = case_id.to_string();
    let header = EventHeader {
        event_type,
        source_region: region,
        aggregate_type: "dropout_case",
        aggregate_id: &aggregate_id,
        aggregate_sequence: version as u64,
        actor,
    };
    let subject = scheme.local(event_type, &region);
    let (case_id, region_code, handoff_id, destination_region_code) =
        (aggregate_id.clone(), row.region.clone(), handoff_id.to_string(), destination.to_owned());
    match step {
        HandoffStep::Begin => {
            let payload = CaseHandoffPending { case_id, region_code, handoff_id, destination_region_code };
            nol_backbone::outbox::emit(conn, &subject, header, &payload).await?;
        }
        HandoffStep::Complete => {
            debug_assert_eq!(status, Status::HandedOver);
            let payload = CaseHandedOver { case_id, region_code, handoff_id, destination_region_code };
            nol_backbone::outbox::emit(conn, &subject, header, &payload).await?;
        }
    }
    Ok(())
}

fn parse_stored_region(text: &str) -> sqlx::Result<RegionCode> {
    RegionCode::parse(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
