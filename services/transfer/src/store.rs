//! The transfer service's SQL: `handoff`, `handoff_notice`, `notice_counter`,
//! `handoff_tombstone` and `transfer_in`. Rows are decoded once, here, into the domain's types;
//! a stored value that does not decode is an error naming the row.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_pii::Sex;
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{
    Cancellation, Direction, HandedChild, Handoff, NewHandoff, RejectReason, Rejection, State, TransferIn,
    TransferInState,
};

/// A `handoff` row as stored (every column).
#[derive(Debug)]
struct HandoffRow {
    id: Uuid,
    direction: String,
    state: String,
    case_id: Uuid,
    origin_region: String,
    destination_region: String,
    reason: String,
    child_name: String,
    resident_id_masked: String,
    sex: i16,
    birth_date: NaiveDate,
    hukou_region: String,
    sealed_dossier: Option<Vec<u8>>,
    trace_context: serde_json::Value,
    requested_by: String,
    requested_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    accepted_by: Option<String>,
    accepted_at: Option<DateTime<Utc>>,
    request_event_id: Option<Uuid>,
    #[allow(dead_code)]
    last_sent_at: Option<DateTime<Utc>>,
    resend_count: i32,
    escalated_at: Option<DateTime<Utc>>,
    escalated_to: Option<String>,
    #[allow(dead_code)]
    updated_at: DateTime<Utc>,
    reject_reason: Option<String>,
    reject_note: Option<String>,
    rejected_by: Option<String>,
    rejected_at: Option<DateTime<Utc>>,
    linked_case_id: Option<Uuid>,
    cancel_requested_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
    cancelled_by: Option<String>,
    cancelled_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    destination_case_id: Option<Uuid>,
    notice_number: Option<String>,
    notice_sha256: Option<Vec<u8>>,
    dossier_view: Option<Vec<u8>>,
}

/// A stored value that does not decode: the row is corrupt (an internal error, never a default).
#[derive(Debug, thiserror::Error)]
#[error("{table} {id} ({direction}): stored {column} {value:?} does not decode")]
pub struct Undecodable {
    pub table: &'static str,
    pub id: Uuid,
    pub direction: String,
    pub column: &'static str,
    pub value: String,
}

impl Undecodable {
    /// A column of the row (`table`, `id`, `direction`) holding `value`, which does not decode.
    pub fn new(table: &'static str, id: Uuid, direction: &str, column: &'static str, value: &str) -> Undecodable {
        Undecodable { table, id, direction: direction.to_owned(), column, value: value.to_owned() }
    }
}

impl From<Undecodable> for sqlx::Error {
    fn from(error: Undecodable) -> sqlx::Error {
        tracing::error!(table = error.table, row_id = %error.id, column = error.column, "corrupt stored value");
        sqlx::Error::Decode(Box::new(error))
    }
}

impl TryFrom<HandoffRow> for Handoff {
    type Error = Undecodable;

    fn try_from(row: HandoffRow) -> Result<Handoff, Undecodable> {
        let undecodable =
            |column: &'static str, value: &str| Undecodable::new("handoff", row.id, &row.direction, column, value);
        let region = |column: &'static str, text: &str| RegionCode::parse(text).map_err(|_| undecodable(column, text));
        let direction =
            direction_from_stored(&row.direction).ok_or_else(|| undecodable("direction", &row.direction))?;
        let state = state_from_stored(&row.state).ok_or_else(|| undecodable("state", &row.state))?;
        let sex = sex_from_stored(row.sex).ok_or_else(|| undecodable("sex", &row.sex.to_string()))?;
        let origin = region("origin_region", &row.origin_region)?;
        let destination = region("destination_region", &row.destination_region)?;
        let escalated_to = row.escalated_to.as_deref().map(|text| region("escalated_to", text)).transpose()?;
        let trace_context: HashMap<String, String> =
            serde_json::from_value(row.trace_context.clone()).map_err(|_| undecodable("trace_context", "…"))?;
        let rejection = match &row.reject_reason {
            Some(reason) => Some(Rejection {
                reason: reject_reason_from_stored(reason).ok_or_else(|| undecodable("reject_reason", reason))?,
                note: row.reject_note.clone().unwrap_or_default(),
                by: row.rejected_by.clone().unwrap_or_default(),
                at: row.rejected_at,
                linked_case_id: row.linked_case_id,
            }),
            None => None,
        };
        let cancellation = (row.cancel_requested_at.is_some() || row.cancelled_at.is_some()).then(|| Cancellation {
            reason: row.cancel_reason.clone().unwrap_or_default(),
            by: row.cancelled_by.clone().unwrap_or_default(),
            requested_at: row.cancel_requested_at,
            at: row.cancelled_at,
        });
        Ok(Handoff {
            id: row.id,
            direction,
            state,
            case_id: row.case_id,
            origin,
            destination,
            reason: row.reason,
            child: HandedChild {
                full_name: row.child_name,
                resident_id_masked: row.resident_id_masked,
                sex,
                birth_date: row.birth_date,
                hukou_region: row.hukou_region,
            },
            sealed_dossier: row.sealed_dossier,
            trace_context,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            delivered_at: row.delivered_at,
            accepted_by: row.accepted_by,
            accepted_at: row.accepted_at,
            request_event_id: row.request_event_id,
            resend_count: row.resend_count,
            escalated_at: row.escalated_at,
            escalated_to,
            rejection,
            cancellation,
            completed_at: row.completed_at,
            destination_case_id: row.destination_case_id,
            notice_number: row.notice_number,
            notice_sha256: row.notice_sha256,
            dossier_view: row.dossier_view,
        })
    }
}

