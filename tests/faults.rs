//! The fault suite: the backbone under faults, on real processes. Each test injects one fault
//! while work flows, then checks that not one event was lost or applied twice, and prints its
//! figures (events, deliveries, duplicates suppressed, recovery time). Hand-off tests sample the
//! ownership invariant continuously: at every sample, each case is owned by exactly one region.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::handoffs::{all_cases, all_handoffs};
use common::{TestOptions, TestStack, counts, eventually, resident_id};
use futures::StreamExt;
use nol_auth::Role;
use nol_events::{EventEnvelope, PUPIL_REGISTERED, SubjectScheme};
use nol_proto::v1::{
    AcceptHandoffRequest, BackboneStatus, CaseStatus, CreatePupilRequest, DropoutCause, GetBackboneStatusRequest,
    GetCaseRequest, GetHandoffRequest, GetRegionSummaryRequest, Handoff, HandoffDirection, HandoffState,
    ListCasesRequest, ListDeadLettersRequest, ListHandoffsRequest, OpenCaseRequest, Pupil, RequestHandoffRequest,
};
use nol_region::RegionCode;
use nol_stack::Clients;
use prost::Message;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Work that flows while faults are injected, and what to measure.

/// Registers pupils in 南京市玄武区 with two concurrent callers until stopped; every pupil is an
/// outbox event that the reporting service must count exactly once.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(clients: &Clients, first: u32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let tasks = (0..2u32)
            .map(|lane| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let mut registry = clients.registry.clone();
                tokio::spawn(async move {
                    let mut index = first + lane;
                    while !stop.load(Ordering::SeqCst) {
                        let pupil = Pupil {
                            full_name: format!("学生{index}"),
                            resident_id: nth_resident_id(index),
                            hukou_region_code: "320102".into(),
                            school_code: "3201020001".into(),
                            grade: 3,
                            ..Default::default()
                        };
                        match registry.create_pupil(CreatePupilRequest { pupil: Some(pupil) }).await {
                            Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                            Err(_) => {
                                // The registry is down or restarting: try again shortly.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                failed.fetch_add(1, Ordering::SeqCst)
                            }
                        };
                        index += 2;
                    }
                })
            })
            .collect();
        Load { stop, ok, failed, tasks }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
        (self.ok.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }
}

/// A distinct valid resident ID for the `index`-th pupil of a load.
fn nth_resident_id(index: u32) -> String {
    let birth = chrono::NaiveDate::from_ymd_opt(2012, 1, 1).unwrap() + chrono::Days::new(u64::from(index / 1000));
    nol_pii::ResidentId::from_parts("320102", birth, (index % 1000) as u16).unwrap().expose().to_owned()
}

/// Waits until `load` has committed at least `more` further pupils.
async fn load_progresses(load: &Load, more: u64) {
    let target = load.ok() + more;
    eventually("the load to make progress", || async move { Ok((load.ok() >= target).then_some(())) }).await;
}

/// Pupils Jiangsu's reporting service has counted.
async fn reported_pupils(test: &TestStack) -> anyhow::Result<i64> {
    let clients = test.clients("320000", "320000", Role::Supervisor);
    let summary = clients
        .reporting
        .clone()
        .get_region_summary(GetRegionSummaryRequest::default())
        .await?
        .into_inner()
        .summary
        .unwrap_or_default();
    Ok(summary.pupils_registered)
}

/// Waits (up to 2 minutes) until every committed pupil is counted and the registry's outbox is
/// empty; returns how long that took, and fails if more was counted than committed.
async fn all_counted_exactly_once(test: &TestStack) -> Duration {
    let started = Instant::now();
    let registry = test.database("320000", "registry").await;
    let rows = counts::pupils(&registry).await.unwrap();
    nol_stack::eventually("every committed pupil to be counted", Duration::from_secs(120), || {
        let registry = registry.clone();
        async move {
            let unsent = counts::registry_unsent(&registry).await?;
            let reported = reported_pupils(test).await?;
            anyhow::ensure!(reported <= rows, "counted {reported} pupils but only {rows} were committed");
            Ok((unsent == 0 && reported == rows).then_some(()))
        }
    })
    .await
    .unwrap_or_else(|error| panic!("{error:#}"));
    started.elapsed()
}

/// The admin status of one service process, read as the province's operator.
async fn status(test: &TestStack, province: &str, service: &str) -> BackboneStatus {
    let stack = test.stack().province(province);
    let process = match service {
        "registry" => &stack.registry,
        "cases" => &stack.cases,
        "transfer" => &stack.transfer,
        _ => &stack.reporting,
    };
    let mut admin =
        nol_stack::client::admin(&process.url(), &stack.client_tls, &test.token(province, Role::Operator)).unwrap();
    admin.get_backbone_status(GetBackboneStatusRequest {}).await.unwrap().into_inner().status.unwrap()
}

/// Messages stored in a province's stream under `filter`.
async fn stream_count(test: &TestStack, nats_index: usize, province: &str, filter: String) -> u64 {
    let stream = province_stream(test, nats_index, province).await.1;
    let info = stream.info_with_subjects(filter).await.unwrap();
    let counts: HashMap<String, usize> = info.collect::<Vec<_>>().await.into_iter().map(Result::unwrap).collect();
    counts.values().map(|count| *count as u64).sum()
}

