//! The SQL of `assistance` and `assistance_report`; rows decoded once, here, into the domain's
//! types.

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::{AssistanceNeed, AssistanceReason, AssistanceReport, ChildSummary};
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use prost::Message;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Assistance, State, need_as_stored, need_from_stored, reason_as_stored, reason_from_stored};
use crate::domain::Direction;
use crate::store::{Undecodable, direction_as_stored, direction_from_stored};

struct Row {
    id: Uuid,
    direction: String,
    state: String,
    case_id: Uuid,
    owner_region: String,
    assisting_region: String,
    reason: String,
    needs: Vec<String>,
    due_on: NaiveDate,
    note: String,
    attempt_id: Option<Uuid>,
    child: Vec<u8>,
    requested_by: String,
    requested_at: DateTime<Utc>,
    decline_reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    close_note: Option<String>,
    closed_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    #[allow(dead_code)]
    last_sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Assistance {
    type Error = Undecodable;

    fn try_from(row: Row) -> Result<Assistance, Undecodable> {
        let undecodable =
            |column: &'static str, value: &str| Undecodable::new("assistance", row.id, &row.direction, column, value);
        let region = |column: &'static str, text: &str| RegionCode::parse(text).map_err(|_| undecodable(column, text));
        let needs = row
            .needs
            .iter()
            .map(|need| need_from_stored(need).ok_or_else(|| undecodable("needs", need)))
            .collect::<Result<Vec<AssistanceNeed>, _>>()?;
        Ok(Assistance {
            direction: direction_from_stored(&row.direction).ok_or_else(|| undecodable("direction", &row.direction))?,
            state: State::from_stored(&row.state).ok_or_else(|| undecodable("state", &row.state))?,
            owner_region: region("owner_region", &row.owner_region)?,
            assisting_region: region("assisting_region", &row.assisting_region)?,
            reason: reason_from_stored(&row.reason).ok_or_else(|| undecodable("reason", &row.reason))?,
            child: ChildSummary::decode(row.child.as_slice()).map_err(|_| undecodable("child", "(bytes)"))?,
            needs,
            id: row.id,
            case_id: row.case_id,
            due_on: row.due_on,
            note: row.note,
            attempt_id: row.attempt_id,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            decline_reason: row.decline_reason,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            close_note: row.close_note,
            closed_by: row.closed_by,
            closed_at: row.closed_at,
        })
    }
}

fn one(row: Option<Row>) -> sqlx::Result<Option<Assistance>> {
    Ok(row.map(Assistance::try_from).transpose()?)
}

fn all(rows: Vec<Row>) -> sqlx::Result<Vec<Assistance>> {
    Ok(rows.into_iter().map(Assistance::try_from).collect::<Result<_, _>>()?)
}

/// A request for help to record (the owner's, or the helper's copy received).
pub struct NewAssistance<'a> {
    pub id: Uuid,
    pub case_id: Uuid,
    pub owner_region: &'a RegionCode,
    pub assisting_region: &'a RegionCode,
    pub reason: AssistanceReason,
    pub needs: &'a [AssistanceNeed],
    pub due_on: NaiveDate,
    pub note: &'a str,
    pub attempt_id: Option<Uuid>,
    pub child: &'a ChildSummary,
    pub requested_by: &'a str,
}

