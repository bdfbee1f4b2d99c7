//! Every transition of a case as its own RPC (R1, R4, R5, R6, R13). The domain decides over the
//! facts the locked case's file shows; the ledger writes the change with its history and event.

use nol_auth::{Caller, Denied, Role};
use nol_messages::vocab::Action;
use nol_messages::{Case as Says, Common, Count};
use nol_proto::v1::{
    ApproveDeferralRequest, CloseCaseRequest, CloseReason, DeferralKind, ExemptCaseRequest, RecordRelapseRequest,
    RejectDeferralRequest, RequestDeferralRequest, ReturnToSchoolRequest, StartHomeTeachingRequest,
    StartMonitoringRequest,
};
use nol_runtime::error::{checked, parse_uuid};
use nol_runtime::{ServiceError, Violations};
use sqlx::PgConnection;

use super::{CaseService, CaseView, date_text, past_date, text_field};
use crate::case::domain::file::DeferralRequest;
use crate::case::domain::stored::{Stored, from_wire};
use crate::case::domain::{Case, CaseFacts, Command, DeferralState, check_decider, check_undecided, decide};
use crate::case::ledger::{self, StatusChange};
use crate::case::store::file as file_store;

const CHANGE_ROLES: &[Role] = &[Role::Caseworker];

/// The detail a transition records: fresh, or the case's current detail with these fields added
/// (monitoring and closing keep where the child returned to).
enum Detail {
    Fresh(&'static str, serde_json::Map<String, serde_json::Value>),
    Keep(&'static str, serde_json::Map<String, serde_json::Value>),
}

/// A note of at most 2,000 characters.
fn check_note(field: &str, note: &str) -> Result<(), ServiceError> {
    if note.chars().count() > 2000 {
        return Err(ServiceError::invalid(field, Common::TooLong { max: Count(2000) }));
    }
    Ok(())
}

impl CaseService {
    /// What the rules look at for a locked case.
    pub(crate) async fn facts(&self, conn: &mut PgConnection, case: &Case) -> Result<CaseFacts, ServiceError> {
        let today = self.clock.today();
        Ok(file_store::facts(conn, case.id, case.status, case.disability_grade, case.child.birth_date, today).await?)
    }

    /// A status transition: the rules decide over the facts the locked case shows; the change,
    /// its history entry and its `case_status_changed` event are written in one transaction.
    async fn transition(
        &self,
        caller: &Caller,
        case_id: &str,
        command: Command,
        note: &str,
        detail: Detail,
    ) -> Result<CaseView, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::MoveCaseStatus)?;
        let id = parse_uuid("case_id", case_id)?;
        check_note("note", note)?;
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        let facts = self.facts(&mut tx, &case).await?;
        let to = decide(&facts, command)?;
        let (change, mut fields) = match detail {
            Detail::Fresh(change, fields) => (change, fields),
            Detail::Keep(change, fields) => {
                let mut kept = case.status_detail.as_object().cloned().unwrap_or_default();
                kept.extend(fields);
                (change, kept)
            }
        };
        if !note.trim().is_empty() {
            fields.insert("note".to_owned(), note.trim().into());
        }
        let relapse = command == Command::RecordRelapse;
        let status_change = StatusChange {
            to,
            change,
            actor: &caller.subject,
            detail: serde_json::Value::Object(fields),
            relapse,
            follow_up_from: None,
            confirmed_on: relapse.then_some(today),
        };
        let reason = if note.trim().is_empty() { change.to_owned() } else { note.trim().to_owned() };
        ledger::change_status(&mut tx, &self.scheme, &case, &status_change, &reason).await?;
        self.committed(tx, caller, &format!("case.{change}"), id).await?;
        tracing::info!(case_id = %id, from = case.status.as_stored(), to = to.as_stored(), "case status changed");
        self.current(id).await
    }

    pub async fn return_to_school(
        &self,
        caller: &Caller,
        request: ReturnToSchoolRequest,
    ) -> Result<CaseView, ServiceError> {
        let returned = request.returned.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let school_name = text_field(&mut violations, "returned.school_name", &returned.school_name, true, 100);
        let school_code = text_field(&mut violations, "returned.school_code", &returned.school_code, false, 20);
        let class_name = text_field(&mut violations, "returned.class_name", &returned.class_name, true, 50);
        let returned_on = if returned.returned_on.trim().is_empty() {
            Some(today)
        } else {
            past_date(&mut violations, "returned.returned_on", &returned.returned_on, today)
        };
        violations.finish()?;
        let mut fields = serde_json::Map::new();
        fields.insert("school_name".into(), school_name.into());
        fields.insert("school_code".into(), school_code.into());
        fields.insert("class_name".into(), class_name.into());
        fields.insert("returned_on".into(), date_text(checked(returned_on)?).into());
        self.transition(caller, &request.case_id, Command::ReturnToSchool, "", Detail::Fresh("returned", fields)).await
    }

