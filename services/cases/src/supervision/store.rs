//! The SQL of supervision and the semester-start check.

use chrono::{DateTime, NaiveDate, Utc};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::deadlines::{CaseDates, DeadlinePolicy, next_due};
use crate::domain::Status;

/// The policy row with who changed it last.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub first_contact_days: i32,
    pub attempt_interval_days: i32,
    pub deferred_follow_up_days: i32,
    pub supervision_after_days: i32,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

const POLICY_COLUMNS: &str = "first_contact_days, attempt_interval_days, deferred_follow_up_days, supervision_after_days, updated_by, updated_at";

pub async fn policy_row(conn: &mut PgConnection) -> sqlx::Result<PolicyRow> {
    sqlx::query_as::<_, PolicyRow>(sqlx::AssertSqlSafe(format!("SELECT {POLICY_COLUMNS} FROM deadline_policy")))
        .fetch_one(conn)
        .await
}

/// Stores a new policy and recomputes the due date of every case that has deadlines, in batches
/// of the caller's transaction. Returns the stored row and how many cases were rescheduled.
pub async fn update_policy(
    conn: &mut PgConnection,
    policy: &DeadlinePolicy,
    actor: &str,
) -> sqlx::Result<(PolicyRow, i64)> {
    let row = sqlx::query_as::<_, PolicyRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE deadline_policy
            SET first_contact_days = $1, attempt_interval_days = $2, deferred_follow_up_days = $3,
                supervision_after_days = $4, updated_by = $5, updated_at = clock_timestamp()
          RETURNING {POLICY_COLUMNS}"
    )))
    .bind(policy.first_contact_days)
    .bind(policy.attempt_interval_days)
    .bind(policy.deferred_follow_up_days)
    .bind(policy.supervision_after_days)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    #[derive(sqlx::FromRow)]
    struct Dated {
        id: Uuid,
        status: String,
        confirmed_on: NaiveDate,
        last_attempt_on: Option<NaiveDate>,
        follow_up_from: Option<NaiveDate>,
    }
    let rows = sqlx::query_as::<_, Dated>(
        "SELECT id, status, coalesce(confirmed_on, (opened_at AT TIME ZONE 'Asia/Shanghai')::date) AS confirmed_on,
                last_attempt_on, follow_up_from
           FROM dropout_case WHERE status IN ('open', 'deferred', 'suspended')
            FOR UPDATE",
    )
    .fetch_all(&mut *conn)
    .await?;
    let (mut ids, mut days, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let Some(status) = Status::parse(&row.status) else { continue };
        let dates = CaseDates {
            status,
            confirmed_on: row.confirmed_on,
            last_attempt_on: row.last_attempt_on,
            follow_up_from: row.follow_up_from,
        };
        let due = next_due(&dates, policy);
        ids.push(row.id);
        days.push(due.map(|(day, _)| day));
        kinds.push(due.map(|(_, kind)| kind.as_str()));
    }
    let updated = sqlx::query(
        "UPDATE dropout_case AS c SET due_on = u.due_on, due_kind = u.due_kind
           FROM unnest($1::uuid[], $2::date[], $3::text[]) AS u (id, due_on, due_kind)
          WHERE c.id = u.id AND (c.due_on IS DISTINCT FROM u.due_on OR c.due_kind IS DISTINCT FROM u.due_kind)",
    )
    .bind(&ids)
    .bind(&days)
    .bind(&kinds)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((row, updated as i64))
}

/// One piece of overdue work with the child's masked summary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OverdueRow {
    /// The case, or the semester check item.
    pub id: Uuid,
    pub case_id: Uuid,
    pub region: String,
    pub kind: String,
    pub due_on: NaiveDate,
    pub child_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
    pub supervision_item_id: Option<Uuid>,
}

