//! A nats-server process with JetStream on file storage, optionally linked to other provinces'
//! servers as a leaf node.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::eventually;

/// How to run one province's server.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Server name and JetStream domain, e.g. `p320000`.
    pub name: String,
    /// Client port; `None` picks a free one.
    pub client_port: Option<u16>,
    /// Accept leaf-node connections from other provinces on this port (`Some(None)`: a free one).
    pub leaf_listen: Option<Option<u16>>,
    /// Leaf-node URLs of other provinces' servers to connect to (with credentials).
    pub leaf_remotes: Vec<String>,
    /// Users of this server. On the hub: the local services' user (no limits), and one user per
    /// linked province, limited to that province's cross-province subjects. Leaf-node links
    /// authenticate against these users, and their permissions bound what crosses the link.
    pub users: Vec<NatsUser>,
    /// The user local clients connect as (one of `users`), if any.
    pub client_user: Option<NatsUser>,
    /// Users known by their TLS certificate (`verify_and_map`): each service of a province, and
    /// the stack's tools. When there are any, every client must be one of them.
    pub cert_users: Vec<CertUser>,
    /// fsync every JetStream write (`sync_interval: always`), as production runs.
    pub sync_always: bool,
    /// No JetStream (the national exchange's hub stores nothing; each province's stream does).
    pub no_jetstream: bool,
    /// TLS on the client port and on leaf links, both ways; required (`NatsServer::start`
    /// refuses a server without it) unless `plaintext_to_measure_tls`.
    pub tls: Option<NatsTls>,
    /// A server without TLS, for one thing only: the benchmark that measures what TLS costs
    /// against it in the same run. Nothing the stack or the tests start sets it.
    pub plaintext_to_measure_tls: bool,
}

/// What a TLS block asks of the other side's certificate.
#[derive(Debug, Clone, Copy)]
enum Verify {
    /// Nothing (a leaf remote: the hub's certificate is checked, ours shown).
    No,
    /// A certificate from the CA.
    Certificate,
    /// A certificate from the CA, naming a user of the server.
    AndMap,
}

/// A server's TLS: its own identity (also what it shows the hub on a leaf link), and the identity
/// the stack's own tools and tests connect with (the server asks every client for a certificate).
#[derive(Debug, Clone)]
pub struct NatsTls {
    pub server: nol_tls::TlsFiles,
    pub client: nol_tls::TlsFiles,
}

impl NatsTls {
    /// A CA of its own under `dir` and both identities (a server started outside a stack).
    pub fn standalone(dir: &Path) -> anyhow::Result<NatsTls> {
        let ca = crate::tls::LocalCa::ensure(&dir.join("ca"))?;
        Ok(NatsTls {
            server: ca.identity(&dir.join("ca"), "nats", &["nats.nol".to_owned()])?,
            client: ca.identity(&dir.join("ca"), "tools", &["tools.nol".to_owned()])?,
        })
    }

    /// The `tls { … }` block of a configuration: the identity, the CA, and a client certificate
    /// required and checked (`verify`), or shown (a leaf remote).
    fn block(&self, indent: &str, verify: Verify) -> String {
        let files = &self.server;
        format!(
            "{indent}tls {{\n{indent}  cert_file: \"{}\"\n{indent}  key_file: \"{}\"\n{indent}  ca_file: \"{}\"\n{verify}{indent}  timeout: 5\n{indent}}}\n",
            files.cert.display(),
            files.key.display(),
            files.ca.display(),
            verify = match verify {
                Verify::No => String::new(),
                Verify::Certificate => format!("{indent}  verify: true\n"),
                Verify::AndMap => format!("{indent}  verify_and_map: true\n"),
            },
        )
    }
}

/// A user a client certificate maps to (by its DNS name), with permissions unless unrestricted.
#[derive(Debug, Clone)]
pub struct CertUser {
    pub name: String,
    pub permissions: Option<nol_events::LinkPermissions>,
}

/// A user of a server: credentials, and permissions unless unrestricted.
#[derive(Debug, Clone)]
pub struct NatsUser {
    pub user: String,
    pub password: String,
    pub permissions: Option<nol_events::LinkPermissions>,
}

