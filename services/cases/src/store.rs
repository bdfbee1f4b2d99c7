//! The case service's SQL.

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::deadlines::{CaseDates, DeadlinePolicy, next_due};
use crate::domain::Status;

/// A case row as stored (the resident ID number encrypted).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub pupil_id: Option<Uuid>,
    pub child_name: String,
    pub resident_id_cipher: Vec<u8>,
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
}

impl CaseRow {
    /// The dates the case's deadlines run from.
    pub fn dates(&self) -> Option<CaseDates> {
        Some(CaseDates {
            status: Status::parse(&self.status)?,
            confirmed_on: self.confirmed_on.unwrap_or_else(|| nol_runtime::clock::china_date(self.opened_at)),
            last_attempt_on: self.last_attempt_on,
            follow_up_from: self.follow_up_from,
        })
    }
}

const COLUMNS: &str = "id, pupil_id, child_name, resident_id_cipher, resident_id_masked, sex, birth_date,
    hukou_region, region, status, causes, notes, source, origin_region, origin_case_id, handoff_id,
    handoff_destination, supervision_region, supervision_reason, opened_by, opened_at, updated_at, version,
    migrant, registered_poor, disability_grade, confirmed_on, last_attempt_on, follow_up_from, due_on, due_kind,
    relapse_count, status_detail, suspect_id, ended_at";

/// The child as a case stores it.
#[derive(Debug, Clone)]
pub struct ChildRecord {
    pub full_name: String,
    pub resident_id_cipher: Vec<u8>,
    pub resident_id_index: Vec<u8>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
}

/// A case to open.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub id: Uuid,
    pub pupil_id: Option<Uuid>,
    pub child: ChildRecord,
    pub region: String,
    pub causes: Vec<String>,
    pub notes: String,
    pub source: &'static str,
    pub origin_region: Option<String>,
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

pub async fn insert(conn: &mut PgConnection, case: &NewCase) -> sqlx::Result<CaseRow> {
    let policy = policy(conn).await?;
    let dates = CaseDates {
        status: Status::Open,
        confirmed_on: case.confirmed_on,
        last_attempt_on: None,
        follow_up_from: None,
    };
    let due = next_due(&dates, &policy);
    let row = sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO dropout_case (id, pupil_id, child_name, resident_id_cipher, resident_id_index, resident_id_masked,
                                   sex, birth_date, hukou_region, region, status, causes, notes, source,
                                   origin_region, origin_case_id, handoff_id, opened_by, confirmed_on, migrant,
                                   registered_poor, disability_grade, suspect_id, due_on, due_kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, $21, $22, $23, $24)
         RETURNING {COLUMNS}"
    )))
    .bind(case.id)
    .bind(case.pupil_id)
    .bind(&case.child.full_name)
    .bind(&case.child.resident_id_cipher)
    .bind(&case.child.resident_id_index)
    .bind(&case.child.resident_id_masked)
    .bind(case.child.sex)
    .bind(case.child.birth_date)
    .bind(&case.child.hukou_region)
    .bind(&case.region)
    .bind(&case.causes)
    .bind(&case.notes)
    .bind(case.source)
    .bind(&case.origin_region)
    .bind(case.origin_case_id)
    .bind(case.handoff_id)
    .bind(&case.opened_by)
    .bind(case.confirmed_on)
    .bind(case.migrant)
    .bind(case.registered_poor)
    .bind(case.disability_grade)
    .bind(case.suspect_id)
    .bind(due.map(|(day, _)| day))
    .bind(due.map(|(_, kind)| kind.as_str()))
    .fetch_one(&mut *conn)
    .await?;
    append_history(conn, case.id, 1, &case.opened_by, "opened", serde_json::json!({ "source": case.source })).await?;
    Ok(row)
}

/// The active case of the child with this blind index, if any.
pub async fn find_active_by_index(pool: &PgPool, index: &[u8]) -> sqlx::Result<Option<CaseRow>> {
    sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dropout_case
          WHERE resident_id_index = $1 AND status NOT IN ('handed_over', 'exempt', 'closed')"
    )))
    .bind(index)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<CaseRow>> {
    sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM dropout_case WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Reads a case and locks it for a change in this transaction.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<CaseRow>> {
    sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dropout_case WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// What a case listing selects, besides the region subtree.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// Any of these statuses; empty for all.
    pub statuses: Vec<Status>,
    /// Any of these causes (stored names); empty for all.
    pub causes: Vec<String>,
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
pub async fn list(
    pool: &PgPool,
    prefix: &str,
    query: &CaseQuery,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<CaseRow>> {
    let statuses: Vec<&str> = query.statuses.iter().map(|status| status.as_str()).collect();
    sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dropout_case
          WHERE region LIKE $1 || '%'
            AND (cardinality($2::text[]) = 0 OR status = ANY($2))
            AND ($3::timestamptz IS NULL OR (opened_at, id) < ($3, $4))
            AND (cardinality($6::text[]) = 0 OR causes && $6)
            AND ($7::boolean IS NULL OR (due_on IS NOT NULL AND due_on < $8::date) = $7)
            AND ($9::boolean IS NULL OR migrant = $9)
            AND ($10::boolean IS NULL OR registered_poor = $10)
            AND ($11::boolean IS NULL OR (disability_grade BETWEEN 2 AND 5) = $11)
          ORDER BY opened_at DESC, id DESC
          LIMIT $5"
    )))
    .bind(prefix)
    .bind(&statuses)
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .bind(&query.causes)
    .bind(query.overdue)
    .bind(query.today)
    .bind(query.migrant)
    .bind(query.registered_poor)
    .bind(query.disability)
    .fetch_all(pool)
    .await
}