/// The overdue work of a subtree: cases past their due date and children of semester checks not
/// confirmed by the check's deadline, as (id, case, region, kind, due date). Ordered by (due date,
/// id), oldest first. Only the page's rows are then joined to the child and to supervision items.
const OVERDUE: &str = "
    SELECT c.id AS id, c.id AS case_id, c.region, c.due_kind AS kind, c.due_on
      FROM dropout_case c
     WHERE c.region LIKE $1 || '%' AND c.due_on < $2 AND ($3::text IS NULL OR c.due_kind = $3)
    UNION ALL
    SELECT i.id, i.case_id, i.region, 'semester_check', k.deadline
      FROM semester_check_item i
      JOIN semester_check k ON k.id = i.check_id
     WHERE i.region LIKE $1 || '%' AND i.state IN ('pending', 'absent') AND k.deadline < $2
       AND ($3::text IS NULL OR $3 = 'semester_check')";

pub async fn list_overdue(
    pool: &PgPool,
    prefix: &str,
    today: NaiveDate,
    kind: Option<&str>,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<OverdueRow>> {
    sqlx::query_as::<_, OverdueRow>(sqlx::AssertSqlSafe(format!(
        "SELECT w.id, w.case_id, w.region, w.kind, w.due_on, c.child_name, c.resident_id_masked, c.sex,
                c.birth_date, c.hukou_region,
                CASE WHEN w.kind = 'semester_check'
                     THEN (SELECT s.id FROM supervision_item s WHERE s.check_item_id = w.id)
                     ELSE (SELECT s.id FROM supervision_item s
                            WHERE s.case_id = w.case_id AND s.kind = w.kind AND s.due_on = w.due_on
                              AND s.check_item_id IS NULL)
                END AS supervision_item_id
           FROM (SELECT * FROM ({OVERDUE}) AS work
                  WHERE ($4::date IS NULL OR (due_on, id) > ($4, $5))
                  ORDER BY due_on, id
                  LIMIT $6) AS w
           JOIN dropout_case c ON c.id = w.case_id
          ORDER BY w.due_on, w.id"
    )))
    .bind(prefix)
    .bind(today)
    .bind(kind)
    .bind(after.map(|(day, _)| day))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn count_overdue(pool: &PgPool, prefix: &str, today: NaiveDate, kind: Option<&str>) -> sqlx::Result<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM dropout_case c
                  WHERE c.region LIKE $1 || '%' AND c.due_on < $2 AND ($3::text IS NULL OR c.due_kind = $3))
              + (SELECT count(*) FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
                  WHERE i.region LIKE $1 || '%' AND i.state IN ('pending', 'absent') AND k.deadline < $2
                    AND ($3::text IS NULL OR $3 = '{}'))",
        super::rules::SEMESTER_CHECK
    )))
    .bind(prefix)
    .bind(today)
    .bind(kind)
    .fetch_one(pool)
    .await
}

/// Overdue work that has slipped past the threshold and has no supervision item yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Slipped {
    pub case_id: Uuid,
    pub check_item_id: Option<Uuid>,
    pub region: String,
    pub kind: String,
    pub due_on: NaiveDate,
}

