//! Writing events in the same transaction as the change they report.

use nol_events::{EventEnvelope, EventHeader};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// Wakes this process's relay after a transaction with outbox rows commits. (A trigger with
/// `NOTIFY` would do it across processes, but PostgreSQL serialises the commits of notifying
/// transactions; other replicas' rows are found by the relay's poll instead.)
#[derive(Debug, Clone, Default)]
pub struct RelayWake(std::sync::Arc<Wake>);

#[derive(Debug, Default)]
struct Wake {
    notify: tokio::sync::Notify,
    /// The first wake-up not yet served by a pass (for the relay's `woken` stage).
    waiting_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl RelayWake {
    /// Call after committing a transaction that wrote to the outbox.
    pub fn notify(&self) {
        if let Ok(mut since) = self.0.waiting_since.lock() {
            since.get_or_insert_with(std::time::Instant::now);
        }
        self.0.notify.notify_one();
    }

    pub(crate) async fn notified(&self) {
        self.0.notify.notified().await;
    }

    /// How long the oldest wake-up has waited for a pass, if one has; a pass takes it.
    pub(crate) fn take_waiting(&self) -> Option<std::time::Duration> {
        self.0.waiting_since.lock().ok()?.take().map(|since| since.elapsed())
    }
}

/// The largest event the outbox takes: the province's NATS server refuses a message over its
/// payload limit (1 MiB by default), which would leave the event unpublishable — parked, the
/// change committed but never told. A change whose event would be larger fails in its own
/// transaction instead ([`EventTooLarge`]; the services answer INVALID_ARGUMENT), and nothing is
/// written. Field limits keep every request well below it; this is the backstop.
pub const MAX_EVENT_BYTES: usize = 768 * 1024;

/// An event over [`MAX_EVENT_BYTES`], refused before it was written (inside a `sqlx::Error::Encode`
/// so that it fails the transaction like any other error of the statement).
#[derive(Debug, thiserror::Error)]
#[error("event {event_type} of {bytes} bytes is over the limit of {max} bytes")]
pub struct EventTooLarge {
    pub event_type: String,
    pub bytes: usize,
    pub max: usize,
}

/// The envelope's bytes, unless they are over the limit.
fn encoded(envelope: &EventEnvelope) -> sqlx::Result<Vec<u8>> {
    let bytes = envelope.encode_to_vec();
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(sqlx::Error::Encode(Box::new(EventTooLarge {
            event_type: envelope.event_type.clone(),
            bytes: bytes.len(),
            max: MAX_EVENT_BYTES,
        })));
    }
    Ok(bytes)
}

/// The values of an event's outbox row, checked against [`MAX_EVENT_BYTES`]: for a statement that
/// writes the row together with something else (`nol_runtime::audit::emit_and_record_each`).
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: Uuid,
    pub subject: String,
    pub event_type: String,
    pub envelope: Vec<u8>,
}

impl OutboxRow {
    pub fn of(subject: &str, envelope: &EventEnvelope) -> sqlx::Result<OutboxRow> {
        Ok(OutboxRow {
            id: Uuid::parse_str(&envelope.event_id).map_err(|error| sqlx::Error::Encode(Box::new(error)))?,
            subject: subject.to_owned(),
            event_type: envelope.event_type.clone(),
            envelope: encoded(envelope)?,
        })
    }
}

/// A new envelope around `payload`: now, in the current trace.
pub fn new_envelope<P: Message>(header: EventHeader<'_>, payload: &P) -> EventEnvelope {
    nol_events::envelope(header, payload, chrono::Utc::now(), nol_telemetry::current_trace_context())
}

