//! PostgreSQL for a stack: a database per province on a server (the machine's, or a cluster the
//! stack owns under its data folder, which it can also stop and start).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::eventually;

/// The server tests and the local stack use unless told otherwise.
pub fn default_admin_url() -> String {
    std::env::var("NOL_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
    format!("{base}/{name}")
}

/// The database a URL names (its path, without options).
pub fn database_name(url: &str) -> &str {
    url.rsplit('/').next().and_then(|name| name.split('?').next()).unwrap_or_default()
}

/// `url` connecting as `role` (no password: the local servers trust their own machine), its host,
/// database and options kept.
pub fn role_url(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{role}@{host}{path}")
}

/// True when a server answers at `admin_url`.
pub async fn reachable(admin_url: &str) -> bool {
    tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(admin_url))
        .await
        .is_ok_and(|connection| connection.is_ok())
}

/// Creates database `name` unless it exists; returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'),
        "database names here are lowercase letters, digits and '_'"
    );
    let mut admin =
        PgConnection::connect(admin_url).await.with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
    let exists =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#, name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // An identifier cannot be a bind parameter: the server quotes it (`%I`), and the statement
        // it returns is executed as it came (CREATE DATABASE cannot run inside a function either).
        let create = sqlx::query_scalar!(r#"SELECT format('CREATE DATABASE %I', $1::text) AS "statement!""#, name)
            .fetch_one(&mut admin)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await?;
    }
    admin.close().await?;
    Ok(database_url(admin_url, name))
}

/// Drops database `name`, disconnecting whoever is still connected, and its roles.
pub async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    // The server quotes the name, as in `create_database`.
    let drop = sqlx::query_scalar!(
        r#"SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text) AS "statement!""#,
        name
    )
    .fetch_one(&mut admin)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await?;
    // Its roles (cluster-wide) go with it: nothing of theirs is left once the database is gone. A
    // name too long for roles never had any.
    if let Ok(roles) = nol_runtime::provision::Roles::new(name) {
        drop_roles(&mut admin, &roles.all()).await?;
    }
    admin.close().await?;
    Ok(())
}

async fn drop_roles(admin: &mut PgConnection, roles: &[String]) -> anyhow::Result<()> {
    for role in roles {
        let drop = sqlx::query_scalar!(r#"SELECT format('DROP ROLE IF EXISTS %I', $1::text) AS "statement!""#, role)
            .fetch_one(&mut *admin)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut *admin).await?;
    }
    Ok(())
}

/// Drops the roles (named `<database_prefix>…_<role>`) of databases that no longer exist: what a
/// killed test run leaves behind (the harness passes its prefix, `nol_t`).
pub async fn drop_orphan_roles(admin_url: &str, database_prefix: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    let suffixes = nol_runtime::provision::Roles::new("x")?
        .all()
        .into_iter()
        .map(|role| role.trim_start_matches('x').to_owned())
        .collect::<Vec<_>>();
    let candidates = sqlx::query_scalar!(
        r#"SELECT rolname AS "name!" FROM pg_roles WHERE starts_with(rolname, $1) AND NOT rolsuper"#,
        database_prefix
    )
    .fetch_all(&mut admin)
    .await?;
    let databases: std::collections::HashSet<String> =
        sqlx::query_scalar!(r#"SELECT datname AS "name!" FROM pg_database"#)
            .fetch_all(&mut admin)
            .await?
            .into_iter()
            .collect();
    let orphans: Vec<String> = candidates
        .into_iter()
        .filter(|role| {
            // The longest suffix first: `_reporting_read` before `_reporting`.
            let mut matching: Vec<&String> = suffixes.iter().filter(|suffix| role.ends_with(suffix.as_str())).collect();
            matching.sort_by_key(|suffix| std::cmp::Reverse(suffix.len()));
            matching.first().is_some_and(|suffix| !databases.contains(&role[..role.len() - suffix.len()]))
        })
        .collect();
    for orphan in orphans {
        // Its own test may be dropping it at the same moment.
        if let Err(error) = drop_roles(&mut admin, std::slice::from_ref(&orphan)).await {
            eprintln!("orphan role {orphan} not dropped: {error:#}");
        }
    }
    admin.close().await?;
    Ok(())
}

/// A PostgreSQL cluster owned by the stack, in its own folder and port.
pub struct PgCluster {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

impl PgCluster {
    /// Creates the cluster under `dir` unless it exists (trust auth, user `postgres`).
    pub fn init(dir: &Path, port: u16) -> anyhow::Result<PgCluster> {
        let cluster = PgCluster { dir: dir.to_path_buf(), port, bin: crate::tools::postgres_bin_dir()? };
        if !dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(dir)?;
            cluster.hand_to_postgres_user()?;
            let status = cluster
                .command("initdb")
                .arg("-D")
                .arg(dir)
                .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
                .stdout(std::process::Stdio::null())
                .status()
                .context("running initdb")?;
            anyhow::ensure!(status.success(), "initdb failed for {}", dir.display());
        }
        Ok(cluster)
    }

    /// Adds server settings (read at the next start), e.g. [`crate::backup::archiving_settings`].
    pub fn configure(&self, settings: &[(&str, String)]) -> anyhow::Result<()> {
        let mut lines = String::from("\n");
        for (name, value) in settings {
            lines += &format!("{name} = '{}'\n", value.replace('\'', "''"));
        }
        let mut conf = std::fs::OpenOptions::new().append(true).open(self.dir.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut conf, lines.as_bytes())?;
        Ok(())
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `initdb` and `postgres` refuse to run as root: run them as the `postgres` user then.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if nix::unistd::Uid::effective().is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn hand_to_postgres_user(&self) -> anyhow::Result<()> {
        if nix::unistd::Uid::effective().is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.dir).status()?;
            anyhow::ensure!(status.success(), "chown of {} failed", self.dir.display());
        }
        Ok(())
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) -> anyhow::Result<()> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .context("running pg_ctl start")?;
        anyhow::ensure!(status.success(), "pg_ctl start failed; see {}", self.dir.join("server.log").display());
        let url = self.admin_url();
        eventually("the cluster to accept connections", Duration::from_secs(30), || {
            let url = url.clone();
            async move { Ok(reachable(&url).await.then_some(())) }
        })
        .await
    }

    /// Stops the server: `fast` for a clean stop, `immediate` to simulate a crash.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", mode, "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl stop -m {mode} failed");
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.dir.join("postmaster.pid").exists()
    }
}
