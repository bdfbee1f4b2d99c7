//! The audit log: who read or changed which child's record, from which region, in which trace.
//!
//! The log is sixteen hash chains kept by the database (migrations `0002_audit_chain.sql`,
//! `0004_audit_chains.sql`): each entry has a gapless `seq` in its chain and `hash` = SHA-256
//! over a canonical encoding of the entry and the previous entry's hash; triggers refuse UPDATE, DELETE and TRUNCATE but for the retention's
//! deletion of the oldest entries. [`verify`] recomputes the chain here, in Rust, so a check does
//! not trust the database's own functions.

pub mod verify;

use chrono::{DateTime, Utc};
use nol_auth::Caller;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

/// The hash an empty chain starts from (and the anchor while nothing was pruned).
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The domain tag in front of every entry's encoding.
const HASH_TAG: &[u8] = b"nol-audit-v1";

/// Records one access. Call in the transaction of the change, or right after a read.
///
/// Appending takes the row lock of one chain's head (the first of the schema's sixteen that no
/// other transaction holds) until the transaction ends, in the same round trip as the insert:
/// call it last in a transaction, so the chain is held for no more than the commit.
pub async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    resource_type: &str,
    resource_ids: &[String],
) -> sqlx::Result<()> {
    if resource_ids.is_empty() {
        return Ok(());
    }
    let trace_id = nol_telemetry::current_trace_id();
    let entry = Entry {
        actor: &caller.subject,
        role: caller.role.as_str(),
        region: caller.region.as_str(),
        action,
        resource_type,
        resource_ids,
        trace_id: trace_id.as_deref(),
    };
    append(conn, &entry, None).await?;
    Ok(())
}

/// Records a read on a connection of its own, back in the pool before this returns: a read that
/// then takes a connection for its answer never holds two at once. (Calls holding one and waiting
/// for another wait on one another once as many run at once as the pool holds.)
pub async fn record_read(
    pool: &PgPool,
    caller: &Caller,
    action: &str,
    resource_type: &str,
    resource_ids: &[String],
) -> sqlx::Result<()> {
    if resource_ids.is_empty() {
        return Ok(());
    }
    record(&mut *pool.acquire().await?, caller, action, resource_type, resource_ids).await
}

/// One caller's entry in a group commit: who, from where, in which trace, which record.
#[derive(Debug, Clone)]
pub struct CallerEntry {
    pub actor: String,
    pub role: String,
    pub region: String,
    pub resource_id: String,
    pub trace_id: Option<String>,
}

impl CallerEntry {
    /// `caller`'s entry for `resource_id`, in the current trace.
    pub fn of(caller: &Caller, resource_id: String) -> CallerEntry {
        CallerEntry {
            actor: caller.subject.clone(),
            role: caller.role.as_str().to_owned(),
            region: caller.region.as_str().to_owned(),
            resource_id,
            trace_id: nol_telemetry::current_trace_id(),
        }
    }
}

/// Adds events to the outbox and records `entries[i]` for `events[i]`, each entry with its own
/// caller and trace, in one statement and one round trip (`audit_append_each`, migration
/// `0006_audit_append_each.sql`): for a change, or several callers' changes committed together (a
/// group commit), with their events. Call last in the transaction, as [`record`].
pub async fn emit_and_record_each(
    conn: &mut PgConnection,
    events: &[nol_backbone::outbox::OutboxRow],
    action: &str,
    resource_type: &str,
    entries: &[CallerEntry],
) -> sqlx::Result<()> {
    if events.len() != entries.len() {
        return Err(sqlx::Error::Protocol(format!(
            "emit_and_record_each: {} events but {} audit entries",
            events.len(),
            entries.len()
        )));
    }
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = events.iter().map(|row| row.id).collect();
    let subjects: Vec<&str> = events.iter().map(|row| row.subject.as_str()).collect();
    let event_types: Vec<&str> = events.iter().map(|row| row.event_type.as_str()).collect();
    let envelopes: Vec<&[u8]> = events.iter().map(|row| row.envelope.as_slice()).collect();
    let actors: Vec<&str> = entries.iter().map(|entry| entry.actor.as_str()).collect();
    let roles: Vec<&str> = entries.iter().map(|entry| entry.role.as_str()).collect();
    let regions: Vec<&str> = entries.iter().map(|entry| entry.region.as_str()).collect();
    let resource_ids: Vec<&str> = entries.iter().map(|entry| entry.resource_id.as_str()).collect();
    let trace_ids: Vec<Option<&str>> = entries.iter().map(|entry| entry.trace_id.as_deref()).collect();
    sqlx::query_scalar!(
        r#"WITH queued AS (INSERT INTO outbox (id, subject, event_type, envelope)
                           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[]))
           SELECT audit_append_each($5::text[], $6::text[], $7::text[], $8, $9, $10::text[], $11::text[]) AS head"#,
        &ids,
        &subjects as &[&str],
        &event_types as &[&str],
        &envelopes as &[&[u8]],
        &actors as &[&str],
        &roles as &[&str],
        &regions as &[&str],
        action,
        resource_type,
        &resource_ids as &[&str],
        &trace_ids as &[Option<&str>],
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// What one call appends: one entry per resource id, sharing the rest.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    pub region: &'a str,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_ids: &'a [String],
    pub trace_id: Option<&'a str>,
}

