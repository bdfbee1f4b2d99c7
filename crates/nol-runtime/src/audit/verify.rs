//! Checking the audit chains of one schema: every entry of every chain recomputed from its
//! anchor to its head, and heads exported earlier (`nol audit head`) still in their chains.
//!
//! A schema's log is sixteen chains (migration `0004_audit_chains.sql`), so that concurrent
//! transactions do not commit one at a time behind one chain head; each chain is checked as the
//! one chain was, on its own.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::PgConnection;
use tokio_stream::StreamExt;

use super::StoredEntry;

/// A chain's head and anchor, as the database keeps them (`audit_chain`, a row per chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Which chain (0–15).
    pub chain: i16,
    /// The last entry's seq (0: no entry was ever written).
    pub seq: i64,
    pub hash: Vec<u8>,
    /// The last pruned entry (0 and zeros: nothing was pruned): the chain starts after it.
    pub anchor_seq: i64,
    pub anchor_hash: Vec<u8>,
}

/// The head of a chain as it was read at some time and kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedHead {
    pub chain: i16,
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry at `seq` does not match its hash: its content was changed.
    Altered { seq: i64 },
    /// The entry at `seq` is missing (the next one present is `next`, if any).
    Removed { seq: i64, next: Option<i64> },
    /// The entry now at `seq` was written at `written_at`: entries were renumbered.
    Reordered { seq: i64, written_at: i64 },
    /// The entry at `seq` matches its hash but does not follow the entry before it.
    NotLinked { seq: i64 },
    /// Entries after `last` up to the head `head` are missing.
    TailRemoved { last: i64, head: i64 },
    /// The head row does not name the last entry.
    HeadMismatch { head: i64, last: i64 },
    /// The anchor (the last pruned entry) is not the one the latest prune recorded.
    AnchorNotRecorded { anchor_seq: i64 },
    /// A head exported earlier is past the chain's end: the tail was cut off.
    Truncated { exported: i64, last: i64 },
    /// A head exported earlier has another hash now: the chain was rewritten from there.
    ExportedHeadDiffers { seq: i64 },
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Altered { seq } => {
                write!(
                    f,
                    "第 {seq} 条的内容与其哈希不符，已被篡改 (entry seq {seq} was altered: it does not match its hash)"
                )
            }
            ChainBreak::Removed { seq, next: Some(next) } => write!(
                f,
                "第 {seq} 条缺失，已被删除，下一条是第 {next} 条 (entry seq {seq} was removed: the next entry present is seq {next})"
            ),
            ChainBreak::Removed { seq, next: None } => {
                write!(f, "第 {seq} 条缺失，已被删除 (entry seq {seq} was removed)")
            }
            ChainBreak::Reordered { seq, written_at } => write!(
                f,
                "第 {seq} 条原本写在第 {written_at} 条的位置，顺序被改动 (entries were reordered: the entry at seq {seq} was written as seq {written_at})"
            ),
            ChainBreak::NotLinked { seq } => write!(
                f,
                "第 {seq} 条接不上前一条：前一条被替换或顺序被改动 (entry seq {seq} does not follow the entry before it: that one was replaced, or entries were reordered)"
            ),
            ChainBreak::TailRemoved { last, head } => write!(
                f,
                "链头是第 {head} 条，但最后一条是第 {last} 条：链尾被删除 (entries after seq {last} up to the head seq {head} were removed)"
            ),
            ChainBreak::HeadMismatch { head, last } => write!(
                f,
                "链头记录（第 {head} 条）与最后一条（第 {last} 条）不符 (the chain head names seq {head}, the last entry is seq {last})"
            ),
            ChainBreak::AnchorNotRecorded { anchor_seq } => write!(
                f,
                "起点（已清理至第 {anchor_seq} 条）不是最近一次清理所记录的 (the anchor at seq {anchor_seq} is not the one the latest prune recorded)"
            ),
            ChainBreak::Truncated { exported, last } => write!(
                f,
                "导出的链头第 {exported} 条已不在链中，链只到第 {last} 条：链尾被截断 (the exported head seq {exported} is gone, the chain ends at seq {last}: its tail was cut off)"
            ),
            ChainBreak::ExportedHeadDiffers { seq } => write!(
                f,
                "导出的链头第 {seq} 条的哈希与链中不同：链被改写 (the exported head seq {seq} has another hash in the chain: it was rewritten)"
            ),
        }
    }
}

