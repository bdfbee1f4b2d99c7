//! Publishes outbox rows to JetStream.
//!
//! Each pass claims due rows with `FOR UPDATE SKIP LOCKED`, so several replicas share the work
//! without publishing a row twice at once; it selects by `sent_at IS NULL`, not by an id
//! watermark, so a row whose transaction commits after a later one is still found. A row is marked
//! sent only after the stream's ack, in the claiming transaction: a relay that dies after publishing
//! leaves the row unsent, it is published again with the same `Nats-Msg-Id`, and the stream's
//! duplicate window (then the consumer's inbox) drops the copy. For the same reason a pass commits
//! without waiting for its WAL flush: a pass lost in a database crash is a pass redone. A row whose
//! publish fails (for example, the other province is unreachable) is retried with backoff without
//! holding up others.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture};
use futures::future::join_all;
use nol_events::headers;
use prost::Message;
use rand::Rng;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::BackboneStats;
use crate::exchange::Exchange;
use crate::outbox::RelayWake;

/// A relay pass's `BEGIN`, with its settings in the same round trip: its claim and its marks are
/// committed without waiting for the WAL flush (`synchronous_commit = off`, this transaction
/// only), and its two statements may keep their generic plans, like a consumer's batch
/// ([`crate::BEGIN_BATCH`]).
///
/// The claim reads the queue's partial index with a plain index scan, never a bitmap scan. A row
/// marked sent leaves a dead entry in `outbox_unsent` until the table is vacuumed. An index scan
/// that meets it marks it dead (it checks the row anyway), and the passes after step over it
/// without reading the row; a bitmap scan marks nothing, so every pass reads every row sent since
/// the last vacuum again. PostgreSQL picks the bitmap scan when it expects few unsent rows, as it
/// does for an outbox not yet analysed: after a burst (an import's events, a cross-check's
/// findings), each pass then cost O(rows sent), 40 ms a pass at the province's scale while
/// autovacuum was busy with the province's tables (docs/BENCHMARKS.md, issue 13, tenth part).
pub const BEGIN_PASS: &str =
    "BEGIN; SET LOCAL synchronous_commit TO OFF; SET LOCAL plan_cache_mode TO auto; SET LOCAL enable_bitmapscan TO off";

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed per pass.
    pub batch_size: i64,
    /// How often to look without a wake-up (rows written by other replicas are found this way).
    pub poll_interval: Duration,
    /// First retry delay of a failed row; doubles per attempt up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Sent rows are deleted after this long.
    pub retention: Duration,
    /// A row whose publish failed this many times is parked with its last error and an alarm
    /// (`NOL_OUTBOX_MAX_ATTEMPTS`): it stays unsent, out of the relay's queue, until
    /// `outbox::resend` (a hand-off's sweeper does this for its unanswered requests).
    pub max_attempts: i32,
    /// Fault injection for the fault suite: abort the process after this many batches were
    /// published, before they are marked sent (`NOL_FAULT_RELAY_CRASH_AFTER`). Never set otherwise.
    pub crash_after_batches: Option<u64>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            retention: Duration::from_secs(24 * 3600),
            // With the backoff capped at 10 s, about three hours of failing.
            max_attempts: 1000,
            crash_after_batches: None,
        }
    }
}

/// One claimed outbox row.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub id: Uuid,
    pub subject: String,
    pub envelope: Vec<u8>,
    pub attempts: i32,
    pub generation: i32,
}

impl ClaimedRow {
    /// The `Nats-Msg-Id`: the event id, suffixed by the generation of a deliberate re-send.
    pub fn message_id(&self) -> String {
        if self.generation == 0 { self.id.to_string() } else { format!("{}.{}", self.id, self.generation) }
    }
}

/// What became of one publish.
#[derive(Debug)]
pub enum PublishOutcome {
    Acked { id: Uuid, stream_sequence: u64 },
    Failed { id: Uuid, attempts: i32, error: String },
}

/// The outbox relay of one service.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    wake: RelayWake,
    settings: RelaySettings,
    stats: BackboneStats,
    batches: std::sync::Arc<std::sync::atomic::AtomicU64>,
    exchange: Option<Exchange>,
}

