//! The SQL of the case ledger's own tables: `dropout_case`, `case_history` and `deadline_policy`.
//! Only the ledger (`case::ledger`) calls the writing functions here; rows are decoded into the
//! domain's [`Case`] once, in [`TryFrom<CaseRow>`].

pub mod file;

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::DropoutCause;
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::case::domain::deadlines::{DeadlinePolicy, DueKind};
use crate::case::domain::stored::{Stored, decode_list};
use crate::case::domain::{Case, ChildOnFile, Due, ExistingCase, Source, Status};
use crate::child::ChildRecord;

/// A `dropout_case` row as stored (every column, the resident ID number encrypted).
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: Uuid,
    pub pupil_id: Option<Uuid>,
    pub child_name: String,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_index: Vec<u8>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
    pub region: String,
    pub status: String,
    pub causes: Vec<String>,
    pub notes: String,
    pub source: String,
    pub origin_region: Option<String>,
    pub origin_case_id: Option<Uuid>,
    pub handoff_id: Option<Uuid>,
    pub handoff_destination: Option<String>,
    pub supervision_region: Option<String>,
    pub supervision_reason: Option<String>,
    pub supervision_at: Option<DateTime<Utc>>,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub migrant: bool,
    pub registered_poor: bool,
    pub disability_grade: i16,
    pub confirmed_on: Option<NaiveDate>,
    pub last_attempt_on: Option<NaiveDate>,
    pub follow_up_from: Option<NaiveDate>,
    pub due_on: Option<NaiveDate>,
    pub due_kind: Option<String>,
    pub relapse_count: i32,
    pub status_detail: serde_json::Value,
    pub suspect_id: Option<Uuid>,
    pub ended_at: Option<DateTime<Utc>>,
    pub handoff_requested_on: Option<NaiveDate>,
}

/// A stored value the domain cannot read: the row is corrupt. Logged with the row's id and
/// answered as an internal error, never read as a default.
#[derive(Debug, thiserror::Error)]
#[error("{table} {id}: stored {column} {value:?} is not readable")]
pub struct CorruptRow {
    pub table: &'static str,
    pub id: Uuid,
    pub column: &'static str,
    pub value: String,
}

impl CorruptRow {
    pub fn new(table: &'static str, id: Uuid, column: &'static str, value: impl Into<String>) -> CorruptRow {
        let corrupt = CorruptRow { table, id, column, value: value.into() };
        tracing::error!(table, row_id = %id, column, "corrupt stored value");
        corrupt
    }
}

impl From<CorruptRow> for sqlx::Error {
    fn from(corrupt: CorruptRow) -> sqlx::Error {
        sqlx::Error::Decode(Box::new(corrupt))
    }
}

/// Decodes a stored name of `T` in column `column` of row `id` of `table`.
pub fn decode<T: Stored>(table: &'static str, id: Uuid, column: &'static str, name: &str) -> Result<T, CorruptRow> {
    T::from_stored(name).ok_or_else(|| CorruptRow::new(table, id, column, name))
}

/// Decodes a stored region code.
pub fn region(table: &'static str, id: Uuid, column: &'static str, code: &str) -> Result<RegionCode, CorruptRow> {
    RegionCode::parse(code).map_err(|_| CorruptRow::new(table, id, column, code))
}

fn optional_region(id: Uuid, column: &'static str, code: Option<&str>) -> Result<Option<RegionCode>, CorruptRow> {
    code.map(|code| region("dropout_case", id, column, code)).transpose()
}

impl TryFrom<CaseRow> for Case {
    type Error = CorruptRow;

