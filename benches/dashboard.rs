//! `cargo bench --bench dashboard`: the dashboard's reads at a province's size, against bare SQL
//! of the same figures in the same run, and how fast an event reaches an open dashboard.
//!
//! The reporting service's projection of a province of 1,000,000 pupils with 100,000 cases over a
//! year: for each of 江苏's county-level units, a year of daily counts (cases opened, returned,
//! relapsed, persuasion attempts, suspects, hand-offs, supervision items, and the balances by
//! status and cause they move), written straight into `reporting.daily_count` (setup, not
//! measured). Measured over HTTP with a signed-in session:
//! - the province's overview (headline, cities, six-period trend) and one county's drill-down,
//!   cold (the first call) and warm (p50/p99 of 200 calls), against the bare `GROUP BY` of the
//!   bi-monthly rollup the figures are cut from (and, for scale, the same from the daily rows);
//! - event → visible: a case opened through the API until its event arrives on the province's open
//!   event stream (p50/p99 of 100).
//!
//! `NOL_BENCH_DIVIDE=10` makes the projection ten times smaller.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nol_auth::Role;
use nol_proto::v1::{CreatePupilRequest, DropoutCause, OpenCaseRequest, Pupil};
use nol_region::{RegionCode, RegionTree};
use nol_stack::{Clients, Stack, StackSettings, postgres};

const CALLS: usize = 200;
/// Cases whose synthetic events (opened, persuasion, returned, suspect recorded and resolved: five
/// each) are published for the rebuild rate.
const REBUILD_CASES: usize = 20_000;
const EVENTS: usize = 100;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn percentile(samples: &mut [Duration], percentile: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * percentile).round() as usize;
    samples[index]
}

