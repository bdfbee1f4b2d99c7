//! The use cases of deadlines, supervision (督办, R12) and the semester-start check (R13): one
//! function per RPC of `SupervisionService`, and the sweep. Changes to a case (a supervision note,
//! a relapse at the check, new due dates under a new policy) go through the case ledger.

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_events::{
    CHECK_ITEM_MARKED, EventHeader, SEMESTER_CHECK_LISTED, SUPERVISION_CLOSED, SUPERVISION_RAISED, SubjectScheme,
};
use nol_messages::vocab::Action;
use nol_messages::{Common, Count, Supervision as Says};
use nol_proto::v1::{
    AbsenceFollowUpOutcome, AnswerSupervisionItemRequest, CheckItemMarked, CheckItemState, CloseSupervisionItemRequest,
    GetSemesterCheckProgressRequest, ListOverdueWorkRequest, ListSemesterCheckItemsRequest, ListSemesterChecksRequest,
    ListSupervisionItemsRequest, MarkSemesterAttendanceRequest, OverdueKind, ProgressGrouping,
    RecordAbsenceFollowUpRequest, SemesterCheckListed, StartSemesterCheckRequest, SupervisionClosed, SupervisionRaised,
    SupervisionState, UpdateDeadlinePolicyRequest,
};
use nol_region::{RegionCode, RegionLevel};
use nol_runtime::clock::Clock;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{self, CheckState, ItemState, SupervisionItem, WorkKind};
use super::store::{self, Check, CheckItem, OverdueWork, Progress};
use crate::case::domain::deadlines::DeadlinePolicy;
use crate::case::domain::stored::Stored;
use crate::case::domain::{Command, Status, decide};
use crate::case::ledger::{self, StatusChange};
use crate::case::store::{self as case_store, PolicyRow, file as file_store};

/// Pieces of overdue work handled per sweep transaction.
const SWEEP_BATCH: i64 = 500;

/// A page of overdue work.
pub struct OverduePage {
    pub work: Vec<OverdueWork>,
    pub next_page_token: String,
    pub total_count: i64,
    pub today: NaiveDate,
}

/// A page of supervision items.
pub struct ItemPage {
    pub items: Vec<SupervisionItem>,
    pub next_page_token: String,
}

/// A page of a checklist.
pub struct CheckItemPage {
    pub items: Vec<CheckItem>,
    pub next_page_token: String,
    pub today: NaiveDate,
}

/// A check's progress, grouped, with the total.
pub struct CheckProgress {
    pub check: Check,
    pub rows: Vec<Progress>,
    pub total: Progress,
}

#[derive(Clone)]
pub struct SupervisionService {
    pool: PgPool,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    pub(crate) province: RegionCode,
    pub(crate) clock: Clock,
}

fn no_item(id: Uuid) -> ServiceError {
    ServiceError::not_found(Says::NoItem { item_id: id.to_string() })
}

fn no_check_item(id: Uuid) -> ServiceError {
    ServiceError::not_found(Says::NoCheckItem { item_id: id.to_string() })
}

fn parse_date(text: &str) -> Result<NaiveDate, Says> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| Says::MustBeDate)
}

fn day_cursor(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn encode_school_token(school: &str, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}:{school}"))
}

fn decode_school_token(token: &str) -> Result<Option<(String, Uuid)>, ServiceError> {
    use base64::Engine;
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ServiceError::invalid("page_token", Common::NotAPageToken);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (id, school) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Some((school.to_owned(), Uuid::parse_str(id).map_err(|_| invalid())?)))
}

/// A required answer or note of at most 2,000 characters.
fn required_text(violations: &mut Violations, field: &str, text: &str, required: Says) {
    if text.is_empty() {
        violations.add(field, required);
    } else if text.chars().count() > 2000 {
        violations.add(field, Common::TooLong { max: Count(2000) });
    }
}

impl SupervisionService {
    pub fn new(platform: &Platform) -> SupervisionService {
        SupervisionService {
            pool: platform.pool.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            clock: platform.clock.clone(),
        }
    }

