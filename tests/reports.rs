//! Reports (R16) on the real stack: a period's figures cut from the daily counts by county, the
//! dropout balance reconciled with the ledger the case service shows, and the bi-monthly report's
//! workflow up the tree — each step, and each refusal (a county approving, a city approving
//! another city's county, submitting twice, editing an approved report, steps out of order) —
//! with its history, its events and its audit entries.

mod common;

use chrono::Duration;
use chrono::Utc;
use common::cases::{Child, refused, reported, return_to};
use common::handoffs::{all_cases, delivered, request, until_case};
use common::{RuleClock, TestStack, eventually};
use nol_auth::Role;
use nol_proto::v1::*;
use nol_reporting::periods::Period;
use nol_runtime::clock::china_date;
use nol_stack::Clients;
use tonic::Code;

fn notes(work_done: &str) -> ReportNotes {
    ReportNotes {
        work_done: work_done.into(), problems: "部分家长配合度低".into(), next_steps: "继续联合劝返".into()
    }
}

async fn figures(clients: &Clients, region: &str, period: &str) -> GetPeriodFiguresResponse {
    clients
        .reporting
        .clone()
        .get_period_figures(GetPeriodFiguresRequest { region_code: region.into(), period: period.into() })
        .await
        .expect("period figures")
        .into_inner()
}

async fn report(clients: &Clients, region: &str, period: &str) -> Report {
    clients
        .reporting
        .clone()
        .get_report(GetReportRequest { region_code: region.into(), period: period.into() })
        .await
        .expect("report")
        .into_inner()
        .report
        .unwrap()
}

/// The cells of the first sheet, as text (numbers without decimals).
fn sheet_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes)).expect("an XLSX file");
    let range = workbook.worksheet_range_at(0).expect("a sheet").expect("readable");
    range.rows().map(|row| row.iter().map(|cell| cell.to_string()).collect()).collect()
}

fn state(report: &Report) -> ReportState {
    ReportState::try_from(report.state).unwrap()
}

