//! The restore drill as a test: a province running on a PostgreSQL server that archives its WAL,
//! a base backup taken while it works, more work, and `nol backup drill` restoring the backup and
//! the archive to a moment between two changes on a scratch server: what was committed before that
//! moment is back, nothing after it, and every audit chain verifies.

mod common;

use common::{TestOptions, TestStack, resident_id};
use nol_auth::Role;
use nol_proto::v1::{CreatePupilRequest, DropoutCause, OpenCaseRequest, Pupil};
use nol_stack::{Clients, backup};
use sqlx::Connection;

async fn register(clients: &Clients, sequence: u16) -> String {
    let pupil = Pupil {
        full_name: format!("备份{sequence}"),
        resident_id: resident_id("320102", sequence),
        hukou_region_code: "320102".into(),
        school_code: "3201020001".into(),
        grade: 4,
        ..Default::default()
    };
    let created = clients.registry.clone().create_pupil(CreatePupilRequest { pupil: Some(pupil) }).await.unwrap();
    created.into_inner().pupil.unwrap().pupil_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_is_restored_from_its_base_backup_and_archive_to_a_moment_and_its_audit_verifies() {
    let dir =
        tempfile::Builder::new().permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755)).tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    if nix::unistd::Uid::effective().is_root() {
        // The server's user writes the archive.
        assert!(std::process::Command::new("chown").arg("postgres:postgres").arg(&archive).status().unwrap().success());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = nol_stack::postgres::PgCluster::init(&dir.path().join("pg"), port).unwrap();
    cluster.configure(&backup::archiving_settings(&archive)).unwrap();
    cluster.start().await.unwrap();
    let test =
        TestStack::start_with(TestOptions { admin_database_url: Some(cluster.admin_url()), ..TestOptions::default() })
            .await;
    let county = test.clients("320000", "320102", Role::Caseworker);

    // Before the base backup: three pupils, a case.
    let mut first = Vec::new();
    for sequence in 1..=3 {
        first.push(register(&county, sequence).await);
    }
    let open = OpenCaseRequest {
        pupil_id: first[0].clone(),
        causes: vec![DropoutCause::GoneToWork as i32],
        notes: String::new(),
    };
    county.cases.clone().open_case(open).await.unwrap();
    let base = backup::take_base_backup(&cluster.admin_url(), &dir.path().join("base")).unwrap();

    // After it: two more pupils, then the moment to restore to, then two that must not come back.
    for sequence in 4..=5 {
        register(&county, sequence).await;
    }
    let mut admin = sqlx::PgConnection::connect(&cluster.admin_url()).await.unwrap();
    let moment: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    for sequence in 6..=7 {
        register(&county, sequence).await;
    }
    backup::archive_now(&cluster.admin_url()).await.unwrap();

    let database = format!("{}_320000", test.database_prefix);
    let report = dir.path().join("drill.json");
    let drill = std::process::Command::new(env!("CARGO_BIN_EXE_nol"))
        .args(["backup", "drill", "--database", &database, "--target-time", &moment.to_rfc3339()])
        .arg("--base")
        .arg(&base)
        .arg("--archive")
        .arg(&archive)
        .arg("--work")
        .arg(dir.path())
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&drill.stdout);
    assert!(drill.status.success(), "{printed}\n{}", String::from_utf8_lossy(&drill.stderr));
    assert!(printed.contains("恢复演练通过"), "{printed}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["audit_chains_intact"], true, "{report}");
    let rows = |table: &str| report["rows"][table].as_i64().unwrap_or(-1);
    assert_eq!(rows("registry.pupil"), 5, "the pupils committed before the moment, none after: {report}");
    assert_eq!(rows("cases.dropout_case"), 1, "{report}");
    assert!(rows("registry.outbox") >= 5, "each pupil's event came back with it: {report}");

    // The live province went on meanwhile.
    let live = test.database("320000", "registry").await;
    assert_eq!(common::counts::pupils(&live).await.unwrap(), 7);
    println!("restore drill: {printed}");
    test.finish().await;
    cluster.stop("fast").unwrap();
}
