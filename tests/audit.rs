//! The audit log as a chain that cannot be rewritten, on real PostgreSQL: `nol audit verify`
//! passes on a normal run and names the first altered, removed or reordered entry; the triggers
//! refuse UPDATE, DELETE and TRUNCATE; concurrent writers take chains of their own (one of 16) and
//! every chain stays gapless; the retention keeps the chains verifiable; an exported head finds a
//! cut-off tail. Then, on the real stack: the reads
//! that were not audited are, and rejected import rows hold no resident ID number in clear and
//! go after their retention.

mod common;

use std::process::Output;

use chrono::{Duration as Days, Utc};
use common::{RuleClock, TestStack, eventually, open_case, register_pupil, resident_id};
use nol_auth::Role;
use nol_import::{ImportTarget, import_file};
use nol_proto::v1::*;
use nol_runtime::audit::{self, Entry};
use nol_stack::postgres;
use sqlx::PgPool;
use tonic::Code;

/// A database of its own with the runtime's tables in schema `registry`.
struct AuditDatabase {
    name: String,
    url: String,
    pool: PgPool,
    finished: bool,
}

impl AuditDatabase {
    async fn new() -> AuditDatabase {
        let name = format!("nol_audit_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let url = postgres::create_database(&postgres::default_admin_url(), &name).await.expect("database created");
        let pool = nol_runtime::database::connect(&url, "registry", 8).await.expect("connected");
        nol_runtime::database::migrate_runtime(&pool).await.expect("migrated");
        AuditDatabase { name, url, pool, finished: false }
    }

    /// Another pool on the same schema: a second replica of the service.
    async fn replica(&self) -> PgPool {
        nol_runtime::database::connect(&self.url, "registry", 4).await.expect("connected")
    }

    /// Appends one call's entries, `days_ago` old (None: now).
    async fn append(&self, ids: &[&str], days_ago: Option<i64>) -> i64 {
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        let entry = Entry {
            actor: "caseworker@320102",
            role: "caseworker",
            region: "320102",
            action: "pupil.read",
            resource_type: "pupil",
            resource_ids: &ids,
            trace_id: if ids.len().is_multiple_of(2) { Some("4bf92f3577b34da6a3ce929d0e0e4736") } else { None },
        };
        let at = days_ago.map(|days| Utc::now() - Days::days(days));
        let mut conn = self.pool.acquire().await.unwrap();
        audit::append(&mut conn, &entry, at).await.expect("appended")
    }

    /// Runs SQL as the superuser with the audit triggers off: what an intruder with the
    /// database's keys could do, and what the chain must reveal.
    async fn tamper(&self, statements: &[&str]) {
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::raw_sql("ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_chain DISABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement)).execute(&mut *tx).await.expect(statement);
        }
        sqlx::raw_sql("ALTER TABLE audit_log ENABLE TRIGGER USER; ALTER TABLE audit_chain ENABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn hash_of(&self, seq: i64) -> String {
        let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE chain = 0 AND seq = $1")
            .bind(seq)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        hex::encode(hash)
    }

    /// Chain 0's seqs (a lone writer's appends all go to chain 0).
    async fn seqs(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT seq FROM audit_log WHERE chain = 0 ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Every chain with entries, and its seqs in order.
    async fn chains(&self) -> Vec<(i16, Vec<i64>)> {
        let rows: Vec<(i16, i64)> =
            sqlx::query_as("SELECT chain, seq FROM audit_log ORDER BY chain, seq").fetch_all(&self.pool).await.unwrap();
        let mut chains: Vec<(i16, Vec<i64>)> = Vec::new();
        for (chain, seq) in rows {
            match chains.last_mut() {
                Some((last, seqs)) if *last == chain => seqs.push(seq),
                _ => chains.push((chain, vec![seq])),
            }
        }
        chains
    }

    /// `nol audit <args> --database-url … --schema registry`.
    async fn nol(&self, args: &[&str]) -> Output {
        nol_audit(&self.url, args, &["--schema", "registry"]).await
    }

    async fn finish(mut self) {
        self.pool.close().await;
        postgres::drop_database(&postgres::default_admin_url(), &self.name).await.expect("database dropped");
        self.finished = true;
    }
}

impl Drop for AuditDatabase {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // After a failed assertion `finish` never ran: drop the database anyway.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let _ = postgres::drop_database(&postgres::default_admin_url(), &name).await;
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

async fn nol_audit(url: &str, args: &[&str], more: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_nol"))
        .arg("audit")
        .args(args)
        .args(["--database-url", url])
        .args(more)
        .env_remove("NOL_DATABASE_URL")
        .output()
        .await
        .expect("nol runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The command's output, failing the test unless it succeeded.
fn succeeded(output: Output) -> String {
    assert!(
        output.status.success(),
        "nol audit failed: {}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// The command's output, failing the test unless it failed with status 1.
fn failed(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "expected a failure: {}", stdout(&output));
    format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr))
}

/// Six entries over four calls (one call of three ids, one of a single id with no trace).
async fn six_entries(database: &AuditDatabase) {
    database.append(&["p1"], None).await;
    database.append(&["p2", "p3"], None).await;
    database.append(&["p4"], None).await;
    database.append(&["p5", "p6"], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_chain_verifies_and_the_log_refuses_every_change() {
    let database = AuditDatabase::new().await;
    // An empty chain verifies too.
    assert!(succeeded(database.nol(&["verify"]).await).contains("0 entries checked"));
    six_entries(&database).await;
    assert_eq!(database.seqs().await, [1, 2, 3, 4, 5, 6]);
    let report = succeeded(database.nol(&["verify"]).await);
    let head = database.hash_of(6).await;
    assert!(report.contains("审计链完好"), "{report}");
    assert!(report.contains(&format!("6 entries checked, head seq 6 {head}")), "{report}");

    for statement in [
        "UPDATE audit_log SET resource_id = 'p9' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 6",
        "TRUNCATE audit_log",
        "UPDATE audit_chain SET seq = 2",
        "DELETE FROM audit_chain",
    ] {
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&database.pool).await.unwrap_err();
        let code = error.as_database_error().and_then(|error| error.code()).map(|code| code.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
    // Even the retention's own setting does not let recent entries go.
    let mut tx = database.pool.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL nol.audit_prune_through = '100'").execute(&mut *tx).await.unwrap();
    assert!(sqlx::raw_sql("DELETE FROM audit_log WHERE seq = 1").execute(&mut *tx).await.is_err());
    drop(tx);
    assert_eq!(database.seqs().await, [1, 2, 3, 4, 5, 6], "nothing changed");
    succeeded(database.nol(&["verify"]).await);
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_altered_entry() {
    let database = AuditDatabase::new().await;
    six_entries(&database).await;
    database.tamper(&["UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"]).await;
    let report = failed(database.nol(&["verify"]).await);
    assert!(report.contains("entry seq 3 was altered"), "{report}");
    assert!(report.contains("第 3 条的内容与其哈希不符"), "{report}");
    database.finish().await;

    // A missing trace id made empty is a change too.
    let emptied = AuditDatabase::new().await;
    six_entries(&emptied).await;
    emptied.tamper(&["UPDATE audit_log SET trace_id = '' WHERE seq = 1"]).await;
    assert!(failed(emptied.nol(&["verify"]).await).contains("entry seq 1 was altered"));
    emptied.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_removed_entry() {
    let middle = AuditDatabase::new().await;
    six_entries(&middle).await;
    middle.tamper(&["DELETE FROM audit_log WHERE seq = 4"]).await;
    let report = failed(middle.nol(&["verify"]).await);
    assert!(report.contains("entry seq 4 was removed: the next entry present is seq 5"), "{report}");
    assert!(report.contains("第 4 条缺失"), "{report}");
    middle.finish().await;

    let first = AuditDatabase::new().await;
    six_entries(&first).await;
    first.tamper(&["DELETE FROM audit_log WHERE seq = 1"]).await;
    assert!(failed(first.nol(&["verify"]).await).contains("entry seq 1 was removed"));
    first.finish().await;

    // The last one, while the head still names it.
    let last = AuditDatabase::new().await;
    six_entries(&last).await;
    last.tamper(&["DELETE FROM audit_log WHERE seq = 6"]).await;
    let report = failed(last.nol(&["verify"]).await);
    assert!(report.contains("entries after seq 5 up to the head seq 6 were removed"), "{report}");
    last.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_reordered_entries() {
    let database = AuditDatabase::new().await;
    six_entries(&database).await;
    database
        .tamper(&[
            "UPDATE audit_log SET seq = -3 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = -3",
        ])
        .await;
    let report = failed(database.nol(&["verify"]).await);
    assert!(report.contains("entries were reordered: the entry at seq 2 was written as seq 3"), "{report}");
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_replicas_keep_every_chain_gapless() {
    let database = AuditDatabase::new().await;
    let replicas = [database.pool.clone(), database.replica().await];
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32usize {
        let pool = replicas[task % 2].clone();
        tasks.spawn(async move {
            let mut committed = 0;
            for round in 0..5usize {
                let ids: Vec<String> =
                    (0..1 + (task + round) % 3).map(|index| format!("t{task}r{round}i{index}")).collect();
                let mut tx = pool.begin().await.unwrap();
                audit::append(&mut tx, &marked(&ids), None).await.unwrap();
                // Every fifth transaction rolls back: its seqs are not lost to a gap.
                if (task + round).is_multiple_of(5) {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed += ids.len() as i64;
                }
            }
            committed
        });
    }
    let mut committed = 0;
    while let Some(result) = tasks.join_next().await {
        committed += result.unwrap();
    }
    let chains = database.chains().await;
    for (chain, seqs) in &chains {
        assert_eq!(*seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "chain {chain} has no gap");
    }
    assert_eq!(chains.iter().map(|(_, seqs)| seqs.len() as i64).sum::<i64>(), committed);
    let report = succeeded(database.nol(&["verify"]).await);
    assert!(report.contains(&format!("{committed} entries checked")), "{report}");
    database.finish().await;
}

/// A group commit's entries (`audit_append_each`): several callers' entries in one call, each
/// with its own actor, role, region and trace, chained in the transaction's chain after an
/// ordinary append of the same transaction; the chain verifies and keeps each entry's caller. Arrays
/// of different lengths are refused; no entries append nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commit_appends_each_callers_entry_in_one_call() {
    let database = AuditDatabase::new().await;
    let each =
        "SELECT audit_append_each($1::text[], $2::text[], $3::text[], 'pupil.create', 'pupil', $4::text[], $5::text[])";
    let actors = ["caseworker@320102", "school@3201040001", "caseworker@320102"];
    let roles = ["caseworker", "school", "caseworker"];
    let regions = ["320102", "320104", "320102"];
    let pupils = ["p1", "p2", "p3"];
    let traces = [Some("4bf92f3577b34da6a3ce929d0e0e4736"), None, Some("00f067aa0ba902b7a3ce929d0e0e4736")];
    let mut tx = database.pool.begin().await.unwrap();
    let ids = vec!["before".to_owned()];
    assert_eq!(audit::append(&mut tx, &marked(&ids), None).await.unwrap(), 1);
    let head: Option<i64> = sqlx::query_scalar(each)
        .bind(actors)
        .bind(roles)
        .bind(regions)
        .bind(pupils)
        .bind(traces)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(head, Some(4), "after the transaction's own entry, in its chain");
    let nothing: Option<i64> = sqlx::query_scalar(each)
        .bind(Vec::<String>::new())
        .bind(Vec::<String>::new())
        .bind(Vec::<String>::new())
        .bind(Vec::<String>::new())
        .bind(Vec::<Option<String>>::new())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(nothing, None);
    tx.commit().await.unwrap();

    let stored: Vec<(i64, String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT seq, actor, actor_role, actor_region, resource_id, trace_id FROM audit_log WHERE chain = 0 ORDER BY seq",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 4);
    for (index, (seq, actor, role, region, pupil, trace)) in stored[1..].iter().enumerate() {
        assert_eq!(*seq, index as i64 + 2);
        assert_eq!((actor.as_str(), role.as_str(), region.as_str()), (actors[index], roles[index], regions[index]));
        assert_eq!((pupil.as_str(), trace.as_deref()), (pupils[index], traces[index]));
    }
    let report = succeeded(database.nol(&["verify"]).await);
    assert!(report.contains("4 entries checked"), "{report}");

    let refused = sqlx::query_scalar::<_, Option<i64>>(each)
        .bind(actors)
        .bind(&roles[..2])
        .bind(regions)
        .bind(pupils)
        .bind(traces)
        .fetch_one(&database.pool)
        .await
        .unwrap_err();
    assert_eq!(refused.as_database_error().and_then(|error| error.code()).as_deref(), Some("22023"), "{refused}");
    assert_eq!(database.seqs().await, vec![1, 2, 3, 4], "nothing of the refused call");
    database.finish().await;
}

/// A school's confirmation of `ids`, as an audit entry.
fn marked(ids: &[String]) -> Entry<'_> {
    Entry {
        actor: "school@320102",
        role: "school",
        region: "320102",
        action: "semester_check.mark",
        resource_type: "dropout_case",
        resource_ids: ids,
        trace_id: None,
    }
}

/// A transaction holding a chain does not make the next writer wait: that one takes the next
/// free chain at once; the holder's further appends stay in its own chain; each head, exported
/// and verified, names its chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_holding_a_chain_does_not_hold_up_the_next() {
    let database = AuditDatabase::new().await;
    let ids = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<String>>();
    let (a1, a2, b) = (ids(&["a1"]), ids(&["a2"]), ids(&["b1", "b2"]));
    let mut first = database.pool.begin().await.unwrap();
    assert_eq!(audit::append(&mut first, &marked(&a1), None).await.unwrap(), 1);
    // Chain 0 is held until `first` ends; the second writer neither waits nor shares it.
    let mut second = database.replica().await.begin().await.unwrap();
    let appended =
        tokio::time::timeout(std::time::Duration::from_secs(30), audit::append(&mut second, &marked(&b), None))
            .await
            .expect("the second writer does not wait for the first")
            .unwrap();
    assert_eq!(appended, 2, "a chain of its own, from its start");
    assert_eq!(audit::append(&mut first, &marked(&a2), None).await.unwrap(), 2, "the first stays in chain 0");
    second.commit().await.unwrap();
    first.commit().await.unwrap();
    assert_eq!(database.chains().await, [(0, vec![1, 2]), (1, vec![1, 2])]);

    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("heads.txt");
    let exported = succeeded(database.nol(&["head", "--out", heads.to_str().unwrap()]).await);
    assert!(exported.starts_with("registry 2 ") && exported.contains("\nregistry/1 2 "), "{exported}");
    let report = succeeded(database.nol(&["verify", "--head", heads.to_str().unwrap()]).await);
    assert!(report.contains("4 entries checked in 2 chains"), "{report}");
    assert!(report.contains("exported heads: 2 still in the chain"), "{report}");

    // Chain 1's last entry cut off and its head set back: found against the exported head.
    let (seq_one,): (Vec<u8>,) = sqlx::query_as("SELECT hash FROM audit_log WHERE chain = 1 AND seq = 1")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    database
        .tamper(&[
            "DELETE FROM audit_log WHERE chain = 1 AND seq = 2",
            &format!(
                "UPDATE audit_chain SET seq = 1, hash = decode('{}', 'hex') WHERE chain = 1",
                hex::encode(seq_one)
            ),
        ])
        .await;
    succeeded(database.nol(&["verify"]).await);
    let report = failed(database.nol(&["verify", "--head", heads.to_str().unwrap()]).await);
    assert!(report.contains("chain 1") && report.contains("the exported head seq 2 is gone"), "{report}");
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_head_finds_a_cut_off_tail() {
    let database = AuditDatabase::new().await;
    six_entries(&database).await;
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("audit-heads.txt");
    let heads_arg = heads.to_str().unwrap();
    let exported = succeeded(database.nol(&["head", "--out", heads_arg]).await);
    let head = database.hash_of(6).await;
    assert!(exported.starts_with(&format!("registry 6 {head} ")), "{exported}");
    database.append(&["p7", "p8"], None).await;
    // A second export appends; both heads are still in the chain.
    succeeded(database.nol(&["head", "--out", heads_arg]).await);
    assert_eq!(std::fs::read_to_string(&heads).unwrap().lines().count(), 2);
    let report = succeeded(database.nol(&["verify", "--head", heads_arg]).await);
    assert!(report.contains("exported heads: 2 still in the chain"), "{report}");

    // The last entries deleted and the head row set back: the chain alone looks whole ...
    let seq_five = database.hash_of(5).await;
    database
        .tamper(&[
            "DELETE FROM audit_log WHERE chain = 0 AND seq > 5",
            &format!("UPDATE audit_chain SET seq = 5, hash = decode('{seq_five}', 'hex') WHERE chain = 0"),
        ])
        .await;
    succeeded(database.nol(&["verify"]).await);
    // ... but not against the heads kept outside.
    let report = failed(database.nol(&["verify", "--head", heads_arg]).await);
    assert!(report.contains("the exported head seq 8 is gone, the chain ends at seq 5"), "{report}");
    assert!(report.contains("链尾被截断"), "{report}");
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_six_months_and_the_chain_verifiable() {
    let database = AuditDatabase::new().await;
    database.append(&["old1", "old2", "old3"], Some(400)).await;
    database.append(&["half1", "half2"], Some(300)).await;
    database.append(&["new1", "new2"], None).await;
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("heads.txt");
    let heads_arg = heads.to_str().unwrap();
    succeeded(database.nol(&["head", "--out", heads_arg]).await);
    std::fs::write(
        &heads,
        format!("{}registry 2 {}\n", std::fs::read_to_string(&heads).unwrap(), database.hash_of(2).await),
    )
    .unwrap();

    // Less than six months is refused, before anything is touched.
    let refused = failed(database.nol(&["prune", "--older-than-days", "100"]).await);
    assert!(refused.contains("kept at least six months") && refused.contains("nothing was pruned"), "{refused}");
    assert_eq!(database.seqs().await.len(), 7);

    let report = succeeded(database.nol(&["prune", "--older-than-days", "350", "--actor", "运维员甲"]).await);
    assert!(report.contains("removed 3 entries"), "{report}");
    assert_eq!(database.seqs().await, [4, 5, 6, 7, 8]);
    let (action, resource): (String, String) =
        sqlx::query_as("SELECT action, resource_id FROM audit_log WHERE chain = 0 AND seq = 8")
            .fetch_one(&database.pool)
            .await
            .unwrap();
    assert_eq!(action, "audit.prune");
    assert!(resource.starts_with("3:"), "the prune records its anchor: {resource}");
    let report = succeeded(database.nol(&["verify", "--head", heads_arg]).await);
    assert!(report.contains("5 entries checked"), "{report}");
    assert!(report.contains("exported heads: 1 still in the chain, 1 pruned"), "{report}");

    // Pruning again later moves the anchor on; verify still passes.
    let report = succeeded(database.nol(&["prune", "--older-than-days", "200"]).await);
    assert!(report.contains("removed 2 entries"), "{report}");
    succeeded(database.nol(&["verify"]).await);

    // An anchor moved by hand to hide a deleted entry is not the one a prune recorded.
    let seq_six = database.hash_of(6).await;
    database
        .tamper(&[
            "DELETE FROM audit_log WHERE seq = 6",
            &format!("UPDATE audit_chain SET anchor_seq = 6, anchor_hash = decode('{seq_six}', 'hex') WHERE chain = 0"),
        ])
        .await;
    let report = failed(database.nol(&["verify"]).await);
    assert!(report.contains("the anchor at seq 6 is not the one the latest prune recorded"), "{report}");
    database.finish().await;
}

async fn audited(pool: &PgPool, schema_table: &str, action: &str, resource: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {schema_table} WHERE action = $1 AND resource_id = $2"
    )))
    .bind(action)
    .bind(resource)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_reads_are_audited_and_rejected_rows_keep_no_id_in_clear() {
    let clock = RuleClock::at("2027-03-01T09:00:00+08:00");
    let mut options = clock.options();
    options.extra_env.insert("NOL_IMPORT_ERRORS_SWEEP_SECS".into(), "0.2".into());
    let test = TestStack::start_with(options).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let registry_db = test.database("320000", "registry").await;
    let dir = tempfile::tempdir().unwrap();

    // A file with a good row and three rejected ones: a wrong check digit, an unknown school, and
    // a number typed into the name column.
    let good = resident_id("320102", 71);
    let unknown_school = resident_id("320102", 73);
    let in_the_name = resident_id("320102", 75);
    let mut wrong_check = resident_id("320102", 77);
    let last = wrong_check.pop().unwrap();
    wrong_check.push(if last == '1' { '2' } else { '1' });
    let mut csv = String::from("姓名,身份证号,户籍地,学校代码,年级\n");
    csv += &format!("好学生,{good},320102,3201020001,5\n");
    csv += &format!("错号,{wrong_check},320102,3201020001,5\n");
    csv += &format!("无校,{unknown_school},320102,9999999999,5\n");
    csv += &format!("{in_the_name},,320102,3201020001,5\n");
    let path = dir.path().join("pupils.csv");
    std::fs::write(&path, &csv).unwrap();
    let import = |path: std::path::PathBuf| {
        let clients = xuanwu.clone();
        async move {
            import_file(&clients, ImportTarget::Pupils, &path, uuid::Uuid::now_v7(), TextEncoding::Unspecified, |_| {})
                .await
                .expect("imported")
        }
    };
    let job = import(path.clone()).await;
    assert_eq!((job.rows_imported, job.rows_rejected), (1, 3), "{job:?}");

    // What the database keeps of the rejected rows: no number in clear, the ID cell masked.
    let kept: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT cells FROM import_row_error WHERE job_id = $1::uuid ORDER BY row_number")
            .bind(&job.job_id)
            .fetch_all(&registry_db)
            .await
            .unwrap();
    assert_eq!(kept.len(), 3);
    let kept_text = kept.iter().flatten().cloned().collect::<Vec<_>>().join("|");
    assert_eq!(common::resident_ids_in(kept_text.as_bytes()), Vec::<String>::new(), "{kept_text}");
    for number in [&wrong_check, &unknown_school, &in_the_name] {
        assert!(!kept_text.contains(number.as_str()), "{number} kept in clear: {kept_text}");
    }
    assert_eq!(kept[0][1], format!("**************{}", &wrong_check[14..]));
    assert_eq!(kept[1][1], format!("**************{}", &unknown_school[14..]));
    assert_eq!(kept[2][0], format!("**************{}", &in_the_name[14..]));
    assert_eq!(kept[1][0], "无校", "the other cells are kept for the bureau to fix the row");

    // The error file the bureau downloads carries the same, and its reading is audited.
    let (_, bytes) = common::import_errors(&xuanwu, &job.job_id).await.expect("error file");
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("错误原因") && text.contains("无校"), "{text}");
    assert_eq!(common::resident_ids_in(text.as_bytes()), Vec::<String>::new(), "{text}");
    assert!(!text.contains(wrong_check.as_str()), "{text}");
    assert_eq!(audited(&registry_db, "audit_log", "import.read_errors", &job.job_id).await, 1);

    // A pupil's status history is audited.
    let pupil_id = register_pupil(&xuanwu, "林小雨", &resident_id("320102", 79)).await;
    xuanwu
        .registry
        .clone()
        .list_pupil_status_changes(ListPupilStatusChangesRequest { pupil_id: pupil_id.clone() })
        .await
        .expect("history");
    assert_eq!(audited(&registry_db, "audit_log", "pupil.read_history", &pupil_id).await, 1);

    // A school's attendance mark at the semester-start check is audited.
    let case_id = open_case(&xuanwu, &pupil_id).await;
    common::cases::into_monitoring(&xuanwu, &case_id).await;
    let check = xuanwu
        .supervision
        .clone()
        .start_semester_check(StartSemesterCheckRequest {
            region_code: "320102".into(),
            semester: "2027-spring".into(),
            deadline: "2027-03-20".into(),
        })
        .await
        .expect("check started")
        .into_inner()
        .check
        .unwrap();
    let school = test.school_clients("320000", "320102", "3201020001");
    let items = school
        .supervision
        .clone()
        .list_semester_check_items(ListSemesterCheckItemsRequest { check_id: check.check_id, ..Default::default() })
        .await
        .expect("items")
        .into_inner()
        .items;
    let item = items.iter().find(|item| item.case_id == case_id).expect("the child is on the checklist");
    school
        .supervision
        .clone()
        .mark_semester_attendance(MarkSemesterAttendanceRequest { item_id: item.item_id.clone(), present: true })
        .await
        .expect("marked");
    let cases_db = test.database("320000", "cases").await;
    assert_eq!(audited(&cases_db, "audit_log", "semester_check.mark", &case_id).await, 1);
    xuanwu
        .supervision
        .clone()
        .list_supervision_items(ListSupervisionItemsRequest::default())
        .await
        .expect("supervision items");

    // A month later the rejected rows are gone (rows rejected since stay), and the error file
    // says why it is empty.
    clock.set("2027-04-01T09:00:00+08:00");
    let later = dir.path().join("later.csv");
    std::fs::write(&later, format!("姓名,身份证号,户籍地,学校代码,年级\n错号,{wrong_check},320102,3201020001,5\n"))
        .unwrap();
    let later_job = import(later).await;
    assert_eq!(later_job.rows_rejected, 1);
    let rows_of = |job_id: String| {
        let pool = registry_db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM import_row_error WHERE job_id = $1::uuid")
                .bind(job_id)
                .fetch_one(&pool)
                .await
        }
    };
    eventually("the first job's rejected rows swept", || {
        let rows = rows_of(job.job_id.clone());
        async move { Ok((rows.await? == 0).then_some(())) }
    })
    .await;
    assert_eq!(rows_of(later_job.job_id.clone()).await.unwrap(), 1);
    let expired = common::import_errors(&xuanwu, &job.job_id).await.unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(expired.message().contains("deleted after 30 days"), "{}", expired.message());

    // The services' own chains verify, all four schemas of the province.
    let url = test.stack().province("320000").database_url.clone();
    let report = succeeded(nol_audit(&url, &["verify"], &[]).await);
    for schema in ["registry", "cases", "transfer", "reporting"] {
        assert!(report.contains(&format!("{schema}: 审计链完好")), "{report}");
    }
    drop((registry_db, cases_db));
    test.finish().await;
}

/// The appends run with `plan_cache_mode = auto` (migration 0007): under the services'
/// `force_custom_plan` their statements were planned again on every call, a third of an append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_appends_plan_their_statements_as_postgresql_chooses() {
    let database = AuditDatabase::new().await;
    let configs: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT proname::text, coalesce(proconfig, '{}') FROM pg_proc
          WHERE proname IN ('audit_append', 'audit_append_each')
            AND pronamespace = to_regnamespace(current_schema() || '_audit')
          ORDER BY proname",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert_eq!(configs.len(), 2, "{configs:?}");
    for (function, config) in &configs {
        assert!(config.iter().any(|setting| setting == "plan_cache_mode=auto"), "{function}: {config:?}");
    }
    assert_eq!(database.append(&["p1"], None).await, 1, "the append still appends");
    let callers: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&database.pool).await.unwrap();
    assert_eq!(callers, "force_custom_plan", "the caller's own setting is its own");
    database.finish().await;
}
