//! `AssistanceService`: one use case per RPC, validated at the edge, scoped to the caller's region,
//! audited.

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_messages::vocab::Action;
use nol_messages::{Common, Count, Transfer as Msg};
use nol_proto::v1::assistance_service_server::AssistanceService;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::*;
use nol_region::RegionCode;
use nol_runtime::error::{checked, parse_uuid};
use nol_runtime::paging::{self, Cursor};
use nol_runtime::time::timestamp;
use nol_runtime::{Platform, ServiceError, Violations, audit};
use nol_telemetry::PropagateTrace;
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::notice::{self, Notice};
use super::store::{self, ListFilter, NewAssistance};
use super::{Assistance as Stored, DEFAULT_DUE_DAYS, MAX_DUE_DAYS, State};
use crate::domain::{Direction, case_standing};
use crate::grpc::{case_channel, text, with_token};
use crate::handoffs::Steps;
use crate::proto::{direction_from_proto, direction_to_proto};

/// At most this many attempts, findings and pieces of evidence in one report.
const REPORT_MAX_ITEMS: usize = 50;

type CaseClient = CaseServiceClient<InterceptedService<Channel, PropagateTrace>>;

pub struct Assistance {
    pool: PgPool,
    steps: Steps,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    cases: CaseClient,
    clock: nol_runtime::clock::Clock,
}

/// A day not after `today` (optional when `required` is false).
fn past_day(violations: &mut Violations, field: &str, text: &str, today: NaiveDate, required: bool) {
    let text = text.trim();
    if text.is_empty() {
        if required {
            violations.add(field, Common::RequiredDate);
        }
        return;
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Err(_) => violations.add(field, Common::NotADate),
        Ok(day) if day > today => violations.add(field, Common::InFuture { today: today.to_string() }),
        Ok(_) => {}
    }
}

/// What is needed: at least one, each known, each once.
fn needs(violations: &mut Violations, given: &[i32]) -> Vec<AssistanceNeed> {
    let mut needs: Vec<AssistanceNeed> = Vec::new();
    for need in given {
        match AssistanceNeed::try_from(*need) {
            Ok(AssistanceNeed::Unspecified) | Err(_) => {
                violations.add("needs", Common::UnknownValues { values: format!("[{need}]") })
            }
            Ok(need) if !needs.contains(&need) => needs.push(need),
            Ok(_) => {}
        }
    }
    if given.is_empty() {
        violations.add("needs", Msg::NeedRequired);
    }
    needs
}

/// The due date: after today and at most 180 days ahead; 14 days from today when not given.
fn due_date(violations: &mut Violations, text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        return Some(today + chrono::Duration::days(DEFAULT_DUE_DAYS));
    }
    let latest = today + chrono::Duration::days(MAX_DUE_DAYS);
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Err(_) => violations.add("due_date", Common::NotADate),
        Ok(day) if day <= today => violations.add("due_date", Msg::DueDateNotAfterToday { today: today.to_string() }),
        Ok(day) if day > latest => violations.add("due_date", Msg::DueDateTooFar { latest: latest.to_string() }),
        Ok(day) => return Some(day),
    }
    None
}