fn status_count(figures: &PeriodFigures, status: CaseStatus) -> i64 {
    figures.balance_by_status.iter().find(|count| count.status == status as i32).map_or(0, |count| count.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_county_reports_its_period_and_the_city_and_province_approve_it() {
    let now = Utc::now();
    let clock = RuleClock::at(&now.to_rfc3339());
    let test = TestStack::start_with(clock.options()).await;
    let period = Period::containing(china_date(now));
    let code = period.code();
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let suzhou = test.clients("320000", "320500", Role::Supervisor);
    let jiangsu = test.clients("320000", "320000", Role::Supervisor);

    // Five children of 玄武区 leave school; one returns, one's case is handed over to 秦淮区.
    let mut cases = Vec::new();
    for child in [Child::Xiaoyi, Child::Xiaoer, Child::Xiaosan, Child::Xiaosi, Child::Xiaowu] {
        cases.push(child.open_case(&xuanwu).await);
    }
    xuanwu.cases.clone().return_to_school(return_to(&cases[0].case_id, "")).await.expect("returned");
    let handoff = request(&xuanwu, &cases[2].case_id, "320104").await.expect("hand-off requested");
    delivered(&xuanwu, &qinhuai, &handoff.handoff_id).await;
    qinhuai
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: handoff.handoff_id.clone() })
        .await
        .expect("accepted");
    until_case(&xuanwu, &cases[2].case_id, CaseStatus::HandedOver).await;
    reported(&nanjing, "320100", |summary| {
        summary.cases_opened == 5
            && summary.cases_returned == 1
            && summary.cases_taken_in == 1
            && summary.cases_handed_out == 1
    })
    .await;

    // The period's figures, by county, as the events tell them.
    let cut = eventually("the daily counts to hold the hand-off", || {
        let nanjing = nanjing.clone();
        let code = code.clone();
        async move {
            let cut = figures(&nanjing, "320100", &code).await;
            let total = cut.total.as_ref().unwrap().figures.clone().unwrap();
            Ok((total.handoffs_out == 1 && total.handoffs_in == 1).then_some(cut))
        }
    })
    .await;
    assert!(cut.warnings.is_empty(), "{:?}", cut.warnings);
    let county = |code: &str| {
        cut.counties.iter().find(|row| row.region_code == code).and_then(|row| row.figures.clone()).unwrap()
    };
    let (xw, qh) = (county("320102"), county("320104"));
    assert_eq!((xw.dropouts_new, xw.returned, xw.cases_handed_out, xw.handoffs_out), (5, 1, 1, 1));
    assert_eq!((xw.pupils_registered, xw.pupils_enrolled), (5, 5));
    assert_eq!(xw.dropout_balance, 4);
    assert_eq!((status_count(&xw, CaseStatus::Open), status_count(&xw, CaseStatus::Returned)), (3, 1));
    let by_cause: i64 = xw.balance_by_cause.iter().map(|count| count.count).sum();
    assert_eq!(by_cause, 4, "each active case has one cause");
    assert_eq!((qh.dropouts_new, qh.cases_taken_in, qh.handoffs_in, qh.dropout_balance), (0, 1, 1, 1));
    assert_eq!(cut.total.as_ref().unwrap().figures.as_ref().unwrap().dropout_balance, 5);
    assert_eq!(cut.period_name, period.name_zh());

    // Reconciliation: the balance equals the ledger's active cases, county by county.
    for (clients, figures) in [(&xuanwu, &xw), (&qinhuai, &qh)] {
        let ledger = all_cases(clients).await.unwrap();
        let active = ledger
            .iter()
            .filter(|case| {
                ![CaseStatus::HandedOver, CaseStatus::Exempt, CaseStatus::Closed]
                    .contains(&CaseStatus::try_from(case.status).unwrap())
            })
            .count() as i64;
        assert_eq!(figures.dropout_balance, active, "the balance reconciles with the ledger");
    }

    // The period is not over: nothing to draft yet. Then the day after it ends.
    let mut reporting = xuanwu.reporting.clone();
    let draft = |notes: ReportNotes| DraftReportRequest {
        region_code: "320102".into(),
        period: code.clone(),
        notes: Some(notes),
    };
    refused(reporting.draft_report(draft(notes("上门劝返"))).await, Code::FailedPrecondition, "ends on");
    let after = period.end() + Duration::days(1);
    clock.set(&format!("{after}T09:00:00+08:00"));

    // Bad input: a period that does not exist, a city drafting, another county's report.
    let bad = DraftReportRequest { period: "2026-B7".into(), ..draft(notes("x")) };
    refused(reporting.draft_report(bad).await, Code::InvalidArgument, "bi-month");
    let city = DraftReportRequest { region_code: "320100".into(), ..draft(notes("x")) };
    refused(nanjing.reporting.clone().draft_report(city).await, Code::InvalidArgument, "not a county");
    let other = DraftReportRequest { region_code: "320104".into(), ..draft(notes("x")) };
    refused(reporting.draft_report(other).await, Code::PermissionDenied, "outside");
    refused(
        reporting.submit_report(SubmitReportRequest { region_code: "320102".into(), period: code.clone() }).await,
        Code::NotFound,
        "no report",
    );

    // The county drafts: the figures are frozen as the period's.
    let drafted = reporting.draft_report(draft(notes(""))).await.expect("drafted").into_inner().report.unwrap();
    assert_eq!(state(&drafted), ReportState::Draft);
    assert_eq!(drafted.figures.as_ref(), Some(&xw));
    let submit = || SubmitReportRequest { region_code: "320102".into(), period: code.clone() };
    refused(reporting.submit_report(submit()).await, Code::InvalidArgument, "work done");
    reporting.draft_report(draft(notes("开展控辍保学专项行动，劝返 1 人"))).await.expect("redrafted");

    // Steps out of order and by the wrong hands.
    let approve = |comment: &str| ApproveReportRequest {
        region_code: "320102".into(),
        period: code.clone(),
        comment: comment.into(),
    };
    refused(nanjing.reporting.clone().approve_report(approve("")).await, Code::FailedPrecondition, "only a submitted");
    refused(nanjing.reporting.clone().submit_report(submit()).await, Code::PermissionDenied, "supervisor");
    let submitted = reporting.submit_report(submit()).await.expect("submitted").into_inner().report.unwrap();
    assert_eq!(state(&submitted), ReportState::Submitted);
    refused(reporting.submit_report(submit()).await, Code::FailedPrecondition, "only a draft or a returned");
    refused(reporting.draft_report(draft(notes("改"))).await, Code::FailedPrecondition, "only a draft or a returned");
    refused(reporting.approve_report(approve("")).await, Code::PermissionDenied, "caseworker");
    let pdf = || GetReportPdfRequest { region_code: "320102".into(), period: code.clone() };
    refused(nanjing.reporting.clone().get_report_pdf(pdf()).await, Code::FailedPrecondition, "only an approved");
    refused(suzhou.reporting.clone().approve_report(approve("")).await, Code::PermissionDenied, "outside");
    refused(jiangsu.reporting.clone().approve_report(approve("")).await, Code::PermissionDenied, "bureau above");

    // The city returns it with a comment; the county submits again; the city approves.
    let give_back = |comment: &str| ReturnReportRequest {
        region_code: "320102".into(),
        period: code.clone(),
        comment: comment.into(),
    };
    refused(nanjing.reporting.clone().return_report(give_back(" ")).await, Code::InvalidArgument, "should fix");
    let returned = nanjing.reporting.clone().return_report(give_back("请补充劝返措施")).await.unwrap().into_inner();
    assert_eq!(state(returned.report.as_ref().unwrap()), ReportState::Returned);
    reporting
        .draft_report(draft(notes("开展控辍保学专项行动，劝返 1 人，联合公安走访 3 户")))
        .await
        .expect("redrafted");
    reporting.submit_report(submit()).await.expect("submitted again");
    let approved =
        nanjing.reporting.clone().approve_report(approve("同意")).await.unwrap().into_inner().report.unwrap();
    assert_eq!(state(&approved), ReportState::Approved);
    refused(reporting.draft_report(draft(notes("改"))).await, Code::FailedPrecondition, "only a draft or a returned");

    // The approved report as filed: a PDF whose Chinese text reads back.
    let filed = nanjing.reporting.clone().get_report_pdf(pdf()).await.expect("the PDF").into_inner();
    assert!(filed.content.starts_with(b"%PDF") && filed.file_name.ends_with(".pdf"), "{}", filed.file_name);
    let path = std::env::temp_dir().join(format!("nol-report-{}.pdf", std::process::id()));
    std::fs::write(&path, &filed.content).unwrap();
    let text = std::process::Command::new("pdftotext").arg(&path).arg("-").output().expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout).replace(char::is_whitespace, "");
    std::fs::remove_file(&path).unwrap();
    for expected in ["江苏省南京市玄武区控辍保学工作双月报", "联合公安走访3户", "审核通过", "已审核"]
    {
        assert!(text.contains(expected), "{expected} in the PDF: {text}");
    }

    // The city's report sums its approved counties and names the others.
    let city_report = report(&nanjing, "320100", &code).await;
    assert_eq!(city_report.counties_counted, 1);
    assert!(city_report.counties_total >= 11, "南京市 has eleven districts: {}", city_report.counties_total);
    assert_eq!(city_report.figures.as_ref(), Some(&xw));
    let place = |report: &Report, code: &str| {
        report.counties.iter().find(|county| county.region_code == code).cloned().unwrap()
    };
    assert_eq!(place(&city_report, "320102").state, ReportState::Approved as i32);
    assert_eq!(place(&city_report, "320104").state, ReportState::Unspecified as i32);
    assert!(!place(&city_report, "320104").late, "not due yet");
    refused(
        suzhou
            .reporting
            .clone()
            .get_report(GetReportRequest { region_code: "320100".into(), period: code.clone() })
            .await,
        Code::PermissionDenied,
        "outside",
    );

    // The province's spreadsheet: every county a row, a subtotal per city, the total last.
    let export = jiangsu
        .reporting
        .clone()
        .export_period_figures(ExportPeriodFiguresRequest { region_code: "320000".into(), period: code.clone() })
        .await
        .expect("exported")
        .into_inner();
    assert!(export.file_name.ends_with(".xlsx") && export.file_name.contains(&code), "{}", export.file_name);
    let rows = sheet_rows(export.content);
    assert!(rows[0][0].contains("江苏省") && rows[0][0].contains(&period.name_zh()), "{:?}", rows[0]);
    let column = |name: &str| rows[1].iter().position(|cell| cell == name).unwrap();
    let row_of = |code: &str| rows.iter().find(|row| row[0] == code).unwrap();
    assert_eq!(row_of("320102")[column("新增辍学")], "5");
    assert_eq!(row_of("320102")[column("期末辍学存量")], "4");
    assert_eq!(row_of("320102")[column("报告状态")], "已审核");
    assert_eq!(row_of("320104")[column("报告状态")], "未起草");
    assert_eq!(row_of("320100")[1], "南京市小计");
    assert_eq!(row_of("320100")[column("期末辍学存量")], "5");
    assert!(row_of("320500")[1].contains("苏州市"), "every city of the province has its subtotal");
    let total = rows.last().unwrap();
    assert_eq!((total[0].as_str(), total[column("期末辍学存量")].as_str()), ("320000", "5"));
    refused(
        nanjing
            .reporting
            .clone()
            .export_period_figures(ExportPeriodFiguresRequest { region_code: "320000".into(), period: code.clone() })
            .await,
        Code::PermissionDenied,
        "outside",
    );

    // The province accepts; an accepted report is re-opened by the province only, with a reason.
    let accept = AcceptReportRequest { region_code: "320102".into(), period: code.clone(), comment: String::new() };
    refused(nanjing.reporting.clone().accept_report(accept.clone()).await, Code::PermissionDenied, "provincial");
    let accepted = jiangsu.reporting.clone().accept_report(accept).await.unwrap().into_inner().report.unwrap();
    assert_eq!(state(&accepted), ReportState::Accepted);
    let reopen = |reason: &str| ReopenReportRequest {
        region_code: "320102".into(),
        period: code.clone(),
        reason: reason.into(),
    };
    refused(nanjing.reporting.clone().reopen_report(reopen("数据有误")).await, Code::PermissionDenied, "province only");
    refused(jiangsu.reporting.clone().reopen_report(reopen("")).await, Code::InvalidArgument, "re-opened");
    let reopened = jiangsu.reporting.clone().reopen_report(reopen("辍学人数需与学籍核对")).await.unwrap().into_inner();
    assert_eq!(state(reopened.report.as_ref().unwrap()), ReportState::Returned);
    assert_eq!(report(&nanjing, "320100", &code).await.counties_counted, 0, "a re-opened report leaves the sums");

    // Every step is in the history with who took it, an event and an audit entry.
    let county_report = report(&xuanwu, "320102", &code).await;
    let steps: Vec<(&str, &str)> =
        county_report.history.iter().map(|step| (step.action.as_str(), step.actor_region_code.as_str())).collect();
    assert_eq!(
        steps,
        [
            ("draft", "320102"),
            ("draft", "320102"),
            ("submit", "320102"),
            ("return", "320100"),
            ("draft", "320102"),
            ("submit", "320102"),
            ("approve", "320100"),
            ("accept", "320000"),
            ("reopen", "320000"),
        ]
    );
    assert_eq!(county_report.history[3].comment, "请补充劝返措施");
    let database = test.database("320000", "reporting").await;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reporting.outbox WHERE subject LIKE '%.evt.reporting.report_step.320102'",
    )
    .fetch_one(&database)
    .await
    .unwrap();
    assert_eq!(events, 9);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting_audit.audit_log WHERE action LIKE 'report.%'")
            .fetch_one(&database)
            .await
            .unwrap();
    assert_eq!(audited, 9);

    // Past the due date, the counties that have not reported are late.
    let due = chrono::NaiveDate::parse_from_str(&city_report.due_on, "%Y-%m-%d").unwrap();
    assert_eq!(due, period.end() + Duration::days(10));
    clock.set(&format!("{}T09:00:00+08:00", due + Duration::days(1)));
    let late = report(&nanjing, "320100", &code).await;
    assert!(place(&late, "320104").late && place(&late, "320102").late);

    // Late reports go to supervision (督办), once per county and period: the case service raises an
    // item for 南京市 over 秦淮区, whose report was never drafted.
    let sweep = || {
        let mut reporting = jiangsu.reporting.clone();
        async move { reporting.sweep_late_reports(SweepLateReportsRequest {}).await }
    };
    let raised = sweep().await.expect("swept").into_inner().raised;
    assert!(raised >= 11, "every late county of the province: {raised}");
    assert_eq!(sweep().await.unwrap().into_inner().raised, 0, "once per county and period");
    refused(
        xuanwu.reporting.clone().sweep_late_reports(SweepLateReportsRequest {}).await,
        Code::PermissionDenied,
        "caseworker",
    );
    let item = eventually("the case service to raise the item", || {
        let mut supervision = nanjing.supervision.clone();
        async move {
            let items = supervision
                .list_supervision_items(ListSupervisionItemsRequest {
                    region_code: "320104".into(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .items;
            Ok(items.into_iter().find(|item| item.kind == OverdueKind::Report as i32))
        }
    })
    .await;
    assert_eq!(item.supervising_region_code, "320100");
    assert!(item.reason.contains("双月报") && item.reason.contains(&period.name_zh()), "{}", item.reason);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_consolidation_rate_is_graduates_over_the_cohorts_entrants_where_both_are_known() {
    let test = TestStack::start().await;
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let mut reporting = nanjing.reporting.clone();
    let rate = |clients: &Clients| {
        let mut reporting = clients.reporting.clone();
        async move {
            reporting
                .get_consolidation_rate(GetConsolidationRateRequest { region_code: "320100".into() })
                .await
                .unwrap()
                .into_inner()
                .years
        }
    };
    assert!(rate(&nanjing).await.is_empty(), "no entrants file: no rate, never an invented one");

    // A file with bad rows changes nothing and names each bad row; a case worker may not import.
    let graduation_year = china_date(Utc::now()).format("%Y").to_string().parse::<i32>().unwrap();
    let entry_year = graduation_year - 9;
    let file = |body: String| ImportCohortEntrantsRequest {
        file_name: "一年级入学人数.csv".into(),
        content: format!("地区代码,入学年份,一年级入学人数\n{body}").into_bytes(),
    };
    let bad = file(format!("320102,{entry_year},4\n320500,{entry_year},9\n320104,1990,x\n"));
    let refused_rows = reporting.import_cohort_entrants(bad).await.unwrap_err();
    assert_eq!(refused_rows.code(), Code::InvalidArgument);
    let bad_request = tonic_types::StatusExt::get_details_bad_request(&refused_rows).unwrap();
    let fields: Vec<&str> = bad_request.field_violations.iter().map(|violation| violation.field.as_str()).collect();
    assert_eq!(fields, ["rows[3].地区代码", "rows[4].入学年份", "rows[4].一年级入学人数"]);
    assert!(rate(&nanjing).await.is_empty(), "nothing changed");
    refused(
        xuanwu.reporting.clone().import_cohort_entrants(file(format!("320102,{entry_year},4\n"))).await,
        Code::PermissionDenied,
        "caseworker",
    );
    let imported = reporting
        .import_cohort_entrants(file(format!("320102,{entry_year},4\n320104,{entry_year},3\n")))
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(imported.rows_imported, 2);

    // One of 玄武区's pupils finishes compulsory education this year: 1 of 4 + 0 of 3 = 1/7.
    let pupil = common::register_pupil(&xuanwu, "王毕业", &common::resident_id("320102", 77)).await;
    xuanwu
        .registry
        .clone()
        .update_pupil_status(UpdatePupilStatusRequest {
            pupil_id: pupil,
            enrollment_status: EnrollmentStatus::Graduated as i32,
            reason: "初中毕业".into(),
            effective_date: String::new(),
        })
        .await
        .expect("graduated");
    let years = eventually("the graduate to be counted", || {
        let nanjing = nanjing.clone();
        async move {
            let years = rate(&nanjing).await;
            Ok(years.first().is_some_and(|year| year.graduates == 1).then_some(years))
        }
    })
    .await;
    let year = &years[0];
    assert_eq!(
        (year.graduation_year, year.entrants, year.graduates, year.counties_counted),
        (graduation_year, 7, 1, 2)
    );
    assert!((year.rate - 1.0 / 7.0).abs() < 1e-9);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_city_reports_its_semester_to_the_province() {
    let now = Utc::now();
    let clock = RuleClock::at(&now.to_rfc3339());
    let test = TestStack::start_with(clock.options()).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let jiangsu = test.clients("320000", "320000", Role::Supervisor);
    // The semester this day falls in: spring is February–August, autumn September–January.
    let today = china_date(now);
    let (year, month) = (today.format("%Y").to_string().parse::<i32>().unwrap(), today.format("%m").to_string());
    let semester = match month.as_str() {
        "01" => format!("{}-S2", year - 1),
        "09" | "10" | "11" | "12" => format!("{year}-S2"),
        _ => format!("{year}-S1"),
    };
    let cases: Vec<DropoutCase> = vec![Child::Xiaoyi.open_case(&xuanwu).await, Child::Xiaoer.open_case(&xuanwu).await];
    let mut cases_client = xuanwu.cases.clone();
    cases_client.return_to_school(return_to(&cases[0].case_id, "")).await.expect("returned");
    cases_client
        .start_monitoring(StartMonitoringRequest { case_id: cases[0].case_id.clone() })
        .await
        .expect("monitored");
    cases_client
        .record_relapse(RecordRelapseRequest {
            case_id: cases[0].case_id.clone(), note: "复学后再次辍学".into()
        })
        .await
        .expect("relapsed");
    reported(&nanjing, "320100", |summary| summary.cases_opened == 2 && summary.cases_relapsed == 1).await;

    // A county writes no semester report; the city's waits for the semester's end.
    let draft = |region: &str| DraftReportRequest {
        region_code: region.into(),
        period: semester.clone(),
        notes: Some(ReportNotes {
            work_done: "本学期开展入户劝返和复学跟踪".into(), ..Default::default()
        }),
    };
    refused(xuanwu.reporting.clone().draft_report(draft("320102")).await, Code::InvalidArgument, "not a city");
    refused(nanjing.reporting.clone().draft_report(draft("320100")).await, Code::FailedPrecondition, "ends on");
    let end = nol_reporting::periods::ReportPeriod::parse(&semester).unwrap().end();
    clock.set(&format!("{}T09:00:00+08:00", end + Duration::days(1)));

    let drafted =
        nanjing.reporting.clone().draft_report(draft("320100")).await.expect("drafted").into_inner().report.unwrap();
    let figures = drafted.figures.clone().unwrap();
    assert_eq!((figures.dropouts_new, figures.relapsed), (2, 1), "new dropouts and relapses of the semester");
    let submit = SubmitReportRequest { region_code: "320100".into(), period: semester.clone() };
    nanjing.reporting.clone().submit_report(submit.clone()).await.expect("submitted");
    let approve =
        ApproveReportRequest { region_code: "320100".into(), period: semester.clone(), comment: String::new() };
    refused(
        jiangsu.reporting.clone().approve_report(approve).await,
        Code::FailedPrecondition,
        "straight to the province",
    );
    let accept =
        AcceptReportRequest { region_code: "320100".into(), period: semester.clone(), comment: "已阅".into() };
    refused(nanjing.reporting.clone().accept_report(accept.clone()).await, Code::PermissionDenied, "provincial");
    let accepted =
        jiangsu.reporting.clone().accept_report(accept).await.expect("accepted").into_inner().report.unwrap();
    assert_eq!(state(&accepted), ReportState::Accepted);

    // The province's view lists its cities, 南京市 accepted, and sums the accepted ones.
    let province = report(&jiangsu, "320000", &semester).await;
    assert_eq!(
        province.counties.iter().find(|city| city.region_code == "320100").unwrap().state,
        ReportState::Accepted as i32
    );
    assert_eq!(province.counties_counted, 1);
    assert_eq!(province.figures.unwrap().dropouts_new, 2);
    assert_eq!(province.due_on, (end + Duration::days(28)).format("%Y-%m-%d").to_string());

    // Past the due date, the cities that have not reported go to the province's supervision (督办);
    // 南京市, accepted, does not.
    clock.set(&format!("{}T09:00:00+08:00", end + Duration::days(29)));
    let raised = jiangsu
        .reporting
        .clone()
        .sweep_late_reports(SweepLateReportsRequest {})
        .await
        .expect("swept")
        .into_inner()
        .raised;
    assert!(raised >= 12, "the province's other cities, and its counties' bi-monthly reports: {raised}");
    let semester_items = |region: &'static str| {
        let mut supervision = jiangsu.supervision.clone();
        async move {
            let items = supervision
                .list_supervision_items(ListSupervisionItemsRequest {
                    region_code: region.into(),
                    page_size: 500,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .items;
            Ok::<_, tonic::Status>(
                items
                    .into_iter()
                    .filter(|item| item.kind == OverdueKind::Report as i32 && item.region_code == region)
                    .collect::<Vec<_>>(),
            )
        }
    };
    let suzhou = eventually("the case service to raise 苏州市's item", || async {
        Ok(semester_items("320500").await?.into_iter().next())
    })
    .await;
    assert_eq!(suzhou.supervising_region_code, "320000");
    assert!(suzhou.reason.contains("工作报告"), "{}", suzhou.reason);
    assert!(suzhou.reason.contains(&nol_reporting::periods::ReportPeriod::parse(&semester).unwrap().name_zh()));
    let items = semester_items("320100").await.unwrap();
    assert!(items.iter().all(|item| item.region_code != "320100"), "南京市 reported");
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_enrolled_pupils_are_counted_by_grade_migrant_registered_poor_and_disability() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let register = |name: &'static str,
                    sequence: u16,
                    hukou: &'static str,
                    grade: i32,
                    poor: bool,
                    disability: DisabilityGrade| {
        let mut registry = xuanwu.registry.clone();
        async move {
            registry
                .create_pupil(CreatePupilRequest {
                    pupil: Some(Pupil {
                        full_name: name.into(),
                        resident_id: common::resident_id("320102", sequence),
                        hukou_region_code: hukou.into(),
                        school_code: "3201020001".into(),
                        grade,
                        registered_poor: poor,
                        poor_household_id: if poor { "3201020000012345".into() } else { String::new() },
                        disability_grade: disability as i32,
                        ..Default::default()
                    }),
                })
                .await
                .expect("registered")
                .into_inner()
                .pupil
                .unwrap()
                .pupil_id
        }
    };
    let migrant = register("随迁一", 61, "341221", 3, false, DisabilityGrade::None).await;
    register("建档二", 62, "320102", 7, true, DisabilityGrade::Three).await;
    let leaving = register("毕业三", 63, "320102", 9, false, DisabilityGrade::None).await;
    // The migrant child moves to 秦淮区 in grade 4 (hukou still outside); the grade-9 pupil graduates.
    xuanwu
        .registry
        .clone()
        .transfer_pupil(TransferPupilRequest {
            pupil_id: migrant,
            to_school_code: "3201040001".into(),
            grade: 4,
            reason: "随父母搬家".into(),
            effective_date: String::new(),
        })
        .await
        .expect("transferred");
    xuanwu
        .registry
        .clone()
        .update_pupil_status(UpdatePupilStatusRequest {
            pupil_id: leaving,
            enrollment_status: EnrollmentStatus::Graduated as i32,
            reason: "初中毕业".into(),
            effective_date: String::new(),
        })
        .await
        .expect("graduated");

    let period = Period::containing(china_date(Utc::now())).code();
    let cut = eventually("the pupils to be counted", || {
        let mut reporting = nanjing.reporting.clone();
        let period = period.clone();
        async move {
            let cut = reporting
                .get_period_figures(GetPeriodFiguresRequest { region_code: "320100".into(), period })
                .await?
                .into_inner();
            let counted = cut.total.as_ref().and_then(|total| total.figures.as_ref()).is_some_and(|figures| {
                figures.pupils_left_enrolled == 1
                    && figures.pupils_enrolled_by_grade.iter().any(|g| g.grade == 4 && g.count == 1)
            });
            Ok(counted.then_some(cut))
        }
    })
    .await;
    let county = |code: &str| {
        cut.counties.iter().find(|county| county.region_code == code).and_then(|county| county.figures.clone()).unwrap()
    };
    let by_grade = |figures: &PeriodFigures| {
        figures.pupils_enrolled_by_grade.iter().filter(|g| g.count != 0).map(|g| (g.grade, g.count)).collect::<Vec<_>>()
    };
    let (xw, qh) = (county("320102"), county("320104"));
    assert_eq!(xw.pupils_enrolled, 1);
    assert_eq!(by_grade(&xw), [(7, 1)]);
    assert_eq!(
        (xw.pupils_enrolled_migrant, xw.pupils_enrolled_registered_poor, xw.pupils_enrolled_disability),
        (0, 1, 1)
    );
    assert_eq!(qh.pupils_enrolled, 1);
    assert_eq!(by_grade(&qh), [(4, 1)]);
    assert_eq!(
        (qh.pupils_enrolled_migrant, qh.pupils_enrolled_registered_poor, qh.pupils_enrolled_disability),
        (1, 0, 0)
    );
    assert_eq!(xw.pupils_enrolled_by_grade.len(), 9, "every grade, zero included");
    test.finish().await;
}
