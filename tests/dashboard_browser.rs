//! The dashboard in a real browser: Debian's chromium driven by Playwright (`playwright-core`,
//! which downloads nothing) from `web/tests/dashboard.mjs`, against the real stack. A city signs in
//! with a one-click link, the figures on screen equal those read through gRPC, it drills down to a
//! county, a case opened through the API arrives without a reload, an export downloads, and a
//! county drafts and submits its report that the city approves. The script fails if any request
//! leaves 127.0.0.1 or the page logs an error; screenshots go where this test prints.

mod common;

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use common::cases::{Child, reported};
use common::{RuleClock, TestStack};
use nol_auth::Role;
use nol_proto::v1::*;
use nol_reporting::periods::Period;
use nol_runtime::clock::china_date;
use nol_stack::Clients;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn headline(clients: &Clients, region: &str, period: &str) -> serde_json::Value {
    let figures = clients
        .reporting
        .clone()
        .get_period_figures(GetPeriodFiguresRequest { region_code: region.into(), period: period.into() })
        .await
        .expect("figures")
        .into_inner()
        .total
        .unwrap()
        .figures
        .unwrap();
    json!({
        "dropout_balance": figures.dropout_balance,
        "dropouts_new": figures.dropouts_new,
        "returned": figures.returned,
        "relapsed": figures.relapsed,
        "suspects_pending": figures.suspects_pending,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bureau_works_the_dashboard_in_a_browser() {
    let chromium = std::env::var("NOL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the browser test needs Debian's chromium at {chromium} (apt-get install -y chromium; .ci/run does)"
    );
    let web = nol_stack::tools::web_packages().expect("the dashboard's npm packages");
    let now = Utc::now();
    let clock = RuleClock::at(&now.to_rfc3339());
    let test = TestStack::start_with(clock.options()).await;
    let period = Period::containing(china_date(now));
    let code = period.code();
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let mut opened = Vec::new();
    for child in [Child::Xiaoyi, Child::Xiaoer] {
        opened.push(child.open_case(&xuanwu).await.case_id);
    }
    // One child is back at school and monitored: the city's semester-start check lists them.
    let mut cases = xuanwu.cases.clone();
    cases.return_to_school(common::cases::return_to(&opened[0], "")).await.expect("returned");
    cases.start_monitoring(StartMonitoringRequest { case_id: opened[0].clone() }).await.expect("monitored");
    let deadline = (china_date(now) + chrono::Duration::days(30)).format("%Y-%m-%d").to_string();
    nanjing
        .supervision
        .clone()
        .start_semester_check(StartSemesterCheckRequest {
            region_code: "320100".into(),
            semester: format!("{}-spring", china_date(now).format("%Y").to_string().parse::<i32>().unwrap() + 1),
            deadline,
        })
        .await
        .expect("check started");
    // 玄武区 asks 秦淮区 for help with the other child: the city's list of requests shows it.
    xuanwu
        .assistance
        .clone()
        .request_assistance(RequestAssistanceRequest {
            case_id: opened[1].clone(),
            assisting_region_code: "320104".into(),
            reason: AssistanceReason::Sighting as i32,
            needs: vec![AssistanceNeed::FindChild as i32, AssistanceNeed::VisitFamily as i32],
            due_date: (china_date(now) + chrono::Duration::days(14)).format("%Y-%m-%d").to_string(),
            note: "有人在秦淮区见到孩子，请协助查找".into(),
        })
        .await
        .expect("help asked");
    reported(&nanjing, "320100", |summary| summary.cases_opened == 2 && summary.cases_returned == 1).await;
    let expect = json!({
        "period": code,
        "city": {"region": "320100", "headline": headline(&nanjing, "320100", &code).await},
        "county": {"region": "320102", "headline": headline(&xuanwu, "320102", &code).await},
    });
    let screenshots = std::env::temp_dir().join(format!("nol-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&screenshots).unwrap();
    println!("screenshots: {}", screenshots.display());

    let mut script = tokio::process::Command::new("node")
        .arg(web.join("tests/dashboard.mjs"))
        .env("NOL_WEB_URL", common::web::web_url(&test, "320000").base)
        // Chromium trusts exactly the dashboard's key (the deployment's CA is not in its store).
        .env(
            "NOL_WEB_SPKI",
            nol_stack::tls::spki_sha256(
                &test.stack().keys.service_tls(&"320000".parse().unwrap(), "reporting").unwrap().cert,
            )
            .unwrap(),
        )
        .env("NOL_CITY_TOKEN", test.token("320100", Role::Supervisor))
        .env("NOL_COUNTY_TOKEN", test.token("320102", Role::Caseworker))
        .env("NOL_EXPECT", expect.to_string())
        .env("NOL_SCREENSHOTS", &screenshots)
        .env("NOL_CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js 20)");
    let mut stdin = script.stdin.take().unwrap();
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut failure = None;
    let run = async {
        while let Some(line) = lines.next_line().await.expect("the script's output") {
            println!("browser: {line}");
            if line == "LIVE_READY" {
                Child::Xiaosan.open_case(&xuanwu).await;
                let expected = expect["county"]["headline"]["dropouts_new"].as_i64().unwrap() + 1;
                stdin.write_all(format!("OPENED {expected}\n").as_bytes()).await.unwrap();
            } else if line == "REPORT_READY" {
                // The period is over: its report can be drafted.
                clock.set(&format!("{}T09:00:00+08:00", period.end() + chrono::Duration::days(1)));
                stdin.write_all(b"CLOCK_MOVED\n").await.unwrap();
            } else if let Some(reason) = line.strip_prefix("FAIL: ") {
                failure = Some(reason.to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(180), run).await.expect("the browser script finished within 3 minutes");
    let status = script.wait().await.unwrap();
    assert!(status.success() && failure.is_none(), "the browser script failed: {failure:?} ({status})");
    let report = nanjing
        .reporting
        .clone()
        .get_report(GetReportRequest { region_code: "320102".into(), period: code.clone() })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.state, ReportState::Approved as i32, "the clicks reached the workflow");
    test.finish().await;
}
