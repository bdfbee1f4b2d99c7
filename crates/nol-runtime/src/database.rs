//! The province database: one per province, one schema per service.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// SQLSTATE of a unique violation.
pub const UNIQUE_VIOLATION: &str = "23505";

/// Connects with `search_path` set to the service's schema, creating the schema if needed, so
/// every service (and its migrations table) lives apart in the shared database.
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
    // An identifier cannot be a bind parameter: the server quotes it (`%I`), and the statement it
    // returns is executed as it came, so no SQL is ever put together here.
    let create =
        sqlx::query_scalar!(r#"SELECT format('CREATE SCHEMA IF NOT EXISTS %I', $1::text) AS "statement!""#, schema)
            .fetch_one(&bootstrap)
            .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&bootstrap).await?;
    bootstrap.close().await;
    let options = base.options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the runtime's own tables (the audit log) in the pool's schema.
pub async fn migrate_runtime(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("_runtime_migrations");
    migrator.run(pool).await
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
