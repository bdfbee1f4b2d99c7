//! Pupils and their history.

use chrono::{DateTime, NaiveDate, Utc};
use nol_pii::Sex;
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::binary_copy::BinaryCopy;
use super::{Undecodable, decode, region};
use crate::domain::pupil::{ValidPupil, sex_as_stored, sex_from_stored};
use crate::domain::status::Status;

/// A pupil row as stored (the resident ID number encrypted), with its school's name.
struct PupilRow {
    id: Uuid,
    full_name: String,
    resident_id_cipher: Option<Vec<u8>>,
    resident_id_index: Option<Vec<u8>>,
    resident_id_masked: Option<String>,
    sex: i16,
    birth_date: Option<NaiveDate>,
    enrollment_region: String,
    hukou_region: String,
    residence_region: String,
    school_code: String,
    school_name: String,
    grade: i16,
    migrant: bool,
    enrollment_status: String,
    disability_grade: i16,
    registered_poor: bool,
    poor_household_id: Option<String>,
    provisional: bool,
    created_at: DateTime<Utc>,
    created_by: String,
}

/// A registered pupil (the resident ID number encrypted), with its school's name.
#[derive(Debug, Clone)]
pub struct PupilRecord {
    pub id: Uuid,
    pub full_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    /// The blind index, which the ciphertext is bound to.
    pub resident_id_index: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
    /// None when not on record.
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    /// The county of the student record (学籍).
    pub enrollment_region: RegionCode,
    pub hukou_region: RegionCode,
    pub residence_region: RegionCode,
    pub school_code: String,
    pub school_name: String,
    pub grade: i16,
    pub migrant: bool,
    pub status: Status,
    pub disability_grade: i16,
    pub registered_poor: bool,
    pub poor_household_id: Option<String>,
    /// Registered without a resident ID number.
    pub provisional: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl TryFrom<PupilRow> for PupilRecord {
    type Error = Undecodable;

    fn try_from(row: PupilRow) -> Result<PupilRecord, Undecodable> {
        let id = row.id;
        Ok(PupilRecord {
            sex: sex_from_stored(row.sex).ok_or_else(|| Undecodable::new("pupil", id, "sex", row.sex))?,
            enrollment_region: region("pupil", id, "enrollment_region", &row.enrollment_region)?,
            hukou_region: region("pupil", id, "hukou_region", &row.hukou_region)?,
            residence_region: region("pupil", id, "residence_region", &row.residence_region)?,
            status: decode("pupil", id, "enrollment_status", &row.enrollment_status, Status::from_stored)?,
            id,
            full_name: row.full_name,
            resident_id_cipher: row.resident_id_cipher,
            resident_id_index: row.resident_id_index,
            resident_id_masked: row.resident_id_masked,
            birth_date: row.birth_date,
            school_code: row.school_code,
            school_name: row.school_name,
            grade: row.grade,
            migrant: row.migrant,
            disability_grade: row.disability_grade,
            registered_poor: row.registered_poor,
            poor_household_id: row.poor_household_id,
            provisional: row.provisional,
            created_at: row.created_at,
            created_by: row.created_by,
        })
    }
}

fn decoded(rows: Vec<PupilRow>) -> sqlx::Result<Vec<PupilRecord>> {
    Ok(rows.into_iter().map(PupilRecord::try_from).collect::<Result<_, _>>()?)
}

/// `query_as!` reading pupil rows with their school's name, the condition (and what follows it)
/// given as a literal: one statement per use, each checked at build time.
macro_rules! select_pupils {
    ($condition:literal $(, $argument:expr)* $(,)?) => {
        sqlx::query_as!(
            PupilRow,
            r#"SELECT p.id, p.full_name, p.resident_id_cipher, p.resident_id_index, p.resident_id_masked, p.sex, p.birth_date,
                      p.enrollment_region, p.hukou_region, p.residence_region, p.school_code, s.name AS school_name,
                      p.grade, p.migrant, p.enrollment_status, p.disability_grade, p.registered_poor,
                      p.poor_household_id, p.provisional_key IS NOT NULL AS "provisional!", p.created_at, p.created_by
                 FROM pupil p JOIN school s ON s.code = p.school_code
                "# + $condition
            $(, $argument)*
        )
    };
}

/// A pupil to insert, with its protected identity (borrowed: what the array inserts bind).
pub struct NewPupilRecord<'a> {
    pub id: Uuid,
    pub pupil: &'a ValidPupil,
    pub enrollment_region: RegionCode,
    pub residence_region: RegionCode,
    pub migrant: bool,
    pub resident_id_cipher: Option<&'a [u8]>,
    pub resident_id_index: Option<&'a [u8]>,
    pub resident_id_masked: Option<&'a str>,
    pub provisional_key: Option<&'a [u8]>,
    pub created_by: &'a str,
}

