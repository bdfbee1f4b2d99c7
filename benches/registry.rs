//! `cargo bench --bench registry`: the registry at the size of a large province, against bare
//! PostgreSQL measured in the same run.
//!
//! A synthetic province (`nol gen`): 1,000,000 pupils in 5,000 schools across 100 counties, a
//! household register of 1,050,000 children with 2,000 planted out-of-school children, 500
//! poverty-flag mismatches and 300 bad numbers. Measured: raw `COPY` of the same pupil rows
//! (encrypted beforehand) against the project's import through gRPC; the cross-check against the
//! bare SQL anti-join it is built around; recall and precision against what was planted; the
//! registry process's peak memory; the disk the province's database takes.
//! `NOL_BENCH_DIVIDE=10` makes everything ten times smaller, `NOL_BENCH_SCALE=10` ten times
//! larger: issue 13's province of 10,000,000 pupils in 50,000 schools (still 100 counties) with a
//! household register of 10,500,000. `NOL_BENCH_KEEP=1` keeps the province's database for
//! `psql` (and prints its name).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nol_auth::Role;
use nol_import::{ImportTarget, import_file};
use nol_proto::v1::{RunCrossCheckRequest, TextEncoding};
use nol_region::RegionCode;
use nol_runtime::ProvinceKeys;
use nol_runtime::keys::DataKeys;
use nol_stack::synth::{SynthSpec, generate};
use nol_stack::{Clients, Stack, StackSettings, postgres};
use sqlx::Connection;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let divide: usize = std::env::var("NOL_BENCH_DIVIDE").ok().and_then(|text| text.parse().ok()).unwrap_or(1);
    let province = RegionCode::parse("320000")?;
    let scale: usize = std::env::var("NOL_BENCH_SCALE").ok().and_then(|text| text.parse().ok()).unwrap_or(1);
    let spec = SynthSpec::sized(province, divide, scale);
    let dir = tempfile::tempdir()?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &format!("rb{id}"));
    let mut stack = Stack::start(settings).await?;
    println!("Not One Less registry benchmark ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!();
    let started = Instant::now();
    let synthetic = generate(&spec, &dir.path().join("synth"))?;
    println!(
        "synthetic province: {} pupils in {} schools across {} counties; household register {}; written in {:.1}s",
        spec.pupils,
        spec.schools,
        spec.counties,
        spec.household,
        started.elapsed().as_secs_f64()
    );
    let clients = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench", province, Role::System, Duration::from_secs(4 * 3600))?,
    )?;
    let keys = ProvinceKeys::load(&stack.keys.service_dir(&province, "registry"))?.data()?;
    let database_url = stack.province("320000").database_url.clone();

    timed_import(&clients, ImportTarget::Schools, &synthetic.schools_csv, spec.schools).await?;

    // Raw COPY of the same pupil rows, protected beforehand, into a copy of the pupil table.
    let wal = Wal::now(&database_url).await?;
    let registry_pid = stack.province("320000").registry.pid().unwrap_or_default();
    let raw_rate = raw_copy(&database_url, &keys, &synthetic.pupils_csv).await?;
    println!("raw PostgreSQL COPY of the pupil rows (same table and indexes): {raw_rate:>8.0} rows/s");
    println!("  {}", wal.since(&database_url, spec.pupils).await?);

    let imports_started = chrono::Utc::now();
    let wal = Wal::now(&database_url).await?;
    let cpu = (nol_stack::profile::cpu_seconds(registry_pid)?, nol_stack::profile::postgres_cpu_seconds());
    let bench_cpu = nol_stack::profile::cpu_seconds(std::process::id())?;
    let database = postgres::database_name(&database_url);
    let statements = nol_stack::profile::StatementProfile::start(&database_url, database).await;
    let started = Instant::now();
    let import_rate = timed_import(&clients, ImportTarget::Pupils, &synthetic.pupils_csv, spec.pupils).await?;
    let wall = started.elapsed().as_secs_f64();
    println!("  ratio to raw COPY: {:.2}", import_rate / raw_rate);
    // The import writes in batches of 5,000 rows: the statements' time a batch.
    print_statements("  statements a batch of 5,000 rows:", statements, spec.pupils.div_ceil(5_000), "a batch").await?;
    println!("  {}", wal.since(&database_url, spec.pupils).await?);
    let per_row = |seconds: f64| seconds * 1e6 / spec.pupils.max(1) as f64;
    let (registry_cpu, postgres_cpu, client_cpu) = (
        nol_stack::profile::cpu_seconds(registry_pid)? - cpu.0,
        nol_stack::profile::postgres_cpu_seconds() - cpu.1,
        nol_stack::profile::cpu_seconds(std::process::id())? - bench_cpu,
    );
    println!(
        "  CPU a row: registry {:.1} µs, PostgreSQL (all its processes) {:.1} µs, the uploading client {:.1} µs; \
         wall {:.1} µs a row, {:.2} of the two cores busy with these three",
        per_row(registry_cpu),
        per_row(postgres_cpu),
        per_row(client_cpu),
        per_row(wall),
        (registry_cpu + postgres_cpu + client_cpu) / wall / 2.0,
    );
    timed_import(&clients, ImportTarget::HouseholdRegister, &synthetic.household_csv, spec.household).await?;
    timed_import(&clients, ImportTarget::PovertyRegistry, &synthetic.poverty_csv, 0).await?;
    let peak = nol_stack::process::peak_memory_mib(registry_pid);
    let file_mib = std::fs::metadata(&synthetic.pupils_csv)?.len() as f64 / 1048576.0;
    println!("registry process peak memory after the imports: {peak:.0} MiB (pupil file {file_mib:.0} MiB)");
    let household_mib = std::fs::metadata(&synthetic.household_csv)?.len() as f64 / 1048576.0;

    // The cross-check against its bare anti-join, both on analysed tables.
    let mut conn = sqlx::PgConnection::connect(&database_url).await?;
    // The registry vacuums each table after an import of more than 10,000 rows, in the
    // background; neither measurement should compete with it.
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        poll.tick().await;
        let pending = sqlx::query_scalar!(
            r#"SELECT count(*) AS "pending!" FROM pg_stat_user_tables
                WHERE schemaname = 'registry' AND relname IN ('pupil', 'household_member', 'poverty_child')
                  AND n_live_tup > 10000 AND coalesce(last_vacuum, 'epoch') < $1"#,
            imports_started,
        )
        .fetch_one(&mut conn)
        .await?;
        if pending == 0 {
            break;
        }
    }
    sqlx::query!("ANALYZE registry.pupil, registry.household_member, registry.poverty_child")
        .execute(&mut conn)
        .await?;
    // The disk the province takes: the whole database, and the two big tables with their
    // indexes and TOAST.
    // Catalogue functions only: the bench's own static SQL, left to run unchecked.
    let sizes: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT pg_database_size(current_database()), pg_total_relation_size('registry.pupil'),
                pg_indexes_size('registry.pupil'), pg_total_relation_size('registry.household_member'),
                pg_indexes_size('registry.household_member')",
    )
    .fetch_one(&mut conn)
    .await?;
    let mib = |bytes: i64| bytes as f64 / 1048576.0;
    println!(
        "disk: database {:.0} MiB; pupils {:.0} MiB ({:.0} MiB of it indexes, {:.0} bytes a pupil; file {file_mib:.0} MiB); \
         household register {:.0} MiB ({:.0} MiB indexes; file {household_mib:.0} MiB)",
        mib(sizes.0),
        mib(sizes.1),
        mib(sizes.2),
        sizes.1 as f64 / spec.pupils.max(1) as f64,
        mib(sizes.3),
        mib(sizes.4),
    );
    let as_of = spec.as_of;
    let school_age = (
        as_of.checked_sub_months(chrono::Months::new(16 * 12)).and_then(|date| date.succ_opt()).unwrap_or(as_of),
        as_of.checked_sub_months(chrono::Months::new(6 * 12)).unwrap_or(as_of),
    );
    let mut bare_best = Duration::MAX;
    let mut bare_count = 0i64;
    // Who uses the two cores during each measurement: the services, each kind of PostgreSQL
    // process, NATS, the bench, anything else.
    // Planned and run as the cross-check's own statement is: without JIT (`store::checks::find`
    // turns it off for its transaction). At 10,000,000 pupils the bare query's cost is far above
    // PostgreSQL's JIT thresholds: the baseline would pay for compiling it in the leader and
    // each worker, which the check does not.
    sqlx::query("SET jit = off").execute(&mut conn).await?;
    let cpu = nol_stack::profile::MachineCpu::now();
    for _ in 0..3 {
        let started = Instant::now();
        // The cross-check's main question as bare SQL: school-age children of the household
        // register (born between $1 and $2) enrolled nowhere.
        bare_count = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM registry.household_member h
                WHERE h.id_problem IS NULL AND h.birth_date BETWEEN $1 AND $2
                  AND NOT EXISTS (SELECT 1 FROM registry.pupil p WHERE p.resident_id_index = h.resident_id_index
                                                                  AND p.enrollment_status <> 'transferred_out')"#,
            school_age.0,
            school_age.1,
        )
        .fetch_one(&mut conn)
        .await?;
        bare_best = bare_best.min(started.elapsed());
    }
    println!(
        "bare SQL anti-join (school-age children enrolled nowhere), best of 3: {:>7.0} ms, {bare_count} children",
        bare_best.as_secs_f64() * 1000.0
    );
    print!("  CPU during the three:\n{}", cpu.since());
    let statements = nol_stack::profile::StatementProfile::start(&database_url, database).await;
    let cpu = nol_stack::profile::MachineCpu::now();
    let started = Instant::now();
    let run = cross_check(&clients, as_of).await?;
    let check_time = started.elapsed();
    let check_cpu = cpu.since();
    println!(
        "cross-check through gRPC (all findings, items, events):   {:>7.0} ms ({} ms in the service), {} children checked",
        check_time.as_secs_f64() * 1000.0,
        run.duration_ms,
        run.children_checked
    );
    println!("  ratio to the bare anti-join: {:.2}", check_time.as_secs_f64() / bare_best.as_secs_f64());
    print!("  CPU during the run:\n{check_cpu}");
    print_statements("  the cross-check's statements:", statements, 1, "the run").await?;
    // The same check again: every finding already an item, nothing new to publish. Measured once
    // the case service has taken in the first run's suspects, which it does after the run returns
    // (otherwise the re-run shares the two cores with that).
    let suspects = run.found.get("out_of_school").copied().unwrap_or_default();
    loop {
        poll.tick().await;
        // The bench's own read of the case service's table (another service's schema).
        let taken_in: i64 = sqlx::query_scalar("SELECT count(*) FROM cases.suspect WHERE origin = 'cross_check'")
            .fetch_one(&mut conn)
            .await?;
        if taken_in >= suspects {
            break;
        }
    }
    // Best of three, as the bare anti-join is: each re-run does the same work.
    let mut rerun_best = Duration::MAX;
    let mut rerun = nol_proto::v1::CrossCheckRun::default();
    let statements = nol_stack::profile::StatementProfile::start(&database_url, database).await;
    let cpu = nol_stack::profile::MachineCpu::now();
    for _ in 0..3 {
        let started = Instant::now();
        rerun = cross_check(&clients, as_of).await?;
        rerun_best = rerun_best.min(started.elapsed());
    }
    println!(
        "cross-check re-run, best of 3 (nothing new: {} still open, {} opened):  {:>7.0} ms; ratio {:.2}",
        rerun.still_open,
        rerun.opened,
        rerun_best.as_secs_f64() * 1000.0,
        rerun_best.as_secs_f64() / bare_best.as_secs_f64()
    );
    print!("  CPU during the three re-runs:\n{}", cpu.since());
    print_statements("  a re-run's statements:", statements, 3, "a re-run").await?;

    // Recall and precision per planted kind, by blind index.
    let planted = |ids: &[String]| -> HashSet<Vec<u8>> { ids.iter().map(|id| keys.blind_index(id)).collect() };
    for (kind, expected) in [
        ("out_of_school", planted(&synthetic.planted_out_of_school)),
        ("invalid_resident_id", planted(&synthetic.planted_bad_ids)),
        ("poor_flag_unconfirmed", planted(&synthetic.planted_flag_unconfirmed)),
        ("poor_flag_missing", planted(&synthetic.planted_flag_missing)),
    ] {
        let found: HashSet<Vec<u8>> =
            sqlx::query_scalar!("SELECT subject FROM registry.check_item WHERE kind = $1", kind)
                .fetch_all(&mut conn)
                .await?
                .into_iter()
                .collect();
        let hits = found.intersection(&expected).count() as f64;
        println!(
            "  {kind:<22} planted {:>5}, found {:>5}: recall {:>5.1} %, precision {:>5.1} %",
            expected.len(),
            found.len(),
            100.0 * hits / expected.len().max(1) as f64,
            100.0 * hits / found.len().max(1) as f64
        );
    }
    conn.close().await?;
    stack.stop().await?;
    if std::env::var_os("NOL_BENCH_KEEP").is_some() {
        println!("kept: {database}");
        return Ok(());
    }
    for code in ["320000", "340000"] {
        postgres::drop_database(&postgres::default_admin_url(), &format!("nol_rb{id}_{code}")).await?;
    }
    Ok(())
}

