use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one process's backbone work, for metrics and the fault suite's figures.
#[derive(Debug, Default, Clone)]
pub struct BackboneStats {
    inner: Arc<Counters>,
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
