//! Deadlines and supervision (督办, R12) and the semester-start check (R13): the
//! `SupervisionService` served by the case service, and the sweep that raises and escalates
//! supervision items by itself.

pub mod rules;
mod store;

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_events::{EventHeader, SUPERVISION_CLOSED, SUPERVISION_RAISED, SubjectScheme};
use nol_proto::v1::supervision_service_server::SupervisionService;
use nol_proto::v1::{
    AbsenceFollowUpOutcome, AnswerSupervisionItemRequest, AnswerSupervisionItemResponse, CheckItemState, CheckProgress,
    ChildSummary, CloseSupervisionItemRequest, CloseSupervisionItemResponse, DeadlinePolicy as PolicyMessage,
    GetDeadlinePolicyRequest, GetDeadlinePolicyResponse, GetSemesterCheckProgressRequest,
    GetSemesterCheckProgressResponse, ListOverdueWorkRequest, ListOverdueWorkResponse, ListSemesterCheckItemsRequest,
    ListSemesterCheckItemsResponse, ListSupervisionItemsRequest, ListSupervisionItemsResponse,
    MarkSemesterAttendanceRequest, MarkSemesterAttendanceResponse, OverdueKind, OverdueWork, ProgressGrouping,
    RecordAbsenceFollowUpRequest, RecordAbsenceFollowUpResponse, SemesterCheck, SemesterCheckItem,
    StartSemesterCheckRequest, StartSemesterCheckResponse, SupervisionClosed, SupervisionItem, SupervisionRaised,
    SupervisionState, SweepOverdueWorkRequest, SweepOverdueWorkResponse, UpdateDeadlinePolicyRequest,
    UpdateDeadlinePolicyResponse,
};
use nol_region::{RegionCode, RegionLevel};
use nol_runtime::clock::Clock;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status as GrpcStatus};
use uuid::Uuid;

use crate::deadlines::DeadlinePolicy;
use crate::domain::Status;
use crate::store::StatusChange;
use rules::ItemState;

/// Pieces of overdue work handled per sweep transaction.
const SWEEP_BATCH: i64 = 500;

#[derive(Clone)]
pub struct Supervision {
    pool: PgPool,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    clock: Clock,
}