/// The province's cross-check as a bureau system runs it.
async fn cross_check(clients: &Clients, as_of: chrono::NaiveDate) -> anyhow::Result<nol_proto::v1::CrossCheckRun> {
    let request = RunCrossCheckRequest { region_code: String::new(), as_of_date: as_of.format("%Y-%m-%d").to_string() };
    Ok(clients.registry.clone().run_cross_check(request).await?.into_inner().run.unwrap_or_default())
}

/// A statement profile's figures, or why there are none.
async fn print_statements(
    title: &str,
    statements: Result<nol_stack::profile::StatementProfile, String>,
    per: usize,
    unit: &'static str,
) -> anyhow::Result<()> {
    match statements {
        Ok(statements) => {
            let times = nol_stack::profile::StatementTimes { unit, ..statements.finish(per as u64).await? };
            print!("{title}\n{times}")
        }
        Err(why) => println!("{title} not measured: {why}"),
    }
    Ok(())
}

async fn timed_import(
    clients: &Clients,
    target: ImportTarget,
    path: &std::path::Path,
    expected: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let job = import_file(clients, target, path, uuid::Uuid::now_v7(), TextEncoding::Unspecified, |_| {}).await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(job.rows_rejected == 0, "{target:?}: {:?}", job.errors);
    anyhow::ensure!(expected == 0 || job.rows_imported == expected as i64, "{target:?}: {}", job.message);
    let rate = job.rows_read as f64 / elapsed;
    println!("import {:<20} {:>8} rows in {elapsed:>6.1}s: {rate:>8.0} rows/s", format!("{target:?}"), job.rows_read);
    Ok(rate)
}