async fn province_stream(
    test: &TestStack,
    nats_index: usize,
    province: &str,
) -> (async_nats::jetstream::Context, async_nats::jetstream::stream::Stream) {
    let client = nol_backbone::connect_nats(
        &test.stack().nats[nats_index].client_url(),
        "fault-test",
        test.stack().nats[nats_index].client_tls(),
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(client);
    let name = format!("{}_{province}", test.subject_prefix.to_uppercase());
    let stream = js.get_stream(name).await.unwrap();
    (js, stream)
}

fn scheme(test: &TestStack) -> SubjectScheme {
    SubjectScheme::new(&test.subject_prefix).unwrap()
}

fn code(text: &str) -> RegionCode {
    RegionCode::parse(text).unwrap()
}

fn options(pairs: &[(&str, &str)]) -> TestOptions {
    TestOptions {
        extra_env: pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        ..TestOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Process deaths.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_relay_killed_mid_batch_repeatedly() {
    let mut test = TestStack::start().await;
    let load = Load::start(&test.clients("320000", "320102", Role::Caseworker), 0);
    load_progresses(&load, 20).await;
    let mut crashes = 0;
    for round in 0..6 {
        let registry = &mut test.stack_mut().province_mut("320000").registry;
        registry.kill().await.unwrap();
        if round % 2 == 0 {
            // Dies right after publishing a batch, before marking it sent.
            registry.set_env("NOL_FAULT_RELAY_CRASH_AFTER", Some("1"));
            let exit = registry.restart_until_exit(Duration::from_secs(60)).await.unwrap();
            assert!(!exit.success(), "the relay was made to abort");
        } else {
            // Killed at whatever moment the load finds it.
            registry.set_env("NOL_FAULT_RELAY_CRASH_AFTER", None);
            registry.restart().await.unwrap();
            load_progresses(&load, 10).await;
        }
        crashes += 1;
    }
    let registry = &mut test.stack_mut().province_mut("320000").registry;
    registry.set_env("NOL_FAULT_RELAY_CRASH_AFTER", None);
    registry.restart().await.unwrap();
    let restarted = Instant::now();
    load_progresses(&load, 20).await;
    let (ok, failed) = load.stop().await;
    let recovery = all_counted_exactly_once(&test).await;
    let rows = counts::pupils(&test.database("320000", "registry").await).await.unwrap();
    let filter = scheme(&test).local_filter(&code("320000"), PUPIL_REGISTERED);
    let stored = stream_count(&test, 0, "320000", filter).await;
    assert_eq!(stored, rows as u64, "the stream dropped every re-published copy by Nats-Msg-Id");
    let reporting = status(&test, "320000", "reporting").await;
    println!(
        "relay killed x{crashes}: events committed {rows} (calls ok {ok}, refused while down {failed}); \
         stream messages {stored}; counted once each: {}; inbox duplicates {}; recovery after last restart {:.1}s \
         (drain {:.1}s)",
        reported_pupils(&test).await.unwrap(),
        reporting.duplicates_dropped,
        restarted.elapsed().as_secs_f64(),
        recovery.as_secs_f64()
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_consumer_killed_between_commit_and_ack() {
    let mut test = TestStack::start_with(options(&[("NOL_ACK_WAIT_SECS", "2")])).await;
    let load = Load::start(&test.clients("320000", "320102", Role::Caseworker), 0);
    load_progresses(&load, 20).await;
    let mut crashes = 0;
    for _ in 0..4 {
        let reporting = &mut test.stack_mut().province_mut("320000").reporting;
        reporting.kill().await.unwrap();
        reporting.set_env("NOL_FAULT_CONSUMER_CRASH_AFTER", Some("1"));
        let exit = reporting.restart_until_exit(Duration::from_secs(60)).await.unwrap();
        assert!(!exit.success(), "the consumer was made to abort after its commit");
        crashes += 1;
        load_progresses(&load, 5).await;
    }
    let reporting = &mut test.stack_mut().province_mut("320000").reporting;
    reporting.set_env("NOL_FAULT_CONSUMER_CRASH_AFTER", None);
    reporting.restart().await.unwrap();
    load_progresses(&load, 20).await;
    let (ok, _) = load.stop().await;
    let recovery = all_counted_exactly_once(&test).await;
    let rows = counts::pupils(&test.database("320000", "registry").await).await.unwrap();
    let inbox = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM reporting.inbox WHERE event_type = 'registry.pupil_registered'"#
    )
    .fetch_one(&test.database("320000", "reporting").await)
    .await
    .unwrap();
    assert_eq!(inbox, rows, "one inbox record per event");
    let status = status(&test, "320000", "reporting").await;
    assert!(status.duplicates_dropped >= 1, "the last crashed batch came back and was dropped by the inbox");
    println!(
        "consumer killed after commit x{crashes}: events {rows} (calls ok {ok}); applied once each: {}; \
         redelivered copies dropped by the inbox since the last restart {}; drain {:.1}s",
        reported_pupils(&test).await.unwrap(),
        status.duplicates_dropped,
        recovery.as_secs_f64()
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_nats_server_killed_and_restarted() {
    let mut test = TestStack::start().await;
    let load = Load::start(&test.clients("320000", "320102", Role::Caseworker), 0);
    load_progresses(&load, 20).await;
    let before = counts::pupils(&test.database("320000", "registry").await).await.unwrap();
    test.stack_mut().nats[0].kill().await.unwrap();
    // PostgreSQL is the system of record: work goes on while NATS is down, into the outbox.
    load_progresses(&load, 20).await;
    let backlog = status(&test, "320000", "registry").await.outbox_unsent;
    test.stack_mut().nats[0].restart().await.unwrap();
    let restarted = Instant::now();
    load_progresses(&load, 20).await;
    let (ok, failed) = load.stop().await;
    all_counted_exactly_once(&test).await;
    let recovery = restarted.elapsed();
    let rows = counts::pupils(&test.database("320000", "registry").await).await.unwrap();
    let filter = scheme(&test).local_filter(&code("320000"), PUPIL_REGISTERED);
    assert_eq!(stream_count(&test, 0, "320000", filter).await, rows as u64, "nothing acknowledged was lost");
    println!(
        "nats-server SIGKILLed: events before {before}, in all {rows} (calls ok {ok}, failed {failed}); \
         outbox backlog while down {backlog}; all delivered and counted once {:.1}s after the restart",
        recovery.as_secs_f64()
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_stopped_immediately_under_load() {
    let dir =
        tempfile::Builder::new().permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755)).tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = nol_stack::postgres::PgCluster::init(&dir.path().join("pg"), port).unwrap();
    cluster.start().await.unwrap();
    let test =
        TestStack::start_with(TestOptions { admin_database_url: Some(cluster.admin_url()), ..TestOptions::default() })
            .await;
    let load = Load::start(&test.clients("320000", "320102", Role::Caseworker), 0);
    load_progresses(&load, 30).await;
    cluster.stop("immediate").unwrap();
    let stopped = Instant::now();
    let failed_before = load.failed.load(Ordering::SeqCst);
    eventually("calls to fail while the database is down", || {
        let failed = load.failed.clone();
        async move { Ok((failed.load(Ordering::SeqCst) > failed_before + 1).then_some(())) }
    })
    .await;
    cluster.start().await.unwrap();
    let outage = stopped.elapsed();
    let restarted = Instant::now();
    load_progresses(&load, 30).await;
    let (ok, failed) = load.stop().await;
    all_counted_exactly_once(&test).await;
    let recovery = restarted.elapsed();
    let registry = test.database("320000", "registry").await;
    let rows = counts::pupils(&registry).await.unwrap();
    let orphans = counts::registry_unsent(&registry).await.unwrap();
    let events = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM registry.outbox WHERE event_type = 'registry.pupil_registered'"#
    )
    .fetch_one(&registry)
    .await
    .unwrap();
    assert_eq!(events, rows, "one outbox event per committed pupil: nothing half-written");
    assert_eq!(orphans, 0, "no outbox row left unsent");
    let filter = scheme(&test).local_filter(&code("320000"), PUPIL_REGISTERED);
    assert_eq!(stream_count(&test, 0, "320000", filter).await, rows as u64, "nothing skipped");
    println!(
        "postgres stopped (-m immediate) for {:.1}s under load: events {rows} (calls ok {ok}, failed {failed}); \
         every one published and counted once {:.1}s after the restart",
        outage.as_secs_f64(),
        recovery.as_secs_f64()
    );
    test.finish().await;
    cluster.stop("fast").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Poison.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_poison_messages_are_parked_and_the_stream_keeps_flowing() {
    let test = TestStack::start().await;
    let (js, _) = province_stream(&test, 0, "320000").await;
    let subject = scheme(&test).local(PUPIL_REGISTERED, &code("320102"));
    js.publish(subject.clone(), "\u{1}this is not protobuf".into()).await.unwrap().await.unwrap();
    let newer = EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: "registry.pupil_registered".into(),
        schema_version: 7,
        source_region_code: "320102".into(),
        ..Default::default()
    };
    js.publish(subject, newer.encode_to_vec().into()).await.unwrap().await.unwrap();
    let clients = test.clients("320000", "320102", Role::Caseworker);
    for index in 0..5 {
        clients
            .registry
            .clone()
            .create_pupil(CreatePupilRequest {
                pupil: Some(Pupil {
                    full_name: "张三".into(),
                    resident_id: nth_resident_id(index),
                    hukou_region_code: "320102".into(),
                    school_code: "3201020001".into(),
                    grade: 2,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    all_counted_exactly_once(&test).await;
    let operator = test.token("320000", Role::Operator);
    let tls = &test.stack().province("320000").client_tls;
    let mut admin = nol_stack::client::admin(&test.stack().province("320000").reporting.url(), tls, &operator).unwrap();
    let parked = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner().dead_letters;
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked.iter().any(|letter| letter.reason.contains("not an event envelope")));
    assert!(parked.iter().any(|letter| letter.reason.contains("schema version 7")));
    let status = status(&test, "320000", "reporting").await;
    assert_eq!(status.dead_letters, 2);
    // The same figures, for Prometheus.
    let metrics_url = format!("http://{}/metrics", test.stack().province("320000").reporting.metrics_addr);
    let metrics = http_get(&metrics_url).await;
    assert!(metrics.contains("nol_dead_letters{"), "{metrics}");
    assert!(metrics.lines().any(|line| line.starts_with("nol_dead_letters{") && line.ends_with(" 2")));
    // Callers outside operations may not read it.
    let caseworker = test.token("320102", Role::Caseworker);
    let mut refused =
        nol_stack::client::admin(&test.stack().province("320000").reporting.url(), tls, &caseworker).unwrap();
    let denied = refused.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    println!(
        "poison: 2 messages parked with reasons {:?}; 5 good events after them applied; stream kept flowing",
        parked.iter().map(|letter| letter.reason.as_str()).collect::<Vec<_>>()
    );
    test.finish().await;
}

/// A plain HTTP GET on loopback (the metrics endpoint).
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    socket
        .write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Hand-offs: the link between provinces, unanswered requests, lost and reordered messages.

/// Registers `count` children of 320102 with hukou in 341221 and opens a case for each.
async fn open_cases(clients: &Clients, count: u16, first_sequence: u16) -> Vec<String> {
    let mut case_ids = Vec::new();
    for sequence in first_sequence..first_sequence + count {
        let pupil = clients
            .registry
            .clone()
            .create_pupil(CreatePupilRequest {
                pupil: Some(Pupil {
                    full_name: format!("随迁子女{sequence}"),
                    resident_id: resident_id("341221", sequence),
                    hukou_region_code: "341221".into(),
                    school_code: "3201020001".into(),
                    grade: 6,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .pupil
            .unwrap();
        let case = clients
            .cases
            .clone()
            .open_case(OpenCaseRequest {
                pupil_id: pupil.pupil_id,
                causes: vec![DropoutCause::FamilyPoverty as i32],
                notes: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .dropout_case
            .unwrap();
        case_ids.push(case.case_id);
    }
    case_ids
}

async fn request_handoff(clients: &Clients, case_id: &str) -> String {
    clients
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest {
            case_id: case_id.to_owned(),
            destination_region_code: "341221".into(),
            reason: "家庭已返回户籍地".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap()
        .handoff_id
}

/// Waits until Anhui has recorded each of `handoff_ids`.
async fn delivered_to_anhui(linquan: &Clients, handoff_ids: &[String]) {
    let wanted: HashSet<String> = handoff_ids.iter().cloned().collect();
    eventually("Anhui to receive the hand-offs", || {
        let mut transfer = linquan.transfer.clone();
        let wanted = wanted.clone();
        async move {
            let incoming = transfer
                .list_handoffs(ListHandoffsRequest {
                    direction: HandoffDirection::Incoming as i32,
                    page_size: 500,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .handoffs;
            let seen: HashSet<String> = incoming.into_iter().map(|handoff| handoff.handoff_id).collect();
            Ok(wanted.is_subset(&seen).then_some(()))
        }
    })
    .await;
}

async fn accept(linquan: &Clients, handoff_id: &str) {
    linquan.transfer.clone().accept_handoff(AcceptHandoffRequest { handoff_id: handoff_id.to_owned() }).await.unwrap();
}

/// Waits until every case in `case_ids` is handed over in Jiangsu and open in Anhui.
async fn all_handed_over(test: &TestStack, case_ids: &[String]) {
    let jiangsu = test.database("320000", "cases").await;
    let anhui = test.database("340000", "cases").await;
    let jiangsu_transfer = test.database("320000", "transfer").await;
    let anhui_transfer = test.database("340000", "transfer").await;
    let wanted = case_ids.len() as i64;
    let ids: Vec<Uuid> = case_ids.iter().map(|id| Uuid::parse_str(id).unwrap()).collect();
    nol_stack::eventually("every hand-off to complete on both sides", Duration::from_secs(120), || {
        let (jiangsu, anhui, ids) = (jiangsu.clone(), anhui.clone(), ids.clone());
        let (jiangsu_transfer, anhui_transfer) = (jiangsu_transfer.clone(), anhui_transfer.clone());
        async move {
            let handed_over = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM cases.dropout_case WHERE id = ANY($1) AND status = 'handed_over'"#,
                &ids
            )
            .fetch_one(&jiangsu)
            .await?;
            let taken_in = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM cases.dropout_case WHERE origin_case_id = ANY($1) AND status = 'open'"#,
                &ids
            )
            .fetch_one(&anhui)
            .await?;
            let completed = completed_handoffs(&jiangsu_transfer, &ids).await? + completed_handoffs(&anhui_transfer, &ids).await?;
            Ok((handed_over == wanted && taken_in == wanted && completed == 2 * wanted).then_some(()))
        }
    })
    .await
    .unwrap_or_else(|error| panic!("{error:#}"));
}

/// How many of a province's hand-off records of these cases are completed.
async fn completed_handoffs(transfer: &sqlx::PgPool, case_ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM transfer.handoff WHERE case_id = ANY($1) AND state = 'completed'"#,
        case_ids
    )
    .fetch_one(transfer)
    .await
}

/// Samples ownership of every Jiangsu case through the API until stopped: each case has exactly
/// one responsible region at every sample. A case is owned by the origin while open, or pending
/// until the destination takes it in; by the destination from then on. Reads the origin first,
/// then the destination (the cases it took in, its incoming hand-offs, its cases again): an
/// accept comes before the case it opens, which comes before the acceptance is final and before
/// the origin hands the case over, and nothing moves back, so a transfer between the reads cannot
/// look like two owners or none. A read that fails fails the test.
struct OwnershipWatch {
    stop: Arc<AtomicBool>,
    turn: Arc<tokio::sync::Mutex<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<(u64, Vec<String>)>>,
}

/// Where the watch reads, as a province's supervisor.
#[derive(Clone)]
struct Reader {
    urls: [String; 4],
    token: String,
    tls: nol_tls::ClientTls,
}

impl Reader {
    fn new(test: &TestStack, province: &str) -> Reader {
        let services = test.stack().province(province);
        // Long enough for the longest test: a sample never fails for an expired token.
        let token = test
            .stack()
            .keys
            .token("ownership-watch", code(province), Role::Supervisor, Duration::from_secs(3600))
            .unwrap();
        let urls = [&services.registry, &services.cases, &services.transfer, &services.reporting].map(|s| s.url());
        Reader { urls, token, tls: services.client_tls.clone() }
    }

    /// Fresh clients for each sample: a service restarted since the last one is reached anew.
    fn clients(&self) -> anyhow::Result<Clients> {
        let [registry, cases, transfer, reporting] = &self.urls;
        Clients::at(registry, cases, transfer, reporting, &self.tls, &self.token)
    }
}

/// How often each origin case was taken in by the caller's region (its cases naming an origin).
async fn cases_taken_in(clients: &Clients) -> anyhow::Result<HashMap<String, usize>> {
    let mut taken_in: HashMap<String, usize> = HashMap::new();
    for case in all_cases(clients).await? {
        if !case.origin_case_id.is_empty() {
            *taken_in.entry(case.origin_case_id).or_default() += 1;
        }
    }
    Ok(taken_in)
}

/// One sample: what is wrong with ownership now (empty when every case has exactly one owner).
///
/// The destination owns a case once its case service has taken it in (a case there names the
/// origin's case); that happens only after a destination case worker accepted, so the incoming
/// hand-off is then accepted, completed, or still accepting (read as RECEIVED with an accept
/// time). An accepted or completed incoming hand-off without the case taken in is lost.
async fn ownership_violations(jiangsu: &Reader, anhui: &Reader) -> anyhow::Result<Vec<String>> {
    let (jiangsu, anhui) = (jiangsu.clients()?, anhui.clients()?);
    let origin = all_cases(&jiangsu).await?;
    let taken_in = cases_taken_in(&anhui).await?;
    let incoming = all_handoffs(&anhui, HandoffDirection::Incoming).await?;
    // Read again after the hand-offs: an acceptance read above has its case taken in by now.
    let taken_in_after = cases_taken_in(&anhui).await?;
    let accepted = |handoff: &Handoff| {
        let state = HandoffState::try_from(handoff.state).unwrap_or_default();
        matches!(state, HandoffState::Accepted | HandoffState::Completed)
    };
    let accepting = |handoff: &Handoff| {
        HandoffState::try_from(handoff.state) == Ok(HandoffState::Delivered) && handoff.accept_time.is_some()
    };
    let mut violations = Vec::new();
    for handoff in incoming.iter().filter(|handoff| accepted(handoff)) {
        if !taken_in_after.contains_key(&handoff.case_id) {
            violations.push(format!("hand-off {} accepted in Anhui without its case", handoff.handoff_id));
        }
    }
    for case in origin {
        let case_id = case.case_id.as_str();
        let status = CaseStatus::try_from(case.status).unwrap_or_default();
        let destination_owns = taken_in.contains_key(case_id);
        let origin_owns = status == CaseStatus::Open || (status == CaseStatus::HandoffPending && !destination_owns);
        if u8::from(origin_owns) + u8::from(destination_owns) != 1 {
            violations.push(format!(
                "case {case_id}: origin {}, taken in by the destination {destination_owns}",
                status.as_str_name()
            ));
        }
        if taken_in.get(case_id).copied().unwrap_or(0) > 1 {
            violations.push(format!("case {case_id} taken in twice"));
        }
        let answered_yes =
            incoming.iter().any(|handoff| handoff.case_id == case_id && (accepted(handoff) || accepting(handoff)));
        if destination_owns && !answered_yes {
            violations.push(format!("case {case_id} opened in Anhui without an accept"));
        }
    }
    Ok(violations)
}

impl OwnershipWatch {
    /// The longest a sample may take before the watch fails the test.
    const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

    async fn start(test: &TestStack) -> OwnershipWatch {
        let (jiangsu, anhui) = (Reader::new(test, "320000"), Reader::new(test, "340000"));
        let stop = Arc::new(AtomicBool::new(false));
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let task = {
            let (stop, turn) = (stop.clone(), turn.clone());
            tokio::spawn(async move {
                let mut samples = 0u64;
                let mut violations = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    {
                        let _turn = turn.lock().await;
                        let sample = tokio::time::timeout(Self::SAMPLE_TIMEOUT, ownership_violations(&jiangsu, &anhui))
                            .await
                            .map_err(|_| anyhow::anyhow!("an ownership sample took over {:?}", Self::SAMPLE_TIMEOUT))?
                            .map_err(|error| error.context(format!("ownership sample {}", samples + 1)))?;
                        violations.extend(sample);
                    }
                    samples += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok((samples, violations))
            })
        };
        OwnershipWatch { stop, turn, task }
    }

    /// Holds the watch between samples until the guard is dropped: while the test has a service
    /// the watch reads stopped on purpose.
    async fn pause(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let (samples, violations) =
            self.task.await.unwrap().unwrap_or_else(|error| panic!("the ownership watch could not read: {error:#}"));
        assert!(violations.is_empty(), "ownership violated: {violations:?}");
        assert!(samples > 0);
        samples
    }
}

/// Cuts the link between the provinces for `cut`, with hand-offs requested before and during the
/// cut and accepted during it; everything waits, then completes once.
async fn link_cut(cut: Duration) {
    let test = TestStack::start_with(TestOptions {
        cuttable_link: true,
        extra_env: BTreeMap::from([("NOL_HANDOFF_RESEND_SECS".to_owned(), "2".to_owned())]),
        ..TestOptions::default()
    })
    .await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let cases = open_cases(&xuanwu, 6, 100).await;
    let watch = OwnershipWatch::start(&test).await;

    // Two hand-offs reach Anhui before the cut; Anhui accepts them while cut off.
    let early: Vec<String> =
        futures::future::join_all(cases[..2].iter().map(|case| request_handoff(&xuanwu, case))).await;
    delivered_to_anhui(&linquan, &early).await;
    let link = test.stack().link.as_ref().unwrap();
    link.cut().await;
    let cut_at = Instant::now();
    for handoff_id in &early {
        accept(&linquan, handoff_id).await;
    }
    // Four more are requested while cut off: they wait, visible as pending at the origin.
    let late: Vec<String> =
        futures::future::join_all(cases[2..].iter().map(|case| request_handoff(&xuanwu, case))).await;
    let pending = eventually("the late requests to show as waiting in the outbox", || {
        let test = &test;
        async move {
            let status = status(test, "320000", "transfer").await;
            Ok((status.outbox_retrying >= 4).then_some(status))
        }
    })
    .await;
    assert_eq!(pending.gauges.get("handoffs_pending"), Some(&6));
    for handoff_id in &late {
        let handoff = xuanwu
            .transfer
            .clone()
            .get_handoff(GetHandoffRequest { handoff_id: handoff_id.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .handoff
            .unwrap();
        assert_eq!(handoff.state, HandoffState::Requested as i32, "no receipt can come back while cut off");
    }
    tokio::time::sleep(cut.saturating_sub(cut_at.elapsed())).await;
    let jiangsu_cases = test.database("320000", "cases").await;
    let still_pending =
        sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM cases.dropout_case WHERE status = 'handoff_pending'"#)
            .fetch_one(&jiangsu_cases)
            .await
            .unwrap();
    assert_eq!(still_pending, 6, "every case still owned by the origin or claimed by an accept, none lost");

    link.restore();
    let restored = Instant::now();
    delivered_to_anhui(&linquan, &late).await;
    let delivered_after = restored.elapsed();
    for handoff_id in &late {
        accept(&linquan, handoff_id).await;
    }
    all_handed_over(&test, &cases).await;
    let completed_after = restored.elapsed();
    let samples = watch.finish().await;
    let accepted = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM transfer.handoff WHERE direction = 'incoming' AND state = 'completed'"#
    )
    .fetch_one(&test.database("340000", "transfer").await)
    .await
    .unwrap();
    assert_eq!(accepted, 6);
    let anhui_cases = counts::cases(&test.database("340000", "cases").await).await.unwrap();
    assert_eq!(anhui_cases, 6, "each case taken in once");
    let transfer = status(&test, "320000", "transfer").await;
    println!(
        "link cut {:.0}s: 6 hand-offs (2 accepted during the cut, 4 requested during it); after restore: \
         requests delivered in {:.1}s, all completed in {:.1}s; publish failures retried {}; ownership \
         sampled {samples} times, never two owners or none",
        cut.as_secs_f64(),
        delivered_after.as_secs_f64(),
        completed_after.as_secs_f64(),
        transfer.publish_failures
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_link_between_provinces_cut_for_30s() {
    link_cut(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_link_between_provinces_cut_for_5min() {
    link_cut(Duration::from_secs(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_handoff_never_answered_is_escalated_and_stays_with_the_origin() {
    let test =
        TestStack::start_with(options(&[("NOL_HANDOFF_DEADLINE_SECS", "3"), ("NOL_HANDOFF_RESEND_SECS", "1")])).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let case_id = open_cases(&xuanwu, 1, 200).await.remove(0);
    let watch = OwnershipWatch::start(&test).await;
    let requested_at = Instant::now();
    let handoff_id = request_handoff(&xuanwu, &case_id).await;
    // Anhui receives it, but no case worker there ever accepts.
    let escalated = eventually("the hand-off to be escalated past its deadline", || {
        let mut transfer = xuanwu.transfer.clone();
        let handoff_id = handoff_id.clone();
        async move {
            let handoff = transfer
                .get_handoff(GetHandoffRequest { handoff_id, ..Default::default() })
                .await?
                .into_inner()
                .handoff
                .unwrap();
            Ok(handoff.escalate_time.is_some().then_some(handoff))
        }
    })
    .await;
    let escalated_after = requested_at.elapsed();
    assert_eq!(escalated.escalated_to_region_code, "320100", "the origin county's parent bureau, 南京市");
    assert_eq!(escalated.state, HandoffState::Delivered as i32);
    // The city bureau sees it among its escalated hand-offs; the case is under its supervision and
    // still owned by the origin.
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let chased = nanjing
        .transfer
        .clone()
        .list_handoffs(ListHandoffsRequest { escalated_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .handoffs;
    let chased_ids: Vec<&str> = chased.iter().map(|handoff| handoff.handoff_id.as_str()).collect();
    assert_eq!(chased_ids, [handoff_id.as_str()]);
    let case = eventually("the case to be put under the city's supervision", || {
        let mut cases = xuanwu.cases.clone();
        let case_id = case_id.clone();
        async move {
            let case = cases
                .get_case(GetCaseRequest { case_id, ..Default::default() })
                .await?
                .into_inner()
                .dropout_case
                .unwrap();
            Ok((!case.supervision_region_code.is_empty()).then_some(case))
        }
    })
    .await;
    assert_eq!(case.supervision_region_code, "320100");
    assert!(case.supervision_reason.starts_with("R12"), "{}", case.supervision_reason);
    assert_eq!(case.status, CaseStatus::HandoffPending as i32);
    let anhui_cases = test.clients("340000", "341221", Role::Caseworker);
    let owned_there = anhui_cases.cases.clone().list_cases(ListCasesRequest::default()).await.unwrap().into_inner();
    assert!(owned_there.dropout_cases.is_empty(), "the destination never accepted: it owns nothing");
    let status = status(&test, "320000", "transfer").await;
    assert_eq!(status.gauges.get("handoffs_escalated"), Some(&1));
    let samples = watch.finish().await;
    println!(
        "unanswered hand-off: escalated to 320100 after {:.1}s (deadline 3s); re-sent {} times meanwhile, \
         each answered by a receipt; case still owned by 320102 (ownership sampled {samples} times, never two \
         owners or none)",
        escalated_after.as_secs_f64(),
        escalated.resend_count
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_handoff_message_deleted_from_the_destination_stream_is_re_sent() {
    let mut test = TestStack::start_with(options(&[("NOL_HANDOFF_RESEND_SECS", "1")])).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let case_id = open_cases(&xuanwu, 1, 300).await.remove(0);
    let watch = OwnershipWatch::start(&test).await;
    // Anhui's transfer service is down, so the request sits in Anhui's stream unconsumed. The
    // watch reads Anhui's accepts from that service: it waits until the service is back.
    let paused = watch.pause().await;
    test.stack_mut().province_mut("340000").transfer.stop().await.unwrap();
    let handoff_id = request_handoff(&xuanwu, &case_id).await;
    let origin_outbox = test.database("320000", "transfer").await;
    eventually("the origin's relay to see Anhui's stream ack the request", || {
        let origin_outbox = origin_outbox.clone();
        async move {
            let sent = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM transfer.outbox
                    WHERE subject LIKE '%.xp.%handoff_requested%' AND sent_at IS NOT NULL"#
            )
            .fetch_one(&origin_outbox)
            .await?;
            Ok((sent >= 1).then_some(()))
        }
    })
    .await;
    // The acknowledged message is lost from the destination's stream.
    let subject = scheme(&test).cross(nol_events::HANDOFF_REQUESTED, &code("320102"), &code("341221"));
    let (_, stream) = province_stream(&test, 1, "340000").await;
    let lost = stream.get_last_raw_message_by_subject(&subject).await.unwrap();
    assert!(stream.delete_message(lost.sequence).await.unwrap());
    test.stack_mut().province_mut("340000").transfer.restart().await.unwrap();
    drop(paused);
    delivered_to_anhui(&linquan, std::slice::from_ref(&handoff_id)).await;
    accept(&linquan, &handoff_id).await;
    all_handed_over(&test, std::slice::from_ref(&case_id)).await;
    let handoff = xuanwu
        .transfer
        .clone()
        .get_handoff(GetHandoffRequest { handoff_id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap();
    assert!(handoff.resend_count >= 1, "the origin re-sent the request");
    assert_eq!(handoff.state, HandoffState::Completed as i32);
    let samples = watch.finish().await;
    println!(
        "acked hand-off request deleted from the destination's stream: re-sent {} time(s), then delivered, \
         accepted and completed; ownership sampled {samples} times, never two owners or none",
        handoff.resend_count
    );
    test.finish().await;
}

/// Everything the hand-off left behind, for comparing end states.
async fn end_state(test: &TestStack) -> Vec<String> {
    let mut rows = Vec::new();
    for province in ["320000", "340000"] {
        // One database per province; the tables are named with their service's schema.
        let database = test.database(province, "cases").await;
        let cases = sqlx::query!("SELECT id, status, version, origin_case_id FROM cases.dropout_case ORDER BY id")
            .fetch_all(&database)
            .await
            .unwrap();
        rows.extend(cases.into_iter().map(|row| format!("{province} case {row:?}")));
        let handoffs =
            sqlx::query!("SELECT id, direction, state, accepted_by FROM transfer.handoff ORDER BY id, direction")
                .fetch_all(&database)
                .await
                .unwrap();
        rows.extend(handoffs.into_iter().map(|row| format!("{province} handoff {row:?}")));
        let counts = sqlx::query!("SELECT region, metric, value FROM reporting.region_count ORDER BY 1, 2")
            .fetch_all(&database)
            .await
            .unwrap();
        rows.extend(counts.into_iter().map(|row| format!("{province} count {row:?}")));
    }
    rows
}

/// Waits until no service of either province has anything unsent, undelivered or unacked.
async fn quiet(test: &TestStack) {
    eventually("every outbox and consumer to be drained", || async move {
        for province in ["320000", "340000"] {
            for service in ["registry", "cases", "transfer", "reporting"] {
                let status = status(test, province, service).await;
                if status.outbox_unsent + status.consumer_pending + status.consumer_ack_pending > 0 {
                    return Ok(None);
                }
            }
        }
        Ok(Some(()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_duplicate_and_reordered_deliveries_end_in_the_same_state() {
    let mut test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let cases = open_cases(&xuanwu, 2, 400).await;
    let watch = OwnershipWatch::start(&test).await;

    // Reordered: with Jiangsu's transfer service down, Anhui's receipt and acceptance wait in
    // Jiangsu's stream; the receipt is taken out, to be delivered again after the acceptance.
    let first = request_handoff(&xuanwu, &cases[0]).await;
    let origin_outbox = test.database("320000", "transfer").await;
    eventually("the request to leave Jiangsu", || {
        let origin_outbox = origin_outbox.clone();
        async move {
            let unsent = counts::transfer_unsent(&origin_outbox).await?;
            Ok((unsent == 0).then_some(()))
        }
    })
    .await;
    test.stack_mut().province_mut("320000").transfer.stop().await.unwrap();
    delivered_to_anhui(&linquan, std::slice::from_ref(&first)).await;
    accept(&linquan, &first).await;
    let (js, stream) = province_stream(&test, 0, "320000").await;
    let accepted_subject = scheme(&test).cross(nol_events::HANDOFF_ACCEPTED, &code("341221"), &code("320102"));
    eventually("the acceptance to reach Jiangsu's stream", || {
        let stream = stream.clone();
        let subject = accepted_subject.clone();
        async move { Ok(stream.get_last_raw_message_by_subject(&subject).await.ok().map(|_| ())) }
    })
    .await;
    let receipt_subject = scheme(&test).cross(nol_events::HANDOFF_RECEIVED, &code("341221"), &code("320102"));
    let receipt = stream.get_last_raw_message_by_subject(&receipt_subject).await.unwrap();
    assert!(stream.delete_message(receipt.sequence).await.unwrap());
    test.stack_mut().province_mut("320000").transfer.restart().await.unwrap();
    all_handed_over(&test, &cases[..1]).await;

    // A second hand-off, undisturbed, for comparison.
    let second = request_handoff(&xuanwu, &cases[1]).await;
    delivered_to_anhui(&linquan, std::slice::from_ref(&second)).await;
    accept(&linquan, &second).await;
    all_handed_over(&test, &cases).await;
    quiet(&test).await;
    let settled = end_state(&test).await;

    // The late receipt arrives after the acceptance it should have preceded (as stored: signed by
    // Anhui, under a new message id).
    let mut headers = receipt.headers.clone();
    headers.insert("Nats-Msg-Id", Uuid::new_v4().to_string().as_str());
    js.publish_with_headers(receipt_subject, headers, receipt.payload.clone()).await.unwrap().await.unwrap();
    quiet(&test).await;
    assert_eq!(end_state(&test).await, settled, "the late receipt changes nothing");

    // Duplicated: every message of both streams delivered again, newest first.
    let mut replayed = 0;
    for (index, province) in [(0usize, "320000"), (1, "340000")] {
        let (js, stream) = province_stream(&test, index, province).await;
        let count = stream.cached_info().state.messages as usize;
        let consumer =
            stream.create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default()).await.unwrap();
        let mut messages = consumer.messages().await.unwrap().take(count);
        let mut copies = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let headers = message.headers.clone().unwrap_or_default();
            copies.push((message.subject.to_string(), headers, message.payload.clone()));
        }
        for (subject, mut headers, payload) in copies.into_iter().rev() {
            // As stored (a cross-province message keeps its province's signature), new message id.
            headers.insert("Nats-Msg-Id", Uuid::new_v4().to_string().as_str());
            js.publish_with_headers(subject, headers, payload).await.unwrap().await.unwrap();
            replayed += 1;
        }
    }
    quiet(&test).await;
    let after_replay = end_state(&test).await;
    assert_eq!(after_replay, settled, "duplicates change nothing");
    let mut dropped = 0;
    for province in ["320000", "340000"] {
        for service in ["cases", "transfer", "reporting"] {
            dropped += status(&test, province, service).await.duplicates_dropped;
        }
    }
    assert!(dropped >= replayed as u64 / 2, "the inboxes dropped the copies ({dropped} of {replayed})");
    let samples = watch.finish().await;
    println!(
        "reordered: the acceptance overtook the receipt and the late receipt changed nothing; \
         duplicated: {replayed} messages replayed newest first, {dropped} copies dropped by inboxes, end state identical; \
         ownership sampled {samples} times, never two owners or none"
    );
    test.finish().await;
}
