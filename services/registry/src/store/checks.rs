//! Cross-check runs and their findings.

use chrono::{DateTime, NaiveDate, Utc};
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Undecodable, decode, region};
use crate::domain::checks::{Kind, Outcome};

/// A finding of a run as the upsert returns it.
struct RunFindingRow {
    id: Uuid,
    kind: String,
    subject: Vec<u8>,
    region: String,
    full_name: String,
    resident_id_cipher: Option<Vec<u8>>,
    reason: String,
    detail: serde_json::Value,
    open: bool,
    was_open: Option<bool>,
}

/// One finding of a run, with what the item was before the run (`was_open`: None for new).
#[derive(Debug, Clone)]
pub struct RunFinding {
    pub id: Uuid,
    pub kind: Kind,
    /// What the finding is about: the blind index the ciphertext is bound to (for the kinds
    /// read from the household register, the one whose number travels to the case service).
    pub subject: Vec<u8>,
    pub region: RegionCode,
    pub full_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub reason: String,
    pub detail: serde_json::Value,
    pub open: bool,
    pub was_open: Option<bool>,
}

impl TryFrom<RunFindingRow> for RunFinding {
    type Error = Undecodable;

    fn try_from(row: RunFindingRow) -> Result<RunFinding, Undecodable> {
        Ok(RunFinding {
            kind: decode("check_item", row.id, "kind", &row.kind, Kind::from_stored)?,
            region: region("check_item", row.id, "region", &row.region)?,
            id: row.id,
            subject: row.subject,
            full_name: row.full_name,
            resident_id_cipher: row.resident_id_cipher,
            reason: row.reason,
            detail: row.detail,
            open: row.open,
            was_open: row.was_open,
        })
    }
}

/// A finding as the query produces it, before it is recorded as an item.
struct Found {
    kind: String,
    subject: Vec<u8>,
    region: String,
    full_name: String,
    cipher: Option<Vec<u8>>,
    masked: String,
    reason: String,
    fingerprint: Vec<u8>,
    detail: String,
}

/// What a run found, not recorded yet ([`record_items`] records it).
pub struct Findings(Vec<Found>);