/// The first thing wrong with a schema's log: which chain, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub chain: i16,
    pub what: ChainBreak,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.chain {
            0 => write!(f, "{}", self.what),
            chain => write!(f, "链 {chain}（chain {chain}）：{}", self.what),
        }
    }
}

/// What a check of an intact log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries recomputed, in all chains.
    pub entries: u64,
    /// Every chain's head, chain 0 first.
    pub heads: Vec<ChainHead>,
    /// Exported heads found in the chain.
    pub exported_found: u64,
    /// Exported heads at or before the anchor, pruned since (only the anchor itself is checked).
    pub exported_pruned: u64,
}

/// Reads every chain's head, chain 0 first, or None when the schema has no audit log.
pub async fn heads(conn: &mut PgConnection) -> sqlx::Result<Option<Vec<ChainHead>>> {
    let exists = sqlx::query_scalar!(r#"SELECT to_regclass('audit_chain') IS NOT NULL AS "exists!""#)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let heads =
        sqlx::query_as!(ChainHead, "SELECT chain, seq, hash, anchor_seq, anchor_hash FROM audit_chain ORDER BY chain")
            .fetch_all(&mut *conn)
            .await?;
    Ok((!heads.is_empty()).then_some(heads))
}

/// Recomputes every chain of the connection's schema from its anchor, entry by entry (streamed:
/// memory stays bounded), and checks `exported` heads. Ok(Err(..)) names the first break, in the
/// lowest-numbered broken chain.
pub async fn verify(conn: &mut PgConnection, exported: &[ExportedHead]) -> sqlx::Result<Result<Verified, Broken>> {
    let Some(heads) = heads(conn).await? else {
        return Err(sqlx::Error::Protocol("this schema has no audit chain (审计链不存在)".into()));
    };
    let mut verified = Verified { entries: 0, heads: Vec::new(), exported_found: 0, exported_pruned: 0 };
    for head in heads {
        let chain = head.chain;
        let of_chain: Vec<&ExportedHead> = exported.iter().filter(|one| one.chain == chain).collect();
        match verify_chain(conn, head, &of_chain).await? {
            Ok(one) => {
                verified.entries += one.entries;
                verified.exported_found += one.exported_found;
                verified.exported_pruned += one.exported_pruned;
                verified.heads.push(one.head);
            }
            Err(what) => return Ok(Err(Broken { chain, what })),
        }
    }
    // An exported head of a chain the schema does not have.
    if let Some(one) = exported.iter().find(|one| !verified.heads.iter().any(|head| head.chain == one.chain)) {
        return Ok(Err(Broken { chain: one.chain, what: ChainBreak::Truncated { exported: one.seq, last: 0 } }));
    }
    Ok(Ok(verified))
}

/// What a check of one intact chain found.
struct ChainVerified {
    entries: u64,
    head: ChainHead,
    exported_found: u64,
    exported_pruned: u64,
}

async fn verify_chain(
    conn: &mut PgConnection,
    head: ChainHead,
    exported: &[&ExportedHead],
) -> sqlx::Result<Result<ChainVerified, ChainBreak>> {
    let mut wanted: BTreeMap<i64, &ExportedHead> = BTreeMap::new();
    let mut exported_pruned = 0;
    let mut exported_found = 0;
    for &one in exported {
        if one.seq < head.anchor_seq {
            exported_pruned += 1;
        } else if one.seq == head.anchor_seq {
            if one.hash != head.anchor_hash {
                return Ok(Err(ChainBreak::ExportedHeadDiffers { seq: one.seq }));
            }
            exported_found += 1;
        } else {
            wanted.insert(one.seq, one);
        }
    }
    let mut expected_seq = head.anchor_seq + 1;
    let mut previous = head.anchor_hash.clone();
    let mut entries = 0u64;
    // The anchor the latest prune recorded, `<seq>:<hash hex>`.
    let mut recorded_anchor: Option<String> = None;
    let mut failure: Option<(StoredEntry, Failure)> = None;
    {
        let mut rows = sqlx::query_as!(
            StoredEntry,
            "SELECT seq, prev_hash, hash, at, actor, actor_role, actor_region, action, resource_type, resource_id,
                    trace_id
               FROM audit_log WHERE chain = $1 ORDER BY seq",
            head.chain
        )
        .fetch(&mut *conn);
        while let Some(entry) = rows.next().await {
            let entry = entry?;
            if entry.seq != expected_seq {
                failure = Some((entry, Failure::Gap { expected: expected_seq }));
                break;
            }
            let computed = entry.hash_at(entry.seq, &entry.prev_hash);
            if computed[..] != entry.hash[..] {
                failure = Some((entry, Failure::Hash));
                break;
            }
            if entry.prev_hash != previous {
                failure = Some((entry, Failure::Link));
                break;
            }
            if let Some(one) = wanted.get(&entry.seq) {
                if one.hash != entry.hash {
                    return Ok(Err(ChainBreak::ExportedHeadDiffers { seq: entry.seq }));
                }
                exported_found += 1;
            }
            if entry.action == "audit.prune" && entry.resource_type == "audit_log" {
                recorded_anchor = Some(entry.resource_id.clone());
            }
            previous = entry.hash;
            expected_seq += 1;
            entries += 1;
        }
    }
    if let Some((entry, failure)) = failure {
        return Ok(Err(diagnose(&entry, failure)));
    }
    let last = expected_seq - 1;
    if let Some((&exported_seq, _)) = wanted.iter().next_back()
        && exported_seq > last
    {
        return Ok(Err(ChainBreak::Truncated { exported: exported_seq, last }));
    }
    if head.seq > last {
        return Ok(Err(if last == head.anchor_seq && entries == 0 {
            ChainBreak::Removed { seq: head.anchor_seq + 1, next: None }
        } else {
            ChainBreak::TailRemoved { last, head: head.seq }
        }));
    }
    if head.seq != last || head.hash != previous {
        return Ok(Err(ChainBreak::HeadMismatch { head: head.seq, last }));
    }
    if head.anchor_seq > 0 {
        let anchor = format!("{}:{}", head.anchor_seq, hex::encode(&head.anchor_hash));
        if recorded_anchor.as_deref() != Some(anchor.as_str()) {
            return Ok(Err(ChainBreak::AnchorNotRecorded { anchor_seq: head.anchor_seq }));
        }
    }
    Ok(Ok(ChainVerified { entries, head, exported_found, exported_pruned }))
}

enum Failure {
    Gap { expected: i64 },
    Hash,
    Link,
}

/// How far from its place a renumbered entry is looked for.
const REORDER_WINDOW: i64 = 10_000;

/// Names the break at `entry`. An entry that matches its hash at another seq was renumbered
/// (entries were reordered); one that matches at none was altered.
fn diagnose(entry: &StoredEntry, failure: Failure) -> ChainBreak {
    match failure {
        Failure::Gap { expected } if entry.seq > expected => {
            ChainBreak::Removed { seq: expected, next: Some(entry.seq) }
        }
        // Two entries with one seq: only possible once the unique index was dropped.
        Failure::Gap { expected } => ChainBreak::Reordered { seq: expected, written_at: entry.seq },
        Failure::Link => ChainBreak::NotLinked { seq: entry.seq },
        Failure::Hash => {
            let nearest_first = (1..=REORDER_WINDOW).flat_map(|distance| [entry.seq - distance, entry.seq + distance]);
            nearest_first
                .filter(|seq| *seq > 0)
                .find(|seq| entry.hash_at(*seq, &entry.prev_hash)[..] == entry.hash[..])
                .map(|written_at| ChainBreak::Reordered { seq: entry.seq, written_at })
                .unwrap_or(ChainBreak::Altered { seq: entry.seq })
        }
    }
}