    fn try_from(row: CaseRow) -> Result<Case, CorruptRow> {
        let id = row.id;
        let due = match (row.due_on, row.due_kind.as_deref()) {
            (Some(on), Some(kind)) => Some(Due { on, kind: decode::<DueKind>("dropout_case", id, "due_kind", kind)? }),
            (None, None) => None,
            (_, kind) => return Err(CorruptRow::new("dropout_case", id, "due_kind", kind.unwrap_or_default())),
        };
        Ok(Case {
            id,
            pupil_id: row.pupil_id,
            child: ChildOnFile {
                full_name: row.child_name,
                resident_id_cipher: row.resident_id_cipher,
                resident_id_index: row.resident_id_index,
                resident_id_masked: row.resident_id_masked,
                sex: row.sex,
                birth_date: row.birth_date,
                hukou_region: row.hukou_region,
            },
            region: region("dropout_case", id, "region", &row.region)?,
            status: decode("dropout_case", id, "status", &row.status)?,
            causes: decode_list::<DropoutCause>(&row.causes)
                .map_err(|name| CorruptRow::new("dropout_case", id, "causes", name))?,
            notes: row.notes,
            source: decode::<Source>("dropout_case", id, "source", &row.source)?,
            origin_region: optional_region(id, "origin_region", row.origin_region.as_deref())?,
            origin_case_id: row.origin_case_id,
            handoff_id: row.handoff_id,
            handoff_destination: optional_region(id, "handoff_destination", row.handoff_destination.as_deref())?,
            supervision_region: optional_region(id, "supervision_region", row.supervision_region.as_deref())?,
            supervision_reason: row.supervision_reason,
            opened_by: row.opened_by,
            opened_at: row.opened_at,
            updated_at: row.updated_at,
            version: row.version,
            migrant: row.migrant,
            registered_poor: row.registered_poor,
            disability_grade: row.disability_grade,
            confirmed_on: row.confirmed_on,
            last_attempt_on: row.last_attempt_on,
            follow_up_from: row.follow_up_from,
            handoff_requested_on: row.handoff_requested_on,
            due,
            relapse_count: row.relapse_count,
            status_detail: row.status_detail,
            suspect_id: row.suspect_id,
            ended_at: row.ended_at,
        })
    }
}

fn cases(rows: Vec<CaseRow>) -> sqlx::Result<Vec<Case>> {
    rows.into_iter().map(|row| Case::try_from(row).map_err(sqlx::Error::from)).collect()
}

fn case(row: Option<CaseRow>) -> sqlx::Result<Option<Case>> {
    row.map(Case::try_from).transpose().map_err(sqlx::Error::from)
}

/// A case to open.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub id: Uuid,
    pub pupil_id: Option<Uuid>,
    pub child: ChildRecord,
    pub region: RegionCode,
    pub causes: Vec<DropoutCause>,
    pub notes: String,
    pub source: Source,
    pub origin_region: Option<RegionCode>,
    pub origin_case_id: Option<Uuid>,
    pub handoff_id: Option<Uuid>,
    pub opened_by: String,
    /// The day the dropout was confirmed, by the rule clock (China Standard Time).
    pub confirmed_on: NaiveDate,
    pub migrant: bool,
    pub registered_poor: bool,
    /// `DisabilityGrade` as its number.
    pub disability_grade: i16,
    /// The suspected-dropout item this case was confirmed from.
    pub suspect_id: Option<Uuid>,
}

/// Inserts a case with its due date; a unique violation of `dropout_case_one_active_per_child`
/// means the child already has an active case.
pub(in crate::case) async fn insert(conn: &mut PgConnection, case: &NewCase, due: Option<Due>) -> sqlx::Result<Case> {
    let causes: Vec<String> = case.causes.iter().map(|cause| cause.as_stored().to_owned()).collect();
    let row = sqlx::query_as!(
        CaseRow,
        "INSERT INTO dropout_case (id, pupil_id, child_name, resident_id_cipher, resident_id_index, resident_id_masked,
                                   sex, birth_date, hukou_region, region, status, causes, notes, source,
                                   origin_region, origin_case_id, handoff_id, opened_by, confirmed_on, migrant,
                                   registered_poor, disability_grade, suspect_id, due_on, due_kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, $21, $22, $23, $24)
         RETURNING *",
        case.id,
        case.pupil_id,
        case.child.full_name,
        case.child.resident_id_cipher,
        case.child.resident_id_index,
        case.child.resident_id_masked,
        case.child.sex,
        case.child.birth_date,
        case.child.hukou_region,
        case.region.as_str(),
        &causes,
        case.notes,
        case.source.as_stored(),
        case.origin_region.map(|region| region.to_string()),
        case.origin_case_id,
        case.handoff_id,
        case.opened_by,
        case.confirmed_on,
        case.migrant,
        case.registered_poor,
        case.disability_grade,
        case.suspect_id,
        due.map(|due| due.on),
        due.map(|due| due.kind.as_stored()),
    )
    .fetch_one(conn)
    .await?;
    Ok(Case::try_from(row)?)
}