impl Supervision {
    pub fn new(platform: &Platform) -> Supervision {
        Supervision {
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
            crate::store::policy(&mut conn).await?
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
                let region = stored_region(&work.region)?;
                let supervising = rules::supervisor_of(&region);
                let reason = rules::overdue_reason(&work.kind, work.due_on);
                let item = store::NewItem {
                    id: Uuid::now_v7(),
                    slipped: work,
                    supervising_region: supervising.as_str(),
                    reason: &reason,
                    raised_on: today,
                };
                let row = store::insert_item(&mut tx, &item).await?;
                self.raised_event(&mut tx, &row, "supervision_raised").await?;
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
                let current = stored_region(&item.supervising_region)?;
                let Some(next) = rules::escalate(&current) else { continue };
                let row = store::escalate_item(&mut tx, item.id, next.as_str(), today).await?;
                self.raised_event(&mut tx, &row, "supervision_escalated").await?;
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

    async fn raised_event(
        &self,
        conn: &mut PgConnection,
        row: &store::ItemRow,
        change: &str,
    ) -> Result<(), ServiceError> {
        let region = stored_region(&row.region)?;
        store::note_on_case(
            conn,
            row.case_id,
            Some((&row.supervising_region, &row.reason)),
            "system:supervision",
            change,
            serde_json::json!({ "item_id": row.id, "supervising_region_code": row.supervising_region, "reason": row.reason }),
        )
        .await?;
        let payload = SupervisionRaised {
            item_id: row.id.to_string(),
            case_id: row.case_id.to_string(),
            region_code: row.region.clone(),
            supervising_region_code: row.supervising_region.clone(),
            reason: row.reason.clone(),
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(SUPERVISION_RAISED, &region),
            EventHeader {
                event_type: SUPERVISION_RAISED,
                source_region: region,
                aggregate_type: "supervision_item",
                aggregate_id: &payload.item_id,
                aggregate_sequence: row.escalations as u64 + 1,
                actor: "system:supervision",
            },
            &payload,
        )
        .await?;
        Ok(())
    }

    async fn update_policy(
        &self,
        caller: &Caller,
        request: UpdateDeadlinePolicyRequest,
    ) -> Result<UpdateDeadlinePolicyResponse, ServiceError> {
        caller.require_role(&[Role::Supervisor, Role::System], nol_messages::vocab::Action::ChangeDeadlinePolicy)?;
        if caller.region.level() != RegionLevel::Province {
            // Only the provincial bureau changes the province's deadlines.
            return Err(nol_auth::Denied::OutOfScope { own: caller.region, requested: self.province }.into());
        }
        let given = request.policy.ok_or_else(|| ServiceError::invalid("policy", "is required"))?;
        let mut violations = Violations::default();
        for (field, value, least) in [
            ("policy.first_contact_days", given.first_contact_days, 1),
            ("policy.attempt_interval_days", given.attempt_interval_days, 1),
            ("policy.deferred_follow_up_days", given.deferred_follow_up_days, 1),
            ("policy.supervision_after_days", given.supervision_after_days, 0),
        ] {
            if !(least..=366).contains(&value) {
                violations.add(field, format!("must be between {least} and 366 days"));
            }
        }
        violations.finish()?;
        let policy = DeadlinePolicy {
            first_contact_days: given.first_contact_days,
            attempt_interval_days: given.attempt_interval_days,
            deferred_follow_up_days: given.deferred_follow_up_days,
            supervision_after_days: given.supervision_after_days,
        };
        let mut tx = self.pool.begin().await?;
        let (row, rescheduled) = store::update_policy(&mut tx, &policy, &caller.subject).await?;
        audit::record(&mut tx, caller, "deadline_policy.update", "deadline_policy", &[self.province.to_string()])
            .await?;
        tx.commit().await?;
        tracing::info!(?policy, rescheduled, "deadline policy changed");
        Ok(UpdateDeadlinePolicyResponse { policy: Some(policy_message(&row)), cases_rescheduled: rescheduled })
    }

    async fn list_overdue(
        &self,
        caller: &Caller,
        request: ListOverdueWorkRequest,
    ) -> Result<ListOverdueWorkResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let kind = OverdueKind::try_from(request.kind)
            .map(rules::overdue_kind_name)
            .map_err(|_| ServiceError::invalid("kind", "is not a known kind of overdue work"))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?.map(|cursor| (cursor.time.date_naive(), cursor.id));
        let today = self.clock.today();
        let prefix = region.subtree_prefix();
        let mut rows = store::list_overdue(&self.pool, prefix, today, kind, after, size + 1).await?;
        let total_count = store::count_overdue(&self.pool, prefix, today, kind).await?;
        let next_page_token =
            paging::next_page(&mut rows, size, |row| Cursor { time: day_cursor(row.due_on), id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.case_id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "overdue.list", "dropout_case", &ids).await?;
        let work = rows
            .iter()
            .map(|row| OverdueWork {
                case_id: row.case_id.to_string(),
                region_code: row.region.clone(),
                child: Some(child(
                    &row.child_name,
                    &row.resident_id_masked,
                    row.sex,
                    row.birth_date,
                    &row.hukou_region,
                )),
                kind: rules::overdue_kind(&row.kind) as i32,
                due_date: row.due_on.to_string(),
                days_overdue: (today - row.due_on).num_days() as i32,
                supervision_item_id: row.supervision_item_id.map(|id| id.to_string()).unwrap_or_default(),
            })
            .collect();
        Ok(ListOverdueWorkResponse { work, next_page_token, total_count })
    }

    async fn list_items(
        &self,
        caller: &Caller,
        request: ListSupervisionItemsRequest,
    ) -> Result<ListSupervisionItemsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let state = SupervisionState::try_from(request.state)
            .map(rules::supervision_state_name)
            .map_err(|_| ServiceError::invalid("state", "is not a known supervision state"))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = store::list_items(&self.pool, region.subtree_prefix(), state, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.raised_at, id: row.id });
        Ok(ListSupervisionItemsResponse { items: rows.iter().map(item_message).collect(), next_page_token })
    }

