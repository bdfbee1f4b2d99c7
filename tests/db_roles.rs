//! Least privilege in PostgreSQL (issue 12), on a running stack: every service connects as its own
//! role, which owns its schema and nothing else; the audit log is out of its reach but for the
//! append; the reporting reader reads and writes nothing; `nol audit verify` passes as the audit
//! reader; provisioning again changes nothing and sets passwords as SCRAM verifiers.

mod common;

use std::collections::BTreeSet;
use std::str::FromStr;

use common::{TestStack, open_case, register_pupil, resident_id};
use nol_auth::Role;
use nol_runtime::audit::{self, Entry};
use nol_runtime::provision::{self, Passwords, SERVICES};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// SQLSTATE insufficient_privilege: "permission denied", "must be owner".
const DENIED: &str = "42501";

/// A connection as `role` with the search path a service gets for `schema`.
async fn connect_as(url: &str, schema: &str) -> PgConnection {
    let options =
        PgConnectOptions::from_str(url).unwrap().options([("search_path", nol_runtime::database::search_path(schema))]);
    PgConnection::connect_with(&options).await.unwrap_or_else(|error| panic!("connecting as {url}: {error}"))
}

/// The SQLSTATE `statement` fails with, or None when it succeeds.
async fn sqlstate(conn: &mut PgConnection, statement: &str) -> Option<String> {
    let mut tx = conn.begin().await.unwrap();
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut *tx).await;
    tx.rollback().await.unwrap();
    match result {
        Ok(_) => None,
        Err(sqlx::Error::Database(error)) => Some(error.code().unwrap_or_default().into_owned()),
        Err(error) => panic!("{statement}: {error}"),
    }
}

async fn refused(conn: &mut PgConnection, who: &str, statement: &str) {
    assert_eq!(sqlstate(conn, statement).await.as_deref(), Some(DENIED), "{who}: {statement} was not refused");
}

