//! Counting the province's events.

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    CASE_HANDED_OVER, CASE_HANDOFF_PENDING, CASE_OPENED, CASE_STATUS_CHANGED, CASE_TAKEN_IN, CHECK_ITEM_MARKED,
    EventEnvelope, HANDOFF_ARRIVED, HANDOFF_CANCELLED, HANDOFF_COMPLETED, HANDOFF_DECISION_DUE, HANDOFF_REJECTED,
    HANDOFF_REQUESTED, PERSUASION_RECORDED, PUPIL_REGISTERED, PUPIL_STATUS_CHANGED, PUPILS_IMPORTED,
    SEMESTER_CHECK_LISTED, SUPERVISION_CLOSED, SUPERVISION_RAISED, SUSPECT_RECORDED, SUSPECT_RESOLVED, SubjectScheme,
    decode_payload, occurred_at, region_field, uuid_field,
};
use nol_proto::v1::{
    CaseHandedOver, CaseHandoffPending, CaseOpened, CaseStatus, CaseStatusChanged, CaseTakeIn, CheckItemMarked,
    EnrollmentStatus, HandoffArrived, HandoffCancelled, HandoffCompleted, HandoffDecisionDue, HandoffRejected,
    HandoffRequested, PersuasionRecorded, PupilRegistered, PupilStatusChanged, PupilsImported, SemesterCheckListed,
    SupervisionClosed, SupervisionRaised, SuspectRecorded, SuspectResolved,
};
use nol_region::RegionCode;
use nol_runtime::clock::china_date;
use sqlx::PgConnection;

use crate::handoffs::{Direction, Fact, Outcome, RejectReason, SideFact, side_of};
use crate::metrics::{Metric, for_case_opened, for_persuasion, for_status_changed};
use crate::{figures, store};

/// The province's own events the reporting service counts.
pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    [
        PUPIL_REGISTERED,
        PUPILS_IMPORTED,
        CASE_OPENED,
        CASE_HANDED_OVER,
        CASE_STATUS_CHANGED,
        PERSUASION_RECORDED,
        HANDOFF_REQUESTED,
        HANDOFF_ARRIVED,
        HANDOFF_COMPLETED,
        HANDOFF_REJECTED,
        HANDOFF_CANCELLED,
        CASE_TAKEN_IN,
        HANDOFF_DECISION_DUE,
        PUPIL_STATUS_CHANGED,
        CASE_HANDOFF_PENDING,
        SUSPECT_RECORDED,
        SUSPECT_RESOLVED,
        SUPERVISION_RAISED,
        SUPERVISION_CLOSED,
        SEMESTER_CHECK_LISTED,
        CHECK_ITEM_MARKED,
    ]
    .into_iter()
    .map(|event_type| scheme.local_filter(province, event_type))
    .collect()
}

/// The handler: each event's counts are collected (`store::Deltas`) and added to the batch's
/// (`store::BatchCounts`), written once before the batch commits. Only an event whose handling
/// succeeded adds its counts; a batch that starts again starts from none.
#[derive(Default)]
pub struct Counting {
    batch: std::sync::Mutex<store::BatchCounts>,
}

impl Counting {
    fn batch(&self) -> std::sync::MutexGuard<'_, store::BatchCounts> {
        self.batch.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn counted(&self, deltas: store::Deltas) {
        self.batch().merge(deltas);
    }
}

impl EventHandler for Counting {
    /// One notification per county and event type of the batch, delivered at commit only: an open
    /// dashboard re-reads figures that already hold the events.
    fn batch_begin(&self) {
        self.batch().clear();
    }

