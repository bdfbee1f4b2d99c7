//! Rows counted straight from a province's database, for what the API does not show: outboxes,
//! and rows that must not have been written. Every table is named with its service's schema, so
//! any pool of the province reads it.

use sqlx::PgPool;

/// Pupils in the registry.
pub async fn pupils(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM registry.pupil"#).fetch_one(database).await
}

/// Events in the registry's outbox, sent or not.
pub async fn registry_events(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM registry.outbox"#).fetch_one(database).await
}

/// Events the registry's outbox has not published yet.
pub async fn registry_unsent(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM registry.outbox WHERE sent_at IS NULL"#)
        .fetch_one(database)
        .await
}

/// Cases in the case service.
pub async fn cases(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM cases.dropout_case"#).fetch_one(database).await
}

/// Events in the case service's outbox, sent or not.
pub async fn case_events(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM cases.outbox"#).fetch_one(database).await
}

/// Hand-offs in the transfer service, either direction.
pub async fn handoffs(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM transfer.handoff"#).fetch_one(database).await
}

/// Events the transfer service's outbox has not published yet.
pub async fn transfer_unsent(database: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM transfer.outbox WHERE sent_at IS NULL"#)
        .fetch_one(database)
        .await
}
