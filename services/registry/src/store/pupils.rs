//! Pupils and their history.

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::pupil::ValidPupil;
use crate::domain::status::Status;

/// A pupil row as stored (the resident ID number encrypted), with its school's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PupilRow {
    pub id: Uuid,
    pub full_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
    pub sex: i16,
    pub birth_date: Option<NaiveDate>,
    pub enrollment_region: String,
    pub hukou_region: String,
    pub residence_region: String,
    pub school_code: String,
    pub school_name: String,
    pub grade: i16,
    pub migrant: bool,
    pub enrollment_status: String,
    pub disability_grade: i16,
    pub registered_poor: bool,
    pub poor_household_id: Option<String>,
    pub provisional: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

const SELECT: &str = "SELECT p.id, p.full_name, p.resident_id_cipher, p.resident_id_masked, p.sex, p.birth_date,
    p.enrollment_region, p.hukou_region, p.residence_region, p.school_code, s.name AS school_name, p.grade,
    p.migrant, p.enrollment_status, p.disability_grade, p.registered_poor, p.poor_household_id,
    p.provisional_key IS NOT NULL AS provisional, p.created_at, p.created_by
    FROM pupil p JOIN school s ON s.code = p.school_code";

/// A pupil to insert, with its protected identity.
pub struct NewPupilRecord<'a> {
    pub id: Uuid,
    pub pupil: &'a ValidPupil,
    pub enrollment_region: &'a str,
    pub residence_region: &'a str,
    pub migrant: bool,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_index: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
    pub provisional_key: Option<Vec<u8>>,
    pub created_by: &'a str,
}

pub fn sex_code(sex: nol_pii::Sex) -> i16 {
    match sex {
        nol_pii::Sex::Male => 1,
        nol_pii::Sex::Female => 2,
    }
}

pub async fn insert(conn: &mut PgConnection, record: &NewPupilRecord<'_>) -> sqlx::Result<PupilRow> {
    let pupil = record.pupil;
    sqlx::query(
        "INSERT INTO pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, provisional_key,
                            sex, birth_date, enrollment_region, hukou_region, residence_region, school_code, grade,
                            migrant, enrollment_status, disability_grade, registered_poor, poor_household_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(record.id)
    .bind(&pupil.full_name)
    .bind(&record.resident_id_cipher)
    .bind(&record.resident_id_index)
    .bind(&record.resident_id_masked)
    .bind(&record.provisional_key)
    .bind(sex_code(pupil.sex()))
    .bind(pupil.birth_date())
    .bind(record.enrollment_region)
    .bind(pupil.hukou_region.as_str())
    .bind(record.residence_region)
    .bind(&pupil.school_code)
    .bind(pupil.grade)
    .bind(record.migrant)
    .bind(pupil.status.as_str())
    .bind(pupil.disability_grade)
    .bind(pupil.registered_poor)
    .bind(&pupil.household_id)
    .bind(record.created_by)
    .execute(&mut *conn)
    .await?;
    get(&mut *conn, record.id).await?.ok_or(sqlx::Error::RowNotFound)
}

pub async fn find_by_index<'c>(executor: impl sqlx::PgExecutor<'c>, index: &[u8]) -> sqlx::Result<Option<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.resident_id_index = $1")))
        .bind(index)
        .fetch_optional(executor)
        .await
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.id = $1")))
        .bind(id)
        .fetch_optional(executor)
        .await
}

pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE p.id = $1 FOR UPDATE OF p")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Filters of a pupil search; the subtree prefix is always applied.
#[derive(Debug, Default)]
pub struct PupilFilter<'a> {
    pub prefix: &'a str,
    pub school_code: Option<&'a str>,
    pub status: Option<Status>,
    pub migrant: Option<bool>,
    pub registered_poor: Option<bool>,
    pub severe_disability_only: bool,
    pub name_prefix: Option<&'a str>,
    pub resident_id_index: Option<Vec<u8>>,
    pub provisional_only: bool,
}

