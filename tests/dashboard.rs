//! The dashboard's HTTP side on the real stack: sign-in with a region-scoped token into an
//! HttpOnly, SameSite=Strict cookie that ends with the token; CSRF on every action; every JSON
//! answer scoped like the gRPC API (a city sees its counties, never a sibling) and equal to what
//! gRPC reads; the lists of the other services through their APIs; XLSX downloads; and a case
//! opened in a county arriving on the open dashboard's event stream.

mod common;

use std::time::Instant;

use common::TestStack;
use common::cases::{Child, reported};
use common::web::{WebUser, web_url};
use futures::StreamExt;
use nol_auth::Role;
use nol_proto::v1::*;
use nol_reporting::periods::Period;
use nol_runtime::clock::china_date;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Reads server-sent events until one whose data contains `needle`; returns its data.
async fn next_event(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    needle: &str,
) -> String {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:"))
                && data.contains(needle)
            {
                return data.trim().to_owned();
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
            .await
            .expect("an event within 30 s")
            .expect("the stream stays open")
            .expect("a chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_is_scoped_like_the_api_and_updates_live() {
    let test = TestStack::start().await;
    let base = web_url(&test, "320000");
    let period = Period::containing(china_date(chrono::Utc::now())).code();
    let http = base.client.clone();

    // The page and its headers; nothing in the API without a session.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(page.text().await.unwrap().contains("lang=\"zh-CN\""));
    let anonymous = http.get(format!("{base}/api/overview")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("登录"), "{body}");

    // Sign-in: a forged token is refused, a cross-site sign-in too; a good one sets the cookie.
    let forged = http
        .post(format!("{base}/api/session"))
        .json(&json!({"token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let city_token = test.token("320100", Role::Supervisor);
    let cross_site = http
        .post(format!("{base}/api/session"))
        .header("origin", "http://evil.example")
        .json(&json!({"token": city_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let signed = http.post(format!("{base}/api/session")).json(&json!({"token": city_token})).send().await.unwrap();
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let max_age: u64 = set_cookie.split("Max-Age=").nth(1).unwrap().parse().unwrap();
    assert!(max_age > 0 && max_age <= 600, "the session ends with the token: {max_age}");
    let city = WebUser::sign_in(&base, &city_token).await;
    let (_, session) = city.get("/api/session").await;
    assert_eq!((session["region_code"].as_str(), session["role_zh"].as_str()), (Some("320100"), Some("督导人员")));
    let county = WebUser::sign_in(&base, &test.token("320102", Role::Caseworker)).await;
    let neighbour = WebUser::sign_in(&base, &test.token("320104", Role::Caseworker)).await;

    // Live: the city's and a neighbouring county's event streams are open before anything happens.
    let events = |user: &WebUser| user.request(Method::GET, "/api/events").send();
    let city_events = events(&city).await.unwrap();
    assert_eq!(city_events.headers()["content-type"], "text/event-stream");
    let mut city_stream = city_events.bytes_stream();
    let mut neighbour_stream = events(&neighbour).await.unwrap().bytes_stream();
    let (mut city_buffer, mut neighbour_buffer) = (String::new(), String::new());

    // Three children of 玄武区 leave school.
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    for child in [Child::Xiaoyi, Child::Xiaoer, Child::Xiaosan] {
        child.open_case(&xuanwu).await;
    }
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    reported(&nanjing, "320100", |summary| summary.cases_opened == 3).await;
    for _ in 0..3 {
        let data = next_event(&mut city_stream, &mut city_buffer, "case_opened").await;
        assert!(data.contains("\"320102\""), "{data}");
    }

    // The overview equals what gRPC reads, for the city and the county in it.
    let grpc = nanjing
        .reporting
        .clone()
        .get_period_figures(GetPeriodFiguresRequest { region_code: "320100".into(), period: period.clone() })
        .await
        .unwrap()
        .into_inner();
    let total = grpc.total.unwrap().figures.unwrap();
    let (status, overview) = city.get(&format!("/api/overview?period={period}")).await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert_eq!(overview["headline"]["dropouts_new"], json!(total.dropouts_new));
    assert_eq!(overview["headline"]["dropout_balance"], json!(total.dropout_balance));
    assert_eq!(overview["headline"]["dropout_balance"], json!(3));
    assert_eq!(overview["headline"]["consolidation_rate"], json!(null), "never invented");
    assert_eq!(overview["headline"]["overdue_work"], json!(0), "read from the case service with the user's token");
    let xw = overview["children"].as_array().unwrap().iter().find(|child| child["region_code"] == "320102").unwrap();
    assert_eq!(xw["figures"]["dropouts_new"], json!(3));
    assert_eq!(xw["report_state_zh"], json!("未起草"));
    assert_eq!(overview["trend"].as_array().unwrap().len(), 6);
    let this_period = &overview["trend"][5];
    assert_eq!(
        (this_period["period"].as_str(), this_period["dropouts_new"].as_i64()),
        (Some(period.as_str()), Some(3))
    );
    assert_eq!(this_period["dropout_balance"], json!(3), "the trend carries the balance to each period's end");
    assert_eq!(overview["trend"][4]["dropouts_new"], json!(0));
    let (_, own) = county.get("/api/overview").await;
    assert_eq!((own["region_code"].as_str(), own["headline"]["dropouts_new"].as_i64()), (Some("320102"), Some(3)));
    assert!(own["children"].as_array().unwrap().is_empty());

    // Out of scope, bad input.
    let (status, refused) = city.get("/api/overview?region=320500").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused["error"].as_str().unwrap().contains("管辖范围"), "{refused}");
    assert_eq!(county.get("/api/overview?region=320100").await.0, StatusCode::FORBIDDEN);
    let (status, bad) = city.get("/api/overview?period=2026-B9").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().contains("双月"), "{bad}");
    assert_eq!(city.get("/api/report?region=320500").await.0, StatusCode::FORBIDDEN);

    // Actions need the CSRF token; with it, the workflow's own rules answer.
    let draft = json!({"region": "320102", "period": period, "notes": {"work_done": "上门劝返"}});
    let without = county
        .client
        .post(format!("{base}/api/report/draft"))
        .header("cookie", &county.cookie)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let (status, early) = county.post("/api/report/draft", draft.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{early}");
    assert!(early["error"].as_str().unwrap().contains("结束"), "{early}");
    let (status, report) = city.get(&format!("/api/report?region=320102&period={period}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((report["state"].clone(), report["actions"].clone()), (json!(null), json!([])));

    // Lists through the other services, and their XLSX.
    let (status, handoffs) = city.get("/api/lists/handoffs_out").await;
    assert_eq!(status, StatusCode::OK, "{handoffs}");
    assert_eq!(handoffs["title"], json!("移出案件"));
    let (status, overdue) = county.get("/api/lists/overdue").await;
    assert_eq!(status, StatusCode::OK, "{overdue}");
    assert!(overdue["columns"].as_array().unwrap().len() >= 4);
    assert_eq!(city.get("/api/lists/nothing").await.0, StatusCode::NOT_FOUND);
    // The semester-start check's progress by school: none yet, then the city's check, chosen by default.
    let (status, checks) = city.get("/api/lists/semester_check").await;
    assert_eq!(status, StatusCode::OK, "{checks}");
    assert!(checks["rows"].as_array().unwrap().is_empty(), "{checks}");
    let check = nanjing
        .supervision
        .clone()
        .start_semester_check(StartSemesterCheckRequest {
            region_code: "320100".into(),
            semester: "2027-spring".into(),
            deadline: "2027-03-01".into(),
        })
        .await
        .expect("check started")
        .into_inner()
        .check
        .unwrap();
    let (status, checks) = county.get("/api/lists/semester_check").await;
    assert_eq!(status, StatusCode::OK, "{checks}");
    assert_eq!(checks["filters"][0]["selected"], json!(check.check_id), "the county sees its city's check");
    assert_eq!(checks["filters"][0]["options"][0]["label"], json!("江苏省南京市 2027年春季学期（截止 2027-03-01）"));
    let total = checks["rows"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((total["school"].as_str(), total["total"].as_i64()), (Some("合计"), Some(0)));
    assert_eq!(county.get("/api/lists/semester_check?check=nothing").await.0, StatusCode::BAD_REQUEST);
    for path in ["/api/lists/supervision.xlsx", &format!("/api/export/figures.xlsx?period={period}")] {
        let file = city.request(Method::GET, path).send().await.unwrap();
        assert_eq!(file.status(), StatusCode::OK, "{path}");
        assert!(file.headers()["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''"));
        assert!(file.bytes().await.unwrap().starts_with(b"PK"), "{path} is an XLSX");
    }

    // Operators read the backbone of every service; a case worker may not.
    let operator = WebUser::sign_in(&base, &test.token("320000", Role::Operator)).await;
    let (status, ops) = operator.get("/api/ops").await;
    assert_eq!(status, StatusCode::OK, "{ops}");
    assert_eq!(ops["services"].as_array().unwrap().len(), 4);
    assert_eq!(county.get("/api/ops").await.0, StatusCode::FORBIDDEN);

    // A case opened in 玄武区 reaches the city's open dashboard, and the figures it re-reads hold it;
    // the neighbouring county's stream carries only its own county's events.
    let opened_at = Instant::now();
    Child::Xiaosi.open_case(&xuanwu).await;
    next_event(&mut city_stream, &mut city_buffer, "case_opened").await;
    println!("case opened → event on the city's dashboard: {} ms", opened_at.elapsed().as_millis());
    let (_, after) = city.get(&format!("/api/overview?period={period}")).await;
    assert_eq!(after["headline"]["dropouts_new"], json!(4), "the event arrives after the figures are committed");
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let pupil = qinhuai
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "秦小六".into(),
                resident_id: common::resident_id("320104", 31),
                hukou_region_code: "320104".into(),
                school_code: "3201040001".into(),
                grade: 6,
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .unwrap();
    qinhuai
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: pupil.pupil_id,
            causes: vec![DropoutCause::GoneToWork as i32],
            notes: String::new(),
        })
        .await
        .expect("case opened in 秦淮区");
    let data = next_event(&mut neighbour_stream, &mut neighbour_buffer, "case_opened").await;
    assert!(data.contains("\"320104\""), "the first case_opened 秦淮区 sees is its own: {data}");
    drop((city_stream, neighbour_stream));

    // Signing out ends the session.
    let out = city.request(Method::POST, "/api/logout").send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    test.finish().await;
}
