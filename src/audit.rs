//! `nol audit`: checks the audit chains of a province database, exports their heads, and prunes
//! entries past the retention.
//!
//! ```text
//! nol audit verify [--schema S]… [--head FILE]   recompute every chain; exit 1 at the first break
//! nol audit head [--schema S]… [--out FILE]      print (or append to FILE) each chain's head
//! ```
//!
//! A schema's log is sixteen chains (so that concurrent writers do not commit one at a time); a
//! head line names its chain after the schema, `registry/3 …`, but for chain 0, `registry …`:
//!
//! ```text
//! nol audit prune --older-than-days N            remove entries older than N days (N ≥ 183)
//! ```
//!
//! The database comes from `--database-url` or `NOL_DATABASE_URL`: for `verify` and `head` the
//! audit reader's (`<database>_audit_read`) is enough; `prune` needs the admin's (the audit
//! schemas' owner's rights; no service's role may prune).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use clap::Subcommand;
use nol_runtime::audit::verify::{self, ChainHead, ExportedHead};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Every service's schema in a province database.
const SCHEMAS: [&str; 4] = ["registry", "cases", "transfer", "reporting"];

/// Access logs are kept at least six months (等保 2.0 L3; 网络安全法 art. 21).
pub const MIN_RETENTION_DAYS: u32 = 183;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recomputes each schema's audit chain from its anchor and reports the first altered, removed
    /// or reordered entry (exit status 1); prints the entries checked and the head on success.
    Verify {
        #[command(flatten)]
        target: Target,
        /// A file of heads exported earlier (`nol audit head --out`): each must still be in its chain
        /// (a cut-off tail is found).
        #[arg(long)]
        head: Option<PathBuf>,
    },
    /// Prints the head of each schema's chains (schema[/chain], seq, hash, time; chains without
    /// entries left out), or appends them to FILE, to keep outside the database.
    Head {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Removes the entries older than N days (at least 183: access logs are kept six months); the
    /// last one removed becomes the anchor the chain is verified from, and the prune is itself an
    /// audit entry.
    Prune {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        older_than_days: u32,
        /// Who prunes (recorded in the audit entry); defaults to $USER.
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
        /// The region of the bureau that prunes (recorded); defaults to $NOL_PROVINCE.
        #[arg(long, env = "NOL_PROVINCE", default_value = "")]
        region: String,
    },
}

#[derive(clap::Args)]
pub struct Target {
    /// The province's database.
    #[arg(long, env = "NOL_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// A service's schema, repeated; default: registry, cases, transfer and reporting.
    #[arg(long = "schema", value_parser = SCHEMAS)]
    schemas: Vec<String>,
}

impl Target {
    /// The province database at `database_url`, every service's schema.
    pub fn all_schemas(database_url: &str) -> Target {
        Target { database_url: database_url.to_owned(), schemas: Vec::new() }
    }

    fn schemas(&self) -> Vec<String> {
        if self.schemas.is_empty() {
            SCHEMAS.iter().map(|schema| (*schema).to_owned()).collect()
        } else {
            self.schemas.clone()
        }
    }

    /// A connection in `schema` and its audit schema (never creating them: a missing chain is a
    /// finding).
    async fn connect(&self, schema: &str) -> anyhow::Result<PgConnection> {
        let options = PgConnectOptions::from_str(&self.database_url)
            .context("--database-url is not a PostgreSQL URL")?
            .options([("search_path", nol_runtime::database::search_path(schema))]);
        Ok(PgConnection::connect_with(&options).await?)
    }
}

/// Runs an audit command; Ok(false) when a chain is broken or missing (exit status 1).
pub async fn run(command: AuditCommand) -> anyhow::Result<bool> {
    match command {
        AuditCommand::Verify { target, head } => verify_all(&target, head.as_deref()).await,
        AuditCommand::Head { target, out } => export_heads(&target, out.as_deref()).await,
        AuditCommand::Prune { target, older_than_days, actor, region } => {
            prune(&target, older_than_days, &actor, &region).await
        }
    }
}

