//! The SQL of supervision and the semester-start check: it writes `supervision_item`,
//! `semester_check` and `semester_check_item`, and reads the case ledger's `dropout_case` (what
//! is overdue, who is in monitoring). Rows are decoded into the domain's types once.

use chrono::{DateTime, NaiveDate, Utc};
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{CheckState, ItemState, SupervisionItem, WorkKind};
use crate::case::domain::ChildOnFile;
use crate::case::domain::stored::Stored;
use crate::case::store::{CorruptRow, decode, region};

fn all<R, T: TryFrom<R, Error = CorruptRow>>(rows: Vec<R>) -> sqlx::Result<Vec<T>> {
    rows.into_iter().map(|row| T::try_from(row).map_err(sqlx::Error::from)).collect()
}

fn one<R, T: TryFrom<R, Error = CorruptRow>>(row: R) -> sqlx::Result<T> {
    T::try_from(row).map_err(sqlx::Error::from)
}

/// One piece of overdue work with the child's masked summary.
#[derive(Debug, Clone)]
pub struct OverdueWork {
    /// The case, the semester check item, or the hand-off.
    pub id: Uuid,
    /// The case (the origin's, for a hand-off awaiting this province's decision).
    pub case_id: Uuid,
    /// For a hand-off decision owed here, or awaited from the destination: the hand-off.
    pub handoff_id: Option<Uuid>,
    /// For a request for help still open past its due date: the request.
    pub assistance_id: Option<Uuid>,
    pub region: RegionCode,
    pub kind: WorkKind,
    pub due_on: NaiveDate,
    pub child_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: Option<NaiveDate>,
    pub hukou_region: String,
    pub supervision_item_id: Option<Uuid>,
}

struct OverdueRow {
    id: Uuid,
    case_id: Uuid,
    handoff_id: Option<Uuid>,
    assistance_id: Option<Uuid>,
    region: String,
    kind: String,
    due_on: NaiveDate,
    child_name: String,
    resident_id_masked: String,
    sex: i16,
    birth_date: Option<NaiveDate>,
    hukou_region: String,
    supervision_item_id: Option<Uuid>,
}

impl TryFrom<OverdueRow> for OverdueWork {
    type Error = CorruptRow;
    fn try_from(row: OverdueRow) -> Result<OverdueWork, CorruptRow> {
        Ok(OverdueWork {
            region: region("dropout_case", row.id, "region", &row.region)?,
            kind: decode::<WorkKind>("dropout_case", row.id, "due_kind", &row.kind)?,
            id: row.id,
            case_id: row.case_id,
            handoff_id: row.handoff_id,
            assistance_id: row.assistance_id,
            due_on: row.due_on,
            child_name: row.child_name,
            resident_id_masked: row.resident_id_masked,
            sex: row.sex,
            birth_date: row.birth_date,
            hukou_region: row.hukou_region,
            supervision_item_id: row.supervision_item_id,
        })
    }
}

