//! The SQL of the suspected-dropout ledger's one table, `suspect`; rows decoded into
//! [`SuspectItem`] once.

use chrono::{DateTime, NaiveDate, Utc};
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{Origin, Outcome, State, SuspectItem};
use crate::case::domain::stored::Stored;
use crate::case::store::{CorruptRow, decode, region};

/// A `suspect` row as stored (every column; the resident ID number encrypted).
struct SuspectRow {
    id: Uuid,
    region: String,
    origin: String,
    state: String,
    pupil_id: Option<Uuid>,
    check_item_id: Option<Uuid>,
    child_name: String,
    resident_id_cipher: Option<Vec<u8>>,
    resident_id_index: Option<Vec<u8>>,
    resident_id_masked: String,
    sex: i16,
    birth_date: Option<NaiveDate>,
    hukou_region: String,
    residence_region: String,
    reason: String,
    days_missed: Option<i32>,
    absent_since: Option<NaiveDate>,
    school_code: Option<String>,
    notes: String,
    recorded_by: String,
    recorded_at: DateTime<Utc>,
    recorded_on: NaiveDate,
    outcome: Option<String>,
    proof: Option<serde_json::Value>,
    case_id: Option<Uuid>,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_on: Option<NaiveDate>,
    version: i64,
}

impl TryFrom<SuspectRow> for SuspectItem {
    type Error = CorruptRow;

    fn try_from(row: SuspectRow) -> Result<SuspectItem, CorruptRow> {
        let id = row.id;
        Ok(SuspectItem {
            region: region("suspect", id, "region", &row.region)?,
            origin: decode::<Origin>("suspect", id, "origin", &row.origin)?,
            state: decode::<State>("suspect", id, "state", &row.state)?,
            outcome: row.outcome.map(|outcome| decode::<Outcome>("suspect", id, "outcome", &outcome)).transpose()?,
            id,
            pupil_id: row.pupil_id,
            check_item_id: row.check_item_id,
            child_name: row.child_name,
            resident_id_cipher: row.resident_id_cipher,
            resident_id_index: row.resident_id_index,
            resident_id_masked: row.resident_id_masked,
            sex: row.sex,
            birth_date: row.birth_date,
            hukou_region: row.hukou_region,
            residence_region: row.residence_region,
            reason: row.reason,
            days_missed: row.days_missed,
            absent_since: row.absent_since,
            school_code: row.school_code,
            notes: row.notes,
            recorded_by: row.recorded_by,
            recorded_at: row.recorded_at,
            recorded_on: row.recorded_on,
            proof: row.proof,
            case_id: row.case_id,
            resolved_by: row.resolved_by,
            resolved_at: row.resolved_at,
            resolved_on: row.resolved_on,
            version: row.version,
        })
    }
}

fn item(row: Option<SuspectRow>) -> sqlx::Result<Option<SuspectItem>> {
    row.map(SuspectItem::try_from).transpose().map_err(sqlx::Error::from)
}

/// An item to record.
#[derive(Debug, Clone)]
pub struct NewSuspect {
    pub id: Uuid,
    pub region: RegionCode,
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
pub async fn insert(conn: &mut PgConnection, new: &NewSuspect) -> sqlx::Result<Option<SuspectItem>> {
    item(
        sqlx::query_as!(
            SuspectRow,
            "INSERT INTO suspect (id, region, origin, pupil_id, check_item_id, child_name, resident_id_cipher,
                                  resident_id_index, resident_id_masked, sex, birth_date, hukou_region,
                                  residence_region, reason, days_missed, absent_since, school_code, notes,
                                  recorded_by, recorded_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
             ON CONFLICT DO NOTHING
             RETURNING *",
            new.id,
            new.region.as_str(),
            new.origin.as_stored(),
            new.pupil_id,
            new.check_item_id,
            new.child_name,
            new.resident_id_cipher,
            new.resident_id_index,
            new.resident_id_masked,
            new.sex,
            new.birth_date,
            new.hukou_region,
            new.residence_region,
            new.reason,
            new.days_missed,
            new.absent_since,
            new.school_code,
            new.notes,
            new.recorded_by,
            new.recorded_on,
        )
        .fetch_optional(conn)
        .await?,
    )
}

/// The pending item of the same child as `new` (by pupil, check item or blind index).
pub async fn find_pending(pool: &PgPool, new: &NewSuspect) -> sqlx::Result<Option<SuspectItem>> {
    item(
        sqlx::query_as!(
            SuspectRow,
            "SELECT * FROM suspect
              WHERE state = 'pending'
                AND (pupil_id = $1 OR check_item_id = $2 OR resident_id_index = $3)
              LIMIT 1",
            new.pupil_id,
            new.check_item_id,
            new.resident_id_index,
        )
        .fetch_optional(pool)
        .await?,
    )
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<SuspectItem>> {
    item(sqlx::query_as!(SuspectRow, "SELECT * FROM suspect WHERE id = $1", id).fetch_optional(pool).await?)
}

/// Reads an item and locks it for its resolution in this transaction.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<SuspectItem>> {
    item(sqlx::query_as!(SuspectRow, "SELECT * FROM suspect WHERE id = $1 FOR UPDATE", id).fetch_optional(conn).await?)
}

/// Items recorded in the subtree whose codes start with `prefix`, newest first.
pub async fn list(
    pool: &PgPool,
    prefix: &str,
    state: Option<State>,
    origin: Option<Origin>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<SuspectItem>> {
    let rows = sqlx::query_as!(
        SuspectRow,
        "SELECT * FROM suspect
          WHERE region LIKE $1 || '%'
            AND ($2::text IS NULL OR state = $2)
            AND ($3::text IS NULL OR origin = $3)
            AND ($4::timestamptz IS NULL OR (recorded_at, id) < ($4, $5))
          ORDER BY recorded_at DESC, id DESC
          LIMIT $6",
        prefix,
        state.map(State::as_stored),
        origin.map(Origin::as_stored),
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|row| SuspectItem::try_from(row).map_err(sqlx::Error::from)).collect()
}

/// How a pending item leaves the ledger.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    pub state: State,
    pub outcome: Outcome,
    pub proof: Option<serde_json::Value>,
    pub case_id: Option<Uuid>,
    pub resolved_by: &'a str,
    pub resolved_on: NaiveDate,
    /// Appended to the item's notes, when not empty.
    pub notes: &'a str,
}

/// Resolves a pending item (the caller holds its lock and has checked it is pending).
pub async fn resolve(conn: &mut PgConnection, id: Uuid, resolution: &Resolution<'_>) -> sqlx::Result<SuspectItem> {
    let row = sqlx::query_as!(
        SuspectRow,
        r#"UPDATE suspect
              SET state = $2, outcome = $3, proof = $4, case_id = $5, resolved_by = $6, resolved_on = $7,
                  resolved_at = clock_timestamp(),
                  notes = CASE WHEN $8 = '' THEN notes WHEN notes = '' THEN $8 ELSE notes || E'\n' || $8 END,
                  version = version + 1
            WHERE id = $1 AND state = 'pending'
           RETURNING *"#,
        id,
        resolution.state.as_stored(),
        resolution.outcome.as_stored(),
        resolution.proof,
        resolution.case_id,
        resolution.resolved_by,
        resolution.resolved_on,
        resolution.notes,
    )
    .fetch_one(conn)
    .await?;
    Ok(SuspectItem::try_from(row)?)
}