    /// Raises items for work overdue past the threshold and escalates items left unanswered past
    /// it, in batches, each batch one transaction with its events. Safe to run concurrently.
    pub async fn sweep(&self) -> Result<(i64, i64), ServiceError> {
        let today = self.clock.today();
        let policy = {
            let mut conn = self.pool.acquire().await?;
            case_store::policy(&mut conn).await?
        };
        let cutoff = today - chrono::Duration::days(policy.supervision_after_days.into());
        let (mut raised, mut escalated) = (0, 0);
        loop {
            let mut tx = self.pool.begin().await?;
            let slipped = store::slipped(&mut tx, cutoff, SWEEP_BATCH).await?;
            if slipped.is_empty() {
                break;
            }
            for work in &slipped {
                let supervising = domain::supervisor_of(&work.region);
                let reason = work.kind.overdue_reason(work.due_on).en();
                let new = store::NewItem {
                    id: Uuid::now_v7(),
                    slipped: work,
                    supervising_region: &supervising,
                    reason: &reason,
                    raised_on: today,
                };
                let item = store::insert_item(&mut tx, &new).await?;
                self.raised_event(&mut tx, &item, "supervision_raised").await?;
                raised += 1;
            }
            tx.commit().await?;
            self.wake.notify();
        }
        loop {
            let mut tx = self.pool.begin().await?;
            let stale = store::unanswered(&mut tx, cutoff, SWEEP_BATCH).await?;
            if stale.is_empty() {
                break;
            }
            for item in &stale {
                let Some(next) = domain::escalate(&item.supervising_region) else { continue };
                let item = store::escalate_item(&mut tx, item.id, &next, today).await?;
                self.raised_event(&mut tx, &item, "supervision_escalated").await?;
                escalated += 1;
            }
            tx.commit().await?;
            self.wake.notify();
        }
        if raised + escalated > 0 {
            tracing::info!(raised, escalated, %today, "supervision sweep");
        }
        Ok((raised, escalated))
    }

    /// The case's note and the `supervision_raised` event of a raised or escalated item.
    async fn raised_event(
        &self,
        conn: &mut PgConnection,
        item: &SupervisionItem,
        change: &str,
    ) -> Result<(), ServiceError> {
        Ok(raised_event(conn, &self.scheme, item, change).await?)
    }

