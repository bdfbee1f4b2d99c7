use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Counters of one process's backbone work, for metrics and the fault suite's figures.
#[derive(Debug, Default, Clone)]
pub struct BackboneStats {
    inner: Arc<Counters>,
    stages: StageTimings,
}

/// A stage label: `[("stage", name)]`.
pub type StageLabel = [(&'static str, &'static str); 1];

/// Histograms of stage timings, keyed by stage.
pub type StageFamily = Family<StageLabel, Histogram, fn() -> Histogram>;

/// How long each stage of the relay's passes and the consumer's batches took: where an event's
/// time goes between one service's commit and the next one's (`/metrics`:
/// `nol_relay_stage_seconds`, `nol_consumer_stage_seconds`; the backbone bench prints them).
///
/// Relay stages, once a pass: `woken` (from the first commit that woke it to the pass starting),
/// `claim` (its transaction begun and the due rows claimed), `publish` (sent until the last ack),
/// `mark` (the outcomes recorded and committed). Consumer stages, once a batch: `waited` (the
/// batch's first message from its stream's store time until the consumer had it), `begin`,
/// `apply` (the inbox records, the handler's work and the batch's own work), `commit`, `ack`.
#[derive(Debug, Clone)]
pub struct StageTimings {
    relay: StageFamily,
    consumer: StageFamily,
}

fn stage_histogram() -> Histogram {
    // 50 µs to about 3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Default for StageTimings {
    fn default() -> Self {
        StageTimings {
            relay: Family::new_with_constructor(stage_histogram),
            consumer: Family::new_with_constructor(stage_histogram),
        }
    }
}

impl StageTimings {
    /// The relay's stages, to register with a metrics registry (clones share the counts).
    pub fn relay(&self) -> &StageFamily {
        &self.relay
    }

    /// The consumer's stages.
    pub fn consumer(&self) -> &StageFamily {
        &self.consumer
    }
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    publish_failures: AtomicU64,
    applied: AtomicU64,
    duplicates: AtomicU64,
    dead_letters: AtomicU64,
    redelivered: AtomicU64,
    exchange_refused: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Outbox rows acknowledged by a stream.
    pub published: u64,
    /// Publish attempts that failed (and will be retried).
    pub publish_failures: u64,
    /// Events whose effect a consumer committed.
    pub applied: u64,
    /// Deliveries dropped by an inbox because the event was already applied.
    pub duplicates: u64,
    /// Messages parked as dead letters.
    pub dead_letters: u64,
    /// Deliveries that were not the first for their message.
    pub redelivered: u64,
    /// Cross-province messages refused by the signature check (each also a dead letter).
    pub exchange_refused: u64,
}

impl BackboneStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let counters = &self.inner;
        StatsSnapshot {
            published: counters.published.load(Ordering::Relaxed),
            publish_failures: counters.publish_failures.load(Ordering::Relaxed),
            applied: counters.applied.load(Ordering::Relaxed),
            duplicates: counters.duplicates.load(Ordering::Relaxed),
            dead_letters: counters.dead_letters.load(Ordering::Relaxed),
            redelivered: counters.redelivered.load(Ordering::Relaxed),
            exchange_refused: counters.exchange_refused.load(Ordering::Relaxed),
        }
    }

    /// The stage timings, for metrics.
    pub fn stages(&self) -> &StageTimings {
        &self.stages
    }

    pub(crate) fn relay_stage(&self, stage: &'static str, took: Duration) {
        self.stages.relay.get_or_create(&[("stage", stage)]).observe(took.as_secs_f64());
    }

    pub(crate) fn consumer_stage(&self, stage: &'static str, took: Duration) {
        self.stages.consumer.get_or_create(&[("stage", stage)]).observe(took.as_secs_f64());
    }

    pub(crate) fn add_published(&self, count: u64) {
        self.inner.published.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_publish_failures(&self, count: u64) {
        self.inner.publish_failures.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_applied(&self, count: u64) {
        self.inner.applied.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_duplicates(&self, count: u64) {
        self.inner.duplicates.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_dead_letters(&self, count: u64) {
        self.inner.dead_letters.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_exchange_refused(&self, count: u64) {
        self.inner.exchange_refused.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn add_redelivered(&self, count: u64) {
        self.inner.redelivered.fetch_add(count, Ordering::Relaxed);
    }
}
