//! Re-encryption at rest: a background task of each service holding a keyring rewrites, in small
//! batches, every ciphertext made with a key other than the current one (an older key id, or a
//! v1 ciphertext bound to its column only), so that after `nol keys rotate` the older key can be
//! retired (`nol keys retire`).
//!
//! Each batch (32 pages of a table, by physical position) is one short transaction; a row is
//! rewritten only if its ciphertext is still the one read (`… AND cipher = old`), so the task is
//! idempotent, restart-safe, and runs beside the service's own writes and beside other replicas'
//! tasks. A pass walks each table once, so a row that cannot be decrypted (its key retired early,
//! a damaged value) is counted and logged by table, never retried forever, and never holds up the
//! rest. After each
//! pass the rows left under other keys are counted by key id: logged, and exported as the gauge
//! `nol_rows_under_old_keys`; at zero the log says which keys may be retired. No resident ID
//! and no ciphertext is ever logged.
//!
//! The task runs at start, whenever a reload changes the keyring (SIGHUP, `NOL_PEERS_RELOAD_SECS`)
//! and every `NOL_REENCRYPT_SECS` (default 600).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use nol_pii::{KeyId, Keyring};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::keys::SharedKeyring;

/// Which part of the row column is the row the ciphertext is bound to.
#[derive(Clone, Copy, Debug)]
pub enum RowPart {
    /// The whole value (a blind index).
    Whole,
    /// The value less its first `n` bytes (a prefixed index).
    After(usize),
    /// The first `n` bytes (an index followed by something else).
    First(usize),
}

impl RowPart {
    fn of<'a>(&self, value: &'a [u8]) -> Option<&'a [u8]> {
        match *self {
            RowPart::Whole => Some(value),
            RowPart::After(n) => value.get(n..),
            RowPart::First(n) => value.get(..n),
        }
    }
}

/// A column of ciphertexts (names are the services' own constants, never input, which is what
/// makes the statements built from them safe): its table, the column, the column naming the row each ciphertext is
/// bound to, and the (context, row part) a ciphertext of it may have been made with — one for a
/// column written in one place; several for a column that copies ciphertexts from other tables
/// (tried in turn: AES-GCM refuses the wrong ones).
#[derive(Clone, Debug)]
pub struct Column {
    pub table: &'static str,
    pub cipher: &'static str,
    pub row: &'static str,
    pub bindings: Vec<(&'static str, RowPart)>,
}

impl Column {
    /// A column bound to its table's blind index `resident_id_index` under one context.
    pub fn by_index(table: &'static str, context: &'static str) -> Column {
        Column {
            table,
            cipher: "resident_id_cipher",
            row: "resident_id_index",
            bindings: vec![(context, RowPart::Whole)],
        }
    }
}

/// Rows still under another key than the current one, by key id (v1: key 0), over all columns.
pub type Remaining = BTreeMap<KeyId, i64>;

/// How many table pages (8 KiB) a batch reads: a few hundred to a few thousand rows.
const BLOCKS: i64 = 32;

/// The gauge `nol_rows_under_old_keys` (-1 until the first pass has counted).
#[derive(Clone, Debug)]
pub struct OldKeyRows(pub Arc<AtomicI64>);

impl Default for OldKeyRows {
    fn default() -> OldKeyRows {
        OldKeyRows(Arc::new(AtomicI64::new(-1)))
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub rewritten: u64,
    pub failed: u64,
    pub remaining: Remaining,
}

/// Rewrites every ciphertext of `columns` not made with the current key of `keyring`, once: each
/// table walked in ranges of [`BLOCKS`] pages by physical position (a TID range scan: each batch
/// reads its own pages, never the whole table), each range one transaction, each row rewritten by
/// its position only if its ciphertext is still the one read.
pub async fn pass(pool: &PgPool, keyring: &SharedKeyring, columns: &[Column]) -> sqlx::Result<Pass> {
    let ring = keyring.get();
    let prefix = ring.current_prefix();
    let mut done = Pass::default();
    for column in columns {
        let select = format!(
            "SELECT ctid::text AS tid, {row} AS row_key, {cipher} AS cipher FROM {table}
              WHERE ctid >= ($1::text)::tid AND ctid < ($2::text)::tid
                AND {cipher} IS NOT NULL AND {row} IS NOT NULL
                AND substring({cipher} from 1 for {len}) <> $3",
            row = column.row,
            cipher = column.cipher,
            table = column.table,
            len = prefix.len(),
        );
        let update = format!(
            "UPDATE {table} SET {cipher} = $1 WHERE ctid = ($2::text)::tid AND {cipher} = $3",
            table = column.table,
            cipher = column.cipher,
        );
        let size =
            format!("SELECT pg_relation_size('{table}') / current_setting('block_size')::bigint", table = column.table);
        let pages: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(size.as_str())).fetch_one(pool).await?;
        let mut failed = 0u64;
        let mut first = 0i64;
        while first <= pages {
            let (from, to) = (format!("({first},0)"), format!("({},0)", first + BLOCKS));
            first += BLOCKS;
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str()))
                .bind(&from)
                .bind(&to)
                .bind(&prefix)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                let tid: String = row.try_get("tid")?;
                let row_key: Vec<u8> = row.try_get("row_key")?;
                let cipher: Vec<u8> = row.try_get("cipher")?;
                match rewrite(&ring, column, &row_key, &cipher) {
                    Some(fresh) => {
                        let updated = sqlx::query(sqlx::AssertSqlSafe(update.as_str()))
                            .bind(&fresh)
                            .bind(&tid)
                            .bind(&cipher)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        done.rewritten += updated;
                    }
                    None => failed += 1,
                }
            }
            tx.commit().await?;
            if !rows.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if failed > 0 {
            tracing::warn!(
                table = column.table,
                column = column.cipher,
                rows = failed,
                "re-encryption: rows that no key held opens (a retired key, or damaged); left as they are"
            );
        }
        done.failed += failed;
        let counted = format!(
            "SELECT substring({cipher} from 1 for {len}) AS head, count(*) AS rows FROM {table}
              WHERE {cipher} IS NOT NULL AND substring({cipher} from 1 for {len}) <> $1 GROUP BY 1",
            cipher = column.cipher,
            table = column.table,
            len = prefix.len(),
        );
        for row in sqlx::query(sqlx::AssertSqlSafe(counted.as_str())).bind(&prefix).fetch_all(pool).await? {
            let head: Vec<u8> = row.try_get("head")?;
            let rows: i64 = row.try_get("rows")?;
            // A v1 head is shorter than a key id: pad it so key_id_of reads the version alone.
            let mut probe = head.clone();
            probe.resize(prefix.len() + 12, 0);
            let id = Keyring::key_id_of(&probe).unwrap_or(KeyId::MAX);
            *done.remaining.entry(id).or_default() += rows;
        }
    }
    Ok(done)
}