fn decode(row: HandoffRow) -> sqlx::Result<Handoff> {
    Ok(Handoff::try_from(row)?)
}

fn decode_all(rows: Vec<HandoffRow>) -> sqlx::Result<Vec<Handoff>> {
    rows.into_iter().map(decode).collect()
}

// The stored text of each enum: an explicit mapping (never derived from a name), pinned by the
// tests below, so renaming a variant never changes what is stored.

pub(crate) fn direction_as_stored(direction: Direction) -> &'static str {
    match direction {
        Direction::Outgoing => "outgoing",
        Direction::Incoming => "incoming",
    }
}

pub(crate) fn direction_from_stored(text: &str) -> Option<Direction> {
    [Direction::Outgoing, Direction::Incoming].into_iter().find(|direction| direction_as_stored(*direction) == text)
}

pub(crate) fn state_as_stored(state: State) -> &'static str {
    match state {
        State::Requested => "requested",
        State::Delivered => "delivered",
        State::Accepting => "accepting",
        State::Accepted => "accepted",
        State::Rejected => "rejected",
        State::Cancelled => "cancelled",
        State::Completed => "completed",
    }
}

const STATES: [State; 7] = [
    State::Requested,
    State::Delivered,
    State::Accepting,
    State::Accepted,
    State::Rejected,
    State::Cancelled,
    State::Completed,
];

fn state_from_stored(text: &str) -> Option<State> {
    STATES.into_iter().find(|state| state_as_stored(*state) == text)
}

pub(crate) fn reject_reason_as_stored(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::ChildNotFound => "child_not_found",
        RejectReason::HukouNotHere => "hukou_not_here",
        RejectReason::AlreadyHasCase => "already_has_case",
        RejectReason::DataWrong => "data_wrong",
        RejectReason::Other => "other",
    }
}

const REJECT_REASONS: [RejectReason; 5] = [
    RejectReason::ChildNotFound,
    RejectReason::HukouNotHere,
    RejectReason::AlreadyHasCase,
    RejectReason::DataWrong,
    RejectReason::Other,
];

fn reject_reason_from_stored(text: &str) -> Option<RejectReason> {
    REJECT_REASONS.into_iter().find(|reason| reject_reason_as_stored(*reason) == text)
}

fn transfer_in_state_as_stored(state: TransferInState) -> &'static str {
    match state {
        TransferInState::Requested => "requested",
        TransferInState::Pending => "pending",
        TransferInState::Approved => "approved",
        TransferInState::Declined => "declined",
    }
}

fn transfer_in_state_from_stored(text: &str) -> Option<TransferInState> {
    [TransferInState::Requested, TransferInState::Pending, TransferInState::Approved, TransferInState::Declined]
        .into_iter()
        .find(|state| transfer_in_state_as_stored(*state) == text)
}

/// Sex is stored as the contract's numbers (0 not known, 1 male, 2 female), as it always was.
fn sex_as_stored(sex: Option<Sex>) -> i16 {
    match sex {
        None => 0,
        Some(Sex::Male) => 1,
        Some(Sex::Female) => 2,
    }
}