    pub async fn policy(&self) -> Result<PolicyRow, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        Ok(case_store::policy_row(&mut conn).await?)
    }

    /// UpdateDeadlinePolicy: only the provincial bureau; due dates move in the same transaction.
    pub async fn update_policy(
        &self,
        caller: &Caller,
        request: UpdateDeadlinePolicyRequest,
    ) -> Result<(PolicyRow, i64), ServiceError> {
        caller.require_role(&[Role::Supervisor, Role::System], Action::ChangeDeadlinePolicy)?;
        if caller.region.level() != RegionLevel::Province {
            // Only the provincial bureau changes the province's deadlines.
            return Err(nol_auth::Denied::OutOfScope { own: caller.region, requested: self.province }.into());
        }
        let given = request.policy.ok_or_else(|| ServiceError::invalid("policy", Common::Required))?;
        let mut violations = Violations::default();
        for (field, value, least) in [
            ("policy.first_contact_days", given.first_contact_days, 1),
            ("policy.attempt_interval_days", given.attempt_interval_days, 1),
            ("policy.deferred_follow_up_days", given.deferred_follow_up_days, 1),
            ("policy.supervision_after_days", given.supervision_after_days, 0),
            ("policy.handoff_decision_days", given.handoff_decision_days, 1),
        ] {
            if !(least..=366).contains(&value) {
                violations.add(field, Says::PolicyDays { least });
            }
        }
        violations.finish()?;
        let policy = DeadlinePolicy {
            first_contact_days: given.first_contact_days,
            attempt_interval_days: given.attempt_interval_days,
            deferred_follow_up_days: given.deferred_follow_up_days,
            supervision_after_days: given.supervision_after_days,
            handoff_decision_days: given.handoff_decision_days,
        };
        let mut tx = self.pool.begin().await?;
        let (row, rescheduled) = ledger::change_policy(&mut tx, &self.scheme, &policy, &caller.subject).await?;
        audit::record(&mut tx, caller, "deadline_policy.update", "deadline_policy", &[self.province.to_string()])
            .await?;
        tx.commit().await?;
        tracing::info!(?policy, rescheduled, "deadline policy changed");
        Ok((row, rescheduled))
    }

    /// ListOverdueWork: a subtree's overdue work, oldest first, with the total.
    pub async fn list_overdue(
        &self,
        caller: &Caller,
        request: ListOverdueWorkRequest,
    ) -> Result<OverduePage, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let kind = OverdueKind::try_from(request.kind)
            .map(WorkKind::from_proto)
            .map_err(|_| ServiceError::invalid("kind", Says::UnknownKind))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?.map(|cursor| (cursor.time.date_naive(), cursor.id));
        let today = self.clock.today();
        let prefix = region.subtree_prefix();
        let mut work = store::list_overdue(&self.pool, prefix, today, kind, after, size + 1).await?;
        let total_count = store::count_overdue(&self.pool, prefix, today, kind).await?;
        let next_page_token =
            paging::next_page(&mut work, size, |work| Cursor { time: day_cursor(work.due_on), id: work.id });
        let ids: Vec<String> = work.iter().map(|work| work.case_id.to_string()).collect();
        audit::record_read(&self.pool, caller, "overdue.list", "dropout_case", &ids).await?;
        Ok(OverduePage { work, next_page_token, total_count, today })
    }

    pub async fn list_items(
        &self,
        caller: &Caller,
        request: ListSupervisionItemsRequest,
    ) -> Result<ItemPage, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let state = SupervisionState::try_from(request.state)
            .map(ItemState::from_proto)
            .map_err(|_| ServiceError::invalid("state", Says::UnknownState))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut items = store::list_items(&self.pool, region.subtree_prefix(), state, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut items, size, |item| Cursor { time: item.raised_at, id: item.id });
        let ids: Vec<String> = items.iter().filter_map(|item| item.case_id).map(|id| id.to_string()).collect();
        audit::record_read(&self.pool, caller, "supervision_item.list", "dropout_case", &ids).await?;
        Ok(ItemPage { items, next_page_token })
    }

    /// AnswerSupervisionItem: the county says what it did.
    pub async fn answer(
        &self,
        caller: &Caller,
        request: AnswerSupervisionItemRequest,
    ) -> Result<SupervisionItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::AnswerSupervisionItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let answer = request.answer.trim();
        let mut violations = Violations::default();
        required_text(&mut violations, "answer", answer, Says::AnswerRequired);
        violations.finish()?;
        let mut tx = self.pool.begin().await?;
        let item = store::item_for_update(&mut tx, id).await?.ok_or_else(|| no_item(id))?;
        caller.require_scope(&item.region)?;
        domain::answer(item.state)?;
        let item = store::answer_item(&mut tx, id, answer, &caller.subject).await?;
        if let Some(case_id) = item.case_id {
            let detail = serde_json::json!({ "item_id": id, "answer": answer });
            ledger::note_supervision(&mut tx, case_id, None, &caller.subject, "supervision_answered", detail).await?;
        }
        tx.commit().await?;
        Ok(item)
    }

    /// CloseSupervisionItem: the supervising bureau (or one above it) closes an answered item.
    pub async fn close(
        &self,
        caller: &Caller,
        request: CloseSupervisionItemRequest,
    ) -> Result<SupervisionItem, ServiceError> {
        caller.require_role(&[Role::Supervisor], Action::CloseSupervisionItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let note = request.closing_note.trim();
        if note.chars().count() > 2000 {
            return Err(ServiceError::invalid("closing_note", Common::TooLong { max: Count(2000) }));
        }
        let mut tx = self.pool.begin().await?;
        let item = store::item_for_update(&mut tx, id).await?.ok_or_else(|| no_item(id))?;
        // Only the supervising bureau (or one above it) closes the item.
        caller.require_scope(&item.supervising_region)?;
        domain::close(item.state)?;
        let item = store::close_item(&mut tx, id, note, &caller.subject).await?;
        if let Some(case_id) = item.case_id {
            let detail = serde_json::json!({ "item_id": id, "closing_note": note });
            ledger::note_supervision(&mut tx, case_id, None, &caller.subject, "supervision_closed", detail).await?;
        }
        let payload = SupervisionClosed {
            item_id: id.to_string(),
            region_code: item.region.to_string(),
            supervising_region_code: item.supervising_region.to_string(),
        };
        nol_backbone::outbox::emit(
            &mut tx,
            &self.scheme.local(SUPERVISION_CLOSED, &item.region),
            EventHeader {
                event_type: SUPERVISION_CLOSED,
                source_region: item.region,
                aggregate_type: "supervision_item",
                aggregate_id: &payload.item_id,
                aggregate_sequence: item.escalations as u64 + 2,
                actor: &caller.subject,
            },
            &payload,
        )
        .await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(item)
    }

    /// StartSemesterCheck: the checklist of every monitored child of the subtree (R13), one
    /// check per semester over any part of the tree.
    pub async fn start_check(
        &self,
        caller: &Caller,
        request: StartSemesterCheckRequest,
    ) -> Result<Check, ServiceError> {
        caller.require_role(&[Role::Caseworker, Role::Supervisor], Action::StartSemesterChecks)?;
        let mut violations = Violations::default();
        let region = if request.region_code.trim().is_empty() {
            Some(caller.region)
        } else {
            violations.check("region_code", RegionCode::parse(&request.region_code))
        };
        let semester = violations.check("semester", domain::check_semester(&request.semester));
        let deadline = violations.check("deadline", parse_date(&request.deadline));
        let today = self.clock.today();
        if let Some(deadline) = deadline
            && deadline < today
        {
            violations.add("deadline", Says::DeadlinePast { today: today.to_string() });
        }
        violations.finish()?;
        let (region, semester, deadline) =
            (region.unwrap_or(caller.region), semester.unwrap_or_default(), deadline.unwrap_or(today));
        caller.require_scope(&region)?;
        let mut tx = self.pool.begin().await?;
        store::lock_semester(&mut tx, &semester).await?;
        if let Some(existing) = store::overlapping_check(&mut tx, &semester, &region).await? {
            return Err(domain::SupervisionRefusal(Says::CheckOverlaps {
                semester,
                check_id: existing.id.to_string(),
                region: existing.region.to_string(),
            })
            .into());
        }
        let check = store::start_check(&mut tx, Uuid::now_v7(), &region, &semester, deadline, &caller.subject).await?;
        for (county, count) in store::listed_by_county(&mut tx, check.id).await? {
            let payload = SemesterCheckListed {
                check_id: check.id.to_string(),
                region_code: county.to_string(),
                semester: semester.clone(),
                count,
            };
            let aggregate = format!("{}:{county}", check.id);
            nol_backbone::outbox::emit(
                &mut tx,
                &self.scheme.local(SEMESTER_CHECK_LISTED, &county),
                EventHeader {
                    event_type: SEMESTER_CHECK_LISTED,
                    source_region: county,
                    aggregate_type: "semester_check",
                    aggregate_id: &aggregate,
                    aggregate_sequence: 1,
                    actor: &caller.subject,
                },
                &payload,
            )
            .await?;
        }
        audit::record(&mut tx, caller, "semester_check.start", "semester_check", &[check.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(check_id = %check.id, region = %check.region, semester, items = check.item_count, "semester check started");
        Ok(check)
    }

    /// ListSemesterChecks: the checks over a region in scope or below it, and those above it that
    /// cover it, newest first.
    pub async fn list_checks(
        &self,
        caller: &Caller,
        request: ListSemesterChecksRequest,
    ) -> Result<Vec<Check>, ServiceError> {
        let mut violations = Violations::default();
        let region = if request.region_code.trim().is_empty() {
            Some(caller.region)
        } else {
            violations.check("region_code", RegionCode::parse(&request.region_code))
        };
        let semester = request.semester.trim();
        let semester =
            if semester.is_empty() { None } else { violations.check("semester", domain::check_semester(semester)) };
        violations.finish()?;
        let region = region.unwrap_or(caller.region);
        caller.require_scope(&region)?;
        let size = paging::page_size(request.page_size)?;
        let ancestors: Vec<String> =
            std::iter::successors(region.parent(), RegionCode::parent).map(|code| code.to_string()).collect();
        Ok(store::list_checks(&self.pool, region.subtree_prefix(), &ancestors, semester.as_deref(), size).await?)
    }

    /// A check the caller sees: over its region or below it, or a provincial check covering it.
    async fn check_in_scope(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        text: &str,
    ) -> Result<Check, ServiceError> {
        let id = parse_uuid("check_id", text)?;
        let no_check = || ServiceError::not_found(Says::NoCheck { check_id: id.to_string() });
        let check = store::get_check(conn, id).await?.ok_or_else(no_check)?;
        if !caller.sees(&check.region) && !check.region.contains(&caller.region) {
            return Err(no_check());
        }
        Ok(check)
    }

    /// The part of a check a caller sees: the check's whole region, or the caller's part of it.
    fn scope_prefix(caller: &Caller, check: &Check) -> String {
        if caller.sees(&check.region) {
            check.region.subtree_prefix().to_owned()
        } else {
            caller.region.subtree_prefix().to_owned()
        }
    }

    pub async fn list_check_items(
        &self,
        caller: &Caller,
        request: ListSemesterCheckItemsRequest,
    ) -> Result<CheckItemPage, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let check = self.check_in_scope(&mut conn, caller, &request.check_id).await?;
        let state = CheckItemState::try_from(request.state)
            .map(CheckState::from_proto)
            .map_err(|_| ServiceError::invalid("state", Says::UnknownCheckItemState))?;
        let size = paging::page_size(request.page_size)?;
        let after = decode_school_token(&request.page_token)?;
        let requested = Some(request.school_code.trim()).filter(|code| !code.is_empty());
        // A school lists its own pupils' items only.
        let school = match (caller.own_school()?, requested) {
            (Some(own), Some(requested)) if requested != own => {
                return Err(
                    nol_auth::Denied::OtherSchool { own: own.to_owned(), requested: requested.to_owned() }.into()
                );
            }
            (Some(own), _) => Some(own),
            (None, requested) => requested,
        };
        let prefix = Self::scope_prefix(caller, &check);
        let mut items = store::list_check_items(&mut conn, check.id, &prefix, school, state, after, size + 1).await?;
        let next_page_token = if items.len() as i64 > size {
            items.truncate(size as usize);
            items.last().map(|item| encode_school_token(&item.school_code, item.id)).unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = items.iter().map(|item| item.case_id.to_string()).collect();
        audit::record(&mut conn, caller, "semester_check.list", "dropout_case", &ids).await?;
        Ok(CheckItemPage { items, next_page_token, today: self.clock.today() })
    }

    /// MarkSemesterAttendance: a school marks a child present or absent.
    pub async fn mark(
        &self,
        caller: &Caller,
        request: MarkSemesterAttendanceRequest,
    ) -> Result<CheckItem, ServiceError> {
        caller.require_role(&[Role::School, Role::Caseworker], Action::MarkSemesterAttendance)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let mut tx = self.pool.begin().await?;
        let mut item = store::check_item_for_update(&mut tx, id).await?.ok_or_else(|| no_check_item(id))?;
        if !caller.sees(&item.region) {
            return Err(no_check_item(id));
        }
        caller.require_school(&item.school_code)?;
        let next = domain::mark(item.state, request.present)?;
        store::set_check_item_state(&mut tx, id, next, &caller.subject, None).await?;
        marked_event(&mut tx, &self.scheme, &item, next, &caller.subject).await?;
        audit::record(&mut tx, caller, "semester_check.mark", "dropout_case", &[item.case_id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        item.state = next;
        item.updated_by = Some(caller.subject.clone());
        Ok(item)
    }

    /// RecordAbsenceFollowUp: a case worker's contact with an absent child; a confirmed absence
    /// reopens the case as a relapse (decided by the case's rules) in the same transaction.
    pub async fn follow_up(
        &self,
        caller: &Caller,
        request: RecordAbsenceFollowUpRequest,
    ) -> Result<CheckItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::FollowUpAbsentChildren)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let mut violations = Violations::default();
        let confirmed_absent = match AbsenceFollowUpOutcome::try_from(request.outcome) {
            Ok(AbsenceFollowUpOutcome::ConfirmedAbsent) => true,
            Ok(AbsenceFollowUpOutcome::InClass) => false,
            _ => {
                violations.add("outcome", Says::FollowUpOutcome);
                false
            }
        };
        let note = request.note.trim();
        required_text(&mut violations, "note", note, Says::FollowUpNote);
        violations.finish()?;
        let mut tx = self.pool.begin().await?;
        let mut item = store::check_item_for_update(&mut tx, id).await?.ok_or_else(|| no_check_item(id))?;
        if !caller.sees(&item.region) {
            return Err(no_check_item(id));
        }
        let next = domain::follow_up(item.state, confirmed_absent)?;
        if next == CheckState::Relapsed {
            let today = self.clock.today();
            let case = case_store::get_for_update(&mut tx, item.case_id).await?.ok_or_else(|| {
                ServiceError::not_found(nol_messages::Case::NoCase { case_id: item.case_id.to_string() })
            })?;
            let facts =
                file_store::facts(&mut tx, case.id, case.status, case.disability_grade, case.child.birth_date, today)
                    .await?;
            let to = decide(&facts, Command::RecordRelapse)?;
            debug_assert_eq!(to, Status::Open);
            let change = StatusChange {
                to,
                change: "relapsed",
                actor: &caller.subject,
                detail: serde_json::json!({ "semester_check_item_id": id, "check_id": item.check_id, "note": note }),
                relapse: true,
                follow_up_from: None,
                confirmed_on: Some(today),
            };
            let reason = "R13: absence confirmed at the semester-start check";
            ledger::change_status(&mut tx, &self.scheme, &case, &change, reason).await?;
        }
        store::set_check_item_state(&mut tx, id, next, &caller.subject, Some(note)).await?;
        marked_event(&mut tx, &self.scheme, &item, next, &caller.subject).await?;
        audit::record(&mut tx, caller, "semester_check.follow_up", "dropout_case", &[item.case_id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        item.state = next;
        item.updated_by = Some(caller.subject.clone());
        item.note = note.to_owned();
        Ok(item)
    }

    /// GetSemesterCheckProgress: by school or by county, within the caller's part of the check.
    pub async fn progress(
        &self,
        caller: &Caller,
        request: GetSemesterCheckProgressRequest,
    ) -> Result<CheckProgress, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let check = self.check_in_scope(&mut conn, caller, &request.check_id).await?;
        let by_school = !matches!(ProgressGrouping::try_from(request.grouping), Ok(ProgressGrouping::County));
        let prefix = Self::scope_prefix(caller, &check);
        let today = self.clock.today();
        let rows = if by_school {
            store::progress_by_school(&mut conn, check.id, &prefix, today).await?
        } else {
            store::progress_by_county(&mut conn, check.id, &prefix, today).await?
        };
        let mut total = Progress { key: check.region.to_string(), ..Default::default() };
        for row in &rows {
            total.total += row.total;
            total.pending += row.pending;
            total.present += row.present;
            total.absent += row.absent;
            total.relapsed += row.relapsed;
            total.overdue += row.overdue;
        }
        let named = |mut row: Progress| {
            if !by_school || row.key == check.region.as_str() {
                row.name = RegionCode::parse(&row.key).map(|code| code.full_name()).unwrap_or_default();
            }
            row
        };
        Ok(CheckProgress { rows: rows.into_iter().map(named).collect(), total: named(total), check })
    }
}

/// The `check_item_marked` event of a checklist item leaving `item.state` for `next` (R13).
async fn marked_event(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    item: &CheckItem,
    next: CheckState,
    actor: &str,
) -> sqlx::Result<()> {
    let payload = CheckItemMarked {
        item_id: item.id.to_string(),
        check_id: item.check_id.to_string(),
        case_id: item.case_id.to_string(),
        region_code: item.region.to_string(),
        school_code: item.school_code.clone(),
        from_state: item.state.as_stored().to_owned(),
        to_state: next.as_stored().to_owned(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(CHECK_ITEM_MARKED, &item.region),
        EventHeader {
            event_type: CHECK_ITEM_MARKED,
            source_region: item.region,
            aggregate_type: "semester_check_item",
            aggregate_id: &payload.item_id,
            aggregate_sequence: 1,
            actor,
        },
        &payload,
    )
    .await?;
    Ok(())
}

/// The case's note (when the item is about a case) and the `supervision_raised` event of a raised
/// or escalated item.
async fn raised_event(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    item: &SupervisionItem,
    change: &str,
) -> sqlx::Result<()> {
    if let Some(case_id) = item.case_id {
        ledger::note_supervision(
            conn,
            case_id,
            Some((&item.supervising_region, &item.reason)),
            "system:supervision",
            change,
            serde_json::json!({
                "item_id": item.id, "supervising_region_code": item.supervising_region.as_str(),
                "reason": item.reason,
            }),
        )
        .await?;
    }
    let payload = SupervisionRaised {
        item_id: item.id.to_string(),
        case_id: item.case_id.map(|id| id.to_string()).unwrap_or_default(),
        region_code: item.region.to_string(),
        supervising_region_code: item.supervising_region.to_string(),
        reason: item.reason.clone(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(SUPERVISION_RAISED, &item.region),
        EventHeader {
            event_type: SUPERVISION_RAISED,
            source_region: item.region,
            aggregate_type: "supervision_item",
            aggregate_id: &payload.item_id,
            aggregate_sequence: item.escalations as u64 + 1,
            actor: "system:supervision",
        },
        &payload,
    )
    .await?;
    Ok(())
}

/// A county's report was not submitted by its due date (reporting's `report_overdue`): an item for
/// its supervising bureau, once per county and period (R12, R16).
pub async fn raise_for_late_report(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    overdue: &nol_proto::v1::ReportOverdue,
    today: NaiveDate,
) -> Result<(), nol_backbone::consumer::HandlerError> {
    use nol_backbone::consumer::HandlerError;
    let permanent = |what: &str| HandlerError::Permanent(format!("report_overdue {}: {what}", overdue.region_code));
    let region = RegionCode::parse(&overdue.region_code).map_err(|_| permanent("region_code"))?;
    let due_on = NaiveDate::parse_from_str(&overdue.due_on, "%Y-%m-%d").map_err(|_| permanent("due_on"))?;
    let (period, due_on_text) = (overdue.period_name.clone(), overdue.due_on.clone());
    let reason = if overdue.period.contains("-S") {
        Says::SemesterReportLate { period, due_on: due_on_text }.zh()
    } else {
        Says::ReportLate { period, due_on: due_on_text }.zh()
    };
    let supervising = domain::supervisor_of(&region);
    let raised = store::insert_report_item(
        conn,
        Uuid::now_v7(),
        &region,
        &supervising,
        &reason,
        (&overdue.period, due_on),
        today,
    )
    .await?;
    if let Some(item) = raised {
        raised_event(conn, scheme, &item, "supervision_raised").await?;
        tracing::info!(region = %region, period = %overdue.period, "late report sent to supervision");
    }
    Ok(())
}

/// A hand-off arrived here, the destination (transfer's `handoff_arrived`): supervision watches
/// its decision, due by the province's policy (R11, R12), and announces the due date.
pub async fn watch_arrived(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    arrived: &nol_proto::v1::HandoffArrived,
    today: NaiveDate,
) -> Result<(), nol_backbone::consumer::HandlerError> {
    use nol_backbone::consumer::HandlerError;
    let permanent = |what: &str| HandlerError::Permanent(format!("handoff_arrived {}: {what}", arrived.handoff_id));
    let handoff_id = Uuid::parse_str(&arrived.handoff_id).map_err(|_| permanent("handoff_id"))?;
    let origin_case_id = Uuid::parse_str(&arrived.case_id).map_err(|_| permanent("case_id"))?;
    let region = RegionCode::parse(&arrived.destination_region_code).map_err(|_| permanent("destination"))?;
    let origin = RegionCode::parse(&arrived.origin_region_code).map_err(|_| permanent("origin"))?;
    let child = arrived.child.clone().unwrap_or_default();
    let policy = case_store::policy(conn).await?;
    let summary = store::ChildSummary {
        full_name: child.full_name,
        resident_id_masked: child.resident_id_masked,
        sex: child.sex as i16,
        birth_date: NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d").unwrap_or(today),
        hukou_region: child.hukou_region_code,
    };
    let watched = store::ArrivedHandoff {
        handoff_id,
        region: &region,
        origin_region: &origin,
        origin_case_id,
        child: &summary,
        arrived_on: today,
        due_on: today + chrono::Duration::days(policy.handoff_decision_days.into()),
    };
    if store::watch_incoming(conn, &watched).await? {
        let decision = ledger::DecisionDue {
            handoff_id,
            origin_case_id,
            origin: &origin,
            destination: &region,
            side: &region,
            due_on: watched.due_on,
            sequence: 1,
        };
        ledger::announce_decision_due(conn, scheme, &decision).await?;
    }
    Ok(())
}
