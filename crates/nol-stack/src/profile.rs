//! Where a benchmark's load spends its time, measured while it runs: what the database's
//! backends are doing (wait events sampled from `pg_stat_activity`, the way PostgreSQL's own
//! "active session history" tools do it), how much CPU each process used, and — when
//! `NOL_BENCH_PERF` names a folder — a `perf record` of a service process for `perf report`.
//!
//! A CPU profile alone misses a wait (a backend waiting for a row lock uses no CPU); the sampled
//! wait events show it, and the CPU seconds per call say whether a process is busy or idle.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::Connection;

/// How often the sampler looks at `pg_stat_activity`.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// Samples what every client backend of one database is doing until [`WaitSampler::finish`].
pub struct WaitSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<WaitProfile>>,
}

/// The sampled states of a database's backends: each sample counts every backend that was not
/// idle once, under what it was doing.
#[derive(Debug, Clone, Default)]
pub struct WaitProfile {
    /// Rounds of sampling.
    pub rounds: u64,
    /// Backend observations that were not idle.
    pub busy: u64,
    /// Observations per state: `CPU` (active, no wait event), `<type>:<event>` (active and
    /// waiting), `idle in transaction` (the backend waits for its client, the service).
    pub states: BTreeMap<String, u64>,
}

impl WaitSampler {
    /// Starts sampling the client backends of `database` over `admin_url` (a connection of its own,
    /// itself left out of the samples).
    pub async fn start(admin_url: &str, database: &str) -> anyhow::Result<WaitSampler> {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let database = database.to_owned();
        let task = tokio::spawn(async move {
            let mut profile = WaitProfile::default();
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !stopped.load(Ordering::Relaxed) {
                ticker.tick().await;
                // The bench's own sampling: dynamic SQL over a system view, not the services' schema.
                let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity
                      WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                        AND state IS NOT NULL AND state <> 'idle'",
                )
                .bind(&database)
                .fetch_all(&mut conn)
                .await?;
                profile.rounds += 1;
                for (state, wait_type, wait_event) in rows {
                    let label = match (state.as_str(), wait_type, wait_event) {
                        ("active", Some(kind), Some(event)) => format!("{kind}:{event}"),
                        ("active", _, _) => "CPU".to_owned(),
                        (other, _, _) => other.to_owned(),
                    };
                    profile.busy += 1;
                    *profile.states.entry(label).or_default() += 1;
                }
            }
            conn.close().await?;
            Ok(profile)
        });
        Ok(WaitSampler { stop, task })
    }

    pub async fn finish(self) -> anyhow::Result<WaitProfile> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

impl WaitProfile {
    /// The average number of busy backends in `state` over the run.
    pub fn backends_in(&self, state: &str) -> f64 {
        self.states.get(state).copied().unwrap_or_default() as f64 / self.rounds.max(1) as f64
    }
}

impl fmt::Display for WaitProfile {
    /// One line per state, the most frequent first: the average number of backends in it and its
    /// share of the busy observations.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut states: Vec<_> = self.states.iter().collect();
        states.sort_by(|a, b| b.1.cmp(a.1));
        let rounds = self.rounds.max(1) as f64;
        writeln!(f, "    {} samples; busy backends on average {:.2}", self.rounds, self.busy as f64 / rounds)?;
        for (state, count) in states.into_iter().take(12) {
            writeln!(
                f,
                "    {:>6.2} backends {:>5.1} %  {state}",
                *count as f64 / rounds,
                100.0 * *count as f64 / self.busy.max(1) as f64
            )?;
        }
        Ok(())
    }
}

/// Which statements a database's time went to, from `pg_stat_statements`, when the server preloads
/// it (`shared_preload_libraries`; the machine's PostgreSQL does not unless told to, and a
/// preloaded library needs a restart). Otherwise [`StatementProfile::start`] says how to get it.
pub struct StatementProfile {
    conn: Option<sqlx::PgConnection>,
    database: String,
}

/// One statement's share of the time: executions, total execution and planning time.
#[derive(Debug, Clone)]
pub struct StatementTime {
    pub query: String,
    pub calls: i64,
    pub exec_ms: f64,
    pub plan_ms: f64,
}

/// The statements of a run, the costliest first.
#[derive(Debug, Clone)]
pub struct StatementTimes {
    pub statements: Vec<StatementTime>,
    /// Per event (or call) of the run, for the figures per call.
    pub per: u64,
    /// What `per` counts, as the figures name it: "an event" unless set.
    pub unit: &'static str,
}