/// `None` when the stored number is not one of the three; `Some(None)` for "not known".
fn sex_from_stored(stored: i16) -> Option<Option<Sex>> {
    match stored {
        0 => Some(None),
        1 => Some(Some(Sex::Male)),
        2 => Some(Some(Sex::Female)),
        _ => None,
    }
}

/// Inserts the hand-off unless it exists; returns it when inserted.
pub async fn insert(conn: &mut PgConnection, handoff: &NewHandoff) -> sqlx::Result<Option<Handoff>> {
    let delivered_at = (handoff.state == State::Delivered).then(Utc::now);
    let trace_context = serde_json::to_value(&handoff.trace_context).unwrap_or_default();
    let row = sqlx::query_as!(
        HandoffRow,
        "INSERT INTO handoff (id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                              resident_id_masked, sex, birth_date, hukou_region, sealed_dossier, trace_context,
                              requested_by, requested_at, delivered_at, notice_number, notice_sha256, dossier_view)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
         ON CONFLICT (id, direction) DO NOTHING
         RETURNING *",
        handoff.id,
        direction_as_stored(handoff.direction),
        state_as_stored(handoff.state),
        handoff.case_id,
        handoff.origin.as_str(),
        handoff.destination.as_str(),
        &handoff.reason,
        &handoff.child.full_name,
        &handoff.child.resident_id_masked,
        sex_as_stored(handoff.child.sex),
        handoff.child.birth_date,
        &handoff.child.hukou_region,
        handoff.sealed_dossier.as_deref(),
        trace_context,
        &handoff.requested_by,
        handoff.requested_at,
        delivered_at,
        handoff.notice_number.as_deref(),
        handoff.notice_sha256.as_deref(),
        handoff.dossier_view.as_deref(),
    )
    .fetch_optional(conn)
    .await?;
    row.map(decode).transpose()
}

pub async fn get<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    id: Uuid,
    direction: Direction,
) -> sqlx::Result<Option<Handoff>> {
    sqlx::query_as!(
        HandoffRow,
        "SELECT * FROM handoff WHERE id = $1 AND direction = $2",
        id,
        direction_as_stored(direction)
    )
    .fetch_optional(executor)
    .await?
    .map(decode)
    .transpose()
}

/// Both sides of a hand-off held here (two rows only for a hand-off inside the province).
pub async fn get_any(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<Handoff>> {
    decode_all(
        sqlx::query_as!(HandoffRow, "SELECT * FROM handoff WHERE id = $1 ORDER BY direction", id)
            .fetch_all(pool)
            .await?,
    )
}

/// The hand-off, locked until the transaction ends.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid, direction: Direction) -> sqlx::Result<Option<Handoff>> {
    sqlx::query_as!(
        HandoffRow,
        "SELECT * FROM handoff WHERE id = $1 AND direction = $2 FOR UPDATE",
        id,
        direction_as_stored(direction)
    )
    .fetch_optional(conn)
    .await?
    .map(decode)
    .transpose()
}

/// Moves a hand-off to `state`, stamping the step's time (and who accepted).
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: State,
    accepted_by: Option<&str>,
) -> sqlx::Result<Handoff> {
    decode(
        sqlx::query_as!(
            HandoffRow,
            "UPDATE handoff
                SET state = $3,
                    delivered_at = CASE WHEN $3 <> 'requested' THEN coalesce(delivered_at, clock_timestamp())
                                        ELSE delivered_at END,
                    accepted_at = CASE WHEN $3 IN ('accepting', 'accepted') THEN coalesce(accepted_at, clock_timestamp())
                                       ELSE accepted_at END,
                    accepted_by = coalesce($4, accepted_by),
                    completed_at = CASE WHEN $3 = 'completed' THEN clock_timestamp() ELSE completed_at END,
                    cancelled_at = CASE WHEN $3 = 'cancelled' THEN coalesce(cancelled_at, clock_timestamp())
                                        ELSE cancelled_at END,
                    updated_at = clock_timestamp()
              WHERE id = $1 AND direction = $2
            RETURNING *",
            id,
            direction_as_stored(direction),
            state_as_stored(state),
            accepted_by,
        )
        .fetch_one(conn)
        .await?,
    )
}