/// One year of daily counts per county, about `cases_per_year` cases in the province.
async fn seed(pool: &sqlx::PgPool, counties: &[String], cases_per_year: i64, pupils: i64) -> anyhow::Result<()> {
    let per_county_day = (cases_per_year as f64 / counties.len() as f64 / 365.0).max(0.05);
    let mut tx = pool.begin().await?;
    // Flows: a few events of each kind per county and day (rounded from a per-day rate).
    sqlx::query(
        "INSERT INTO daily_count (region, metric, day, value)
         SELECT r.code, m.metric, d.day, greatest(1, round($2 * m.share * (1 + (hashtext(r.code || m.metric || d.day) % 5) / 10.0)))::int8
           FROM unnest($1::text[]) AS r (code)
          CROSS JOIN generate_series(current_date - 364, current_date, interval '1 day') AS d (day)
          CROSS JOIN (VALUES ('cases_opened', 1.0), ('cases_returned', 0.6), ('cases_relapsed', 0.1),
                             ('persuasion_attempts', 2.0), ('joint_persuasion_attempts', 0.5),
                             ('suspects_recorded', 1.5), ('suspects_confirmed', 1.0), ('suspects_closed', 0.5),
                             ('supervision_raised', 0.2), ('supervision_closed', 0.2), ('handoffs_out', 0.1),
                             ('handoffs_in', 0.1), ('cases_closed', 0.3), ('pupils_registered', 3.0),
                             ('case.open', 0.4), ('case.returned', 0.1), ('case.monitoring', 0.1),
                             ('cause.family_poverty', 0.2), ('cause.gone_to_work', 0.2),
                             ('cause.learning_difficulty', 0.2)) AS m (metric, share)
          WHERE $2 * m.share >= 0.05 OR hashtext(r.code || m.metric || d.day) % 4 = 0",
    )
    .bind(counties)
    .bind(per_county_day)
    .execute(&mut *tx)
    .await?;
    // The enrolled pupils, all on the first day.
    sqlx::query(
        "INSERT INTO daily_count (region, metric, day, value)
         SELECT code, 'pupil.enrolled', current_date - 365, $2::int8 / array_length($1::text[], 1)
           FROM unnest($1::text[]) AS code",
    )
    .bind(counties)
    .bind(pupils)
    .execute(&mut *tx)
    .await?;
    // The bi-monthly rollup the consumer keeps beside the daily counts.
    sqlx::query(
        "INSERT INTO period_count (region, metric, period, value)
         SELECT region, metric, extract(year FROM day)::int || '-B' || ((extract(month FROM day)::int - 1) / 2 + 1), sum(value)
           FROM daily_count GROUP BY 1, 2, 3",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("VACUUM ANALYZE daily_count").execute(pool).await?;
    sqlx::query("VACUUM ANALYZE period_count").execute(pool).await?;
    Ok(())
}

/// `calls` sequential GETs of `path`: the first (cold) and the rest's p50/p99.
async fn measure(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    calls: usize,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let mut samples = Vec::with_capacity(calls);
    let mut first = None;
    for _ in 0..=calls {
        let started = Instant::now();
        let response = http.get(url).header("cookie", cookie).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
        response.bytes().await?;
        let took = started.elapsed();
        if first.is_none() {
            first = Some(took);
        } else {
            samples.push(took);
        }
    }
    Ok((first.unwrap_or_default(), percentile(&mut samples, 0.5), percentile(&mut samples, 0.99)))
}

/// The bare SQL of a period's figures under `prefix`, `calls` times: p50/p99. From the bi-monthly
/// rollup (the same figures the service reads) or from the daily rows.
async fn bare(pool: &sqlx::PgPool, prefix: &str, calls: usize, daily: bool) -> anyhow::Result<(Duration, Duration)> {
    let period = nol_reporting::periods::Period::containing(nol_runtime::clock::china_date(chrono::Utc::now()));
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let rows = if daily {
            sqlx::query(
                "SELECT region, metric, coalesce(sum(value) FILTER (WHERE day >= $2), 0)::int8, sum(value)::int8
                   FROM daily_count WHERE region LIKE $1 || '%' AND day <= $3 GROUP BY region, metric",
            )
            .bind(prefix)
            .bind(period.start())
            .bind(period.end())
            .fetch_all(pool)
            .await?
        } else {
            sqlx::query(
                "SELECT region, metric, coalesce(sum(value) FILTER (WHERE period = $2), 0)::int8, sum(value)::int8
                   FROM period_count WHERE region LIKE $1 || '%' AND period <= $2 GROUP BY region, metric",
            )
            .bind(prefix)
            .bind(period.code())
            .fetch_all(pool)
            .await?
        };
        anyhow::ensure!(!rows.is_empty(), "the bare query found nothing");
        samples.push(started.elapsed());
    }
    Ok((percentile(&mut samples, 0.5), percentile(&mut samples, 0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let divide: i64 = std::env::var("NOL_BENCH_DIVIDE").ok().and_then(|text| text.parse().ok()).unwrap_or(1).max(1);
    let (cases, pupils) = (100_000 / divide, 1_000_000 / divide);
    let province = RegionCode::parse("320000")?;
    let dir = tempfile::tempdir()?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &format!("db{id}"));
    let mut stack = Stack::start(settings).await?;
    println!("Not One Less dashboard benchmark ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!();
    let database_url = stack.province("320000").database_url.clone();
    let pool = nol_runtime::database::connect(&database_url, "reporting", 4).await?;
    let counties: Vec<String> = RegionTree::global()
        .nodes()
        .filter(|node| {
            node.county_level && province.contains(&node.code) && node.code != province && node.name != "市辖区"
        })
        .map(|node| node.code.to_string())
        .collect();
    let started = Instant::now();
    seed(&pool, &counties, cases, pupils).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_count").fetch_one(&pool).await?;
    println!(
        "synthetic projection: a year of daily counts for {} counties ({rows} rows; {cases} cases, {pupils} pupils); written in {:.1}s",
        counties.len(),
        started.elapsed().as_secs_f64()
    );

    let web = stack.province("320000").reporting.web_addr.ok_or_else(|| anyhow::anyhow!("no dashboard"))?;
    let base = format!("https://{web}");
    let token = stack.keys.token("bench-supervisor", province, Role::Supervisor, Duration::from_secs(3600))?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(stack.province("320000").client_tls.rustls_client()?)
        .https_only(true)
        .build()?;
    let signed = http.post(format!("{base}/api/session")).json(&serde_json::json!({"token": token})).send().await?;
    let cookie = signed.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or_default().to_owned();

    println!();
    println!("{:<44} {:>9} {:>9} {:>9} {:>11}", "read", "cold ms", "p50 ms", "p99 ms", "p99 / bare");
    let (daily_province_p50, daily_province_p99) = bare(&pool, "32", CALLS / 4, true).await?;
    let (bare_province_p50, bare_province_p99) = bare(&pool, "32", CALLS, false).await?;
    let (bare_county_p50, bare_county_p99) = bare(&pool, "320102", CALLS, false).await?;
    let overview = measure(&http, &format!("{base}/api/overview?region=320000"), &cookie, CALLS).await?;
    let county = measure(&http, &format!("{base}/api/overview?region=320102"), &cookie, CALLS).await?;
    let line = |name: &str, cold: Option<Duration>, p50: Duration, p99: Duration, bare_p99: Option<Duration>| {
        println!(
            "{name:<44} {:>9} {:>9.2} {:>9.2} {:>11}",
            cold.map(|cold| format!("{:.2}", ms(cold))).unwrap_or_default(),
            ms(p50),
            ms(p99),
            bare_p99.map(|bare| format!("{:.2}", p99.as_secs_f64() / bare.as_secs_f64())).unwrap_or_default()
        );
    };
    line("bare SQL: the same from the daily rows, province", None, daily_province_p50, daily_province_p99, None);
    line("bare SQL: the period's GROUP BY, province", None, bare_province_p50, bare_province_p99, None);
    line("GET /api/overview, province (HTTP)", Some(overview.0), overview.1, overview.2, Some(bare_province_p99));
    line("bare SQL: the period's GROUP BY, one county", None, bare_county_p50, bare_county_p99, None);
    line("GET /api/overview, county 320102 (HTTP)", Some(county.0), county.1, county.2, Some(bare_county_p99));

    // Event → visible: a case opened through the API until its event is on the open stream.
    let caseworker = stack.keys.token(
        "bench-caseworker",
        RegionCode::parse("320102")?,
        Role::Caseworker,
        Duration::from_secs(3600),
    )?;
    let system = stack.keys.token("bench-system", province, Role::System, Duration::from_secs(3600))?;
    Clients::for_province(stack.province("320000"), &system)?
        .ensure_school("3201020001", "南京市玄武区示范小学", "320102")
        .await?;
    let clients = Clients::for_province(stack.province("320000"), &caseworker)?;
    let mut events = http.get(format!("{base}/api/events")).header("cookie", &cookie).send().await?.bytes_stream();
    let mut buffer = String::new();
    let mut samples = Vec::with_capacity(EVENTS);
    for number in 0..EVENTS {
        let resident_id = nol_pii::ResidentId::from_parts(
            "320102",
            chrono::NaiveDate::from_ymd_opt(2013, 1 + (number % 12) as u32, 1 + (number % 28) as u32)
                .unwrap_or_default(),
            number as u16,
        )?;
        let pupil = clients
            .registry
            .clone()
            .create_pupil(CreatePupilRequest {
                pupil: Some(Pupil {
                    full_name: format!("测试{number}"),
                    resident_id: resident_id.expose().to_owned(),
                    hukou_region_code: "320102".into(),
                    school_code: "3201020001".into(),
                    grade: 5,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .pupil
            .unwrap_or_default();
        let started = Instant::now();
        clients
            .cases
            .clone()
            .open_case(OpenCaseRequest {
                pupil_id: pupil.pupil_id,
                causes: vec![DropoutCause::Other as i32],
                notes: String::new(),
            })
            .await?;
        'wait: loop {
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if event.contains("case_opened") {
                    break 'wait;
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), events.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the event stream ended"))??;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
        samples.push(started.elapsed());
    }
    let (p50, p99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
    line("case opened (gRPC) → on the open event stream", None, p50, p99, None);
    println!();
    println!("Aims: overview p99 ≤ 50 ms warm and ≤ 2× the bare SQL; event → visible p99 ≤ 1 s.");

    drop(events);

    // The rebuild rate: the reporting consumer replaying the province stream into an empty
    // database, against raw JetStream consumption of the same stream (same filters, same batch
    // size, every message acked) in the same run.
    let rebuild = rebuild_rate(&stack, &format!("db{id}"), &counties, REBUILD_CASES / divide as usize).await?;
    println!();
    println!("{:<44} {:>9} {:>12} {:>11}", "consuming the province stream", "events", "events/s", "/ raw");
    println!("{:<44} {:>9} {:>12.0} {:>11}", "raw JetStream pull consumer (ack each)", rebuild.events, rebuild.raw, "");
    println!(
        "{:<44} {:>9} {:>12.0} {:>11.2}",
        "reporting rebuild into an empty database",
        rebuild.events,
        rebuild.rebuilt,
        rebuild.rebuilt / rebuild.raw
    );
    println!("Aim: rebuild ≥ 0.5 of raw consumption.");

    stack.stop().await?;
    for code in ["320000", "340000"] {
        postgres::drop_database(&postgres::default_admin_url(), &format!("nol_db{id}_{code}")).await?;
    }
    Ok(())
}

struct Rebuild {
    events: usize,
    raw: f64,
    rebuilt: f64,
}

/// Publishes five events per case straight into the province stream (as the relays would), waits
/// for the live reporting service to count them, then measures a raw pull consumer and a fresh
/// reporting process (empty database, new durable consumer) over the whole stream.
async fn rebuild_rate(stack: &Stack, prefix: &str, counties: &[String], cases: usize) -> anyhow::Result<Rebuild> {
    use nol_events::{
        CASE_OPENED, CASE_STATUS_CHANGED, EventHeader, EventType, PERSUASION_RECORDED, SUSPECT_RECORDED,
        SUSPECT_RESOLVED, SubjectScheme,
    };
    use nol_proto::v1::{
        CaseOpened, CaseSource, CaseStatus, CaseStatusChanged, PersuasionRecorded, SuspectRecorded, SuspectResolved,
    };
    use prost::Message;

    let province = RegionCode::parse("320000")?;
    let scheme = SubjectScheme::new(prefix)?;
    let client =
        nol_backbone::connect_nats(&stack.nats[0].client_url(), "bench-rebuild", stack.nats[0].client_tls()).await?;
    let jetstream = async_nats::jetstream::new(client);
    let started = Instant::now();
    let mut acks = Vec::new();
    let mut published = 0usize;
    for number in 0..cases {
        let county = RegionCode::parse(&counties[number % counties.len()])?;
        let case_id = uuid::Uuid::now_v7().to_string();
        let suspect_id = uuid::Uuid::now_v7().to_string();
        let region_code = county.to_string();
        let suspect = SuspectRecorded {
            suspect_id: suspect_id.clone(),
            region_code: region_code.clone(),
            origin: "cross_check".into(),
        };
        let resolved = SuspectResolved {
            suspect_id: suspect_id.clone(),
            region_code: region_code.clone(),
            outcome: "confirmed".into(),
            case_id: case_id.clone(),
        };
        let opened = CaseOpened {
            case_id: case_id.clone(),
            region_code: region_code.clone(),
            causes: vec![DropoutCause::GoneToWork as i32],
            source: CaseSource::Local as i32,
            ..Default::default()
        };
        let attempt = PersuasionRecorded {
            case_id: case_id.clone(),
            region_code: region_code.clone(),
            attempt_id: uuid::Uuid::now_v7().to_string(),
            attempt_date: "2026-11-02".into(),
            joint: number % 3 == 0,
            outcome: 1,
        };
        let returned = CaseStatusChanged {
            case_id: case_id.clone(),
            region_code: region_code.clone(),
            from_status: CaseStatus::Open as i32,
            to_status: CaseStatus::Returned as i32,
            relapse: false,
            reason: String::new(),
        };
        let events: [(EventType, &str, Vec<u8>); 5] = [
            (SUSPECT_RECORDED, "suspect", suspect.encode_to_vec()),
            (SUSPECT_RESOLVED, "suspect", resolved.encode_to_vec()),
            (CASE_OPENED, "case", opened.encode_to_vec()),
            (PERSUASION_RECORDED, "case", attempt.encode_to_vec()),
            (CASE_STATUS_CHANGED, "case", returned.encode_to_vec()),
        ];
        for (sequence, (event_type, aggregate_type, payload)) in events.into_iter().enumerate() {
            let aggregate_id = if aggregate_type == "case" { case_id.as_str() } else { suspect_id.as_str() };
            let header = EventHeader {
                event_type,
                source_region: county,
                aggregate_type,
                aggregate_id,
                aggregate_sequence: sequence as u64 + 1,
                actor: "bench",
            };
            let mut envelope = nol_events::envelope(header, &(), chrono::Utc::now(), Default::default());
            envelope.payload = payload;
            let message = async_nats::jetstream::message::PublishMessage::build()
                .message_id(envelope.event_id.clone())
                .payload(envelope.encode_to_vec().into());
            acks.push(jetstream.send_publish(scheme.local(event_type, &county), message).await?);
            published += 1;
        }
        if acks.len() >= 2_000 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    println!("\nrebuild: {published} events published into the stream in {:.1}s", started.elapsed().as_secs_f64());

    // The live service counts them (and the benchmark's earlier events) before anything is timed.
    let live_url = stack.province("320000").database_url.clone();
    let live = nol_runtime::database::connect(&live_url, "reporting", 2).await?;
    let inbox = |pool: sqlx::PgPool, consumer: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE consumer = $1")
            .bind(consumer)
            .fetch_one(&pool)
            .await
    };
    let live_consumer: String =
        sqlx::query_scalar("SELECT consumer FROM inbox GROUP BY consumer ORDER BY count(*) DESC LIMIT 1")
            .fetch_one(&live)
            .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut stable = (0, 0);
    loop {
        let counted = inbox(live.clone(), live_consumer.clone()).await?;
        stable = if counted == stable.0 { (counted, stable.1 + 1) } else { (counted, 0) };
        if counted as usize >= published && stable.1 >= 10 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the live reporting service counted {counted} of {published}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = stable.0 as usize;
    live.close().await;

    // Raw: a pull consumer with the reporting service's filters, batch size and acks.
    let filters = nol_reporting::filter_subjects(&scheme, &province);
    let stream = jetstream.get_stream(scheme.stream_name(&province)).await?;
    let raw_consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("bench_raw".into()),
            filter_subjects: filters,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = raw_consumer.stream().max_messages_per_batch(256).messages().await?;
    let mut consumed = 0usize;
    while consumed < total {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the raw consumer's messages ended"))?
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        message.ack().await.map_err(|error| anyhow::anyhow!("{error}"))?;
        consumed += 1;
    }
    let raw = consumed as f64 / started.elapsed().as_secs_f64();
    drop(messages);

    // Rebuild: a reporting process on an empty database with a new durable consumer.
    let admin = postgres::default_admin_url();
    let name = format!("nol_{prefix}_rebuild");
    let url = postgres::create_database(&admin, &name).await?;
    // Provisioned as the stack's databases are: the process connects as the reporting role.
    let roles = nol_runtime::provision::provision(&url, &Default::default()).await?.roles;
    let rebuilt_database = nol_runtime::database::connect(&url, "reporting", 2).await?;
    let url = postgres::role_url(&url, &roles.service("reporting"));
    let mut env = std::collections::BTreeMap::from([
        ("NOL_PROVINCE".to_owned(), "320000".to_owned()),
        ("NOL_DATABASE_URL".to_owned(), url),
        ("NOL_NATS_URL".to_owned(), stack.nats[0].client_url()),
        ("NOL_SUBJECT_PREFIX".to_owned(), prefix.to_owned()),
        ("NOL_KEYS_DIR".to_owned(), stack.keys.service_dir(&province, "reporting").display().to_string()),
        ("NOL_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("NOL_CONSUMER_NAME".to_owned(), "reporting_rebuild".to_owned()),
    ]);
    env.extend(stack.keys.service_tls(&province, "reporting")?.env().map(|(name, value)| (name.to_owned(), value)));
    let log = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut process = nol_stack::process::ServiceProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_nol")),
        "reporting-rebuild",
        "reporting",
        env,
        nol_stack::process::LogTo::File(log.path().to_path_buf()),
    )
    .await?;
    let ready = started.elapsed();
    let commits = |pool: sqlx::PgPool, name: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&pool)
            .await
    };
    let cpu = |pid: Option<u32>| -> f64 {
        // utime + stime of the process, in seconds (clock ticks of 1/100 s).
        pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|stat| {
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
            })
            .unwrap_or(f64::NAN)
    };
    let commits_before = commits(rebuilt_database.clone(), name.clone()).await?;
    let cpu_before = cpu(process.pid());
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let counted = inbox(rebuilt_database.clone(), "reporting_rebuild".to_owned()).await? as usize;
        if counted >= total {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the rebuild counted {counted} of {total}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed() - ready;
    let transactions = commits(rebuilt_database.clone(), name.clone()).await? - commits_before;
    let cpu_used = cpu(process.pid()) - cpu_before;
    println!(
        "rebuild: {transactions} transactions committed in its database (≈ {:.0} events each; the counts include this poll's); the process used {cpu_used:.1}s of CPU",
        total as f64 / transactions.max(1) as f64
    );
    println!(
        "rebuild: the process was ready in {:.2}s (not counted); it replayed {total} events in {:.2}s",
        ready.as_secs_f64(),
        took.as_secs_f64()
    );
    let rebuilt = total as f64 / took.as_secs_f64();
    process.stop().await?;
    rebuilt_database.close().await;
    postgres::drop_database(&admin, &name).await?;
    Ok(Rebuild { events: total, raw, rebuilt })
}