impl StatementProfile {
    /// Resets the counters for the run to come; `Err` with the reason when the extension is not
    /// loaded.
    pub async fn start(admin_url: &str, database: &str) -> Result<StatementProfile, String> {
        let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(|error| error.to_string())?;
        // Dynamic SQL over a contrib extension's view: the bench's own, not the services' schema.
        let preloaded: String = sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
            .fetch_one(&mut conn)
            .await
            .map_err(|error| error.to_string())?;
        if !preloaded.split(',').any(|library| library.trim() == "pg_stat_statements") {
            return Err("pg_stat_statements is not preloaded (ALTER SYSTEM SET shared_preload_libraries = \
                        'pg_stat_statements'; ALTER SYSTEM SET pg_stat_statements.track_planning = on; then \
                        restart PostgreSQL)"
                .to_owned());
        }
        for statement in ["CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT pg_stat_statements_reset()"] {
            sqlx::query(statement).execute(&mut conn).await.map_err(|error| error.to_string())?;
        }
        Ok(StatementProfile { conn: Some(conn), database: database.to_owned() })
    }

    /// The statements run against the database since `start`, the costliest (execution plus
    /// planning) first; `per` divides the figures per call.
    pub async fn finish(mut self, per: u64) -> anyhow::Result<StatementTimes> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(StatementTimes { statements: Vec::new(), per: per.max(1), unit: "an event" });
        };
        let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
            "SELECT regexp_replace(query, '\\s+', ' ', 'g'), calls, total_exec_time, total_plan_time
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname = $1
              ORDER BY total_exec_time + total_plan_time DESC",
        )
        .bind(&self.database)
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(StatementTimes {
            statements: rows
                .into_iter()
                .map(|(query, calls, exec_ms, plan_ms)| StatementTime { query, calls, exec_ms, plan_ms })
                .collect(),
            per: per.max(1),
            unit: "an event",
        })
    }
}

impl fmt::Display for StatementTimes {
    /// The ten costliest statements: time per event (execution + planning), calls per event, and
    /// the statement's start; then the total over all of them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = self.per as f64;
        let total: f64 = self.statements.iter().map(|statement| statement.exec_ms + statement.plan_ms).sum();
        let plan: f64 = self.statements.iter().map(|statement| statement.plan_ms).sum();
        let calls: i64 = self.statements.iter().map(|statement| statement.calls).sum();
        let unit = self.unit;
        writeln!(
            f,
            "    {} statements, {:.1} calls {unit}; {:.3} ms {unit} in statements ({:.3} ms of it planning)",
            self.statements.len(),
            calls as f64 / per,
            total / per,
            plan / per
        )?;
        for statement in self.statements.iter().take(10) {
            let text: String = statement.query.chars().take(110).collect();
            writeln!(
                f,
                "    {:>7.3} ms {:>5.1} % ({:>5.3} ms planning) {:>5.2} calls  {text}",
                (statement.exec_ms + statement.plan_ms) / per,
                100.0 * (statement.exec_ms + statement.plan_ms) / total.max(f64::MIN_POSITIVE),
                statement.plan_ms / per,
                statement.calls as f64 / per,
            )?;
        }
        Ok(())
    }
}

/// The CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let (_, seconds) = stat_cpu(pid, false).ok_or_else(|| anyhow::anyhow!("no /proc/{pid}/stat"))?;
    Ok(seconds)
}

/// A process's command name and CPU seconds from `/proc/<pid>/stat`: utime + stime, and with
/// `children` also the cutime + cstime of its exited, waited-for children.
fn stat_cpu(pid: u32, children: bool) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map(|(_, comm)| comm).unwrap_or_default().to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14..=17 (utime, stime, cutime, cstime) in clock ticks: index 11..=14 after the state.
    let last = if children { 14 } else { 12 };
    let ticks: i64 =
        (11..=last).map(|index| fields.get(index).and_then(|field| field.parse::<i64>().ok())).sum::<Option<i64>>()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((comm, ticks as f64 / 100.0))
}

/// The CPU seconds of every PostgreSQL backend of `database` are not visible from outside; the
/// machine's whole PostgreSQL (all its processes) is: the sum over processes named `postgres`.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres"))
        .filter_map(|pid| cpu_seconds(pid).ok())
        .sum()
}

/// `perf record` of one process while it runs, when `NOL_BENCH_PERF` names a folder (and `perf`
/// is installed); otherwise nothing.
pub struct PerfRecord {
    child: Option<tokio::process::Child>,
    output: PathBuf,
}

impl PerfRecord {
    /// Starts `perf record -F 499 -g` on `pid`, writing `<NOL_BENCH_PERF>/<name>.perf.data`.
    pub fn start(name: &str, pid: u32) -> PerfRecord {
        let Some(folder) = std::env::var_os("NOL_BENCH_PERF").map(PathBuf::from) else {
            return PerfRecord { child: None, output: PathBuf::new() };
        };
        let output = folder.join(format!("{name}.perf.data"));
        let child = std::fs::create_dir_all(&folder).ok().and_then(|()| {
            tokio::process::Command::new("perf")
                .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
                .arg(&output)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .ok()
        });
        PerfRecord { child, output }
    }