/// Records a request on one side — requested (outgoing), delivered (incoming), or declined by the
/// system with `declined` as its reason — unless it exists or, at the owner, one of the case to
/// that county is still open (`None`).
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewAssistance<'_>,
    direction: Direction,
    declined: Option<&str>,
) -> sqlx::Result<Option<Assistance>> {
    let state = match (declined, direction) {
        (Some(_), _) => State::Declined,
        (None, Direction::Outgoing) => State::Requested,
        (None, Direction::Incoming) => State::Delivered,
    };
    let needs: Vec<&str> = new.needs.iter().filter_map(|need| need_as_stored(*need)).collect();
    one(sqlx::query_as!(
        Row,
        "INSERT INTO assistance (id, direction, state, case_id, owner_region, assisting_region, reason, needs, due_on,
                                 note, attempt_id, child, requested_by, decline_reason, decided_by, decided_at,
                                 last_sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 CASE WHEN $14::text IS NULL THEN NULL ELSE 'system' END,
                 CASE WHEN $14::text IS NULL THEN NULL ELSE clock_timestamp() END,
                 CASE WHEN $2 = 'outgoing' THEN clock_timestamp() END)
         ON CONFLICT DO NOTHING
         RETURNING *",
        new.id,
        direction_as_stored(direction),
        state.as_stored(),
        new.case_id,
        new.owner_region.as_str(),
        new.assisting_region.as_str(),
        reason_as_stored(new.reason).unwrap_or("other"),
        &needs as &[&str],
        new.due_on,
        new.note,
        new.attempt_id,
        new.child.encode_to_vec(),
        new.requested_by,
        declined,
    )
    .fetch_optional(conn)
    .await?)
}

/// Records a request that starts accepted (offered by the helper, R10) on one side, unless it
/// exists or one between these counties on this case is still open on this side (`None`).
pub async fn insert_accepted(
    conn: &mut PgConnection,
    new: &NewAssistance<'_>,
    direction: Direction,
) -> sqlx::Result<Option<Assistance>> {
    let needs: Vec<&str> = new.needs.iter().filter_map(|need| need_as_stored(*need)).collect();
    one(sqlx::query_as!(
        Row,
        "INSERT INTO assistance (id, direction, state, case_id, owner_region, assisting_region, reason, needs, due_on,
                                 note, child, requested_by, decided_by, decided_at)
         VALUES ($1, $2, 'accepted', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, clock_timestamp())
         ON CONFLICT DO NOTHING
         RETURNING *",
        new.id,
        direction_as_stored(direction),
        new.case_id,
        new.owner_region.as_str(),
        new.assisting_region.as_str(),
        reason_as_stored(new.reason).unwrap_or("other"),
        &needs as &[&str],
        new.due_on,
        new.note,
        new.child.encode_to_vec(),
        new.requested_by,
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid, direction: Direction) -> sqlx::Result<Option<Assistance>> {
    one(sqlx::query_as!(
        Row,
        "SELECT * FROM assistance WHERE id = $1 AND direction = $2",
        id,
        direction_as_stored(direction)
    )
    .fetch_optional(executor)
    .await?)
}

pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
) -> sqlx::Result<Option<Assistance>> {
    one(sqlx::query_as!(
        Row,
        "SELECT * FROM assistance WHERE id = $1 AND direction = $2 FOR UPDATE",
        id,
        direction_as_stored(direction)
    )
    .fetch_optional(conn)
    .await?)
}

/// Sets a side's state with who decided (accepted, declined, or the receipt).
pub async fn decide(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: State,
    reason: Option<&str>,
    by: &str,
) -> sqlx::Result<Assistance> {
    one(sqlx::query_as!(
        Row,
        "UPDATE assistance
            SET state = $3,
                decline_reason = coalesce($4, decline_reason),
                decided_by = CASE WHEN $3 = 'delivered' THEN decided_by ELSE $5 END,
                decided_at = CASE WHEN $3 = 'delivered' THEN decided_at ELSE clock_timestamp() END
          WHERE id = $1 AND direction = $2
          RETURNING *",
        id,
        direction_as_stored(direction),
        state.as_stored(),
        reason,
        by,
    )
    .fetch_optional(conn)
    .await?)?
    .ok_or(sqlx::Error::RowNotFound)
}

pub async fn close(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    note: &str,
    by: &str,
) -> sqlx::Result<Assistance> {
    one(sqlx::query_as!(
        Row,
        "UPDATE assistance SET state = 'closed', close_note = $3, closed_by = $4, closed_at = clock_timestamp()
          WHERE id = $1 AND direction = $2
          RETURNING *",
        id,
        direction_as_stored(direction),
        note,
        by,
    )
    .fetch_optional(conn)
    .await?)?
    .ok_or(sqlx::Error::RowNotFound)
}