/// The case service took the case in: an incoming hand-off is accepted, names the case opened
/// for it, and its answer goes out now — one statement, where it was three (the case, the state,
/// the answer's time) on every acceptance's way to the origin (issue 13).
pub async fn set_taken_in(conn: &mut PgConnection, id: Uuid, case_id: Uuid) -> sqlx::Result<Handoff> {
    decode(
        sqlx::query_as!(
            HandoffRow,
            "UPDATE handoff
                SET state = 'accepted',
                    destination_case_id = $2,
                    delivered_at = coalesce(delivered_at, clock_timestamp()),
                    accepted_at = coalesce(accepted_at, clock_timestamp()),
                    last_sent_at = clock_timestamp(),
                    updated_at = clock_timestamp()
              WHERE id = $1 AND direction = 'incoming'
            RETURNING *",
            id,
            case_id,
        )
        .fetch_one(conn)
        .await?,
    )
}

/// The destination's case for an accepted hand-off.
pub async fn set_destination_case(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    case_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE handoff SET destination_case_id = $3 WHERE id = $1 AND direction = $2",
        id,
        direction_as_stored(direction),
        case_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A refusal by the destination, on either side's row.
pub async fn set_rejected(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    rejection: &Rejection,
) -> sqlx::Result<Handoff> {
    decode(
        sqlx::query_as!(
            HandoffRow,
            "UPDATE handoff
                SET state = 'rejected', reject_reason = $3, reject_note = $4, rejected_by = $5,
                    rejected_at = coalesce(rejected_at, clock_timestamp()), linked_case_id = $6,
                    delivered_at = coalesce(delivered_at, clock_timestamp()), updated_at = clock_timestamp()
              WHERE id = $1 AND direction = $2
            RETURNING *",
            id,
            direction_as_stored(direction),
            reject_reason_as_stored(rejection.reason),
            rejection.note,
            rejection.by,
            rejection.linked_case_id,
        )
        .fetch_one(conn)
        .await?,
    )
}

/// The origin asks to withdraw (outgoing), or a withdrawal is confirmed (either side).
pub async fn set_cancellation(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    reason: &str,
    by: &str,
    confirmed: bool,
) -> sqlx::Result<Handoff> {
    decode(
        sqlx::query_as!(
            HandoffRow,
            "UPDATE handoff
                SET cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp()),
                    cancel_reason = coalesce(cancel_reason, $3), cancelled_by = coalesce(cancelled_by, $4),
                    state = CASE WHEN $5 THEN 'cancelled' ELSE state END,
                    cancelled_at = CASE WHEN $5 THEN coalesce(cancelled_at, clock_timestamp()) ELSE cancelled_at END,
                    last_sent_at = CASE WHEN $5 THEN last_sent_at ELSE clock_timestamp() END,
                    updated_at = clock_timestamp()
              WHERE id = $1 AND direction = $2
            RETURNING *",
            id,
            direction_as_stored(direction),
            reason,
            by,
            confirmed,
        )
        .fetch_one(conn)
        .await?,
    )
}