    /// Stops the recording (SIGINT, as perf expects) and returns the file, if one was written.
    pub async fn finish(mut self) -> Option<PathBuf> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        self.output.exists().then(|| self.output.clone())
    }
}

/// Every process's CPU time at one moment, to say afterwards who used the cores over a window
/// (`MachineCpu::since`): the stack's services, each kind of PostgreSQL process, NATS, the bench,
/// and anything else on the machine.
pub struct MachineCpu {
    at: std::time::Instant,
    /// Per pid: (label, CPU seconds including its exited, waited-for children).
    processes: BTreeMap<u32, (String, f64)>,
    /// The machine's busy and total CPU seconds (all cores), from `/proc/stat`.
    machine: (f64, f64),
}

/// Who used the CPU over a window, by process kind, the busiest first.
pub struct CpuShares {
    pub wall: f64,
    /// Busy CPU seconds of the whole machine over the window, and what the cores could give.
    pub machine_busy: f64,
    pub machine_total: f64,
    pub by_kind: Vec<(String, f64)>,
}

impl MachineCpu {
    pub fn now() -> MachineCpu {
        let mut processes = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for pid in entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()))
            {
                if let Some(seen) = process_cpu(pid) {
                    processes.insert(pid, seen);
                }
            }
        }
        MachineCpu { at: std::time::Instant::now(), processes, machine: machine_cpu() }
    }

    /// The CPU each kind of process used since `self`. A process that exited in between is
    /// missed, unless its parent waited for it (PostgreSQL's parallel workers land in the
    /// postmaster's line).
    pub fn since(&self) -> CpuShares {
        let now = MachineCpu::now();
        let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, (label, seconds)) in &now.processes {
            let before = self.processes.get(pid).map(|(_, seconds)| *seconds).unwrap_or_default();
            let used = seconds - before;
            if used > 0.0 {
                *by_kind.entry(label.clone()).or_default() += used;
            }
        }
        let mut by_kind: Vec<(String, f64)> = by_kind.into_iter().collect();
        by_kind.sort_by(|a, b| b.1.total_cmp(&a.1));
        CpuShares {
            wall: now.at.duration_since(self.at).as_secs_f64(),
            machine_busy: now.machine.0 - self.machine.0,
            machine_total: now.machine.1 - self.machine.1,
            by_kind,
        }
    }
}

impl fmt::Display for CpuShares {
    /// The machine's busy share, then the eight busiest kinds of process in CPU seconds and cores.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wall = self.wall.max(f64::MIN_POSITIVE);
        writeln!(
            f,
            "    over {:.2} s the machine was {:.0} % busy ({:.2} CPU s of {:.2})",
            self.wall,
            100.0 * self.machine_busy / self.machine_total.max(f64::MIN_POSITIVE),
            self.machine_busy,
            self.machine_total
        )?;
        for (kind, seconds) in self.by_kind.iter().take(8) {
            writeln!(f, "    {seconds:>8.2} CPU s {:>5.2} cores  {kind}", seconds / wall)?;
        }
        Ok(())
    }
}

/// A process's label and CPU seconds (its own and its waited-for children's), from `/proc`.
/// The stack's services are told apart by their command line (`nol serve <service>`), and
/// PostgreSQL's processes by what they show in theirs: a client
/// backend by its database, the others by their kind; the postmaster carries its exited workers.
fn process_cpu(pid: u32) -> Option<(String, f64)> {
    let (comm, seconds) = stat_cpu(pid, true)?;
    let label = if comm == "postgres" {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let shown = cmdline.trim_end_matches('\0').replace('\0', " ");
        match shown.strip_prefix("postgres: ") {
            // "postgres: <user> <database> <host>(<port>) <activity>"
            Some(activity) if activity.contains('(') => {
                let database = activity.split_whitespace().nth(1).unwrap_or_default();
                format!("postgres backend {database}")
            }
            Some(kind) => format!("postgres {}", kind.split(" for ").next().unwrap_or(kind).trim()),
            None => "postgres postmaster (with its exited workers)".to_owned(),
        }
    } else if comm == "nol" {
        // "nol serve <service>": the stack's services told apart (both provinces' in one line).
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split('\0').filter(|word| !word.is_empty()).take(3).collect::<Vec<_>>().join(" ")
    } else {
        comm
    };
    Some((label, seconds))
}

/// The whole machine's busy and total CPU seconds so far, from the first line of `/proc/stat`.
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    let idle = ticks.get(3).copied().unwrap_or_default() + ticks.get(4).copied().unwrap_or_default();
    ((total - idle) / 100.0, total / 100.0)
}
