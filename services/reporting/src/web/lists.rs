//! The lists a supervisor works from, read from the case and transfer services through their
//! gRPC APIs with the signed-in user's token (their scope and role rules answer), as one generic
//! table shape the page renders, and as XLSX.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nol_proto::v1::assistance_service_client::AssistanceServiceClient;
use nol_proto::v1::supervision_service_client::SupervisionServiceClient;
use nol_proto::v1::suspect_service_client::SuspectServiceClient;
use nol_proto::v1::transfer_service_client::TransferServiceClient;
use nol_proto::v1::{
    AssistanceNeed, AssistanceReason, AssistanceState, CheckProgress, GetSemesterCheckProgressRequest,
    HandoffDirection, HandoffState, HukouNoticeState, ListAssistanceRequest, ListHandoffsRequest,
    ListHukouNoticesRequest, ListOverdueWorkRequest, ListSemesterChecksRequest, ListSupervisionItemsRequest,
    ListSuspectsRequest, OverdueKind, ProgressGrouping, SemesterCheck, SupervisionState, SuspectOrigin, SuspectState,
};
use nol_region::RegionCode;
use serde_json::{Map, Value, json};
use tonic::transport::Channel;

use super::WebState;
use super::error::WebError;
use super::session::Session;

/// A request to another service of the province, on the user's behalf.
pub fn authed<T>(session: &Session, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", session.caller.authorization_header());
    request
}

/// A filter: its key, its title, and its options (value, label).
type Filter = (&'static str, &'static str, Vec<(String, String)>);

/// A filter's options: "all" first, then each value with its label.
fn options(
    all: (&'static str, &'static str),
    each: impl IntoIterator<Item = (&'static str, &'static str)>,
) -> Vec<(String, String)> {
    std::iter::once(all).chain(each).map(|(value, label)| (value.to_owned(), label.to_owned())).collect()
}

/// One page of a list, in the shape the page renders.
struct Table {
    title: &'static str,
    columns: Vec<(&'static str, &'static str)>,
    filters: Vec<Filter>,
    rows: Vec<Map<String, Value>>,
    next_page_token: String,
    /// The value each filter took when the request named none (the server's default).
    selected: Vec<(&'static str, String)>,
}

impl Table {
    fn json(&self) -> Value {
        json!({
            "title": self.title,
            "columns": self.columns.iter().map(|(key, title)| json!({"key": key, "title": title})).collect::<Vec<_>>(),
            "filters": self.filters.iter().map(|(key, title, options)| json!({
                "key": key, "title": title,
                "options": options.iter().map(|(value, label)| json!({"value": value, "label": label})).collect::<Vec<_>>(),
                "selected": self.selected.iter().find(|(filter, _)| filter == key).map(|(_, value)| value),
            })).collect::<Vec<_>>(),
            "rows": self.rows,
            "next_page_token": self.next_page_token,
        })
    }
}

fn region_name(code: &str) -> String {
    RegionCode::parse(code).map(|region| region.full_name()).unwrap_or_else(|_| code.to_owned())
}

fn china_time(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0))
        .map(|time| (time + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn row(cells: &[(&str, Value)]) -> Map<String, Value> {
    cells.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect()
}

fn channel(channel: &Option<Channel>) -> Result<Channel, WebError> {
    channel.clone().ok_or_else(|| WebError::new(StatusCode::SERVICE_UNAVAILABLE, "该清单所需的服务未配置"))
}

fn overdue_kind(kind: OverdueKind) -> (&'static str, &'static str) {
    match kind {
        OverdueKind::FirstContact => ("first_contact", "确认后首次联系"),
        OverdueKind::NextAttempt => ("next_attempt", "下一次劝返"),
        OverdueKind::FollowUp => ("follow_up", "缓学休学跟踪回访"),
        OverdueKind::SemesterCheck => ("semester_check", "开学核查到校确认"),
        OverdueKind::HandoffDecision => ("handoff_decision", "移交接收决定"),
        OverdueKind::Report => ("report", "报告逾期未报"),
        OverdueKind::Assistance => ("assistance", "协查请求办理"),
        OverdueKind::Unspecified => ("", "全部"),
    }
}

/// A semester as the bureaus write it: `2027-spring` → `2027年春季学期`.
fn semester_zh(semester: &str) -> String {
    match semester.split_once('-') {
        Some((year, "spring")) => format!("{year}年春季学期"),
        Some((year, "autumn")) => format!("{year}年秋季学期"),
        _ => semester.to_owned(),
    }
}

fn handoff_state(state: HandoffState) -> (&'static str, &'static str) {
    match state {
        HandoffState::Requested => ("requested", "已申请"),
        HandoffState::Delivered => ("delivered", "已送达待接收"),
        HandoffState::Accepted => ("accepted", "已接收"),
        HandoffState::Rejected => ("rejected", "已拒收"),
        HandoffState::Cancelled => ("cancelled", "已撤回"),
        HandoffState::Completed => ("completed", "已完成"),
        HandoffState::Unspecified => ("", "全部"),
    }
}

fn assistance_state(state: AssistanceState) -> (&'static str, &'static str) {
    match state {
        AssistanceState::Requested => ("requested", "已发出"),
        AssistanceState::Delivered => ("delivered", "已送达待答复"),
        AssistanceState::Accepted => ("accepted", "协办中"),
        AssistanceState::Declined => ("declined", "已婉拒"),
        AssistanceState::Closed => ("closed", "已办结"),
        AssistanceState::Unspecified => ("", "全部"),
    }
}

fn assistance_reason(reason: AssistanceReason) -> &'static str {
    match reason {
        AssistanceReason::WorkPlace => "务工地协助劝返",
        AssistanceReason::InflowRegion => "新流入地协同",
        AssistanceReason::Sighting => "发现线索",
        AssistanceReason::HukouRegion => "户籍地主动协助",
        AssistanceReason::Other => "其他",
        AssistanceReason::Unspecified => "",
    }
}

fn assistance_need(need: AssistanceNeed) -> &'static str {
    match need {
        AssistanceNeed::FindChild => "查找学生",
        AssistanceNeed::VisitFamily => "入户走访",
        AssistanceNeed::PersuadeEmployer => "约谈用工单位",
        AssistanceNeed::CheckSchoolRoll => "核查学籍",
        AssistanceNeed::Unspecified => "",
    }
}