/// Up to `limit` pieces of slipped work, locked (others sweeping skip them).
pub async fn slipped(conn: &mut PgConnection, cutoff: NaiveDate, limit: i64) -> sqlx::Result<Vec<Slipped>> {
    let mut rows = sqlx::query_as::<_, Slipped>(
        "SELECT c.id AS case_id, NULL::uuid AS check_item_id, c.region, c.due_kind AS kind, c.due_on
           FROM dropout_case c
          WHERE c.due_on < $1
            AND NOT EXISTS (SELECT 1 FROM supervision_item s
                             WHERE s.case_id = c.id AND s.kind = c.due_kind AND s.due_on = c.due_on
                               AND s.check_item_id IS NULL)
          ORDER BY c.due_on, c.id
          LIMIT $2
            FOR UPDATE OF c SKIP LOCKED",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if (rows.len() as i64) < limit {
        let more = sqlx::query_as::<_, Slipped>(
            "SELECT i.case_id, i.id AS check_item_id, i.region, 'semester_check' AS kind, k.deadline AS due_on
               FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
              WHERE i.state IN ('pending', 'absent') AND k.deadline < $1
                AND NOT EXISTS (SELECT 1 FROM supervision_item s WHERE s.check_item_id = i.id)
              ORDER BY k.deadline, i.id
              LIMIT $2
                FOR UPDATE OF i SKIP LOCKED",
        )
        .bind(cutoff)
        .bind(limit - rows.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(more);
    }
    Ok(rows)
}

/// A supervision item as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub id: Uuid,
    pub kind: String,
    pub case_id: Uuid,
    pub region: String,
    pub supervising_region: String,
    pub escalations: i32,
    pub reason: String,
    pub due_on: NaiveDate,
    pub raised_at: DateTime<Utc>,
    pub state: String,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub closing_note: Option<String>,
    pub closed_by: Option<String>,
}

const ITEM_COLUMNS: &str = "id, kind, case_id, region, supervising_region, escalations, reason, due_on, raised_at,
    state, answer, answered_by, closing_note, closed_by";

/// A new supervision item.
pub struct NewItem<'a> {
    pub id: Uuid,
    pub slipped: &'a Slipped,
    pub supervising_region: &'a str,
    pub reason: &'a str,
    pub raised_on: NaiveDate,
}

pub async fn insert_item(conn: &mut PgConnection, item: &NewItem<'_>) -> sqlx::Result<ItemRow> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO supervision_item (id, kind, case_id, check_item_id, region, supervising_region, reason, due_on, raised_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {ITEM_COLUMNS}"
    )))
    .bind(item.id)
    .bind(&item.slipped.kind)
    .bind(item.slipped.case_id)
    .bind(item.slipped.check_item_id)
    .bind(&item.slipped.region)
    .bind(item.supervising_region)
    .bind(item.reason)
    .bind(item.slipped.due_on)
    .bind(item.raised_on)
    .fetch_one(conn)
    .await
}

/// Open items raised (or last escalated) before `cutoff` and not yet with the province: locked.
pub async fn unanswered(conn: &mut PgConnection, cutoff: NaiveDate, limit: i64) -> sqlx::Result<Vec<ItemRow>> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM supervision_item
          WHERE state = 'open' AND raised_on < $1 AND supervising_region NOT LIKE '__0000'
          ORDER BY raised_on, id
          LIMIT $2
            FOR UPDATE SKIP LOCKED"
    )))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn escalate_item(
    conn: &mut PgConnection,
    id: Uuid,
    supervising_region: &str,
    today: NaiveDate,
) -> sqlx::Result<ItemRow> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE supervision_item
            SET supervising_region = $2, escalations = escalations + 1, raised_on = $3
          WHERE id = $1
          RETURNING {ITEM_COLUMNS}"
    )))
    .bind(id)
    .bind(supervising_region)
    .bind(today)
    .fetch_one(conn)
    .await
}

pub async fn get_item(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<ItemRow>> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM supervision_item WHERE id = $1 {lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn list_items(
    pool: &PgPool,
    prefix: &str,
    state: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<ItemRow>> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM supervision_item
          WHERE (region LIKE $1 || '%' OR supervising_region LIKE $1 || '%')
            AND ($2::text IS NULL OR state = $2)
            AND ($3::timestamptz IS NULL OR (raised_at, id) < ($3, $4))
          ORDER BY raised_at DESC, id DESC
          LIMIT $5"
    )))
    .bind(prefix)
    .bind(state)
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn answer_item(conn: &mut PgConnection, id: Uuid, answer: &str, actor: &str) -> sqlx::Result<ItemRow> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE supervision_item
            SET state = 'answered', answer = $2, answered_by = $3, answered_at = clock_timestamp()
          WHERE id = $1
          RETURNING {ITEM_COLUMNS}"
    )))
    .bind(id)
    .bind(answer)
    .bind(actor)
    .fetch_one(conn)
    .await
}