/// What the cross-check finds in the subtree `prefix`: one query, read in parallel by PostgreSQL.
///
/// Two statements, this and [`record_items`], not one: a statement that writes (a data-modifying
/// CTE, `INSERT … SELECT`) never runs in parallel in PostgreSQL, and the anti-join over a
/// province's household register is the whole cost of the check — read in parallel it took ~1.2 s
/// at province scale, inside the upsert ~2.4 s. The findings (thousands, not millions) come back
/// and go in again as arrays.
///
/// Each branch of the query is one kind of finding (the kinds as `Kind::as_stored` names them);
/// the region of a household-register child is where the family lives when that is in the
/// province, else the household registration. The subject keeps findings apart (and stable
/// across runs).
pub async fn find(conn: &mut PgConnection, prefix: &str, school_age: (NaiveDate, NaiveDate)) -> sqlx::Result<Findings> {
    // The plan's cost is far above PostgreSQL's JIT thresholds, and compiling it with inlining and
    // optimisation took ~2.7 s of a ~3 s run at province scale; the work is hashing and scanning,
    // which JIT barely speeds up. Off for this transaction only.
    sqlx::query!("SET LOCAL jit = off").execute(&mut *conn).await?;
    let found = sqlx::query_as!(
        Found,
        r#"SELECT kind AS "kind!", subject AS "subject!", region AS "region!", full_name AS "full_name!",
                  cipher AS "cipher?", masked AS "masked!", reason AS "reason!", fingerprint AS "fingerprint!",
                  detail::text AS "detail!"
             FROM (
  SELECT 'out_of_school' AS kind, h.resident_id_index AS subject,
         h.responsible_region AS region,
         h.full_name, h.resident_id_cipher AS cipher, h.resident_id_masked AS masked,
         '户籍登记的适龄儿童在全省无学籍 (school-age in the household register, enrolled nowhere in the province)' AS reason,
         sha256(convert_to(concat_ws('|', h.full_name, h.birth_date, h.hukou_region, h.residence_region), 'UTF8')) AS fingerprint,
         jsonb_build_object('hukou_region', h.hukou_region, 'residence_region', h.residence_region) AS detail
    -- The anti-join carries the blind index alone, then the few children found are read by it. A
    -- province's pupils do not fit the hash join's memory, so the register's rows are written to
    -- its batch files and read back: every column carried through it is written too.
    FROM (SELECT m.resident_id_index FROM household_member m
           WHERE m.id_problem IS NULL AND m.birth_date BETWEEN $2 AND $3 AND m.responsible_region LIKE $1 || '%'
             AND NOT EXISTS (SELECT 1 FROM pupil p
                              WHERE p.resident_id_index = m.resident_id_index AND p.enrollment_status <> 'transferred_out')) u
    CROSS JOIN LATERAL (SELECT * FROM household_member h WHERE h.resident_id_index = u.resident_id_index LIMIT 1) h
  UNION ALL
  SELECT 'invalid_resident_id', h.resident_id_index,
         h.responsible_region,
         h.full_name, h.resident_id_cipher, h.resident_id_masked, '户籍名单: ' || h.id_problem,
         sha256(convert_to(concat_ws('|', h.full_name, h.id_problem, h.hukou_region), 'UTF8')),
         jsonb_build_object('hukou_region', h.hukou_region, 'residence_region', h.residence_region)
    FROM household_member h WHERE h.id_problem IS NOT NULL
  UNION ALL
  SELECT 'invalid_resident_id', '\x70'::bytea || c.resident_id_index, c.region, c.full_name, c.resident_id_cipher,
         c.resident_id_masked, '扶贫名单: ' || c.id_problem,
         sha256(convert_to(concat_ws('|', c.full_name, c.id_problem, c.region), 'UTF8')),
         jsonb_build_object('household_id', c.household_id)
    FROM poverty_child c WHERE c.id_problem IS NOT NULL
  UNION ALL
  SELECT 'birth_date_mismatch', h.resident_id_index, h.responsible_region,
         h.full_name, h.resident_id_cipher, h.resident_id_masked,
         '户籍名单的出生日期 ' || h.listed_birth_date || ' 与身份证号不符 (listed birth date disagrees with the ID)',
         sha256(convert_to(concat_ws('|', h.full_name, h.listed_birth_date, h.birth_date), 'UTF8')),
         jsonb_build_object('hukou_region', h.hukou_region, 'residence_region', h.residence_region)
    FROM household_member h
   WHERE h.birth_mismatch
  UNION ALL
  SELECT 'poor_flag_unconfirmed', p.resident_id_index, p.enrollment_region, p.full_name, p.resident_id_cipher,
         p.resident_id_masked, '学籍标为建档立卡, 扶贫名单中没有 (flagged registered-poor; the poverty registry does not know the child)',
         sha256(convert_to(concat_ws('|', p.full_name, p.poor_household_id, p.school_code), 'UTF8')),
         jsonb_build_object('school_code', p.school_code, 'household_id', p.poor_household_id)
    -- The anti-join on the index alone; only the few unconfirmed pupils are read.
    FROM (SELECT q.id FROM pupil q
           WHERE q.registered_poor AND q.resident_id_index IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM poverty_child c WHERE c.resident_id_index = q.resident_id_index)) u
    CROSS JOIN LATERAL (SELECT * FROM pupil p WHERE p.id = u.id LIMIT 1) p
  UNION ALL
  SELECT 'poor_flag_missing', p.resident_id_index, p.enrollment_region, p.full_name, p.resident_id_cipher,
         p.resident_id_masked, '扶贫名单中的建档立卡子女, 学籍未标识 (in the poverty registry, not flagged in the student record)',
         sha256(convert_to(concat_ws('|', p.full_name, c.household_id, p.school_code), 'UTF8')),
         jsonb_build_object('school_code', p.school_code, 'household_id', c.household_id)
    -- The poverty list less the flagged pupils (both read from indexes), then the few left are
    -- looked up among the pupils.
    FROM (SELECT c.resident_id_index, c.household_id FROM poverty_child c
           WHERE c.id_problem IS NULL
             AND NOT EXISTS (SELECT 1 FROM pupil q WHERE q.registered_poor AND q.resident_id_index = c.resident_id_index)) c
    CROSS JOIN LATERAL (SELECT * FROM pupil p WHERE p.resident_id_index = c.resident_id_index LIMIT 1) p
  UNION ALL
  SELECT 'enrolled_twice', e.resident_id_index || convert_to(e.school_code, 'UTF8'), e.region, e.full_name,
         e.resident_id_cipher, e.resident_id_masked,
         '同一身份证号已在其他学校注册, 又被 ' || e.school_code || ' 报送 (人籍分离 candidate)',
         sha256(convert_to(concat_ws('|', e.full_name, e.school_code), 'UTF8')),
         jsonb_build_object('school_code', e.school_code)
    FROM enrollment_conflict e) f
            WHERE region LIKE $1 || '%'"#,
        prefix,
        school_age.0,
        school_age.1,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Findings(found))
}

