//! `cargo bench --bench backbone`: what the backbone costs, against raw baselines measured in the
//! same run on the same machine (this machine is shared and noisy: compare the ratios).
//!
//! 1. Raw JetStream: publishes with awaited acks, 256 in flight.
//! 2. Raw PostgreSQL: single-row commits, from one connection and from eight.
//! 3. The project's path: events through gRPC (CreatePupil, 8 callers; `NOL_BENCH_CALLERS`) → transaction with outbox →
//!    relay → JetStream → the reporting service's inbox, until every one is counted; and the token
//!    check a call makes, in full and for a token seen before.
//! 4. Hand-off latency: from the destination's accept (its state change) to the origin recording
//!    it (its commit), against raw JetStream publish→consume over the same link between provinces; where it
//!    goes: each acceptance's chain segment by segment, the relay's and consumers' stage histograms
//!    of the services on the way (`/metrics`), Anhui's statements an acceptance, and the case
//!    worker's `AcceptHandoff` call (it answers once the case service decided).
//! 5. What TLS costs (every hop of the system is TLS): raw JetStream publishes to a server with
//!    TLS and verified client certificates against one without, and gRPC round trips
//!    (`grpc.health.v1` Check) to an in-process server with TLS against one without.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use nol_auth::Role;
use nol_proto::v1::{
    AcceptHandoffRequest, CreatePupilRequest, GetRegionSummaryRequest, HandoffDirection, ListHandoffsRequest, Pupil,
    RequestHandoffRequest,
};
use nol_region::RegionCode;
use nol_stack::{Clients, Stack, StackSettings, postgres, profile};
use sqlx::Connection;

const RAW_PUBLISHES: usize = 20_000;
const RAW_COMMITS: usize = 2_000;
const PATH_EVENTS: u32 = 4_000;
const HANDOFFS: u16 = 100;
const RAW_LATENCY_SAMPLES: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let prefix = format!("b{id}");
    let settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &format!("b{id}"));
    let stack = Stack::start(settings).await?;
    println!("Not One Less backbone benchmark ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!();

    let raw_publish = raw_jetstream_publish(&stack, &prefix).await?;
    println!("raw JetStream publish, awaited acks, 256 in flight: {raw_publish:>9.0} msg/s ({RAW_PUBLISHES} messages)");
    let (fsync_one, fsync_256) = raw_fsync_publish(dir.path()).await?;
    println!("raw JetStream publish with sync_interval: always, 1 in flight:   {fsync_one:>9.0} msg/s");
    println!("raw JetStream publish with sync_interval: always, 256 in flight: {fsync_256:>9.0} msg/s");
    let raw_commit_1 = raw_postgres_commits(1, 1).await?;
    let raw_commit_8 = raw_postgres_commits(8, 1).await?;
    let raw_shaped_8 = raw_postgres_commits(8, 3).await?;
    println!("raw PostgreSQL single-row commits, 1 connection:     {raw_commit_1:>9.0} commits/s");
    println!("raw PostgreSQL single-row commits, 8 connections:    {raw_commit_8:>9.0} commits/s");
    println!("raw PostgreSQL 3-insert transactions (an event's shape), 8 connections: {raw_shaped_8:>6.0} commits/s");

    let callers: usize = std::env::var("NOL_BENCH_CALLERS").ok().and_then(|text| text.parse().ok()).unwrap_or(8);
    let path = project_path(&stack, callers).await?;
    println!(
        "project path, gRPC → outbox → relay → JetStream → inbox, {callers} callers: {path:>7.0} events/s \
         ({PATH_EVENTS} events)"
    );
    println!(
        "  ratio to raw PostgreSQL commits (8 connections, the bound: one commit per event): {:.2}",
        path / raw_commit_8
    );
    println!(
        "  ratio to raw PostgreSQL 3-insert transactions (8 connections):                     {:.2}",
        path / raw_shaped_8
    );
    println!(
        "  ratio to raw JetStream publishes (256 in flight):                                  {:.3}",
        path / raw_publish
    );

    token_check()?;

    let (raw_p50, raw_p99) = raw_cross_province_latency(&stack, &prefix).await?;
    let (handoff_p50, handoff_p99) = handoff_latency(&stack).await?;
    println!();
    println!(
        "raw JetStream publish→consume across the province link: p50 {raw_p50:>7.2} ms  p99 {raw_p99:>7.2} ms ({RAW_LATENCY_SAMPLES} messages)"
    );
    println!(
        "hand-off, destination accept → origin records it:       p50 {handoff_p50:>7.2} ms  p99 {handoff_p99:>7.2} ms ({HANDOFFS} hand-offs)"
    );
    println!("  ratio p50 {:.1}×, p99 {:.1}×", handoff_p50 / raw_p50, handoff_p99 / raw_p99);

    println!();
    tls_cost(dir.path()).await?;

    let mut stack = stack;
    stack.stop().await?;
    for province in ["320000", "340000"] {
        postgres::drop_database(&postgres::default_admin_url(), &format!("nol_b{id}_{province}")).await?;
    }
    Ok(())
}