async fn nol_audit(url: &str, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_nol"))
        .arg("audit")
        .args(args)
        .args(["--database-url", url])
        .env_remove("NOL_DATABASE_URL")
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_keeps_to_its_schema_and_cannot_rewrite_its_audit_log() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    // Audited work in two services: a pupil registered and read, a case opened.
    let pupil_id = register_pupil(&xuanwu, "王小明", &resident_id("320102", 21)).await;
    open_case(&xuanwu, &pupil_id).await;

    let province = test.stack().province("320000");
    let roles = province.roles.clone();
    let admin_url = province.database_url.clone();

    // Every service process connects as its own role; none as the superuser.
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let connected: BTreeSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let expected: BTreeSet<String> = SERVICES.iter().map(|service| roles.service(service)).collect();
    assert_eq!(connected, expected, "the services' connections");
    let superusers: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolsuper AND rolname = ANY($1) ORDER BY 1")
            .bind(roles.all())
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(superusers.is_empty(), "{superusers:?}");

    for service in SERVICES {
        let role = roles.service(service);
        let mut conn = connect_as(&province.role_url(&role), service).await;
        // Its own schema is its own.
        assert_eq!(sqlstate(&mut conn, "SELECT count(*) FROM outbox").await, None, "{role} reads its outbox");
        assert_eq!(
            sqlstate(&mut conn, "CREATE TABLE scratch (id int); DROP TABLE scratch").await,
            None,
            "{role} creates in its schema"
        );
        // Nothing of another service's.
        for other in SERVICES.iter().filter(|other| **other != service) {
            refused(&mut conn, &role, &format!("SELECT count(*) FROM {other}.outbox")).await;
            refused(&mut conn, &role, &format!("CREATE TABLE {other}.scratch (id int)")).await;
            refused(&mut conn, &role, &format!("SELECT count(*) FROM {other}_audit.audit_log")).await;
        }
        // No CREATE on the database (temporary objects, the session's own, it may make).
        refused(&mut conn, &role, "CREATE SCHEMA scratch").await;
        // The audit log: neither rewritten, nor emptied, dropped, altered or unguarded.
        for statement in [
            "UPDATE audit_log SET actor = 'someone-else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "INSERT INTO audit_log (seq, prev_hash, hash, actor, actor_role, actor_region, action, resource_type, resource_id) VALUES (0, '', '', '', '', '', '', '', '')",
            "UPDATE audit_chain SET seq = 0",
            "DELETE FROM audit_chain",
            "DROP TABLE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_insert_only",
            "ALTER TABLE audit_chain DISABLE TRIGGER ALL",
            "ALTER TABLE audit_log RENAME TO audit_log_old",
            "DROP TRIGGER audit_log_insert_only ON audit_log",
            &format!("DROP SCHEMA {service}_audit CASCADE"),
            &format!("ALTER SCHEMA {service}_audit RENAME TO elsewhere"),
            &format!("CREATE TABLE {service}_audit.scratch (id int)"),
            "DROP FUNCTION audit_append(text, text, text, text, text, text[], text, timestamptz)",
            // The chain-taking append underneath is the audit role's alone.
            "SELECT audit_append_to(0::smallint, 'x', 'x', 'x', 'x', 'x', ARRAY['x'], NULL, NULL)",
            "ALTER FUNCTION audit_append(text, text, text, text, text, text[], text, timestamptz) SECURITY INVOKER",
            "DROP FUNCTION audit_append_each(text[], text[], text[], text, text, text[], text[])",
            "ALTER FUNCTION audit_append_each(text[], text[], text[], text, text, text[], text[]) SECURITY INVOKER",
            &format!(
                "CREATE OR REPLACE FUNCTION {service}_audit.audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
            ),
            "SELECT audit_prune(now() - interval '200 days', 'x', 'operator', '320000', NULL)",
        ] {
            refused(&mut conn, &role, statement).await;
        }
        // Its normal path appends.
        let before = head_seq(&mut admin, service).await;
        let ids = vec![format!("check-{service}")];
        let entry = Entry {
            actor: "db_roles",
            role: "system",
            region: "320000",
            action: "roles.check",
            resource_type: "test",
            resource_ids: &ids,
            trace_id: None,
        };
        audit::append(&mut conn, &entry, None).await.expect("the service appends");
        assert_eq!(head_seq(&mut admin, service).await, before + 1, "{role}");
        conn.close().await.unwrap();
    }

    // The reporting reader reads the reporting schema, tables its migrations made included, and
    // writes nothing; it reads no other schema.
    let reader = roles.reporting_reader();
    let mut conn = connect_as(&province.role_url(&reader), "reporting").await;
    for table in ["daily_count", "report", "handoff_side", "outbox"] {
        assert_eq!(sqlstate(&mut conn, &format!("SELECT count(*) FROM reporting.{table}")).await, None, "{table}");
    }
    for statement in [
        "INSERT INTO reporting.inbox DEFAULT VALUES",
        "DELETE FROM reporting.daily_count",
        "UPDATE reporting.daily_count SET value = value",
        "CREATE TABLE reporting.scratch (id int)",
        "SELECT count(*) FROM registry.pupil",
        "SELECT count(*) FROM cases.outbox",
        "SELECT count(*) FROM reporting_audit.audit_log",
        "SELECT reporting_audit.audit_append('x', 'x', 'x', 'x', 'x', ARRAY['x'], NULL)",
        "SELECT reporting_audit.audit_append_each(ARRAY['x'], ARRAY['x'], ARRAY['x'], 'x', 'x', ARRAY['x'], ARRAY[NULL])",
        "CREATE TEMPORARY TABLE scratch (id int)",
    ] {
        refused(&mut conn, &reader, statement).await;
    }
    conn.close().await.unwrap();

    // The audit reader verifies every chain (the entries appended above included) and changes nothing.
    let audit_reader_url = province.role_url(&roles.audit_reader());
    let (ok, report) = nol_audit(&audit_reader_url, &["verify"]).await;
    assert!(ok, "{report}");
    for service in SERVICES {
        assert!(report.contains(&format!("{service}: 审计链完好")), "{report}");
    }
    let mut conn = connect_as(&audit_reader_url, "registry").await;
    refused(&mut conn, "audit reader", "UPDATE audit_log SET actor = 'x'").await;
    refused(&mut conn, "audit reader", "SELECT count(*) FROM registry.pupil").await;
    conn.close().await.unwrap();
    // Pruning is the admin's, not the reader's.
    let (pruned_by_reader, _) = nol_audit(&audit_reader_url, &["prune", "--older-than-days", "183"]).await;
    assert!(!pruned_by_reader, "the audit reader pruned");
    let (pruned, report) = nol_audit(&admin_url, &["prune", "--older-than-days", "183"]).await;
    assert!(pruned, "{report}");

    // Another province's roles cannot even connect here.
    let anhui = test.stack().province("340000");
    let stranger = anhui.roles.service("registry");
    let error =
        PgConnection::connect(&province.role_url(&stranger)).await.expect_err("another province's role connects");
    assert_eq!(error.as_database_error().and_then(|error| error.code()).as_deref(), Some(DENIED), "{error}");

    // Provisioning again changes nothing that works, and sets a password as a SCRAM verifier
    // PostgreSQL keeps as it came.
    let mut passwords = Passwords::default();
    passwords.set("AUDIT_READ", "correct horse battery staple");
    let again = provision::provision(&admin_url, &passwords).await.expect("provisioned again");
    assert_eq!(again.passwords_set, vec![roles.audit_reader()]);
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(roles.audit_reader())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let (_, salt) = provision::scram_salt(&stored).expect("a SCRAM verifier");
    assert_eq!(stored, provision::scram_verifier("correct horse battery staple", &salt, 4096));
    // The verifier computed here is the one PostgreSQL computes itself for the same salt.
    let mut tx = admin.begin().await.unwrap();
    sqlx::raw_sql(
        "SET LOCAL password_encryption = 'scram-sha-256'; CREATE ROLE nol_scram_probe PASSWORD 'correct horse battery staple'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let theirs: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'nol_scram_probe'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let (iterations, their_salt) = provision::scram_salt(&theirs).expect("a SCRAM verifier");
    assert_eq!(theirs, provision::scram_verifier("correct horse battery staple", &their_salt, iterations));

    // The services still work on their roles after it, and every chain still verifies.
    xuanwu
        .registry
        .clone()
        .get_pupil(nol_proto::v1::GetPupilRequest { pupil_id: pupil_id.clone(), view: 0 })
        .await
        .expect("the registry still serves");
    let (ok, report) = nol_audit(&admin_url, &["verify"]).await;
    assert!(ok, "{report}");
    admin.close().await.unwrap();
    test.finish().await;
}

/// The entries appended so far, over all the schema's chains (each head's seq).
async fn head_seq(admin: &mut PgConnection, service: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT sum(seq)::bigint FROM {service}_audit.audit_chain")))
        .fetch_one(admin)
        .await
        .unwrap()
}

/// A database as the services left it before issue 12: everything made by the superuser, the
/// audit log with its entries in each service's schema. Provisioning moves the log, entries and
/// all, to the audit schema, hands every object to its role, and the chain still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_an_older_database_moves_its_audit_log_and_hands_over_its_tables() {
    use nol_stack::postgres;
    let name = format!("nol_t{}_upgrade", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let admin_url = postgres::create_database(&postgres::default_admin_url(), &name).await.unwrap();
    let cleanup = DropDatabase(name.clone());

    let ids: Vec<String> = (1..=3).map(|index| format!("p{index}")).collect();
    for service in SERVICES {
        let pool = nol_runtime::database::connect(&admin_url, service, 2).await.unwrap();
        // The runtime's first two migrations only, as they ran before the audit schema existed.
        let mut runtime = sqlx::migrate!("crates/nol-runtime/migrations");
        runtime.migrations = std::borrow::Cow::Owned(runtime.migrations[..2].to_vec());
        runtime.dangerous_set_table_name("_runtime_migrations");
        runtime.run(&pool).await.unwrap();
        nol_backbone::migrate(&pool).await.unwrap();
        let entry = Entry {
            actor: "caseworker@320102",
            role: "caseworker",
            region: "320102",
            action: "pupil.read",
            resource_type: "pupil",
            resource_ids: &ids,
            trace_id: None,
        };
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(audit::append(&mut conn, &entry, None).await.unwrap(), 3);
        let in_own_schema: bool =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT to_regclass('{service}.audit_log') IS NOT NULL")))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert!(in_own_schema);
        drop(conn);
        pool.close().await;
    }

    let done = provision::provision(&admin_url, &Passwords::default()).await.expect("provisioned");
    let roles = done.roles;
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    for service in SERVICES {
        let (moved, left): (bool, bool) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT to_regclass('{service}_audit.audit_log') IS NOT NULL, to_regclass('{service}.audit_log') IS NOT NULL"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(moved && !left, "{service}: the audit log moved");
        // Everything left in the service's schema is its role's; the audit schema is the audit role's.
        let owners: Vec<(String, String)> = sqlx::query_as(
            "SELECT n.nspname::text, pg_get_userbyid(c.relowner)::text FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
              WHERE n.nspname IN ($1, $1 || '_audit') GROUP BY 1, 2 ORDER BY 1",
        )
        .bind(service)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert_eq!(
            owners,
            vec![(service.to_owned(), roles.service(service)), (format!("{service}_audit"), roles.audit())],
            "{service}"
        );
        // The service's role appends after the moved entries, and the chain verifies from the first.
        let mut conn = connect_as(&postgres::role_url(&admin_url, &roles.service(service)), service).await;
        let entry = Entry {
            actor: "system",
            role: "system",
            region: "320000",
            action: "pupil.read",
            resource_type: "pupil",
            resource_ids: &ids[..1],
            trace_id: None,
        };
        assert_eq!(audit::append(&mut conn, &entry, None).await.unwrap(), 4);
        refused(&mut conn, &roles.service(service), "DELETE FROM audit_log").await;
        conn.close().await.unwrap();
        let mut reader = connect_as(&postgres::role_url(&admin_url, &roles.audit_reader()), service).await;
        let verified = nol_runtime::audit::verify::verify(&mut reader, &[]).await.unwrap().expect("the chain verifies");
        assert_eq!(verified.entries, 4, "{service}");
        reader.close().await.unwrap();
    }
    // Provisioning again finds nothing to do.
    provision::provision(&admin_url, &Passwords::default()).await.expect("provisioned again");
    admin.close().await.unwrap();
    drop(cleanup);
}

/// Drops the database (and its roles) when the test ends, passed or not.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = nol_stack::postgres::default_admin_url();
                if let Err(error) = nol_stack::postgres::drop_database(&admin, &name).await {
                    eprintln!("{name} not dropped: {error:#}");
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}