/// Records that an outgoing request went out as event `event_id` (first send or a re-send).
pub async fn mark_sent(conn: &mut PgConnection, id: Uuid, event_id: Uuid, resend: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE handoff SET request_event_id = $2, last_sent_at = clock_timestamp(),
                resend_count = resend_count + CASE WHEN $3 THEN 1 ELSE 0 END
          WHERE id = $1 AND direction = 'outgoing'",
        id,
        event_id,
        resend,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Restarts the wait for an answer (the message is still queued, or a re-send of a cancel or an
/// acceptance went out).
pub async fn touch_sent(conn: &mut PgConnection, id: Uuid, direction: Direction, resend: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE handoff SET last_sent_at = clock_timestamp(),
                resend_count = resend_count + CASE WHEN $3 THEN 1 ELSE 0 END
          WHERE id = $1 AND direction = $2",
        id,
        direction_as_stored(direction),
        resend,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Hand-offs waiting for the other side whose last message is older than `base` × 2^resends (at
/// most an hour), locked for this sweeper: outgoing ones not yet answered (a request, or a cancel),
/// and incoming accepted ones the origin has not completed.
pub async fn due_for_resend(conn: &mut PgConnection, base_seconds: f64, limit: i64) -> sqlx::Result<Vec<Handoff>> {
    decode_all(
        sqlx::query_as!(
            HandoffRow,
            "SELECT * FROM handoff
              WHERE ((direction = 'outgoing' AND (state IN ('requested', 'delivered')
                                                  OR (cancel_requested_at IS NOT NULL AND state NOT IN
                                                      ('rejected', 'cancelled', 'completed', 'accepted'))))
                     OR (direction = 'incoming' AND state = 'accepted'))
                AND coalesce(last_sent_at, updated_at)
                    + make_interval(secs => least($1 * power(2, least(resend_count, 20)), 3600)) < clock_timestamp()
              ORDER BY last_sent_at
              LIMIT $2
                FOR UPDATE SKIP LOCKED",
            base_seconds,
            limit,
        )
        .fetch_all(conn)
        .await?,
    )
}

/// Outgoing hand-offs not decided within `deadline_seconds` and not yet escalated.
pub async fn due_for_escalation(
    conn: &mut PgConnection,
    deadline_seconds: f64,
    limit: i64,
) -> sqlx::Result<Vec<Handoff>> {
    decode_all(
        sqlx::query_as!(
            HandoffRow,
            "SELECT * FROM handoff
              WHERE direction = 'outgoing' AND state IN ('requested', 'delivered') AND escalated_at IS NULL
                AND requested_at + make_interval(secs => $1) < clock_timestamp()
              ORDER BY requested_at
              LIMIT $2
                FOR UPDATE SKIP LOCKED",
            deadline_seconds,
            limit,
        )
        .fetch_all(conn)
        .await?,
    )
}

pub async fn mark_escalated(conn: &mut PgConnection, id: Uuid, escalated_to: &RegionCode) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE handoff SET escalated_at = clock_timestamp(), escalated_to = $2, updated_at = clock_timestamp()
          WHERE id = $1 AND direction = 'outgoing'",
        id,
        escalated_to.as_str(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Outgoing hand-offs not yet decided, and of those the escalated ones (admin gauges).
pub async fn unanswered_counts(pool: &PgPool) -> sqlx::Result<(i64, i64)> {
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "pending!", count(*) FILTER (WHERE escalated_at IS NOT NULL) AS "escalated!"
             FROM handoff
            WHERE direction = 'outgoing' AND state IN ('requested', 'delivered')"#,
    )
    .fetch_one(pool)
    .await?;
    Ok((counts.pending, counts.escalated))
}

/// Filters of a hand-off list.
pub struct ListFilter<'a> {
    pub prefix: &'a str,
    pub direction: Option<Direction>,
    pub state: Option<State>,
    pub escalated_only: bool,
}

/// Hand-offs whose own side's region (origin for outgoing, destination for incoming) lies in the
/// subtree, newest first. The contract's RECEIVED (stored `delivered`) also lists `accepting`.
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter<'_>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Handoff>> {
    decode_all(
        sqlx::query_as!(
            HandoffRow,
            "SELECT * FROM handoff
              WHERE ((direction = 'outgoing' AND origin_region LIKE $1 || '%')
                  OR (direction = 'incoming' AND destination_region LIKE $1 || '%'))
                AND ($2::text IS NULL OR direction = $2)
                AND ($3::text IS NULL OR state = $3 OR ($3 = 'delivered' AND state = 'accepting'))
                AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5))
                AND (NOT $7 OR escalated_at IS NOT NULL)
              ORDER BY requested_at DESC, id DESC
              LIMIT $6",
            filter.prefix,
            filter.direction.map(direction_as_stored),
            filter.state.map(state_as_stored),
            after.map(|cursor| cursor.time),
            after.map(|cursor| cursor.id),
            limit,
            filter.escalated_only,
        )
        .fetch_all(pool)
        .await?,
    )
}

/// The number of a hand-off's notice: the one it was given before, or the issuing bureau's next
/// of the year (numbers run from 1 per bureau and year), claimed in a short transaction of its
/// own so the bureau's counter is not held while the notice is drawn.
/// Holds the hand-off's id until the transaction ends (a transaction-level advisory lock), so
/// that two recorders of one hand-off take turns.
pub async fn lock_handoff(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('handoff:' || $1::text, 0))", id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The notice number already claimed for a hand-off, read in the caller's transaction.
pub async fn claimed_notice_number(conn: &mut PgConnection, handoff_id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!("SELECT number FROM notice_number WHERE handoff_id = $1", handoff_id).fetch_optional(conn).await
}