/// A running (or stopped) nats-server and what it listens on.
pub struct NatsServer {
    binary: PathBuf,
    dir: PathBuf,
    options: NatsOptions,
    child: Option<Child>,
    pub client_port: u16,
    pub leaf_port: Option<u16>,
}

impl NatsServer {
    /// Starts a server whose files (config, JetStream store, log) live under `dir`.
    pub async fn start(dir: &Path, options: NatsOptions) -> anyhow::Result<NatsServer> {
        anyhow::ensure!(
            options.tls.is_some() || options.plaintext_to_measure_tls,
            "nats-server {} needs TLS: plaintext is refused",
            options.name
        );
        std::fs::create_dir_all(dir)?;
        let mut options = options;
        // Ports not given are chosen below the kernel's ephemeral range, so that a restart finds
        // them free (`crate::ports`); 0 from there leaves the choice to nats-server.
        let chosen = || Some(crate::ports::unused_port()).filter(|port| *port != 0);
        if options.client_port.is_none() {
            options.client_port = chosen();
        }
        if options.leaf_listen == Some(None) {
            options.leaf_listen = Some(chosen());
        }
        let mut server = NatsServer {
            binary: crate::tools::nats_server()?,
            dir: dir.to_path_buf(),
            options,
            child: None,
            client_port: 0,
            leaf_port: None,
        };
        server.launch().await?;
        // Later restarts reuse the ports first chosen, so clients and leaf links find it again.
        server.options.client_port = Some(server.client_port);
        if server.options.leaf_listen.is_some() {
            server.options.leaf_listen = Some(server.leaf_port);
        }
        Ok(server)
    }

    /// Where clients connect, without credentials (for display).
    pub fn address(&self) -> String {
        format!("tls://127.0.0.1:{}", self.client_port)
    }

    /// The identity the stack's tools and tests connect with
    /// (`nol_backbone::connect_nats(&server.client_url(), name, server.client_tls())`).
    pub fn client_tls(&self) -> &nol_tls::TlsFiles {
        &self.options.tls.as_ref().expect("every server has TLS (checked at start)").client
    }

    /// The URL local clients connect with (credentials included when the server has users).
    pub fn client_url(&self) -> String {
        match &self.options.client_user {
            Some(user) => format!("nats://{}:{}@127.0.0.1:{}", user.user, user.password, self.client_port),
            None => format!("nats://127.0.0.1:{}", self.client_port),
        }
    }

    pub fn leaf_url(&self) -> Option<String> {
        self.leaf_port.map(|port| format!("nats-leaf://127.0.0.1:{port}"))
    }

