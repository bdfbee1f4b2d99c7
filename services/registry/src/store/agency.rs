//! The other agencies' lists: the household register's children and the poverty registry's.

use std::collections::HashMap;

use chrono::NaiveDate;
use nol_pii::Sex;
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::pupil::sex_as_stored;

/// One child of the household register, protected.
#[derive(Debug, Clone)]
pub struct HouseholdRecord {
    pub row_number: i64,
    pub resident_id_index: Vec<u8>,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_masked: String,
    pub id_problem: Option<String>,
    pub full_name: String,
    pub birth_date: Option<NaiveDate>,
    pub listed_birth_date: Option<NaiveDate>,
    pub birth_mismatch: bool,
    /// From the number; None when the number is not valid.
    pub sex: Option<Sex>,
    pub hukou_region: RegionCode,
    pub residence_region: RegionCode,
    /// The county that must act: the residence when in the province, else the household registration.
    pub responsible_region: RegionCode,
}

/// One child of the poverty registry, protected.
#[derive(Debug, Clone)]
pub struct PovertyRecord {
    pub row_number: i64,
    pub resident_id_index: Vec<u8>,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_masked: String,
    pub id_problem: Option<String>,
    pub full_name: String,
    pub household_id: String,
    pub region: RegionCode,
}

/// What became of a batch's rows: imported (new or changed), unchanged, or a duplicate of an
/// earlier row of the same file (row number).
#[derive(Debug, Default)]
pub struct UpsertOutcome {
    pub imported: i64,
    pub unchanged: i64,
    pub duplicates: Vec<(i64, i64)>,
}

pub async fn upsert_household(
    conn: &mut PgConnection,
    job: Uuid,
    records: &[HouseholdRecord],
) -> sqlx::Result<UpsertOutcome> {
    let indexes: Vec<&[u8]> = records.iter().map(|record| record.resident_id_index.as_slice()).collect();
    let ciphers: Vec<&[u8]> = records.iter().map(|record| record.resident_id_cipher.as_slice()).collect();
    let masked: Vec<&str> = records.iter().map(|record| record.resident_id_masked.as_str()).collect();
    let problems: Vec<Option<&str>> = records.iter().map(|record| record.id_problem.as_deref()).collect();
    let names: Vec<&str> = records.iter().map(|record| record.full_name.as_str()).collect();
    let births: Vec<Option<NaiveDate>> = records.iter().map(|record| record.birth_date).collect();
    let listed: Vec<Option<NaiveDate>> = records.iter().map(|record| record.listed_birth_date).collect();
    let sexes: Vec<i16> = records.iter().map(|record| sex_as_stored(record.sex)).collect();
    let hukous: Vec<&str> = records.iter().map(|record| record.hukou_region.as_str()).collect();
    let residences: Vec<&str> = records.iter().map(|record| record.residence_region.as_str()).collect();
    let row_numbers: Vec<i64> = records.iter().map(|record| record.row_number).collect();
    let responsible: Vec<&str> = records.iter().map(|record| record.responsible_region.as_str()).collect();
    let mismatches: Vec<bool> = records.iter().map(|record| record.birth_mismatch).collect();
    let changed = sqlx::query_scalar!(
        r#"INSERT INTO household_member (resident_id_index, resident_id_cipher, resident_id_masked, id_problem, full_name,
                                         birth_date, listed_birth_date, birth_mismatch, sex, hukou_region,
                                         residence_region, responsible_region, import_job, import_row)
           SELECT index, cipher, masked, problem, name, birth, listed, mismatch, sex, hukou, residence, responsible,
                  $11, row
             FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::date[], $7::date[],
                         $8::int2[], $9::text[], $10::text[], $12::int8[], $13::text[], $14::bool[])
                  AS t(index, cipher, masked, problem, name, birth, listed, sex, hukou, residence, row, responsible,
                       mismatch)
           ON CONFLICT (resident_id_index) DO UPDATE
              SET resident_id_cipher = EXCLUDED.resident_id_cipher, id_problem = EXCLUDED.id_problem,
                  full_name = EXCLUDED.full_name, birth_date = EXCLUDED.birth_date,
                  listed_birth_date = EXCLUDED.listed_birth_date, birth_mismatch = EXCLUDED.birth_mismatch,
                  sex = EXCLUDED.sex, hukou_region = EXCLUDED.hukou_region,
                  residence_region = EXCLUDED.residence_region, responsible_region = EXCLUDED.responsible_region,
                  import_job = EXCLUDED.import_job, import_row = EXCLUDED.import_row, imported_at = clock_timestamp()
            WHERE household_member.import_job <> EXCLUDED.import_job
              AND (household_member.full_name, household_member.birth_date, household_member.listed_birth_date,
                   household_member.hukou_region, household_member.residence_region, household_member.id_problem)
                  IS DISTINCT FROM
                  (EXCLUDED.full_name, EXCLUDED.birth_date, EXCLUDED.listed_birth_date, EXCLUDED.hukou_region,
                   EXCLUDED.residence_region, EXCLUDED.id_problem)
           RETURNING resident_id_index AS "resident_id_index!""#,
        &indexes as _,
        &ciphers as _,
        &masked as _,
        &problems as _,
        &names as _,
        &births as _,
        &listed as _,
        &sexes,
        &hukous as _,
        &residences as _,
        job,
        &row_numbers,
        &responsible as _,
        &mismatches,
    )
    .fetch_all(&mut *conn)
    .await?;
    let rows: Vec<(i64, Vec<u8>)> =
        records.iter().map(|record| (record.row_number, record.resident_id_index.clone())).collect();
    classify(conn, AgencyList::HouseholdRegister, job, &rows, changed).await
}