    async fn answer(
        &self,
        caller: &Caller,
        request: AnswerSupervisionItemRequest,
    ) -> Result<SupervisionItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::AnswerSupervisionItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let answer = request.answer.trim();
        let mut violations = Violations::default();
        if answer.is_empty() {
            violations.add("answer", "is required: what the county did");
        } else if answer.chars().count() > 2000 {
            violations.add("answer", "is longer than 2,000 characters");
        }
        violations.finish()?;
        let mut tx = self.pool.begin().await?;
        let item = store::get_item(&mut tx, id, true).await?.ok_or_else(|| no_item(id))?;
        caller.require_scope(&stored_region(&item.region)?)?;
        rules::answer(&item.state).map_err(ServiceError::precondition)?;
        let row = store::answer_item(&mut tx, id, answer, &caller.subject).await?;
        store::note_on_case(
            &mut tx,
            row.case_id,
            None,
            &caller.subject,
            "supervision_answered",
            serde_json::json!({ "item_id": id, "answer": answer }),
        )
        .await?;
        tx.commit().await?;
        Ok(item_message(&row))
    }

    async fn close(
        &self,
        caller: &Caller,
        request: CloseSupervisionItemRequest,
    ) -> Result<SupervisionItem, ServiceError> {
        caller.require_role(&[Role::Supervisor], nol_messages::vocab::Action::CloseSupervisionItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let note = request.closing_note.trim();
        if note.chars().count() > 2000 {
            return Err(ServiceError::invalid("closing_note", "is longer than 2,000 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let item = store::get_item(&mut tx, id, true).await?.ok_or_else(|| no_item(id))?;
        let supervising = stored_region(&item.supervising_region)?;
        // Only the supervising bureau (or one above it) closes the item.
        caller.require_scope(&supervising)?;
        rules::close(&item.state).map_err(ServiceError::precondition)?;
        let row = store::close_item(&mut tx, id, note, &caller.subject).await?;
        store::note_on_case(
            &mut tx,
            row.case_id,
            None,
            &caller.subject,
            "supervision_closed",
            serde_json::json!({ "item_id": id, "closing_note": note }),
        )
        .await?;
        let region = stored_region(&row.region)?;
        let payload = SupervisionClosed {
            item_id: id.to_string(),
            region_code: row.region.clone(),
            supervising_region_code: row.supervising_region.clone(),
        };
        nol_backbone::outbox::emit(
            &mut tx,
            &self.scheme.local(SUPERVISION_CLOSED, &region),
            EventHeader {
                event_type: SUPERVISION_CLOSED,
                source_region: region,
                aggregate_type: "supervision_item",
                aggregate_id: &payload.item_id,
                aggregate_sequence: row.escalations as u64 + 2,
                actor: &caller.subject,
            },
            &payload,
        )
        .await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(item_message(&row))
    }

    async fn start_check(
        &self,
        caller: &Caller,
        request: StartSemesterCheckRequest,
    ) -> Result<SemesterCheck, ServiceError> {
        caller.require_role(&[Role::Caseworker, Role::Supervisor], nol_messages::vocab::Action::StartSemesterChecks)?;
        let mut violations = Violations::default();
        let region = if request.region_code.trim().is_empty() {
            Some(caller.region)
        } else {
            violations.check("region_code", RegionCode::parse(&request.region_code))
        };
        let semester = violations.check("semester", rules::check_semester(&request.semester));
        let deadline = violations.check("deadline", parse_date(&request.deadline));
        let today = self.clock.today();
        if let Some(deadline) = deadline
            && deadline < today
        {
            violations.add("deadline", format!("is in the past (today is {today})"));
        }
        violations.finish()?;
        let (region, semester, deadline) =
            (region.unwrap_or(caller.region), semester.unwrap_or_default(), deadline.unwrap_or(today));
        caller.require_scope(&region)?;
        let prefix = region.subtree_prefix();
        let mut tx = self.pool.begin().await?;
        // One check per semester over any part of the tree: serialise starts of the same semester.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('semester_check:' || $1))")
            .bind(&semester)
            .execute(&mut *tx)
            .await?;
        if let Some(existing) = store::overlapping_check(&mut tx, &semester, region.as_str(), prefix).await? {
            return Err(ServiceError::already_exists(format!(
                "R13: the {semester} check {} over {} already covers this region",
                existing.id, existing.region
            )));
        }
        let row =
            store::start_check(&mut tx, Uuid::now_v7(), region.as_str(), prefix, &semester, deadline, &caller.subject)
                .await?;
        audit::record(&mut tx, caller, "semester_check.start", "semester_check", &[row.id.to_string()]).await?;
        tx.commit().await?;
        tracing::info!(check_id = %row.id, region = %row.region, semester, items = row.item_count, "semester check started");
        Ok(check_message(&row))
    }

    async fn check_in_scope(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        field: &str,
        text: &str,
    ) -> Result<store::CheckRow, ServiceError> {
        let id = parse_uuid(field, text)?;
        let check = store::get_check(conn, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no semester check {id}")))?;
        let region = stored_region(&check.region)?;
        // A caller sees a check over its region or below it, or a provincial check covering it.
        if !caller.sees(&region) && !region.contains(&caller.region) {
            return Err(ServiceError::not_found(format!("no semester check {id}")));
        }
        Ok(check)
    }

    async fn list_check_items(
        &self,
        caller: &Caller,
        request: ListSemesterCheckItemsRequest,
    ) -> Result<ListSemesterCheckItemsResponse, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let check = self.check_in_scope(&mut conn, caller, "check_id", &request.check_id).await?;
        let state = CheckItemState::try_from(request.state)
            .map(ItemState::from_proto)
            .map_err(|_| ServiceError::invalid("state", "is not a known check item state"))?;
        let size = paging::page_size(request.page_size)?;
        let after = decode_school_token(&request.page_token)?;
        let school = Some(request.school_code.trim()).filter(|code| !code.is_empty());
        let prefix = scope_prefix(caller, &check)?;
        let mut rows = store::list_check_items(
            &self.pool,
            check.id,
            &prefix,
            school,
            state.map(ItemState::as_str),
            after,
            size + 1,
        )
        .await?;
        let next_page_token = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last().map(|row| encode_school_token(&row.school_code, row.id)).unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = rows.iter().map(|row| row.case_id.to_string()).collect();
        audit::record(&mut conn, caller, "semester_check.list", "dropout_case", &ids).await?;
        let today = self.clock.today();
        Ok(ListSemesterCheckItemsResponse {
            items: rows.iter().map(|row| check_item_message(row, today)).collect(),
            next_page_token,
        })
    }

    async fn mark(
        &self,
        caller: &Caller,
        request: MarkSemesterAttendanceRequest,
    ) -> Result<SemesterCheckItem, ServiceError> {
        caller.require_role(&[Role::School, Role::Caseworker], nol_messages::vocab::Action::MarkSemesterAttendance)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let mut tx = self.pool.begin().await?;
        let mut item = store::get_check_item(&mut tx, id, true).await?.ok_or_else(|| no_check_item(id))?;
        if !caller.sees(&stored_region(&item.region)?) {
            return Err(no_check_item(id));
        }
        let state = ItemState::parse(&item.state).ok_or_else(|| corrupt("check item state"))?;
        let next = rules::mark(state, request.present).map_err(ServiceError::precondition)?;
        store::set_check_item_state(&mut tx, id, next.as_str(), &caller.subject, None).await?;
        tx.commit().await?;
        item.state = next.as_str().to_owned();
        item.updated_by = Some(caller.subject.clone());
        Ok(check_item_message(&item, self.clock.today()))
    }

    async fn follow_up(
        &self,
        caller: &Caller,
        request: RecordAbsenceFollowUpRequest,
    ) -> Result<SemesterCheckItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::FollowUpAbsentChildren)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let mut violations = Violations::default();
        let confirmed_absent = match AbsenceFollowUpOutcome::try_from(request.outcome) {
            Ok(AbsenceFollowUpOutcome::ConfirmedAbsent) => true,
            Ok(AbsenceFollowUpOutcome::InClass) => false,
            _ => {
                violations.add("outcome", "must be CONFIRMED_ABSENT or IN_CLASS");
                false
            }
        };
        let note = request.note.trim();
        if note.is_empty() {
            violations.add("note", "is required: who was contacted and what they said");
        } else if note.chars().count() > 2000 {
            violations.add("note", "is longer than 2,000 characters");
        }
        violations.finish()?;
        let mut tx = self.pool.begin().await?;
        let mut item = store::get_check_item(&mut tx, id, true).await?.ok_or_else(|| no_check_item(id))?;
        if !caller.sees(&stored_region(&item.region)?) {
            return Err(no_check_item(id));
        }
        let state = ItemState::parse(&item.state).ok_or_else(|| corrupt("check item state"))?;
        let next = rules::follow_up(state, confirmed_absent).map_err(ServiceError::precondition)?;
        if next == ItemState::Relapsed {
            let case = crate::store::get_for_update(&mut tx, item.case_id)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("no case {}", item.case_id)))?;
            if Status::parse(&case.status) != Some(Status::Monitoring) {
                return Err(ServiceError::precondition(format!(
                    "R13: the case is {}, not in monitoring; a relapse reopens only a monitored case",
                    case.status
                )));
            }
            let today = self.clock.today();
            let change = StatusChange {
                to: Status::Open,
                change: "relapsed",
                actor: &caller.subject,
                detail: serde_json::json!({ "semester_check_item_id": id, "check_id": item.check_id, "note": note }),
                relapse: true,
                follow_up_from: None,
                confirmed_on: Some(today),
            };
            crate::ledger::change_status(
                &mut tx,
                &self.scheme,
                &case,
                &change,
                "R13: absence confirmed at the semester-start check",
            )
            .await?;
        }
        store::set_check_item_state(&mut tx, id, next.as_str(), &caller.subject, Some(note)).await?;
        audit::record(&mut tx, caller, "semester_check.follow_up", "dropout_case", &[item.case_id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        item.state = next.as_str().to_owned();
        item.updated_by = Some(caller.subject.clone());
        item.note = note.to_owned();
        Ok(check_item_message(&item, self.clock.today()))
    }

    async fn progress(
        &self,
        caller: &Caller,
        request: GetSemesterCheckProgressRequest,
    ) -> Result<GetSemesterCheckProgressResponse, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let check = self.check_in_scope(&mut conn, caller, "check_id", &request.check_id).await?;
        let by_school = !matches!(ProgressGrouping::try_from(request.grouping), Ok(ProgressGrouping::County));
        let prefix = scope_prefix(caller, &check)?;
        let rows = store::progress(&self.pool, check.id, &prefix, by_school, self.clock.today()).await?;
        let mut total = store::ProgressRow { key: check.region.clone(), ..Default::default() };
        for row in &rows {
            total.total += row.total;
            total.pending += row.pending;
            total.present += row.present;
            total.absent += row.absent;
            total.relapsed += row.relapsed;
            total.overdue += row.overdue;
        }
        let named = |mut row: store::ProgressRow| {
            if !by_school || row.key == check.region {
                row.name = RegionCode::parse(&row.key).map(|code| code.full_name()).unwrap_or_default();
            }
            progress_message(row)
        };
        Ok(GetSemesterCheckProgressResponse {
            check: Some(check_message(&check)),
            rows: rows.into_iter().map(&named).collect(),
            total: Some(named(total)),
        })
    }
}

