//! The demo's slice of a city worth opening on the dashboard: six districts of 南京市 with a school
//! each and their pupils, suspected dropouts, cases across the statuses (returned, monitored, a
//! relapse, home teaching, completed), persuasion attempts (some joint), a hand-off from 安徽 to
//! 江苏, and the last bi-monthly period's reports at different steps of the workflow — all through
//! the API, so every event flows to the reporting service as in production. A step a rule
//! refuses is reported and skipped: the demo never stops the stack from coming up.

use std::time::Duration;

use chrono::NaiveDate;
use nol_auth::Role;
use nol_pii::ResidentId;
use nol_proto::v1::*;
use nol_region::RegionCode;
use nol_stack::{Clients, Stack};

/// The districts the demo fills, with the school it registers in each.
const DISTRICTS: [(&str, &str); 6] = [
    ("320102", "玄武区"),
    ("320104", "秦淮区"),
    ("320105", "建邺区"),
    ("320106", "鼓楼区"),
    ("320111", "浦口区"),
    ("320115", "江宁区"),
];

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];
const GIVEN: [&str; 12] =
    ["小明", "欣怡", "子涵", "浩然", "雨桐", "宇轩", "梓萱", "俊杰", "诗琪", "博文", "佳怡", "天宇"];

fn warn<T>(what: &str, result: Result<T, tonic::Status>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(status) => {
            eprintln!("demo: {what} skipped: {}", status.message());
            None
        }
    }
}

fn attempt(day: &str, joint: bool, outcome: PersuasionOutcome) -> PersuasionAttempt {
    let mut departments = vec![PersuasionDepartment::Education as i32];
    if joint {
        departments.push(PersuasionDepartment::CivilAffairs as i32);
    }
    PersuasionAttempt {
        attempt_date: day.into(),
        departments,
        means: vec![PersuasionMeans::Emotional as i32, PersuasionMeans::Legal as i32],
        place: PersuasionPlace::Home as i32,
        outcome: outcome as i32,
        notes: "入户宣传义务教育法，了解家庭困难".into(),
        ..Default::default()
    }
}

/// One district's pupils and cases; returns how many cases it opened.
async fn district(clients: &Clients, index: usize, code: &str, name: &str, today: &str) -> usize {
    let school = format!("{code}0001");
    let pupils = 36 + index * 6;
    let mut opened = 0;
    for number in 0..pupils {
        let full_name =
            format!("{}{}", SURNAMES[(number + index) % SURNAMES.len()], GIVEN[(number * 7 + index) % GIVEN.len()]);
        let born =
            NaiveDate::from_ymd_opt(2011 + (number % 4) as i32, 1 + (number % 12) as u32, 1 + (number % 27) as u32)
                .unwrap_or_default();
        let Ok(resident_id) = ResidentId::from_parts(code, born, 100 + number as u16) else { continue };
        let disability = if number % 17 == 4 { DisabilityGrade::One } else { DisabilityGrade::None };
        let pupil = clients
            .registry
            .clone()
            .create_pupil(CreatePupilRequest {
                pupil: Some(Pupil {
                    full_name,
                    resident_id: resident_id.expose().to_owned(),
                    hukou_region_code: code.into(),
                    school_code: school.clone(),
                    grade: 1 + (number % 9) as i32,
                    disability_grade: disability as i32,
                    ..Default::default()
                }),
            })
            .await;
        let Some(pupil) = warn("registering a pupil", pupil).and_then(|response| response.into_inner().pupil) else {
            continue;
        };
        // About two pupils in five drop out; a few more are suspects still being verified.
        if number % 5 >= 2 {
            if number % 11 == 3 {
                let suspect = RecordSuspectRequest {
                    child: Some(record_suspect_request::Child::PupilId(pupil.pupil_id.clone())),
                    region_code: code.into(),
                    reason: "连续缺课超过10天，班主任多次联系未果".into(),
                };
                warn("recording a suspect", clients.suspects.clone().record_suspect(suspect).await);
            }
            continue;
        }
        let cause = match number % 6 {
            0 => DropoutCause::LearningDifficulty,
            1 => DropoutCause::GoneToWork,
            2 => DropoutCause::FamilyPoverty,
            3 => DropoutCause::Other,
            4 => DropoutCause::Disability,
            _ => DropoutCause::Religion,
        };
        let case = clients
            .cases
            .clone()
            .open_case(OpenCaseRequest {
                pupil_id: pupil.pupil_id,
                causes: vec![cause as i32],
                notes: format!("{name}：学生连续缺课，经核实已辍学"),
            })
            .await;
        let Some(case) = warn("opening a case", case).and_then(|response| response.into_inner().dropout_case) else {
            continue;
        };
        opened += 1;
        let case_id = case.case_id;
        let mut cases = clients.cases.clone();
        let outcome = if number % 3 == 0 { PersuasionOutcome::AgreedToReturn } else { PersuasionOutcome::Refused };
        let record = RecordPersuasionAttemptRequest {
            case_id: case_id.clone(),
            attempt: Some(attempt(today, number % 4 == 0, outcome)),
        };
        warn("recording a persuasion attempt", cases.record_persuasion_attempt(record).await);
        if disability == DisabilityGrade::One {
            let home =
                StartHomeTeachingRequest { case_id: case_id.clone(), note: "重度残疾，安排送教上门".into() };
            warn("starting home teaching", cases.start_home_teaching(home).await);
            continue;
        }
        if outcome != PersuasionOutcome::AgreedToReturn {
            continue;
        }
        let back = ReturnToSchoolRequest {
            case_id: case_id.clone(),
            returned: Some(ReturnDetails {
                school_name: format!("南京市{name}中心小学"),
                school_code: school.clone(),
                class_name: "五年级一班".into(),
                returned_on: today.into(),
            }),
        };
        if warn("recording a return to school", cases.return_to_school(back).await).is_none() || number % 2 == 0 {
            continue;
        }
        if warn(
            "starting monitoring",
            cases.start_monitoring(StartMonitoringRequest { case_id: case_id.clone() }).await,
        )
        .is_none()
        {
            continue;
        }
        match number % 4 {
            1 => {
                let relapse = RecordRelapseRequest { case_id, note: "复学后再次连续缺课".into() };
                warn("recording a relapse", cases.record_relapse(relapse).await);
            }
            3 => {
                let close =
                    CloseCaseRequest {
                        case_id, reason: CloseReason::Completed as i32, note: "已完成义务教育".into()
                    };
                warn("closing a case", cases.close_case(close).await);
            }
            _ => {}
        }
    }
    opened
}