/// Claims the next notice number of `bureau` and `year` for a hand-off (or returns the one it has)
/// in a short transaction of its own, so the counter is not held while the notice is drawn. Call it
/// holding no other connection of `pool`: a caller that holds one while waiting for another can
/// empty the pool when many do it at once.
pub async fn claim_notice_number(pool: &PgPool, handoff_id: Uuid, bureau: &RegionCode, year: i32) -> sqlx::Result<i32> {
    let given = || sqlx::query_scalar!("SELECT number FROM notice_number WHERE handoff_id = $1", handoff_id);
    if let Some(number) = given().fetch_optional(pool).await? {
        return Ok(number);
    }
    let mut tx = pool.begin().await?;
    let next = sqlx::query_scalar!(
        "INSERT INTO notice_counter (bureau_region, year, last_number) VALUES ($1, $2, 1)
         ON CONFLICT (bureau_region, year) DO UPDATE SET last_number = notice_counter.last_number + 1
         RETURNING last_number",
        bureau.as_str(),
        year,
    )
    .fetch_one(&mut *tx)
    .await?;
    let claimed = sqlx::query_scalar!(
        "INSERT INTO notice_number (handoff_id, bureau_region, year, number) VALUES ($1, $2, $3, $4)
         ON CONFLICT (handoff_id) DO NOTHING
         RETURNING number",
        handoff_id,
        bureau.as_str(),
        year,
        next,
    )
    .fetch_optional(&mut *tx)
    .await?;
    match claimed {
        Some(number) => {
            tx.commit().await?;
            Ok(number)
        }
        // A concurrent claim for the same hand-off committed first: its number stands, ours is
        // given back with the rollback.
        None => {
            tx.rollback().await?;
            given().fetch_one(pool).await
        }
    }
}

/// A written notice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub number: String,
    pub pdf: Vec<u8>,
    pub sha256: Vec<u8>,
}

pub async fn insert_notice(conn: &mut PgConnection, handoff_id: Uuid, notice: &Notice) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO handoff_notice (handoff_id, number, pdf, sha256) VALUES ($1, $2, $3, $4)
         ON CONFLICT (handoff_id) DO NOTHING",
        handoff_id,
        notice.number,
        notice.pdf,
        notice.sha256,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn notice(pool: &PgPool, handoff_id: Uuid) -> sqlx::Result<Option<Notice>> {
    sqlx::query_as!(Notice, "SELECT number, pdf, sha256 FROM handoff_notice WHERE handoff_id = $1", handoff_id)
        .fetch_optional(pool)
        .await
}

/// Remembers a cancel that overtook its request.
pub async fn insert_tombstone(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO handoff_tombstone (id) VALUES ($1) ON CONFLICT DO NOTHING", id).execute(conn).await?;
    Ok(())
}

pub async fn is_tombstoned(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM handoff_tombstone WHERE id = $1) AS "dead!""#, id)
        .fetch_one(conn)
        .await
}

/// A `transfer_in` row as stored.
struct TransferInRow {
    id: Uuid,
    direction: String,
    state: String,
    asking_region: String,
    owner_region: String,
    reason: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    resident_id_sealed: Option<Vec<u8>>,
    case_id: Option<Uuid>,
    child_name: String,
    resident_id_masked: String,
    sex: i16,
    birth_date: Option<NaiveDate>,
    hukou_region: String,
    handoff_id: Option<Uuid>,
    decline_reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    #[allow(dead_code)]
    last_sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<TransferInRow> for TransferIn {
    type Error = Undecodable;

    fn try_from(row: TransferInRow) -> Result<TransferIn, Undecodable> {
        let undecodable =
            |column: &'static str, value: &str| Undecodable::new("transfer_in", row.id, &row.direction, column, value);
        let region = |column: &'static str, text: &str| RegionCode::parse(text).map_err(|_| undecodable(column, text));
        let child = match (row.case_id, row.birth_date) {
            (Some(_), Some(birth_date)) => Some(HandedChild {
                full_name: row.child_name.clone(),
                resident_id_masked: row.resident_id_masked.clone(),
                sex: sex_from_stored(row.sex).ok_or_else(|| undecodable("sex", &row.sex.to_string()))?,
                birth_date,
                hukou_region: row.hukou_region.clone(),
            }),
            _ => None,
        };
        Ok(TransferIn {
            direction: direction_from_stored(&row.direction).ok_or_else(|| undecodable("direction", &row.direction))?,
            state: transfer_in_state_from_stored(&row.state).ok_or_else(|| undecodable("state", &row.state))?,
            asking_region: region("asking_region", &row.asking_region)?,
            owner_region: region("owner_region", &row.owner_region)?,
            child,
            id: row.id,
            reason: row.reason,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            resident_id_sealed: row.resident_id_sealed,
            case_id: row.case_id,
            handoff_id: row.handoff_id,
            decline_reason: row.decline_reason,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
        })
    }
}

fn transfer_in(row: Option<TransferInRow>) -> sqlx::Result<Option<TransferIn>> {
    Ok(row.map(TransferIn::try_from).transpose()?)
}

/// A transfer-in request to record (the asker's, or the owner's copy received).
pub struct NewTransferIn<'a> {
    pub id: Uuid,
    pub direction: Direction,
    pub asking_region: &'a RegionCode,
    pub owner_region: &'a RegionCode,
    pub reason: &'a str,
    pub requested_by: &'a str,
    pub resident_id_sealed: Option<&'a [u8]>,
}

