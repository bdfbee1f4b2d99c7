//! What the owner's case file keeps of regions working a case together (协查, R8, R11): each step
//! of a request for help, told by this province's transfer service, becomes an entry in the case's
//! history, and the persuasion attempts a helping county reports become the case's own attempts
//! (attributed to that county and its request; joint where they are joint, so R6 can rest on them).
//! Both sides' due dates are watched (`assistance_watch`) for overdue work and supervision (R12):
//! the owner's from its own copies, the helper's from the copies its transfer service tells it.

use nol_backbone::consumer::HandlerError;
use nol_events::{EventEnvelope, SubjectScheme, uuid_field};
use nol_proto::v1::{
    AssistanceAnswered, AssistanceAsked, AssistanceClosed, AssistanceReported, AssistanceState, HandoffDirection,
};
use nol_region::RegionCode;
use sqlx::PgConnection;

use crate::case::domain::check_attempt;
use crate::case::ledger;
use crate::case::service::handoff::origin_attempt;
use crate::case::store;
use crate::supervision::store::{self as supervision_store, WatchedAssistance};

/// A step of a request for help, for the case's history.
pub enum Step {
    Asked(AssistanceAsked),
    Answered(AssistanceAnswered),
    Reported(AssistanceReported),
    Closed(AssistanceClosed),
}

/// Which side's copy a step is: the helper's own (INCOMING) only moves the helper's watch; any
/// other is the owner's.
fn helper_side(side: i32) -> bool {
    side == HandoffDirection::Incoming as i32
}

pub async fn apply(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    envelope: &EventEnvelope,
    step: Step,
) -> Result<(), HandlerError> {
    let region = |text: &str, field: &str| {
        RegionCode::parse(text)
            .map_err(|_| HandlerError::Permanent(format!("{}: {field} {text:?}", envelope.event_type)))
    };
    let assistance_id = match &step {
        Step::Asked(asked) => &asked.assistance_id,
        Step::Answered(answered) => &answered.assistance_id,
        Step::Reported(reported) => &reported.assistance_id,
        Step::Closed(closed) => &closed.assistance_id,
    };
    let assistance_id = uuid_field(envelope, "assistance_id", assistance_id)?;
    // The helper's side: watch the request's due date until it declines or the owner closes.
    match &step {
        Step::Asked(asked) if helper_side(asked.side) => {
            let watched = WatchedAssistance {
                assistance_id,
                outgoing: false,
                region: &region(&asked.assisting_region_code, "assisting_region_code")?,
                other_region: &region(&asked.owner_region_code, "owner_region_code")?,
                case_id: uuid_field(envelope, "case_id", &asked.case_id)?,
                child: &asked.child.clone().unwrap_or_default(),
                due_on: due_date(envelope, &asked.due_date)?,
            };
            return Ok(supervision_store::watch_assistance(conn, &watched).await?);
        }
        Step::Answered(answered) if helper_side(answered.side) => {
            return Ok(supervision_store::assistance_ended(conn, assistance_id, false).await?);
        }
        Step::Closed(closed) if helper_side(closed.side) => {
            return Ok(supervision_store::assistance_ended(conn, assistance_id, false).await?);
        }
        _ => {}
    }
    let (case_id, change, detail) = match &step {
        Step::Asked(asked) => (
            &asked.case_id,
            "assistance_requested",
            serde_json::json!({
                "assistance_id": asked.assistance_id, "assisting_region_code": asked.assisting_region_code,
                "reason": asked.reason, "needs": asked.needs, "due_date": asked.due_date, "note": asked.note,
                "attempt_id": asked.attempt_id,
            }),
        ),
        Step::Answered(answered) => {
            let change = if answered.state == AssistanceState::Declined as i32 {
                "assistance_declined"
            } else {
                "assistance_accepted"
            };
            let detail = serde_json::json!({
                "assistance_id": answered.assistance_id, "assisting_region_code": answered.assisting_region_code,
                "decline_reason": answered.decline_reason, "decided_by": answered.decided_by,
            });
            (&answered.case_id, change, detail)
        }
        Step::Reported(reported) => {
            let report = reported.report.clone().unwrap_or_default();
            let findings: Vec<serde_json::Value> = report
                .findings
                .iter()
                .map(|finding| {
                    serde_json::json!({
                        "kind": finding.kind, "place": finding.place, "found_date": finding.found_date,
                        "note": finding.note,
                    })
                })
                .collect();
            let evidence: Vec<serde_json::Value> = report
                .evidence
                .iter()
                .map(|evidence| {
                    serde_json::json!({
                        "title": evidence.title, "document_date": evidence.document_date, "note": evidence.note,
                    })
                })
                .collect();
            let detail = serde_json::json!({
                "assistance_id": reported.assistance_id, "report_id": report.report_id,
                "assisting_region_code": report.assisting_region_code, "reported_by": report.reported_by,
                "attempts": report.attempts.len(), "findings": findings, "evidence": evidence,
            });
            (&reported.case_id, "assistance_reported", detail)
        }
        Step::Closed(closed) => (
            &closed.case_id,
            "assistance_closed",
            serde_json::json!({
                "assistance_id": closed.assistance_id, "assisting_region_code": closed.assisting_region_code,
                "note": closed.note, "closed_by": closed.closed_by,
            }),
        ),
    };
    let case_id = uuid_field(envelope, "case_id", case_id)?;
    let Some(case) = store::get_for_update(conn, case_id).await? else {
        return Err(HandlerError::Permanent(format!("case {case_id} does not exist here")));
    };
    // The owner's side: its case waits on the request until it is declined or closed.
    match &step {
        Step::Asked(asked) => {
            let child = crate::child::on_file(&case.child, None);
            let watched = WatchedAssistance {
                assistance_id,
                outgoing: true,
                region: &case.region,
                other_region: &region(&asked.assisting_region_code, "assisting_region_code")?,
                case_id,
                child: &child,
                due_on: due_date(envelope, &asked.due_date)?,
            };
            supervision_store::watch_assistance(conn, &watched).await?;
        }
        Step::Answered(answered) if answered.state == AssistanceState::Declined as i32 => {
            supervision_store::assistance_ended(conn, assistance_id, true).await?;
        }
        Step::Closed(_) => supervision_store::assistance_ended(conn, assistance_id, true).await?,
        _ => {}
    }
    if let Step::Reported(reported) = &step
        && check_attempt(case.status).is_ok()
    {
        let report = reported.report.clone().unwrap_or_default();
        let helper = RegionCode::parse(&report.assisting_region_code)
            .map_err(|_| HandlerError::Permanent(format!("report of {}: assisting region", reported.assistance_id)))?;
        for attempt in &report.attempts {
            let Some((mut new, actor)) = origin_attempt(attempt, &helper) else {
                tracing::warn!(assistance_id = %assistance_id, "a reported attempt does not decode; kept in the history only");
                continue;
            };
            new.assisted = Some((helper, assistance_id));
            // The case's version moves with each attempt; the history entry below follows them.
            let case = store::get_for_update(conn, case_id).await?.ok_or(sqlx::Error::RowNotFound)?;
            ledger::record_attempt(conn, scheme, &case, &new, &actor).await?;
        }
    }
    ledger::record_file_change(conn, case_id, &envelope.actor, change, detail).await?;
    Ok(())
}

fn due_date(envelope: &EventEnvelope, text: &str) -> Result<chrono::NaiveDate, HandlerError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| HandlerError::Permanent(format!("{}: due_date {text:?}", envelope.event_type)))
}
