//! The case ledger (台账): the only writer of `dropout_case`, its history and its events. Every
//! operation runs in the caller's transaction (which holds the case's row lock where it changes
//! one) and writes the change, its `case_history` entry and its outbox event together. The case
//! service, the suspected-dropout ledger (a confirmation opens a case), supervision (items are
//! noted on the case, a relapse at the semester check reopens it) and the event consumer (hand-off
//! steps) all change cases through here.

use chrono::NaiveDate;
use nol_events::{
    ASSISTANCE_REQUESTED, CASE_HANDED_OVER, CASE_HANDOFF_PENDING, CASE_OPENED, CASE_RESERVED, CASE_STATUS_CHANGED,
    CASE_TAKE_IN_REFUSED, CASE_TAKEN_IN, EventHeader, HANDOFF_DECISION_DUE, HUKOU_NOTICE_DUE, PERSUASION_RECORDED,
    SubjectScheme,
};
use nol_messages::Case as Says;
use nol_proto::v1::{
    AssistanceRequested, CaseHandedOver, CaseHandoffPending, CaseOpened, CaseReserved, CaseSource, CaseStatusChanged,
    CaseTakeIn, HandoffDecisionDue, HukouNoticeDue, PersuasionRecorded,
};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::deadlines::{DeadlinePolicy, DueKind, next_due};
use super::domain::file::{Attempt, NewAttempt};
use super::domain::stored::Stored;
use super::domain::{Case, CaseRefusal, Due, Source, Status, Transition, assisting_region, check_open};
use super::store::{self, NewCase, PolicyRow, StatusColumns};

/// Why the ledger did not make a change.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Refused(#[from] CaseRefusal),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn due(dates: &super::domain::deadlines::CaseDates, policy: &DeadlinePolicy) -> Option<Due> {
    next_due(dates, policy).map(|(on, kind)| Due { on, kind })
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Opens a case and emits `case_opened`, after R2: a child with an active case gets no second
/// one. The refusal names the existing case only when `caller_sees` its region.
pub async fn open(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    new: &NewCase,
    caller_sees: impl Fn(&RegionCode) -> bool,
) -> Result<Case, LedgerError> {
    let existing = store::find_active_by_index(conn, &new.child.resident_id_index).await?;
    check_open(existing.as_ref(), caller_sees)?;
    let policy = store::policy(conn).await?;
    let dates = super::domain::deadlines::CaseDates {
        status: Status::Open,
        confirmed_on: new.confirmed_on,
        last_attempt_on: None,
        follow_up_from: None,
        handoff_requested_on: None,
    };
    let case = match store::insert(conn, new, due(&dates, &policy)).await {
        Ok(case) => case,
        // A concurrent open of the same child won between the check and the insert.
        Err(error) if nol_runtime::database::is_unique_violation(&error, Some("dropout_case_one_active_per_child")) => {
            return Err(CaseRefusal(Says::ActiveCaseUnknown).into());
        }
        Err(error) => return Err(error.into()),
    };
    let detail = serde_json::json!({ "source": case.source.as_stored() });
    store::append_history(conn, case.id, case.version, &case.opened_by, "opened", &detail).await?;
    let payload = CaseOpened {
        case_id: case.id.to_string(),
        pupil_id: case.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        region_code: case.region.to_string(),
        causes: case.causes.iter().map(|cause| *cause as i32).collect(),
        source: match case.source {
            Source::Handoff => CaseSource::Handoff,
            Source::Local => CaseSource::Local,
        } as i32,
        origin_region_code: case.origin_region.map(|region| region.to_string()).unwrap_or_default(),
        handoff_id: case.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
    };
    emit(
        conn,
        scheme,
        CASE_OPENED,
        Aggregate { region: &case.region, id: &payload.case_id, version: case.version },
        &case.opened_by,
        &payload,
    )
    .await?;
    // R10: a migrant child's case opened here (not taken in by a hand-off, whose origin told the
    // hukou region itself or is it): the household-registration region is told.
    let hukou = RegionCode::parse(&case.child.hukou_region).ok().filter(|hukou| *hukou != case.region);
    if let (Some(hukou), Source::Local) = (hukou, case.source) {
        let due = HukouNoticeDue {
            case_id: payload.case_id.clone(),
            region_code: case.region.to_string(),
            hukou_region_code: hukou.to_string(),
            child: Some(crate::child::on_file(&case.child, None)),
            causes: payload.causes.clone(),
            opened_by: case.opened_by.clone(),
        };
        emit(
            conn,
            scheme,
            HUKOU_NOTICE_DUE,
            Aggregate { region: &case.region, id: &payload.case_id, version: case.version },
            &case.opened_by,
            &due,
        )
        .await?;
    }
    Ok(case)
}

