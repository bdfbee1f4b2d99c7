//! The transfer service's SQL: the `handoff` table. Rows are decoded once, here, into the
//! domain's [`Handoff`]; a stored value that does not decode is an error naming the row.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_pii::Sex;
use nol_region::RegionCode;
use nol_runtime::paging::Cursor;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Direction, HandedChild, Handoff, NewHandoff, State};

/// A `handoff` row as stored.
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
    trace_context: Json<HashMap<String, String>>,
    requested_by: String,
    requested_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    accepted_by: Option<String>,
    accepted_at: Option<DateTime<Utc>>,
    request_event_id: Option<Uuid>,
    resend_count: i32,
    escalated_at: Option<DateTime<Utc>>,
    escalated_to: Option<String>,
}

/// A stored value that does not decode: the row is corrupt (an internal error, never a default).
#[derive(Debug, thiserror::Error)]
#[error("hand-off {id} ({direction}): stored {column} {value:?} does not decode")]
pub struct Undecodable {
    pub id: Uuid,
    pub direction: String,
    pub column: &'static str,
    pub value: String,
}

impl From<Undecodable> for sqlx::Error {
    fn from(error: Undecodable) -> sqlx::Error {
        sqlx::Error::Decode(Box::new(error))
    }
}

impl TryFrom<HandoffRow> for Handoff {
    type Error = Undecodable;

    fn try_from(row: HandoffRow) -> Result<Handoff, Undecodable> {
        let undecodable = |column: &'static str, value: &str| Undecodable {
            id: row.id,
            direction: row.direction.clone(),
            column,
            value: value.to_owned(),
        };
        let region = |column: &'static str, text: &str| RegionCode::parse(text).map_err(|_| undecodable(column, text));
        let direction =
            direction_from_stored(&row.direction).ok_or_else(|| undecodable("direction", &row.direction))?;
        let state = state_from_stored(&row.state).ok_or_else(|| undecodable("state", &row.state))?;
        let sex = sex_from_stored(row.sex).ok_or_else(|| undecodable("sex", &row.sex.to_string()))?;
        let origin = region("origin_region", &row.origin_region)?;
        let destination = region("destination_region", &row.destination_region)?;
        let escalated_to = row.escalated_to.as_deref().map(|text| region("escalated_to", text)).transpose()?;
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
            trace_context: row.trace_context.0,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            delivered_at: row.delivered_at,
            accepted_by: row.accepted_by,
            accepted_at: row.accepted_at,
            request_event_id: row.request_event_id,
            resend_count: row.resend_count,
            escalated_at: row.escalated_at,
            escalated_to,
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

fn direction_as_stored(direction: Direction) -> &'static str {
    match direction {
        Direction::Outgoing => "outgoing",
        Direction::Incoming => "incoming",
    }
}

fn direction_from_stored(text: &str) -> Option<Direction> {
    match text {
        "outgoing" => Some(Direction::Outgoing),
        "incoming" => Some(Direction::Incoming),
        _ => None,
    }
}

fn state_as_stored(state: State) -> &'static str {
    match state {
        State::Requested => "requested",
        State::Delivered => "delivered",
        State::Accepted => "accepted",
    }
}

fn state_from_stored(text: &str) -> Option<State> {
    match text {
        "requested" => Some(State::Requested),
        "delivered" => Some(State::Delivered),
        "accepted" => Some(State::Accepted),
        _ => None,
    }
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
    let row = sqlx::query_as!(
        HandoffRow,
        r#"INSERT INTO handoff (id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                              resident_id_masked, sex, birth_date, hukou_region, sealed_dossier, trace_context,
                              requested_by, requested_at, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id, direction) DO NOTHING
         RETURNING id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                   resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                   trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                   delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at,
                   escalated_to"#,
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
        Json(&handoff.trace_context) as _,
        &handoff.requested_by,
        handoff.requested_at,
        delivered_at,
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
    let row = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff WHERE id = $1 AND direction = $2"#,
        id,
        direction_as_stored(direction),
    )
    .fetch_optional(executor)
    .await?;
    row.map(decode).transpose()
}

/// Both sides of a hand-off held here (two rows only for a hand-off inside the province).
pub async fn get_any(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<Handoff>> {
    let rows = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff WHERE id = $1 ORDER BY direction"#,
        id,
    )
    .fetch_all(pool)
    .await?;
    decode_all(rows)
}

/// The hand-off, locked until the transaction ends.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid, direction: Direction) -> sqlx::Result<Option<Handoff>> {
    let row = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff WHERE id = $1 AND direction = $2 FOR UPDATE"#,
        id,
        direction_as_stored(direction),
    )
    .fetch_optional(conn)
    .await?;
    row.map(decode).transpose()
}