pub async fn close_item(conn: &mut PgConnection, id: Uuid, note: &str, actor: &str) -> sqlx::Result<ItemRow> {
    sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE supervision_item
            SET state = 'closed', closing_note = $2, closed_by = $3, closed_at = clock_timestamp()
          WHERE id = $1
          RETURNING {ITEM_COLUMNS}"
    )))
    .bind(id)
    .bind(note)
    .bind(actor)
    .fetch_one(conn)
    .await
}

/// Notes a supervision change in the case's history (and, for a raise, on the case itself).
pub async fn note_on_case(
    conn: &mut PgConnection,
    case_id: Uuid,
    supervision: Option<(&str, &str)>,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE dropout_case
            SET supervision_region = CASE WHEN $2::text IS NULL THEN supervision_region ELSE $2 END,
                supervision_reason = CASE WHEN $2::text IS NULL THEN supervision_reason ELSE $3 END,
                supervision_at = CASE WHEN $2::text IS NULL THEN supervision_at ELSE clock_timestamp() END,
                updated_at = clock_timestamp(), version = version + 1
          WHERE id = $1
          RETURNING version",
    )
    .bind(case_id)
    .bind(supervision.map(|(region, _)| region))
    .bind(supervision.map(|(_, reason)| reason))
    .fetch_one(&mut *conn)
    .await?;
    crate::store::append_history(conn, case_id, version, actor, change, detail).await
}

/// A semester check as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckRow {
    pub id: Uuid,
    pub region: String,
    pub semester: String,
    pub deadline: NaiveDate,
    pub item_count: i64,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
}

const CHECK_COLUMNS: &str = "id, region, semester, deadline, item_count, started_by, started_at";

/// A check of the same semester over an overlapping region (an ancestor, a descendant or itself).
pub async fn overlapping_check(
    conn: &mut PgConnection,
    semester: &str,
    region: &str,
    prefix: &str,
) -> sqlx::Result<Option<CheckRow>> {
    sqlx::query_as::<_, CheckRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {CHECK_COLUMNS} FROM semester_check
          WHERE semester = $1 AND (region LIKE $3 || '%' OR $2 LIKE region_prefix || '%')
          LIMIT 1"
    )))
    .bind(semester)
    .bind(region)
    .bind(prefix)
    .fetch_optional(conn)
    .await
}

/// Creates a check and its checklist: every case in monitoring in the subtree, with the school
/// it returned to (from the case's newest "returned" history entry).
pub async fn start_check(
    conn: &mut PgConnection,
    id: Uuid,
    region: &str,
    prefix: &str,
    semester: &str,
    deadline: NaiveDate,
    actor: &str,
) -> sqlx::Result<CheckRow> {
    sqlx::query(
        "INSERT INTO semester_check (id, region, region_prefix, semester, deadline, started_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(region)
    .bind(prefix)
    .bind(semester)
    .bind(deadline)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    let count = sqlx::query(
        "INSERT INTO semester_check_item (id, check_id, case_id, region, school_code, school_name)
         SELECT gen_random_uuid(), $1, c.id, c.region,
                coalesce(r.detail->>'school_code', ''), coalesce(r.detail->>'school_name', '')
           FROM dropout_case c
           LEFT JOIN LATERAL (SELECT h.detail FROM case_history h
                               WHERE h.case_id = c.id AND h.change = 'returned'
                               ORDER BY h.version DESC LIMIT 1) r ON true
          WHERE c.region LIKE $2 || '%' AND c.status = 'monitoring'",
    )
    .bind(id)
    .bind(prefix)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query_as::<_, CheckRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE semester_check SET item_count = $2 WHERE id = $1 RETURNING {CHECK_COLUMNS}"
    )))
    .bind(id)
    .bind(count as i64)
    .fetch_one(conn)
    .await
}