impl NewPupilRecord<'_> {
    /// The record as stored at `created_at` in a school named `school_name`.
    pub fn stored(&self, school_name: &str, created_at: DateTime<Utc>) -> PupilRecord {
        let pupil = self.pupil;
        PupilRecord {
            id: self.id,
            full_name: pupil.full_name.clone(),
            resident_id_cipher: self.resident_id_cipher.map(<[u8]>::to_vec),
            resident_id_index: self.resident_id_index.map(<[u8]>::to_vec),
            resident_id_masked: self.resident_id_masked.map(str::to_owned),
            sex: Some(pupil.sex()),
            birth_date: Some(pupil.birth_date()),
            enrollment_region: self.enrollment_region,
            hukou_region: pupil.hukou_region,
            residence_region: self.residence_region,
            school_code: pupil.school_code.clone(),
            school_name: school_name.to_owned(),
            grade: pupil.grade,
            migrant: self.migrant,
            status: pupil.status,
            disability_grade: pupil.disability_grade,
            registered_poor: pupil.registered_poor,
            poor_household_id: pupil.household_id.clone(),
            provisional: self.provisional_key.is_some(),
            created_at,
            created_by: self.created_by.to_owned(),
        }
    }
}

/// Inserts the records of several callers in one statement (`CreatePupil`'s group commit) and
/// returns the id and time of each one inserted. A record whose child is registered already (by
/// resident ID or provisional key, before or earlier in the same list) is skipped, not refused:
/// the caller tells its own caller which record holds the child.
pub async fn insert_many(
    conn: &mut PgConnection,
    records: &[NewPupilRecord<'_>],
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let columns = PupilArrays::of(records);
    let creators: Vec<&str> = records.iter().map(|record| record.created_by).collect();
    let rows = sqlx::query!(
        r#"INSERT INTO pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, provisional_key,
                              sex, birth_date, enrollment_region, hukou_region, residence_region, school_code, grade,
                              migrant, enrollment_status, disability_grade, registered_poor, poor_household_id,
                              created_by)
           SELECT id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                  migrant, status, disability, poor, household, creator
             FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bytea[], $7::int2[],
                         $8::date[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int2[], $14::bool[],
                         $15::text[], $16::int2[], $17::bool[], $18::text[], $19::text[])
                  WITH ORDINALITY
                  AS t(id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                       migrant, status, disability, poor, household, creator, position)
            ORDER BY position
           ON CONFLICT DO NOTHING
           RETURNING id, created_at"#,
        &columns.ids,
        &columns.names as _,
        &columns.ciphers as _,
        &columns.resident_index as _,
        &columns.masked as _,
        &columns.provisional_key as _,
        &columns.sexes,
        &columns.births,
        &columns.enrollments as _,
        &columns.hukous as _,
        &columns.residences as _,
        &columns.schools as _,
        &columns.grades,
        &columns.migrants,
        &columns.statuses as _,
        &columns.disabilities,
        &columns.poor,
        &columns.households as _,
        &creators as _,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.created_at)).collect())
}