/// Records a run's findings as items: new findings open, closed ones stay closed unless their
/// data changed. Returns every finding of the run, with what its item was before.
pub async fn record_items(
    conn: &mut PgConnection,
    run: Uuid,
    Findings(found): Findings,
) -> sqlx::Result<Vec<RunFinding>> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let column = |take: fn(&Found) -> &str| found.iter().map(take).collect::<Vec<_>>();
    let kinds = column(|f| &f.kind);
    let subjects: Vec<&[u8]> = found.iter().map(|f| f.subject.as_slice()).collect();
    let regions = column(|f| &f.region);
    let names = column(|f| &f.full_name);
    let ciphers: Vec<Option<&[u8]>> = found.iter().map(|f| f.cipher.as_deref()).collect();
    let masked = column(|f| &f.masked);
    let reasons = column(|f| &f.reason);
    let fingerprints: Vec<&[u8]> = found.iter().map(|f| f.fingerprint.as_slice()).collect();
    let details = column(|f| &f.detail);
    let rows = sqlx::query_as!(
        RunFindingRow,
        r#"WITH input AS (
                SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::bytea[], $6::text[],
                                     $7::text[], $8::bytea[], $9::text[])
                           AS i (kind, subject, region, full_name, cipher, masked, reason, fingerprint, detail)),
              old AS (SELECT c.kind, c.subject, c.open FROM check_item c JOIN input i USING (kind, subject)),
              upserted AS (
                INSERT INTO check_item (id, kind, subject, region, full_name, resident_id_cipher, resident_id_masked,
                                        reason, fingerprint, detail, last_run)
                SELECT gen_random_uuid(), kind, subject, region, full_name, cipher, masked, reason, fingerprint,
                       detail::jsonb, $10
                  FROM input
                ON CONFLICT (kind, subject) DO UPDATE SET
                   region = EXCLUDED.region, full_name = EXCLUDED.full_name,
                   resident_id_cipher = EXCLUDED.resident_id_cipher, resident_id_masked = EXCLUDED.resident_id_masked,
                   reason = EXCLUDED.reason, detail = EXCLUDED.detail,
                   open = check_item.open OR check_item.fingerprint <> EXCLUDED.fingerprint,
                   outcome = CASE WHEN check_item.fingerprint = EXCLUDED.fingerprint THEN check_item.outcome END,
                   outcome_detail = CASE WHEN check_item.fingerprint = EXCLUDED.fingerprint THEN check_item.outcome_detail END,
                   closed_by = CASE WHEN check_item.fingerprint = EXCLUDED.fingerprint THEN check_item.closed_by END,
                   closed_at = CASE WHEN check_item.fingerprint = EXCLUDED.fingerprint THEN check_item.closed_at END,
                   fingerprint = EXCLUDED.fingerprint, last_found_at = clock_timestamp(), last_run = EXCLUDED.last_run
                RETURNING id, kind, subject, region, full_name, resident_id_cipher, reason, detail, open)
         SELECT u.id AS "id!", u.kind AS "kind!", u.subject AS "subject!", u.region AS "region!", u.full_name AS "full_name!",
                u.resident_id_cipher AS "resident_id_cipher?", u.reason AS "reason!", u.detail AS "detail!",
                u.open AS "open!", o.open AS "was_open?"
           FROM upserted u LEFT JOIN old o USING (kind, subject)"#,
        &kinds as _,
        &subjects as _,
        &regions as _,
        &names as _,
        &ciphers as _,
        &masked as _,
        &reasons as _,
        &fingerprints as _,
        &details as _,
        run,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(RunFinding::try_from).collect::<Result<_, _>>()?)
}