/// COPY of the pupil rows as the import would store them (numbers encrypted and indexed in
/// advance, outside the timing) into a table like the pupil table.
async fn raw_copy(database_url: &str, keys: &DataKeys, pupils_csv: &std::path::Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(pupils_csv)?;
    let mut rows = String::with_capacity(text.len() * 3);
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|byte| format!("{byte:02x}")).collect() };
    let mut count = 0usize;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let id = nol_pii::ResidentId::parse(fields[1])?;
        let index = keys.blind_index(id.expose());
        let cipher = keys.encrypt(id.expose().as_bytes(), "registry.pupil.resident_id", &index);
        let school_county = &fields[5][..6];
        rows.push_str(&format!(
            "{},{},\\x{},\\x{},{},{},{},{},{},{},{},{},{},enrolled,{},bench\n",
            uuid::Uuid::now_v7(),
            fields[0],
            hex(&cipher),
            hex(&index),
            id.masked(),
            if fields[2] == "男" { 1 } else { 2 },
            fields[3],
            school_county,
            fields[4],
            school_county,
            fields[5],
            fields[6],
            fields[4] != school_county,
            fields[7] == "是"
        ));
        count += 1;
    }
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    // The bench's own table, made here: raw (static) SQL the macros cannot check.
    sqlx::query("CREATE TABLE registry.bench_raw_pupil (LIKE registry.pupil INCLUDING ALL)").execute(&mut conn).await?;
    let started = Instant::now();
    let postgres_cpu = nol_stack::profile::postgres_cpu_seconds();
    let mut copy = conn
        .copy_in_raw(
            "COPY registry.bench_raw_pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, sex,
             birth_date, enrollment_region, hukou_region, residence_region, school_code, grade, migrant, enrollment_status,
             registered_poor, created_by) FROM STDIN (FORMAT csv)",
        )
        .await?;
    for chunk in rows.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!(
        "  CPU a row: PostgreSQL (all its processes) {:.1} µs; wall {:.1} µs a row",
        (nol_stack::profile::postgres_cpu_seconds() - postgres_cpu) * 1e6 / count.max(1) as f64,
        started.elapsed().as_secs_f64() * 1e6 / count.max(1) as f64
    );
    sqlx::query("DROP TABLE registry.bench_raw_pupil").execute(&mut conn).await?;
    conn.close().await?;
    Ok(rate)
}