/// The active case of the child with this blind index, if any (R2).
pub async fn find_active_by_index(conn: &mut PgConnection, index: &[u8]) -> sqlx::Result<Option<ExistingCase>> {
    let row = sqlx::query!(
        "SELECT id, status, region FROM dropout_case
          WHERE resident_id_index = $1 AND status NOT IN ('handed_over', 'exempt', 'closed')",
        index
    )
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(ExistingCase {
            id: row.id,
            status: decode("dropout_case", row.id, "status", &row.status)?,
            region: region("dropout_case", row.id, "region", &row.region)?,
        })
    })
    .transpose()
    .map_err(|corrupt: CorruptRow| corrupt.into())
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Case>> {
    case(sqlx::query_as!(CaseRow, "SELECT * FROM dropout_case WHERE id = $1", id).fetch_optional(pool).await?)
}

/// Reads a case and locks it for a change in this transaction.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Case>> {
    case(
        sqlx::query_as!(CaseRow, "SELECT * FROM dropout_case WHERE id = $1 FOR UPDATE", id)
            .fetch_optional(conn)
            .await?,
    )
}

/// What a case listing selects, besides the region subtree.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// Any of these statuses; empty for all.
    pub statuses: Vec<Status>,
    /// Any of these causes; empty for all.
    pub causes: Vec<DropoutCause>,
    /// Overdue (true) or not overdue (false) on `today`.
    pub overdue: Option<bool>,
    pub migrant: Option<bool>,
    pub registered_poor: Option<bool>,
    /// A disability on record (grade ONE to FOUR) or not.
    pub disability: Option<bool>,
    /// Today by the rule clock, for `overdue`.
    pub today: Option<NaiveDate>,
}

/// Cases owned in the subtree whose codes start with `prefix`, newest first.
///
/// A county's prefix is its whole code, and then `region = $1` says so to the planner (the
/// statement is planned with its values, `plan_cache_mode = force_custom_plan`): the index on
/// (region, opened_at DESC, id DESC) then gives the page in order and only its rows are read.
/// With the prefix alone it read every case of the county and sorted them: ~5× the bare
/// `SELECT` at 1,200,000 cases (docs/BENCHMARKS.md).
pub async fn list<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    prefix: &str,
    query: &CaseQuery,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Case>> {
    let statuses: Vec<String> = query.statuses.iter().map(|status| status.as_stored().to_owned()).collect();
    let causes: Vec<String> = query.causes.iter().map(|cause| cause.as_stored().to_owned()).collect();
    let rows = sqlx::query_as!(
        CaseRow,
        "SELECT * FROM dropout_case
          WHERE region LIKE $1 || '%' AND (length($1) < 6 OR region = $1)
            AND (cardinality($2::text[]) = 0 OR status = ANY($2))
            AND ($3::timestamptz IS NULL OR (opened_at, id) < ($3, $4))
            AND (cardinality($6::text[]) = 0 OR causes && $6)
            AND ($7::boolean IS NULL OR (due_on IS NOT NULL AND due_on < $8::date) = $7)
            AND ($9::boolean IS NULL OR migrant = $9)
            AND ($10::boolean IS NULL OR registered_poor = $10)
            AND ($11::boolean IS NULL OR (disability_grade BETWEEN 2 AND 5) = $11)
          ORDER BY opened_at DESC, id DESC
          LIMIT $5",
        prefix,
        &statuses,
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
        &causes,
        query.overdue,
        query.today,
        query.migrant,
        query.registered_poor,
        query.disability,
    )
    .fetch_all(executor)
    .await?;
    cases(rows)
}

/// The columns a status change moves.
#[derive(Debug, Clone)]
pub(in crate::case) struct StatusColumns<'a> {
    pub status: Status,
    pub detail: &'a serde_json::Value,
    pub relapse: bool,
    pub follow_up_from: Option<NaiveDate>,
    pub confirmed_on: Option<NaiveDate>,
    pub last_attempt_on: Option<NaiveDate>,
    pub due: Option<Due>,
}