    async fn batch_applied(&self, conn: &mut PgConnection, applied: &[&EventEnvelope]) -> Result<(), HandlerError> {
        let counts = std::mem::take(&mut *self.batch());
        counts.write(conn).await?;
        let notes: std::collections::BTreeSet<String> =
            applied.iter().map(|envelope| format!("{} {}", envelope.source_region_code, envelope.event_type)).collect();
        let notes: Vec<String> = notes.into_iter().collect();
        sqlx::query("SELECT pg_notify($1, note) FROM unnest($2::text[]) AS t (note)")
            .bind(crate::web::live::CHANNEL)
            .bind(&notes)
            .execute(&mut *conn)
            .await
            .map_err(HandlerError::from)?;
        Ok(())
    }

    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let at = occurred_at(envelope);
        let day = china_date(at);
        if let Some(side) = handoff_side(envelope)? {
            return Ok(store::apply_side(conn, &side, at).await?);
        }
        let mut deltas = store::Deltas::new(day);
        if daily_only(conn, &mut deltas, envelope).await? {
            self.counted(deltas);
            return Ok(());
        }
        let (region, metrics, amount) = if PUPIL_REGISTERED.matches(&envelope.event_type) {
            let event: PupilRegistered = decode_payload(envelope, PUPIL_REGISTERED)?;
            let region = region_field(envelope, "enrollment_region_code", &event.enrollment_region_code)?;
            deltas.bump(&region, &figures::pupil_status_metric("enrolled"), 1);
            let kinds = figures::PupilKinds {
                grade: event.grade,
                migrant: event.migrant,
                registered_poor: event.registered_poor,
                disability: event.disability_grade > 0,
            };
            for metric in kinds.metrics() {
                deltas.bump(&region, &metric, 1);
            }
            (region, vec![Metric::PupilsRegistered], 1)
        } else if PUPILS_IMPORTED.matches(&envelope.event_type) {
            let event: PupilsImported = decode_payload(envelope, PUPILS_IMPORTED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            deltas.bump(&region, &figures::pupil_status_metric("enrolled"), event.count);
            for (metric, count) in [
                (figures::ENROLLED_MIGRANT, event.migrant_count),
                (figures::ENROLLED_POOR, event.registered_poor_count),
                (figures::ENROLLED_DISABILITY, event.disability_count),
            ] {
                if count != 0 {
                    deltas.bump(&region, metric, count);
                }
            }
            for grade in event.grades.iter().filter(|grade| (1..=9).contains(&grade.grade)) {
                deltas.bump(&region, &figures::enrolled_grade_metric(grade.grade), grade.count);
            }
            (region, vec![Metric::PupilsRegistered], event.count)
        } else if CASE_OPENED.matches(&envelope.event_type) {
            let event: CaseOpened = decode_payload(envelope, CASE_OPENED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            let case_id = uuid_field(envelope, "case_id", &event.case_id)?;
            let causes: Vec<&'static str> = event
                .causes
                .iter()
                .filter_map(|cause| nol_proto::v1::DropoutCause::try_from(*cause).ok().and_then(figures::cause_name))
                .collect();
            store::case_moved(conn, &mut deltas, case_id, &region, Some(&causes), "open").await?;
            (region, vec![for_case_opened(&event)], 1)
        } else if CASE_HANDED_OVER.matches(&envelope.event_type) {
            let event: CaseHandedOver = decode_payload(envelope, CASE_HANDED_OVER)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            let case_id = uuid_field(envelope, "case_id", &event.case_id)?;
            store::case_moved(conn, &mut deltas, case_id, &region, None, "handed_over").await?;
            // The origin's case is handed over: its side of the hand-off is accepted, whether or not
            // the transfer service told it (inside a province its `handoff_completed` may not).
            if !event.handoff_id.is_empty() {
                let handoff_id = uuid_field(envelope, "handoff_id", &event.handoff_id)?;
                let side = SideFact {
                    handoff_id,
                    direction: Direction::Outgoing,
                    region,
                    fact: Fact::Decided(Outcome::Accepted),
                };
                store::apply_side(conn, &side, at).await?;
            }
            (region, vec![Metric::CasesHandedOut], 1)
        } else if CASE_STATUS_CHANGED.matches(&envelope.event_type) {
            let event: CaseStatusChanged = decode_payload(envelope, CASE_STATUS_CHANGED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            let case_id = uuid_field(envelope, "case_id", &event.case_id)?;
            let to =
                CaseStatus::try_from(event.to_status).ok().and_then(figures::case_status_name).ok_or_else(|| {
                    HandlerError::Permanent(format!("{} {case_id}: to_status {}", envelope.event_type, event.to_status))
                })?;
            store::case_moved(conn, &mut deltas, case_id, &region, None, to).await?;
            (region, for_status_changed(&event).into_iter().collect(), 1)
        } else if PERSUASION_RECORDED.matches(&envelope.event_type) {
            let event: PersuasionRecorded = decode_payload(envelope, PERSUASION_RECORDED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, for_persuasion(&event), 1)
        } else {
            return Err(HandlerError::Permanent(format!(
                "the reporting service does not count {}",
                envelope.event_type
            )));
        };
        deltas.add(&region, &metrics, at, amount);
        self.counted(deltas);
        Ok(())
    }
}

/// Applies the events counted per day only (not in `region_count`): pupils' status changes,
/// a case's reservation for a hand-off, suspects and supervision items. `false` for other events.
async fn daily_only(
    conn: &mut PgConnection,
    deltas: &mut store::Deltas,
    envelope: &EventEnvelope,
) -> Result<bool, HandlerError> {
    let kind = envelope.event_type.as_str();
    if PUPIL_STATUS_CHANGED.matches(kind) {
        let event: PupilStatusChanged = decode_payload(envelope, PUPIL_STATUS_CHANGED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let from_region = if event.from_region_code.is_empty() {
            region
        } else {
            region_field(envelope, "from_region_code", &event.from_region_code)?
        };
        let status = |value: i32| figures::pupil_status_name(EnrollmentStatus::try_from(value).unwrap_or_default());
        let (from, to) = (status(event.from_status), status(event.to_status));
        // Who the pupil counts as among the enrolled, before and after (a transfer may change the
        // grade and whether the child is a migrant); events older than these fields move nothing.
        let before = figures::PupilKinds {
            grade: event.from_grade,
            migrant: event.from_migrant,
            registered_poor: event.registered_poor,
            disability: event.disability_grade > 0,
        };
        let after = figures::PupilKinds { grade: event.grade, migrant: event.migrant, ..before };
        if event.grade != 0 && (from_region, before) != (region, after) || from != to {
            if from == "enrolled" {
                for metric in before.metrics() {
                    deltas.bump(&from_region, &metric, -1);
                }
            }
            if to == "enrolled" {
                for metric in after.metrics() {
                    deltas.bump(&region, &metric, 1);
                }
            }
        }
        if from == to && from_region == region {
            return Ok(true);
        }
        deltas.bump(&from_region, &figures::pupil_status_metric(from), -1);
        deltas.bump(&region, &figures::pupil_status_metric(to), 1);
        if from == "enrolled" && to != "enrolled" {
            deltas.bump(&from_region, figures::PUPILS_LEFT_ENROLLED, 1);
        }
        if to == "graduated" && from != "graduated" {
            deltas.bump(&from_region, figures::PUPILS_GRADUATED, 1);
        }
    } else if CASE_HANDOFF_PENDING.matches(kind) {
        let event: CaseHandoffPending = decode_payload(envelope, CASE_HANDOFF_PENDING)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let case_id = uuid_field(envelope, "case_id", &event.case_id)?;
        store::case_moved(conn, deltas, case_id, &region, None, "handoff_pending").await?;
    } else if SUSPECT_RECORDED.matches(kind) {
        let event: SuspectRecorded = decode_payload(envelope, SUSPECT_RECORDED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        deltas.bump(&region, figures::SUSPECTS_RECORDED, 1);
        deltas.bump(&region, figures::SUSPECTS_PENDING, 1);
    } else if SUSPECT_RESOLVED.matches(kind) {
        let event: SuspectResolved = decode_payload(envelope, SUSPECT_RESOLVED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let metric = if event.outcome == "confirmed" { figures::SUSPECTS_CONFIRMED } else { figures::SUSPECTS_CLOSED };
        deltas.bump(&region, metric, 1);
        deltas.bump(&region, figures::SUSPECTS_PENDING, -1);
    } else if SUPERVISION_RAISED.matches(kind) {
        let event: SupervisionRaised = decode_payload(envelope, SUPERVISION_RAISED)?;
        // An escalation is the same item raised again one level up: counted once.
        if envelope.aggregate_sequence <= 1 {
            let region = region_field(envelope, "region_code", &event.region_code)?;
            deltas.bump(&region, figures::SUPERVISION_RAISED, 1);
            deltas.bump(&region, figures::SUPERVISION_OPEN, 1);
        }
    } else if SUPERVISION_CLOSED.matches(kind) {
        let event: SupervisionClosed = decode_payload(envelope, SUPERVISION_CLOSED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        deltas.bump(&region, figures::SUPERVISION_CLOSED, 1);
        deltas.bump(&region, figures::SUPERVISION_OPEN, -1);
    } else if SEMESTER_CHECK_LISTED.matches(kind) {
        let event: SemesterCheckListed = decode_payload(envelope, SEMESTER_CHECK_LISTED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        deltas.bump(&region, figures::CHECK_LISTED, event.count);
        deltas.bump(&region, &figures::check_state_metric("pending"), event.count);
    } else if CHECK_ITEM_MARKED.matches(kind) {
        let event: CheckItemMarked = decode_payload(envelope, CHECK_ITEM_MARKED)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let state = |field: &str, text: &str| {
            figures::check_state(text)
                .ok_or_else(|| HandlerError::Permanent(format!("{kind} {}: {field} {text:?}", event.item_id)))
        };
        let (from, to) = (state("from_state", &event.from_state)?, state("to_state", &event.to_state)?);
        if from != to {
            if figures::check_state_is_balance(from) {
                deltas.bump(&region, &figures::check_state_metric(from), -1);
            }
            if figures::check_state_is_balance(to) {
                deltas.bump(&region, &figures::check_state_metric(to), 1);
            }
            if let Some(flow) = figures::check_flow(to) {
                deltas.bump(&region, flow, 1);
            }
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// What a hand-off event says about one side of its hand-off; `None` for other events.
///
/// The transfer service tells each side's own province of that side's steps (the origin: requested,
/// completed — it learned of the accept —, rejected, cancelled; the destination: arrived, rejected,
/// cancelled), each on its county's subject; the destination's accept counts once its case service
/// opened the case (`case_taken_in`), since the accept may still be refused there (R2). The case
/// service announces each side's decision date.
fn handoff_side(envelope: &EventEnvelope) -> Result<Option<SideFact>, HandlerError> {
    let kind = envelope.event_type.as_str();
    let (handoff_id, ends, fact, expected) = if HANDOFF_REQUESTED.matches(kind) {
        let event: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
        (
            event.handoff_id,
            (event.origin_region_code, event.destination_region_code),
            Fact::Exists,
            Some(Direction::Outgoing),
        )
    } else if HANDOFF_ARRIVED.matches(kind) {
        let event: HandoffArrived = decode_payload(envelope, HANDOFF_ARRIVED)?;
        (
            event.handoff_id,
            (event.origin_region_code, event.destination_region_code),
            Fact::Exists,
            Some(Direction::Incoming),
        )
    } else if HANDOFF_COMPLETED.matches(kind) {
        let event: HandoffCompleted = decode_payload(envelope, HANDOFF_COMPLETED)?;
        let fact = Fact::Decided(Outcome::Accepted);
        (event.handoff_id, (event.origin_region_code, event.destination_region_code), fact, Some(Direction::Outgoing))
    } else if HANDOFF_REJECTED.matches(kind) {
        let event: HandoffRejected = decode_payload(envelope, HANDOFF_REJECTED)?;
        let fact = Fact::Decided(Outcome::Rejected(RejectReason::from_proto(event.reason)));
        (event.handoff_id, (event.origin_region_code, event.destination_region_code), fact, None)
    } else if HANDOFF_CANCELLED.matches(kind) {
        let event: HandoffCancelled = decode_payload(envelope, HANDOFF_CANCELLED)?;
        let fact = Fact::Decided(Outcome::Cancelled);
        (event.handoff_id, (event.origin_region_code, event.destination_region_code), fact, None)
    } else if CASE_TAKEN_IN.matches(kind) {
        let event: CaseTakeIn = decode_payload(envelope, CASE_TAKEN_IN)?;
        let handoff_id = uuid_field(envelope, "handoff_id", &event.handoff_id)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let fact = Fact::Decided(Outcome::Accepted);
        return Ok(Some(SideFact { handoff_id, direction: Direction::Incoming, region, fact }));
    } else if HANDOFF_DECISION_DUE.matches(kind) {
        let event: HandoffDecisionDue = decode_payload(envelope, HANDOFF_DECISION_DUE)?;
        let due_on = chrono::NaiveDate::parse_from_str(&event.due_on, "%Y-%m-%d")
            .map_err(|_| HandlerError::Permanent(format!("{kind} {}: due_on {:?}", event.handoff_id, event.due_on)))?;
        let handoff_id = uuid_field(envelope, "handoff_id", &event.handoff_id)?;
        let origin = region_field(envelope, "origin_region_code", &event.origin_region_code)?;
        let destination = region_field(envelope, "destination_region_code", &event.destination_region_code)?;
        let region = region_field(envelope, "region_code", &event.region_code)?;
        let direction = side_of(&region, &origin, &destination).ok_or_else(|| {
            HandlerError::Permanent(format!("{kind} {handoff_id}: {region} is neither {origin} nor {destination}"))
        })?;
        return Ok(Some(SideFact { handoff_id, direction, region, fact: Fact::DueOn(due_on) }));
    } else {
        return Ok(None);
    };
    let handoff_id = uuid_field(envelope, "handoff_id", &handoff_id)?;
    let origin = region_field(envelope, "origin_region_code", &ends.0)?;
    let destination = region_field(envelope, "destination_region_code", &ends.1)?;
    let region = region_field(envelope, "source_region_code", &envelope.source_region_code)?;
    let direction = side_of(&region, &origin, &destination)
        .filter(|direction| expected.is_none_or(|expected| expected == *direction))
        .ok_or_else(|| {
            HandlerError::Permanent(format!(
                "{kind} {handoff_id} from {region}: not a side of the hand-off {origin} → {destination} it may tell"
            ))
        })?;
    Ok(Some(SideFact { handoff_id, direction, region, fact }))
}