/// Adds an event to the outbox. Call inside the transaction that makes the change: both commit
/// or neither does.
pub async fn enqueue(conn: &mut PgConnection, subject: &str, envelope: &EventEnvelope) -> sqlx::Result<()> {
    let row = OutboxRow::of(subject, envelope)?;
    sqlx::query!(
        "INSERT INTO outbox (id, subject, event_type, envelope) VALUES ($1, $2, $3, $4)",
        row.id,
        row.subject,
        row.event_type,
        row.envelope,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds an event to the outbox that the relay publishes only once `delay` has passed: the
/// durable fallback of a change whose effect another way brings about at once (a call), so that the
/// event, which then finds that effect done, does not race the call for it. Committed with the
/// change like any event; the relay finds it due on a later pass (it polls besides being woken).
pub async fn enqueue_after(
    conn: &mut PgConnection,
    subject: &str,
    envelope: &EventEnvelope,
    delay: std::time::Duration,
) -> sqlx::Result<()> {
    let row = OutboxRow::of(subject, envelope)?;
    sqlx::query!(
        "INSERT INTO outbox (id, subject, event_type, envelope, next_attempt_at)
         VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))",
        row.id,
        row.subject,
        row.event_type,
        row.envelope,
        delay.as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds many events to the outbox in one statement (a job that publishes thousands at once).
pub async fn enqueue_many(conn: &mut PgConnection, events: &[(String, EventEnvelope)]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    for (_, envelope) in events {
        ids.push(Uuid::parse_str(&envelope.event_id).map_err(|error| sqlx::Error::Encode(Box::new(error)))?);
    }
    let subjects: Vec<&str> = events.iter().map(|(subject, _)| subject.as_str()).collect();
    let event_types: Vec<&str> = events.iter().map(|(_, envelope)| envelope.event_type.as_str()).collect();
    let envelopes = events.iter().map(|(_, envelope)| encoded(envelope)).collect::<sqlx::Result<Vec<_>>>()?;
    sqlx::query!(
        "INSERT INTO outbox (id, subject, event_type, envelope)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])",
        &ids,
        &subjects as &[&str],
        &event_types as &[&str],
        &envelopes,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Wraps `payload` in a new envelope (now, in the current trace) and adds it to the outbox.
pub async fn emit<P: Message>(
    conn: &mut PgConnection,
    subject: &str,
    header: EventHeader<'_>,
    payload: &P,
) -> sqlx::Result<EventEnvelope> {
    let envelope = new_envelope(header, payload);
    enqueue(conn, subject, &envelope).await?;
    Ok(envelope)
}

/// Whether an event's outbox row is out of the relay's hands — acknowledged by a stream, or parked
/// after `RelaySettings::max_attempts` failed publishes (`Some(true)`: only [`resend`] moves it
/// again) — is still waiting for the relay (`Some(false)`), or is gone (deleted after the
/// retention period).
pub async fn sent(conn: &mut PgConnection, event_id: Uuid) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar!(
        r#"SELECT sent_at IS NOT NULL OR next_attempt_at = 'infinity' AS "sent!" FROM outbox WHERE id = $1"#,
        event_id
    )
    .fetch_optional(conn)
    .await
}

/// Sends an already-sent (or parked) event again (same event id, new message id), for a receiver
/// that has not answered. Returns false when the row is gone (deleted after the retention period).
pub async fn resend(conn: &mut PgConnection, event_id: Uuid) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE outbox SET sent_at = NULL, generation = generation + 1, attempts = 0,
                next_attempt_at = clock_timestamp(), last_error = NULL
          WHERE id = $1 AND (sent_at IS NOT NULL OR next_attempt_at = 'infinity')",
        event_id,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// What is waiting in an outbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    /// Rows not yet acknowledged by a stream.
    pub unsent: i64,
    /// Of those, rows that failed at least once (a destination unreachable, say).
    pub retrying: i64,
    /// Of those, rows the relay gave up on after `RelaySettings::max_attempts` (an alarm).
    pub parked: i64,
    /// Age in seconds of the oldest unsent row.
    pub oldest_unsent_seconds: f64,
}

pub async fn backlog(pool: &sqlx::PgPool) -> sqlx::Result<Backlog> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unsent!", count(*) FILTER (WHERE attempts > 0) AS "retrying!",
                  count(*) FILTER (WHERE next_attempt_at = 'infinity') AS "parked!",
                  EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 AS oldest_unsent_seconds
             FROM outbox WHERE sent_at IS NULL"#,
    )
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        unsent: row.unsent,
        retrying: row.retrying,
        parked: row.parked,
        oldest_unsent_seconds: row.oldest_unsent_seconds.unwrap_or(0.0),
    })
}
