//! Service processes: started from the `nol` binary (`nol serve <service>`), ready when they print
//! `NOL_READY … grpc=host:port` on stdout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where a service process writes its log.
#[derive(Debug, Clone)]
pub enum LogTo {
    /// Inherit the parent's stderr (tests: shown by the test runner on failure).
    Inherit,
    /// Append to this file (the local stack).
    File(PathBuf),
}

/// One running service process.
pub struct ServiceProcess {
    pub name: String,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The dashboard's address, when the service serves one (the reporting service).
    pub web_addr: Option<SocketAddr>,
    binary: PathBuf,
    service: String,
    env: BTreeMap<String, String>,
    log: LogTo,
    child: Option<Child>,
    /// How the last launch ended when the process exited before its ready line.
    exited_unready: Option<std::process::ExitStatus>,
}

impl ServiceProcess {
    /// Starts `binary serve <service>` with `env`, waiting up to a minute for its ready line.
    pub async fn start(
        binary: &Path,
        name: &str,
        service: &str,
        env: BTreeMap<String, String>,
        log: LogTo,
    ) -> anyhow::Result<ServiceProcess> {
        let mut env = env;
        // Ports left to the kernel (0) are chosen here instead, below its ephemeral range, so that
        // a restart finds them free (`crate::ports`).
        let any = |value: Option<&String>| value.is_some_and(|addr| addr.ends_with(":0"));
        if any(env.get("NOL_GRPC_ADDR")) {
            env.insert("NOL_GRPC_ADDR".to_owned(), format!("127.0.0.1:{}", crate::ports::unused_port()));
            if env.get("NOL_METRICS_ADDR").is_none_or(|addr| addr.ends_with(":0")) {
                env.insert("NOL_METRICS_ADDR".to_owned(), format!("127.0.0.1:{}", crate::ports::unused_port()));
            }
        }
        if any(env.get("NOL_WEB_ADDR")) {
            env.insert("NOL_WEB_ADDR".to_owned(), format!("127.0.0.1:{}", crate::ports::unused_port()));
        }
        let mut process = ServiceProcess {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            web_addr: None,
            binary: binary.to_path_buf(),
            service: service.to_owned(),
            env,
            log,
            child: None,
            exited_unready: None,
        };
        process.launch().await?;
        Ok(process)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let stderr = match &self.log {
            LogTo::Inherit => Stdio::inherit(),
            LogTo::File(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .arg(&self.service)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} serve {}", self.binary.display(), self.service))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("NOL_READY ") {
                    let field = |name: &str| -> anyhow::Result<SocketAddr> {
                        let value = rest
                            .split_whitespace()
                            .find_map(|field| field.strip_prefix(name))
                            .ok_or_else(|| anyhow::anyhow!("ready line without {name}"))?;
                        Ok(value.parse()?)
                    };
                    let web = field("web=").ok();
                    return Ok::<_, anyhow::Error>(Some((field("grpc=")?, field("metrics=")?, web)));
                }
            }
            Ok(None)
        })
        .await;
        let (addr, metrics_addr, web_addr) = match ready {
            Ok(Ok(Some(addresses))) => addresses,
            Ok(Ok(None)) => {
                let status = child.wait().await?;
                self.exited_unready = Some(status);
                anyhow::bail!("{} exited before it was ready ({status})", self.name);
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => anyhow::bail!("{} was not ready within 60 s", self.name),
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.metrics_addr = metrics_addr;
        self.web_addr = web_addr;
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, no goodbye.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM, then wait for the graceful shutdown.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(15)).await?;
        }
        Ok(())
    }

    /// Starts the process again with the same settings, on the same ports (after a stop or kill).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.env.insert("NOL_GRPC_ADDR".to_owned(), self.addr.to_string());
        self.env.insert("NOL_METRICS_ADDR".to_owned(), self.metrics_addr.to_string());
        if let Some(web_addr) = self.web_addr {
            self.env.insert("NOL_WEB_ADDR".to_owned(), web_addr.to_string());
        }
        self.launch().await
    }

    /// Changes a setting for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.env.insert(key.to_owned(), value.to_owned()),
            None => self.env.remove(key),
        };
    }

    /// True while the process runs (false after it exited, e.g. by a fault-injection abort).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the process again when a fault injection makes it die soon, and waits up to
    /// `timeout` for it to exit: before its ready line (its relay or consumer may act before
    /// the server is up) or after.
    pub async fn restart_until_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.exited_unready = None;
        match self.restart().await {
            Ok(()) => self.wait_exit(timeout).await,
            Err(error) => self.exited_unready.take().ok_or(error),
        }
    }

    /// Waits for the process to exit on its own (a fault-injection abort), up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.as_mut().ok_or_else(|| anyhow::anyhow!("{} is not running", self.name))?;
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .map_err(|_| anyhow::anyhow!("{} did not exit within {timeout:?}", self.name))??;
        self.child = None;
        Ok(status)
    }
}

/// Sends SIGTERM and waits up to `grace`, then SIGKILL.
pub async fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return Ok(());
        }
    }
    child.kill().await?;
    Ok(())
}

/// The peak resident memory (VmHWM) of process `pid` in MiB; 0 when it cannot be read.
pub fn peak_memory_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1).and_then(|kib| kib.parse::<f64>().ok()))
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}