/// Writes a status change; returns the new row.
pub(in crate::case) async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    change: &StatusColumns<'_>,
) -> sqlx::Result<Case> {
    let row = sqlx::query_as!(
        CaseRow,
        "UPDATE dropout_case
            SET status = $2, status_detail = $3, relapse_count = relapse_count + $4::int,
                follow_up_from = $5, confirmed_on = $6, last_attempt_on = $7, due_on = $8, due_kind = $9,
                ended_at = CASE WHEN $2 IN ('exempt', 'closed') THEN clock_timestamp() ELSE ended_at END,
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING *",
        id,
        change.status.as_stored(),
        change.detail,
        i32::from(change.relapse),
        change.follow_up_from,
        change.confirmed_on,
        change.last_attempt_on,
        change.due.map(|due| due.on),
        change.due.map(|due| due.kind.as_stored()),
    )
    .fetch_one(conn)
    .await?;
    Ok(Case::try_from(row)?)
}

/// Moves a case to `status` for hand-off `handoff_id` (pending or handed over), with the day it
/// was requested and what the case owes now; returns the new version.
pub(in crate::case) async fn set_handoff_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: Status,
    handoff_id: Uuid,
    destination: &RegionCode,
    requested_on: Option<NaiveDate>,
    due: Option<Due>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "UPDATE dropout_case
            SET status = $2, handoff_id = $3, handoff_destination = $4,
                handoff_requested_on = coalesce($5, handoff_requested_on), due_on = $6, due_kind = $7,
                ended_at = CASE WHEN $2 = 'handed_over' THEN clock_timestamp() ELSE ended_at END,
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
        id,
        status.as_stored(),
        handoff_id,
        destination.as_str(),
        requested_on,
        due.map(|due| due.on),
        due.map(|due| due.kind.as_stored()),
    )
    .fetch_one(conn)
    .await
}

/// A refused or withdrawn hand-off: the case is open again, no hand-off under way; returns the
/// new version.
pub(in crate::case) async fn clear_handoff(conn: &mut PgConnection, id: Uuid, due: Option<Due>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "UPDATE dropout_case
            SET status = 'open', handoff_id = NULL, handoff_destination = NULL, handoff_requested_on = NULL,
                due_on = $2, due_kind = $3, updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
        id,
        due.map(|due| due.on),
        due.map(|due| due.kind.as_stored()),
    )
    .fetch_one(conn)
    .await
}