/// The server's WAL and checkpoint counters (cluster-wide: the bench is the machine's only load),
/// to tell a phase's write volume and full-page images per row.
struct Wal {
    records: i64,
    full_pages: i64,
    bytes: f64,
    checkpoints: i64,
    shared_buffers: String,
}

impl Wal {
    async fn now(database_url: &str) -> anyhow::Result<Wal> {
        let mut conn = sqlx::PgConnection::connect(database_url).await?;
        // Statistics views only: the bench's own static SQL, left to run unchecked.
        let (records, full_pages, bytes, checkpoints, shared_buffers): (i64, i64, f64, i64, String) = sqlx::query_as(
            "SELECT wal_records, wal_fpi, wal_bytes::float8, checkpoints_timed + checkpoints_req,
                    current_setting('shared_buffers')
               FROM pg_stat_wal, pg_stat_bgwriter",
        )
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(Wal { records, full_pages, bytes, checkpoints, shared_buffers })
    }

    async fn since(&self, database_url: &str, rows: usize) -> anyhow::Result<String> {
        let now = Wal::now(database_url).await?;
        let rows = rows.max(1) as f64;
        Ok(format!(
            "WAL meanwhile: {:.0} bytes, {:.1} records and {:.2} full-page images a row; {} checkpoints \
             (shared_buffers {})",
            (now.bytes - self.bytes) / rows,
            (now.records - self.records) as f64 / rows,
            (now.full_pages - self.full_pages) as f64 / rows,
            now.checkpoints - self.checkpoints,
            now.shared_buffers,
        ))
    }
}