/// Moves a case to `status` for hand-off `handoff_id`; returns the new version.
pub async fn set_handoff_status(
    conn: &mut PgConnection,
    row: &CaseRow,
    status: Status,
    handoff_id: Uuid,
    destination: &str,
    actor: &str,
) -> sqlx::Result<i64> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE dropout_case
            SET status = $2, handoff_id = $3, handoff_destination = $4,
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
    )
    .bind(row.id)
    .bind(status.as_str())
    .bind(handoff_id)
    .bind(destination)
    .fetch_one(&mut *conn)
    .await?;
    append_history(
        conn,
        row.id,
        version,
        actor,
        status.as_str(),
        serde_json::json!({ "handoff_id": handoff_id, "destination_region_code": destination }),
    )
    .await?;
    Ok(version)
}

/// Puts the case under a higher bureau's supervision (R12), recording why in its history.
pub async fn raise_supervision(
    conn: &mut PgConnection,
    case_id: Uuid,
    region: &str,
    reason: &str,
    actor: &str,
) -> sqlx::Result<bool> {
    let version: Option<i64> = sqlx::query_scalar(
        "UPDATE dropout_case
            SET supervision_region = $2, supervision_reason = $3, supervision_at = clock_timestamp(),
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
    )
    .bind(case_id)
    .bind(region)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(version) = version else {
        return Ok(false);
    };
    append_history(
        conn,
        case_id,
        version,
        actor,
        "supervision_raised",
        serde_json::json!({ "region_code": region, "reason": reason }),
    )
    .await?;
    Ok(true)
}

/// The province's deadlines (one row; the defaults if it is somehow missing).
pub async fn policy(conn: &mut PgConnection) -> sqlx::Result<DeadlinePolicy> {
    let policy = sqlx::query_as::<_, DeadlinePolicy>(
        "SELECT first_contact_days, attempt_interval_days, deferred_follow_up_days, supervision_after_days
           FROM deadline_policy",
    )
    .fetch_optional(conn)
    .await?;
    Ok(policy.unwrap_or_default())
}

/// A status change as stored: the new status, what the change records, and the dates it moves.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub to: Status,
    /// The history entry's name, e.g. "returned", "relapsed", "deferred".
    pub change: &'a str,
    pub actor: &'a str,
    /// Replaces `status_detail` (e.g. the school, class and date of a return).
    pub detail: serde_json::Value,
    /// A monitored child dropped out again.
    pub relapse: bool,
    /// For a deferral or suspension: the day follow-ups run from.
    pub follow_up_from: Option<NaiveDate>,
    /// For a reopened case: the day the dropout was confirmed again.
    pub confirmed_on: Option<NaiveDate>,
}

/// Writes a status change with its history entry and recomputed due date; returns the new row.
pub async fn set_status(conn: &mut PgConnection, row: &CaseRow, change: &StatusChange<'_>) -> sqlx::Result<CaseRow> {
    let policy = policy(conn).await?;
    let mut dates = row.dates().ok_or_else(|| sqlx::Error::Decode("stored case status unreadable".into()))?;
    dates.status = change.to;
    if let Some(day) = change.follow_up_from {
        dates.follow_up_from = Some(day);
    }
    if let Some(day) = change.confirmed_on {
        dates.confirmed_on = day;
        dates.last_attempt_on = None;
    }
    let due = next_due(&dates, &policy);
    let updated = sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE dropout_case
            SET status = $2, status_detail = $3, relapse_count = relapse_count + $4::int,
                follow_up_from = $5, confirmed_on = $6, last_attempt_on = $7, due_on = $8, due_kind = $9,
                ended_at = CASE WHEN $2 IN ('exempt', 'closed') THEN clock_timestamp() ELSE ended_at END,
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING {COLUMNS}"
    )))
    .bind(row.id)
    .bind(change.to.as_str())
    .bind(&change.detail)
    .bind(i32::from(change.relapse))
    .bind(dates.follow_up_from)
    .bind(dates.confirmed_on)
    .bind(dates.last_attempt_on)
    .bind(due.map(|(day, _)| day))
    .bind(due.map(|(_, kind)| kind.as_str()))
    .fetch_one(&mut *conn)
    .await?;
    let mut detail = change.detail.clone();
    if let Some(object) = detail.as_object_mut() {
        object.insert("from".to_owned(), row.status.clone().into());
        object.insert("to".to_owned(), change.to.as_str().into());
    }
    append_history(conn, row.id, updated.version, change.actor, change.change, detail).await?;
    Ok(updated)
}

/// Recomputes a case's due date after its dates changed (e.g. a persuasion attempt recorded).
pub async fn refresh_due(conn: &mut PgConnection, case_id: Uuid) -> sqlx::Result<()> {
    let Some(row) = get_for_update(conn, case_id).await? else { return Ok(()) };
    let policy = policy(conn).await?;
    let due = row.dates().and_then(|dates| next_due(&dates, &policy));
    sqlx::query("UPDATE dropout_case SET due_on = $2, due_kind = $3 WHERE id = $1")
        .bind(case_id)
        .bind(due.map(|(day, _)| day))
        .bind(due.map(|(_, kind)| kind.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn append_history(
    conn: &mut PgConnection,
    case_id: Uuid,
    version: i64,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO case_history (case_id, version, actor, change, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(version)
        .bind(actor)
        .bind(change)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}