/// Which case an event is about: its county, id and version after the change.
struct Aggregate<'a> {
    region: &'a RegionCode,
    id: &'a str,
    version: i64,
}

/// Writes a case event to the outbox, on the case's own county's subject.
async fn emit<M: prost::Message>(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    event_type: nol_events::EventType,
    aggregate: Aggregate<'_>,
    actor: &str,
    payload: &M,
) -> sqlx::Result<()> {
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(event_type, aggregate.region),
        EventHeader {
            event_type,
            source_region: *aggregate.region,
            aggregate_type: "dropout_case",
            aggregate_id: aggregate.id,
            aggregate_sequence: aggregate.version as u64,
            actor,
        },
        payload,
    )
    .await?;
    Ok(())
}

/// A status change: the new status (decided by the domain), what the change records, and the
/// dates it moves.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub to: Status,
    /// The history entry's name, e.g. "returned", "relapsed", "deferred".
    pub change: &'a str,
    pub actor: &'a str,
    /// Replaces `status_detail` (e.g. the school, class and date of a return).
    pub detail: serde_json::Value,
    /// A monitored child dropped out again.
    pub relapse: bool,
    /// For a deferral or suspension: the day follow-ups run from.
    pub follow_up_from: Option<NaiveDate>,
    /// For a reopened case: the day the dropout was confirmed again.
    pub confirmed_on: Option<NaiveDate>,
}

/// Moves a locked case to the status the domain decided: the row with its recomputed due date,
/// its history entry and its `case_status_changed` event.
pub async fn change_status(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    case: &Case,
    change: &StatusChange<'_>,
    reason: &str,
) -> Result<Case, LedgerError> {
    let policy = store::policy(conn).await?;
    let mut dates = case.dates();
    dates.status = change.to;
    if let Some(day) = change.follow_up_from {
        dates.follow_up_from = Some(day);
    }
    if let Some(day) = change.confirmed_on {
        dates.confirmed_on = day;
        dates.last_attempt_on = None;
    }
    let columns = StatusColumns {
        status: change.to,
        detail: &change.detail,
        relapse: change.relapse,
        follow_up_from: dates.follow_up_from,
        confirmed_on: Some(dates.confirmed_on),
        last_attempt_on: dates.last_attempt_on,
        due: due(&dates, &policy),
    };
    let updated = store::set_status(conn, case.id, &columns).await?;
    let mut detail = change.detail.clone();
    if let Some(object) = detail.as_object_mut() {
        object.insert("from".to_owned(), case.status.as_stored().into());
        object.insert("to".to_owned(), change.to.as_stored().into());
    }
    store::append_history(conn, case.id, updated.version, change.actor, change.change, &detail).await?;
    let payload = CaseStatusChanged {
        case_id: updated.id.to_string(),
        region_code: updated.region.to_string(),
        from_status: case.status.to_proto() as i32,
        to_status: change.to.to_proto() as i32,
        relapse: change.relapse,
        reason: reason.to_owned(),
    };
    emit(
        conn,
        scheme,
        CASE_STATUS_CHANGED,
        Aggregate { region: &updated.region, id: &payload.case_id, version: updated.version },
        change.actor,
        &payload,
    )
    .await?;
    Ok(updated)
}

