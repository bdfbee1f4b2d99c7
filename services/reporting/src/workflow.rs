//! The reports' service: period figures cut from the daily counts, and the bi-monthly report's
//! workflow — each step one transaction with its history row, its event (outbox) and its audit
//! entry.

use chrono::Utc;
use nol_auth::Caller;
use nol_backbone::outbox::RelayWake;
use nol_events::{EventHeader, REPORT_STEP, SubjectScheme};
use nol_messages::{Common, Count, Reporting as Says};
use nol_proto::v1::{ChildReport, Report, ReportNotes, ReportState, ReportStepTaken};
use nol_region::{RegionCode, RegionLevel, RegionTree};
use nol_runtime::clock::Clock;
use nol_runtime::{Platform, ServiceError, audit};
use sqlx::PgPool;
use uuid::Uuid;

use crate::figures::Figures;
use crate::periods::{Period, ReportPeriod, Semester};
use crate::report_store::{self, NewStep, ReportRow};
use crate::reports::{self, State, Step};
use crate::store;

/// Free text at most this long (a report's notes, a comment).
const MAX_TEXT: usize = 2000;

pub struct Reports {
    pool: PgPool,
    scheme: SubjectScheme,
    wake: RelayWake,
    clock: Clock,
}

/// A period's figures for a region: the total, each county's, and reconciliation warnings.
pub struct RegionPeriod {
    pub total: Figures,
    pub counties: Vec<(RegionCode, Figures)>,
    pub warnings: Vec<String>,
}

pub fn parse_period(text: &str) -> Result<Period, ServiceError> {
    Period::parse(text).map_err(|message| ServiceError::invalid("period", message))
}

pub fn parse_report_period(text: &str) -> Result<ReportPeriod, ServiceError> {
    ReportPeriod::parse(text).map_err(|message| ServiceError::invalid("period", message))
}

/// Whether `region` writes reports of `period`'s kind: a county its bi-monthly reports, a city its
/// semester reports.
fn writes(region: &RegionCode, period: ReportPeriod) -> bool {
    if period.is_semester() { region.level() == RegionLevel::City } else { region.node().county_level }
}

/// The region a report step names, which must be in scope and write reports of the period's kind.
fn unit_in_scope(caller: &Caller, requested: &str, period: ReportPeriod) -> Result<RegionCode, ServiceError> {
    let region = nol_runtime::region_in_scope(caller, requested)?;
    if !writes(&region, period) {
        let message = if period.is_semester() {
            Says::NotACity { region: region.full_name() }
        } else {
            Says::NotACounty { region: region.full_name() }
        };
        return Err(ServiceError::invalid("region_code", message));
    }
    Ok(region)
}

/// The regions whose reports of `period`'s kind a region above them sums: a city's or the
/// province's counties for bi-months, the province's cities for semesters.
fn units_under(region: &RegionCode, period: ReportPeriod) -> Vec<RegionCode> {
    if !period.is_semester() {
        return counties_of(region);
    }
    let mut cities: Vec<RegionCode> = RegionTree::global()
        .nodes()
        .filter(|node| node.level == RegionLevel::City && node.code != *region && region.contains(&node.code))
        .map(|node| node.code)
        .collect();
    cities.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    cities
}

fn check_text(field: &str, text: &str) -> Result<(), ServiceError> {
    if text.chars().count() > MAX_TEXT {
        return Err(ServiceError::invalid(field, Common::TooLong { max: Count(MAX_TEXT as u64) }));
    }
    Ok(())
}

/// The county-level units of `region`'s subtree (the region itself when it is one), by code.
pub fn counties_of(region: &RegionCode) -> Vec<RegionCode> {
    if region.node().county_level {
        return vec![*region];
    }
    let mut counties: Vec<RegionCode> = RegionTree::global()
        .nodes()
        .filter(|node| node.county_level && node.code != *region && region.contains(&node.code))
        .filter(|node| node.name != "市辖区")
        .map(|node| node.code)
        .collect();
    counties.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    counties
}

impl Reports {
    pub fn new(platform: &Platform) -> Reports {
        Reports {
            pool: platform.pool.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            clock: platform.clock.clone(),
        }
    }

