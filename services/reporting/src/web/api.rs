//! The dashboard's figures, reports and operations, as JSON.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nol_proto::v1::admin_service_client::AdminServiceClient;
use nol_proto::v1::supervision_service_client::SupervisionServiceClient;
use nol_proto::v1::{
    CaseStatus, DropoutCause, GetBackboneStatusRequest, ListOverdueWorkRequest, PeriodFigures, ReportNotes, ReportState,
};
use nol_region::{RegionCode, RegionLevel, RegionTree};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::session::Session;
use crate::figures::{self, Figures};
use crate::periods::Period;
use crate::reports::{self, State as ReportStateRow, Step};
use crate::workflow::{counties_of, parse_period};

/// `province`, `city` or `county`, as the page names levels.
pub fn level_name(region: &RegionCode) -> &'static str {
    if region.node().county_level {
        return "county";
    }
    match region.level() {
        RegionLevel::Province => "province",
        RegionLevel::City => "city",
        RegionLevel::County => "county",
    }
}

/// A request to the caller's own region or one below it, in a period (defaults: own, current).
#[derive(Deserialize, Default)]
pub struct Scope {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub period: String,
}

pub(crate) fn in_scope(session: &Session, requested: &str) -> Result<RegionCode, WebError> {
    Ok(nol_runtime::region_in_scope(&session.caller, requested)?)
}

fn period_or_current(state: &WebState, text: &str) -> Result<Period, WebError> {
    if text.trim().is_empty() {
        return Ok(Period::containing(state.clock.today()));
    }
    Ok(parse_period(text)?)
}

fn period_json(period: Period) -> Value {
    json!({
        "code": period.code(),
        "name": period.name_zh(),
        "start": period.start().format("%Y-%m-%d").to_string(),
        "end": period.end().format("%Y-%m-%d").to_string(),
    })
}

/// A cause's name in Chinese.
fn cause_zh(cause: DropoutCause) -> &'static str {
    match cause {
        DropoutCause::FamilyPoverty => "家庭贫困",
        DropoutCause::Disability => "残疾",
        DropoutCause::LearningDifficulty => "学习困难",
        DropoutCause::GoneToWork => "外出打工",
        DropoutCause::Religion => "宗教原因",
        DropoutCause::Other => "其他原因",
        DropoutCause::Unspecified => "未注明",
    }
}

/// A period's figures as the page reads them (statuses and causes named in Chinese).
pub fn figures_json(figures: &PeriodFigures) -> Value {
    let statuses: Vec<Value> = figures
        .balance_by_status
        .iter()
        .filter_map(|count| {
            let name = figures::case_status_name(CaseStatus::try_from(count.status).ok()?)?;
            Some(json!({"status": name, "name": nol_messages::vocab::case_status_zh(name), "count": count.count}))
        })
        .collect();
    let causes: Vec<Value> = figures
        .balance_by_cause
        .iter()
        .filter_map(|count| {
            let cause = DropoutCause::try_from(count.cause).ok()?;
            Some(json!({"cause": figures::cause_name(cause)?, "name": cause_zh(cause), "count": count.count}))
        })
        .collect();
    json!({
        "pupils_registered": figures.pupils_registered,
        "pupils_left_enrolled": figures.pupils_left_enrolled,
        "pupils_enrolled": figures.pupils_enrolled,
        "suspects_new": figures.suspects_new,
        "suspects_confirmed": figures.suspects_confirmed,
        "suspects_closed": figures.suspects_closed,
        "suspects_pending": figures.suspects_pending,
        "dropouts_new": figures.dropouts_new,
        "cases_taken_in": figures.cases_taken_in,
        "cases_handed_out": figures.cases_handed_out,
        "returned": figures.returned,
        "relapsed": figures.relapsed,
        "deferred": figures.deferred,
        "suspended": figures.suspended,
        "home_teaching": figures.home_teaching,
        "exempt": figures.exempt,
        "closed": figures.closed,
        "persuasion_attempts": figures.persuasion_attempts,
        "joint_persuasion_attempts": figures.joint_persuasion_attempts,
        "supervision_raised": figures.supervision_raised,
        "supervision_closed": figures.supervision_closed,
        "supervision_open": figures.supervision_open,
        "handoffs_out": figures.handoffs_out,
        "handoffs_in": figures.handoffs_in,
        "dropout_balance": figures.dropout_balance,
        "balance_by_status": statuses,
        "balance_by_cause": causes,
        "check_listed": figures.check_listed,
        "check_present": figures.check_present,
        "check_absent": figures.check_absent,
        "check_relapsed": figures.check_relapsed,
        "check_pending": figures.check_pending,
        "check_absent_open": figures.check_absent_open,
        "pupils_enrolled_migrant": figures.pupils_enrolled_migrant,
        "pupils_enrolled_registered_poor": figures.pupils_enrolled_registered_poor,
        "pupils_enrolled_disability": figures.pupils_enrolled_disability,
        "pupils_enrolled_by_grade": figures.pupils_enrolled_by_grade.iter().map(|count| json!({
            "grade": count.grade, "name": grade_zh(count.grade), "count": count.count,
        })).collect::<Vec<_>>(),
    })
}