/// Runs the sweep every `every` until shutdown.
pub fn spawn_sweeper(
    supervision: Supervision,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    if let Err(error) = supervision.sweep().await {
                        tracing::warn!(%error, "supervision sweep failed; retrying at the next tick");
                    }
                }
            }
        }
    });
}

/// The part of a check a caller sees: the check's whole region, or the caller's part of it.
fn scope_prefix(caller: &Caller, check: &store::CheckRow) -> Result<String, ServiceError> {
    let region = stored_region(&check.region)?;
    Ok(if caller.sees(&region) {
        region.subtree_prefix().to_owned()
    } else {
        caller.region.subtree_prefix().to_owned()
    })
}

fn stored_region(text: &str) -> Result<RegionCode, ServiceError> {
    RegionCode::parse(text).map_err(|error| ServiceError::Internal(anyhow::anyhow!("stored region {text}: {error}")))
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("unreadable stored {what}"))
}

fn no_item(id: Uuid) -> ServiceError {
    ServiceError::not_found(format!("no supervision item {id}"))
}

fn no_check_item(id: Uuid) -> ServiceError {
    ServiceError::not_found(format!("no semester check item {id}"))
}

fn parse_date(text: &str) -> Result<NaiveDate, &'static str> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| "must be a date YYYY-MM-DD")
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
    let invalid = || ServiceError::invalid("page_token", "is not a token this service issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (id, school) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Some((school.to_owned(), Uuid::parse_str(id).map_err(|_| invalid())?)))
}

