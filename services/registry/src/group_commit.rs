//! `CreatePupil`'s group commit (issue 13, the write path).
//!
//! A registration is one change with one event and one audit entry, and the three commit in one
//! transaction (no dual write). Each call used to have a transaction of its own: BEGIN, the
//! insert, the outbox row with the audit entry, COMMIT — four round trips and a WAL flush for each
//! pupil, on a machine where the write path is bound by CPU (docs/BENCHMARKS.md). Now the
//! registrations that arrive while a transaction is under way wait for the next one, and that one
//! writes them all: one insert of their pupils, one statement of their events and audit entries
//! (each entry its own caller's, in its own trace), one commit. Nothing waits on purpose: a lone
//! call is written at once, alone; a group is whatever queued meanwhile, up to [`MAX_GROUP`].
//!
//! What holds, as before: each pupil commits together with its event and its entry, and a caller
//! hears "registered" only after that commit. A child registered already (before, or by an earlier
//! registration of the same group) is skipped by the insert and written nowhere; its caller is told
//! which record holds the child. When a group's transaction fails, each of its registrations is
//! tried again alone, so a bad one fails its own call only. A caller that went away before its
//! group was formed is not written; one that goes away later may find its pupil registered, as a
//! caller whose answer is lost after the commit always could (a retry is told where the child is).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use nol_backbone::outbox::{OutboxRow, RelayWake};
use nol_region::RegionCode;
use nol_runtime::audit::{self, CallerEntry};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::domain::pupil::ValidPupil;
use crate::store::pupils::{self, NewPupilRecord, PupilRecord};

/// The most registrations one transaction writes.
pub const MAX_GROUP: usize = 64;
/// Transactions under way at once: while one commits, the next group forms and is written.
const WRITERS: usize = 2;
/// Registrations that may wait for a writer; a caller beyond that waits to queue.
const QUEUE: usize = 1024;

/// A pupil to register, checked and encrypted, with its event and its audit entry.
#[derive(Debug)]
pub struct Registration {
    pub id: Uuid,
    pub pupil: ValidPupil,
    pub enrollment_region: RegionCode,
    pub residence_region: RegionCode,
    pub migrant: bool,
    pub resident_id_cipher: Option<Vec<u8>>,
    pub resident_id_index: Option<Vec<u8>>,
    pub resident_id_masked: Option<String>,
    pub provisional_key: Option<Vec<u8>>,
    pub created_by: String,
    pub school_name: String,
    pub event: OutboxRow,
    pub entry: CallerEntry,
}

impl Registration {
    fn record(&self) -> NewPupilRecord<'_> {
        NewPupilRecord {
            id: self.id,
            pupil: &self.pupil,
            enrollment_region: self.enrollment_region,
            residence_region: self.residence_region,
            migrant: self.migrant,
            resident_id_cipher: self.resident_id_cipher.as_deref(),
            resident_id_index: self.resident_id_index.as_deref(),
            resident_id_masked: self.resident_id_masked.as_deref(),
            provisional_key: self.provisional_key.as_deref(),
            created_by: &self.created_by,
        }
    }
}

/// What became of a registration.
#[derive(Debug)]
pub enum Outcome {
    /// Committed with its event and audit entry: the pupil as stored.
    Registered(Box<PupilRecord>),
    /// The child is registered already (by the resident ID's blind index or the provisional key);
    /// nothing was written.
    AlreadyRegistered(Box<Registration>),
}

type Queued = (Registration, oneshot::Sender<sqlx::Result<Outcome>>);

/// Hands registrations to the writers; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Queued>,
    pool: PgPool,
    wake: RelayWake,
}

impl Writer {
    /// Starts the writers on the current runtime; they stop when the last `Writer` is dropped.
    pub fn start(pool: PgPool, wake: RelayWake) -> Writer {
        let (queue, received) = mpsc::channel(QUEUE);
        let received = Arc::new(Mutex::new(received));
        for _ in 0..WRITERS {
            tokio::spawn(run(received.clone(), pool.clone(), wake.clone()));
        }
        Writer { queue, pool, wake }
    }