/// A grade as schools name it: 一年级 … 六年级, then 初一 … 初三.
fn grade_zh(grade: i32) -> String {
    const NAMES: [&str; 9] = ["一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "初一", "初二", "初三"];
    usize::try_from(grade - 1)
        .ok()
        .and_then(|index| NAMES.get(index))
        .map_or_else(|| format!("{grade}年级"), |name| (*name).to_owned())
}

/// GET /api/periods: the current period and the five before it, newest first.
pub async fn periods(State(state): State<WebState>, _session: Session) -> Json<Value> {
    let current = Period::containing(state.clock.today());
    let mut list = vec![current];
    for _ in 0..5 {
        let previous = list.last().copied().unwrap_or(current).previous();
        list.push(previous);
    }
    Json(json!({"current": current.code(), "periods": list.into_iter().map(period_json).collect::<Vec<_>>()}))
}

/// The regions one level below `region` that the overview lists: a province's cities (and
/// county-level units directly under it), a city's counties; none for a county.
fn children_of(region: &RegionCode) -> Vec<RegionCode> {
    if region.node().county_level {
        return Vec::new();
    }
    if region.level() == RegionLevel::City {
        return counties_of(region);
    }
    let mut children: Vec<RegionCode> = RegionTree::global()
        .nodes()
        .filter(|node| node.parent == Some(*region) && node.code != *region)
        .map(|node| node.code)
        .collect();
    children.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    children
}

/// Overdue work in scope, as the case service counts it with the user's token (None when it
/// cannot be read: the service is not configured or refuses this role).
async fn overdue_work(state: &WebState, session: &Session, region: &RegionCode) -> Option<i64> {
    let channel = state.upstream.cases.clone()?;
    let request = super::lists::authed(
        session,
        ListOverdueWorkRequest { region_code: region.to_string(), page_size: 1, ..Default::default() },
    );
    match SupervisionServiceClient::new(channel).list_overdue_work(request).await {
        Ok(response) => Some(response.into_inner().total_count),
        Err(status) => {
            tracing::debug!(code = ?status.code(), "overdue work not counted for the overview");
            None
        }
    }
}

/// GET /api/overview?region=&period=: headline figures, the children one level down, a trend of
/// six periods, warnings.
pub async fn overview(
    State(state): State<WebState>,
    session: Session,
    Query(scope): Query<Scope>,
) -> Result<Json<Value>, WebError> {
    let region = in_scope(&session, &scope.region)?;
    let period = period_or_current(&state, &scope.period)?;
    let today = state.clock.today();
    // Independent reads, each on its own connection (or the case service), at once: the overview
    // waits for the slowest, not for their sum.
    let states = async {
        let mut conn = state.pool.acquire().await?;
        crate::report_store::states_under(&mut conn, &region, period.into()).await
    };
    let (cut, tallies, overdue, rates, states, trend) = tokio::join!(
        state.reports.period(&region, period),
        crate::store::handoff_tallies(&state.pool, &region, today),
        overdue_work(&state, &session, &region),
        crate::cohorts::rates(&state.pool, &region),
        states,
        state.reports.trend(&region, period, 6),
    );
    let (cut, rates, trend) = (cut?, rates?, trend?);
    let (_, incoming, _) = tallies.map_err(nol_runtime::ServiceError::from)?;
    let states = states.map_err(nol_runtime::ServiceError::from)?;
    let total = cut.total.to_proto();
    let consolidation = crate::cohorts::headline(&rates).map(|rate| {
        json!({"rate": rate.rate(), "graduation_year": rate.graduation_year, "entrants": rate.entrants,
               "graduates": rate.graduates, "counties": rate.counties})
    });
    let children: Vec<Value> = children_of(&region)
        .into_iter()
        .map(|child| {
            let mut sum = Figures::default();
            for (county, figures) in &cut.counties {
                if child.contains(county) {
                    sum.add(figures);
                }
            }
            let report_state = states.iter().find(|(code, _)| code == child.as_str()).map(|(_, state)| *state);
            let county = child.node().county_level;
            json!({
                "region_code": child.as_str(),
                "region_name": child.full_name(),
                "figures": figures_json(&sum.to_proto()),
                "report_state": report_state.map(ReportStateRow::as_stored),
                "report_state_zh": county.then(|| reports::word(report_state).zh()),
            })
        })
        .collect();
    let trend: Vec<Value> = trend
        .into_iter()
        .map(|(past, figures)| {
            json!({
                "period": past.code(),
                "name": past.name_zh(),
                "dropouts_new": figures.get("cases_opened"),
                "returned": figures.get("cases_returned"),
                "relapsed": figures.get("cases_relapsed"),
                "dropout_balance": figures.dropout_balance(),
            })
        })
        .collect();
    let parent = region
        .parent()
        .filter(|parent| session.caller.sees(parent))
        .map(|parent| json!({"region_code": parent.as_str(), "region_name": parent.full_name()}));
    Ok(Json(json!({
        "region_code": region.as_str(),
        "region_name": region.full_name(),
        "level": level_name(&region),
        "parent": parent,
        "period": period_json(period),
        "headline": {
            // Only where the entrants file and the graduates exist: never invented.
            "consolidation_rate": consolidation.as_ref().map(|rate| rate["rate"].clone()),
            "dropout_balance": total.dropout_balance,
            "dropouts_new": total.dropouts_new,
            "returned": total.returned,
            "relapsed": total.relapsed,
            "overdue_work": overdue,
            "handoffs_pending": incoming.pending,
            "suspects_pending": total.suspects_pending,
        },
        "consolidation": consolidation,
        "figures": figures_json(&total),
        "children": children,
        "trend": trend,
        "warnings": cut.warnings,
        "updated_at": chrono::Utc::now().to_rfc3339(),
    })))
}

fn state_name(state: i32) -> Option<&'static str> {
    match ReportState::try_from(state).ok()? {
        ReportState::Unspecified => None,
        ReportState::Draft => Some("draft"),
        ReportState::Submitted => Some("submitted"),
        ReportState::Returned => Some("returned"),
        ReportState::Approved => Some("approved"),
        ReportState::Accepted => Some("accepted"),
    }
}