impl Relay {
    /// A relay woken by `wake` (after this process's commits) and by its poll.
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        wake: RelayWake,
        settings: RelaySettings,
        stats: BackboneStats,
    ) -> Relay {
        Relay { pool, js, wake, settings, stats, batches: Default::default(), exchange: None }
    }

    /// Signs this province's cross-province messages with `exchange`'s key.
    pub fn with_exchange(mut self, exchange: Exchange) -> Relay {
        self.exchange = Some(exchange);
        self
    }

    /// Runs until `shutdown`; survives PostgreSQL and NATS outages, logging once per change of state.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut healthy = true;
        let mut failures_in_a_row = 0u32;
        let mut last_cleanup = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.publish_due().await {
                Ok(claimed) => {
                    if !healthy {
                        tracing::info!("outbox relay recovered");
                        healthy = true;
                    }
                    failures_in_a_row = 0;
                    if claimed as i64 >= self.settings.batch_size {
                        continue;
                    }
                }
                Err(error) => {
                    if healthy {
                        tracing::warn!(error = %error, "outbox relay cannot work; retrying with backoff");
                        healthy = false;
                    }
                    failures_in_a_row = failures_in_a_row.saturating_add(1);
                    let delay = backoff(self.settings.min_backoff, self.settings.max_backoff, failures_in_a_row);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            if last_cleanup.elapsed() > Duration::from_secs(60) {
                last_cleanup = tokio::time::Instant::now();
                if let Err(error) = self.delete_sent().await {
                    tracing::debug!(error = %error, "outbox cleanup failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::debug!("outbox relay stopped");
    }

    /// One pass: claim due rows, publish them, record the outcomes, commit. Returns rows claimed.
    pub async fn publish_due(&self) -> anyhow::Result<usize> {
        let woken = self.wake.take_waiting();
        let started = Instant::now();
        let mut tx = self.pool.begin_with(BEGIN_PASS).await?;
        let rows = claim(&mut tx, self.settings.batch_size).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let claimed = Instant::now();
        if let Some(woken) = woken {
            self.stats.relay_stage("woken", woken);
        }
        self.stats.relay_stage("claim", claimed - started);
        let outcomes = self.publish(&rows).await;
        let published = Instant::now();
        self.stats.relay_stage("publish", published - claimed);
        let batches = self.batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.settings.crash_after_batches.is_some_and(|limit| batches >= limit) {
            eprintln!("fault injection: relay aborting after publishing batch {batches}, before marking it sent");
            std::process::abort();
        }
        record(&mut tx, &outcomes, &self.settings).await?;
        tx.commit().await?;
        self.stats.relay_stage("mark", published.elapsed());
        let acked = outcomes.iter().filter(|outcome| matches!(outcome, PublishOutcome::Acked { .. })).count() as u64;
        self.stats.add_published(acked);
        self.stats.add_publish_failures(outcomes.len() as u64 - acked);
        Ok(rows.len())
    }

    /// Publishes claimed rows and waits for every ack (or failure). Sends them all first, in
    /// order, so the stream stores them in claim order, then awaits the acks together.
    pub async fn publish(&self, rows: &[ClaimedRow]) -> Vec<PublishOutcome> {
        let mut sent: Vec<(&ClaimedRow, Result<PublishAckFuture, String>)> = Vec::with_capacity(rows.len());
        for row in rows {
            let message = publish_message(row, self.exchange.as_ref());
            let result = self.js.send_publish(row.subject.clone(), message).await.map_err(|error| error.to_string());
            sent.push((row, result));
        }
        join_all(sent.into_iter().map(|(row, result)| async move {
            let acked = match result {
                Ok(ack_future) => ack_future.await.map_err(|error| error.to_string()),
                Err(error) => Err(error),
            };
            match acked {
                Ok(ack) => PublishOutcome::Acked { id: row.id, stream_sequence: ack.sequence },
                Err(error) => PublishOutcome::Failed { id: row.id, attempts: row.attempts + 1, error },
            }
        }))
        .await
    }

    async fn delete_sent(&self) -> sqlx::Result<u64> {
        let result = sqlx::query!(
            "DELETE FROM outbox WHERE sent_at < clock_timestamp() - make_interval(secs => $1)",
            self.settings.retention.as_secs_f64(),
        )
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}

fn publish_message(row: &ClaimedRow, exchange: Option<&Exchange>) -> jetstream::message::PublishMessage {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(signed) = exchange.and_then(|exchange| exchange.sign(&row.subject, &row.envelope)) {
        for (name, value) in signed {
            headers.insert(name, value.as_str());
        }
    }
    if let Ok(envelope) = nol_events::EventEnvelope::decode(row.envelope.as_slice()) {
        headers.insert(headers::EVENT_TYPE, envelope.event_type.as_str());
        headers.insert(headers::SCHEMA_VERSION, envelope.schema_version.to_string().as_str());
        for (key, value) in &envelope.trace_context {
            headers.insert(key.as_str(), value.as_str());
        }
    }
    jetstream::message::PublishMessage::build()
        .headers(headers)
        .message_id(row.message_id())
        .payload(row.envelope.clone().into())
}

/// Claims up to `limit` due, unsent rows; other relays skip them until this transaction ends.
pub async fn claim(tx: &mut Transaction<'_, Postgres>, limit: i64) -> sqlx::Result<Vec<ClaimedRow>> {
    sqlx::query_as!(
        ClaimedRow,
        "SELECT id, subject, envelope, attempts, generation FROM outbox
          WHERE sent_at IS NULL AND next_attempt_at <= clock_timestamp()
          ORDER BY next_attempt_at, created_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED",
        limit,
    )
    .fetch_all(&mut **tx)
    .await
}

/// Marks acked rows sent and schedules failed rows for a retry.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[PublishOutcome],
    settings: &RelaySettings,
) -> sqlx::Result<()> {
    let mut acked_ids = Vec::new();
    let mut acked_sequences = Vec::new();
    let mut failed_ids = Vec::new();
    let mut failed_errors = Vec::new();
    let mut failed_delays = Vec::new();
    for outcome in outcomes {
        match outcome {
            PublishOutcome::Acked { id, stream_sequence } => {
                acked_ids.push(*id);
                acked_sequences.push(*stream_sequence as i64);
            }
            PublishOutcome::Failed { id, attempts, error } => {
                failed_ids.push(*id);
                failed_errors.push(error.chars().take(500).collect::<String>());
                let delay = backoff(settings.min_backoff, settings.max_backoff, *attempts as u32);
                failed_delays.push(delay.as_millis() as i64);
            }
        }
    }
    if !acked_ids.is_empty() {
        sqlx::query!(
            "UPDATE outbox SET sent_at = clock_timestamp(), stream_sequence = s.seq,
                    attempts = outbox.attempts + 1, last_error = NULL
               FROM unnest($1::uuid[], $2::int8[]) AS s(id, seq)
              WHERE outbox.id = s.id",
            &acked_ids,
            &acked_sequences,
        )
        .execute(&mut **tx)
        .await?;
    }
    if !failed_ids.is_empty() {
        let parked = sqlx::query!(
            "UPDATE outbox SET attempts = outbox.attempts + 1, last_error = s.error,
                    next_attempt_at = CASE WHEN outbox.attempts + 1 >= $4 THEN 'infinity'::timestamptz
                                           ELSE clock_timestamp() + make_interval(secs => s.delay_ms / 1000.0) END
               FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS s(id, error, delay_ms)
              WHERE outbox.id = s.id
             RETURNING outbox.id, outbox.subject, outbox.attempts, outbox.last_error,
                       outbox.next_attempt_at = 'infinity' AS \"parked!\"",
            &failed_ids,
            &failed_errors,
            &failed_delays,
            settings.max_attempts,
        )
        .fetch_all(&mut **tx)
        .await?;
        for row in parked.iter().filter(|row| row.parked) {
            tracing::error!(
                alarm = "outbox_parked",
                event_id = %row.id,
                subject = %row.subject,
                attempts = row.attempts,
                last_error = row.last_error.as_deref().unwrap_or_default(),
                "ALARM: an event could not be published and is parked in the outbox"
            );
        }
    }
    Ok(())
}

/// Exponential backoff with jitter: `min * 2^(attempt-1)`, at most `max`, then ±20%.
pub fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let base = min.saturating_mul(1u32 << exponent).min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    base.mul_f64(jitter)
}