async fn jetstream(stack: &Stack, index: usize) -> anyhow::Result<async_nats::jetstream::Context> {
    let client =
        nol_backbone::connect_nats(&stack.nats[index].client_url(), "bench", stack.nats[index].client_tls()).await?;
    Ok(async_nats::jetstream::new(client))
}

/// Publishes into a stream of its own on Jiangsu's server, 256 acks outstanding at a time.
async fn raw_jetstream_publish(stack: &Stack, prefix: &str) -> anyhow::Result<f64> {
    let js = jetstream(stack, 0).await?;
    let subject = format!("{prefix}raw.publish");
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: format!("{}_RAW", prefix.to_uppercase()),
        subjects: vec![subject.clone()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    publish_in_flight(&js, &subject, RAW_PUBLISHES, 200).await
}

/// Publishes `count` messages of `size` bytes to `subject`, 256 acks outstanding at a time, and
/// returns the rate.
async fn publish_in_flight(
    js: &async_nats::jetstream::Context,
    subject: &str,
    count: usize,
    size: usize,
) -> anyhow::Result<f64> {
    let payload = bytes::Bytes::from(vec![7u8; size]);
    let started = Instant::now();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    for _ in 0..count {
        if in_flight.len() >= 256 {
            in_flight.next().await.transpose()?;
        }
        in_flight.push(js.publish(subject.to_owned(), payload.clone()).await?.into_future());
    }
    while let Some(ack) = in_flight.next().await {
        ack?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Publishes to a server of its own that fsyncs every write, one at a time and 256 in flight.
async fn raw_fsync_publish(dir: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let mut server = nol_stack::NatsServer::start(
        &dir.join("nats-fsync"),
        nol_stack::nats::NatsOptions {
            name: "fsync".into(),
            sync_always: true,
            tls: Some(nol_stack::nats::NatsTls::standalone(&dir.join("tls-fsync"))?),
            ..Default::default()
        },
    )
    .await?;
    let client = nol_backbone::connect_nats(&server.client_url(), "bench", server.client_tls()).await?;
    let js = async_nats::jetstream::new(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "FSYNC".into(),
        subjects: vec!["fsync.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![7u8; 200]);
    let count = 2_000;
    let started = Instant::now();
    for _ in 0..count {
        js.publish("fsync.one", payload.clone()).await?.await?;
    }
    let one = count as f64 / started.elapsed().as_secs_f64();
    let many = publish_in_flight(&js, "fsync.many", RAW_PUBLISHES / 4, 200).await?;
    server.stop().await?;
    Ok((one, many))
}

/// Transactions of `inserts` single-row INSERTs (1: autocommit) into a table of its own, from
/// `connections` connections.
async fn raw_postgres_commits(connections: usize, inserts: usize) -> anyhow::Result<f64> {
    let admin = postgres::default_admin_url();
    let name = format!("nol_bench_raw_{}", uuid::Uuid::new_v4().simple());
    let url = postgres::create_database(&admin, &name).await?;
    let mut setup = sqlx::PgConnection::connect(&url).await?;
    // The bench's own table in a database of its own: raw (static) SQL the macros cannot check.
    sqlx::query("CREATE TABLE raw_commit (id bigserial PRIMARY KEY, body text NOT NULL)").execute(&mut setup).await?;
    let per_connection = RAW_COMMITS / connections;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = sqlx::PgConnection::connect(&url).await?;
            let insert = "INSERT INTO raw_commit (body) VALUES ('a row of about forty bytes, like a pupil')";
            for _ in 0..per_connection {
                if inserts == 1 {
                    sqlx::query(insert).execute(&mut connection).await?;
                } else {
                    let mut tx = connection.begin().await?;
                    for _ in 0..inserts {
                        sqlx::query(insert).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = (per_connection * connections) as f64 / started.elapsed().as_secs_f64();
    setup.close().await?;
    postgres::drop_database(&admin, &name).await?;
    Ok(rate)
}

/// Registers pupils through gRPC with 8 callers and waits until reporting has counted them all.
async fn project_path(stack: &Stack, callers: usize) -> anyhow::Result<f64> {
    let clients = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench", RegionCode::parse("320102")?, Role::Caseworker, Duration::from_secs(3600))?,
    )?;
    let supervisor = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench", RegionCode::parse("320000")?, Role::Supervisor, Duration::from_secs(3600))?,
    )?;
    clients.ensure_school("3201020001", "南京市玄武区示范小学", "320102").await?;
    let jiangsu = stack.province("320000");
    let registry_pid = jiangsu.registry.pid().context("the registry runs")?;
    let database = postgres::database_name(&jiangsu.database_url).to_owned();
    let statements = profile::StatementProfile::start(&jiangsu.database_url, &database).await;
    let sampler = profile::WaitSampler::start(&jiangsu.database_url, &database).await?;
    let perf = profile::PerfRecord::start("registry-create-pupil", registry_pid);
    let (registry_cpu, postgres_cpu) = (profile::cpu_seconds(registry_pid)?, profile::postgres_cpu_seconds());
    let machine = profile::MachineCpu::now();
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (next, mut registry) = (next.clone(), clients.registry.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= PATH_EVENTS {
                    return Ok::<_, anyhow::Error>(());
                }
                let birth = chrono::NaiveDate::from_ymd_opt(2012, 1, 1).unwrap_or_default()
                    + chrono::Days::new(u64::from(index / 1000));
                let resident_id = nol_pii::ResidentId::from_parts("320102", birth, (index % 1000) as u16)?;
                registry
                    .create_pupil(CreatePupilRequest {
                        pupil: Some(Pupil {
                            full_name: format!("学生{index}"),
                            resident_id: resident_id.expose().to_owned(),
                            hukou_region_code: "320102".into(),
                            school_code: "3201020001".into(),
                            grade: 3,
                            ..Default::default()
                        }),
                    })
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let calls_done = started.elapsed();
    let registry_cpu = profile::cpu_seconds(registry_pid)? - registry_cpu;
    let postgres_cpu = profile::postgres_cpu_seconds() - postgres_cpu;
    let machine = machine.since();
    let waits = sampler.finish().await?;
    let perf = perf.finish().await;
    nol_stack::eventually("reporting to count every event", Duration::from_secs(300), || {
        let mut reporting = supervisor.reporting.clone();
        async move {
            let summary = reporting.get_region_summary(GetRegionSummaryRequest::default()).await?.into_inner();
            Ok((summary.summary.unwrap_or_default().pupils_registered >= i64::from(PATH_EVENTS)).then_some(()))
        }
    })
    .await?;
    let total = started.elapsed();
    // Counted after reporting has caught up: every statement of every event's whole path.
    let statements = match statements {
        Ok(statements) => Ok(statements.finish(u64::from(PATH_EVENTS)).await?),
        Err(why) => Err(why),
    };
    println!(
        "  (gRPC calls committed at {:.0}/s; the last event was counted {:.0} ms after the last call)",
        f64::from(PATH_EVENTS) / calls_done.as_secs_f64(),
        (total - calls_done).as_secs_f64() * 1000.0
    );
    // How many pupils each transaction wrote (`CreatePupil`'s group commit): rows sharing an xmin.
    let mut database = sqlx::PgConnection::connect(&jiangsu.database_url).await?;
    let (pupils, transactions): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT xmin::text) FROM registry.pupil")
            .fetch_one(&mut database)
            .await?;
    database.close().await?;
    println!(
        "  group commit: {pupils} pupils in {transactions} transactions, {:.1} a transaction",
        pupils as f64 / transactions.max(1) as f64
    );
    let per_call = |seconds: f64| seconds * 1000.0 / f64::from(PATH_EVENTS);
    println!(
        "  where a call's time goes: wall {:.2} ms a call with {callers} in flight; CPU a call: registry {:.3} ms, \
         PostgreSQL (all its processes) {:.3} ms",
        per_call(calls_done.as_secs_f64()) * callers as f64,
        per_call(registry_cpu),
        per_call(postgres_cpu),
    );
    print!("  who used the cores while the calls ran:\n{machine}");
    println!("  what the province database's backends were doing (pg_stat_activity, sampled every 2 ms):");
    print!("{waits}");
    match statements {
        Ok(statements) => {
            println!("  the province database's statements over the whole path, per event (pg_stat_statements):");
            print!("{statements}");
        }
        Err(why) => println!("  no statement profile: {why}"),
    }
    if let Some(perf) = perf {
        println!("  perf record of the registry: {} (perf report -i … --no-children)", perf.display());
    }
    Ok(f64::from(PATH_EVENTS) / total.as_secs_f64())
}

/// Publishes from Anhui's server to a subject Jiangsu's stream stores (the same link and permissions
/// as a hand-off acceptance), one at a time, and consumes on Jiangsu; returns (p50, p99) in ms.
async fn raw_cross_province_latency(stack: &Stack, prefix: &str) -> anyhow::Result<(f64, f64)> {
    let anhui = jetstream(stack, 1).await?;
    let jiangsu = jetstream(stack, 0).await?;
    let subject = format!("{prefix}.320000.xp.340000.bench.raw.320102");
    let stream = jiangsu.get_stream(format!("{}_320000", prefix.to_uppercase())).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: subject.clone(),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.stream().max_messages_per_batch(1).messages().await?;
    // Anhui's server answers "no responders" while its link to Jiangsu is being re-established:
    // such a publish is not a sample; it is tried again once the link stores one more, and counted.
    let mut unanswered = 0;
    let mut latencies = Vec::with_capacity(RAW_LATENCY_SAMPLES);
    while latencies.len() < RAW_LATENCY_SAMPLES {
        let sent = Instant::now();
        if !stored(&anhui, &subject).await {
            unanswered += 1;
            anyhow::ensure!(unanswered <= 10, "the link between the provinces keeps failing");
            nol_stack::eventually("the link between the provinces to store a publish", Duration::from_secs(30), || {
                let (anhui, subject) = (anhui.clone(), subject.clone());
                async move { Ok(stored(&anhui, &subject).await.then_some(())) }
            })
            .await?;
            messages.next().await.ok_or_else(|| anyhow::anyhow!("consumer ended"))??;
            continue;
        }
        let message = messages.next().await.ok_or_else(|| anyhow::anyhow!("consumer ended"))??;
        drop(message);
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    if unanswered > 0 {
        println!("  ({unanswered} raw publishes across the link had no responder and were tried again)");
    }
    Ok(percentiles(latencies))
}

/// Publishes one message and awaits its ack: whether the stream stored it.
async fn stored(js: &async_nats::jetstream::Context, subject: &str) -> bool {
    match js.publish(subject.to_owned(), bytes::Bytes::from_static(b"x")).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

/// Hands `HANDOFFS` cases from 320102 to 341221, accepts them one at a time, and reads each
/// latency from the two commits' timestamps (one PostgreSQL server, one clock).
async fn handoff_latency(stack: &Stack) -> anyhow::Result<(f64, f64)> {
    let hour = Duration::from_secs(3600);
    let xuanwu = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench", RegionCode::parse("320102")?, Role::Caseworker, hour)?,
    )?;
    let linquan = Clients::for_province(
        stack.province("340000"),
        &stack.keys.token("bench", RegionCode::parse("341221")?, Role::Caseworker, hour)?,
    )?;
    for case_id in xuanwu.open_cases(usize::from(HANDOFFS), "3201020001", "341221", 1).await? {
        xuanwu
            .transfer
            .clone()
            .request_handoff(RequestHandoffRequest {
                case_id,
                destination_region_code: "341221".into(),
                reason: "bench".into(),
                ..Default::default()
            })
            .await?;
    }
    let incoming = nol_stack::eventually("Anhui to receive every hand-off", Duration::from_secs(120), || {
        let mut transfer = linquan.transfer.clone();
        async move {
            let list = transfer
                .list_handoffs(ListHandoffsRequest {
                    direction: HandoffDirection::Incoming as i32,
                    page_size: 500,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .handoffs;
            Ok((list.len() >= usize::from(HANDOFFS)).then_some(list))
        }
    })
    .await?;
    let origin = nol_runtime::database::connect(&stack.province("320000").database_url, "transfer", 2).await?;
    let destination = nol_runtime::database::connect(&stack.province("340000").database_url, "transfer", 2).await?;
    let staged = [
        ("Anhui transfer", &stack.province("340000").transfer),
        ("Anhui cases", &stack.province("340000").cases),
        ("Jiangsu transfer", &stack.province("320000").transfer),
    ];
    let mut stages_before = Vec::new();
    for (_, process) in staged {
        stages_before.push(backbone_stages(process).await?);
    }
    let anhui = stack.province("340000");
    let statements =
        profile::StatementProfile::start(&anhui.database_url, postgres::database_name(&anhui.database_url)).await;
    let accepting_from = chrono::Utc::now();
    let mut accept_calls = Vec::with_capacity(incoming.len());
    for handoff in &incoming {
        let calling = Instant::now();
        linquan
            .transfer
            .clone()
            .accept_handoff(AcceptHandoffRequest { handoff_id: handoff.handoff_id.clone() })
            .await?;
        accept_calls.push(calling.elapsed().as_secs_f64() * 1000.0);
        let id = uuid::Uuid::parse_str(&handoff.handoff_id)?;
        nol_stack::eventually("the origin to record the accept", Duration::from_secs(30), || {
            let origin = origin.clone();
            async move {
                let state =
                    sqlx::query_scalar!("SELECT state FROM handoff WHERE id = $1 AND direction = 'outgoing'", id)
                        .fetch_one(&origin)
                        .await?;
                // Accepted, or already completed too (the case service marks the case handed over
                // right after): either way the origin recorded the accept (`accepted_at`).
                Ok((state == "accepted" || state == "completed").then_some(()))
            }
        })
        .await?;
    }
    let (call_p50, call_p99) = percentiles(accept_calls);
    println!(
        "  the case worker's AcceptHandoff call, until the case service decided: p50 {call_p50:.2} ms  p99 {call_p99:.2} ms"
    );
    match statements {
        Ok(statements) => {
            let mut statements = statements.finish(u64::from(HANDOFFS)).await?;
            statements.unit = "an acceptance";
            println!(
                "  Anhui's database (its transfer and case services) while the acceptances ran (pg_stat_statements):"
            );
            print!("{statements}");
        }
        Err(why) => println!("  no statement profile: {why}"),
    }
    println!(
        "  the backbone's stages in the services on the way while the acceptances ran (/metrics; count, mean ms):"
    );
    for ((name, process), before) in staged.into_iter().zip(stages_before) {
        let after = backbone_stages(process).await?;
        let line: Vec<String> = after
            .iter()
            .filter_map(|(stage, (count, sum))| {
                let (count_before, sum_before) =
                    before.iter().find(|(known, _)| known == stage).map(|(_, sums)| *sums).unwrap_or_default();
                let count = count - count_before;
                (count > 0.0).then(|| format!("{stage} {count:.0} × {:.2}", (sum - sum_before) * 1000.0 / count))
            })
            .collect();
        println!("    {name}: {}", line.join(", "));
    }
    let accepted_there = sqlx::query!(
        r#"SELECT id, accepted_at AS "accepted_at!" FROM handoff
            WHERE direction = 'incoming' AND accepted_at IS NOT NULL"#
    )
    .fetch_all(&destination)
    .await?;
    let mut latencies = Vec::new();
    let mut windows = Vec::new();
    for incoming in accepted_there {
        let (id, accepted_at) = (incoming.id, incoming.accepted_at);
        let recorded = sqlx::query_scalar!(
            r#"SELECT accepted_at AS "accepted_at!" FROM handoff WHERE id = $1 AND direction = 'outgoing'"#,
            id
        )
        .fetch_one(&origin)
        .await?;
        latencies.push((recorded - accepted_at).num_microseconds().unwrap_or_default() as f64 / 1000.0);
        windows.push((accepted_at, recorded));
    }
    handoff_breakdown(&origin, &destination, accepting_from, windows).await?;
    Ok(percentiles(latencies))
}

/// The relay's and the consumer's stage histograms of one service from its `/metrics`, as
/// "relay claim" → (count, sum in seconds), in the order the stages happen.
async fn backbone_stages(process: &nol_stack::process::ServiceProcess) -> anyhow::Result<Vec<(String, (f64, f64))>> {
    const ORDER: [&str; 9] = ["woken", "claim", "publish", "mark", "waited", "begin", "apply", "commit", "ack"];
    let text = reqwest::get(format!("http://{}/metrics", process.metrics_addr)).await?.text().await?;
    let mut stages: std::collections::BTreeMap<(usize, String), (f64, f64)> = Default::default();
    for line in text.lines() {
        for (part, prefix) in [("relay", "nol_relay_stage_seconds_"), ("consumer", "nol_consumer_stage_seconds_")] {
            let Some(rest) = line.strip_prefix(prefix) else { continue };
            let (kind, rest) = rest.split_once('{').unwrap_or_default();
            let Some(stage) = rest.split("stage=\"").nth(1).and_then(|tail| tail.split('"').next()) else { continue };
            let value: f64 = line.rsplit(' ').next().unwrap_or_default().parse().unwrap_or_default();
            let position = ORDER.iter().position(|known| *known == stage).unwrap_or(ORDER.len());
            let entry = stages.entry((position, format!("{part} {stage}"))).or_default();
            match kind {
                "count" => entry.0 = value,
                "sum" => entry.1 = value,
                _ => {}
            }
        }
    }
    Ok(stages.into_iter().map(|((_, name), sums)| (name, sums)).collect())
}

/// Where an acceptance's time goes on its way to the origin, from the timestamps the backbone
/// keeps (one clock: both provinces' databases are on this machine's PostgreSQL). The accept's
/// call has Anhui's case service open the case at once (`TakeInHandoff`, its event row written in
/// that transaction), records the answer and writes the answer to the origin; one hop through
/// outbox, relay, JetStream and inbox takes it to Jiangsu's transfer service. The accept's own
/// event to the case service and the case service's event back still travel, off the way, and are
/// listed with the hops. For each hop: the event's row written → the relay has published it
/// (`sent_at`: commit, relay wake-up, claim, publish and its ack) → the consumer's inbox row
/// (`received_at`: delivery, fetch, and the consumer's transaction up to its inbox write).
///
/// The hand-offs were accepted one at a time, each after the last was recorded at the origin, so
/// an event belongs to the hand-off whose window (accepted at the destination → recorded at the
/// origin) holds its row's time; that gives each acceptance's whole chain, the consumers' own work
/// between hops included.
async fn handoff_breakdown(
    origin: &sqlx::PgPool,
    destination: &sqlx::PgPool,
    since: chrono::DateTime<chrono::Utc>,
    mut windows: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
) -> anyhow::Result<()> {
    type Sent = (uuid::Uuid, String, String, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>);
    type Received = (uuid::Uuid, String, chrono::DateTime<chrono::Utc>);
    // The bench's own reading of the backbone's tables in two schemas: static SQL the macros
    // (which check one schema's queries) are not given.
    let sent: Vec<Sent> = sqlx::query_as(
        "SELECT id, 'transfer', event_type, created_at, sent_at FROM transfer.outbox WHERE created_at >= $1
         UNION ALL
         SELECT id, 'cases', event_type, created_at, sent_at FROM cases.outbox WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_all(destination)
    .await?;
    let received_query = "SELECT event_id, 'Anhui transfer', received_at FROM transfer.inbox WHERE received_at >= $1
         UNION ALL
         SELECT event_id, 'Anhui cases', received_at FROM cases.inbox WHERE received_at >= $1";
    let mut received: Vec<Received> = sqlx::query_as(received_query).bind(since).fetch_all(destination).await?;
    let from_origin: Vec<Received> =
        sqlx::query_as("SELECT event_id, 'Jiangsu transfer', received_at FROM transfer.inbox WHERE received_at >= $1")
            .bind(since)
            .fetch_all(origin)
            .await?;
    received.extend(from_origin);
    let mut by_event: std::collections::HashMap<uuid::Uuid, Vec<(String, chrono::DateTime<chrono::Utc>)>> =
        std::collections::HashMap::new();
    for (event, consumer, at) in received {
        by_event.entry(event).or_default().push((consumer, at));
    }
    let ms = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        (to - from).num_microseconds().unwrap_or_default() as f64 / 1000.0
    };
    let mut hops: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = std::collections::BTreeMap::new();
    // Every hop's (label, row written, published, consumer's inbox), in time order.
    let mut events = Vec::new();
    for (event, schema, event_type, created_at, sent_at) in sent {
        let Some(sent_at) = sent_at else { continue };
        for (consumer, at) in by_event.get(&event).into_iter().flatten() {
            let label = format!("Anhui {schema} → {consumer}: {event_type}");
            let hop = hops.entry(label.clone()).or_default();
            hop.0.push(ms(created_at, sent_at));
            hop.1.push(ms(sent_at, *at));
            events.push((label, created_at, sent_at, *at));
        }
    }
    events.sort_by_key(|event| event.1);
    windows.sort();
    // Each acceptance's chain: accepted → the case service's row (the case opened by the accept's
    // call) → the answer to the origin written / published / in Jiangsu's inbox → recorded at the
    // origin.
    let chain = [
        "Anhui cases → Anhui transfer: cases.case_taken_in",
        "Anhui transfer → Jiangsu transfer: transfer.handoff_accepted",
    ];
    let segment_names = [
        "the accept's transaction and commit, its TakeInHandoff call: state set → the case service's event row",
        "the case service commits; Anhui transfer records it, answers the origin: → the answer's row",
        "the hop's relay: across the province link",
        "the hop's delivery to Jiangsu transfer",
        "Jiangsu transfer: inbox row → accepted_at (negative: written first)",
    ];
    let mut segments: Vec<Vec<f64>> = vec![Vec::new(); segment_names.len()];
    let mut totals = Vec::new();
    for (accepted, recorded) in &windows {
        let found: Vec<_> = chain
            .iter()
            .filter_map(|name| {
                events.iter().find(|(label, created, _, _)| label == name && created >= accepted && created <= recorded)
            })
            .collect();
        let [opened, answer] = found.as_slice() else { continue };
        let points = [*accepted, opened.1, answer.1, answer.2, answer.3, *recorded];
        for (index, pair) in points.windows(2).enumerate() {
            segments[index].push(ms(pair[0], pair[1]));
        }
        totals.push(ms(*accepted, *recorded));
    }
    println!(
        "  where an acceptance's time goes, hop by hop (p50 / p99 ms; row written → published → consumer's inbox):"
    );
    for (hop, (relay, delivery)) in hops {
        let count = relay.len();
        let ((relay_p50, relay_p99), (delivery_p50, delivery_p99)) = (percentiles(relay), percentiles(delivery));
        println!(
            "    {hop} ({count}): relay {relay_p50:.2} / {relay_p99:.2}, delivery and inbox {delivery_p50:.2} / {delivery_p99:.2}"
        );
    }
    if totals.is_empty() {
        println!("    (no acceptance's whole chain was found)");
        return Ok(());
    }
    let (total_p50, total_p99) = percentiles(totals.clone());
    println!(
        "  an acceptance's chain, segment by segment ({} acceptances; p50 / p99 / mean ms, mean share of the whole):",
        totals.len()
    );
    let total_mean = totals.iter().sum::<f64>() / totals.len() as f64;
    for (name, samples) in segment_names.iter().zip(segments) {
        let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
        let (p50, p99) = percentiles(samples);
        println!("    {p50:>6.2} / {p99:>6.2} / {mean:>6.2}  {:>5.1} %  {name}", 100.0 * mean / total_mean);
    }
    println!(
        "    {total_p50:>6.2} / {total_p99:>6.2} / {total_mean:>6.2}  100.0 %  the whole, accepted → recorded at the origin"
    );
    Ok(())
}

/// What the token check costs a call: verified in full (a token not seen before: its signature
/// and claims) and answered from the verified tokens kept (a caller's next call).
fn token_check() -> anyhow::Result<()> {
    const TOKENS: usize = 2_000;
    let (private_pem, public_pem) = nol_auth::generate_signing_key_pem()?;
    let issuer = nol_auth::TokenIssuer::from_pem(private_pem.as_bytes())?;
    let verifier = nol_auth::TokenVerifier::from_pem(public_pem.as_bytes())?;
    let region = RegionCode::parse("320102")?;
    let tokens = (0..TOKENS)
        .map(|n| issuer.issue(&format!("bench{n}"), region, Role::System, Duration::from_secs(3600)))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for token in &tokens {
        verifier.verify(token)?;
    }
    let in_full = started.elapsed().as_secs_f64() * 1e6 / TOKENS as f64;
    let started = Instant::now();
    for token in &tokens {
        verifier.verify(token)?;
    }
    let kept = started.elapsed().as_secs_f64() * 1e6 / TOKENS as f64;
    println!(
        "  the token check a call: verified in full {in_full:.1} µs, a token seen before {kept:.1} µs ({:.0}× less)",
        in_full / kept
    );
    Ok(())
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |fraction: f64| samples[((samples.len() as f64 - 1.0) * fraction).round() as usize];
    (at(0.50), at(0.99))
}

/// Section 5: the same work with TLS and without, in this run.
async fn tls_cost(dir: &std::path::Path) -> anyhow::Result<()> {
    use nol_stack::nats::{NatsOptions, NatsServer, NatsTls};
    let tls = NatsTls::standalone(&dir.join("tls-cost"))?;
    let mut with = NatsServer::start(
        &dir.join("nats-tls"),
        NatsOptions { name: "tls".into(), tls: Some(tls.clone()), ..Default::default() },
    )
    .await?;
    let mut without = NatsServer::start(
        &dir.join("nats-plain"),
        NatsOptions { name: "plain".into(), plaintext_to_measure_tls: true, ..Default::default() },
    )
    .await?;
    let secure = nol_backbone::connect_nats(&with.client_url(), "bench-tls", with.client_tls()).await?;
    let plain = async_nats::connect(format!("nats://127.0.0.1:{}", without.client_port)).await?;
    let mut rates = Vec::new();
    for client in [plain, secure] {
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "TLSCOST".into(),
            subjects: vec!["cost.>".into()],
            ..Default::default()
        })
        .await?;
        rates.push(publish_in_flight(&js, "cost.x", RAW_PUBLISHES, 300).await?);
    }
    println!(
        "TLS cost, raw JetStream publish, 256 in flight: without TLS {:>8.0} msg/s, with TLS {:>8.0} msg/s: {:.2} of plaintext",
        rates[0],
        rates[1],
        rates[1] / rates[0]
    );
    with.stop().await?;
    without.stop().await?;

    // gRPC: grpc.health.v1 Check on an in-process server, with the deployment's kind of TLS and without.
    let identity = tls.server.load()?;
    let client_tls = tls.client.load()?.client();
    let mut figures = Vec::new();
    for secure in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (_reporter, health) = tonic_health::server::health_reporter();
        let mut builder = tonic::transport::Server::builder();
        if secure {
            builder = builder.tls_config(identity.grpc_server())?;
        }
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|connection| {
            if let Ok(stream) = &connection {
                let _ = stream.set_nodelay(true);
            }
            connection
        });
        let server = tokio::spawn(builder.add_service(health).serve_with_incoming(incoming));
        let channel = if secure {
            client_tls.endpoint(&format!("https://{addr}"))?.tcp_nodelay(true).connect().await?
        } else {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true).connect().await?
        };
        let client = tonic_health::pb::health_client::HealthClient::new(channel);
        let check = || {
            let mut client = client.clone();
            async move { client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.map(|_| ()) }
        };
        for _ in 0..200 {
            check().await?;
        }
        let mut samples = Vec::new();
        for _ in 0..2_000 {
            let started = Instant::now();
            check().await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let (p50, p99) = percentiles(samples);
        let calls = 8_000;
        let started = Instant::now();
        futures::stream::iter(0..calls).map(|_| check()).buffer_unordered(8).collect::<Vec<_>>().await;
        let rate = calls as f64 / started.elapsed().as_secs_f64();
        figures.push((p50, p99, rate));
        server.abort();
    }
    let [(plain_p50, plain_p99, plain_rate), (tls_p50, tls_p99, tls_rate)] = [figures[0], figures[1]];
    println!(
        "TLS cost, gRPC round trip, 1 caller:   without TLS p50 {plain_p50:.3} ms p99 {plain_p99:.3} ms, with TLS p50 {tls_p50:.3} ms p99 {tls_p99:.3} ms: p50 {:.2}×, p99 {:.2}×",
        tls_p50 / plain_p50,
        tls_p99 / plain_p99
    );
    println!(
        "TLS cost, gRPC round trips, 8 callers: without TLS {plain_rate:>8.0} calls/s, with TLS {tls_rate:>8.0} calls/s: {:.2} of plaintext",
        tls_rate / plain_rate
    );
    Ok(())
}