const STEPS: [Step; 6] = [Step::Draft, Step::Submit, Step::Approve, Step::Return, Step::Accept, Step::Reopen];

/// A report as the page reads it, with the steps this caller may take now.
fn report_json(state: &WebState, session: &Session, report: &nol_proto::v1::Report) -> Value {
    let region = RegionCode::parse(&report.region_code).ok();
    let stored = state_name(report.state).and_then(ReportStateRow::from_stored);
    let kind = crate::periods::ReportPeriod::parse(&report.period).ok();
    let period_over = kind.is_some_and(|period| state.clock.today() > period.end());
    let semester = kind.is_some_and(crate::periods::ReportPeriod::is_semester);
    let actions: Vec<&str> = match region {
        Some(county) if report.state != 0 || report.counties.is_empty() && report.counties_total == 0 => STEPS
            .into_iter()
            .filter(|step| *step != Step::Draft || period_over)
            .filter(|step| reports::may(&session.caller, &county, *step, stored, semester).is_ok())
            .filter(|step| reports::next(stored, *step, semester).is_ok())
            .filter(|step| stored.is_some() || *step == Step::Draft)
            .map(Step::as_stored)
            .collect(),
        _ => Vec::new(),
    };
    let history: Vec<Value> = report
        .history
        .iter()
        .map(|step| {
            let region_name = RegionCode::parse(&step.actor_region_code).map(|code| code.full_name()).unwrap_or_default();
            json!({
                "action": step.action,
                "action_zh": reports::step_zh(&step.action),
                "state_zh": reports::word(state_name(step.state).and_then(ReportStateRow::from_stored)).zh(),
                "actor": step.actor,
                "actor_role_zh": nol_messages::vocab::role_zh(&step.actor_role),
                "actor_region_name": region_name,
                "comment": step.comment,
                "time": step.time.as_ref().and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0)).map(|time| time.to_rfc3339()),
            })
        })
        .collect();
    let counties: Vec<Value> = report
        .counties
        .iter()
        .map(|county| {
            let stored = state_name(county.state).and_then(ReportStateRow::from_stored);
            json!({
                "region_code": county.region_code,
                "region_name": county.region_name,
                "state": stored.map(ReportStateRow::as_stored),
                "state_zh": reports::word(stored).zh(),
                "late": county.late,
            })
        })
        .collect();
    let notes = report.notes.clone().unwrap_or_default();
    json!({
        "region_code": report.region_code,
        "region_name": report.region_name,
        "level": region.as_ref().map(level_name),
        "period": report.period,
        "period_name": report.period_name,
        "state": stored.map(ReportStateRow::as_stored),
        "state_zh": reports::word(stored).zh(),
        "figures": report.figures.as_ref().map(figures_json),
        "notes": {"work_done": notes.work_done, "problems": notes.problems, "next_steps": notes.next_steps},
        "history": history,
        "counties": counties,
        "counties_counted": report.counties_counted,
        "counties_total": report.counties_total,
        "due_on": report.due_on,
        "late": report.late,
        "warnings": report.warnings,
        "actions": actions,
    })
}

