//! Durable pull consumers with an inbox.
//!
//! A consumer takes what has arrived (up to a batch), applies every message in one transaction,
//! each under its own savepoint, records each event id in the inbox with its effect, commits, and
//! only then acks. A redelivered message finds its id in the inbox and is acked without effect. A
//! message that can never be processed (undecodable, unknown version, a rule it breaks) is parked
//! as a dead letter with the reason and terminated, and the stream keeps flowing. A transient
//! failure (PostgreSQL down) rolls the batch back and naks it for redelivery. Every message ends:
//! an error PostgreSQL gives for the data itself (SQLSTATE class 22, data exception, or 23,
//! integrity constraint violation) is tried once more on its own and then parked, not retried
//! forever with its batch; and a message delivered `max_deliveries` times that still fails is
//! parked with its last error.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{FutureExt, StreamExt};
use nol_events::{EventEnvelope, UndecodableEvent};
use sqlx::{Acquire, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::BackboneStats;
use crate::exchange::{self, Exchange, ExchangeRefusal};
use crate::outbox::RelayWake;
use crate::relay::backoff;

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retrying cannot help: park the message as a dead letter.
    #[error("{0}")]
    Permanent(String),
    /// Retrying may help (the database is down): roll back and redeliver.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl From<UndecodableEvent> for HandlerError {
    fn from(error: UndecodableEvent) -> Self {
        HandlerError::Permanent(error.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Transient(error.into())
    }
}

/// Applies one event inside the consumer's transaction. It may write the service's own tables and
/// its outbox through `conn`; all of it commits with the inbox record, or none of it does.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;

    /// Called instead of `handle` for an event already applied (a redelivery, or a sender's
    /// deliberate re-send because our answer never reached it). The effect must not be applied
    /// again; a handler may answer again (a receipt, say). Does nothing by default.
    fn handle_duplicate<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        _envelope: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        async { Ok(()) }
    }

    /// Called before a batch is applied (and again when a failed batch is applied anew): a
    /// handler that collects per batch starts from nothing. Does nothing by default.
    fn batch_begin(&self) {}

    /// Called after a batch committed, before it is acked: to tell whoever waits in this process
    /// for what the batch may have changed (an `AcceptHandoff` call waiting for its decision).
    /// Does nothing by default.
    fn batch_committed(&self) {}

    /// Called once per batch in its transaction, after every message was handled and before the
    /// commit, with the events applied in it (not the duplicates): for work a whole batch needs
    /// once, not once per event (a notification, counts summed over the batch). A failure rolls
    /// the batch back. Does nothing by default.
    fn batch_applied<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        _applied: &'a [&'a EventEnvelope],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        async { Ok(()) }
    }
}

/// What a consumer listens to and how.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name; unique per stream, e.g. the service's name.
    pub durable_name: String,
    /// Subjects to receive (NATS ≥ 2.10 `filter_subjects`).
    pub filter_subjects: Vec<String>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Messages applied per transaction at most.
    pub max_batch: usize,
    /// A message that still fails after this many deliveries is parked as a dead letter with its
    /// last error (`NOL_MAX_DELIVERIES`). Failures while the database is unreachable cannot park
    /// anything, so an outage only delays.
    pub max_deliveries: u64,
    /// Fault injection for the fault suite: abort the process after this many batches were
    /// committed, before they are acked (`NOL_FAULT_CONSUMER_CRASH_AFTER`). Never set otherwise.
    pub crash_after_batches: Option<u64>,
}

/// What happened to one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Applied,
    Duplicate,
    DeadLetter(String),
}

/// A durable consumer of one stream, applying events with `handler`.
pub struct Consumer<H> {
    pool: PgPool,
    stream: jetstream::stream::Stream,
    spec: ConsumerSpec,
    handler: H,
    stats: BackboneStats,
    wake: RelayWake,
    exchange: Option<Exchange>,
}

impl<H: EventHandler> Consumer<H> {
    /// A consumer applying events with `handler`; `wake` is told after each commit, since a handler
    /// may have written to the service's outbox.
    pub fn new(
        pool: PgPool,
        stream: jetstream::stream::Stream,
        spec: ConsumerSpec,
        handler: H,
        stats: BackboneStats,
        wake: RelayWake,
    ) -> Self {
        Consumer { pool, stream, spec, handler, stats, wake, exchange: None }
    }