fn notice_state(state: HukouNoticeState) -> &'static str {
    match state {
        HukouNoticeState::Sent => "已发送",
        HukouNoticeState::Delivered => "已送达待回执",
        HukouNoticeState::Acknowledged => "已回执",
        HukouNoticeState::Undeliverable => "无法送达（未联通）",
        HukouNoticeState::Unspecified => "",
    }
}

fn supervision_state(state: SupervisionState) -> (&'static str, &'static str) {
    match state {
        SupervisionState::Open => ("open", "待答复"),
        SupervisionState::Answered => ("answered", "已答复"),
        SupervisionState::Closed => ("closed", "已办结"),
        SupervisionState::Unspecified => ("", "全部"),
    }
}

fn suspect_state(state: SuspectState) -> (&'static str, &'static str) {
    match state {
        SuspectState::Pending => ("pending", "待核实"),
        SuspectState::Confirmed => ("confirmed", "已确认辍学"),
        SuspectState::Closed => ("closed", "已销号"),
        SuspectState::Unspecified => ("", "全部"),
    }
}

fn suspect_origin(origin: SuspectOrigin) -> &'static str {
    match origin {
        SuspectOrigin::CrossCheck => "数据比对",
        SuspectOrigin::SchoolReport => "学校报告",
        SuspectOrigin::Caseworker => "经办人员登记",
        SuspectOrigin::Unspecified => "",
    }
}

/// The value of filter `key` whose name matches: its enum value (unspecified when absent).
fn pick<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str, wanted: Option<&String>) -> Result<Option<T>, WebError> {
    match wanted.map(String::as_str).unwrap_or_default() {
        "" => Ok(None),
        text => all
            .iter()
            .copied()
            .find(|value| name(*value) == text)
            .map(Some)
            .ok_or_else(|| WebError::bad("filter", "筛选条件无效")),
    }
}