/// School-age children of the household register in the subtree (with valid numbers), from the
/// counts per county and day of birth the database keeps beside the register.
pub async fn children_checked<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    prefix: &str,
    school_age: (NaiveDate, NaiveDate),
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(sum(members), 0)::bigint AS "count!" FROM household_birth_count
            WHERE responsible_region LIKE $1 || '%' AND birth_date BETWEEN $2 AND $3"#,
        prefix,
        school_age.0,
        school_age.1,
    )
    .fetch_one(conn)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn record_run(
    conn: &mut PgConnection,
    run: Uuid,
    region: RegionCode,
    as_of: NaiveDate,
    children: i64,
    found: &serde_json::Value,
    (opened, still_open, kept_closed): (i64, i64, i64),
    duration_ms: i64,
    caller: &str,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar!(
        "INSERT INTO check_run (id, region, as_of_date, children, found, opened, still_open, kept_closed, duration_ms, caller)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ran_at",
        run,
        region.as_str(),
        as_of,
        children,
        found,
        opened,
        still_open,
        kept_closed,
        duration_ms,
        caller,
    )
    .fetch_one(conn)
    .await
}

/// A cross-check item as stored.
struct ItemRow {
    id: Uuid,
    kind: String,
    region: String,
    full_name: String,
    resident_id_masked: String,
    reason: String,
    open: bool,
    outcome: Option<String>,
    outcome_detail: Option<String>,
    closed_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    first_found_at: DateTime<Utc>,
    last_found_at: DateTime<Utc>,
}

/// A cross-check item: a finding, open until a case worker closes it (销号).
#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub id: Uuid,
    pub kind: Kind,
    pub region: RegionCode,
    pub full_name: String,
    pub resident_id_masked: String,
    pub reason: String,
    pub open: bool,
    pub outcome: Option<Outcome>,
    pub outcome_detail: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub first_found_at: DateTime<Utc>,
    pub last_found_at: DateTime<Utc>,
}

impl TryFrom<ItemRow> for ItemRecord {
    type Error = Undecodable;

    fn try_from(row: ItemRow) -> Result<ItemRecord, Undecodable> {
        let outcome = match &row.outcome {
            None => None,
            Some(text) => Some(decode("check_item", row.id, "outcome", text, Outcome::from_stored)?),
        };
        Ok(ItemRecord {
            kind: decode("check_item", row.id, "kind", &row.kind, Kind::from_stored)?,
            region: region("check_item", row.id, "region", &row.region)?,
            outcome,
            id: row.id,
            full_name: row.full_name,
            resident_id_masked: row.resident_id_masked,
            reason: row.reason,
            open: row.open,
            outcome_detail: row.outcome_detail,
            closed_by: row.closed_by,
            closed_at: row.closed_at,
            first_found_at: row.first_found_at,
            last_found_at: row.last_found_at,
        })
    }
}

pub async fn list<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    prefix: &str,
    kind: Option<Kind>,
    include_closed: bool,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<ItemRecord>> {
    let rows = sqlx::query_as!(
        ItemRow,
        "SELECT id, kind, region, full_name, resident_id_masked, reason, open, outcome, outcome_detail, closed_by,
                closed_at, first_found_at, last_found_at
           FROM check_item
          WHERE region LIKE $1 || '%' AND ($2::text IS NULL OR kind = $2) AND ($3::bool OR open)
            AND ($4::timestamptz IS NULL OR (first_found_at, id) < ($4, $5::uuid))
          ORDER BY first_found_at DESC, id DESC
          LIMIT $6",
        prefix,
        kind.map(Kind::as_stored),
        include_closed,
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(ItemRecord::try_from).collect::<Result<_, _>>()?)
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<ItemRecord>> {
    let row = sqlx::query_as!(
        ItemRow,
        "SELECT id, kind, region, full_name, resident_id_masked, reason, open, outcome, outcome_detail, closed_by,
                closed_at, first_found_at, last_found_at
           FROM check_item WHERE id = $1",
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(ItemRecord::try_from).transpose()?)
}

/// Closes an open item; false when it was already closed.
pub async fn close(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
    detail: &str,
    closed_by: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE check_item SET open = false, outcome = $2, outcome_detail = $3, closed_by = $4, closed_at = clock_timestamp()
          WHERE id = $1 AND open",
        id,
        outcome.as_stored(),
        detail,
        closed_by,
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}