/// Pupils matching `filter`, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &PupilFilter<'_>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<PupilRow>> {
    sqlx::query_as::<_, PupilRow>(sqlx::AssertSqlSafe(format!(
        "{SELECT}
          WHERE p.enrollment_region LIKE $1 || '%'
            AND ($2::text IS NULL OR p.school_code = $2)
            AND ($3::text IS NULL OR p.enrollment_status = $3)
            AND ($4::bool IS NULL OR p.migrant = $4)
            AND ($5::bool IS NULL OR p.registered_poor = $5)
            AND (NOT $6 OR p.disability_grade IN (1, 2))
            AND ($7::text IS NULL OR p.full_name LIKE $7 || '%')
            AND ($8::bytea IS NULL OR p.resident_id_index = $8)
            AND (NOT $9 OR p.provisional_key IS NOT NULL)
            AND ($10::timestamptz IS NULL OR (p.created_at, p.id) < ($10, $11))
          ORDER BY p.created_at DESC, p.id DESC
          LIMIT $12"
    )))
    .bind(filter.prefix)
    .bind(filter.school_code)
    .bind(filter.status.map(Status::as_str))
    .bind(filter.migrant)
    .bind(filter.registered_poor)
    .bind(filter.severe_disability_only)
    .bind(filter.name_prefix)
    .bind(&filter.resident_id_index)
    .bind(filter.provisional_only)
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A change to record in a pupil's history.
pub struct StatusChange<'a> {
    pub to_status: Status,
    pub to_school: &'a str,
    pub to_region: &'a str,
    pub grade: i16,
    pub migrant: bool,
    pub reason: &'a str,
    pub effective_date: NaiveDate,
    pub recorded_by: &'a str,
}

/// Applies a status change or transfer and appends it to the history; returns the new version.
pub async fn change(conn: &mut PgConnection, row: &PupilRow, change: &StatusChange<'_>) -> sqlx::Result<i64> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE pupil SET enrollment_status = $2, school_code = $3, enrollment_region = $4, grade = $5, migrant = $6,
                version = version + 1
          WHERE id = $1
          RETURNING version",
    )
    .bind(row.id)
    .bind(change.to_status.as_str())
    .bind(change.to_school)
    .bind(change.to_region)
    .bind(change.grade)
    .bind(change.migrant)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO pupil_status_change (pupil_id, sequence, from_status, to_status, from_school, to_school, reason,
                                          effective_date, recorded_by)
         VALUES ($1, (SELECT coalesce(max(sequence), 0) + 1 FROM pupil_status_change WHERE pupil_id = $1),
                 $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id)
    .bind(&row.enrollment_status)
    .bind(change.to_status.as_str())
    .bind(&row.school_code)
    .bind(change.to_school)
    .bind(change.reason)
    .bind(change.effective_date)
    .bind(change.recorded_by)
    .execute(conn)
    .await?;
    Ok(version)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusChangeRow {
    pub sequence: i64,
    pub from_status: String,
    pub to_status: String,
    pub from_school: String,
    pub to_school: String,
    pub reason: String,
    pub effective_date: NaiveDate,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

pub async fn history(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<StatusChangeRow>> {
    sqlx::query_as::<_, StatusChangeRow>(
        "SELECT sequence, from_status, to_status, from_school, to_school, reason, effective_date, recorded_by, recorded_at
           FROM pupil_status_change WHERE pupil_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Gives a provisional pupil its resident ID number.
pub async fn set_resident_id(
    conn: &mut PgConnection,
    id: Uuid,
    cipher: &[u8],
    index: &[u8],
    masked: &str,
    sex: i16,
    birth_date: NaiveDate,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE pupil SET resident_id_cipher = $2, resident_id_index = $3, resident_id_masked = $4, provisional_key = NULL,
                sex = $5, birth_date = $6, version = version + 1
          WHERE id = $1 AND provisional_key IS NOT NULL",
    )
    .bind(id)
    .bind(cipher)
    .bind(index)
    .bind(masked)
    .bind(sex)
    .bind(birth_date)
    .execute(conn)
    .await?
    .rows_affected())
}

/// A pupil row of an import, protected and checked.
#[derive(Debug, Clone)]
pub struct ImportedPupil {
    pub row_number: i64,
    pub id: Uuid,
    pub pupil: ValidPupil,
    pub enrollment_region: String,
    pub residence_region: String,
    pub migrant: bool,
    /// The resident ID number's blind index, or the provisional key: what makes it the same pupil.
    pub key: Vec<u8>,
    pub provisional: bool,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
}

/// Inserts a batch of imported pupils, skipping any already registered; returns the keys inserted.
pub async fn insert_batch(
    conn: &mut PgConnection,
    job: Uuid,
    created_by: &str,
    rows: &[ImportedPupil],
) -> sqlx::Result<Vec<Vec<u8>>> {
    let resident_index: Vec<Option<&[u8]>> =
        rows.iter().map(|row| (!row.provisional).then_some(row.key.as_slice())).collect();
    let provisional_key: Vec<Option<&[u8]>> =
        rows.iter().map(|row| row.provisional.then_some(row.key.as_slice())).collect();
    sqlx::query_scalar(
        "INSERT INTO pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, provisional_key, sex,
                            birth_date, enrollment_region, hukou_region, residence_region, school_code, grade, migrant,
                            enrollment_status, disability_grade, registered_poor, poor_household_id, created_by,
                            import_job, import_row)
         SELECT id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                migrant, status, disability, poor, household, $19, $20, row
           FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bytea[], $7::int2[],
                       $8::date[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int2[], $14::bool[],
                       $15::text[], $16::int2[], $17::bool[], $18::text[], $21::int8[])
                AS t(id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                     migrant, status, disability, poor, household, row)
         ON CONFLICT DO NOTHING
         RETURNING coalesce(resident_id_index, provisional_key)",
    )
    .bind(rows.iter().map(|row| row.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.full_name.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.resident_id_cipher.as_deref()).collect::<Vec<_>>())
    .bind(&resident_index)
    .bind(rows.iter().map(|row| row.resident_id_masked.as_deref()).collect::<Vec<_>>())
    .bind(&provisional_key)
    .bind(rows.iter().map(|row| sex_code(row.pupil.sex())).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.birth_date()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.enrollment_region.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.hukou_region.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.residence_region.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.school_code.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.grade).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.migrant).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.status.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.disability_grade).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.registered_poor).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.pupil.household_id.as_deref()).collect::<Vec<_>>())
    .bind(created_by)
    .bind(job)
    .bind(rows.iter().map(|row| row.row_number).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
}