    /// A period's figures under `region`, cut from the daily counts.
    pub async fn period(&self, region: &RegionCode, period: Period) -> Result<RegionPeriod, ServiceError> {
        self.cut(region, period.into()).await
    }

    /// A report period's figures under `region`: a bi-month from the rollup, a semester from the
    /// daily counts.
    pub async fn cut(&self, region: &RegionCode, period: ReportPeriod) -> Result<RegionPeriod, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let rows = match period {
            ReportPeriod::Bimonth(period) => store::period_figures(&mut conn, region, period).await?,
            ReportPeriod::Semester(_) => store::span_figures(&mut conn, region, period.start(), period.end()).await?,
        };
        let mut total = Figures::default();
        let mut counties = Vec::new();
        let mut warnings = Vec::new();
        for (code, (resolved, cumulative)) in rows {
            let Ok(county) = RegionCode::parse(&code) else {
                tracing::warn!(region = code, "daily counts of a region that is not in the tree skipped");
                continue;
            };
            if let Err((balance, ledger)) = resolved.reconciles(&cumulative) {
                warnings.push(Says::BalanceMismatch { region: county.full_name(), balance, ledger }.zh());
            }
            total.add(&resolved);
            counties.push((county, resolved));
        }
        Ok(RegionPeriod { total, counties, warnings })
    }

    /// The period's figures of every county-level unit under `region` as the bureaus' XLSX; the
    /// file's name and bytes.
    pub async fn export(&self, region: &RegionCode, period: Period) -> Result<(String, Vec<u8>), ServiceError> {
        let cut = self.period(region, period).await?;
        let states = {
            let mut conn = self.pool.acquire().await?;
            report_store::states_under(&mut conn, region, period.into()).await?
        };
        let counties: Vec<(RegionCode, Figures)> = counties_of(region)
            .into_iter()
            .map(|county| {
                let figures = cut.counties.iter().find(|(code, _)| *code == county).map(|(_, f)| f.clone());
                (county, figures.unwrap_or_default())
            })
            .collect();
        let state = |county: &RegionCode| {
            let state = states.iter().find(|(code, _)| code == county.as_str()).map(|(_, state)| *state);
            reports::word(state).zh().to_owned()
        };
        let bytes = crate::export::period_xlsx(region, &period.name_zh(), &counties, state)
            .map_err(|error| ServiceError::Internal(anyhow::anyhow!("writing the XLSX: {error}")))?;
        Ok((format!("{}-{}-双月报.xlsx", region.full_name(), period.code()), bytes))
    }

    /// The first period reports are due for: the one the deployment started in (rule time), fixed
    /// at the first call.
    async fn reports_from(&self, conn: &mut sqlx::PgConnection) -> Result<Period, ServiceError> {
        let today = self.clock.today();
        let from = sqlx::query_scalar!(
            r#"UPDATE report_policy SET reports_from = coalesce(reports_from, $1) RETURNING reports_from AS "from!""#,
            Period::containing(today).code(),
        )
        .fetch_one(&mut *conn)
        .await?;
        Period::parse(&from).map_err(|_| ServiceError::Internal(anyhow::anyhow!("report_policy.reports_from {from:?}")))
    }

    /// Sends each report that is past its due date and still with its writer (a county's
    /// bi-monthly report, a city's semester report) to supervision (`report_overdue`, which the
    /// case service raises as an item for the writer's supervising bureau), once per writer and
    /// period.
    pub async fn sweep_late(&self, province: &RegionCode) -> Result<i64, ServiceError> {
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let first = self.reports_from(&mut tx).await?;
        let mut due: Vec<ReportPeriod> = Vec::new();
        let mut period = first;
        while period.end() < today {
            due.push(period.into());
            period = period.next();
        }
        let mut semester = Semester::containing(first.start());
        while semester.end() < today {
            due.push(ReportPeriod::Semester(semester));
            semester = semester.next();
        }
        let mut raised = 0;
        for period in due {
            let due_on = report_store::due_on(&mut tx, period).await?;
            if today <= due_on {
                continue;
            }
            let states = report_store::states_under(&mut tx, province, period).await?;
            for unit in units_under(province, period) {
                let state = states.iter().find(|(code, _)| code == unit.as_str()).map(|(_, state)| *state);
                if !state.is_none_or(State::with_county) {
                    continue;
                }
                if !report_store::mark_late(&mut tx, &unit, period, due_on).await? {
                    continue;
                }
                let payload = nol_proto::v1::ReportOverdue {
                    region_code: unit.to_string(),
                    period: period.code(),
                    period_name: period.name_zh(),
                    due_on: due_on.format("%Y-%m-%d").to_string(),
                };
                let aggregate = format!("{unit}:{}", period.code());
                nol_backbone::outbox::emit(
                    &mut tx,
                    &self.scheme.local(nol_events::REPORT_OVERDUE, &unit),
                    EventHeader {
                        event_type: nol_events::REPORT_OVERDUE,
                        source_region: unit,
                        aggregate_type: "report",
                        aggregate_id: &aggregate,
                        aggregate_sequence: 1,
                        actor: "system:reporting",
                    },
                    &payload,
                )
                .await?;
                raised += 1;
            }
        }
        tx.commit().await?;
        if raised > 0 {
            self.wake.notify();
            tracing::info!(raised, %today, "late reports sent to supervision");
        }
        Ok(raised)
    }

    /// The PDF of a county's approved or accepted report: its file name and bytes.
    pub async fn pdf(&self, caller: &Caller, region: &str, period: &str) -> Result<(String, Vec<u8>), ServiceError> {
        let county = unit_in_scope(caller, region, parse_report_period(period)?)?;
        let report = self.get(caller, county.as_str(), period).await?;
        let state = match ReportState::try_from(report.state).unwrap_or_default() {
            ReportState::Approved => State::Approved,
            ReportState::Accepted => State::Accepted,
            other => {
                let stored = match other {
                    ReportState::Draft => Some(State::Draft),
                    ReportState::Submitted => Some(State::Submitted),
                    ReportState::Returned => Some(State::Returned),
                    _ => None,
                };
                return Err(ServiceError::precondition(Says::NotApprovedPdf { state: reports::word(stored).zh() }));
            }
        };
        let steps: Vec<(String, String, String, String)> = report
            .history
            .iter()
            .map(|step| {
                let time = step
                    .time
                    .as_ref()
                    .and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0))
                    .map(|time| (time + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                let region =
                    RegionCode::parse(&step.actor_region_code).map(|code| code.full_name()).unwrap_or_default();
                (time, crate::reports::step_zh(&step.action).to_owned(), region, step.comment.clone())
            })
            .collect();
        let font = self.font()?;
        let bytes = crate::report_pdf::render(&font, &report, &reports::word(Some(state)).zh(), &steps)
            .map_err(|error| ServiceError::Internal(anyhow::anyhow!("drawing the report's PDF: {error}")))?;
        let kind = if report.period.contains("-S") { "学期报告" } else { "双月报" };
        Ok((format!("{}-{}-{kind}.pdf", county.full_name(), report.period), bytes))
    }

    /// The CJK font, found once (the service runs without one; only the PDF needs it).
    fn font(&self) -> Result<std::sync::Arc<nol_documents::CjkFont>, ServiceError> {
        static FONT: std::sync::OnceLock<Result<std::sync::Arc<nol_documents::CjkFont>, String>> =
            std::sync::OnceLock::new();
        FONT.get_or_init(|| nol_documents::CjkFont::find().map(std::sync::Arc::new).map_err(|error| error.to_string()))
            .clone()
            .map_err(|error| ServiceError::Internal(anyhow::anyhow!("no CJK font for the report's PDF: {error}")))
    }

    /// `region`'s figures for the `count` periods ending with `last`, oldest first.
    pub async fn trend(
        &self,
        region: &RegionCode,
        last: Period,
        count: usize,
    ) -> Result<Vec<(Period, Figures)>, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        Ok(store::period_trend(&mut conn, region, last, count).await?)
    }

    pub async fn get(&self, caller: &Caller, region: &str, period: &str) -> Result<Report, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, region)?;
        let period = parse_report_period(period)?;
        if period.is_semester() && region.node().county_level && region.level() != RegionLevel::City {
            return Err(ServiceError::invalid("region_code", Says::NotACity { region: region.full_name() }));
        }
        let mut conn = self.pool.acquire().await?;
        let due_on = report_store::due_on(&mut conn, period).await?;
        let today = self.clock.today();
        let late = |state: Option<State>| today > due_on && state.is_none_or(State::with_county);
        let mut report = Report {
            region_code: region.to_string(),
            region_name: region.full_name(),
            period: period.code(),
            period_name: period.name_zh(),
            due_on: due_on.format("%Y-%m-%d").to_string(),
            ..Default::default()
        };
        if writes(&region, period) {
            let row = report_store::report(&mut conn, &region, period).await?;
            report.late = late(row.as_ref().map(|row| row.state));
            if let Some(row) = row {
                let figures = report_store::figures(&mut conn, row.id).await?;
                let steps = report_store::steps(&mut conn, row.id, &row.region).await?;
                fill(&mut report, &row, &figures, &steps);
            }
            return Ok(report);
        }
        let states = report_store::states_under(&mut conn, &region, period).await?;
        let counties = units_under(&region, period);
        report.counties = counties
            .iter()
            .map(|county| {
                let state = states.iter().find(|(code, _)| code == county.as_str()).map(|(_, state)| *state);
                ChildReport {
                    region_code: county.to_string(),
                    region_name: county.full_name(),
                    state: state.map_or(ReportState::Unspecified, State::to_proto) as i32,
                    late: late(state),
                }
            })
            .collect();
        report.counties_total = counties.len() as i32;
        report.counties_counted = states.iter().filter(|(_, state)| state.counts_up()).count() as i32;
        report.figures = Some(report_store::approved_sum(&mut conn, &region, period).await?.to_proto());
        Ok(report)
    }

    /// DraftReport: the county's figures for the ended period frozen now, with its notes.
    pub async fn draft(
        &self,
        caller: &Caller,
        region: &str,
        period: &str,
        notes: ReportNotes,
    ) -> Result<Report, ServiceError> {
        let period = parse_report_period(period)?;
        let county = unit_in_scope(caller, region, period)?;
        check_text("notes.work_done", &notes.work_done)?;
        check_text("notes.problems", &notes.problems)?;
        check_text("notes.next_steps", &notes.next_steps)?;
        let today = self.clock.today();
        if today <= period.end() {
            return Err(ServiceError::precondition(Says::PeriodNotOver {
                period: period.name_zh(),
                end: period.end().format("%Y-%m-%d").to_string(),
            }));
        }
        let cut = self.cut(&county, period).await?;
        let mut tx = self.pool.begin().await?;
        report_store::lock(&mut tx, &county, period).await?;
        let existing = report_store::report(&mut tx, &county, period).await?;
        let state = existing.as_ref().map(|row| row.state);
        reports::may(caller, &county, Step::Draft, state, period.is_semester())?;
        let next = reports::next(state, Step::Draft, period.is_semester())
            .map_err(|refused| ServiceError::precondition(refused.0))?;
        let now = Utc::now();
        let row = ReportRow {
            id: existing.as_ref().map_or_else(Uuid::now_v7, |row| row.id),
            region: county.to_string(),
            state: next,
            work_done: notes.work_done.trim().to_owned(),
            problems: notes.problems.trim().to_owned(),
            next_steps: notes.next_steps.trim().to_owned(),
            snapshot_at: now,
            warnings: cut.warnings,
            version: existing.as_ref().map_or(1, |row| row.version + 1),
        };
        report_store::save_draft(&mut tx, &row, period, &cut.total, now).await?;
        self.record(&mut tx, caller, &row, period, Step::Draft, next, "").await?;
        tx.commit().await?;
        self.wake.notify();
        self.get(caller, county.as_str(), &period.code()).await
    }

    /// SubmitReport, ApproveReport, ReturnReport, AcceptReport, ReopenReport.
    pub async fn step(
        &self,
        caller: &Caller,
        region: &str,
        period: &str,
        step: Step,
        comment: &str,
    ) -> Result<Report, ServiceError> {
        let period = parse_report_period(period)?;
        let county = unit_in_scope(caller, region, period)?;
        let comment = comment.trim();
        match step {
            Step::Return if comment.is_empty() => return Err(ServiceError::invalid("comment", Says::CommentRequired)),
            Step::Reopen if comment.is_empty() => return Err(ServiceError::invalid("reason", Says::ReasonRequired)),
            Step::Reopen => check_text("reason", comment)?,
            _ => check_text("comment", comment)?,
        }
        let mut tx = self.pool.begin().await?;
        report_store::lock(&mut tx, &county, period).await?;
        let existing = report_store::report(&mut tx, &county, period).await?;
        let state = existing.as_ref().map(|row| row.state);
        reports::may(caller, &county, step, state, period.is_semester())?;
        let Some(row) = existing else {
            return Err(ServiceError::not_found(Says::NoReport {
                region: county.full_name(),
                period: period.name_zh(),
            }));
        };
        let next = reports::next(state, step, period.is_semester())
            .map_err(|refused| ServiceError::precondition(refused.0))?;
        if step == Step::Submit && row.work_done.is_empty() {
            return Err(ServiceError::invalid("notes.work_done", Says::NotesRequired));
        }
        report_store::set_state(&mut tx, row.id, next, Utc::now()).await?;
        self.record(&mut tx, caller, &row, period, step, next, comment).await?;
        tx.commit().await?;
        self.wake.notify();
        self.get(caller, county.as_str(), &period.code()).await
    }

    /// The step's history row, event and audit entry, in the step's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        conn: &mut sqlx::PgConnection,
        caller: &Caller,
        row: &ReportRow,
        period: ReportPeriod,
        step: Step,
        state: State,
        comment: &str,
    ) -> Result<(), ServiceError> {
        let now = Utc::now();
        let step_row = NewStep {
            report_id: row.id,
            action: step.as_stored(),
            state,
            actor: &caller.subject,
            actor_role: caller.role.as_str(),
            actor_region: caller.region.as_str(),
            comment,
            at: now,
        };
        report_store::add_step(conn, &step_row).await?;
        let county = RegionCode::parse(&row.region).map_err(|error| ServiceError::Internal(error.into()))?;
        let payload = ReportStepTaken {
            report_id: row.id.to_string(),
            region_code: row.region.clone(),
            period: period.code(),
            action: step.as_stored().to_owned(),
            state: state.to_proto() as i32,
            actor_region_code: caller.region.to_string(),
            comment: comment.to_owned(),
        };
        let sequence = report_store::step_count(conn, row.id).await?;
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(REPORT_STEP, &county),
            EventHeader {
                event_type: REPORT_STEP,
                source_region: county,
                aggregate_type: "report",
                aggregate_id: &payload.report_id,
                aggregate_sequence: sequence as u64,
                actor: &caller.subject,
            },
            &payload,
        )
        .await?;
        audit::record(conn, caller, &format!("report.{}", step.as_stored()), "report", &[row.id.to_string()]).await?;
        Ok(())
    }
}

fn fill(report: &mut Report, row: &ReportRow, figures: &Figures, steps: &[report_store::StepRow]) {
    report.state = row.state.to_proto() as i32;
    report.figures = Some(figures.to_proto());
    report.notes = Some(ReportNotes {
        work_done: row.work_done.clone(),
        problems: row.problems.clone(),
        next_steps: row.next_steps.clone(),
    });
    report.snapshot_time = Some(nol_runtime::time::timestamp(row.snapshot_at));
    report.warnings = row.warnings.clone();
    report.history = steps
        .iter()
        .map(|step| nol_proto::v1::ReportStep {
            action: step.action.clone(),
            state: step.state.to_proto() as i32,
            actor: step.actor.clone(),
            actor_role: step.actor_role.clone(),
            actor_region_code: step.actor_region.clone(),
            comment: step.comment.clone(),
            time: Some(nol_runtime::time::timestamp(step.at)),
        })
        .collect();
}