    pub async fn start_monitoring(
        &self,
        caller: &Caller,
        request: StartMonitoringRequest,
    ) -> Result<CaseView, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(caller, &request.case_id, Command::StartMonitoring, "", Detail::Keep("monitoring", fields))
            .await
    }

    pub async fn close(&self, caller: &Caller, request: CloseCaseRequest) -> Result<CaseView, ServiceError> {
        let reason = from_wire::<CloseReason>(request.reason)
            .ok_or_else(|| ServiceError::invalid("reason", Says::CloseReasonRequired))?;
        let mut fields = serde_json::Map::new();
        fields.insert("close_reason".into(), reason.as_stored().into());
        self.transition(caller, &request.case_id, Command::Close(reason), &request.note, Detail::Keep("closed", fields))
            .await
    }

    pub async fn start_home_teaching(
        &self,
        caller: &Caller,
        request: StartHomeTeachingRequest,
    ) -> Result<CaseView, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(
            caller,
            &request.case_id,
            Command::StartHomeTeaching,
            &request.note,
            Detail::Fresh("home_teaching", fields),
        )
        .await
    }

    pub async fn exempt(&self, caller: &Caller, request: ExemptCaseRequest) -> Result<CaseView, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(caller, &request.case_id, Command::Exempt, &request.note, Detail::Fresh("exempt", fields)).await
    }

    pub async fn relapse(&self, caller: &Caller, request: RecordRelapseRequest) -> Result<CaseView, ServiceError> {
        if request.note.trim().is_empty() {
            return Err(ServiceError::invalid("note", Says::RelapseNoteRequired));
        }
        let fields = serde_json::Map::new();
        self.transition(
            caller,
            &request.case_id,
            Command::RecordRelapse,
            &request.note,
            Detail::Fresh("relapsed", fields),
        )
        .await
    }

    /// RequestDeferral (R6 a–c are checked now and again at approval).
    pub async fn request_deferral(
        &self,
        caller: &Caller,
        request: RequestDeferralRequest,
    ) -> Result<DeferralRequest, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::RequestDeferrals)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let mut violations = Violations::default();
        let kind = violations.check("kind", from_wire::<DeferralKind>(request.kind).ok_or(Says::DeferralKindRequired));
        let reason = text_field(&mut violations, "reason", &request.reason, true, 2000);
        violations.finish()?;
        let kind = checked(kind)?;
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        let facts = self.facts(&mut tx, &case).await?;
        decide(&facts, Command::RequestDeferral(kind))?;
        let added = file_store::insert_deferral(&mut tx, id, kind, &reason, &caller.subject).await?;
        let detail = serde_json::json!({ "request_id": added.id, "kind": kind.as_stored(), "reason": reason });
        ledger::record_file_change(&mut tx, id, &caller.subject, "deferral_requested", detail).await?;
        self.committed(tx, caller, "case.request_deferral", id).await?;
        Ok(added)
    }

    /// The pending request and its case, locked, for a decision by an approver of the owning
    /// county (the county poverty-alleviation group, R6 d).
    async fn deciding(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        request_id: &str,
    ) -> Result<(DeferralRequest, Case), ServiceError> {
        caller.require_role(&[Role::Approver], Action::DecideDeferrals)?;
        let id = parse_uuid("request_id", request_id)?;
        let request = file_store::deferral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Says::NoDeferralRequest { request_id: id.to_string() }))?;
        let case = self.lock(conn, caller, request.case_id).await?;
        check_decider(&case.region, &caller.region).map_err(|refusal| Denied::Refused(refusal.into()))?;
        check_undecided(request.state, request.decided_by.as_deref())?;
        Ok((request, case))
    }

    pub async fn approve_deferral(
        &self,
        caller: &Caller,
        request: ApproveDeferralRequest,
    ) -> Result<(DeferralRequest, CaseView), ServiceError> {
        let note = request.note.trim();
        check_note("note", note)?;
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let (pending, case) = self.deciding(&mut tx, caller, &request.request_id).await?;
        let facts = self.facts(&mut tx, &case).await?;
        let to = decide(&facts, Command::ApproveDeferral)?;
        let decided = file_store::decide_deferral(&mut tx, pending.id, DeferralState::Approved, note, &caller.subject)
            .await?
            .ok_or_else(|| ServiceError::precondition(Says::DeferralNoLongerPending))?;
        let status_change = StatusChange {
            to,
            change: to.as_stored(),
            actor: &caller.subject,
            detail: serde_json::json!({
                "request_id": pending.id, "kind": pending.kind.as_stored(), "reason": pending.reason,
                "requested_by": pending.requested_by, "approved_by": caller.subject, "note": note,
            }),
            relapse: false,
            follow_up_from: Some(today),
            confirmed_on: None,
        };
        let reason = format!("R6: {} approved by the county poverty-alleviation group", pending.kind.as_stored());
        ledger::change_status(&mut tx, &self.scheme, &case, &status_change, &reason).await?;
        self.committed(tx, caller, "case.approve_deferral", case.id).await?;
        Ok((decided, self.current(case.id).await?))
    }

    pub async fn reject_deferral(
        &self,
        caller: &Caller,
        request: RejectDeferralRequest,
    ) -> Result<DeferralRequest, ServiceError> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(ServiceError::invalid("reason", Says::ReasonRequiredUpTo { max: Count(2000) }));
        }
        let mut tx = self.pool.begin().await?;
        let (pending, case) = self.deciding(&mut tx, caller, &request.request_id).await?;
        let decided =
            file_store::decide_deferral(&mut tx, pending.id, DeferralState::Rejected, reason, &caller.subject)
                .await?
                .ok_or_else(|| ServiceError::precondition(Says::DeferralNoLongerPending))?;
        let detail = serde_json::json!({ "request_id": pending.id, "reason": reason });
        ledger::record_file_change(&mut tx, case.id, &caller.subject, "deferral_rejected", detail).await?;
        self.committed(tx, caller, "case.reject_deferral", case.id).await?;
        Ok(decided)
    }
}
