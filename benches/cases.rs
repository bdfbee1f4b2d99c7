//! `cargo bench --bench cases`: the semester-start check and overdue work at the size of a large
//! province, each against bare SQL doing the same work in the same run.
//!
//! The case service's side of a province of 1,000,000 pupils: 100,000 open cases across its
//! counties (due dates spread over the last and next 60 days, so about half are overdue) and
//! 20,000 children in monitoring, each with the "returned" history entry naming the school. The
//! rows are written straight into the case service's tables (setup, not measured); the pupils
//! themselves live in the registry and take no part in these operations. Measured:
//! - the checklist build (StartSemesterCheck over the province, through gRPC) against a bare
//!   `INSERT … SELECT` of the same items;
//! - schools' confirmations (MarkSemesterAttendance, one per call, 16 in flight) against bare
//!   single-row transactions doing the same lock-and-update, also 16 in flight;
//! - the first page of overdue work (ListOverdueWork, province-wide and one county), p50 and p99
//!   of 50 reads, against the service's own statements run directly (its store functions: the
//!   same SQL without gRPC, token check or audit entry) and the bare `SELECT … ORDER BY due_on
//!   LIMIT` over the cases alone that it is built on.
//!
//! `NOL_BENCH_DIVIDE=10` makes everything ten times smaller; `NOL_BENCH_SCALE=10` makes the cases
//! ten times more (issue 13's province of 10,000,000 pupils: 1,000,000 open cases, 200,000
//! children in monitoring; the confirmations stay 5,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nol_auth::Role;
use nol_cases::case::store as case_store;
use nol_cases::supervision::store as supervision_store;
use nol_proto::v1::{
    ListCasesRequest, ListOverdueWorkRequest, ListSemesterCheckItemsRequest, MarkSemesterAttendanceRequest,
    StartSemesterCheckRequest,
};
use nol_region::{RegionCode, RegionTree};
use nol_stack::{Clients, Stack, StackSettings, postgres};