/// The overdue work of a subtree, a page of it: cases past their due date, children of semester
/// checks not confirmed by the check's deadline, incoming hand-offs not decided in time, and
/// requests for help still open past their due date (on either side), ordered by (due date, id),
/// oldest first. Only the page's rows are then joined to the child and
/// to supervision items.
pub async fn list_overdue(
    pool: &PgPool,
    prefix: &str,
    today: NaiveDate,
    kind: Option<WorkKind>,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<OverdueWork>> {
    all(sqlx::query_as!(
        OverdueRow,
        r#"SELECT w.id AS "id!", w.case_id AS "case_id!",
                  CASE WHEN w.handoff_id IS NOT NULL THEN w.handoff_id
                       WHEN w.kind = 'handoff_decision' THEN c.handoff_id
                  END AS "handoff_id?",
                  w.assistance_id AS "assistance_id?",
                  w.region AS "region!",
                  w.kind AS "kind!", w.due_on AS "due_on!",
                  coalesce(c.child_name, h.child_name, a.child_name) AS "child_name!",
                  coalesce(c.resident_id_masked, h.resident_id_masked, a.resident_id_masked) AS "resident_id_masked!",
                  coalesce(c.sex, h.sex, a.sex) AS "sex!",
                  coalesce(c.birth_date, h.birth_date, a.birth_date) AS "birth_date?",
                  coalesce(c.hukou_region, h.hukou_region, a.hukou_region) AS "hukou_region!",
                  CASE WHEN w.kind = 'semester_check'
                       THEN (SELECT s.id FROM supervision_item s WHERE s.check_item_id = w.id)
                       WHEN w.assistance_id IS NOT NULL
                       THEN (SELECT s.id FROM supervision_item s
                              WHERE s.assistance_id = w.assistance_id AND s.region = w.region AND s.due_on = w.due_on)
                       WHEN w.handoff_id IS NOT NULL
                       THEN (SELECT s.id FROM supervision_item s
                              WHERE s.handoff_id = w.handoff_id AND s.due_on = w.due_on AND s.case_id IS NULL)
                       ELSE (SELECT s.id FROM supervision_item s
                              WHERE s.case_id = w.case_id AND s.kind = w.kind AND s.due_on = w.due_on
                                AND s.check_item_id IS NULL)
                  END AS "supervision_item_id?"
             FROM (SELECT * FROM (
                      SELECT c.id AS id, c.id AS case_id, NULL::uuid AS handoff_id, NULL::uuid AS assistance_id,
                             c.region, c.due_kind AS kind, c.due_on
                        FROM dropout_case c
                       WHERE c.region LIKE $1 || '%' AND c.due_on < $2 AND ($3::text IS NULL OR c.due_kind = $3)
                      UNION ALL
                      SELECT i.id, i.case_id, NULL::uuid, NULL::uuid, i.region, 'semester_check', k.deadline
                        FROM semester_check_item i
                        JOIN semester_check k ON k.id = i.check_id
                       WHERE i.region LIKE $1 || '%' AND i.state IN ('pending', 'absent') AND k.deadline < $2
                         AND ($3::text IS NULL OR $3 = 'semester_check')
                      UNION ALL
                      SELECT h.handoff_id, h.origin_case_id, h.handoff_id, NULL::uuid, h.region, 'handoff_decision',
                             h.due_on
                        FROM incoming_handoff h
                       WHERE h.region LIKE $1 || '%' AND h.outcome IS NULL AND h.due_on < $2
                         AND ($3::text IS NULL OR $3 = 'handoff_decision')
                      UNION ALL
                      SELECT a.id, a.case_id, NULL::uuid, a.assistance_id, a.region, 'assistance', a.due_on
                        FROM assistance_watch a
                       WHERE a.region LIKE $1 || '%' AND a.ended_at IS NULL AND a.due_on < $2
                         AND ($3::text IS NULL OR $3 = 'assistance')) AS work
                    WHERE ($4::date IS NULL OR (due_on, id) > ($4, $5))
                    ORDER BY due_on, id
                    LIMIT $6) AS w
             LEFT JOIN dropout_case c ON c.id = w.case_id AND w.handoff_id IS NULL AND w.assistance_id IS NULL
             LEFT JOIN incoming_handoff h ON h.handoff_id = w.handoff_id
             LEFT JOIN assistance_watch a ON a.id = w.id AND w.assistance_id IS NOT NULL
            ORDER BY w.due_on, w.id"#,
        prefix,
        today,
        kind.map(WorkKind::as_stored),
        after.map(|(day, _)| day),
        after.map(|(_, id)| id),
        limit,
    )
    .fetch_all(pool)
    .await?)
}

pub async fn count_overdue(pool: &PgPool, prefix: &str, today: NaiveDate, kind: Option<WorkKind>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT (SELECT count(*) FROM dropout_case c
                    WHERE c.region LIKE $1 || '%' AND c.due_on < $2 AND ($3::text IS NULL OR c.due_kind = $3))
                + (SELECT count(*) FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
                    WHERE i.region LIKE $1 || '%' AND i.state IN ('pending', 'absent') AND k.deadline < $2
                      AND ($3::text IS NULL OR $3 = 'semester_check'))
                + (SELECT count(*) FROM incoming_handoff h
                    WHERE h.region LIKE $1 || '%' AND h.outcome IS NULL AND h.due_on < $2
                      AND ($3::text IS NULL OR $3 = 'handoff_decision'))
                + (SELECT count(*) FROM assistance_watch a
                    WHERE a.region LIKE $1 || '%' AND a.ended_at IS NULL AND a.due_on < $2
                      AND ($3::text IS NULL OR $3 = 'assistance')) AS "count!""#,
        prefix,
        today,
        kind.map(WorkKind::as_stored),
    )
    .fetch_one(pool)
    .await
}