fn child(name: &str, masked: &str, sex: i16, birth_date: NaiveDate, hukou: &str) -> ChildSummary {
    crate::grpc::child_summary(name, masked, sex, Some(birth_date), hukou, None)
}

fn policy_message(row: &store::PolicyRow) -> PolicyMessage {
    PolicyMessage {
        first_contact_days: row.first_contact_days,
        attempt_interval_days: row.attempt_interval_days,
        deferred_follow_up_days: row.deferred_follow_up_days,
        supervision_after_days: row.supervision_after_days,
        update_by: row.updated_by.clone(),
        update_time: Some(nol_runtime::time::timestamp(row.updated_at)),
    }
}

fn item_message(row: &store::ItemRow) -> SupervisionItem {
    SupervisionItem {
        item_id: row.id.to_string(),
        kind: rules::overdue_kind(&row.kind) as i32,
        case_id: row.case_id.to_string(),
        region_code: row.region.clone(),
        supervising_region_code: row.supervising_region.clone(),
        reason: row.reason.clone(),
        due_date: row.due_on.to_string(),
        state: rules::supervision_state(&row.state) as i32,
        answer: row.answer.clone().unwrap_or_default(),
        answered_by: row.answered_by.clone().unwrap_or_default(),
        closing_note: row.closing_note.clone().unwrap_or_default(),
        closed_by: row.closed_by.clone().unwrap_or_default(),
        raise_time: Some(nol_runtime::time::timestamp(row.raised_at)),
        escalations: row.escalations,
    }
}