/// Records a transfer-in request unless it exists; returns it when inserted.
pub async fn insert_transfer_in(conn: &mut PgConnection, new: &NewTransferIn<'_>) -> sqlx::Result<Option<TransferIn>> {
    transfer_in(
        sqlx::query_as!(
            TransferInRow,
            "INSERT INTO transfer_in (id, direction, state, asking_region, owner_region, reason, requested_by,
                                      resident_id_sealed, last_sent_at)
             VALUES ($1, $2, 'requested', $3, $4, $5, $6, $7, clock_timestamp())
             ON CONFLICT (id, direction) DO NOTHING
             RETURNING *",
            new.id,
            direction_as_stored(new.direction),
            new.asking_region.as_str(),
            new.owner_region.as_str(),
            new.reason,
            new.requested_by,
            new.resident_id_sealed,
        )
        .fetch_optional(conn)
        .await?,
    )
}

pub async fn get_transfer_in(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    lock: bool,
) -> sqlx::Result<Option<TransferIn>> {
    let row = if lock {
        sqlx::query_as!(
            TransferInRow,
            "SELECT * FROM transfer_in WHERE id = $1 AND direction = $2 FOR UPDATE",
            id,
            direction_as_stored(direction)
        )
        .fetch_optional(conn)
        .await?
    } else {
        sqlx::query_as!(
            TransferInRow,
            "SELECT * FROM transfer_in WHERE id = $1 AND direction = $2",
            id,
            direction_as_stored(direction)
        )
        .fetch_optional(conn)
        .await?
    };
    transfer_in(row)
}

/// The owner's case service matched the request (or found nothing).
pub async fn set_transfer_in_match(
    conn: &mut PgConnection,
    id: Uuid,
    case_id: Option<Uuid>,
    child: Option<&HandedChild>,
) -> sqlx::Result<Option<TransferIn>> {
    transfer_in(
        sqlx::query_as!(
            TransferInRow,
            "UPDATE transfer_in
                SET case_id = $2, child_name = $3, resident_id_masked = $4, sex = $5, birth_date = $6,
                    hukou_region = $7, resident_id_sealed = NULL,
                    state = CASE WHEN $2::uuid IS NULL THEN 'declined' ELSE 'pending' END,
                    decline_reason = CASE WHEN $2::uuid IS NULL THEN $8 ELSE NULL END,
                    decided_by = CASE WHEN $2::uuid IS NULL THEN 'system' ELSE NULL END,
                    decided_at = CASE WHEN $2::uuid IS NULL THEN clock_timestamp() ELSE NULL END
              WHERE id = $1 AND direction = 'incoming' AND state = 'requested'
            RETURNING *",
            id,
            case_id,
            child.map(|child| child.full_name.as_str()).unwrap_or_default(),
            child.map(|child| child.resident_id_masked.as_str()).unwrap_or_default(),
            sex_as_stored(child.and_then(|child| child.sex)),
            child.map(|child| child.birth_date),
            child.map(|child| child.hukou_region.as_str()).unwrap_or_default(),
            nol_messages::Transfer::NoCaseThere.en(),
        )
        .fetch_optional(conn)
        .await?,
    )
}