pub async fn verify_all(target: &Target, head_file: Option<&Path>) -> anyhow::Result<bool> {
    let exported = match head_file {
        Some(path) => read_head_file(path)?,
        None => Vec::new(),
    };
    let mut intact = true;
    for schema in target.schemas() {
        let mut conn = target.connect(&schema).await?;
        if verify::heads(&mut conn).await?.is_none() {
            println!("{schema}: 没有审计链 (no audit chain in this schema)");
            intact = false;
            continue;
        }
        let heads: Vec<ExportedHead> =
            exported.iter().filter(|(of, _)| *of == schema).map(|(_, head)| head.clone()).collect();
        match verify::verify(&mut conn, &heads).await? {
            Ok(verified) => {
                let written: Vec<&ChainHead> =
                    verified.heads.iter().filter(|head| head.chain == 0 || head.seq > 0).collect();
                if let [ChainHead { seq, hash, anchor_seq, .. }] = written[..] {
                    let from = if *anchor_seq > 0 {
                        format!("，自清理后的第 {} 条起", anchor_seq + 1)
                    } else {
                        String::new()
                    };
                    println!(
                        "{schema}: 审计链完好，校验 {} 条{from}，链头第 {seq} 条 {} (chain intact: {} entries checked, head seq {seq} {})",
                        verified.entries,
                        hex::encode(hash),
                        verified.entries,
                        hex::encode(hash),
                    );
                } else {
                    println!(
                        "{schema}: 审计链完好，{} 条链共校验 {} 条 (chains intact: {} entries checked in {} chains)",
                        written.len(),
                        verified.entries,
                        verified.entries,
                        written.len(),
                    );
                    for ChainHead { chain, seq, hash, anchor_seq, .. } in written {
                        println!(
                            "{schema}/{chain}: 链头第 {seq} 条 {}，起点第 {anchor_seq} 条 (chain {chain}: head seq {seq} {}, anchor seq {anchor_seq})",
                            hex::encode(hash),
                            hex::encode(hash),
                        );
                    }
                }
                if head_file.is_some() {
                    println!(
                        "{schema}: 导出的链头 {} 个仍在链中，{} 个已清理 (exported heads: {} still in the chain, {} pruned)",
                        verified.exported_found,
                        verified.exported_pruned,
                        verified.exported_found,
                        verified.exported_pruned,
                    );
                }
            }
            Err(broken) => {
                println!("{schema}: 审计链被破坏 (chain broken): {broken}");
                intact = false;
            }
        }
        conn.close().await?;
    }
    Ok(intact)
}

async fn export_heads(target: &Target, out: Option<&Path>) -> anyhow::Result<bool> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut lines = String::new();
    let mut complete = true;
    for schema in target.schemas() {
        let mut conn = target.connect(&schema).await?;
        match verify::heads(&mut conn).await? {
            Some(heads) => {
                for head in heads.iter().filter(|head| head.chain == 0 || head.seq > 0) {
                    let name = match head.chain {
                        0 => schema.clone(),
                        chain => format!("{schema}/{chain}"),
                    };
                    lines += &format!("{name} {} {} {now}\n", head.seq, hex::encode(&head.hash));
                }
            }
            None => {
                eprintln!("{schema}: 没有审计链 (no audit chain in this schema)");
                complete = false;
            }
        }
        conn.close().await?;
    }
    match out {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            file.write_all(lines.as_bytes())?;
            file.sync_all()?;
            print!("{lines}");
        }
        None => print!("{lines}"),
    }
    Ok(complete)
}

/// Reads a head file: `schema[/chain] seq hash [time]` a line (no chain: chain 0); blank lines
/// and `#` comments skipped.
fn read_head_file(path: &Path) -> anyhow::Result<Vec<(String, ExportedHead)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut heads = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let parsed = (|| {
            let first = fields.next()?;
            let (schema, chain) = match first.split_once('/') {
                Some((schema, chain)) => (schema.to_owned(), chain.parse().ok()?),
                None => (first.to_owned(), 0),
            };
            let seq = fields.next()?.parse().ok()?;
            let hash = hex::decode(fields.next()?).ok().filter(|hash| hash.len() == 32)?;
            Some((schema, ExportedHead { chain, seq, hash }))
        })();
        let head = parsed.with_context(|| {
            format!("{} line {}: expected `schema[/chain] seq hash`, got {line:?}", path.display(), index + 1)
        })?;
        heads.push(head);
    }
    Ok(heads)
}

async fn prune(target: &Target, older_than_days: u32, actor: &str, region: &str) -> anyhow::Result<bool> {
    if older_than_days < MIN_RETENTION_DAYS {
        eprintln!(
            "访问日志至少保存六个月：--older-than-days 不能小于 {MIN_RETENTION_DAYS}，未清理任何记录 (audit entries are kept at least six months: --older-than-days must be at least {MIN_RETENTION_DAYS}; nothing was pruned)"
        );
        return Ok(false);
    }
    for schema in target.schemas() {
        let mut conn = target.connect(&schema).await?;
        anyhow::ensure!(
            verify::heads(&mut conn).await?.is_some(),
            "{schema}: 没有审计链 (no audit chain in this schema)"
        );
        let removed = sqlx::query_scalar!(
            r#"SELECT audit_prune(now() - make_interval(days => $1), $2, 'operator', $3, NULL) AS "removed!""#,
            older_than_days as i32,
            actor,
            region,
        )
        .fetch_one(&mut conn)
        .await?;
        let heads = verify::heads(&mut conn).await?.context("the audit chain went away")?;
        let anchors: Vec<String> = heads
            .iter()
            .filter(|head| head.anchor_seq > 0)
            .map(|head| match head.chain {
                0 => head.anchor_seq.to_string(),
                chain => format!("{chain}/{}", head.anchor_seq),
            })
            .collect();
        let anchors = if anchors.is_empty() { "0".to_owned() } else { anchors.join(", ") };
        println!(
            "{schema}: 清理 {removed} 条早于 {older_than_days} 天的审计记录，起点为第 {anchors} 条 (removed {removed} entries older than {older_than_days} days; the chain now starts after seq {anchors})",
        );
        conn.close().await?;
    }
    Ok(true)
}