/// A hand-off arrived at this province (the destination): watch its decision's deadline.
pub struct ArrivedHandoff<'a> {
    pub handoff_id: Uuid,
    pub region: &'a RegionCode,
    pub origin_region: &'a RegionCode,
    pub origin_case_id: Uuid,
    pub child: &'a ChildSummary,
    pub arrived_on: NaiveDate,
    pub due_on: NaiveDate,
}

/// Starts watching an arrived hand-off (once, however often the event comes); false when it was
/// watched already.
pub async fn watch_incoming(conn: &mut PgConnection, arrived: &ArrivedHandoff<'_>) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO incoming_handoff (handoff_id, region, origin_region, origin_case_id, child_name,
                                       resident_id_masked, sex, birth_date, hukou_region, arrived_on, due_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (handoff_id) DO NOTHING",
        arrived.handoff_id,
        arrived.region.as_str(),
        arrived.origin_region.as_str(),
        arrived.origin_case_id,
        arrived.child.full_name,
        arrived.child.resident_id_masked,
        arrived.child.sex,
        arrived.child.birth_date,
        arrived.child.hukou_region,
        arrived.arrived_on,
        arrived.due_on,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The destination decided (or the origin withdrew): the hand-off owes no decision any more.
pub async fn incoming_decided(conn: &mut PgConnection, handoff_id: Uuid, outcome: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incoming_handoff SET outcome = $2, decided_at = clock_timestamp()
          WHERE handoff_id = $1 AND outcome IS NULL",
        handoff_id,
        outcome,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Overdue work that has slipped past the threshold and has no supervision item yet.
#[derive(Debug, Clone)]
pub struct Slipped {
    /// The case; none for a hand-off awaiting this province's decision.
    pub case_id: Option<Uuid>,
    pub check_item_id: Option<Uuid>,
    pub handoff_id: Option<Uuid>,
    pub assistance_id: Option<Uuid>,
    pub region: RegionCode,
    pub kind: WorkKind,
    pub due_on: NaiveDate,
}

struct SlippedRow {
    case_id: Option<Uuid>,
    check_item_id: Option<Uuid>,
    handoff_id: Option<Uuid>,
    assistance_id: Option<Uuid>,
    region: String,
    kind: String,
    due_on: NaiveDate,
}

impl TryFrom<SlippedRow> for Slipped {
    type Error = CorruptRow;
    fn try_from(row: SlippedRow) -> Result<Slipped, CorruptRow> {
        let id = row.case_id.or(row.handoff_id).or(row.assistance_id).unwrap_or_default();
        Ok(Slipped {
            region: region("dropout_case", id, "region", &row.region)?,
            kind: decode::<WorkKind>("dropout_case", id, "due_kind", &row.kind)?,
            case_id: row.case_id,
            check_item_id: row.check_item_id,
            handoff_id: row.handoff_id,
            assistance_id: row.assistance_id,
            due_on: row.due_on,
        })
    }
}

/// Up to `limit` pieces of slipped work, locked (others sweeping skip them).
pub async fn slipped(conn: &mut PgConnection, cutoff: NaiveDate, limit: i64) -> sqlx::Result<Vec<Slipped>> {
    let mut rows: Vec<Slipped> = all(sqlx::query_as!(
        SlippedRow,
        r#"SELECT c.id AS "case_id?", NULL::uuid AS check_item_id, c.handoff_id AS "handoff_id?",
                  NULL::uuid AS "assistance_id?", c.region,
                  c.due_kind AS "kind!", c.due_on AS "due_on!"
             FROM dropout_case c
            WHERE c.due_on < $1
              AND NOT EXISTS (SELECT 1 FROM supervision_item s
                               WHERE s.case_id = c.id AND s.kind = c.due_kind AND s.due_on = c.due_on
                                 AND s.check_item_id IS NULL)
            ORDER BY c.due_on, c.id
            LIMIT $2
              FOR UPDATE OF c SKIP LOCKED"#,
        cutoff,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?)?;
    if (rows.len() as i64) < limit {
        let more: Vec<Slipped> = all(sqlx::query_as!(
            SlippedRow,
            r#"SELECT i.case_id AS "case_id?", i.id AS "check_item_id?", NULL::uuid AS "handoff_id?",
                      NULL::uuid AS "assistance_id?", i.region,
                      'semester_check' AS "kind!", k.deadline AS due_on
                 FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
                WHERE i.state IN ('pending', 'absent') AND k.deadline < $1
                  AND NOT EXISTS (SELECT 1 FROM supervision_item s WHERE s.check_item_id = i.id)
                ORDER BY k.deadline, i.id
                LIMIT $2
                  FOR UPDATE OF i SKIP LOCKED"#,
            cutoff,
            limit - rows.len() as i64,
        )
        .fetch_all(&mut *conn)
        .await?)?;
        rows.extend(more);
    }
    if (rows.len() as i64) < limit {
        let more: Vec<Slipped> = all(sqlx::query_as!(
            SlippedRow,
            r#"SELECT NULL::uuid AS "case_id?", NULL::uuid AS "check_item_id?", h.handoff_id AS "handoff_id?",
                      NULL::uuid AS "assistance_id?", h.region, 'handoff_decision' AS "kind!", h.due_on
                 FROM incoming_handoff h
                WHERE h.outcome IS NULL AND h.due_on < $1
                  AND NOT EXISTS (SELECT 1 FROM supervision_item s
                                   WHERE s.handoff_id = h.handoff_id AND s.due_on = h.due_on AND s.case_id IS NULL)
                ORDER BY h.due_on, h.handoff_id
                LIMIT $2
                  FOR UPDATE OF h SKIP LOCKED"#,
            cutoff,
            limit - rows.len() as i64,
        )
        .fetch_all(&mut *conn)
        .await?)?;
        rows.extend(more);
    }
    if (rows.len() as i64) < limit {
        let more: Vec<Slipped> = all(sqlx::query_as!(
            SlippedRow,
            r#"SELECT NULL::uuid AS "case_id?", NULL::uuid AS "check_item_id?", NULL::uuid AS "handoff_id?",
                      a.assistance_id AS "assistance_id?", a.region, 'assistance' AS "kind!", a.due_on
                 FROM assistance_watch a
                WHERE a.ended_at IS NULL AND a.due_on < $1
                  AND NOT EXISTS (SELECT 1 FROM supervision_item s
                                   WHERE s.assistance_id = a.assistance_id AND s.region = a.region
                                     AND s.due_on = a.due_on)
                ORDER BY a.due_on, a.id
                LIMIT $2
                  FOR UPDATE OF a SKIP LOCKED"#,
            cutoff,
            limit - rows.len() as i64,
        )
        .fetch_all(&mut *conn)
        .await?)?;
        rows.extend(more);
    }
    Ok(rows)
}

/// A request for help as this side watches it (R12).
pub struct WatchedAssistance<'a> {
    pub assistance_id: Uuid,
    /// The owner's side (outgoing) or the helper's (incoming).
    pub outgoing: bool,
    pub region: &'a RegionCode,
    pub other_region: &'a RegionCode,
    pub case_id: Uuid,
    pub child: &'a nol_proto::v1::ChildSummary,
    pub due_on: NaiveDate,
}

/// Starts watching one side of a request for help (once).
pub async fn watch_assistance(conn: &mut PgConnection, watched: &WatchedAssistance<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO assistance_watch (id, assistance_id, direction, region, other_region, case_id, child_name,
                                       resident_id_masked, sex, birth_date, hukou_region, due_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (assistance_id, direction) DO NOTHING",
        Uuid::now_v7(),
        watched.assistance_id,
        if watched.outgoing { "outgoing" } else { "incoming" },
        watched.region.as_str(),
        watched.other_region.as_str(),
        watched.case_id,
        watched.child.full_name,
        watched.child.resident_id_masked,
        watched.child.sex as i16,
        chrono::NaiveDate::parse_from_str(&watched.child.birth_date, "%Y-%m-%d").ok(),
        watched.child.hukou_region_code,
        watched.due_on,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One side of a request for help ended (declined or closed): no longer watched.
pub async fn assistance_ended(conn: &mut PgConnection, assistance_id: Uuid, outgoing: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE assistance_watch SET ended_at = clock_timestamp()
          WHERE assistance_id = $1 AND direction = $2 AND ended_at IS NULL",
        assistance_id,
        if outgoing { "outgoing" } else { "incoming" },
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct ItemRow {
    id: Uuid,
    kind: String,
    case_id: Option<Uuid>,
    handoff_id: Option<Uuid>,
    region: String,
    supervising_region: String,
    escalations: i32,
    reason: String,
    due_on: NaiveDate,
    raised_at: DateTime<Utc>,
    state: String,
    answer: Option<String>,
    answered_by: Option<String>,
    closing_note: Option<String>,
    closed_by: Option<String>,
}

impl TryFrom<ItemRow> for SupervisionItem {
    type Error = CorruptRow;
    fn try_from(row: ItemRow) -> Result<SupervisionItem, CorruptRow> {
        let id = row.id;
        Ok(SupervisionItem {
            kind: decode::<WorkKind>("supervision_item", id, "kind", &row.kind)?,
            region: region("supervision_item", id, "region", &row.region)?,
            supervising_region: region("supervision_item", id, "supervising_region", &row.supervising_region)?,
            state: decode::<ItemState>("supervision_item", id, "state", &row.state)?,
            id,
            case_id: row.case_id,
            handoff_id: row.handoff_id,
            escalations: row.escalations,
            reason: row.reason,
            due_on: row.due_on,
            raised_at: row.raised_at,
            answer: row.answer,
            answered_by: row.answered_by,
            closing_note: row.closing_note,
            closed_by: row.closed_by,
        })
    }
}

/// A new supervision item.
pub struct NewItem<'a> {
    pub id: Uuid,
    pub slipped: &'a Slipped,
    pub supervising_region: &'a RegionCode,
    pub reason: &'a str,
    pub raised_on: NaiveDate,
}

pub async fn insert_item(conn: &mut PgConnection, item: &NewItem<'_>) -> sqlx::Result<SupervisionItem> {
    one(sqlx::query_as!(
        ItemRow,
        "INSERT INTO supervision_item (id, kind, case_id, check_item_id, region, supervising_region, reason, due_on,
                                       raised_on, handoff_id, assistance_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                   answer, answered_by, closing_note, closed_by",
        item.id,
        item.slipped.kind.as_stored(),
        item.slipped.case_id,
        item.slipped.check_item_id,
        item.slipped.region.as_str(),
        item.supervising_region.as_str(),
        item.reason,
        item.slipped.due_on,
        item.raised_on,
        item.slipped.handoff_id,
        item.slipped.assistance_id,
    )
    .fetch_one(conn)
    .await?)
}

/// A late report's item (R16): one per county and period, so a repeated notice raises nothing
/// (`None`).
pub async fn insert_report_item(
    conn: &mut PgConnection,
    id: Uuid,
    region: &RegionCode,
    supervising_region: &RegionCode,
    reason: &str,
    (period, due_on): (&str, NaiveDate),
    raised_on: NaiveDate,
) -> sqlx::Result<Option<SupervisionItem>> {
    let row = sqlx::query_as!(
        ItemRow,
        "INSERT INTO supervision_item (id, kind, region, supervising_region, reason, due_on, raised_on, report_period)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (region, report_period) WHERE report_period IS NOT NULL DO NOTHING
         RETURNING id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                   answer, answered_by, closing_note, closed_by",
        id,
        super::domain::WorkKind::Report.as_stored(),
        region.as_str(),
        supervising_region.as_str(),
        reason,
        due_on,
        raised_on,
        period,
    )
    .fetch_optional(conn)
    .await?;
    row.map(|row| SupervisionItem::try_from(row).map_err(|error| sqlx::Error::Decode(Box::new(error)))).transpose()
}

/// Open items raised (or last escalated) before `cutoff` and not yet with the province: locked.
pub async fn unanswered(conn: &mut PgConnection, cutoff: NaiveDate, limit: i64) -> sqlx::Result<Vec<SupervisionItem>> {
    all(sqlx::query_as!(
        ItemRow,
        "SELECT id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                answer, answered_by, closing_note, closed_by
           FROM supervision_item
          WHERE state = 'open' AND raised_on < $1 AND supervising_region NOT LIKE '__0000'
          ORDER BY raised_on, id
          LIMIT $2
            FOR UPDATE SKIP LOCKED",
        cutoff,
        limit,
    )
    .fetch_all(conn)
    .await?)
}

pub async fn escalate_item(
    conn: &mut PgConnection,
    id: Uuid,
    supervising_region: &RegionCode,
    today: NaiveDate,
) -> sqlx::Result<SupervisionItem> {
    one(sqlx::query_as!(
        ItemRow,
        "UPDATE supervision_item
            SET supervising_region = $2, escalations = escalations + 1, raised_on = $3
          WHERE id = $1
          RETURNING id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                    answer, answered_by, closing_note, closed_by",
        id,
        supervising_region.as_str(),
        today,
    )
    .fetch_one(conn)
    .await?)
}

/// An item, locked for its answer or closing.
pub async fn item_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<SupervisionItem>> {
    sqlx::query_as!(
        ItemRow,
        "SELECT id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                answer, answered_by, closing_note, closed_by
           FROM supervision_item WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

/// Items raised for (or supervised by) the subtree whose codes start with `prefix`, newest first.
pub async fn list_items(
    pool: &PgPool,
    prefix: &str,
    state: Option<ItemState>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<SupervisionItem>> {
    all(sqlx::query_as!(
        ItemRow,
        "SELECT id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                answer, answered_by, closing_note, closed_by
           FROM supervision_item
          WHERE (region LIKE $1 || '%' OR supervising_region LIKE $1 || '%')
            AND ($2::text IS NULL OR state = $2)
            AND ($3::timestamptz IS NULL OR (raised_at, id) < ($3, $4))
          ORDER BY raised_at DESC, id DESC
          LIMIT $5",
        prefix,
        state.map(ItemState::as_stored),
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(pool)
    .await?)
}

pub async fn answer_item(
    conn: &mut PgConnection,
    id: Uuid,
    answer: &str,
    actor: &str,
) -> sqlx::Result<SupervisionItem> {
    one(sqlx::query_as!(
        ItemRow,
        "UPDATE supervision_item
            SET state = 'answered', answer = $2, answered_by = $3, answered_at = clock_timestamp()
          WHERE id = $1
          RETURNING id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                    answer, answered_by, closing_note, closed_by",
        id,
        answer,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

pub async fn close_item(conn: &mut PgConnection, id: Uuid, note: &str, actor: &str) -> sqlx::Result<SupervisionItem> {
    one(sqlx::query_as!(
        ItemRow,
        "UPDATE supervision_item
            SET state = 'closed', closing_note = $2, closed_by = $3, closed_at = clock_timestamp()
          WHERE id = $1
          RETURNING id, kind, case_id, handoff_id, region, supervising_region, escalations, reason, due_on, raised_at, state,
                    answer, answered_by, closing_note, closed_by",
        id,
        note,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

/// A semester check.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: Uuid,
    pub region: RegionCode,
    pub semester: String,
    pub deadline: NaiveDate,
    pub item_count: i64,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
}

struct CheckRow {
    id: Uuid,
    region: String,
    semester: String,
    deadline: NaiveDate,
    item_count: i64,
    started_by: String,
    started_at: DateTime<Utc>,
}

impl TryFrom<CheckRow> for Check {
    type Error = CorruptRow;
    fn try_from(row: CheckRow) -> Result<Check, CorruptRow> {
        Ok(Check {
            region: region("semester_check", row.id, "region", &row.region)?,
            id: row.id,
            semester: row.semester,
            deadline: row.deadline,
            item_count: row.item_count,
            started_by: row.started_by,
            started_at: row.started_at,
        })
    }
}

/// Serialises starts of checks of the same semester (one check per semester over any part of the
/// tree), until the transaction ends.
pub async fn lock_semester(conn: &mut PgConnection, semester: &str) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('semester_check:' || $1::text))", semester)
        .execute(conn)
        .await?;
    Ok(())
}

/// A check of the same semester over an overlapping region (an ancestor, a descendant or itself).
pub async fn overlapping_check(
    conn: &mut PgConnection,
    semester: &str,
    region: &RegionCode,
) -> sqlx::Result<Option<Check>> {
    sqlx::query_as!(
        CheckRow,
        "SELECT id, region, semester, deadline, item_count, started_by, started_at FROM semester_check
          WHERE semester = $1 AND (region LIKE $3 || '%' OR $2 LIKE region_prefix || '%')
          LIMIT 1",
        semester,
        region.as_str(),
        region.subtree_prefix(),
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

/// Creates a check and its checklist: every case in monitoring in the subtree, with the school
/// it returned to (from the case's newest "returned" history entry).
pub async fn start_check(
    conn: &mut PgConnection,
    id: Uuid,
    region: &RegionCode,
    semester: &str,
    deadline: NaiveDate,
    actor: &str,
) -> sqlx::Result<Check> {
    let prefix = region.subtree_prefix();
    sqlx::query!(
        "INSERT INTO semester_check (id, region, region_prefix, semester, deadline, started_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        region.as_str(),
        prefix,
        semester,
        deadline,
        actor,
    )
    .execute(&mut *conn)
    .await?;
    let count = sqlx::query!(
        "INSERT INTO semester_check_item (id, check_id, case_id, region, school_code, school_name)
         SELECT gen_random_uuid(), $1, c.id, c.region,
                coalesce(r.detail->>'school_code', ''), coalesce(r.detail->>'school_name', '')
           FROM dropout_case c
           LEFT JOIN LATERAL (SELECT h.detail FROM case_history h
                               WHERE h.case_id = c.id AND h.change = 'returned'
                               ORDER BY h.version DESC LIMIT 1) r ON true
          WHERE c.region LIKE $2 || '%' AND c.status = 'monitoring'",
        id,
        prefix,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    one(sqlx::query_as!(
        CheckRow,
        "UPDATE semester_check SET item_count = $2 WHERE id = $1
         RETURNING id, region, semester, deadline, item_count, started_by, started_at",
        id,
        count as i64,
    )
    .fetch_one(conn)
    .await?)
}

/// The checks over the subtree `prefix` or over one of `ancestors`, newest first.
pub async fn list_checks(
    pool: &PgPool,
    prefix: &str,
    ancestors: &[String],
    semester: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Check>> {
    all(sqlx::query_as!(
        CheckRow,
        "SELECT id, region, semester, deadline, item_count, started_by, started_at FROM semester_check
          WHERE (region LIKE $1 || '%' OR region = ANY($2))
            AND ($3::text IS NULL OR semester = $3)
          ORDER BY started_at DESC, id DESC
          LIMIT $4",
        prefix,
        ancestors,
        semester,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// A new check's children per county, for its `semester_check_listed` events.
pub async fn listed_by_county(conn: &mut PgConnection, check_id: Uuid) -> sqlx::Result<Vec<(RegionCode, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT region, count(*) AS "count!" FROM semester_check_item WHERE check_id = $1 GROUP BY region ORDER BY region"#,
        check_id,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            RegionCode::parse(&row.region)
                .map(|code| (code, row.count))
                .map_err(|_| sqlx::Error::Decode(format!("semester_check_item.region {:?}", row.region).into()))
        })
        .collect()
}

pub async fn get_check(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Check>> {
    sqlx::query_as!(
        CheckRow,
        "SELECT id, region, semester, deadline, item_count, started_by, started_at FROM semester_check WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

/// A checklist item with its check's deadline and the child's masked summary.
#[derive(Debug, Clone)]
pub struct CheckItem {
    pub id: Uuid,
    pub check_id: Uuid,
    pub case_id: Uuid,
    pub region: RegionCode,
    pub school_code: String,
    pub school_name: String,
    pub state: CheckState,
    pub updated_by: Option<String>,
    pub note: String,
    pub deadline: NaiveDate,
    pub child: ChildSummary,
}

/// The child as a checklist shows them.
#[derive(Debug, Clone)]
pub struct ChildSummary {
    pub full_name: String,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
}

impl From<&ChildOnFile> for ChildSummary {
    fn from(child: &ChildOnFile) -> ChildSummary {
        ChildSummary {
            full_name: child.full_name.clone(),
            resident_id_masked: child.resident_id_masked.clone(),
            sex: child.sex,
            birth_date: child.birth_date,
            hukou_region: child.hukou_region.clone(),
        }
    }
}

struct CheckItemRow {
    id: Uuid,
    check_id: Uuid,
    case_id: Uuid,
    region: String,
    school_code: String,
    school_name: String,
    state: String,
    updated_by: Option<String>,
    note: String,
    deadline: NaiveDate,
    child_name: String,
    resident_id_masked: String,
    sex: i16,
    birth_date: NaiveDate,
    hukou_region: String,
}

impl TryFrom<CheckItemRow> for CheckItem {
    type Error = CorruptRow;
    fn try_from(row: CheckItemRow) -> Result<CheckItem, CorruptRow> {
        Ok(CheckItem {
            region: region("semester_check_item", row.id, "region", &row.region)?,
            state: decode::<CheckState>("semester_check_item", row.id, "state", &row.state)?,
            id: row.id,
            check_id: row.check_id,
            case_id: row.case_id,
            school_code: row.school_code,
            school_name: row.school_name,
            updated_by: row.updated_by,
            note: row.note,
            deadline: row.deadline,
            child: ChildSummary {
                full_name: row.child_name,
                resident_id_masked: row.resident_id_masked,
                sex: row.sex,
                birth_date: row.birth_date,
                hukou_region: row.hukou_region,
            },
        })
    }
}

/// A checklist item, locked for a mark or a follow-up.
pub async fn check_item_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<CheckItem>> {
    sqlx::query_as!(
        CheckItemRow,
        "SELECT i.id, i.check_id, i.case_id, i.region, i.school_code, i.school_name, i.state, i.updated_by, i.note,
                k.deadline, c.child_name, c.resident_id_masked, c.sex, c.birth_date, c.hukou_region
           FROM semester_check_item i
           JOIN semester_check k ON k.id = i.check_id
           JOIN dropout_case c ON c.id = i.case_id
          WHERE i.id = $1
            FOR UPDATE OF i",
        id
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

/// A check's items in the subtree whose codes start with `prefix`, by school, a page at a time.
pub async fn list_check_items(
    conn: &mut PgConnection,
    check_id: Uuid,
    prefix: &str,
    school_code: Option<&str>,
    state: Option<CheckState>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<CheckItem>> {
    all(sqlx::query_as!(
        CheckItemRow,
        "SELECT i.id, i.check_id, i.case_id, i.region, i.school_code, i.school_name, i.state, i.updated_by, i.note,
                k.deadline, c.child_name, c.resident_id_masked, c.sex, c.birth_date, c.hukou_region
           FROM semester_check_item i
           JOIN semester_check k ON k.id = i.check_id
           JOIN dropout_case c ON c.id = i.case_id
          WHERE i.check_id = $1 AND i.region LIKE $2 || '%'
            AND ($3::text IS NULL OR i.school_code = $3)
            AND ($4::text IS NULL OR i.state = $4)
            AND ($5::text IS NULL OR (i.school_code, i.id) > ($5, $6))
          ORDER BY i.school_code, i.id
          LIMIT $7",
        check_id,
        prefix,
        school_code,
        state.map(CheckState::as_stored),
        after.as_ref().map(|(school, _)| school.as_str()),
        after.as_ref().map(|(_, id)| *id),
        limit,
    )
    .fetch_all(conn)
    .await?)
}

pub async fn set_check_item_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: CheckState,
    actor: &str,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE semester_check_item
            SET state = $2, updated_by = $3, updated_at = clock_timestamp(), note = coalesce($4, note)
          WHERE id = $1",
        id,
        state.as_stored(),
        actor,
        note,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts of one group of a check.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub key: String,
    pub name: String,
    pub total: i64,
    pub pending: i64,
    pub present: i64,
    pub absent: i64,
    pub relapsed: i64,
    pub overdue: i64,
}

/// Progress of a check grouped by school, within the subtree whose codes start with `prefix`.
pub async fn progress_by_school(
    conn: &mut PgConnection,
    check_id: Uuid,
    prefix: &str,
    today: NaiveDate,
) -> sqlx::Result<Vec<Progress>> {
    sqlx::query_as!(
        Progress,
        r#"SELECT i.school_code AS "key!", max(i.school_name) AS "name!", count(*) AS "total!",
                  count(*) FILTER (WHERE i.state = 'pending') AS "pending!",
                  count(*) FILTER (WHERE i.state = 'present') AS "present!",
                  count(*) FILTER (WHERE i.state = 'absent') AS "absent!",
                  count(*) FILTER (WHERE i.state = 'relapsed') AS "relapsed!",
                  count(*) FILTER (WHERE i.state IN ('pending', 'absent') AND k.deadline < $3) AS "overdue!"
             FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
            WHERE i.check_id = $1 AND i.region LIKE $2 || '%'
            GROUP BY i.school_code
            ORDER BY i.school_code"#,
        check_id,
        prefix,
        today,
    )
    .fetch_all(conn)
    .await
}

/// Progress of a check grouped by county, within the subtree whose codes start with `prefix`.
pub async fn progress_by_county(
    conn: &mut PgConnection,
    check_id: Uuid,
    prefix: &str,
    today: NaiveDate,
) -> sqlx::Result<Vec<Progress>> {
    sqlx::query_as!(
        Progress,
        r#"SELECT i.region AS "key!", '' AS "name!", count(*) AS "total!",
                  count(*) FILTER (WHERE i.state = 'pending') AS "pending!",
                  count(*) FILTER (WHERE i.state = 'present') AS "present!",
                  count(*) FILTER (WHERE i.state = 'absent') AS "absent!",
                  count(*) FILTER (WHERE i.state = 'relapsed') AS "relapsed!",
                  count(*) FILTER (WHERE i.state IN ('pending', 'absent') AND k.deadline < $3) AS "overdue!"
             FROM semester_check_item i JOIN semester_check k ON k.id = i.check_id
            WHERE i.check_id = $1 AND i.region LIKE $2 || '%'
            GROUP BY i.region
            ORDER BY i.region"#,
        check_id,
        prefix,
        today,
    )
    .fetch_all(conn)
    .await
}
