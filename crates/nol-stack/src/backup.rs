//! A province database's backup and its restore drill, with PostgreSQL's own tools: a base backup
//! (`pg_basebackup`, checked against its manifest by `pg_verifybackup`) plus the WAL the server
//! archives continuously (`archive_command`), restored into a scratch cluster to a point in time.
//!
//! The stream keeps two years of events and peers re-send every unanswered cross-province step,
//! but the database is the record: a deployment runs [`archiving_settings`] on each province's
//! server, takes a base backup nightly (`nol backup base`) and drills the restore regularly
//! (`nol backup drill`): a backup that was never restored is not a backup.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::postgres::PgCluster;

/// The server settings that archive every finished WAL segment into `archive` (a folder the
/// server's user can write; in production a mount of other storage), and close a segment at
/// least every minute so a quiet province loses at most a minute.
pub fn archiving_settings(archive: &Path) -> Vec<(&'static str, String)> {
    let archive = archive.display();
    vec![
        ("wal_level", "replica".to_owned()),
        ("archive_mode", "on".to_owned()),
        // Never overwrite a segment already archived (a second server pointed at the same
        // folder by mistake fails loudly instead of destroying the first one's history).
        ("archive_command", format!("test ! -f '{archive}/%f' && cp '%p' '{archive}/%f'")),
        ("archive_timeout", "60".to_owned()),
    ]
}

/// Takes a base backup of the server at `admin_url` (a superuser or replication role) into a new
/// folder under `into`, streaming the WAL it needs alongside, and verifies it against its
/// manifest. Returns the backup's folder.
pub fn take_base_backup(admin_url: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let bin = crate::tools::postgres_bin_dir()?;
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let dir = into.join(format!("base-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ")));
    let status = Command::new(bin.join("pg_basebackup"))
        .arg("--dbname")
        .arg(admin_url)
        .arg("--pgdata")
        .arg(&dir)
        .args(["--format=plain", "--wal-method=stream", "--checkpoint=fast", "--manifest-checksums=SHA256"])
        .args(["--label", "nol base backup"])
        .status()
        .context("running pg_basebackup")?;
    anyhow::ensure!(status.success(), "pg_basebackup failed ({status})");
    let status = Command::new(bin.join("pg_verifybackup"))
        .arg("--quiet")
        .arg(&dir)
        .status()
        .context("running pg_verifybackup")?;
    anyhow::ensure!(status.success(), "the base backup in {} does not match its manifest", dir.display());
    Ok(dir)
}

/// Closes the server's current WAL segment and waits until the archive holds it, so that every
/// commit made before the call can be restored from the archive.
pub async fn archive_now(admin_url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let segment: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())").fetch_one(&mut conn).await?;
    conn.close().await?;
    crate::eventually("the WAL segment to be archived", Duration::from_secs(60), || {
        let segment = segment.clone();
        async move {
            let mut conn = PgConnection::connect(admin_url).await?;
            let (archived, failed): (Option<String>, Option<String>) =
                sqlx::query_as("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")
                    .fetch_one(&mut conn)
                    .await?;
            conn.close().await?;
            if let Some(failed) = failed.filter(|failed| *failed >= segment) {
                tracing::warn!(%failed, "archive_command failing; see the server's log");
            }
            Ok(archived.filter(|archived| *archived >= segment).map(drop))
        }
    })
    .await?;
    Ok(segment)
}

/// Restores `base` into `into` (which must not exist), replays the WAL archived in `archive` up to
/// `target` (the end of the archive when None), and starts it on `port` as a new primary that
/// archives nothing (it must not write into the live server's archive). Returns the running
/// cluster; stop it with [`PgCluster::stop`].
pub async fn restore(
    base: &Path,
    archive: &Path,
    into: &Path,
    port: u16,
    target: Option<DateTime<Utc>>,
) -> anyhow::Result<PgCluster> {
    anyhow::ensure!(!into.exists(), "{} exists: a restore goes into a new folder", into.display());
    let status = Command::new("cp").arg("-a").arg(base).arg(into).status().context("copying the base backup")?;
    anyhow::ensure!(status.success(), "copying {} failed", base.display());
    let _ = std::fs::remove_file(into.join("postmaster.pid"));
    std::fs::write(into.join("recovery.signal"), "")?;
    let mut settings = format!(
        "\n# nol backup restore\nrestore_command = 'cp ''{archive}/%f'' ''%p'''\narchive_mode = off\n\
         recovery_target_action = 'promote'\n",
        archive = archive.display()
    );
    if let Some(target) = target {
        settings += &format!("recovery_target_time = '{}'\n", target.to_rfc3339());
    }
    let mut conf = std::fs::OpenOptions::new().append(true).open(into.join("postgresql.auto.conf"))?;
    std::io::Write::write_all(&mut conf, settings.as_bytes())?;
    drop(conf);
    // The scratch server listens on loopback only and is reached by the drill alone: its own
    // access rules, the production ones kept beside them.
    if into.join("pg_hba.conf").exists() {
        std::fs::rename(into.join("pg_hba.conf"), into.join("pg_hba.conf.production"))?;
    }
    std::fs::write(
        into.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
    )?;
    if nix::unistd::Uid::effective().is_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(into).status()?;
        anyhow::ensure!(status.success(), "chown of {} failed", into.display());
    }
    std::fs::set_permissions(into, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let cluster = PgCluster::init(into, port)?;
    cluster.start().await?;
    let url = cluster.admin_url();
    crate::eventually("the restored server to finish recovery", Duration::from_secs(120), || {
        let url = url.clone();
        async move {
            let mut conn = PgConnection::connect(&url).await?;
            let recovering: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await?;
            conn.close().await?;
            Ok((!recovering).then_some(()))
        }
    })
    .await?;
    Ok(cluster)
}

/// Exact row counts of every table of the services' schemas in `database_url`, as
/// `schema.table` → rows, sorted.
pub async fn row_counts(database_url: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let mut conn = PgConnection::connect(database_url).await?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, relname::text FROM pg_stat_user_tables
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut counts = Vec::new();
    for (schema, table) in tables {
        // The server quotes the identifiers (`%I`); nothing is put together here.
        let statement: String = sqlx::query_scalar("SELECT format('SELECT count(*) FROM %I.%I', $1::text, $2::text)")
            .bind(&schema)
            .bind(&table)
            .fetch_one(&mut conn)
            .await?;
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement)).fetch_one(&mut conn).await?;
        counts.push((format!("{schema}.{table}"), rows));
    }
    conn.close().await?;
    Ok(counts)
}