/// The outgoing request was (re)sent now.
pub async fn touch(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE assistance SET last_sent_at = clock_timestamp() WHERE id = $1 AND direction = 'outgoing'", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Outgoing requests with no receipt for `after_secs`, locked for the sweeper.
pub async fn due_for_resend(conn: &mut PgConnection, after_secs: f64, limit: i64) -> sqlx::Result<Vec<Assistance>> {
    all(sqlx::query_as!(
        Row,
        "SELECT * FROM assistance
          WHERE direction = 'outgoing' AND state = 'requested'
            AND last_sent_at < clock_timestamp() - make_interval(secs => $1)
          ORDER BY last_sent_at LIMIT $2
          FOR UPDATE SKIP LOCKED",
        after_secs,
        limit,
    )
    .fetch_all(conn)
    .await?)
}

/// Keeps a report on one side; false when it was kept before.
pub async fn insert_report(
    conn: &mut PgConnection,
    id: Uuid,
    assistance_id: Uuid,
    direction: Direction,
    report: &AssistanceReport,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO assistance_report (id, direction, assistance_id, body, reported_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        id,
        direction_as_stored(direction),
        assistance_id,
        report.encode_to_vec(),
        at,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The reports of requests on one side, oldest first, by request.
pub async fn reports(
    executor: impl PgExecutor<'_>,
    ids: &[Uuid],
    direction: Direction,
) -> sqlx::Result<Vec<(Uuid, AssistanceReport)>> {
    let rows = sqlx::query!(
        "SELECT assistance_id, body FROM assistance_report
          WHERE assistance_id = ANY($1) AND direction = $2
          ORDER BY reported_at, id",
        ids,
        direction_as_stored(direction),
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| {
            let report = AssistanceReport::decode(row.body.as_slice()).map_err(|_| {
                Undecodable::new(
                    "assistance_report",
                    row.assistance_id,
                    direction_as_stored(direction),
                    "body",
                    "(bytes)",
                )
            })?;
            Ok((row.assistance_id, report))
        })
        .collect()
}

/// Whether this side already helps with `case_id` as `helper` on a request still open, locked
/// against a concurrent offer.
pub async fn open_between(conn: &mut PgConnection, case_id: Uuid, helper: &RegionCode) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM assistance
          WHERE direction = 'incoming' AND case_id = $1 AND assisting_region = $2
            AND state IN ('requested', 'delivered', 'accepted')
          LIMIT 1 FOR UPDATE",
        case_id,
        helper.as_str(),
    )
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// The newest outgoing request for help with `case_id` to `region`, if any.
pub async fn latest_request_to(
    executor: impl PgExecutor<'_>,
    case_id: Uuid,
    region: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM assistance
          WHERE direction = 'outgoing' AND case_id = $1 AND assisting_region = $2
          ORDER BY requested_at DESC LIMIT 1",
        case_id,
        region,
    )
    .fetch_optional(executor)
    .await
}

/// A list's filters.
pub struct ListFilter<'a> {
    pub prefix: &'a str,
    pub direction: Option<Direction>,
    pub state: Option<State>,
    pub overdue_on: Option<NaiveDate>,
}

/// Requests on either side in a region subtree (the owner's for outgoing, the helper's for
/// incoming), newest first, a page at a time.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &ListFilter<'_>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Assistance>> {
    all(sqlx::query_as!(
        Row,
        "SELECT * FROM assistance
          WHERE ((direction = 'outgoing' AND owner_region LIKE $1 || '%')
                 OR (direction = 'incoming' AND assisting_region LIKE $1 || '%'))
            AND ($2::text IS NULL OR direction = $2)
            AND ($3::text IS NULL OR state = $3)
            AND ($4::date IS NULL OR (state IN ('requested', 'delivered', 'accepted') AND due_on < $4))
            AND ($5::timestamptz IS NULL OR (requested_at, id) < ($5, $6))
          ORDER BY requested_at DESC, id DESC
          LIMIT $7",
        filter.prefix,
        filter.direction.map(direction_as_stored),
        filter.state.map(State::as_stored),
        filter.overdue_on,
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(executor)
    .await?)
}