/// The contract's view of one side's request, with its reports.
pub fn to_proto(request: &Stored, reports: Vec<AssistanceReport>, today: NaiveDate) -> nol_proto::v1::Assistance {
    nol_proto::v1::Assistance {
        assistance_id: request.id.to_string(),
        direction: direction_to_proto(request.direction) as i32,
        state: request.state.to_proto() as i32,
        case_id: request.case_id.to_string(),
        owner_region_code: request.owner_region.to_string(),
        assisting_region_code: request.assisting_region.to_string(),
        reason: request.reason as i32,
        needs: request.needs.iter().map(|need| *need as i32).collect(),
        due_date: request.due_on.format("%Y-%m-%d").to_string(),
        note: request.note.clone(),
        child: Some(request.child.clone()),
        requested_by: request.requested_by.clone(),
        request_time: Some(timestamp(request.requested_at)),
        decline_reason: request.decline_reason.clone().unwrap_or_default(),
        decided_by: request.decided_by.clone().unwrap_or_default(),
        decide_time: request.decided_at.map(timestamp),
        reports,
        close_note: request.close_note.clone().unwrap_or_default(),
        closed_by: request.closed_by.clone().unwrap_or_default(),
        close_time: request.closed_at.map(timestamp),
        overdue: request.overdue(today),
        attempt_id: request.attempt_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

impl Assistance {
    pub fn new(platform: &Platform, cases_url: &str, steps: Steps) -> anyhow::Result<Assistance> {
        let channel = case_channel(platform, cases_url)?;
        Ok(Assistance {
            pool: platform.pool.clone(),
            steps,
            wake: platform.wake.clone(),
            province: platform.config.province,
            cases: CaseServiceClient::with_interceptor(channel, PropagateTrace),
            clock: platform.clock.clone(),
        })
    }

    async fn view(&self, request: &Stored) -> Result<nol_proto::v1::Assistance, ServiceError> {
        let reports = store::reports(&self.pool, &[request.id], request.direction).await?;
        Ok(to_proto(request, reports.into_iter().map(|(_, report)| report).collect(), self.clock.today()))
    }

    async fn request(
        &self,
        caller: &Caller,
        request: RequestAssistanceRequest,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let today = self.clock.today();
        let mut violations = Violations::default();
        let case_id =
            violations.check("case_id", Uuid::parse_str(request.case_id.trim()).map_err(|_| Common::NotAUuid));
        let helper =
            violations.check("assisting_region_code", RegionCode::parse_county(&request.assisting_region_code));
        let reason =
            AssistanceReason::try_from(request.reason).ok().filter(|reason| *reason != AssistanceReason::Unspecified);
        if reason.is_none() {
            if request.reason == 0 {
                violations.add("reason", Common::Required);
            } else {
                violations.add("reason", Msg::NotAReason);
            }
        }
        let needs = needs(&mut violations, &request.needs);
        let note_required = (reason == Some(AssistanceReason::Other)).then(|| Msg::NoteRequiredForOther.into());
        let note = text(&mut violations, "note", &request.note, note_required);
        let due_on = due_date(&mut violations, &request.due_date, today);
        violations.finish()?;
        let (case_id, helper) = (checked(case_id)?, checked(helper)?);
        let (reason, due_on) = (reason.unwrap_or(AssistanceReason::Other), due_on.unwrap_or(today));
        // The case as the caller may see it: the case service checks scope and audits the read.
        let lookup = with_token(caller, GetCaseRequest { case_id: case_id.to_string(), view: CaseView::Masked as i32 });
        let case = self
            .cases
            .clone()
            .get_case(lookup)
            .await
            .map_err(|status| ServiceError::from_upstream(status, "case"))?
            .into_inner()
            .dropout_case
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("case service answered without a case")))?;
        let owner = RegionCode::parse(&case.region_code).map_err(anyhow::Error::from)?;
        caller.require_scope(&owner)?;
        if helper == owner {
            return Err(ServiceError::invalid(
                "assisting_region_code",
                Msg::AssistanceToOwnCounty { name: owner.full_name(), code: owner.to_string() },
            ));
        }
        let status = CaseStatus::try_from(case.status).unwrap_or_default();
        if matches!(status, CaseStatus::HandedOver | CaseStatus::Exempt | CaseStatus::Closed | CaseStatus::Unspecified)
        {
            return Err(ServiceError::precondition(Msg::AssistanceCaseEnded { standing: case_standing(status) }));
        }
        if self.steps.seal_key(&helper).is_none() {
            let province = helper.province();
            return Err(ServiceError::precondition(Msg::NoLink {
                name: province.full_name(),
                code: province.to_string(),
            }));
        }
        let child = case.child.clone().unwrap_or_default();
        let child = ChildSummary { resident_id: String::new(), ..child };
        let new = NewAssistance {
            id: Uuid::now_v7(),
            case_id,
            owner_region: &owner,
            assisting_region: &helper,
            reason,
            needs: &needs,
            due_on,
            note: &note,
            attempt_id: None,
            child: &child,
            requested_by: &caller.subject,
        };
        let mut tx = self.pool.begin().await?;
        let Some(asked) = self.steps.ask_help(&mut tx, &new).await? else {
            return Err(ServiceError::already_exists(Msg::AssistanceOpenAlready {
                name: helper.full_name(),
                code: helper.to_string(),
            }));
        };
        audit::record(&mut tx, caller, "assistance.request", "assistance", &[asked.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(to_proto(&asked, Vec::new(), today))
    }

    /// One side of a request in the caller's scope, locked when `lock`.
    async fn side(
        &self,
        conn: &mut sqlx::PgConnection,
        caller: &Caller,
        id: Uuid,
        direction: Direction,
        lock: bool,
    ) -> Result<Stored, ServiceError> {
        let found = if lock {
            store::get_for_update(conn, id, direction).await?
        } else {
            store::get(&mut *conn, id, direction).await?
        };
        let not_found = || ServiceError::not_found(Msg::NoAssistance { id: id.to_string() });
        let request = found.ok_or_else(not_found)?;
        // Another region's request reads as absent, whichever side it is.
        if !caller.sees(request.own_region()) {
            return Err(not_found());
        }
        Ok(request)
    }

    /// The helper's side for a step, locked; an owner's request answers NotIncoming.
    async fn incoming(&self, conn: &mut sqlx::PgConnection, caller: &Caller, id: &str) -> Result<Stored, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let id = parse_uuid("assistance_id", id)?;
        match self.side(conn, caller, id, Direction::Incoming, true).await {
            Err(ServiceError::NotFound(_)) if store::get(&mut *conn, id, Direction::Outgoing).await?.is_some() => {
                Err(ServiceError::precondition(Msg::AssistanceNotIncoming))
            }
            other => other,
        }
    }

    async fn get(
        &self,
        caller: &Caller,
        request: GetAssistanceRequest,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        let id = parse_uuid("assistance_id", &request.assistance_id)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let mut conn = self.pool.acquire().await?;
        let found = match direction {
            Some(direction) => self.side(&mut conn, caller, id, direction, false).await?,
            None => match self.side(&mut conn, caller, id, Direction::Outgoing, false).await {
                Ok(found) => found,
                Err(ServiceError::NotFound(_)) => self.side(&mut conn, caller, id, Direction::Incoming, false).await?,
                Err(error) => return Err(error),
            },
        };
        audit::record(&mut conn, caller, "assistance.get", "assistance", &[id.to_string()]).await?;
        // Back to the pool before the view takes one: no call holds two.
        drop(conn);
        self.view(&found).await
    }

    async fn list(
        &self,
        caller: &Caller,
        request: ListAssistanceRequest,
    ) -> Result<ListAssistanceResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let state = AssistanceState::try_from(request.state)
            .map(State::from_proto)
            .map_err(|_| ServiceError::invalid("state", Msg::NotAState))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let today = self.clock.today();
        let filter = ListFilter {
            prefix: region.subtree_prefix(),
            direction,
            state,
            overdue_on: request.overdue_only.then_some(today),
        };
        let mut rows = store::list(&self.pool, &filter, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.requested_at, id: row.id });
        // Each side's reports, by request and side.
        let mut reports: std::collections::HashMap<(Uuid, Direction), Vec<AssistanceReport>> = Default::default();
        for direction in [Direction::Outgoing, Direction::Incoming] {
            let ids: Vec<Uuid> = rows.iter().filter(|row| row.direction == direction).map(|row| row.id).collect();
            if ids.is_empty() {
                continue;
            }
            for (id, report) in store::reports(&self.pool, &ids, direction).await? {
                reports.entry((id, direction)).or_default().push(report);
            }
        }
        let views = rows
            .iter()
            .map(|row| {
                let own = reports.remove(&(row.id, row.direction)).unwrap_or_default();
                to_proto(row, own, today)
            })
            .collect();
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        audit::record_read(&self.pool, caller, "assistance.list", "assistance", &ids).await?;
        Ok(ListAssistanceResponse { assistance: views, next_page_token })
    }

    async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        decision: State,
        reason: Option<String>,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let request = self.incoming(&mut tx, caller, id).await?;
        request.state.check_decide().map_err(ServiceError::precondition)?;
        let decided = self.steps.decide_help(&mut tx, &request, decision, reason.as_deref(), &caller.subject).await?;
        let action = if decision == State::Accepted { "assistance.accept" } else { "assistance.decline" };
        audit::record(&mut tx, caller, action, "assistance", &[decided.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        self.view(&decided).await
    }

    async fn report(
        &self,
        caller: &Caller,
        request: ReportAssistanceRequest,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let today = self.clock.today();
        let mut report = request.report.unwrap_or_default();
        let mut violations = Violations::default();
        let items = report.attempts.len() + report.findings.len() + report.evidence.len();
        if items == 0 {
            violations.add("report", Msg::ReportEmpty);
        } else if items > REPORT_MAX_ITEMS {
            violations.add("report", Common::TooLong { max: Count(REPORT_MAX_ITEMS as u64) });
        }
        for (index, attempt) in report.attempts.iter_mut().enumerate() {
            let field = |name: &str| format!("report.attempts[{index}].{name}");
            past_day(&mut violations, &field("attempt_date"), &attempt.attempt_date, today, true);
            let departments: Vec<PersuasionDepartment> =
                attempt.departments.iter().filter_map(|value| PersuasionDepartment::try_from(*value).ok()).collect();
            if departments.is_empty() || departments.contains(&PersuasionDepartment::Unspecified) {
                violations.add(&field("departments"), Common::Required);
            }
            let means_known = attempt.means.iter().all(|value| {
                PersuasionMeans::try_from(*value).is_ok_and(|means| means != PersuasionMeans::Unspecified)
            });
            if attempt.means.is_empty() || !means_known {
                violations.add(&field("means"), Common::Required);
            }
            if PersuasionPlace::try_from(attempt.place).is_err() {
                violations.add(&field("place"), Common::Required);
            }
            if !PersuasionOutcome::try_from(attempt.outcome)
                .is_ok_and(|outcome| outcome != PersuasionOutcome::Unspecified)
            {
                violations.add(&field("outcome"), Common::Required);
            }
            attempt.notes = text(&mut violations, &field("notes"), &attempt.notes, None);
            attempt.joint = departments.iter().any(|department| *department != PersuasionDepartment::Education);
            attempt.attempt_id = Uuid::now_v7().to_string();
            attempt.recorded_by = caller.subject.clone();
        }
        for (index, finding) in report.findings.iter_mut().enumerate() {
            let field = |name: &str| format!("report.findings[{index}].{name}");
            let kind = AssistanceFindingKind::try_from(finding.kind)
                .ok()
                .filter(|kind| *kind != AssistanceFindingKind::Unspecified);
            if kind.is_none() {
                violations.add(&field("kind"), Common::Required);
            }
            let needs_place =
                matches!(kind, Some(AssistanceFindingKind::ChildFound | AssistanceFindingKind::ReturnedToSchool));
            finding.place = text(
                &mut violations,
                &field("place"),
                &finding.place,
                needs_place.then(|| Msg::FindingPlaceRequired.into()),
            );
            past_day(&mut violations, &field("found_date"), &finding.found_date, today, false);
            finding.note = text(&mut violations, &field("note"), &finding.note, None);
        }
        for (index, evidence) in report.evidence.iter_mut().enumerate() {
            let field = |name: &str| format!("report.evidence[{index}].{name}");
            evidence.title = text(&mut violations, &field("title"), &evidence.title, Some(Common::Required.into()));
            past_day(&mut violations, &field("document_date"), &evidence.document_date, today, false);
            evidence.note = text(&mut violations, &field("note"), &evidence.note, None);
        }
        violations.finish()?;
        let mut tx = self.pool.begin().await?;
        let found = self.incoming(&mut tx, caller, &request.assistance_id).await?;
        found.state.check_report().map_err(ServiceError::precondition)?;
        let now = chrono::Utc::now();
        report.report_id = Uuid::now_v7().to_string();
        report.assisting_region_code = found.assisting_region.to_string();
        report.reported_by = caller.subject.clone();
        report.report_time = Some(timestamp(now));
        for attempt in &mut report.attempts {
            attempt.record_time = Some(timestamp(now));
        }
        self.steps.report_help(&mut tx, &found, &report, now).await?;
        audit::record(&mut tx, caller, "assistance.report", "assistance", &[found.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        self.view(&found).await
    }

    async fn close(
        &self,
        caller: &Caller,
        request: CloseAssistanceRequest,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let mut violations = Violations::default();
        let note = text(&mut violations, "note", &request.note, Some(Msg::CloseNoteRequired.into()));
        violations.finish()?;
        let id = parse_uuid("assistance_id", &request.assistance_id)?;
        let mut tx = self.pool.begin().await?;
        let found = match self.side(&mut tx, caller, id, Direction::Outgoing, true).await {
            Err(ServiceError::NotFound(_)) if store::get(&mut *tx, id, Direction::Incoming).await?.is_some() => {
                return Err(ServiceError::precondition(Msg::AssistanceNotOutgoing));
            }
            other => other?,
        };
        found.state.check_close().map_err(ServiceError::precondition)?;
        let closed = self.steps.close_help(&mut tx, &found, &note, &caller.subject).await?;
        audit::record(&mut tx, caller, "assistance.close", "assistance", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        self.view(&closed).await
    }
}

/// The contract's view of one side's R10 notice.
fn notice_to_proto(notice: &Notice) -> HukouNotice {
    HukouNotice {
        notice_id: notice.id.to_string(),
        direction: direction_to_proto(notice.direction) as i32,
        state: notice.state as i32,
        case_id: notice.case_id.to_string(),
        owner_region_code: notice.owner_region.to_string(),
        hukou_region_code: notice.hukou_region.to_string(),
        child: Some(notice.child.clone()),
        causes: notice.causes.clone(),
        message: notice.message.clone(),
        contact: notice.contact.clone(),
        send_time: Some(timestamp(notice.sent_at)),
        deliver_time: notice.delivered_at.map(timestamp),
        acknowledged_by: notice.acknowledged_by.clone().unwrap_or_default(),
        acknowledge_time: notice.acknowledged_at.map(timestamp),
        acknowledge_note: notice.acknowledge_note.clone().unwrap_or_default(),
    }
}

impl Assistance {
    async fn notices(
        &self,
        caller: &Caller,
        request: ListHukouNoticesRequest,
    ) -> Result<ListHukouNoticesResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = notice::list(&self.pool, region.subtree_prefix(), direction, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.sent_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        audit::record_read(&self.pool, caller, "hukou_notice.list", "hukou_notice", &ids).await?;
        Ok(ListHukouNoticesResponse { notices: rows.iter().map(notice_to_proto).collect(), next_page_token })
    }

    /// OfferAssistance: the hukou region offers help on the case a notice it received names.
    async fn offer(
        &self,
        caller: &Caller,
        request: OfferAssistanceRequest,
    ) -> Result<nol_proto::v1::Assistance, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let today = self.clock.today();
        let mut violations = Violations::default();
        let needs = needs(&mut violations, &request.needs);
        let note = text(&mut violations, "note", &request.note, None);
        let due_on = due_date(&mut violations, &request.due_date, today);
        violations.finish()?;
        let id = parse_uuid("notice_id", &request.notice_id)?;
        let mut tx = self.pool.begin().await?;
        let found = notice::get(&mut *tx, id, Direction::Incoming)
            .await?
            .filter(|found| caller.sees(&found.hukou_region))
            .ok_or_else(|| ServiceError::not_found(Msg::NoHukouNotice { id: id.to_string() }))?;
        if self.steps.seal_key(&found.owner_region).is_none() {
            let province = found.owner_region.province();
            return Err(ServiceError::precondition(Msg::NoLink {
                name: province.full_name(),
                code: province.to_string(),
            }));
        }
        let new = NewAssistance {
            id: Uuid::now_v7(),
            case_id: found.case_id,
            owner_region: &found.owner_region,
            assisting_region: &found.hukou_region,
            reason: AssistanceReason::HukouRegion,
            needs: &needs,
            due_on: due_on.unwrap_or(today),
            note: &note,
            attempt_id: None,
            child: &found.child,
            requested_by: &caller.subject,
        };
        let Some(offered) = self.steps.offer_help(&mut tx, &new).await? else {
            return Err(ServiceError::already_exists(Msg::AssistanceOpenAlready {
                name: found.hukou_region.full_name(),
                code: found.hukou_region.to_string(),
            }));
        };
        audit::record(&mut tx, caller, "assistance.offer", "assistance", &[offered.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(to_proto(&offered, Vec::new(), today))
    }

    async fn acknowledge(
        &self,
        caller: &Caller,
        request: AcknowledgeHukouNoticeRequest,
    ) -> Result<HukouNotice, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::WorkAssistance)?;
        let mut violations = Violations::default();
        let note = text(&mut violations, "note", &request.note, None);
        violations.finish()?;
        let id = parse_uuid("notice_id", &request.notice_id)?;
        let mut tx = self.pool.begin().await?;
        let found = notice::get(&mut *tx, id, Direction::Incoming)
            .await?
            .filter(|found| caller.sees(&found.hukou_region))
            .ok_or_else(|| ServiceError::not_found(Msg::NoHukouNotice { id: id.to_string() }))?;
        if found.state == HukouNoticeState::Acknowledged {
            return Err(ServiceError::precondition(Msg::HukouNoticeAcknowledged));
        }
        let note = Some(note.as_str()).filter(|note| !note.is_empty());
        let acknowledged = self
            .steps
            .acknowledge_notice(&mut tx, id, &caller.subject, note)
            .await?
            .ok_or_else(|| ServiceError::precondition(Msg::HukouNoticeAcknowledged))?;
        audit::record(&mut tx, caller, "hukou_notice.acknowledge", "hukou_notice", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(notice_to_proto(&acknowledged))
    }
}

#[tonic::async_trait]
impl AssistanceService for Assistance {
    async fn list_hukou_notices(
        &self,
        request: Request<ListHukouNoticesRequest>,
    ) -> Result<Response<ListHukouNoticesResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.notices(&caller, request.into_inner()).await?))
    }

    async fn offer_assistance(
        &self,
        request: Request<OfferAssistanceRequest>,
    ) -> Result<Response<OfferAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let assistance = self.offer(&caller, request.into_inner()).await?;
        Ok(Response::new(OfferAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn acknowledge_hukou_notice(
        &self,
        request: Request<AcknowledgeHukouNoticeRequest>,
    ) -> Result<Response<AcknowledgeHukouNoticeResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let notice = self.acknowledge(&caller, request.into_inner()).await?;
        Ok(Response::new(AcknowledgeHukouNoticeResponse { notice: Some(notice) }))
    }

    async fn request_assistance(
        &self,
        request: Request<RequestAssistanceRequest>,
    ) -> Result<Response<RequestAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let assistance = self.request(&caller, request.into_inner()).await?;
        Ok(Response::new(RequestAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn get_assistance(
        &self,
        request: Request<GetAssistanceRequest>,
    ) -> Result<Response<GetAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let assistance = self.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn list_assistance(
        &self,
        request: Request<ListAssistanceRequest>,
    ) -> Result<Response<ListAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn accept_assistance(
        &self,
        request: Request<AcceptAssistanceRequest>,
    ) -> Result<Response<AcceptAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let assistance = self.decide(&caller, &request.assistance_id, State::Accepted, None).await?;
        Ok(Response::new(AcceptAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn decline_assistance(
        &self,
        request: Request<DeclineAssistanceRequest>,
    ) -> Result<Response<DeclineAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let reason = text(&mut violations, "reason", &request.reason, Some(Msg::DeclineReasonRequired.into()));
        violations.finish()?;
        let assistance = self.decide(&caller, &request.assistance_id, State::Declined, Some(reason)).await?;
        Ok(Response::new(DeclineAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn report_assistance(
        &self,
        request: Request<ReportAssistanceRequest>,
    ) -> Result<Response<ReportAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let assistance = self.report(&caller, request.into_inner()).await?;
        Ok(Response::new(ReportAssistanceResponse { assistance: Some(assistance) }))
    }

    async fn close_assistance(
        &self,
        request: Request<CloseAssistanceRequest>,
    ) -> Result<Response<CloseAssistanceResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let assistance = self.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseAssistanceResponse { assistance: Some(assistance) }))
    }
}
