//! The province database: one per province, one schema per service.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// SQLSTATE of a unique violation.
pub const UNIQUE_VIOLATION: &str = "23505";

/// The schema of `schema`'s audit log: `<schema>_audit`, owned by the database's audit role (see
/// [`crate::provision`]), which the service may only append to through `audit_append`.
pub fn audit_schema(schema: &str) -> String {
    format!("{schema}_audit")
}

/// Connects with `search_path` set to the service's schema and then its audit schema, so every
/// service (and its migrations table) lives apart in the shared database, and the audit log is
/// found by its plain names. The service's schema is created only when missing: a service's role
/// has no CREATE on the database, and PostgreSQL checks that privilege before `IF NOT EXISTS`.
pub async fn connect(url: &str, schema: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
        "a schema name is lowercase letters and '_', got {schema:?}"
    );
    let base = PgConnectOptions::from_str(url)?;
    let bootstrap = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(base.clone())
        .await?;
    let exists =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS "exists!""#, schema)
            .fetch_one(&bootstrap)
            .await?;
    if !exists {
        // An identifier cannot be a bind parameter: the server quotes it (`%I`), and the statement
        // it returns is executed as it came, so no SQL is ever put together here.
        let create =
            sqlx::query_scalar!(r#"SELECT format('CREATE SCHEMA IF NOT EXISTS %I', $1::text) AS "statement!""#, schema)
                .fetch_one(&bootstrap)
                .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&bootstrap).await?;
    }
    bootstrap.close().await;
    // Every region query filters a subtree by prefix (`region LIKE $1 || '%'`). A prepared
    // statement's generic plan cannot turn an unknown prefix into index bounds, so it scans the
    // table; PostgreSQL switches a statement to its generic plan once the custom plans of earlier
    // calls looked dearer on average — after a few province-wide calls, a county's call then
    // scanned the whole province (issue 13: the county's overdue list went from ~1 ms to ~45 ms
    // in the cases bench). Planning each call for its own prefix costs a fraction of that. The
    // backbone's consumer batches and relay passes, which look rows up by key, set `auto` for
    // their own transactions (issue 13, sixth part).
    let options =
        base.options([("search_path", search_path(schema).as_str()), ("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out (`test_before_acquire`): a round trip before
        // every call's first statement, two for a call that acquires twice (issue 13's profile).
        // A connection in steady use is known to be alive; only one idle for a while is pinged,
        // and a connection that broke anyway fails its statement and is discarded by the pool.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

/// `<schema>,<schema>_audit`: the service's own objects first, then its audit log.
pub fn search_path(schema: &str) -> String {
    format!("{schema},{}", audit_schema(schema))
}

/// Applies the runtime's own tables (the audit log) in the pool's schema and its audit schema.
/// The last of them moves the log to the audit schema and needs CREATE on the database: on a
/// provisioned database `nol db provision` has applied them all, and a service finds nothing to do.
pub async fn migrate_runtime(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("_runtime_migrations");
    migrator.run(pool).await
}

/// Fails when the pool connects as a superuser: a service connects as its own role
/// (`<database>_<service>`, made by `nol db provision`), which owns its schema and nothing else.
pub async fn refuse_superuser(pool: &PgPool) -> anyhow::Result<()> {
    let who = sqlx::query!(
        r#"SELECT current_user AS "user!", (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS "superuser!""#
    )
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        !who.superuser,
        "NOL_DATABASE_URL connects as {}, a superuser: a service connects as its own role (<database>_<service>), \
         which `nol db provision` makes (服务不得以超级用户连接数据库)",
        who.user
    );
    Ok(())
}

/// True when `error` is a unique violation (of `constraint`, when given), by SQLSTATE.
pub fn is_unique_violation(error: &sqlx::Error, constraint: Option<&str>) -> bool {
    match error {
        sqlx::Error::Database(database_error) => {
            database_error.code().as_deref() == Some(UNIQUE_VIOLATION)
                && constraint.is_none_or(|name| database_error.constraint() == Some(name))
        }
        _ => false,
    }
}
