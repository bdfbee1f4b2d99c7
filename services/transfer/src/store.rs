//! The transfer service's SQL.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Direction, State};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoffRow {
    pub id: Uuid,
    pub direction: String,
    pub state: String,
    pub case_id: Uuid,
    pub origin_region: String,
    pub destination_region: String,
    pub reason: String,
    pub child_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
    pub sealed_dossier: Option<Vec<u8>>,
    pub trace_context: sqlx::types::Json<HashMap<String, String>>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub request_event_id: Option<Uuid>,
    pub resend_count: i32,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalated_to: Option<String>,
}

const COLUMNS: &str = "id, direction, state, case_id, origin_region, destination_region, reason, child_name,
    resident_id_masked, sex, birth_date, hukou_region, sealed_dossier, trace_context, requested_by, requested_at,
    delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to";

/// A new row: an outgoing request here, or an incoming one received.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub id: Uuid,
    pub direction: Direction,
    pub state: State,
    pub case_id: Uuid,
    pub origin_region: String,
    pub destination_region: String,
    pub reason: String,
    pub child_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
    pub sealed_dossier: Option<Vec<u8>>,
    pub trace_context: HashMap<String, String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
}

/// Inserts the row unless it exists; returns it when inserted.
pub async fn insert(conn: &mut PgConnection, handoff: &NewHandoff) -> sqlx::Result<Option<HandoffRow>> {
    let delivered_at = (handoff.state == State::Delivered).then(Utc::now);
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO handoff (id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                              resident_id_masked, sex, birth_date, hukou_region, sealed_dossier, trace_context,
                              requested_by, requested_at, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id, direction) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(handoff.id)
    .bind(handoff.direction.as_str())
    .bind(handoff.state.as_str())
    .bind(handoff.case_id)
    .bind(&handoff.origin_region)
    .bind(&handoff.destination_region)
    .bind(&handoff.reason)
    .bind(&handoff.child_name)
    .bind(&handoff.resident_id_masked)
    .bind(handoff.sex)
    .bind(handoff.birth_date)
    .bind(&handoff.hukou_region)
    .bind(&handoff.sealed_dossier)
    .bind(sqlx::types::Json(&handoff.trace_context))
    .bind(&handoff.requested_by)
    .bind(handoff.requested_at)
    .bind(delivered_at)
    .fetch_optional(conn)
    .await
}

pub async fn get<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    id: Uuid,
    direction: Direction,
) -> sqlx::Result<Option<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff WHERE id = $1 AND direction = $2"
    )))
    .bind(id)
    .bind(direction.as_str())
    .fetch_optional(executor)
    .await
}

/// Both sides of a hand-off held here (two rows only for a hand-off inside the province).
pub async fn get_any(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff WHERE id = $1 ORDER BY direction"
    )))
    .bind(id)
    .fetch_all(pool)
    .await
}

pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
) -> sqlx::Result<Option<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff WHERE id = $1 AND direction = $2 FOR UPDATE"
    )))
    .bind(id)
    .bind(direction.as_str())
    .fetch_optional(conn)
    .await
}

/// Moves a row to `state`, stamping the step's time (and who accepted).
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: State,
    accepted_by: Option<&str>,
) -> sqlx::Result<HandoffRow> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE handoff
            SET state = $3,
                delivered_at = CASE WHEN $3 IN ('delivered', 'accepted') THEN coalesce(delivered_at, clock_timestamp())
                                    ELSE delivered_at END,
                accepted_at = CASE WHEN $3 = 'accepted' THEN clock_timestamp() ELSE accepted_at END,
                accepted_by = coalesce($4, accepted_by),
                updated_at = clock_timestamp()
          WHERE id = $1 AND direction = $2
          RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(direction.as_str())
    .bind(state.as_str())
    .bind(accepted_by)
    .fetch_one(conn)
    .await
}

/// Records that an outgoing request went out as event `event_id` (first send or a re-send).
pub async fn mark_sent(conn: &mut PgConnection, id: Uuid, event_id: Uuid, resend: bool) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE handoff SET request_event_id = $2, last_sent_at = clock_timestamp(),
                resend_count = resend_count + CASE WHEN $3 THEN 1 ELSE 0 END
          WHERE id = $1 AND direction = 'outgoing'",
    )
    .bind(id)
    .bind(event_id)
    .bind(resend)
    .execute(conn)
    .await?;
    Ok(())
}

/// Restarts the wait for an answer without counting a re-send (the first send is still queued).
pub async fn touch_sent(conn: &mut PgConnection, id: Uuid, event_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE handoff SET last_sent_at = clock_timestamp() WHERE id = $1 AND request_event_id = $2")
        .bind(id)
        .bind(event_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Outgoing hand-offs not accepted whose last send is older than `base` × 2^resends (at most an
/// hour), locked for this sweeper.
pub async fn due_for_resend(conn: &mut PgConnection, base_seconds: f64, limit: i64) -> sqlx::Result<Vec<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff
          WHERE direction = 'outgoing' AND state <> 'accepted'
            AND last_sent_at + make_interval(secs => least($1 * power(2, least(resend_count, 20)), 3600))
                < clock_timestamp()
          ORDER BY last_sent_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED"
    )))
    .bind(base_seconds)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Outgoing hand-offs not accepted within `deadline_seconds` and not yet escalated.
pub async fn due_for_escalation(
    conn: &mut PgConnection,
    deadline_seconds: f64,
    limit: i64,
) -> sqlx::Result<Vec<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff
          WHERE direction = 'outgoing' AND state <> 'accepted' AND escalated_at IS NULL
            AND requested_at + make_interval(secs => $1) < clock_timestamp()
          ORDER BY requested_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED"
    )))
    .bind(deadline_seconds)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn mark_escalated(conn: &mut PgConnection, id: Uuid, escalated_to: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE handoff SET escalated_at = clock_timestamp(), escalated_to = $2, updated_at = clock_timestamp()
          WHERE id = $1 AND direction = 'outgoing'",
    )
    .bind(id)
    .bind(escalated_to)
    .execute(conn)
    .await?;
    Ok(())
}

/// Outgoing hand-offs not yet accepted, and of those the escalated ones (admin gauges).
pub async fn unanswered_counts(pool: &PgPool) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE escalated_at IS NOT NULL) FROM handoff
          WHERE direction = 'outgoing' AND state <> 'accepted'",
    )
    .fetch_one(pool)
    .await
}

/// Filters of a hand-off list.
pub struct ListFilter<'a> {
    pub prefix: &'a str,
    pub direction: Option<Direction>,
    pub state: Option<State>,
    pub escalated_only: bool,
}

/// Hand-offs whose own side's region (origin for outgoing, destination for incoming) lies in the
/// subtree, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter<'_>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<HandoffRow>> {
    sqlx::query_as::<_, HandoffRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM handoff
          WHERE ((direction = 'outgoing' AND origin_region LIKE $1 || '%')
              OR (direction = 'incoming' AND destination_region LIKE $1 || '%'))
            AND ($2::text IS NULL OR direction = $2)
            AND ($3::text IS NULL OR state = $3)
            AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5))
            AND (NOT $7 OR escalated_at IS NOT NULL)
          ORDER BY requested_at DESC, id DESC
          LIMIT $6"
    )))
    .bind(filter.prefix)
    .bind(filter.direction.map(Direction::as_str))
    .bind(filter.state.map(State::as_str))
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .bind(filter.escalated_only)
    .fetch_all(pool)
    .await
}