/// Appends `entry` and returns the new head's seq. `at` is the time recorded (None: the
/// database's clock); only tests and imports of older logs give one.
pub async fn append(conn: &mut PgConnection, entry: &Entry<'_>, at: Option<DateTime<Utc>>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT audit_append($1, $2, $3, $4, $5, $6::text[], $7, $8) AS "head!""#,
        entry.actor,
        entry.role,
        entry.region,
        entry.action,
        entry.resource_type,
        entry.resource_ids,
        entry.trace_id,
        at,
    )
    .fetch_one(conn)
    .await
}

/// One stored entry, as the chain hashes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_role: String,
    pub actor_region: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub trace_id: Option<String>,
}

impl StoredEntry {
    /// The hash this entry should have at `seq` after `prev_hash`.
    pub fn hash_at(&self, seq: i64, prev_hash: &[u8]) -> [u8; 32] {
        entry_hash(
            seq,
            prev_hash,
            self.at,
            [
                Some(self.actor.as_str()),
                Some(self.actor_role.as_str()),
                Some(self.actor_region.as_str()),
                Some(self.action.as_str()),
                Some(self.resource_type.as_str()),
                Some(self.resource_id.as_str()),
                self.trace_id.as_deref(),
            ],
        )
    }
}

/// SHA-256 over the canonical encoding: the tag, seq (8 bytes big-endian), the previous hash, the
/// time in microseconds since 1970 UTC (8 bytes big-endian), then each text field as its UTF-8
/// length (4 bytes big-endian) and bytes, a missing one as the length 0xffffffff. Fields in order:
/// actor, role, region, action, resource type, resource id, trace id. The same as the database's
/// `audit_entry_hash`.
pub fn entry_hash(seq: i64, prev_hash: &[u8], at: DateTime<Utc>, fields: [Option<&str>; 7]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(HASH_TAG);
    hasher.update(seq.to_be_bytes());
    hasher.update(prev_hash);
    hasher.update(at.timestamp_micros().to_be_bytes());
    for field in fields {
        match field {
            Some(text) => {
                let length = u32::try_from(text.len()).unwrap_or(u32::MAX - 1);
                hasher.update(length.to_be_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update(u32::MAX.to_be_bytes()),
        }
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T08:00:00.123456Z").unwrap().with_timezone(&Utc)
    }

    const FIELDS: [Option<&str>; 7] = [
        Some("caseworker@320102"),
        Some("caseworker"),
        Some("320102"),
        Some("pupil.read"),
        Some("pupil"),
        Some("p1"),
        None,
    ];

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = entry_hash(1, &GENESIS_HASH, at(), FIELDS);
        assert_ne!(base, entry_hash(2, &GENESIS_HASH, at(), FIELDS));
        assert_ne!(base, entry_hash(1, &[1; 32], at(), FIELDS));
        assert_ne!(base, entry_hash(1, &GENESIS_HASH, at() + chrono::Duration::microseconds(1), FIELDS));
        for index in 0..FIELDS.len() {
            let mut changed = FIELDS;
            changed[index] = Some("x");
            assert_ne!(base, entry_hash(1, &GENESIS_HASH, at(), changed), "field {index}");
        }
    }

    #[test]
    fn field_boundaries_and_a_missing_trace_are_part_of_the_encoding() {
        let mut moved = FIELDS;
        moved[4] = Some("pupilp");
        moved[5] = Some("1");
        let mut shifted = FIELDS;
        shifted[4] = Some("pupil");
        shifted[5] = Some("p1");
        assert_ne!(entry_hash(1, &GENESIS_HASH, at(), moved), entry_hash(1, &GENESIS_HASH, at(), shifted));
        let mut empty_trace = FIELDS;
        empty_trace[6] = Some("");
        assert_ne!(entry_hash(1, &GENESIS_HASH, at(), FIELDS), entry_hash(1, &GENESIS_HASH, at(), empty_trace));
    }
}