pub async fn find_by_index<'c>(executor: impl sqlx::PgExecutor<'c>, index: &[u8]) -> sqlx::Result<Option<PupilRecord>> {
    let row = select_pupils!("WHERE p.resident_id_index = $1", index).fetch_optional(executor).await?;
    Ok(row.map(PupilRecord::try_from).transpose()?)
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<PupilRecord>> {
    let row = select_pupils!("WHERE p.id = $1", id).fetch_optional(executor).await?;
    Ok(row.map(PupilRecord::try_from).transpose()?)
}

pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<PupilRecord>> {
    let row = select_pupils!("WHERE p.id = $1 FOR UPDATE OF p", id).fetch_optional(conn).await?;
    Ok(row.map(PupilRecord::try_from).transpose()?)
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
) -> sqlx::Result<Vec<PupilRecord>> {
    let rows = select_pupils!(
        "WHERE p.enrollment_region LIKE $1 || '%'
            AND ($2::text IS NULL OR p.school_code = $2)
            AND ($3::text IS NULL OR p.enrollment_status = $3)
            AND ($4::bool IS NULL OR p.migrant = $4)
            AND ($5::bool IS NULL OR p.registered_poor = $5)
            AND (NOT $6::bool OR p.disability_grade IN (1, 2))
            AND ($7::text IS NULL OR p.full_name LIKE $7 || '%')
            AND ($8::bytea IS NULL OR p.resident_id_index = $8)
            AND (NOT $9::bool OR p.provisional_key IS NOT NULL)
            AND ($10::timestamptz IS NULL OR (p.created_at, p.id) < ($10, $11::uuid))
          ORDER BY p.created_at DESC, p.id DESC
          LIMIT $12",
        filter.prefix,
        filter.school_code,
        filter.status.map(Status::as_stored),
        filter.migrant,
        filter.registered_poor,
        filter.severe_disability_only,
        filter.name_prefix,
        filter.resident_id_index.as_deref(),
        filter.provisional_only,
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(pool)
    .await?;
    decoded(rows)
}

/// A change to record in a pupil's history.
pub struct StatusChange<'a> {
    pub to_status: Status,
    pub to_school: &'a str,
    pub to_region: RegionCode,
    pub grade: i16,
    pub migrant: bool,
    pub reason: &'a str,
    pub effective_date: NaiveDate,
    pub recorded_by: &'a str,
}

/// Applies a status change or transfer and appends it to the history; returns the new version.
pub async fn change(conn: &mut PgConnection, pupil: &PupilRecord, change: &StatusChange<'_>) -> sqlx::Result<i64> {
    let version = sqlx::query_scalar!(
        "UPDATE pupil SET enrollment_status = $2, school_code = $3, enrollment_region = $4, grade = $5, migrant = $6,
                version = version + 1
          WHERE id = $1
          RETURNING version",
        pupil.id,
        change.to_status.as_stored(),
        change.to_school,
        change.to_region.as_str(),
        change.grade,
        change.migrant,
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO pupil_status_change (pupil_id, sequence, from_status, to_status, from_school, to_school, reason,
                                          effective_date, recorded_by)
         VALUES ($1, (SELECT coalesce(max(sequence), 0) + 1 FROM pupil_status_change WHERE pupil_id = $1),
                 $2, $3, $4, $5, $6, $7, $8)",
        pupil.id,
        pupil.status.as_stored(),
        change.to_status.as_stored(),
        &pupil.school_code,
        change.to_school,
        change.reason,
        change.effective_date,
        change.recorded_by,
    )
    .execute(conn)
    .await?;
    Ok(version)
}

/// One entry of a pupil's history, as stored.
struct StatusChangeRow {
    pupil_id: Uuid,
    sequence: i64,
    from_status: String,
    to_status: String,
    from_school: String,
    to_school: String,
    reason: String,
    effective_date: NaiveDate,
    recorded_by: String,
    recorded_at: DateTime<Utc>,
}

/// One entry of a pupil's history.
#[derive(Debug, Clone)]
pub struct StatusChangeRecord {
    pub sequence: i64,
    pub from_status: Status,
    pub to_status: Status,
    pub from_school: String,
    pub to_school: String,
    pub reason: String,
    pub effective_date: NaiveDate,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl TryFrom<StatusChangeRow> for StatusChangeRecord {
    type Error = Undecodable;

    fn try_from(row: StatusChangeRow) -> Result<StatusChangeRecord, Undecodable> {
        let id = format!("{}/{}", row.pupil_id, row.sequence);
        Ok(StatusChangeRecord {
            from_status: decode("pupil_status_change", &id, "from_status", &row.from_status, Status::from_stored)?,
            to_status: decode("pupil_status_change", &id, "to_status", &row.to_status, Status::from_stored)?,
            sequence: row.sequence,
            from_school: row.from_school,
            to_school: row.to_school,
            reason: row.reason,
            effective_date: row.effective_date,
            recorded_by: row.recorded_by,
            recorded_at: row.recorded_at,
        })
    }
}

pub async fn history(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<StatusChangeRecord>> {
    let rows = sqlx::query_as!(
        StatusChangeRow,
        "SELECT pupil_id, sequence, from_status, to_status, from_school, to_school, reason, effective_date, recorded_by,
                recorded_at
           FROM pupil_status_change WHERE pupil_id = $1 ORDER BY sequence",
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(StatusChangeRecord::try_from).collect::<Result<_, _>>()?)
}

/// Gives a provisional pupil its resident ID number.
pub async fn set_resident_id(
    conn: &mut PgConnection,
    id: Uuid,
    cipher: &[u8],
    index: &[u8],
    masked: &str,
    sex: Sex,
    birth_date: NaiveDate,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE pupil SET resident_id_cipher = $2, resident_id_index = $3, resident_id_masked = $4, provisional_key = NULL,
                sex = $5, birth_date = $6, version = version + 1
          WHERE id = $1 AND provisional_key IS NOT NULL",
        id,
        cipher,
        index,
        masked,
        sex_as_stored(Some(sex)),
        birth_date,
    )
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
    pub enrollment_region: RegionCode,
    pub residence_region: RegionCode,
    pub migrant: bool,
    /// The resident ID number's blind index, or the provisional key: what makes it the same pupil.
    pub key: Vec<u8>,
    pub provisional: bool,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
}

/// Many pupils' columns, an array each, as the inserts' `unnest` binds them.
#[derive(Default)]
struct PupilArrays<'a> {
    ids: Vec<Uuid>,
    names: Vec<&'a str>,
    ciphers: Vec<Option<&'a [u8]>>,
    resident_index: Vec<Option<&'a [u8]>>,
    masked: Vec<Option<&'a str>>,
    provisional_key: Vec<Option<&'a [u8]>>,
    sexes: Vec<i16>,
    births: Vec<NaiveDate>,
    enrollments: Vec<&'a str>,
    hukous: Vec<&'a str>,
    residences: Vec<&'a str>,
    schools: Vec<&'a str>,
    grades: Vec<i16>,
    migrants: Vec<bool>,
    statuses: Vec<&'static str>,
    disabilities: Vec<i16>,
    poor: Vec<bool>,
    households: Vec<Option<&'a str>>,
}

impl<'a> PupilArrays<'a> {
    fn of(rows: &'a [NewPupilRecord<'a>]) -> PupilArrays<'a> {
        let mut arrays = PupilArrays::default();
        for row in rows {
            let pupil = row.pupil;
            arrays.ids.push(row.id);
            arrays.names.push(&pupil.full_name);
            arrays.ciphers.push(row.resident_id_cipher);
            arrays.resident_index.push(row.resident_id_index);
            arrays.masked.push(row.resident_id_masked);
            arrays.provisional_key.push(row.provisional_key);
            arrays.sexes.push(sex_as_stored(Some(pupil.sex())));
            arrays.births.push(pupil.birth_date());
            arrays.enrollments.push(row.enrollment_region.as_str());
            arrays.hukous.push(pupil.hukou_region.as_str());
            arrays.residences.push(row.residence_region.as_str());
            arrays.schools.push(&pupil.school_code);
            arrays.grades.push(pupil.grade);
            arrays.migrants.push(row.migrant);
            arrays.statuses.push(pupil.status.as_stored());
            arrays.disabilities.push(pupil.disability_grade);
            arrays.poor.push(pupil.registered_poor);
            arrays.households.push(pupil.household_id.as_deref());
        }
        arrays
    }
}