/// Moves a hand-off to `state`, stamping the step's time (and who accepted).
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    direction: Direction,
    state: State,
    accepted_by: Option<&str>,
) -> sqlx::Result<Handoff> {
    let row = sqlx::query_as!(
        HandoffRow,
        r#"UPDATE handoff
              SET state = $3,
                  delivered_at = CASE WHEN $3 IN ('delivered', 'accepted') THEN coalesce(delivered_at, clock_timestamp())
                                      ELSE delivered_at END,
                  accepted_at = CASE WHEN $3 = 'accepted' THEN clock_timestamp() ELSE accepted_at END,
                  accepted_by = coalesce($4, accepted_by),
                  updated_at = clock_timestamp()
            WHERE id = $1 AND direction = $2
        RETURNING id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to"#,
        id,
        direction_as_stored(direction),
        state_as_stored(state),
        accepted_by,
    )
    .fetch_one(conn)
    .await?;
    decode(row)
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

/// Restarts the wait for an answer without counting a re-send (the first send is still queued).
pub async fn touch_sent(conn: &mut PgConnection, id: Uuid, event_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE handoff SET last_sent_at = clock_timestamp() WHERE id = $1 AND request_event_id = $2",
        id,
        event_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Outgoing hand-offs not accepted whose last send is older than `base` × 2^resends (at most an
/// hour), locked for this sweeper.
pub async fn due_for_resend(conn: &mut PgConnection, base_seconds: f64, limit: i64) -> sqlx::Result<Vec<Handoff>> {
    let rows = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff
            WHERE direction = 'outgoing' AND state <> 'accepted'
              AND last_sent_at + make_interval(secs => least($1 * power(2, least(resend_count, 20)), 3600))
                  < clock_timestamp()
            ORDER BY last_sent_at
            LIMIT $2
              FOR UPDATE SKIP LOCKED"#,
        base_seconds,
        limit,
    )
    .fetch_all(conn)
    .await?;
    decode_all(rows)
}

/// Outgoing hand-offs not accepted within `deadline_seconds` and not yet escalated.
pub async fn due_for_escalation(
    conn: &mut PgConnection,
    deadline_seconds: f64,
    limit: i64,
) -> sqlx::Result<Vec<Handoff>> {
    let rows = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff
            WHERE direction = 'outgoing' AND state <> 'accepted' AND escalated_at IS NULL
              AND requested_at + make_interval(secs => $1) < clock_timestamp()
            ORDER BY requested_at
            LIMIT $2
              FOR UPDATE SKIP LOCKED"#,
        deadline_seconds,
        limit,
    )
    .fetch_all(conn)
    .await?;
    decode_all(rows)
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

/// Outgoing hand-offs not yet accepted, and of those the escalated ones (admin gauges).
pub async fn unanswered_counts(pool: &PgPool) -> sqlx::Result<(i64, i64)> {
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "pending!", count(*) FILTER (WHERE escalated_at IS NOT NULL) AS "escalated!"
             FROM handoff
            WHERE direction = 'outgoing' AND state <> 'accepted'"#,
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
/// subtree, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter<'_>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Handoff>> {
    let rows = sqlx::query_as!(
        HandoffRow,
        r#"SELECT id, direction, state, case_id, origin_region, destination_region, reason, child_name,
                  resident_id_masked, sex, birth_date, hukou_region, sealed_dossier,
                  trace_context AS "trace_context: Json<HashMap<String, String>>", requested_by, requested_at,
                  delivered_at, accepted_by, accepted_at, request_event_id, resend_count, escalated_at, escalated_to
             FROM handoff
            WHERE ((direction = 'outgoing' AND origin_region LIKE $1 || '%')
                OR (direction = 'incoming' AND destination_region LIKE $1 || '%'))
              AND ($2::text IS NULL OR direction = $2)
              AND ($3::text IS NULL OR state = $3)
              AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5))
              AND (NOT $7 OR escalated_at IS NOT NULL)
            ORDER BY requested_at DESC, id DESC
            LIMIT $6"#,
        filter.prefix,
        filter.direction.map(direction_as_stored),
        filter.state.map(state_as_stored),
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
        filter.escalated_only,
    )
    .fetch_all(pool)
    .await?;
    decode_all(rows)
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
        let states = [(State::Requested, "requested"), (State::Delivered, "delivered"), (State::Accepted, "accepted")];
        for (state, stored) in states {
            assert_eq!(state_as_stored(state), stored);
            assert_eq!(state_from_stored(stored), Some(state));
        }
        for (sex, stored) in [(None, 0), (Some(Sex::Male), 1), (Some(Sex::Female), 2)] {
            assert_eq!(sex_as_stored(sex), stored);
            assert_eq!(sex_from_stored(stored), Some(sex));
        }
        assert_eq!(direction_from_stored("Outgoing"), None);
        assert_eq!(state_from_stored("HANDOFF_STATE_ACCEPTED"), None);
        assert_eq!(sex_from_stored(3), None);
    }

    #[test]
    fn a_corrupt_row_is_an_error_naming_it() {
        let id = Uuid::now_v7();
        let row = HandoffRow {
            id,
            direction: "incoming".into(),
            state: "lost".into(),
            case_id: Uuid::nil(),
            origin_region: "320102".into(),
            destination_region: "341221".into(),
            reason: String::new(),
            child_name: String::new(),
            resident_id_masked: String::new(),
            sex: 1,
            birth_date: NaiveDate::default(),
            hukou_region: String::new(),
            sealed_dossier: None,
            trace_context: Json(HashMap::new()),
            requested_by: String::new(),
            requested_at: DateTime::UNIX_EPOCH,
            delivered_at: None,
            accepted_by: None,
            accepted_at: None,
            request_event_id: None,
            resend_count: 0,
            escalated_at: None,
            escalated_to: None,
        };
        let error = Handoff::try_from(row).unwrap_err();
        assert_eq!(error.to_string(), format!("hand-off {id} (incoming): stored state \"lost\" does not decode"));
    }
}