fn check_message(row: &store::CheckRow) -> SemesterCheck {
    SemesterCheck {
        check_id: row.id.to_string(),
        region_code: row.region.clone(),
        semester: row.semester.clone(),
        deadline: row.deadline.to_string(),
        item_count: row.item_count,
        started_by: row.started_by.clone(),
        start_time: Some(nol_runtime::time::timestamp(row.started_at)),
    }
}

fn check_item_message(row: &store::CheckItemRow, today: NaiveDate) -> SemesterCheckItem {
    let state = ItemState::parse(&row.state);
    SemesterCheckItem {
        item_id: row.id.to_string(),
        check_id: row.check_id.to_string(),
        case_id: row.case_id.to_string(),
        region_code: row.region.clone(),
        school_code: row.school_code.clone(),
        school_name: row.school_name.clone(),
        child: Some(child(&row.child_name, &row.resident_id_masked, row.sex, row.birth_date, &row.hukou_region)),
        state: state.map(ItemState::to_proto).unwrap_or_default() as i32,
        overdue: state.is_some_and(ItemState::is_open) && today > row.deadline,
        updated_by: row.updated_by.clone().unwrap_or_default(),
        note: row.note.clone(),
    }
}

fn progress_message(row: store::ProgressRow) -> CheckProgress {
    CheckProgress {
        key: row.key,
        name: row.name,
        total: row.total,
        pending: row.pending,
        present: row.present,
        absent: row.absent,
        relapsed: row.relapsed,
        overdue: row.overdue,
    }
}