impl ImportedPupil {
    fn record<'a>(&'a self, created_by: &'a str) -> NewPupilRecord<'a> {
        NewPupilRecord {
            id: self.id,
            pupil: &self.pupil,
            enrollment_region: self.enrollment_region,
            residence_region: self.residence_region,
            migrant: self.migrant,
            resident_id_cipher: self.resident_id_cipher.as_deref(),
            resident_id_index: (!self.provisional).then_some(self.key.as_slice()),
            resident_id_masked: self.resident_id_masked.as_deref(),
            provisional_key: self.provisional.then_some(self.key.as_slice()),
            created_by,
        }
    }
}

/// Inserts a batch of imported pupils, skipping any already registered; returns the keys inserted.
pub async fn insert_batch(
    conn: &mut PgConnection,
    job: Uuid,
    created_by: &str,
    rows: &[ImportedPupil],
) -> sqlx::Result<Vec<Vec<u8>>> {
    let records: Vec<NewPupilRecord<'_>> = rows.iter().map(|row| row.record(created_by)).collect();
    let columns = PupilArrays::of(&records);
    let row_numbers: Vec<i64> = rows.iter().map(|row| row.row_number).collect();
    sqlx::query_scalar!(
        r#"INSERT INTO pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, provisional_key,
                              sex, birth_date, enrollment_region, hukou_region, residence_region, school_code, grade,
                              migrant, enrollment_status, disability_grade, registered_poor, poor_household_id,
                              created_by, import_job, import_row)
           SELECT id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                  migrant, status, disability, poor, household, $19, $20, row
             FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bytea[], $7::int2[],
                         $8::date[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int2[], $14::bool[],
                         $15::text[], $16::int2[], $17::bool[], $18::text[], $21::int8[])
                  AS t(id, name, cipher, rindex, masked, pkey, sex, birth, enrollment, hukou, residence, school, grade,
                       migrant, status, disability, poor, household, row)
           ON CONFLICT DO NOTHING
           RETURNING coalesce(resident_id_index, provisional_key) AS "key!""#,
        &columns.ids,
        &columns.names as _,
        &columns.ciphers as _,
        &columns.resident_index as _,
        &columns.masked as _,
        &columns.provisional_key as _,
        &columns.sexes,
        &columns.births,
        &columns.enrollments as _,
        &columns.hukous as _,
        &columns.residences as _,
        &columns.schools as _,
        &columns.grades,
        &columns.migrants,
        &columns.statuses as _,
        &columns.disabilities,
        &columns.poor,
        &columns.households as _,
        created_by,
        job,
        &row_numbers,
    )
    .fetch_all(conn)
    .await
}