/// A decision on a transfer-in request (either side's row).
pub async fn set_transfer_in_decision(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: TransferInState,
    handoff_id: Option<Uuid>,
    decline_reason: Option<&str>,
    decided_by: &str,
) -> sqlx::Result<Option<TransferIn>> {
    transfer_in(
        sqlx::query_as!(
            TransferInRow,
            "UPDATE transfer_in
                SET state = $3, handoff_id = coalesce($4, handoff_id), decline_reason = coalesce($5, decline_reason),
                    decided_by = $6, decided_at = coalesce(decided_at, clock_timestamp())
              WHERE id = $1 AND direction = $2 AND state IN ('requested', 'pending')
            RETURNING *",
            id,
            direction_as_stored(direction),
            transfer_in_state_as_stored(state),
            handoff_id,
            decline_reason,
            decided_by,
        )
        .fetch_optional(conn)
        .await?,
    )
}

/// Outgoing transfer-in requests still unanswered whose last send is older than `seconds`.
pub async fn transfer_ins_due_for_resend(
    conn: &mut PgConnection,
    seconds: f64,
    limit: i64,
) -> sqlx::Result<Vec<TransferIn>> {
    let rows = sqlx::query_as!(
        TransferInRow,
        "SELECT * FROM transfer_in
          WHERE direction = 'outgoing' AND state = 'requested'
            AND last_sent_at + make_interval(secs => $1) < clock_timestamp()
          ORDER BY last_sent_at
          LIMIT $2
            FOR UPDATE SKIP LOCKED",
        seconds,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(TransferIn::try_from).collect::<Result<_, _>>()?)
}

pub async fn touch_transfer_in(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE transfer_in SET last_sent_at = clock_timestamp() WHERE id = $1 AND direction = 'outgoing'",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Transfer-in requests of a subtree (the asker's outgoing, the owner's incoming), newest first.
pub async fn list_transfer_ins(
    pool: &PgPool,
    prefix: &str,
    direction: Option<Direction>,
    state: Option<TransferInState>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<TransferIn>> {
    let rows = sqlx::query_as!(
        TransferInRow,
        "SELECT * FROM transfer_in
          WHERE ((direction = 'outgoing' AND asking_region LIKE $1 || '%')
              OR (direction = 'incoming' AND owner_region LIKE $1 || '%'))
            AND ($2::text IS NULL OR direction = $2)
            AND ($3::text IS NULL OR state = $3)
            AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5))
          ORDER BY requested_at DESC, id DESC
          LIMIT $6",
        prefix,
        direction.map(direction_as_stored),
        state.map(transfer_in_state_as_stored),
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(TransferIn::try_from).collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_are_pinned() {
        let directions = [(Direction::Outgoing, "outgoing"), (Direction::Incoming, "incoming")];
        for (direction, stored) in directions {
            assert_eq!(direction_as_stored(direction), stored);
            assert_eq!(direction_from_stored(stored), Some(direction));
        }
        let states: Vec<&str> = STATES.iter().map(|state| state_as_stored(*state)).collect();
        assert_eq!(states, ["requested", "delivered", "accepting", "accepted", "rejected", "cancelled", "completed"]);
        for state in STATES {
            assert_eq!(state_from_stored(state_as_stored(state)), Some(state));
        }
        let reasons: Vec<&str> = REJECT_REASONS.iter().map(|reason| reject_reason_as_stored(*reason)).collect();
        assert_eq!(reasons, ["child_not_found", "hukou_not_here", "already_has_case", "data_wrong", "other"]);
        for state in
            [TransferInState::Requested, TransferInState::Pending, TransferInState::Approved, TransferInState::Declined]
        {
            assert_eq!(transfer_in_state_from_stored(transfer_in_state_as_stored(state)), Some(state));
        }
        for (sex, stored) in [(None, 0), (Some(Sex::Male), 1), (Some(Sex::Female), 2)] {
            assert_eq!(sex_as_stored(sex), stored);
            assert_eq!(sex_from_stored(stored), Some(sex));
        }
        assert_eq!(direction_from_stored("Outgoing"), None);
        assert_eq!(state_from_stored("HANDOFF_STATE_ACCEPTED"), None);
        assert_eq!(sex_from_stored(3), None);
    }
}