pub async fn upsert_poverty(
    conn: &mut PgConnection,
    job: Uuid,
    records: &[PovertyRecord],
) -> sqlx::Result<UpsertOutcome> {
    let indexes: Vec<&[u8]> = records.iter().map(|record| record.resident_id_index.as_slice()).collect();
    let ciphers: Vec<&[u8]> = records.iter().map(|record| record.resident_id_cipher.as_slice()).collect();
    let masked: Vec<&str> = records.iter().map(|record| record.resident_id_masked.as_str()).collect();
    let problems: Vec<Option<&str>> = records.iter().map(|record| record.id_problem.as_deref()).collect();
    let names: Vec<&str> = records.iter().map(|record| record.full_name.as_str()).collect();
    let households: Vec<&str> = records.iter().map(|record| record.household_id.as_str()).collect();
    let regions: Vec<&str> = records.iter().map(|record| record.region.as_str()).collect();
    let row_numbers: Vec<i64> = records.iter().map(|record| record.row_number).collect();
    let changed = sqlx::query_scalar!(
        r#"INSERT INTO poverty_child (resident_id_index, resident_id_cipher, resident_id_masked, id_problem, full_name,
                                      household_id, region, import_job, import_row)
           SELECT index, cipher, masked, problem, name, household, region, $8, row
             FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $9::int8[])
                  AS t(index, cipher, masked, problem, name, household, region, row)
           ON CONFLICT (resident_id_index) DO UPDATE
              SET resident_id_cipher = EXCLUDED.resident_id_cipher, id_problem = EXCLUDED.id_problem,
                  full_name = EXCLUDED.full_name, household_id = EXCLUDED.household_id, region = EXCLUDED.region,
                  import_job = EXCLUDED.import_job, import_row = EXCLUDED.import_row, imported_at = clock_timestamp()
            WHERE poverty_child.import_job <> EXCLUDED.import_job
              AND (poverty_child.full_name, poverty_child.household_id, poverty_child.region, poverty_child.id_problem)
                  IS DISTINCT FROM (EXCLUDED.full_name, EXCLUDED.household_id, EXCLUDED.region, EXCLUDED.id_problem)
           RETURNING resident_id_index AS "resident_id_index!""#,
        &indexes as _,
        &ciphers as _,
        &masked as _,
        &problems as _,
        &names as _,
        &households as _,
        &regions as _,
        job,
        &row_numbers,
    )
    .fetch_all(&mut *conn)
    .await?;
    let rows: Vec<(i64, Vec<u8>)> =
        records.iter().map(|record| (record.row_number, record.resident_id_index.clone())).collect();
    classify(conn, AgencyList::PovertyRegistry, job, &rows, changed).await
}

/// The two lists the other agencies send.
#[derive(Debug, Clone, Copy)]
enum AgencyList {
    HouseholdRegister,
    PovertyRegistry,
}

/// Which job and row last wrote each of `indexes` in `list`.
async fn writers(
    conn: &mut PgConnection,
    list: AgencyList,
    indexes: &[Vec<u8>],
) -> sqlx::Result<HashMap<Vec<u8>, (Uuid, i64)>> {
    let writers: Vec<(Vec<u8>, Uuid, i64)> = match list {
        AgencyList::HouseholdRegister => sqlx::query!(
            "SELECT resident_id_index, import_job, import_row FROM household_member WHERE resident_id_index = ANY($1)",
            indexes
        )
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|row| (row.resident_id_index, row.import_job, row.import_row))
        .collect(),
        AgencyList::PovertyRegistry => sqlx::query!(
            "SELECT resident_id_index, import_job, import_row FROM poverty_child WHERE resident_id_index = ANY($1)",
            indexes
        )
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|row| (row.resident_id_index, row.import_job, row.import_row))
        .collect(),
    };
    Ok(writers.into_iter().map(|(index, job, row)| (index, (job, row))).collect())
}

/// Rows the upsert did not change are either already there unchanged, or a duplicate of an
/// earlier row of the same file (this job wrote the record, from another row).
async fn classify(
    conn: &mut PgConnection,
    list: AgencyList,
    job: Uuid,
    rows: &[(i64, Vec<u8>)],
    changed: Vec<Vec<u8>>,
) -> sqlx::Result<UpsertOutcome> {
    let changed: std::collections::HashSet<Vec<u8>> = changed.into_iter().collect();
    let untouched: Vec<Vec<u8>> =
        rows.iter().filter(|(_, index)| !changed.contains(index)).map(|(_, index)| index.clone()).collect();
    let mut outcome = UpsertOutcome { imported: changed.len() as i64, ..UpsertOutcome::default() };
    if untouched.is_empty() {
        return Ok(outcome);
    }
    let writers = writers(conn, list, &untouched).await?;
    for (row, index) in rows.iter().filter(|(_, index)| !changed.contains(index)) {
        match writers.get(index) {
            Some((writer, first_row)) if *writer == job && first_row != row => {
                outcome.duplicates.push((*row, *first_row))
            }
            _ => outcome.unchanged += 1,
        }
    }
    Ok(outcome)
}