/// The columns a batch is copied into, in the order `copy_batch` writes them.
const COPY_PUPILS: &str = "COPY pupil (id, full_name, resident_id_cipher, resident_id_index, resident_id_masked, provisional_key,
     sex, birth_date, enrollment_region, hukou_region, residence_region, school_code, grade, migrant, enrollment_status,
     disability_grade, registered_poor, poor_household_id, created_by, import_job, import_row) FROM STDIN (FORMAT binary)";

/// Inserts a batch of imported pupils none of whom is registered yet, by binary `COPY`: the same
/// rows `insert_batch` writes, without its arbiter look-ups. A child already registered fails the
/// whole statement with `unique_violation` (the caller runs it in a savepoint and falls back to
/// `insert_batch`); the unique indexes and every constraint and trigger hold as for an insert.
pub async fn copy_batch(
    conn: &mut PgConnection,
    job: Uuid,
    created_by: &str,
    rows: &[ImportedPupil],
) -> sqlx::Result<u64> {
    let mut copy = BinaryCopy::with_capacity(rows.len() * 320);
    for row in rows {
        let pupil = &row.pupil;
        copy.row(21)
            .uuid(row.id)
            .text(&pupil.full_name)
            .optional_bytes(row.resident_id_cipher.as_deref())
            .optional_bytes((!row.provisional).then_some(row.key.as_slice()))
            .optional_text(row.resident_id_masked.as_deref())
            .optional_bytes(row.provisional.then_some(row.key.as_slice()))
            .int2(sex_as_stored(Some(pupil.sex())))
            .date(pupil.birth_date())
            .text(row.enrollment_region.as_str())
            .text(pupil.hukou_region.as_str())
            .text(row.residence_region.as_str())
            .text(&pupil.school_code)
            .int2(pupil.grade)
            .bool(row.migrant)
            .text(pupil.status.as_stored())
            .int2(pupil.disability_grade)
            .bool(pupil.registered_poor)
            .optional_text(pupil.household_id.as_deref())
            .text(created_by)
            .uuid(job)
            .int8(row.row_number);
    }
    let mut sink = conn.copy_in_raw(COPY_PUPILS).await?;
    sink.send(copy.finish()).await?;
    sink.finish().await
}