/// Keeps what the origin knew with a case taken in.
pub(in crate::case) async fn insert_origin_dossier(
    conn: &mut PgConnection,
    case_id: Uuid,
    handoff_id: Uuid,
    origin_region: &RegionCode,
    origin_case_id: Uuid,
    dossier: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO case_origin_dossier (case_id, handoff_id, origin_region, origin_case_id, dossier)
         VALUES ($1, $2, $3, $4, $5)",
        case_id,
        handoff_id,
        origin_region.as_str(),
        origin_case_id,
        dossier,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What the origin knew about a case taken in (OriginDossier, encoded), if it was taken in.
pub async fn origin_dossier(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar!("SELECT dossier FROM case_origin_dossier WHERE case_id = $1", case_id)
        .fetch_optional(pool)
        .await
}

/// What this province decided on an incoming hand-off's take-in, if it did: the case it opened
/// for it, or the child's active case that R2 refused it for.
pub async fn take_in_decided(conn: &mut PgConnection, handoff_id: Uuid) -> sqlx::Result<Option<TakeInDecided>> {
    // Held until the transaction ends: the accept's call and its event decide one after the other.
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('take_in:' || $1::text, 0))", handoff_id.to_string())
        .execute(&mut *conn)
        .await?;
    let decided = sqlx::query!(
        r#"SELECT id AS "case_id!", false AS "refused!" FROM dropout_case WHERE handoff_id = $1 AND source = 'handoff'
           UNION ALL
           SELECT existing_case_id, true FROM take_in_refusal WHERE handoff_id = $1"#,
        handoff_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(decided
        .map(|row| if row.refused { TakeInDecided::Refused(row.case_id) } else { TakeInDecided::Opened(row.case_id) }))
}

/// A take-in R2 refused, kept so that the accept's other way to this service answers the same.
pub async fn record_take_in_refusal(conn: &mut PgConnection, handoff_id: Uuid, existing: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO take_in_refusal (handoff_id, existing_case_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        handoff_id,
        existing
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How an incoming hand-off's take-in was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeInDecided {
    /// The case opened here for it.
    Opened(Uuid),
    /// R2: the child's active case here; the hand-off is rejected.
    Refused(Uuid),
}

/// The active case of a child (blind index) in the subtree whose codes start with `prefix`.
pub async fn find_active_in(conn: &mut PgConnection, index: &[u8], prefix: &str) -> sqlx::Result<Option<Case>> {
    case(
        sqlx::query_as!(
            CaseRow,
            "SELECT * FROM dropout_case
              WHERE resident_id_index = $1 AND region LIKE $2 || '%'
                AND status NOT IN ('handed_over', 'exempt', 'closed')",
            index,
            prefix,
        )
        .fetch_optional(conn)
        .await?,
    )
}

/// Bumps a case's version for a change of its file; returns the new version.
pub(in crate::case) async fn bump_version(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "UPDATE dropout_case SET updated_at = clock_timestamp(), version = version + 1 WHERE id = $1 RETURNING version",
        id
    )
    .fetch_one(conn)
    .await
}

pub(in crate::case) async fn set_causes(
    conn: &mut PgConnection,
    id: Uuid,
    causes: &[DropoutCause],
) -> sqlx::Result<()> {
    let names: Vec<String> = causes.iter().map(|cause| cause.as_stored().to_owned()).collect();
    sqlx::query!("UPDATE dropout_case SET causes = $2 WHERE id = $1", id, &names).execute(conn).await?;
    Ok(())
}

/// Moves the newest attempt date and the due date after an attempt.
pub(in crate::case) async fn set_attempt_dates(
    conn: &mut PgConnection,
    id: Uuid,
    last_attempt_on: Option<NaiveDate>,
    due: Option<Due>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE dropout_case SET last_attempt_on = $2, due_on = $3, due_kind = $4 WHERE id = $1",
        id,
        last_attempt_on,
        due.map(|due| due.on),
        due.map(|due| due.kind.as_stored()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts the case under a higher bureau's supervision (R12); returns the new version, None when
/// the case does not exist.
pub(in crate::case) async fn set_supervision(
    conn: &mut PgConnection,
    id: Uuid,
    region: &RegionCode,
    reason: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE dropout_case
            SET supervision_region = $2, supervision_reason = $3, supervision_at = clock_timestamp(),
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
        id,
        region.as_str(),
        reason,
    )
    .fetch_optional(conn)
    .await
}

pub(in crate::case) async fn append_history(
    conn: &mut PgConnection,
    case_id: Uuid,
    version: i64,
    actor: &str,
    change: &str,
    detail: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO case_history (case_id, version, actor, change, detail) VALUES ($1, $2, $3, $4, $5)",
        case_id,
        version,
        actor,
        change,
        detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An entry of a case's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub version: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub detail: serde_json::Value,
}

/// A case's history, oldest first, after version `after`.
pub async fn history<'c>(
    db: impl sqlx::PgExecutor<'c>,
    case_id: Uuid,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as!(
        HistoryRow,
        "SELECT version, at, actor, change, detail FROM case_history
          WHERE case_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        case_id,
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The province's deadline policy with who changed it last.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub first_contact_days: i32,
    pub attempt_interval_days: i32,
    pub deferred_follow_up_days: i32,
    pub supervision_after_days: i32,
    pub handoff_decision_days: i32,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl PolicyRow {
    pub fn policy(&self) -> DeadlinePolicy {
        DeadlinePolicy {
            first_contact_days: self.first_contact_days,
            attempt_interval_days: self.attempt_interval_days,
            deferred_follow_up_days: self.deferred_follow_up_days,
            supervision_after_days: self.supervision_after_days,
            handoff_decision_days: self.handoff_decision_days,
        }
    }
}

pub async fn policy_row(conn: &mut PgConnection) -> sqlx::Result<PolicyRow> {
    sqlx::query_as!(
        PolicyRow,
        "SELECT first_contact_days, attempt_interval_days, deferred_follow_up_days, supervision_after_days,
                handoff_decision_days, updated_by, updated_at
           FROM deadline_policy"
    )
    .fetch_one(conn)
    .await
}

/// The province's deadlines (one row; the defaults if it is somehow missing).
pub async fn policy(conn: &mut PgConnection) -> sqlx::Result<DeadlinePolicy> {
    let policy = sqlx::query_as!(
        DeadlinePolicy,
        "SELECT first_contact_days, attempt_interval_days, deferred_follow_up_days, supervision_after_days,
                handoff_decision_days
           FROM deadline_policy"
    )
    .fetch_optional(conn)
    .await?;
    Ok(policy.unwrap_or_default())
}

pub(in crate::case) async fn update_policy(
    conn: &mut PgConnection,
    policy: &DeadlinePolicy,
    actor: &str,
) -> sqlx::Result<PolicyRow> {
    sqlx::query_as!(
        PolicyRow,
        "UPDATE deadline_policy
            SET first_contact_days = $1, attempt_interval_days = $2, deferred_follow_up_days = $3,
                supervision_after_days = $4, handoff_decision_days = $5, updated_by = $6,
                updated_at = clock_timestamp()
          RETURNING first_contact_days, attempt_interval_days, deferred_follow_up_days, supervision_after_days,
                    handoff_decision_days, updated_by, updated_at",
        policy.first_contact_days,
        policy.attempt_interval_days,
        policy.deferred_follow_up_days,
        policy.supervision_after_days,
        policy.handoff_decision_days,
        actor,
    )
    .fetch_one(conn)
    .await
}

/// The dates of every case that owes work by deadline, locked, for a new policy.
pub(in crate::case) async fn dated_for_update(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(Uuid, Status, crate::case::domain::deadlines::CaseDates)>> {
    let rows = sqlx::query!(
        r#"SELECT id, status, coalesce(confirmed_on, (opened_at AT TIME ZONE 'Asia/Shanghai')::date) AS "confirmed_on!",
                  last_attempt_on, follow_up_from, handoff_requested_on
             FROM dropout_case WHERE status IN ('open', 'deferred', 'suspended', 'handoff_pending')
              FOR UPDATE"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let status = decode::<Status>("dropout_case", row.id, "status", &row.status)?;
            let dates = crate::case::domain::deadlines::CaseDates {
                status,
                confirmed_on: row.confirmed_on,
                last_attempt_on: row.last_attempt_on,
                follow_up_from: row.follow_up_from,
                handoff_requested_on: row.handoff_requested_on,
            };
            Ok((row.id, status, dates))
        })
        .collect::<Result<_, CorruptRow>>()
        .map_err(sqlx::Error::from)
}

/// Sets new due dates; returns the cases whose due date changed.
pub(in crate::case) async fn set_due_dates(
    conn: &mut PgConnection,
    ids: &[Uuid],
    days: &[Option<NaiveDate>],
    kinds: &[Option<String>],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE dropout_case AS c SET due_on = u.due_on, due_kind = u.due_kind
           FROM unnest($1::uuid[], $2::date[], $3::text[]) AS u (id, due_on, due_kind)
          WHERE c.id = u.id AND (c.due_on IS DISTINCT FROM u.due_on OR c.due_kind IS DISTINCT FROM u.due_kind)
          RETURNING c.id",
        ids,
        days as &[Option<NaiveDate>],
        kinds as &[Option<String>],
    )
    .fetch_all(conn)
    .await
}

/// A case of this province waiting for a hand-off's decision, and the day it is due.
pub(in crate::case) struct PendingHandoff {
    pub case_id: Uuid,
    pub version: i64,
    pub region: RegionCode,
    pub handoff_id: Uuid,
    pub destination: RegionCode,
    pub due_on: NaiveDate,
}

/// Of `ids`, the cases pending a hand-off, with its decision's due date.
pub(in crate::case) async fn pending_handoffs_among(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<Vec<PendingHandoff>> {
    let rows = sqlx::query!(
        r#"SELECT id, version, region, handoff_id AS "handoff_id!", handoff_destination AS "destination!",
                  due_on AS "due_on!"
             FROM dropout_case
            WHERE id = ANY($1) AND status = 'handoff_pending' AND due_kind = 'handoff_decision'
              AND handoff_id IS NOT NULL AND handoff_destination IS NOT NULL AND due_on IS NOT NULL"#,
        ids,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(PendingHandoff {
                case_id: row.id,
                version: row.version,
                region: region("dropout_case", row.id, "region", &row.region)?,
                handoff_id: row.handoff_id,
                destination: region("dropout_case", row.id, "handoff_destination", &row.destination)?,
                due_on: row.due_on,
            })
        })
        .collect::<Result<_, CorruptRow>>()
        .map_err(sqlx::Error::from)
}