    /// Registers the pupil in the next group commit and returns once that has committed.
    pub async fn register(&self, registration: Registration) -> sqlx::Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        match self.queue.send((registration, reply)).await {
            // A writer dropped the reply without answering only if its task ended mid-way (a
            // panic, the runtime shutting down): whether the group committed is not known.
            Ok(()) => answer.await.unwrap_or(Err(sqlx::Error::WorkerCrashed)),
            // No writer runs any more: written here, alone.
            Err(mpsc::error::SendError((registration, _))) => write_alone(&self.pool, &self.wake, registration).await,
        }
    }
}

/// One writer: takes every registration queued (at least one), writes them in one transaction,
/// answers each caller; again, until the queue closes.
async fn run(received: Arc<Mutex<mpsc::Receiver<Queued>>>, pool: PgPool, wake: RelayWake) {
    loop {
        let mut group = Vec::new();
        {
            let mut received = received.lock().await;
            let Some(first) = received.recv().await else { return };
            group.push(first);
            while group.len() < MAX_GROUP {
                let Ok(next) = received.try_recv() else { break };
                group.push(next);
            }
        }
        // A caller that has gone away (its call cancelled) is not registered.
        group.retain(|(_, reply)| !reply.is_closed());
        if group.is_empty() {
            continue;
        }
        let (registrations, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let count = registrations.len();
        match write(&pool, registrations).await {
            Ok(outcomes) => {
                wake.notify();
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(Failed { error, registrations }) if count > 1 => {
                tracing::warn!(registrations = count, %error, "a group commit failed; its registrations are written one by one");
                for (reply, registration) in replies.into_iter().zip(registrations) {
                    let _ = reply.send(write_alone(&pool, &wake, registration).await);
                }
            }
            Err(Failed { error, .. }) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}

/// A group's transaction failed: nothing of it was written.
struct Failed {
    error: sqlx::Error,
    registrations: Vec<Registration>,
}

/// Writes one registration in a transaction of its own.
async fn write_alone(pool: &PgPool, wake: &RelayWake, registration: Registration) -> sqlx::Result<Outcome> {
    let outcome = write(pool, vec![registration]).await.map_err(|failed| failed.error)?.pop();
    wake.notify();
    Ok(outcome.expect("one outcome for one registration"))
}

/// Writes `registrations` in one transaction; one outcome each, in order.
async fn write(pool: &PgPool, registrations: Vec<Registration>) -> Result<Vec<Outcome>, Failed> {
    match write_group(pool, &registrations).await {
        Ok(inserted) => Ok(registrations
            .into_iter()
            .map(|registration| match inserted.get(&registration.id) {
                Some(created_at) => {
                    Outcome::Registered(Box::new(registration.record().stored(&registration.school_name, *created_at)))
                }
                None => Outcome::AlreadyRegistered(Box::new(registration)),
            })
            .collect()),
        Err(error) => Err(Failed { error, registrations }),
    }
}

/// The transaction: the pupils, then the events and audit entries of those inserted, then the
/// commit. Returns when each inserted pupil was stored.
async fn write_group(pool: &PgPool, registrations: &[Registration]) -> sqlx::Result<HashMap<Uuid, DateTime<Utc>>> {
    let records: Vec<NewPupilRecord<'_>> = registrations.iter().map(Registration::record).collect();
    // Its statements take arrays and keys, where PostgreSQL's generic plans are as good as
    // planning them again for every group (the services' connections do that by default).
    let mut tx = pool.begin_with(nol_backbone::BEGIN_BATCH).await?;
    let inserted: HashMap<Uuid, DateTime<Utc>> = pupils::insert_many(&mut tx, &records).await?.into_iter().collect();
    let (events, entries): (Vec<OutboxRow>, Vec<CallerEntry>) = registrations
        .iter()
        .filter(|registration| inserted.contains_key(&registration.id))
        .map(|registration| (registration.event.clone(), registration.entry.clone()))
        .unzip();
    audit::emit_and_record_each(&mut tx, &events, "pupil.create", "pupil", &entries).await?;
    tx.commit().await?;
    Ok(inserted)
}