/// Who holds a key already: the pupil's school, name, and the import row that wrote it.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub key: Vec<u8>,
    pub school_code: String,
    pub school_name: String,
    pub enrollment_region: RegionCode,
    pub import_job: Option<Uuid>,
    pub import_row: Option<i64>,
}

pub async fn key_holders(conn: &mut PgConnection, keys: &[Vec<u8>]) -> sqlx::Result<Vec<KeyHolder>> {
    let rows = sqlx::query!(
        r#"SELECT p.id, coalesce(p.resident_id_index, p.provisional_key) AS "key!", p.school_code, s.name AS school_name,
                  p.enrollment_region, p.import_job, p.import_row
             FROM pupil p JOIN school s ON s.code = p.school_code
            WHERE p.resident_id_index = ANY($1) OR p.provisional_key = ANY($1)"#,
        keys
    )
    .fetch_all(conn)
    .await?;
    let mut holders = Vec::with_capacity(rows.len());
    for row in rows {
        holders.push(KeyHolder {
            enrollment_region: region("pupil", row.id, "enrollment_region", &row.enrollment_region)?,
            key: row.key,
            school_code: row.school_code,
            school_name: row.school_name,
            import_job: row.import_job,
            import_row: row.import_row,
        });
    }
    Ok(holders)
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
    let keys: Vec<&[u8]> = conflicts.iter().map(|(_, row)| row.key.as_slice()).collect();
    let ciphers: Vec<&[u8]> =
        conflicts.iter().map(|(_, row)| row.resident_id_cipher.as_deref().unwrap_or_default()).collect();
    let masked: Vec<&str> =
        conflicts.iter().map(|(_, row)| row.resident_id_masked.as_deref().unwrap_or_default()).collect();
    let names: Vec<&str> = conflicts.iter().map(|(_, row)| row.pupil.full_name.as_str()).collect();
    let schools: Vec<&str> = conflicts.iter().map(|(_, row)| row.pupil.school_code.as_str()).collect();
    let regions: Vec<&str> = conflicts.iter().map(|(_, row)| row.enrollment_region.as_str()).collect();
    let row_numbers: Vec<i64> = conflicts.iter().map(|(number, _)| *number).collect();
    sqlx::query!(
        "INSERT INTO enrollment_conflict (resident_id_index, resident_id_cipher, resident_id_masked, full_name, school_code,
                                          region, import_job, row_number)
         SELECT index, cipher, masked, name, school, region, $7, row
           FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], $8::int8[])
                AS t(index, cipher, masked, name, school, region, row)
         ON CONFLICT DO NOTHING",
        &keys as _,
        &ciphers as _,
        &masked as _,
        &names as _,
        &schools as _,
        &regions as _,
        job,
        &row_numbers,
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, sex: i16) -> PupilRow {
        PupilRow {
            id: Uuid::nil(),
            full_name: "李小明".to_owned(),
            resident_id_cipher: None,
            resident_id_index: None,
            resident_id_masked: None,
            sex,
            birth_date: None,
            enrollment_region: "320102".to_owned(),
            hukou_region: "341221".to_owned(),
            residence_region: "320102".to_owned(),
            school_code: "3201020001".to_owned(),
            school_name: "玄武区示范小学".to_owned(),
            grade: 5,
            migrant: true,
            enrollment_status: status.to_owned(),
            disability_grade: 0,
            registered_poor: false,
            poor_household_id: None,
            provisional: false,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            created_by: "test".to_owned(),
        }
    }

    #[test]
    fn a_row_decodes_once_and_a_stored_value_that_does_not_is_named_with_its_row() {
        let pupil = PupilRecord::try_from(row("suspended", 2)).unwrap();
        assert_eq!((pupil.status, pupil.sex), (Status::Suspended, Some(Sex::Female)));
        assert_eq!(pupil.hukou_region.as_str(), "341221");
        let corrupt = PupilRecord::try_from(row("on_holiday", 1)).unwrap_err();
        assert_eq!(
            (corrupt.row.as_str(), corrupt.column),
            ("00000000-0000-0000-0000-000000000000", "enrollment_status")
        );
        assert!(corrupt.to_string().contains("\"on_holiday\""), "{corrupt}");
        assert_eq!(PupilRecord::try_from(row("enrolled", 7)).unwrap_err().column, "sex");
    }
}
