//! The suspected-dropout ledger's SQL.

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{Origin, State};

/// An item as stored (the resident ID number encrypted).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuspectRow {
    pub id: Uuid,
    pub region: String,
    pub origin: String,
    pub state: String,
    pub pupil_id: Option<Uuid>,
    pub check_item_id: Option<Uuid>,
    pub child_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: Option<NaiveDate>,
    pub hukou_region: String,
    pub residence_region: String,
    pub reason: String,
    pub days_missed: Option<i32>,
    pub absent_since: Option<NaiveDate>,
    pub school_code: Option<String>,
    pub notes: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub recorded_on: NaiveDate,
    pub outcome: Option<String>,
    pub proof: Option<serde_json::Value>,
    pub case_id: Option<Uuid>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_on: Option<NaiveDate>,
    pub version: i64,
}

const COLUMNS: &str = "id, region, origin, state, pupil_id, check_item_id, child_name, resident_id_cipher,
    resident_id_masked, sex, birth_date, hukou_region, residence_region, reason, days_missed,
    absent_since, school_code, notes, recorded_by, recorded_at, recorded_on, outcome, proof, case_id, resolved_by,
    resolved_at, resolved_on, version";

/// An item to record.
#[derive(Debug, Clone)]
pub struct NewSuspect {
    pub id: Uuid,
    pub region: String,
    pub origin: Origin,
    pub pupil_id: Option<Uuid>,
    pub check_item_id: Option<Uuid>,
    pub child_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_index: Option<Vec<u8>>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: Option<NaiveDate>,
    pub hukou_region: String,
    pub residence_region: String,
    pub reason: String,
    pub days_missed: Option<i32>,
    pub absent_since: Option<NaiveDate>,
    pub school_code: Option<String>,
    pub notes: String,
    pub recorded_by: String,
    pub recorded_on: NaiveDate,
}

/// Records an item unless the child already has a pending one (any of the `suspect_one_pending_*`
/// indexes); `None` then.
pub async fn insert(conn: &mut PgConnection, item: &NewSuspect) -> sqlx::Result<Option<SuspectRow>> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO suspect (id, region, origin, pupil_id, check_item_id, child_name, resident_id_cipher,
                              resident_id_index, resident_id_masked, sex, birth_date, hukou_region, residence_region,
                              reason, days_missed, absent_since, school_code, notes, recorded_by, recorded_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(item.id)
    .bind(&item.region)
    .bind(item.origin.as_str())
    .bind(item.pupil_id)
    .bind(item.check_item_id)
    .bind(&item.child_name)
    .bind(&item.resident_id_cipher)
    .bind(&item.resident_id_index)
    .bind(&item.resident_id_masked)
    .bind(item.sex)
    .bind(item.birth_date)
    .bind(&item.hukou_region)
    .bind(&item.residence_region)
    .bind(&item.reason)
    .bind(item.days_missed)
    .bind(item.absent_since)
    .bind(&item.school_code)
    .bind(&item.notes)
    .bind(&item.recorded_by)
    .bind(item.recorded_on)
    .fetch_optional(conn)
    .await
}

/// The pending item of the same child as `item` (by pupil, check item or blind index).
pub async fn find_pending(pool: &PgPool, item: &NewSuspect) -> sqlx::Result<Option<SuspectRow>> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM suspect
          WHERE state = 'pending'
            AND (pupil_id = $1 OR check_item_id = $2 OR resident_id_index = $3)
          LIMIT 1"
    )))
    .bind(item.pupil_id)
    .bind(item.check_item_id)
    .bind(&item.resident_id_index)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<SuspectRow>> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM suspect WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Reads an item and locks it for its resolution in this transaction.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<SuspectRow>> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM suspect WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Items recorded in the subtree whose codes start with `prefix`, newest first.
pub async fn list(
    pool: &PgPool,
    prefix: &str,
    state: Option<State>,
    origin: Option<Origin>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<SuspectRow>> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM suspect
          WHERE region LIKE $1 || '%'
            AND ($2::text IS NULL OR state = $2)
            AND ($3::text IS NULL OR origin = $3)
            AND ($4::timestamptz IS NULL OR (recorded_at, id) < ($4, $5))
          ORDER BY recorded_at DESC, id DESC
          LIMIT $6"
    )))
    .bind(prefix)
    .bind(state.map(State::as_str))
    .bind(origin.map(Origin::as_str))
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How a pending item leaves the ledger.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    pub state: State,
    pub outcome: &'a str,
    pub proof: Option<serde_json::Value>,
    pub case_id: Option<Uuid>,
    pub resolved_by: &'a str,
    pub resolved_on: NaiveDate,
    /// Appended to the item's notes, when not empty.
    pub notes: &'a str,
}

/// Resolves a pending item (the caller holds its lock and has checked it is pending).
pub async fn resolve(conn: &mut PgConnection, id: Uuid, resolution: &Resolution<'_>) -> sqlx::Result<SuspectRow> {
    sqlx::query_as::<_, SuspectRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE suspect
            SET state = $2, outcome = $3, proof = $4, case_id = $5, resolved_by = $6, resolved_on = $7,
                resolved_at = clock_timestamp(),
                notes = CASE WHEN $8 = '' THEN notes WHEN notes = '' THEN $8 ELSE notes || E'\\n' || $8 END,
                version = version + 1
          WHERE id = $1 AND state = 'pending'
          RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(resolution.state.as_str())
    .bind(resolution.outcome)
    .bind(&resolution.proof)
    .bind(resolution.case_id)
    .bind(resolution.resolved_by)
    .bind(resolution.resolved_on)
    .bind(resolution.notes)
    .fetch_one(conn)
    .await
}

/// The child's one active case (R2), if any: (case id, status, region). Matches the partial
/// unique index `dropout_case_one_active_per_child`.
pub async fn active_case(conn: &mut PgConnection, index: &[u8]) -> sqlx::Result<Option<(Uuid, String, String)>> {
    sqlx::query_as(
        "SELECT id, status, region FROM dropout_case
          WHERE resident_id_index = $1 AND status NOT IN ('handed_over', 'exempt', 'closed')",
    )
    .bind(index)
    .fetch_optional(conn)
    .await
}
