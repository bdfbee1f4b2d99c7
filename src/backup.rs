//! `nol backup`: a province database's base backup, and the drill that restores one to a point in
//! time on a scratch server and checks what came back (`nol_stack::backup` does the work).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use nol_stack::backup;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Takes a base backup of a province's PostgreSQL server (pg_basebackup, with the WAL it
    /// needs) into a new folder under DIR and verifies it against its manifest (pg_verifybackup).
    /// The server archives its WAL continuously (deploy/postgres/archiving.conf), so a base
    /// backup and the archive since restore any moment after it.
    Base {
        /// The server, as a role allowed to replicate (e.g. the superuser).
        #[arg(long, env = "NOL_PG_ADMIN_URL", hide_env_values = true)]
        admin_url: String,
        /// Where base backups are kept.
        #[arg(long)]
        to: PathBuf,
    },
    /// The restore drill: restores BASE and the archived WAL on a scratch server (loopback only),
    /// up to --target-time or the end of the archive, then verifies every audit chain of the
    /// province database and prints the rows of each table; exit status 1 when a chain is broken.
    /// The scratch server is stopped and removed afterwards unless --keep.
    Drill {
        /// A base backup's folder (made by `nol backup base`).
        #[arg(long)]
        base: PathBuf,
        /// The WAL archive the server writes (its archive_command's folder).
        #[arg(long)]
        archive: PathBuf,
        /// The province database to check, e.g. nol_320000.
        #[arg(long)]
        database: String,
        /// Recover to this moment (RFC 3339, e.g. 2026-12-03T08:00:00+08:00); default: all archived.
        #[arg(long)]
        target_time: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Where the scratch server's folder is made (default: the system's temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
        /// The scratch server's port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Leave the restored server running (its URL is printed) instead of removing it.
        #[arg(long)]
        keep: bool,
        /// Also write the drill's result as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

/// Runs a backup command; Ok(false) when the drill found a broken audit chain.
pub async fn run(command: BackupCommand) -> anyhow::Result<bool> {
    match command {
        BackupCommand::Base { admin_url, to } => {
            let dir = backup::take_base_backup(&admin_url, &to)?;
            println!("基础备份已完成并通过清单校验 (base backup taken and verified): {}", dir.display());
            Ok(true)
        }
        BackupCommand::Drill { base, archive, database, target_time, work, port, keep, report } => {
            let work = match work {
                Some(dir) => tempfile::Builder::new().prefix("nol-drill-").tempdir_in(dir)?,
                None => tempfile::Builder::new().prefix("nol-drill-").tempdir()?,
            };
            // The server's user must reach the scratch folder.
            std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            let port = match port {
                Some(port) => port,
                None => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            };
            let started = std::time::Instant::now();
            let target = target_time.map(|time| time.with_timezone(&chrono::Utc));
            let cluster = backup::restore(&base, &archive, &work.path().join("pg"), port, target)
                .await
                .context("restoring the base backup and the archived WAL")?;
            let url = format!("postgres://postgres@127.0.0.1:{port}/{database}");
            let restored_in = started.elapsed();
            let intact = crate::audit::verify_all(&crate::audit::Target::all_schemas(&url), None).await?;
            let rows = backup::row_counts(&url).await?;
            for (table, count) in &rows {
                println!("{table}: {count}");
            }
            println!(
                "恢复演练{}：{} 秒恢复到{} (restore drill {}: restored in {:.1} s to {})",
                if intact { "通过" } else { "未通过" },
                restored_in.as_secs(),
                target.map(|time| time.to_rfc3339()).unwrap_or_else(|| "归档末尾".to_owned()),
                if intact { "passed" } else { "FAILED" },
                restored_in.as_secs_f64(),
                target.map(|time| time.to_rfc3339()).unwrap_or_else(|| "the end of the archive".to_owned()),
            );
            if let Some(path) = report {
                let json = serde_json::json!({
                    "database": database,
                    "target_time": target.map(|time| time.to_rfc3339()),
                    "restored_in_secs": restored_in.as_secs_f64(),
                    "audit_chains_intact": intact,
                    "rows": rows.iter().cloned().collect::<std::collections::BTreeMap<String, i64>>(),
                });
                std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if keep {
                println!("恢复的服务器仍在运行 (the restored server keeps running): {url}");
                std::mem::forget(cluster);
                let kept = work.keep();
                println!("folder: {}", kept.display());
            } else {
                cluster.stop("fast")?;
            }
            Ok(intact)
        }
    }
}