const IN_FLIGHT: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let divide: i64 = std::env::var("NOL_BENCH_DIVIDE").ok().and_then(|text| text.parse().ok()).unwrap_or(1).max(1);
    let scale: i64 = std::env::var("NOL_BENCH_SCALE").ok().and_then(|text| text.parse().ok()).unwrap_or(1).max(1);
    let (open_cases, monitored, confirmations) = (100_000 * scale / divide, 20_000 * scale / divide, 5_000 / divide);
    let province = RegionCode::parse("320000")?;
    let dir = tempfile::tempdir()?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &format!("cb{id}"));
    let mut stack = Stack::start(settings).await?;
    println!("Not One Less case benchmark ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!();
    let database_url = stack.province("320000").database_url.clone();
    let pool = nol_runtime::database::connect(&database_url, "cases", (IN_FLIGHT + 2) as u32).await?;
    let counties: Vec<String> = RegionTree::global()
        .nodes()
        .filter(|node| node.county_level && province.contains(&node.code) && node.code != province)
        .map(|node| node.code.to_string())
        .collect();
    let started = Instant::now();
    seed(&pool, &counties, open_cases, monitored).await?;
    println!(
        "synthetic cases: {open_cases} open across {} counties, {monitored} in monitoring; written in {:.1}s",
        counties.len(),
        started.elapsed().as_secs_f64()
    );
    let token = |region: &str, role: Role| {
        stack.keys.token(
            &format!("bench-{role}"),
            RegionCode::parse(region).expect("region"),
            role,
            Duration::from_secs(3600),
        )
    };
    let supervisor = Clients::for_province(stack.province("320000"), &token("320000", Role::Supervisor)?)?;
    // The items span the province's schools; a school's token names one school, so the marks are
    // a case worker's (the same handler and the same work).
    let marker = Clients::for_province(stack.province("320000"), &token("320000", Role::Caseworker)?)?;

    // 1. The checklist build.
    let today = nol_runtime::clock::china_date(chrono::Utc::now());
    let deadline = (today + chrono::Duration::days(30)).to_string();
    let mut bare_build = Duration::MAX;
    for round in 0..2 {
        let mut tx = pool.begin().await?;
        // A regular (logged) table with the same columns and indexes; no foreign keys. It is the
        // bench's own, made here, so its statements are raw (static) SQL the macros cannot check.
        sqlx::query("CREATE TABLE bare_item (LIKE semester_check_item INCLUDING ALL)").execute(&mut *tx).await?;
        let started = Instant::now();
        let built = sqlx::query(
            "INSERT INTO bare_item (id, check_id, case_id, region, school_code, school_name)
             SELECT gen_random_uuid(), $1, c.id, c.region,
                    coalesce(r.detail->>'school_code', ''), coalesce(r.detail->>'school_name', '')
               FROM dropout_case c
               LEFT JOIN LATERAL (SELECT h.detail FROM case_history h
                                   WHERE h.case_id = c.id AND h.change = 'returned'
                                   ORDER BY h.version DESC LIMIT 1) r ON true
              WHERE c.region LIKE '32%' AND c.status = 'monitoring'",
        )
        .bind(uuid::Uuid::new_v4())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        bare_build = bare_build.min(started.elapsed());
        sqlx::query("DROP TABLE bare_item").execute(&pool).await?;
        anyhow::ensure!(built as i64 == monitored, "bare build round {round} made {built} items");
    }
    let mut service_build = Duration::MAX;
    let mut check_id = String::new();
    let database = postgres::database_name(&database_url);
    let mut build_statements = Vec::new();
    for semester in ["2027-spring", "2027-autumn"] {
        let statements = nol_stack::profile::StatementProfile::start(&database_url, database).await;
        let started = Instant::now();
        let check = supervisor
            .supervision
            .clone()
            .start_semester_check(StartSemesterCheckRequest {
                region_code: "320000".into(),
                semester: semester.into(),
                deadline: deadline.clone(),
            })
            .await?
            .into_inner()
            .check
            .expect("check");
        service_build = service_build.min(started.elapsed());
        let took = started.elapsed();
        let statements = match statements {
            Ok(statements) => Ok(statements.finish(1).await?),
            Err(why) => Err(why),
        };
        build_statements.push((semester, took, statements));
        anyhow::ensure!(check.item_count == monitored, "the check listed {} children", check.item_count);
        check_id = check.check_id;
    }
    println!();
    println!("checklist build over {monitored} children in monitoring (best of 2):");
    println!("  bare INSERT … SELECT:           {:>8.1} ms", ms(bare_build));
    println!(
        "  StartSemesterCheck via gRPC:    {:>8.1} ms   ratio {:.2}",
        ms(service_build),
        ratio(service_build, bare_build)
    );
    // Where each build's time went in the database (pg_stat_statements, when preloaded).
    for (semester, took, statements) in build_statements {
        match statements {
            Ok(statements) => {
                println!(
                    "  {semester}: {:.1} ms; the province database's statements meanwhile (pg_stat_statements):",
                    ms(took)
                );
                print!("{statements}");
            }
            Err(why) => println!("  no statement profile: {why}"),
        }
    }

    // 2. Confirmations: the items of the last check, one call each, IN_FLIGHT at a time.
    let mut item_ids = Vec::new();
    let mut token_page = String::new();
    while (item_ids.len() as i64) < confirmations * 2 {
        let page = supervisor
            .supervision
            .clone()
            .list_semester_check_items(ListSemesterCheckItemsRequest {
                check_id: check_id.clone(),
                page_size: 500,
                page_token: token_page.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        item_ids.extend(page.items.into_iter().map(|item| item.item_id));
        token_page = page.next_page_token;
        if token_page.is_empty() {
            break;
        }
    }
    let (for_bare, for_service) = item_ids.split_at(item_ids.len() / 2);
    let bare_ids: Vec<uuid::Uuid> = for_bare.iter().map(|id| id.parse().expect("uuid")).collect();
    let pool_ref = Arc::new(pool.clone());
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(bare_ids.into_iter().map(|id| {
        let pool = pool_ref.clone();
        async move {
            let mut tx = pool.begin().await?;
            let state = sqlx::query_scalar!("SELECT state FROM semester_check_item WHERE id = $1 FOR UPDATE", id)
                .fetch_one(&mut *tx)
                .await?;
            anyhow::ensure!(state == "pending");
            sqlx::query!(
                "UPDATE semester_check_item SET state = 'present', updated_by = 'bare', updated_at = clock_timestamp()
                  WHERE id = $1",
                id,
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await;
    let bare_elapsed = started.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let bare_rate = for_bare.len() as f64 / bare_elapsed.as_secs_f64();
    let started = Instant::now();
    let results: Vec<Result<_, tonic::Status>> =
        futures::stream::iter(for_service.iter().map(|id| {
            let mut client = marker.supervision.clone();
            let id = id.clone();
            async move {
                client.mark_semester_attendance(MarkSemesterAttendanceRequest { item_id: id, present: true }).await
            }
        }))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let service_elapsed = started.elapsed();
    let failed = results.iter().filter(|result| result.is_err()).count();
    anyhow::ensure!(failed == 0, "{failed} confirmations failed");
    let service_rate = for_service.len() as f64 / service_elapsed.as_secs_f64();
    println!();
    println!("schools' confirmations, {} each, {IN_FLIGHT} in flight:", for_service.len());
    println!("  bare lock-and-update transactions: {bare_rate:>8.0} /s");
    println!("  MarkSemesterAttendance via gRPC:   {service_rate:>8.0} /s   ratio {:.2}", service_rate / bare_rate);

    // 3. The first page of overdue work.
    sqlx::query!("ANALYZE dropout_case, semester_check_item, semester_check").execute(&pool).await?;
    println!();
    println!(
        "first page (50) of overdue work over {open_cases} open cases, {READS} reads each, p50 / p99 \
         (the service's own statements: its store functions on a pool of the case schema, no gRPC, token or audit):"
    );
    for region in ["320000", counties[0].as_str()] {
        let prefix = RegionCode::parse(region)?.subtree_prefix().to_owned();
        let mut bare = Vec::new();
        let mut bare_total = 0i64;
        for _ in 0..READS {
            let started = Instant::now();
            let rows = sqlx::query_scalar!(
                "SELECT id FROM dropout_case WHERE region LIKE $1 || '%' AND due_on < $2 ORDER BY due_on, id LIMIT 51",
                &prefix,
                today,
            )
            .fetch_all(&pool)
            .await?;
            bare_total = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM dropout_case WHERE region LIKE $1 || '%' AND due_on < $2"#,
                &prefix,
                today,
            )
            .fetch_one(&pool)
            .await?;
            bare.push(started.elapsed());
            anyhow::ensure!(!rows.is_empty());
        }
        let mut own = Vec::new();
        for _ in 0..READS {
            let started = Instant::now();
            let page = supervision_store::list_overdue(&pool, &prefix, today, None, None, 51).await?;
            let count = supervision_store::count_overdue(&pool, &prefix, today, None).await?;
            own.push(started.elapsed());
            anyhow::ensure!(!page.is_empty() && count == bare_total);
        }
        let mut service = Vec::new();
        let mut total = 0;
        for _ in 0..READS {
            let started = Instant::now();
            let page = supervisor
                .supervision
                .clone()
                .list_overdue_work(ListOverdueWorkRequest {
                    region_code: region.into(),
                    page_size: 50,
                    ..Default::default()
                })
                .await?
                .into_inner();
            service.push(started.elapsed());
            total = page.total_count;
            anyhow::ensure!(page.work.len() as i64 == page.total_count.min(50));
        }
        anyhow::ensure!(total == bare_total, "the service counted {total} overdue, bare SQL {bare_total}");
        println!("  {region} ({total} overdue):");
        print_reads(("bare SELECT + count over the cases alone:", bare), own, ("ListOverdueWork (gRPC):", service));
    }
    // 4. The first page of the case ledger (ListCases), newest first.
    println!();
    println!(
        "first page (50) of the case ledger over {} cases, {READS} reads each, p50 / p99 (the service's own \
         statements: the page and its file counts, no gRPC, token or audit):",
        open_cases + monitored
    );
    for region in ["320000", counties[0].as_str()] {
        let prefix = RegionCode::parse(region)?.subtree_prefix().to_owned();
        let mut bare = Vec::new();
        for _ in 0..READS {
            let started = Instant::now();
            // The bench's own baseline, run unchecked (the macros' offline data holds the services').
            let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
                "SELECT id FROM dropout_case WHERE region LIKE $1 || '%' ORDER BY opened_at DESC, id DESC LIMIT 51",
            )
            .bind(&prefix)
            .fetch_all(&pool)
            .await?;
            bare.push(started.elapsed());
            anyhow::ensure!(rows.len() == 51);
        }
        let mut own = Vec::new();
        for _ in 0..READS {
            let started = Instant::now();
            let page = case_store::list(&pool, &prefix, &case_store::CaseQuery::default(), None, 51).await?;
            let ids: Vec<uuid::Uuid> = page.iter().map(|case| case.id).collect();
            case_store::file::counts(&pool, &ids).await?;
            own.push(started.elapsed());
            anyhow::ensure!(page.len() == 51);
        }
        let mut service = Vec::new();
        for _ in 0..READS {
            let started = Instant::now();
            let page = supervisor
                .cases
                .clone()
                .list_cases(ListCasesRequest { region_code: region.into(), page_size: 50, ..Default::default() })
                .await?
                .into_inner();
            service.push(started.elapsed());
            anyhow::ensure!(page.dropout_cases.len() == 50 && !page.next_page_token.is_empty());
        }
        println!("  {region}:");
        print_reads(("bare SELECT of the page's ids:", bare), own, ("ListCases (gRPC):", service));
    }
    let cases_pid = stack.province("320000").cases.pid().unwrap_or_default();
    println!();
    println!("case service peak memory: {:.0} MiB", nol_stack::process::peak_memory_mib(cases_pid));
    pool.close().await;
    stack.stop().await?;
    for code in ["320000", "340000"] {
        postgres::drop_database(&postgres::default_admin_url(), &format!("nol_cb{id}_{code}")).await?;
    }
    Ok(())
}

/// Writes the synthetic cases straight into the case service's tables.
async fn seed(pool: &sqlx::PgPool, counties: &[String], open_cases: i64, monitored: i64) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO dropout_case (id, child_name, resident_id_cipher, resident_id_index, resident_id_masked, sex,
                                   birth_date, hukou_region, region, status, causes, source, opened_by,
                                   confirmed_on, last_attempt_on, due_on, due_kind)
         SELECT gen_random_uuid(), '儿童' || i, '\\x00'::bytea, decode(md5('case' || i), 'hex'),
                '320102********' || lpad((i % 10000)::text, 4, '0'), 1 + i % 2,
                date '2013-01-01' + (i % 2000)::int, r.code, r.code,
                CASE WHEN i <= $2 THEN 'open' ELSE 'monitoring' END, ARRAY['family_poverty'], 'local', 'bench',
                current_date - 90, CASE WHEN i <= $2 THEN current_date - 74 + (i % 120)::int END,
                CASE WHEN i <= $2 THEN current_date - 60 + (i % 120)::int END,
                CASE WHEN i <= $2 THEN 'next_attempt' END
           FROM generate_series(1, $2::int8 + $3::int8) AS i
           JOIN LATERAL (SELECT ($1::text[])[1 + i % array_length($1::text[], 1)] AS code) r ON true",
        counties,
        open_cases,
        monitored,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO case_history (case_id, version, actor, change, detail)
         SELECT id, 1, 'bench', 'opened', '{}'::jsonb FROM dropout_case
         UNION ALL
         SELECT id, 2, 'bench', 'returned',
                jsonb_build_object('school_code', region || lpad((abs(hashtext(id::text)) % 50)::text, 4, '0'),
                                   'school_name', '示范小学', 'class_name', '五年级二班')
           FROM dropout_case WHERE status = 'monitoring'",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query!("VACUUM ANALYZE dropout_case").execute(pool).await?;
    sqlx::query!("VACUUM ANALYZE case_history").execute(pool).await?;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(service: Duration, bare: Duration) -> f64 {
    service.as_secs_f64() / bare.as_secs_f64()
}

/// Reads per region in the overdue-work measure.
const READS: usize = 50;

/// (p50, p99) in milliseconds.
/// A read's p50 / p99 three ways: the bare SQL, the service's own statements, the gRPC call, with
/// the call's ratios to the other two.
fn print_reads(bare: (&str, Vec<Duration>), own: Vec<Duration>, service: (&str, Vec<Duration>)) {
    let (bare_label, bare) = (bare.0, quantiles(bare.1));
    let (service_label, service) = (service.0, quantiles(service.1));
    let own = quantiles(own);
    println!("    {bare_label:<43}p50 {:>7.1} ms  p99 {:>7.1} ms", bare.0, bare.1);
    println!("    {:<43}p50 {:>7.1} ms  p99 {:>7.1} ms", "the service's own statements:", own.0, own.1);
    println!(
        "    {service_label:<43}p50 {:>7.1} ms  p99 {:>7.1} ms   \
         p99 ratio to its own statements {:.2}, to the bare SELECT {:.2}; the call's own cost at p50 {:.1} ms",
        service.0,
        service.1,
        service.1 / own.1,
        service.1 / bare.1,
        service.0 - own.0,
    );
}

fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    (at(0.5), at(0.99))
}