/// Records a change of a locked case's file (officers, plan, evidence, visits, deferral
/// requests): the case's version moves and its history says what changed. Returns the version.
pub async fn record_file_change(
    conn: &mut PgConnection,
    case_id: Uuid,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> sqlx::Result<i64> {
    let version = store::bump_version(conn, case_id).await?;
    store::append_history(conn, case_id, version, actor, change, &detail).await?;
    Ok(version)
}

/// Replaces a locked case's causes, with its history.
pub async fn update_causes(
    conn: &mut PgConnection,
    case: &Case,
    causes: &[nol_proto::v1::DropoutCause],
    actor: &str,
) -> sqlx::Result<()> {
    store::set_causes(conn, case.id, causes).await?;
    let from: Vec<&str> = case.causes.iter().map(|cause| cause.as_stored()).collect();
    let to: Vec<&str> = causes.iter().map(|cause| cause.as_stored()).collect();
    record_file_change(conn, case.id, actor, "causes_updated", serde_json::json!({ "from": from, "to": to })).await?;
    Ok(())
}

/// Records a persuasion attempt on a locked case (R5): the attempt, the case's newest attempt date
/// and due date, its history, `persuasion_recorded`, and — when the child was found at a work
/// place in another county (R8) — `assistance_requested` to this province's transfer service,
/// which asks that county for help.
pub async fn record_attempt(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    case: &Case,
    new: &NewAttempt,
    actor: &str,
) -> sqlx::Result<Attempt> {
    let attempt = super::store::file::insert_attempt(conn, case.id, new, actor).await?;
    let mut dates = case.dates();
    dates.last_attempt_on = dates.last_attempt_on.max(Some(new.attempt_on));
    let policy = store::policy(conn).await?;
    store::set_attempt_dates(conn, case.id, dates.last_attempt_on, due(&dates, &policy)).await?;
    // R8 asks the work place's county for help; an attempt that county reported does not ask again.
    let assisting = if new.assisted.is_some() { None } else { assisting_region(new.place_region, &case.region) };
    let departments: Vec<&str> = new.departments.iter().map(|department| department.as_stored()).collect();
    let means: Vec<&str> = new.means.iter().map(|means| means.as_stored()).collect();
    let version = record_file_change(
        conn,
        case.id,
        actor,
        "persuasion_recorded",
        serde_json::json!({
            "attempt_id": attempt.id, "attempt_date": date_text(new.attempt_on), "joint": new.joint,
            "departments": departments, "means": means, "place": new.place.as_stored(),
            "place_region_code": new.place_region.map(|region| region.to_string()), "outcome": new.outcome.as_stored(),
            "assistance_requested_from": assisting.map(|region| region.to_string()),
            "assisted_by": new.assisted.map(|(region, _)| region.to_string()),
            "assistance_id": new.assisted.map(|(_, id)| id.to_string()),
        }),
    )
    .await?;
    let aggregate_id = case.id.to_string();
    let payload = PersuasionRecorded {
        case_id: aggregate_id.clone(),
        region_code: case.region.to_string(),
        attempt_id: attempt.id.to_string(),
        attempt_date: date_text(new.attempt_on),
        joint: new.joint,
        outcome: new.outcome as i32,
    };
    emit(
        conn,
        scheme,
        PERSUASION_RECORDED,
        Aggregate { region: &case.region, id: &aggregate_id, version },
        actor,
        &payload,
    )
    .await?;
    if let Some(assisting) = assisting {
        let request = AssistanceRequested {
            case_id: aggregate_id.clone(),
            region_code: case.region.to_string(),
            assisting_region_code: assisting.to_string(),
            full_name: case.child.full_name.clone(),
            resident_id_masked: case.child.resident_id_masked.clone(),
            request: Says::WorkPlaceAssistance {
                place: assisting.full_name(),
                date: date_text(new.attempt_on),
                home: case.region.full_name(),
            }
            .zh(),
            attempt_id: attempt.id.to_string(),
            child: Some(crate::child::on_file(&case.child, None)),
        };
        // Told to this province's transfer service, which sends the request for help (the child
        // sealed to the assisting province); nothing of the child leaves the province unsealed.
        let subject = scheme.local(ASSISTANCE_REQUESTED, &case.region);
        let header = EventHeader {
            event_type: ASSISTANCE_REQUESTED,
            source_region: case.region,
            aggregate_type: "dropout_case",
            aggregate_id: &aggregate_id,
            aggregate_sequence: version as u64,
            actor,
        };
        nol_backbone::outbox::emit(conn, &subject, header, &request).await?;
    }
    Ok(attempt)
}

/// Why a hand-off step could not be applied to a case.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("case {0} does not exist here")]
    NoSuchCase(Uuid),
    #[error(transparent)]
    Rule(#[from] CaseRefusal),
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

/// Which step of which hand-off applies to which case.
#[derive(Debug, Clone, Copy)]
pub struct StepOf {
    pub step: HandoffStep,
    pub case_id: Uuid,
    pub handoff_id: Uuid,
    pub destination: RegionCode,
}

/// Applies a hand-off step to a case, with its history and its event; a step already applied
/// (redelivered, or overtaken by a later one) changes nothing.
pub async fn apply_handoff_step(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    step_of: StepOf,
    actor: &str,
    today: NaiveDate,
) -> Result<(), StepError> {
    let StepOf { step, case_id, handoff_id, destination } = step_of;
    let destination = &destination;
    let case = store::get_for_update(conn, case_id).await?.ok_or(StepError::NoSuchCase(case_id))?;
    let state = case.handoff_state();
    let transition = match step {
        HandoffStep::Begin => state.begin_handoff(handoff_id)?,
        HandoffStep::Complete => state.complete_handoff(handoff_id)?,
    };
    let Transition::To(status) = transition else {
        return Ok(());
    };
    let requested_on = (step == HandoffStep::Begin).then_some(today);
    let mut dates = case.dates();
    dates.status = status;
    dates.handoff_requested_on = requested_on.or(dates.handoff_requested_on);
    let policy = store::policy(conn).await?;
    let next = due(&dates, &policy);
    let version = store::set_handoff_status(conn, case_id, status, handoff_id, destination, requested_on, next).await?;
    if let Some(Due { on, kind: DueKind::HandoffDecision }) = next {
        let decision = DecisionDue {
            handoff_id,
            origin_case_id: case_id,
            origin: &case.region,
            destination,
            side: &case.region,
            due_on: on,
            sequence: version as u64,
        };
        announce_decision_due(conn, scheme, &decision).await?;
    }
    let detail = serde_json::json!({ "handoff_id": handoff_id, "destination_region_code": destination.as_str() });
    store::append_history(conn, case_id, version, actor, status.as_stored(), &detail).await?;
    let (case_id, region_code, handoff_id, destination_region_code) =
        (case_id.to_string(), case.region.to_string(), handoff_id.to_string(), destination.to_string());
    match step {
        HandoffStep::Begin => {
            let payload = CaseHandoffPending { case_id, region_code, handoff_id, destination_region_code };
            emit(
                conn,
                scheme,
                CASE_HANDOFF_PENDING,
                Aggregate { region: &case.region, id: &payload.case_id, version },
                actor,
                &payload,
            )
            .await?;
        }
        HandoffStep::Complete => {
            debug_assert_eq!(status, Status::HandedOver);
            let payload = CaseHandedOver { case_id, region_code, handoff_id, destination_region_code };
            emit(
                conn,
                scheme,
                CASE_HANDED_OVER,
                Aggregate { region: &case.region, id: &payload.case_id, version },
                actor,
                &payload,
            )
            .await?;
        }
    }
    Ok(())
}

/// Notes a supervision change on a case (R12): its history entry and, for a raise, the
/// supervising bureau and reason on the case itself. False when the case does not exist.
pub async fn note_supervision(
    conn: &mut PgConnection,
    case_id: Uuid,
    raised: Option<(&RegionCode, &str)>,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> sqlx::Result<bool> {
    let version = match raised {
        Some((region, reason)) => store::set_supervision(conn, case_id, region, reason).await?,
        None => Some(store::bump_version(conn, case_id).await?),
    };
    let Some(version) = version else { return Ok(false) };
    store::append_history(conn, case_id, version, actor, change, &detail).await?;
    Ok(true)
}

/// Stores a new deadline policy and recomputes the due date of every case that owes work by
/// deadline, in the caller's transaction; a pending hand-off's moved decision date is announced.
/// Returns the stored row and how many cases moved.
pub async fn change_policy(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    policy: &DeadlinePolicy,
    actor: &str,
) -> sqlx::Result<(PolicyRow, i64)> {
    let row = store::update_policy(conn, policy, actor).await?;
    let dated = store::dated_for_update(conn).await?;
    let (mut ids, mut days, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for (id, _, dates) in &dated {
        let due = due(dates, policy);
        ids.push(*id);
        days.push(due.map(|due| due.on));
        kinds.push(due.map(|due| due.kind.as_stored().to_owned()));
    }
    let moved = store::set_due_dates(conn, &ids, &days, &kinds).await?;
    for pending in store::pending_handoffs_among(conn, &moved).await? {
        let decision = DecisionDue {
            handoff_id: pending.handoff_id,
            origin_case_id: pending.case_id,
            origin: &pending.region,
            destination: &pending.destination,
            side: &pending.region,
            due_on: pending.due_on,
            sequence: pending.version as u64,
        };
        announce_decision_due(conn, scheme, &decision).await?;
    }
    Ok((row, moved.len() as i64))
}

/// The day a hand-off's decision is due on one side (R11, R12).
pub struct DecisionDue<'a> {
    pub handoff_id: Uuid,
    pub origin_case_id: Uuid,
    pub origin: &'a RegionCode,
    pub destination: &'a RegionCode,
    /// The side the deadline runs on: the origin (its case waits) or the destination (it owes).
    pub side: &'a RegionCode,
    pub due_on: NaiveDate,
    /// The event's place among this side's announcements (the case's version at the origin).
    pub sequence: u64,
}

/// Announces a hand-off's decision date on one side (`cases.handoff_decision_due`), so that
/// reporting counts overdue hand-offs by the same dates as ListOverdueWork without knowing the
/// deadline policy.
pub async fn announce_decision_due(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    decision: &DecisionDue<'_>,
) -> sqlx::Result<()> {
    let payload = HandoffDecisionDue {
        handoff_id: decision.handoff_id.to_string(),
        case_id: decision.origin_case_id.to_string(),
        origin_region_code: decision.origin.to_string(),
        destination_region_code: decision.destination.to_string(),
        region_code: decision.side.to_string(),
        due_on: date_text(decision.due_on),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_DECISION_DUE, decision.side),
        EventHeader {
            event_type: HANDOFF_DECISION_DUE,
            source_region: *decision.side,
            aggregate_type: "handoff",
            aggregate_id: &payload.handoff_id,
            aggregate_sequence: decision.sequence,
            actor: "system:deadlines",
        },
        &payload,
    )
    .await?;
    Ok(())
}

/// A hand-off's reservation of a case (R11): what the origin sends, sealed to this province's key.
#[derive(Debug, Clone)]
pub struct Reservation<'a> {
    pub handoff_id: Uuid,
    pub destination: RegionCode,
    pub reason: &'a str,
    pub actor: &'a str,
    pub today: NaiveDate,
    pub sealed_dossier: &'a [u8],
}

/// Reserves a locked open case for a hand-off: pending (still owned here), its history, and the
/// events `case_handoff_pending` and `case_reserved` (from which the transfer service records the
/// outgoing hand-off even if the caller of the reservation failed). A repeat for the same
/// hand-off changes nothing.
pub async fn reserve(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    case: &Case,
    reservation: &Reservation<'_>,
) -> Result<Transition, LedgerError> {
    let transition = case.handoff_state().begin_handoff(reservation.handoff_id)?;
    let Transition::To(status) = transition else {
        return Ok(transition);
    };
    let mut dates = case.dates();
    dates.status = status;
    dates.handoff_requested_on = Some(reservation.today);
    let policy = store::policy(conn).await?;
    let next = due(&dates, &policy);
    let version = store::set_handoff_status(
        conn,
        case.id,
        status,
        reservation.handoff_id,
        &reservation.destination,
        Some(reservation.today),
        next,
    )
    .await?;
    if let Some(Due { on, kind: DueKind::HandoffDecision }) = next {
        let decision = DecisionDue {
            handoff_id: reservation.handoff_id,
            origin_case_id: case.id,
            origin: &case.region,
            destination: &reservation.destination,
            side: &case.region,
            due_on: on,
            sequence: version as u64,
        };
        announce_decision_due(conn, scheme, &decision).await?;
    }
    let detail = serde_json::json!({
        "handoff_id": reservation.handoff_id, "destination_region_code": reservation.destination.as_str(),
        "reason": reservation.reason,
    });
    store::append_history(conn, case.id, version, reservation.actor, status.as_stored(), &detail).await?;
    let case_id = case.id.to_string();
    let aggregate = || Aggregate { region: &case.region, id: &case_id, version };
    let pending = CaseHandoffPending {
        case_id: case_id.clone(),
        region_code: case.region.to_string(),
        handoff_id: reservation.handoff_id.to_string(),
        destination_region_code: reservation.destination.to_string(),
    };
    emit(conn, scheme, CASE_HANDOFF_PENDING, aggregate(), reservation.actor, &pending).await?;
    let reserved = CaseReserved {
        case_id: case_id.clone(),
        handoff_id: reservation.handoff_id.to_string(),
        region_code: case.region.to_string(),
        destination_region_code: reservation.destination.to_string(),
        reason: reservation.reason.to_owned(),
        requested_by: reservation.actor.to_owned(),
        sealed_dossier: reservation.sealed_dossier.to_vec(),
    };
    emit(conn, scheme, CASE_RESERVED, aggregate(), reservation.actor, &reserved).await?;
    Ok(transition)
}

/// The destination refused hand-off `handoff_id`, or the origin withdrew it: the case is open here
/// again (R11), with what happened in its history and `case_status_changed`. False when the case
/// is not this province's (the destination's copy of the event).
pub async fn release(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    case_id: Uuid,
    handoff_id: Uuid,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> Result<bool, StepError> {
    let Some(case) = store::get_for_update(conn, case_id).await? else {
        return Ok(false);
    };
    let Transition::To(status) = case.handoff_state().release_handoff(handoff_id)? else {
        return Ok(true);
    };
    let mut dates = case.dates();
    dates.status = status;
    dates.handoff_requested_on = None;
    let policy = store::policy(conn).await?;
    let version = store::clear_handoff(conn, case.id, due(&dates, &policy)).await?;
    store::append_history(conn, case.id, version, actor, change, &detail).await?;
    let payload = CaseStatusChanged {
        case_id: case.id.to_string(),
        region_code: case.region.to_string(),
        from_status: case.status.to_proto() as i32,
        to_status: status.to_proto() as i32,
        relapse: false,
        reason: change.to_owned(),
    };
    emit(
        conn,
        scheme,
        CASE_STATUS_CHANGED,
        Aggregate { region: &case.region, id: &payload.case_id, version },
        actor,
        &payload,
    )
    .await?;
    Ok(true)
}

/// What a case taken in brings from its origin.
#[derive(Debug, Clone)]
pub struct Intake<'a> {
    pub origin_region: RegionCode,
    pub origin_case_id: Uuid,
    pub handoff_id: Uuid,
    /// OriginDossier, encoded: kept with the case.
    pub dossier: &'a [u8],
    /// The origin's persuasion attempts: recorded on the case too, so they count for R6 here.
    pub attempts: &'a [(NewAttempt, String)],
}

/// Opens the case of an accepted incoming hand-off (R11) after R2, with what the origin knew,
/// and publishes the outcome: `case_taken_in`, or `case_take_in_refused` naming the child's
/// existing case here (the transfer service then rejects the hand-off as "already has a case
/// here" and the origin keeps it). A unique violation between the check and the insert (a
/// concurrent open) is an error to retry: the retry sees the existing case.
pub async fn take_in(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    new: &NewCase,
    intake: &Intake<'_>,
) -> Result<Result<Case, Uuid>, LedgerError> {
    let existing = store::find_active_by_index(conn, &new.child.resident_id_index).await?;
    if let Some(origin) = existing.as_ref().filter(|existing| existing.id == intake.origin_case_id) {
        // A hand-off inside this province: the origin's case is in this very ledger, pending for
        // this hand-off. It is handed over in the commit that opens the new case, so the child
        // still has one active case and responsibility moves in one step; the origin's own
        // completion later finds it done.
        let step_of = StepOf {
            step: HandoffStep::Complete,
            case_id: origin.id,
            handoff_id: intake.handoff_id,
            destination: new.region,
        };
        match apply_handoff_step(conn, scheme, step_of, &new.opened_by, new.confirmed_on).await {
            Ok(()) => {}
            Err(StepError::Rule(refusal)) => return Err(LedgerError::Refused(refusal)),
            Err(StepError::Database(error)) => return Err(LedgerError::Database(error)),
            Err(StepError::NoSuchCase(id)) => return Err(sqlx::Error::Protocol(format!("case {id} vanished")).into()),
        }
    } else if let Some(existing) = existing {
        let refused = CaseTakeIn {
            handoff_id: intake.handoff_id.to_string(),
            case_id: String::new(),
            existing_case_id: existing.id.to_string(),
            region_code: new.region.to_string(),
        };
        let aggregate = Aggregate { region: &new.region, id: &refused.existing_case_id, version: 0 };
        emit(conn, scheme, CASE_TAKE_IN_REFUSED, aggregate, &new.opened_by, &refused).await?;
        return Ok(Err(existing.id));
    }
    let case = match open(conn, scheme, new, |_| true).await {
        Ok(case) => case,
        Err(LedgerError::Refused(_)) => {
            return Err(sqlx::Error::Protocol("a concurrent open of the same child; retry".into()).into());
        }
        Err(error) => return Err(error),
    };
    store::insert_origin_dossier(
        conn,
        case.id,
        intake.handoff_id,
        &intake.origin_region,
        intake.origin_case_id,
        intake.dossier,
    )
    .await?;
    for (attempt, actor) in intake.attempts {
        super::store::file::insert_attempt(conn, case.id, attempt, actor).await?;
    }
    let taken = CaseTakeIn {
        handoff_id: intake.handoff_id.to_string(),
        case_id: case.id.to_string(),
        existing_case_id: String::new(),
        region_code: case.region.to_string(),
    };
    emit(
        conn,
        scheme,
        CASE_TAKEN_IN,
        Aggregate { region: &case.region, id: &taken.case_id, version: case.version },
        &new.opened_by,
        &taken,
    )
    .await?;
    Ok(Ok(case))
}