/// The reports of the period before `today`'s, at different steps of the workflow.
async fn reports(stack: &Stack, period: &str) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let client = |region: &str, role: Role| -> anyhow::Result<Clients> {
        let token = stack.keys.token(&format!("demo.{region}"), RegionCode::parse(region)?, role, hour)?;
        Clients::for_province(stack.province("320000"), &token)
    };
    let city = client("320100", Role::Supervisor)?;
    let province = client("320000", Role::Supervisor)?;
    for (index, (code, name)) in DISTRICTS.iter().enumerate().take(5) {
        let county = client(code, Role::Caseworker)?;
        let mut reporting = county.reporting.clone();
        let notes = ReportNotes {
            work_done: format!("{name}开展控辍保学专项行动，逐人建档，入户劝返。"),
            problems: "部分外出务工家庭联系困难。".into(),
            next_steps: "联合公安、民政部门继续劝返，落实复学后跟踪。".into(),
        };
        let draft = DraftReportRequest { region_code: (*code).into(), period: period.into(), notes: Some(notes) };
        if warn("drafting a report", reporting.draft_report(draft).await).is_none() || index == 4 {
            continue;
        }
        let submit = SubmitReportRequest { region_code: (*code).into(), period: period.into() };
        warn("submitting a report", reporting.submit_report(submit).await);
        match index {
            0 | 1 => {
                let approve =
                    ApproveReportRequest {
                        region_code: (*code).into(), period: period.into(), comment: "同意".into()
                    };
                warn("approving a report", city.reporting.clone().approve_report(approve).await);
                if index == 0 {
                    let accept = AcceptReportRequest {
                        region_code: (*code).into(),
                        period: period.into(),
                        comment: String::new(),
                    };
                    warn("accepting a report", province.reporting.clone().accept_report(accept).await);
                }
            }
            3 => {
                let give_back = ReturnReportRequest {
                    region_code: (*code).into(),
                    period: period.into(),
                    comment: "请补充劝返措施和复学跟踪情况".into(),
                };
                warn("returning a report", city.reporting.clone().return_report(give_back).await);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A hand-off the other way: a child of 临泉县 whose family moved to 南京市玄武区, handed from 安徽
/// to 江苏 and accepted there; and the semester-start check of 南京市's monitored children.
async fn anhui_and_the_check(stack: &Stack, today: chrono::NaiveDate) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let token = |subject: &str, region: &str, role: Role| -> anyhow::Result<String> {
        stack.keys.token(subject, RegionCode::parse(region)?, role, hour)
    };
    let anhui_system =
        Clients::for_province(stack.province("340000"), &token("demo.anhui-seed", "340000", Role::System)?)?;
    anhui_system.ensure_school("3412210001", "临泉县城关小学", "341221").await?;
    let linquan = Clients::for_province(stack.province("340000"), &token("demo.linquan", "341221", Role::Caseworker)?)?;
    let xuanwu = Clients::for_province(stack.province("320000"), &token("demo.xuanwu", "320102", Role::Caseworker)?)?;
    let born = NaiveDate::from_ymd_opt(2012, 9, 14).unwrap_or_default();
    let resident_id = ResidentId::from_parts("341221", born, 58)?;
    let pupil = linquan
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "周小雨".into(),
                resident_id: resident_id.expose().to_owned(),
                hukou_region_code: "341221".into(),
                school_code: "3412210001".into(),
                grade: 7,
                ..Default::default()
            }),
        })
        .await;
    if let Some(pupil) = warn("registering 临泉县's pupil", pupil).and_then(|response| response.into_inner().pupil) {
        let opened = linquan
            .cases
            .clone()
            .open_case(OpenCaseRequest {
                pupil_id: pupil.pupil_id,
                causes: vec![DropoutCause::GoneToWork as i32],
                notes: "随父母到南京市玄武区务工，已不在本地就读".into(),
            })
            .await;
        if let Some(case) =
            warn("opening 临泉县's case", opened).and_then(|response| response.into_inner().dropout_case)
        {
            let request = RequestHandoffRequest {
                case_id: case.case_id,
                destination_region_code: "320102".into(),
                reason: "家庭已在南京市玄武区居住务工，请流入地依R11接续劝返".into(),
                ..Default::default()
            };
            if let Some(handoff) =
                warn("requesting the hand-off to 江苏", linquan.transfer.clone().request_handoff(request).await)
                    .and_then(|response| response.into_inner().handoff)
            {
                let handoff_id = handoff.handoff_id.clone();
                let arrived = crate::demo::arrived(&xuanwu, &handoff_id, "江苏 to receive 安徽's hand-off").await;
                if arrived.is_ok() {
                    let accept = AcceptHandoffRequest { handoff_id: handoff.handoff_id };
                    warn("accepting 安徽's hand-off", xuanwu.transfer.clone().accept_handoff(accept).await);
                    eprintln!("demo: 320102 accepted a hand-off from 341221");
                }
            }
        }
    }
    let nanjing = Clients::for_province(stack.province("320000"), &token("demo.nanjing", "320100", Role::Supervisor)?)?;
    let year = today.format("%Y").to_string().parse::<i32>().unwrap_or(2026);
    let month = today.format("%m").to_string().parse::<u32>().unwrap_or(1);
    let semester = match month {
        1 => format!("{}-autumn", year - 1),
        2..=8 => format!("{year}-spring"),
        _ => format!("{year}-autumn"),
    };
    let check = StartSemesterCheckRequest {
        region_code: "320100".into(),
        semester,
        deadline: (today + chrono::Duration::days(14)).format("%Y-%m-%d").to_string(),
    };
    if warn("starting the semester check", nanjing.supervision.clone().start_semester_check(check).await).is_some() {
        eprintln!("demo: 南京市's semester-start check is under way");
    }
    Ok(())
}

/// Seeds the slice (after the skeleton's scenario, on a fresh stack only).
pub async fn seed(stack: &Stack) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let system = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("demo.seed", RegionCode::parse("320000")?, Role::System, hour)?,
    )?;
    let today = nol_runtime::clock::china_date(chrono::Utc::now());
    let day = today.format("%Y-%m-%d").to_string();
    let mut opened = 0;
    for (index, (code, name)) in DISTRICTS.iter().enumerate() {
        system.ensure_school(&format!("{code}0001"), &format!("南京市{name}中心小学"), code).await?;
        let token = stack.keys.token(&format!("demo.{code}"), RegionCode::parse(code)?, Role::Caseworker, hour)?;
        let clients = Clients::for_province(stack.province("320000"), &token)?;
        opened += district(&clients, index, code, name, &day).await;
    }
    eprintln!("demo: {opened} cases across {} districts of 南京市", DISTRICTS.len());
    anhui_and_the_check(stack, today).await?;
    let previous = nol_reporting::periods::Period::containing(today).previous();
    reports(stack, &previous.code()).await?;
    eprintln!("demo: {} reports of 南京市's districts at different steps", previous.name_zh());
    Ok(())
}