/// Who holds a key already: the pupil's school, name, and the import row that wrote it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyHolder {
    pub key: Vec<u8>,
    pub school_code: String,
    pub school_name: String,
    pub enrollment_region: String,
    pub import_job: Option<Uuid>,
    pub import_row: Option<i64>,
}

pub async fn key_holders(conn: &mut PgConnection, keys: &[Vec<u8>]) -> sqlx::Result<Vec<KeyHolder>> {
    sqlx::query_as::<_, KeyHolder>(
        "SELECT coalesce(p.resident_id_index, p.provisional_key) AS key, p.school_code, s.name AS school_name,
                p.enrollment_region, p.import_job, p.import_row
           FROM pupil p JOIN school s ON s.code = p.school_code
          WHERE p.resident_id_index = ANY($1) OR p.provisional_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(conn)
    .await
}

/// Records an attempt to enrol an already registered child at another school.
pub async fn record_conflicts(
    conn: &mut PgConnection,
    job: Uuid,
    conflicts: &[(i64, &ImportedPupil)],
) -> sqlx::Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO enrollment_conflict (resident_id_index, resident_id_cipher, resident_id_masked, full_name, school_code,
                                          region, import_job, row_number)
         SELECT index, cipher, masked, name, school, region, $7, row
           FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], $8::int8[])
                AS t(index, cipher, masked, name, school, region, row)
         ON CONFLICT DO NOTHING",
    )
    .bind(conflicts.iter().map(|(_, row)| row.key.clone()).collect::<Vec<_>>())
    .bind(conflicts.iter().map(|(_, row)| row.resident_id_cipher.clone().unwrap_or_default()).collect::<Vec<_>>())
    .bind(conflicts.iter().map(|(_, row)| row.resident_id_masked.clone().unwrap_or_default()).collect::<Vec<_>>())
    .bind(conflicts.iter().map(|(_, row)| row.pupil.full_name.as_str()).collect::<Vec<_>>())
    .bind(conflicts.iter().map(|(_, row)| row.pupil.school_code.as_str()).collect::<Vec<_>>())
    .bind(conflicts.iter().map(|(_, row)| row.enrollment_region.as_str()).collect::<Vec<_>>())
    .bind(job)
    .bind(conflicts.iter().map(|(number, _)| *number).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
