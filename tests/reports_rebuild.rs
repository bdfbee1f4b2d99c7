//! The reporting projections rebuilt from scratch equal the live ones: a reporting process on an
//! empty database with a new durable consumer replays the province stream from its start (the
//! stream keeps two school years by default) and ends with the same rows — daily counts, totals,
//! cases seen and hand-off sides — as the service that counted them as they happened.

mod common;

use std::collections::BTreeMap;

use common::cases::{Child, reported, return_to};
use common::handoffs::{delivered, request, until_case};
use common::{TestStack, eventually};
use nol_auth::Role;
use nol_proto::v1::*;
use nol_stack::process::{LogTo, ServiceProcess};
use sqlx::PgPool;

/// Every projection row, as text, by table. A daily or period count of zero is no figure: the
/// live consumer may leave one where an event and its undoing came in different batches, while
/// the rebuild, reading them in one batch, writes nothing.
async fn projections(database: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, filter, order) in [
        ("daily_count", "WHERE value <> 0", "region, metric, day"),
        ("period_count", "WHERE value <> 0", "region, metric, period"),
        ("region_count", "", "region, metric"),
        ("case_seen", "", "case_id"),
        ("handoff_side", "", "handoff_id, direction"),
    ] {
        let query = format!("SELECT t::text FROM reporting.{table} t {filter} ORDER BY {order}");
        let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_all(database).await.unwrap();
        rows.extend(found.into_iter().map(|row| format!("{table} {row}")));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_projections_rebuilt_from_the_stream_equal_the_live_ones() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let mut cases = Vec::new();
    for child in [Child::Xiaoyi, Child::Xiaoer, Child::Xiaosan, Child::Xiaowu] {
        cases.push(child.open_case(&xuanwu).await);
    }
    xuanwu.cases.clone().return_to_school(return_to(&cases[0].case_id, "")).await.expect("returned");
    let handoff = request(&xuanwu, &cases[1].case_id, "320104").await.expect("requested");
    delivered(&xuanwu, &qinhuai, &handoff.handoff_id).await;
    qinhuai.transfer.clone().accept_handoff(AcceptHandoffRequest { handoff_id: handoff.handoff_id }).await.unwrap();
    until_case(&xuanwu, &cases[1].case_id, CaseStatus::HandedOver).await;
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    reported(&nanjing, "320100", |summary| {
        summary.cases_opened == 4 && summary.cases_taken_in == 1 && summary.cases_returned == 1
    })
    .await;
    reported(&nanjing, "320100", |summary| {
        let handoffs = summary.handoffs.clone().unwrap_or_default();
        let accepted = |tally: Option<HandoffTally>| tally.map(|tally| tally.accepted).unwrap_or_default();
        accepted(handoffs.outgoing) == 1 && accepted(handoffs.incoming) == 1
    })
    .await;
    let live_database = test.database("320000", "reporting").await;
    let live = projections(&live_database).await;
    assert!(live.iter().any(|row| row.starts_with("daily_count (320102,case.open,")), "{live:?}");

    // A second reporting process: empty database, new durable consumer, same stream.
    let stack = test.stack();
    let province = stack.province("320000");
    let admin = nol_stack::postgres::default_admin_url();
    let name = format!("{}_rebuild", test.database_prefix);
    let url = nol_stack::postgres::create_database(&admin, &name).await.unwrap();
    // Provisioned as the stack's databases are: the process connects as the reporting role.
    let roles = nol_runtime::provision::provision(&url, &Default::default()).await.unwrap().roles;
    let rebuilt_database = nol_runtime::database::connect(&url, "reporting", 2).await.unwrap();
    let url = nol_stack::postgres::role_url(&url, &roles.service("reporting"));
    let mut env = BTreeMap::from([
        ("NOL_PROVINCE".to_owned(), "320000".to_owned()),
        ("NOL_DATABASE_URL".to_owned(), url),
        ("NOL_DATABASE_POOL_SIZE".to_owned(), "4".to_owned()),
        ("NOL_NATS_URL".to_owned(), stack.nats[0].client_url()),
        ("NOL_SUBJECT_PREFIX".to_owned(), test.subject_prefix.clone()),
        ("NOL_KEYS_DIR".to_owned(), stack.keys.service_dir(&province.province, "reporting").display().to_string()),
        ("NOL_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("NOL_CONSUMER_NAME".to_owned(), "reporting_rebuild".to_owned()),
    ]);
    let tls = stack.keys.service_tls(&province.province, "reporting").unwrap();
    env.extend(tls.env().map(|(name, value)| (name.to_owned(), value)));
    let mut rebuilt = ServiceProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_nol")),
        "reporting-rebuild",
        "reporting",
        env,
        LogTo::Inherit,
    )
    .await
    .expect("a second reporting process");
    eventually("the rebuilt projections to equal the live ones", || {
        let database = rebuilt_database.clone();
        let live = live.clone();
        async move { Ok((projections(&database).await == live).then_some(())) }
    })
    .await;
    rebuilt.stop().await.unwrap();
    rebuilt_database.close().await;
    nol_stack::postgres::drop_database(&admin, &name).await.unwrap();
    test.finish().await;
}