    /// The hub's leaf-node URL with a province's credentials.
    pub fn leaf_url_as(&self, user: &NatsUser) -> Option<String> {
        self.leaf_port.map(|port| format!("nats-leaf://{}:{}@127.0.0.1:{port}", user.user, user.password))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn config(&self) -> String {
        let port = |port: Option<u16>| port.map(|port| port.to_string()).unwrap_or_else(|| "-1".to_owned());
        let mut config = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{client}\"\n",
            name = self.options.name,
            client = port(self.options.client_port),
        );
        if let Some(tls) = &self.options.tls {
            let verify = if self.options.cert_users.is_empty() { Verify::Certificate } else { Verify::AndMap };
            config.push_str(&tls.block("", verify));
        }
        if !self.options.no_jetstream {
            config.push_str(&format!(
                "jetstream {{\n  store_dir: \"{dir}/jetstream\"\n  domain: {name}\n{sync}}}\n",
                name = self.options.name,
                dir = self.dir.display(),
                sync = if self.options.sync_always { "  sync_interval: always\n" } else { "" },
            ));
        }
        if !self.options.users.is_empty() || !self.options.cert_users.is_empty() {
            let list = |subjects: &[String]| {
                subjects.iter().map(|subject| format!("\"{subject}\"")).collect::<Vec<_>>().join(", ")
            };
            let permissions = |limits: &Option<nol_events::LinkPermissions>| match limits {
                Some(limits) => format!(
                    ", permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }}",
                    list(&limits.publish),
                    list(&limits.subscribe)
                ),
                None => String::new(),
            };
            config.push_str("authorization {\n  users: [\n");
            for user in &self.options.users {
                config.push_str(&format!(
                    "    {{ user: \"{}\", password: \"{}\"{} }}\n",
                    user.user,
                    user.password,
                    permissions(&user.permissions)
                ));
            }
            for user in &self.options.cert_users {
                config.push_str(&format!("    {{ user: \"{}\"{} }}\n", user.name, permissions(&user.permissions)));
            }
            config.push_str("  ]\n}\n");
        }
        if self.options.leaf_listen.is_some() || !self.options.leaf_remotes.is_empty() {
            config.push_str("leafnodes {\n");
            if let Some(listen) = self.options.leaf_listen {
                config.push_str(&format!("  listen: \"127.0.0.1:{}\"\n", port(listen)));
                // Leaves connect only where told (a test's cuttable link sits in between).
                config.push_str("  no_advertise: true\n");
                if let Some(tls) = &self.options.tls {
                    config.push_str(&tls.block("  ", Verify::Certificate));
                }
            }

            if !self.options.leaf_remotes.is_empty() {
                let urls: Vec<String> = self.options.leaf_remotes.iter().map(|url| format!("\"{url}\"")).collect();
                let tls = self.options.tls.as_ref().map(|tls| tls.block("      ", Verify::No)).unwrap_or_default();
                config
                    .push_str(&format!("  remotes: [\n    {{\n      urls: [{}]\n{tls}    }}\n  ]\n", urls.join(", ")));
            }
            config.push_str("}\n");
        }
        config
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let config_path = self.dir.join("nats-server.conf");
        std::fs::write(&config_path, self.config())?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path())?;
        let log_start = log.metadata()?.len();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        // The server logs what it listens on, then "Server is ready".
        let log_path = self.log_path();
        let startup = eventually("nats-server to be ready", Duration::from_secs(20), || {
            let log_path = log_path.clone();
            async move {
                let text = std::fs::read(&log_path)?;
                let text = String::from_utf8_lossy(&text[(log_start as usize).min(text.len())..]).into_owned();
                Ok(text.contains("Server is ready").then_some(text))
            }
        })
        .await
        .with_context(|| format!("nats-server did not start; see {}", self.log_path().display()))?;
        let port_after = |marker: &str| {
            startup
                .lines()
                .find_map(|line| line.split_once(marker))
                .and_then(|(_, address)| address.trim().rsplit(':').next())
                .and_then(|port| port.parse::<u16>().ok())
        };
        self.client_port =
            port_after("Listening for client connections on").context("nats-server logged no client port")?;
        self.leaf_port = port_after("Listening for leafnode connections on");
        Ok(())
    }

    /// Adds (or replaces) a user — a province joining the exchange — and has the running server
    /// read its configuration again (SIGHUP): no restart, no link dropped.
    pub async fn add_user(&mut self, user: NatsUser) -> anyhow::Result<()> {
        self.options.users.retain(|existing| existing.user != user.user);
        self.options.users.push(user);
        self.reload().await
    }

    /// Writes the configuration and signals the server to reload it, waiting until it has.
    pub async fn reload(&mut self) -> anyhow::Result<()> {
        let config_path = self.dir.join("nats-server.conf");
        std::fs::write(&config_path, self.config())?;
        let pid = self.pid().context("the server is not running")?;
        let log_start = std::fs::metadata(self.log_path()).map(|meta| meta.len()).unwrap_or(0);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP)?;
        let log_path = self.log_path();
        eventually("nats-server to reload its configuration", Duration::from_secs(10), || {
            let log_path = log_path.clone();
            async move {
                let text = std::fs::read(&log_path)?;
                let text = String::from_utf8_lossy(&text[(log_start as usize).min(text.len())..]).into_owned();
                Ok(text.contains("Reloaded server configuration").then_some(()))
            }
        })
        .await
        .with_context(|| format!("nats-server did not reload; see {}", self.log_path().display()))
    }

    /// SIGKILL: the process dies with whatever it had not written.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait: a clean shutdown (the local stack's Ctrl-C).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::process::terminate(&mut child, Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    /// Starts the server again on the same ports and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.launch().await
    }
}
