//! The registry's SQL.

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{NewPupil, status_name};

/// A pupil row as stored (the resident ID number encrypted).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PupilRow {
    pub id: Uuid,
    pub full_name: String,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub enrollment_region: String,
    pub hukou_region: String,
    pub residence_region: String,
    pub school_name: String,
    pub grade: i16,
    pub migrant: bool,
    pub enrollment_status: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

const COLUMNS: &str = "id, full_name, resident_id_cipher, resident_id_masked, sex, birth_date, enrollment_region,
    hukou_region, residence_region, school_name, grade, migrant, enrollment_status, created_at, created_by";

/// Encrypted forms of the resident ID number.
pub struct ProtectedId {
    pub cipher: Vec<u8>,
    pub index: Vec<u8>,
    pub masked: String,
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    pupil: &NewPupil,
    protected: &ProtectedId,
    created_by: &str,
) -> sqlx::Result<PupilRow> {
    let sex: i16 = match pupil.sex() {
        nol_pii::Sex::Male => 1,
        nol_pii::Sex::Female => 2,
    };
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, sex, birth_date,
                            enrollment_region, hukou_region, residence_region, school_name, grade, migrant,
                            enrollment_status, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&pupil.full_name)
    .bind(&protected.cipher)
    .bind(&protected.index)
    .bind(&protected.masked)
    .bind(sex)
    .bind(pupil.birth_date())
    .bind(pupil.enrollment_region.as_str())
    .bind(pupil.hukou_region.as_str())
    .bind(pupil.residence_region.as_str())
    .bind(&pupil.school_name)
    .bind(pupil.grade)
    .bind(pupil.migrant())
    .bind(status_name(pupil.status))
    .bind(created_by)
    .fetch_one(conn)
    .await
}

pub async fn find_by_index(pool: &PgPool, index: &[u8]) -> sqlx::Result<Option<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM pupil WHERE resident_id_index = $1"
    )))
    .bind(index)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM pupil WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Pupils enrolled in the subtree whose codes start with `prefix`, newest first.
pub async fn list(pool: &PgPool, prefix: &str, after: Option<Cursor>, limit: i64) -> sqlx::Result<Vec<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM pupil
          WHERE enrollment_region LIKE $1 || '%'
            AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
          ORDER BY created_at DESC, id DESC
          LIMIT $4"
    )))
    .bind(prefix)
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}