    /// Verifies cross-province messages against `exchange`'s peers. Without it, every message on
    /// a cross-province subject is refused.
    pub fn with_exchange(mut self, exchange: Exchange) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// The exchange check of one message (`Ok` for a province's own subjects).
    fn check_exchange(
        &self,
        message: &jetstream::Message,
        envelope: Option<&EventEnvelope>,
    ) -> Result<(), ExchangeRefusal> {
        match &self.exchange {
            Some(exchange) => {
                exchange.verify(message.subject.as_str(), message.headers.as_ref(), &message.payload, envelope)
            }
            None if exchange::cross_province(message.subject.as_str()).is_some() => Err(ExchangeRefusal::NotConfigured),
            None => Ok(()),
        }
    }

    /// Creates (or updates) the durable consumer on the server.
    pub async fn bind(&self) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
        let config = pull::Config {
            durable_name: Some(self.spec.durable_name.clone()),
            filter_subjects: self.spec.filter_subjects.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            max_deliver: -1,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        Ok(self.stream.create_consumer(config).await?)
    }

    /// Runs until `shutdown`, surviving NATS and PostgreSQL outages; logs once per change of state.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut healthy = true;
        let mut failures_in_a_row = 0u32;
        let mut committed_batches = 0u64;
        'connect: loop {
            let messages = match self.bind().await {
                Ok(consumer) => {
                    consumer
                        .stream()
                        .max_messages_per_batch(self.spec.max_batch)
                        .heartbeat(Duration::from_secs(5))
                        .expires(Duration::from_secs(30))
                        .messages()
                        .await
                }
                Err(error) => Err(async_nats::jetstream::consumer::StreamError::with_source(
                    async_nats::jetstream::consumer::StreamErrorKind::Other,
                    error.to_string(),
                )),
            };
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(error) => {
                    if healthy {
                        tracing::warn!(consumer = %self.spec.durable_name, error = %error, "consumer cannot subscribe; retrying with backoff");
                        healthy = false;
                    }
                    failures_in_a_row = failures_in_a_row.saturating_add(1);
                    let delay = backoff(Duration::from_millis(200), Duration::from_secs(5), failures_in_a_row);
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'connect,
                        _ = tokio::time::sleep(delay) => continue 'connect,
                    }
                }
            };
            loop {
                let first = tokio::select! {
                    _ = shutdown.cancelled() => break 'connect,
                    next = messages.next() => next,
                };
                let first = match first {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        tracing::debug!(consumer = %self.spec.durable_name, error = %error, "consumer stream error; resubscribing");
                        continue 'connect;
                    }
                    None => continue 'connect,
                };
                if let Some(waited) = waited_in_stream(&first) {
                    self.stats.consumer_stage("waited", waited);
                }
                let mut batch = vec![first];
                while batch.len() < self.spec.max_batch {
                    match messages.next().now_or_never() {
                        Some(Some(Ok(message))) => batch.push(message),
                        _ => break,
                    }
                }
                match self.apply(&batch).await {
                    Ok(dispositions) => {
                        committed_batches += 1;
                        if self.spec.crash_after_batches.is_some_and(|limit| committed_batches >= limit) {
                            eprintln!(
                                "fault injection: consumer aborting after committing batch {committed_batches}, before acking it"
                            );
                            std::process::abort();
                        }
                        if !healthy {
                            tracing::info!(consumer = %self.spec.durable_name, "consumer recovered");
                            healthy = true;
                        }
                        failures_in_a_row = 0;
                        let acking = Instant::now();
                        acknowledge(&batch, &dispositions).await;
                        self.stats.consumer_stage("ack", acking.elapsed());
                    }
                    Err(error) => {
                        if healthy {
                            tracing::warn!(consumer = %self.spec.durable_name, error = %error, "consumer cannot apply events; redelivering with backoff");
                            healthy = false;
                        }
                        failures_in_a_row = failures_in_a_row.saturating_add(1);
                        let delay = backoff(Duration::from_millis(200), Duration::from_secs(5), failures_in_a_row);
                        for message in &batch {
                            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => break 'connect,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        }
        tracing::debug!(consumer = %self.spec.durable_name, "consumer stopped");
    }

    /// The handler's once-per-batch work. It is part of the batch's effect: if it fails, the
    /// batch is rolled back and delivered again.
    async fn batch_applied(&self, conn: &mut PgConnection, applied: &[&EventEnvelope]) -> anyhow::Result<()> {
        if applied.is_empty() {
            return Ok(());
        }
        match self.handler.batch_applied(conn, applied).await {
            Ok(()) => Ok(()),
            Err(HandlerError::Transient(error)) => Err(error),
            Err(HandlerError::Permanent(reason)) => Err(anyhow::anyhow!("the batch's own work failed: {reason}")),
        }
    }

    /// Applies a batch in one transaction and commits it; does not ack. Returns each message's
    /// disposition, in order. The common case takes one statement for the whole batch's inbox
    /// records; a batch holding a message that cannot be applied is redone message by message,
    /// each under a savepoint, so that one message is parked and the rest applied.
    pub async fn apply(&self, batch: &[jetstream::Message]) -> anyhow::Result<Vec<Disposition>> {
        for message in batch {
            if message.info().is_ok_and(|info| info.delivered > 1) {
                self.stats.add_redelivered(1);
            }
        }
        let dispositions = match self.apply_batch(batch).await? {
            Some(dispositions) => dispositions,
            None => self.apply_one_by_one(batch).await?,
        };
        self.wake.notify();
        self.handler.batch_committed();
        for disposition in &dispositions {
            match disposition {
                Disposition::Applied => self.stats.add_applied(1),
                Disposition::Duplicate => self.stats.add_duplicates(1),
                Disposition::DeadLetter(_) => self.stats.add_dead_letters(1),
            }
        }
        Ok(dispositions)
    }

    /// The whole batch in one go; `None` when some message needs the careful path.
    async fn apply_batch(&self, batch: &[jetstream::Message]) -> anyhow::Result<Option<Vec<Disposition>>> {
        // A message delivered before as often as allowed goes the careful way, where it can end.
        if batch.iter().any(|message| self.delivered(message) >= self.spec.max_deliveries) {
            return Ok(None);
        }
        self.handler.batch_begin();
        let mut envelopes = Vec::with_capacity(batch.len());
        for message in batch {
            match nol_events::decode_envelope(&message.payload) {
                Ok(envelope) if self.check_exchange(message, Some(&envelope)).is_ok() => envelopes.push(envelope),
                _ => return Ok(None),
            }
        }
        let ids: Vec<Uuid> =
            envelopes.iter().map(|envelope| Uuid::parse_str(&envelope.event_id)).collect::<Result<_, _>>()?;
        let types: Vec<&str> = envelopes.iter().map(|envelope| envelope.event_type.as_str()).collect();
        let beginning = Instant::now();
        let mut tx = self.pool.begin_with(crate::BEGIN_BATCH).await?;
        let applying = Instant::now();
        let mut fresh: std::collections::HashSet<Uuid> = sqlx::query_scalar!(
            "INSERT INTO inbox (consumer, event_id, event_type, outcome)
             SELECT $1, id, event_type, 'applied' FROM unnest($2::uuid[], $3::text[]) AS t(id, event_type)
             ON CONFLICT DO NOTHING
             RETURNING event_id",
            &self.spec.durable_name,
            &ids,
            &types as &[&str],
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut dispositions = Vec::with_capacity(batch.len());
        for (envelope, id) in envelopes.iter().zip(&ids) {
            // The first copy of an event in this batch is fresh; any other copy is a duplicate.
            let is_fresh = fresh.remove(id);
            let span = consume_span(&self.spec.durable_name, envelope);
            let result = async {
                if is_fresh {
                    self.handler.handle(&mut tx, envelope).await
                } else {
                    self.handler.handle_duplicate(&mut tx, envelope).await
                }
            }
            .instrument(span)
            .await;
            match result {
                Ok(()) => {
                    dispositions.push(if is_fresh { Disposition::Applied } else { Disposition::Duplicate });
                }
                // The data itself is wrong: the careful path tries it alone, then parks it.
                Err(HandlerError::Transient(error)) if data_error(&error).is_some() => return Ok(None),
                Err(HandlerError::Transient(error)) => return Err(error),
                Err(HandlerError::Permanent(_)) => return Ok(None),
            }
        }
        let applied: Vec<&EventEnvelope> = envelopes
            .iter()
            .zip(&dispositions)
            .filter(|(_, disposition)| matches!(disposition, Disposition::Applied))
            .map(|(envelope, _)| envelope)
            .collect();
        self.batch_applied(&mut tx, &applied).await?;
        let committing = Instant::now();
        tx.commit().await?;
        self.stats.consumer_stage("begin", applying - beginning);
        self.stats.consumer_stage("apply", committing - applying);
        self.stats.consumer_stage("commit", committing.elapsed());
        Ok(Some(dispositions))
    }

    /// Message by message, each under a savepoint: a message that cannot be applied is parked
    /// as a dead letter and the others are applied.
    async fn apply_one_by_one(&self, batch: &[jetstream::Message]) -> anyhow::Result<Vec<Disposition>> {
        self.handler.batch_begin();
        let mut tx = self.pool.begin_with(crate::BEGIN_BATCH).await?;
        let mut dispositions = Vec::with_capacity(batch.len());
        for message in batch {
            dispositions.push(self.apply_one(&mut tx, message).await?);
        }
        let envelopes: Vec<EventEnvelope> = batch
            .iter()
            .zip(&dispositions)
            .filter(|(_, disposition)| matches!(disposition, Disposition::Applied))
            .filter_map(|(message, _)| nol_events::decode_envelope(&message.payload).ok())
            .collect();
        let applied: Vec<&EventEnvelope> = envelopes.iter().collect();
        self.batch_applied(&mut tx, &applied).await?;
        tx.commit().await?;
        Ok(dispositions)
    }

    async fn apply_one(&self, conn: &mut PgConnection, message: &jetstream::Message) -> anyhow::Result<Disposition> {
        let decoded = nol_events::decode_envelope(&message.payload);
        if let Err(refusal) = self.check_exchange(message, decoded.as_ref().ok()) {
            exchange::alarm(&self.spec.durable_name, message.subject.as_str(), &refusal);
            self.stats.add_exchange_refused(1);
            // Not recorded in the inbox: a forgery must not make the genuine event with its id
            // look like a duplicate.
            self.park(conn, message, decoded.as_ref().ok(), &refusal.to_string(), false).await?;
            return Ok(Disposition::DeadLetter(refusal.to_string()));
        }
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(error) => {
                self.park(conn, message, None, &error.to_string(), true).await?;
                return Ok(Disposition::DeadLetter(error.to_string()));
            }
        };
        let event_id = Uuid::parse_str(&envelope.event_id)?;
        let span = consume_span(&self.spec.durable_name, &envelope);
        async {
            let mut savepoint = conn.begin().await?;
            let inserted = sqlx::query!(
                "INSERT INTO inbox (consumer, event_id, event_type, outcome) VALUES ($1, $2, $3, 'applied')
                 ON CONFLICT DO NOTHING",
                &self.spec.durable_name,
                event_id,
                &envelope.event_type,
            )
            .execute(&mut *savepoint)
            .await?
            .rows_affected();
            if inserted == 0 {
                tracing::debug!("duplicate delivery dropped by the inbox");
                match self.handler.handle_duplicate(&mut savepoint, &envelope).await {
                    Ok(()) => savepoint.commit().await?,
                    Err(HandlerError::Transient(error)) => return Err(error),
                    Err(HandlerError::Permanent(reason)) => {
                        savepoint.rollback().await?;
                        tracing::warn!(reason = %reason, "answering a duplicate failed");
                    }
                }
                return Ok(Disposition::Duplicate);
            }
            let delivered = self.delivered(message);
            let outcome = match self.handler.handle(&mut savepoint, &envelope).await {
                Ok(()) => {
                    savepoint.commit().await?;
                    return Ok(Disposition::Applied);
                }
                Err(HandlerError::Permanent(reason)) => reason,
                Err(HandlerError::Transient(error)) => match data_error(&error) {
                    Some(state) => format!("the data cannot be stored (SQLSTATE {state}): {error}"),
                    None if delivered >= self.spec.max_deliveries => {
                        format!("still failing after {delivered} deliveries: {error}")
                    }
                    None => return Err(error),
                },
            };
            savepoint.rollback().await?;
            tracing::warn!(reason = %outcome, "event parked as a dead letter");
            self.park(conn, message, Some(&envelope), &outcome, true).await?;
            Ok(Disposition::DeadLetter(outcome))
        }
        .instrument(span)
        .await
    }

    /// How many times the server has delivered `message` (1 the first time).
    fn delivered(&self, message: &jetstream::Message) -> u64 {
        message.info().map(|info| info.delivered.max(1) as u64).unwrap_or(1)
    }

    async fn park(
        &self,
        conn: &mut PgConnection,
        message: &jetstream::Message,
        envelope: Option<&EventEnvelope>,
        reason: &str,
        record_in_inbox: bool,
    ) -> sqlx::Result<()> {
        let sequence = message.info().map(|info| info.stream_sequence as i64).unwrap_or(0);
        sqlx::query!(
            "INSERT INTO dead_letter (consumer, subject, stream_sequence, event_id, event_type, reason, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &self.spec.durable_name,
            message.subject.as_str(),
            sequence,
            envelope.map(|envelope| envelope.event_id.as_str()),
            envelope.map(|envelope| envelope.event_type.as_str()),
            reason,
            message.payload.as_ref(),
        )
        .execute(&mut *conn)
        .await?;
        if let Some(event_id) =
            envelope.filter(|_| record_in_inbox).and_then(|envelope| Uuid::parse_str(&envelope.event_id).ok())
        {
            sqlx::query!(
                "INSERT INTO inbox (consumer, event_id, event_type, outcome) VALUES ($1, $2, $3, 'dead_letter')
                 ON CONFLICT DO NOTHING",
                &self.spec.durable_name,
                event_id,
                envelope.map(|envelope| envelope.event_type.as_str()).unwrap_or_default(),
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// The SQLSTATE of an error PostgreSQL gave for the data itself — class 22 (data exception) or 23
/// (integrity constraint violation) — which no retry can mend; `None` for anything else.
fn data_error(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        let code = cause.downcast_ref::<sqlx::Error>()?.as_database_error()?.code()?.into_owned();
        (code.starts_with("22") || code.starts_with("23")).then_some(code)
    })
}

/// The span of one event's processing, a child of the trace the event was produced in.
fn consume_span(consumer: &str, envelope: &EventEnvelope) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        consumer = %consumer,
        event_type = %envelope.event_type,
        event_id = %envelope.event_id,
    );
    nol_telemetry::set_parent_from_map(&span, &envelope.trace_context);
    span
}

/// How long a message sat in its stream before the consumer had it (the stream's store time and
/// this machine's clock; `None` if the clocks disagree).
fn waited_in_stream(message: &jetstream::Message) -> Option<Duration> {
    let stored = message.info().ok()?.published.unix_timestamp_nanos();
    let now = chrono::Utc::now().timestamp_nanos_opt()? as i128;
    u64::try_from(now - stored).ok().map(Duration::from_nanos)
}

/// Acks applied and duplicate messages, terminates dead letters (their record is committed).
pub async fn acknowledge(batch: &[jetstream::Message], dispositions: &[Disposition]) {
    for (message, disposition) in batch.iter().zip(dispositions) {
        let kind = match disposition {
            Disposition::DeadLetter(_) => AckKind::Term,
            Disposition::Applied | Disposition::Duplicate => AckKind::Ack,
        };
        if let Err(error) = message.ack_with(kind).await {
            // The effect is committed; a lost ack only means a redelivery the inbox will drop.
            tracing::debug!(error = %error, "ack failed");
        }
    }
}

/// How far a durable consumer is behind: messages not yet delivered, and delivered but unacked.
pub async fn lag(stream: &jetstream::stream::Stream, durable_name: &str) -> anyhow::Result<(u64, u64)> {
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer(durable_name).await.map_err(|error| anyhow::anyhow!("{error}"))?;
    let info = consumer.info().await.map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok((info.num_pending, info.num_ack_pending as u64))
}

/// How many dead letters this service holds.
pub async fn dead_letter_count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM dead_letter"#).fetch_one(pool).await
}

/// A dead letter, as operators see it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: i64,
    pub consumer: String,
    pub subject: String,
    pub stream_sequence: i64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub reason: String,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

/// The newest dead letters of this service.
pub async fn dead_letters(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
    sqlx::query_as!(
        DeadLetter,
        "SELECT id, consumer, subject, stream_sequence, event_id, event_type, reason, parked_at
           FROM dead_letter ORDER BY id DESC LIMIT $1",
        limit,
    )
    .fetch_all(pool)
    .await
}