pub async fn get_check(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<CheckRow>> {
    sqlx::query_as::<_, CheckRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {CHECK_COLUMNS} FROM semester_check WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A checklist item with its check's deadline and the child's masked summary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckItemRow {
    pub id: Uuid,
    pub check_id: Uuid,
    pub case_id: Uuid,
    pub region: String,
    pub school_code: String,
    pub school_name: String,
    pub state: String,
    pub updated_by: Option<String>,
    pub note: String,
    pub deadline: NaiveDate,
    pub child_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
}

const CHECK_ITEM_SELECT: &str = "
    SELECT i.id, i.check_id, i.case_id, i.region, i.school_code, i.school_name, i.state, i.updated_by, i.note,
           k.deadline, c.child_name, c.resident_id_masked, c.sex, c.birth_date, c.hukou_region
      FROM semester_check_item i
      JOIN semester_check k ON k.id = i.check_id
      JOIN dropout_case c ON c.id = i.case_id";

pub async fn get_check_item(conn: &mut PgConnection, id: Uuid, lock: bool) -> sqlx::Result<Option<CheckItemRow>> {
    let lock = if lock { "FOR UPDATE OF i" } else { "" };
    sqlx::query_as::<_, CheckItemRow>(sqlx::AssertSqlSafe(format!("{CHECK_ITEM_SELECT} WHERE i.id = $1 {lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn list_check_items(
    pool: &PgPool,
    check_id: Uuid,
    prefix: &str,
    school_code: Option<&str>,
    state: Option<&str>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<CheckItemRow>> {
    sqlx::query_as::<_, CheckItemRow>(sqlx::AssertSqlSafe(format!(
        "{CHECK_ITEM_SELECT}
          WHERE i.check_id = $1 AND i.region LIKE $2 || '%'
            AND ($3::text IS NULL OR i.school_code = $3)
            AND ($4::text IS NULL OR i.state = $4)
            AND ($5::text IS NULL OR (i.school_code, i.id) > ($5, $6))
          ORDER BY i.school_code, i.id
          LIMIT $7"
    )))
    .bind(check_id)
    .bind(prefix)
    .bind(school_code)
    .bind(state)
    .bind(after.as_ref().map(|(school, _)| school.as_str()))
    .bind(after.as_ref().map(|(_, id)| *id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn set_check_item_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    actor: &str,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE semester_check_item
            SET state = $2, updated_by = $3, updated_at = clock_timestamp(), note = coalesce($4, note)
          WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(actor)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts of one group of a check.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ProgressRow {
    pub key: String,
    pub name: String,
    pub total: i64,
    pub pending: i64,
    pub present: i64,
    pub absent: i64,
    pub relapsed: i64,
    pub overdue: i64,
}

/// Progress of a check grouped by school (`by_school`) or by county, within the caller's subtree.
pub async fn progress(
    pool: &PgPool,
    check_id: Uuid,
    prefix: &str,
    by_school: bool,
    today: NaiveDate,
) -> sqlx::Result<Vec<ProgressRow>> {
    let (key, name) = if by_school { ("i.school_code", "max(i.school_name)") } else { ("i.region", "''") };
    sqlx::query_as::<_, ProgressRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {key} AS key, {name} AS name, count(*) AS total,
                count(*) FILTER (WHERE i.state = 'pending') AS pending,
                count(*) FILTER (WHERE i.state = 'present') AS present,
                count(*) FILTER (WHERE i.state = 'absent') AS absent,
                count(*) FILTER (WHERE i.state = 'relapsed') AS relapsed,
                count(*) FILTER (WHERE i.state IN ('pending', 'absent') AND k.deadline < $3) AS overdue
           FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
          WHERE i.check_id = $1 AND i.region LIKE $2 || '%'
          GROUP BY {key}
          ORDER BY {key}"
    )))
    .bind(check_id)
    .bind(prefix)
    .bind(today)
    .fetch_all(pool)
    .await
}