async fn fetch(
    state: &WebState,
    session: &Session,
    name: &str,
    params: &HashMap<String, String>,
    page_token: String,
    page_size: i32,
) -> Result<Table, WebError> {
    let region = super::api::in_scope(session, params.get("region").map(String::as_str).unwrap_or_default())?;
    let region_code = region.to_string();
    match name {
        "overdue" => {
            let kinds = [
                OverdueKind::FirstContact,
                OverdueKind::NextAttempt,
                OverdueKind::FollowUp,
                OverdueKind::SemesterCheck,
                OverdueKind::HandoffDecision,
                OverdueKind::Assistance,
            ];
            let kind = pick(&kinds, |kind| overdue_kind(kind).0, params.get("kind"))?;
            let request = ListOverdueWorkRequest {
                region_code,
                kind: kind.unwrap_or(OverdueKind::Unspecified) as i32,
                page_size,
                page_token,
            };
            let page = SupervisionServiceClient::new(channel(&state.upstream.cases)?)
                .list_overdue_work(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .work
                .iter()
                .map(|work| {
                    let child = work.child.clone().unwrap_or_default();
                    row(&[
                        ("child", json!(child.full_name)),
                        ("region", json!(region_name(&work.region_code))),
                        ("kind", json!(overdue_kind(OverdueKind::try_from(work.kind).unwrap_or_default()).1)),
                        ("due_date", json!(work.due_date)),
                        ("days_overdue", json!(work.days_overdue)),
                        ("supervised", json!(if work.supervision_item_id.is_empty() { "否" } else { "是" })),
                    ])
                })
                .collect();
            Ok(Table {
                title: "逾期工作",
                columns: vec![
                    ("child", "学生"),
                    ("region", "地区"),
                    ("kind", "逾期事项"),
                    ("due_date", "应完成日期"),
                    ("days_overdue", "逾期天数"),
                    ("supervised", "已督办"),
                ],
                filters: vec![(
                    "kind",
                    "逾期事项",
                    options(("", "全部"), kinds.iter().map(|kind| overdue_kind(*kind))),
                )],
                rows,
                next_page_token: page.next_page_token,
                selected: Vec::new(),
            })
        }
        "supervision" => {
            let states = [SupervisionState::Open, SupervisionState::Answered, SupervisionState::Closed];
            let wanted = pick(&states, |state| supervision_state(state).0, params.get("state"))?;
            let request = ListSupervisionItemsRequest {
                region_code,
                state: wanted.unwrap_or(SupervisionState::Unspecified) as i32,
                page_size,
                page_token,
            };
            let page = SupervisionServiceClient::new(channel(&state.upstream.cases)?)
                .list_supervision_items(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .items
                .iter()
                .map(|item| {
                    row(&[
                        ("region", json!(region_name(&item.region_code))),
                        ("supervising", json!(region_name(&item.supervising_region_code))),
                        ("kind", json!(overdue_kind(OverdueKind::try_from(item.kind).unwrap_or_default()).1)),
                        ("reason", json!(item.reason)),
                        ("due_date", json!(item.due_date)),
                        (
                            "state",
                            json!(supervision_state(SupervisionState::try_from(item.state).unwrap_or_default()).1),
                        ),
                        ("answer", json!(item.answer)),
                    ])
                })
                .collect();
            Ok(Table {
                title: "督办事项",
                columns: vec![
                    ("region", "被督办地区"),
                    ("supervising", "督办单位"),
                    ("kind", "事项"),
                    ("reason", "督办事由"),
                    ("due_date", "原定完成日期"),
                    ("state", "状态"),
                    ("answer", "答复"),
                ],
                filters: vec![(
                    "state",
                    "状态",
                    options(("", "全部"), states.iter().map(|state| supervision_state(*state))),
                )],
                rows,
                next_page_token: page.next_page_token,
                selected: Vec::new(),
            })
        }
        "handoffs_out" | "handoffs_in" => {
            let direction =
                if name == "handoffs_out" { HandoffDirection::Outgoing } else { HandoffDirection::Incoming };
            let states = [
                HandoffState::Requested,
                HandoffState::Delivered,
                HandoffState::Accepted,
                HandoffState::Rejected,
                HandoffState::Cancelled,
                HandoffState::Completed,
            ];
            let wanted = pick(&states, |state| handoff_state(state).0, params.get("state"))?;
            let request = ListHandoffsRequest {
                region_code,
                direction: direction as i32,
                state: wanted.unwrap_or(HandoffState::Unspecified) as i32,
                page_size,
                page_token,
                escalated_only: false,
            };
            let page = TransferServiceClient::new(channel(&state.upstream.transfer)?)
                .list_handoffs(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .handoffs
                .iter()
                .map(|handoff| {
                    let child = handoff.child.clone().unwrap_or_default();
                    row(&[
                        ("child", json!(child.full_name)),
                        ("origin", json!(region_name(&handoff.origin_region_code))),
                        ("destination", json!(region_name(&handoff.destination_region_code))),
                        ("state", json!(handoff_state(HandoffState::try_from(handoff.state).unwrap_or_default()).1)),
                        ("requested", json!(china_time(handoff.request_time.as_ref()))),
                        ("reason", json!(handoff.reason)),
                    ])
                })
                .collect();
            Ok(Table {
                title: if name == "handoffs_out" { "移出案件" } else { "移入案件" },
                columns: vec![
                    ("child", "学生"),
                    ("origin", "移出地"),
                    ("destination", "接收地"),
                    ("state", "状态"),
                    ("requested", "申请时间"),
                    ("reason", "移交原因"),
                ],
                filters: vec![(
                    "state",
                    "状态",
                    options(("", "全部"), states.iter().map(|state| handoff_state(*state))),
                )],
                rows,
                next_page_token: page.next_page_token,
                selected: Vec::new(),
            })
        }
        "assistance_out" | "assistance_in" => {
            let direction =
                if name == "assistance_out" { HandoffDirection::Outgoing } else { HandoffDirection::Incoming };
            let states = [
                AssistanceState::Requested,
                AssistanceState::Delivered,
                AssistanceState::Accepted,
                AssistanceState::Declined,
                AssistanceState::Closed,
            ];
            let wanted = pick(&states, |state| assistance_state(state).0, params.get("state"))?;
            let overdue_only = params.get("overdue").is_some_and(|value| value == "yes");
            let request = ListAssistanceRequest {
                region_code,
                direction: direction as i32,
                state: wanted.unwrap_or(AssistanceState::Unspecified) as i32,
                overdue_only,
                page_size,
                page_token,
            };
            let page = AssistanceServiceClient::new(channel(&state.upstream.transfer)?)
                .list_assistance(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .assistance
                .iter()
                .map(|asked| {
                    let child = asked.child.clone().unwrap_or_default();
                    let needs: Vec<&str> = asked
                        .needs
                        .iter()
                        .map(|need| assistance_need(AssistanceNeed::try_from(*need).unwrap_or_default()))
                        .collect();
                    row(&[
                        ("child", json!(child.full_name)),
                        ("owner", json!(region_name(&asked.owner_region_code))),
                        ("helper", json!(region_name(&asked.assisting_region_code))),
                        (
                            "reason",
                            json!(assistance_reason(AssistanceReason::try_from(asked.reason).unwrap_or_default())),
                        ),
                        ("needs", json!(needs.join("、"))),
                        ("due_date", json!(asked.due_date)),
                        (
                            "state",
                            json!(assistance_state(AssistanceState::try_from(asked.state).unwrap_or_default()).1),
                        ),
                        ("overdue", json!(if asked.overdue { "是" } else { "否" })),
                        ("reports", json!(asked.reports.len())),
                    ])
                })
                .collect();
            Ok(Table {
                title: if name == "assistance_out" { "发出的协查请求" } else { "收到的协查请求" },
                columns: vec![
                    ("child", "学生"),
                    ("owner", "请求方（案件所在地）"),
                    ("helper", "协办方"),
                    ("reason", "协查事由"),
                    ("needs", "协查事项"),
                    ("due_date", "办理期限"),
                    ("state", "状态"),
                    ("overdue", "已逾期"),
                    ("reports", "反馈次数"),
                ],
                filters: vec![
                    ("state", "状态", options(("", "全部"), states.iter().map(|state| assistance_state(*state)))),
                    ("overdue", "逾期", options(("", "全部"), [("yes", "仅逾期")])),
                ],
                rows,
                next_page_token: page.next_page_token,
                selected: Vec::new(),
            })
        }
        "hukou_notices_out" | "hukou_notices_in" => {
            let direction =
                if name == "hukou_notices_out" { HandoffDirection::Outgoing } else { HandoffDirection::Incoming };
            let request = ListHukouNoticesRequest { region_code, direction: direction as i32, page_size, page_token };
            let page = AssistanceServiceClient::new(channel(&state.upstream.transfer)?)
                .list_hukou_notices(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .notices
                .iter()
                .map(|notice| {
                    let child = notice.child.clone().unwrap_or_default();
                    row(&[
                        ("child", json!(child.full_name)),
                        ("owner", json!(region_name(&notice.owner_region_code))),
                        ("hukou", json!(region_name(&notice.hukou_region_code))),
                        ("state", json!(notice_state(HukouNoticeState::try_from(notice.state).unwrap_or_default()))),
                        ("sent", json!(china_time(notice.send_time.as_ref()))),
                        ("acknowledged", json!(china_time(notice.acknowledge_time.as_ref()))),
                        ("contact", json!(notice.contact)),
                    ])
                })
                .collect();
            Ok(Table {
                title: if name == "hukou_notices_out" {
                    "发往户籍地的通知"
                } else {
                    "收到的户籍地通知"
                },
                columns: vec![
                    ("child", "学生"),
                    ("owner", "案件所在地"),
                    ("hukou", "户籍地"),
                    ("state", "状态"),
                    ("sent", "发送时间"),
                    ("acknowledged", "回执时间"),
                    ("contact", "联系人"),
                ],
                filters: Vec::new(),
                rows,
                next_page_token: page.next_page_token,
                selected: Vec::new(),
            })
        }
        "suspects" => {
            let states = [SuspectState::Pending, SuspectState::Confirmed, SuspectState::Closed];
            let wanted =
                pick(&states, |state| suspect_state(state).0, params.get("state").or(Some(&"pending".to_owned())))?;
            let request = ListSuspectsRequest {
                region_code,
                state: wanted.unwrap_or(SuspectState::Unspecified) as i32,
                origin: SuspectOrigin::Unspecified as i32,
                page_size,
                page_token,
            };
            let page = SuspectServiceClient::new(channel(&state.upstream.cases)?)
                .list_suspects(authed(session, request))
                .await?
                .into_inner();
            let rows = page
                .suspects
                .iter()
                .map(|suspect| {
                    let child = suspect.child.clone().unwrap_or_default();
                    row(&[
                        ("child", json!(child.full_name)),
                        ("region", json!(region_name(&suspect.region_code))),
                        ("origin", json!(suspect_origin(SuspectOrigin::try_from(suspect.origin).unwrap_or_default()))),
                        ("state", json!(suspect_state(SuspectState::try_from(suspect.state).unwrap_or_default()).1)),
                        ("reason", json!(suspect.reason)),
                        ("days_missed", json!(suspect.days_missed)),
                        ("recorded", json!(china_time(suspect.record_time.as_ref()))),
                    ])
                })
                .collect();
            Ok(Table {
                title: "疑似辍学",
                columns: vec![
                    ("child", "学生"),
                    ("region", "地区"),
                    ("origin", "来源"),
                    ("state", "状态"),
                    ("reason", "原因"),
                    ("days_missed", "缺课天数"),
                    ("recorded", "登记时间"),
                ],
                filters: vec![(
                    "state",
                    "状态",
                    options(("all", "全部"), states.iter().map(|state| suspect_state(*state))),
                )],
                rows,
                next_page_token: page.next_page_token,
                selected: vec![("state", wanted.map(|state| suspect_state(state).0).unwrap_or("all").to_owned())],
            })
        }
        "semester_check" => {
            let mut supervision = SupervisionServiceClient::new(channel(&state.upstream.cases)?);
            let request = ListSemesterChecksRequest { region_code, semester: String::new(), page_size: 20 };
            let checks = supervision.list_semester_checks(authed(session, request)).await?.into_inner().checks;
            let label = |check: &SemesterCheck| {
                format!(
                    "{} {}（截止 {}）",
                    region_name(&check.region_code),
                    semester_zh(&check.semester),
                    check.deadline
                )
            };
            let filters = vec![(
                "check",
                "核查批次",
                checks.iter().map(|check| (check.check_id.clone(), label(check))).collect::<Vec<_>>(),
            )];
            let columns = vec![
                ("school", "学校"),
                ("school_code", "学校代码"),
                ("total", "核查人数"),
                ("present", "已到校"),
                ("absent", "缺勤待跟进"),
                ("relapsed", "确认反弹"),
                ("pending", "未标记"),
                ("overdue", "逾期未确认"),
            ];
            let wanted = params.get("check").filter(|id| !id.is_empty());
            let check = match wanted {
                Some(id) => checks
                    .iter()
                    .find(|check| check.check_id == *id)
                    .ok_or_else(|| WebError::bad("check", "没有这个核查批次"))?,
                None => match checks.first() {
                    Some(check) => check,
                    None => {
                        let next_page_token = String::new();
                        let (rows, selected) = (Vec::new(), Vec::new());
                        return Ok(Table {
                            title: "开学核查进度", columns, filters, rows, next_page_token, selected
                        });
                    }
                },
            };
            let request = GetSemesterCheckProgressRequest {
                check_id: check.check_id.clone(),
                grouping: ProgressGrouping::School as i32,
            };
            let progress = supervision.get_semester_check_progress(authed(session, request)).await?.into_inner();
            let cells = |name: &str, code: &str, counts: &CheckProgress| {
                row(&[
                    ("school", json!(name)),
                    ("school_code", json!(code)),
                    ("total", json!(counts.total)),
                    ("present", json!(counts.present)),
                    ("absent", json!(counts.absent)),
                    ("relapsed", json!(counts.relapsed)),
                    ("pending", json!(counts.pending)),
                    ("overdue", json!(counts.overdue)),
                ])
            };
            let mut rows: Vec<_> = progress
                .rows
                .iter()
                .map(|school| {
                    let name = if school.name.is_empty() { "（未登记学校）" } else { school.name.as_str() };
                    cells(name, &school.key, school)
                })
                .collect();
            if let Some(total) = &progress.total {
                rows.push(cells("合计", "", total));
            }
            let selected = vec![("check", check.check_id.clone())];
            Ok(Table { title: "开学核查进度", columns, filters, rows, next_page_token: String::new(), selected })
        }
        _ => Err(WebError::new(StatusCode::NOT_FOUND, "没有这个工作清单")),
    }
}

/// The most rows an XLSX export of a list holds.
const EXPORT_ROWS: usize = 10_000;

/// GET /api/lists/{name}[.xlsx]?region=&<filter>=&page_token=
pub async fn list(
    State(state): State<WebState>,
    session: Session,
    Path(name): Path<String>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    if params.get("state").map(String::as_str) == Some("all") {
        params.insert("state".into(), String::new());
    }
    let Some(name) = name.strip_suffix(".xlsx") else {
        let page_token = params.get("page_token").cloned().unwrap_or_default();
        let table = fetch(&state, &session, &name, &params, page_token, 50).await?;
        return Ok(Json(table.json()).into_response());
    };
    let mut table = fetch(&state, &session, name, &params, String::new(), 500).await?;
    let mut rows = std::mem::take(&mut table.rows);
    while !table.next_page_token.is_empty() && rows.len() < EXPORT_ROWS {
        let token = std::mem::take(&mut table.next_page_token);
        table = fetch(&state, &session, name, &params, token, 500).await?;
        rows.append(&mut table.rows);
    }
    rows.truncate(EXPORT_ROWS);
    let header: Vec<String> = table.columns.iter().map(|(_, title)| (*title).to_owned()).collect();
    let failed = |error: nol_tabular::TableError| {
        WebError::from(nol_runtime::ServiceError::Internal(anyhow::anyhow!("{error}")))
    };
    let mut writer = nol_tabular::TableWriter::new(nol_tabular::Format::Xlsx, nol_tabular::Encoding::Utf8, &header)
        .map_err(failed)?;
    for row in &rows {
        let cells: Vec<String> = table
            .columns
            .iter()
            .map(|(key, _)| match row.get(*key) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            })
            .collect();
        writer.write_row(&cells).map_err(failed)?;
    }
    let bytes = writer.finish().map_err(failed)?;
    let file = format!("{}-{}.xlsx", table.title, state.clock.today().format("%Y%m%d"));
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::api::XLSX));
    response.headers_mut().insert(header::CONTENT_DISPOSITION, super::api::attachment(&file));
    Ok(response)
}