/// The ciphertext made again with the current key and the same binding, or `None` if no binding
/// opens it.
fn rewrite(ring: &Keyring, column: &Column, row_key: &[u8], cipher: &[u8]) -> Option<Vec<u8>> {
    column.bindings.iter().find_map(|(context, part)| {
        let row = part.of(row_key)?;
        let clear = ring.decrypt(cipher, context, row).ok()?;
        Some(ring.encrypt(&clear, context, row))
    })
}

/// Runs [`pass`] at start, on every change of the keyring and every `interval`, logging the
/// progress, until shutdown.
pub async fn run(
    pool: PgPool,
    keyring: SharedKeyring,
    columns: Vec<Column>,
    interval: Duration,
    gauge: OldKeyRows,
    shutdown: CancellationToken,
) {
    let mut last: Option<Pass> = None;
    loop {
        let current = keyring.get().current_id();
        match pass(&pool, &keyring, &columns).await {
            Ok(done) => {
                let left: i64 = done.remaining.values().sum();
                gauge.0.store(left, Ordering::Relaxed);
                let retirable: Vec<KeyId> = keyring.get().key_ids().into_iter().filter(|id| *id != current).collect();
                if left == 0 {
                    if last
                        .as_ref()
                        .is_none_or(|before| before.remaining.values().sum::<i64>() != 0 || done.rewritten > 0)
                    {
                        tracing::info!(
                            keyring = keyring.folder(),
                            current_key = current,
                            rewritten = done.rewritten,
                            retirable = ?retirable,
                            "re-encryption: every row is under the current key; the keys listed may be retired (nol keys retire)"
                        );
                    }
                } else {
                    tracing::info!(
                        keyring = keyring.folder(),
                        current_key = current,
                        rewritten = done.rewritten,
                        failed = done.failed,
                        remaining = left,
                        by_key = ?done.remaining,
                        "re-encryption: rows still under older keys"
                    );
                }
                last = Some(done);
            }
            Err(error) => {
                tracing::warn!(error = %error, keyring = keyring.folder(), "re-encryption pass failed; retried later")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = keyring.changed() => {}
        }
    }
}

/// `NOL_REENCRYPT_SECS` (default 600): how often the re-encryption looks for rows under older
/// keys besides at start and on a change of the keys.
pub fn interval_from_env() -> Duration {
    std::env::var("NOL_REENCRYPT_SECS")
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|secs| *secs > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(600))
}