/// GET /api/report?region=&period=
pub async fn report(
    State(state): State<WebState>,
    session: Session,
    Query(scope): Query<Scope>,
) -> Result<Json<Value>, WebError> {
    let period = period_or_current(&state, &scope.period)?;
    let report = state.reports.get(&session.caller, &scope.region, &period.code()).await?;
    Ok(Json(report_json(&state, &session, &report)))
}

#[derive(Deserialize)]
pub struct StepBody {
    #[serde(default)]
    region: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    notes: Option<NotesBody>,
}

#[derive(Deserialize, Default)]
pub struct NotesBody {
    #[serde(default)]
    work_done: String,
    #[serde(default)]
    problems: String,
    #[serde(default)]
    next_steps: String,
}

/// POST /api/report/{draft|submit|approve|return|accept|reopen}: one step of the workflow, with
/// the same checks as the gRPC call.
pub async fn report_step(
    State(state): State<WebState>,
    session: Session,
    Path(action): Path<String>,
    Json(body): Json<StepBody>,
) -> Result<Json<Value>, WebError> {
    let step = match action.as_str() {
        "draft" => Step::Draft,
        "submit" => Step::Submit,
        "approve" => Step::Approve,
        "return" => Step::Return,
        "accept" => Step::Accept,
        "reopen" => Step::Reopen,
        _ => return Err(WebError::new(StatusCode::NOT_FOUND, "没有这项报告操作")),
    };
    let report = if step == Step::Draft {
        let notes = body.notes.unwrap_or_default();
        let notes = ReportNotes { work_done: notes.work_done, problems: notes.problems, next_steps: notes.next_steps };
        state.reports.draft(&session.caller, &body.region, &body.period, notes).await?
    } else {
        state.reports.step(&session.caller, &body.region, &body.period, step, &body.comment).await?
    };
    Ok(Json(report_json(&state, &session, &report)))
}

/// `attachment; filename*=UTF-8''…` for a Chinese file name.
pub fn attachment(name: &str) -> HeaderValue {
    let encoded: String = name
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"report.xlsx\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// GET /api/report.pdf?region=&period=: an approved report as filed.
pub async fn report_pdf(
    State(state): State<WebState>,
    session: Session,
    Query(scope): Query<Scope>,
) -> Result<Response, WebError> {
    let period = period_or_current(&state, &scope.period)?;
    let (name, bytes) = state.reports.pdf(&session.caller, &scope.region, &period.code()).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    response.headers_mut().insert(header::CONTENT_DISPOSITION, attachment(&name));
    Ok(response)
}

/// GET /api/export/figures.xlsx?region=&period=: the bureaus' spreadsheet.
pub async fn export_figures(
    State(state): State<WebState>,
    session: Session,
    Query(scope): Query<Scope>,
) -> Result<Response, WebError> {
    let region = in_scope(&session, &scope.region)?;
    let period = period_or_current(&state, &scope.period)?;
    let (name, bytes) = state.reports.export(&region, period).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XLSX));
    response.headers_mut().insert(header::CONTENT_DISPOSITION, attachment(&name));
    Ok(response)
}

/// GET /api/ops: each service's backbone (outbox backlog, consumer lag, dead letters), read from
/// its `AdminService` with the user's token (which answers for the roles it admits).
pub async fn ops(State(state): State<WebState>, session: Session) -> Result<Json<Value>, WebError> {
    let upstream = &state.upstream;
    let services = [
        ("registry", upstream.registry.clone()),
        ("cases", upstream.cases.clone()),
        ("transfer", upstream.transfer.clone()),
        ("reporting", Some(upstream.reporting.clone())),
    ];
    let mut rows = Vec::new();
    for (service, channel) in services {
        let Some(channel) = channel else { continue };
        let request = super::lists::authed(&session, GetBackboneStatusRequest {});
        let status = AdminServiceClient::new(channel)
            .get_backbone_status(request)
            .await?
            .into_inner()
            .status
            .unwrap_or_default();
        rows.push(json!({
            "service": service,
            "outbox_backlog": status.outbox_unsent,
            "oldest_unsent_seconds": status.outbox_oldest_unsent_seconds,
            "consumer_pending": status.consumer_pending,
            "dead_letters": status.dead_letters,
            "publish_failures": status.publish_failures,
        }));
    }
    Ok(Json(json!({"services": rows})))
}