#[tonic::async_trait]
impl SupervisionService for Supervision {
    async fn get_deadline_policy(
        &self,
        request: Request<GetDeadlinePolicyRequest>,
    ) -> Result<Response<GetDeadlinePolicyResponse>, GrpcStatus> {
        nol_runtime::caller_of(&request, &self.province)?;
        let mut conn = self.pool.acquire().await.map_err(ServiceError::from)?;
        let row = store::policy_row(&mut conn).await.map_err(ServiceError::from)?;
        Ok(Response::new(GetDeadlinePolicyResponse { policy: Some(policy_message(&row)) }))
    }

    async fn update_deadline_policy(
        &self,
        request: Request<UpdateDeadlinePolicyRequest>,
    ) -> Result<Response<UpdateDeadlinePolicyResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.update_policy(&caller, request.into_inner()).await?))
    }

    async fn list_overdue_work(
        &self,
        request: Request<ListOverdueWorkRequest>,
    ) -> Result<Response<ListOverdueWorkResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list_overdue(&caller, request.into_inner()).await?))
    }

    async fn sweep_overdue_work(
        &self,
        request: Request<SweepOverdueWorkRequest>,
    ) -> Result<Response<SweepOverdueWorkResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        caller
            .require_role(&[Role::Operator, Role::System], nol_messages::vocab::Action::RunSupervisionSweep)
            .map_err(ServiceError::from)?;
        let (raised, escalated) = self.sweep().await?;
        Ok(Response::new(SweepOverdueWorkResponse { raised, escalated }))
    }

    async fn list_supervision_items(
        &self,
        request: Request<ListSupervisionItemsRequest>,
    ) -> Result<Response<ListSupervisionItemsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list_items(&caller, request.into_inner()).await?))
    }

    async fn answer_supervision_item(
        &self,
        request: Request<AnswerSupervisionItemRequest>,
    ) -> Result<Response<AnswerSupervisionItemResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let item = self.answer(&caller, request.into_inner()).await?;
        Ok(Response::new(AnswerSupervisionItemResponse { item: Some(item) }))
    }

    async fn close_supervision_item(
        &self,
        request: Request<CloseSupervisionItemRequest>,
    ) -> Result<Response<CloseSupervisionItemResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let item = self.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseSupervisionItemResponse { item: Some(item) }))
    }

    async fn start_semester_check(
        &self,
        request: Request<StartSemesterCheckRequest>,
    ) -> Result<Response<StartSemesterCheckResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let check = self.start_check(&caller, request.into_inner()).await?;
        Ok(Response::new(StartSemesterCheckResponse { check: Some(check) }))
    }

    async fn list_semester_check_items(
        &self,
        request: Request<ListSemesterCheckItemsRequest>,
    ) -> Result<Response<ListSemesterCheckItemsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list_check_items(&caller, request.into_inner()).await?))
    }

    async fn mark_semester_attendance(
        &self,
        request: Request<MarkSemesterAttendanceRequest>,
    ) -> Result<Response<MarkSemesterAttendanceResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let item = self.mark(&caller, request.into_inner()).await?;
        Ok(Response::new(MarkSemesterAttendanceResponse { item: Some(item) }))
    }

    async fn record_absence_follow_up(
        &self,
        request: Request<RecordAbsenceFollowUpRequest>,
    ) -> Result<Response<RecordAbsenceFollowUpResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let item = self.follow_up(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordAbsenceFollowUpResponse { item: Some(item) }))
    }

    async fn get_semester_check_progress(
        &self,
        request: Request<GetSemesterCheckProgressRequest>,
    ) -> Result<Response<GetSemesterCheckProgressResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.progress(&caller, request.into_inner()).await?))
    }
}
