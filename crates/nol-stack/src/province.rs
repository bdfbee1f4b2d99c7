//! One province's four services, and a stack of provinces whose NATS servers are linked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nol_region::RegionCode;

use nol_events::SubjectScheme;

use crate::nats::{NatsOptions, NatsServer, NatsUser};
use crate::process::{LogTo, ServiceProcess};
use crate::proxy::LinkProxy;
use crate::{StackKeys, postgres};

/// gRPC ports of one province's services; 0 picks a free port.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServicePorts {
    pub registry: u16,
    pub cases: u16,
    pub transfer: u16,
    pub reporting: u16,
    /// The dashboard (HTTP, served by the reporting service).
    pub web: u16,
}

impl ServicePorts {
    /// The local stack's defaults: 50051–50054 and the dashboard on 18080, plus `offset` (10 for
    /// the second province).
    pub fn standard(offset: u16) -> ServicePorts {
        ServicePorts {
            registry: 50051 + offset,
            cases: 50052 + offset,
            transfer: 50053 + offset,
            reporting: 50054 + offset,
            web: 18080 + offset,
        }
    }
}

/// The four running services of one province.
pub struct ProvinceStack {
    pub province: RegionCode,
    pub database_url: String,
    pub registry: ServiceProcess,
    pub cases: ServiceProcess,
    pub transfer: ServiceProcess,
    pub reporting: ServiceProcess,
}

/// How to start one province's services.
#[derive(Debug, Clone)]
pub struct ProvinceSettings {
    pub province: RegionCode,
    pub database_url: String,
    pub nats_url: String,
    pub subject_prefix: String,
    pub keys_dir: PathBuf,
    pub ports: ServicePorts,
    pub ack_wait: Duration,
    /// Log folder (one file per service), or `None` to inherit stderr.
    pub log_dir: Option<PathBuf>,
    /// More settings for every service (e.g. hand-off deadlines in tests).
    pub extra_env: BTreeMap<String, String>,
}

impl ProvinceStack {
    /// Starts the registry, then cases (which reads the registry), then transfer (which reads
    /// cases), then reporting (whose dashboard reads all three).
    pub async fn start(binary: &Path, settings: &ProvinceSettings) -> anyhow::Result<ProvinceStack> {
        let env = |port: u16, extra: &[(&str, String)]| {
            let mut env = BTreeMap::from([
                ("NOL_PROVINCE".to_owned(), settings.province.to_string()),
                ("NOL_DATABASE_URL".to_owned(), settings.database_url.clone()),
                ("NOL_NATS_URL".to_owned(), settings.nats_url.clone()),
                ("NOL_SUBJECT_PREFIX".to_owned(), settings.subject_prefix.clone()),
                ("NOL_KEYS_DIR".to_owned(), settings.keys_dir.display().to_string()),
                ("NOL_ACK_WAIT_SECS".to_owned(), settings.ack_wait.as_secs_f64().to_string()),
                ("NOL_GRPC_ADDR".to_owned(), format!("127.0.0.1:{port}")),
                ("NOL_WEB_DIR".to_owned(), crate::repo_root().join("web").display().to_string()),
            ]);
            env.extend(settings.extra_env.clone());
            for (key, value) in extra {
                env.insert((*key).to_owned(), value.clone());
            }
            env
        };
        let log = |service: &str| match &settings.log_dir {
            Some(dir) => LogTo::File(dir.join(format!("{}-{service}.log", settings.province))),
            None => LogTo::Inherit,
        };
        let name = |service: &str| format!("{service}@{}", settings.province);
        let registry = ServiceProcess::start(
            binary,
            &name("registry"),
            "registry",
            env(settings.ports.registry, &[]),
            log("registry"),
        )
        .await?;
        let cases = ServiceProcess::start(
            binary,
            &name("cases"),
            "cases",
            env(settings.ports.cases, &[("NOL_REGISTRY_URL", registry.url())]),
            log("cases"),
        )
        .await?;
        let transfer = ServiceProcess::start(
            binary,
            &name("transfer"),
            "transfer",
            env(settings.ports.transfer, &[("NOL_REGISTRY_URL", registry.url()), ("NOL_CASES_URL", cases.url())]),
            log("transfer"),
        )
        .await?;
        let reporting = ServiceProcess::start(
            binary,
            &name("reporting"),
            "reporting",
            env(
                settings.ports.reporting,
                &[
                    ("NOL_REGISTRY_URL", registry.url()),
                    ("NOL_CASES_URL", cases.url()),
                    ("NOL_TRANSFER_URL", transfer.url()),
                    ("NOL_WEB_ADDR", format!("127.0.0.1:{}", settings.ports.web)),
                ],
            ),
            log("reporting"),
        )
        .await?;
        Ok(ProvinceStack {
            province: settings.province,
            database_url: settings.database_url.clone(),
            registry,
            cases,
            transfer,
            reporting,
        })
    }

    /// Stops the services gracefully, transfer first.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.transfer.stop().await?;
        self.cases.stop().await?;
        self.reporting.stop().await?;
        self.registry.stop().await
    }
}

/// What a stack of provinces needs.
#[derive(Debug, Clone)]
pub struct StackSettings {
    /// The `nol` binary whose `serve` command runs a service.
    pub binary: PathBuf,
    /// Keys, NATS stores and logs live here.
    pub data_dir: PathBuf,
    /// Provinces to run, the first being the NATS hub the others link to as leaf nodes.
    pub provinces: Vec<(RegionCode, ServicePorts, Option<u16>)>,
    /// A PostgreSQL server's admin URL; each province gets database `<database_prefix>_<code>`.
    pub admin_database_url: String,
    pub database_prefix: String,
    pub subject_prefix: String,
    pub ack_wait: Duration,
    /// Write service logs to files under the data folder (else inherit stderr).
    pub log_to_files: bool,
    /// Leaf-node port of the hub, `None` for a free one.
    pub hub_leaf_port: Option<u16>,
    /// Route the link between provinces through a [`LinkProxy`] that tests can cut.
    pub cuttable_link: bool,
    /// More settings for every service.
    pub extra_env: BTreeMap<String, String>,
}

impl StackSettings {
    /// What the benchmarks run: Jiangsu (the hub) and Anhui on free ports, databases
    /// `nol_<tag>_<code>` on the machine's PostgreSQL, subjects under `<tag>`, service logs in files.
    pub fn bench(binary: PathBuf, data_dir: PathBuf, tag: &str) -> StackSettings {
        let province = |code: &str| RegionCode::parse(code).expect("a province code of the GB/T 2260 tree");
        StackSettings {
            binary,
            data_dir,
            provinces: vec![
                (province("320000"), ServicePorts::default(), None),
                (province("340000"), ServicePorts::default(), None),
            ],
            admin_database_url: crate::postgres::default_admin_url(),
            database_prefix: format!("nol_{tag}"),
            subject_prefix: tag.to_owned(),
            ack_wait: Duration::from_secs(30),
            log_to_files: true,
            hub_leaf_port: None,
            cuttable_link: false,
            extra_env: BTreeMap::new(),
        }
    }
}

/// A running stack: linked NATS servers, databases, and every province's services.
pub struct Stack {
    pub keys: StackKeys,
    pub nats: Vec<NatsServer>,
    /// The link between provinces, when `cuttable_link` was asked for.
    pub link: Option<LinkProxy>,
    pub provinces: Vec<ProvinceStack>,
    settings: StackSettings,
}

impl Stack {
    pub async fn start(settings: StackSettings) -> anyhow::Result<Stack> {
        // The transfer service will not start without it (it writes the notices).
        crate::tools::cjk_font()?;
        let codes: Vec<RegionCode> = settings.provinces.iter().map(|(code, _, _)| *code).collect();
        let keys = StackKeys::ensure(&settings.data_dir.join("keys"), &codes)?;
        let log_dir = settings.data_dir.join("log");
        std::fs::create_dir_all(&log_dir)?;
        // The first province's server is the hub; every other province links to it as a leaf
        // node, limited to its own cross-province subjects.
        let scheme = SubjectScheme::new(&settings.subject_prefix)?;
        let mut leaf_users = Vec::new();
        for code in codes.iter().skip(1) {
            leaf_users.push(NatsUser {
                user: format!("p{code}"),
                password: keys.link_password(code)?,
                permissions: Some(scheme.link_permissions(code)),
            });
        }
        let hub_local =
            NatsUser { user: "services".to_owned(), password: keys.link_password(&codes[0])?, permissions: None };
        let mut nats: Vec<NatsServer> = Vec::new();
        let mut link = None;
        for (index, (code, _, client_port)) in settings.provinces.iter().enumerate() {
            if index == 1 && settings.cuttable_link {
                let hub_leaf = nats[0].leaf_port.ok_or_else(|| anyhow::anyhow!("the hub has no leaf port"))?;
                link = Some(LinkProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], hub_leaf))).await?);
            }
            let leaf_remotes = match (nats.first(), index.checked_sub(1).and_then(|user| leaf_users.get(user))) {
                (Some(_), Some(user)) if link.is_some() => {
                    let port = link.as_ref().map(|proxy: &LinkProxy| proxy.addr.port()).unwrap_or_default();
                    vec![format!("nats-leaf://{}:{}@127.0.0.1:{port}", user.user, user.password)]
                }
                (Some(hub), Some(user)) => hub.leaf_url_as(user).into_iter().collect(),
                _ => Vec::new(),
            };
            let options = NatsOptions {
                name: format!("p{code}"),
                client_port: *client_port,
                leaf_listen: (index == 0).then_some(settings.hub_leaf_port),
                leaf_remotes,
                users: if index == 0 {
                    std::iter::once(hub_local.clone()).chain(leaf_users.iter().cloned()).collect()
                } else {
                    Vec::new()
                },
                client_user: (index == 0).then(|| hub_local.clone()),
                sync_always: false,
            };
            nats.push(NatsServer::start(&settings.data_dir.join("nats").join(code.to_string()), options).await?);
        }
        let mut provinces = Vec::new();
        for ((code, ports, _), server) in settings.provinces.iter().zip(&nats) {
            let database_url = postgres::create_database(
                &settings.admin_database_url,
                &format!("{}_{code}", settings.database_prefix),
            )
            .await?;
            let province_settings = ProvinceSettings {
                province: *code,
                database_url,
                nats_url: server.client_url(),
                subject_prefix: settings.subject_prefix.clone(),
                keys_dir: keys.province_dir(code),
                ports: *ports,
                ack_wait: settings.ack_wait,
                log_dir: settings.log_to_files.then(|| log_dir.clone()),
                extra_env: settings.extra_env.clone(),
            };
            provinces.push(ProvinceStack::start(&settings.binary, &province_settings).await?);
        }
        Ok(Stack { keys, nats, link, provinces, settings })
    }

    pub fn province_mut(&mut self, code: &str) -> &mut ProvinceStack {
        self.provinces
            .iter_mut()
            .find(|province| province.province.as_str() == code)
            .unwrap_or_else(|| panic!("no province {code} in this stack"))
    }

    pub fn province(&self, code: &str) -> &ProvinceStack {
        self.provinces
            .iter()
            .find(|province| province.province.as_str() == code)
            .unwrap_or_else(|| panic!("no province {code} in this stack"))
    }

    /// Stops every service, then the NATS servers.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for province in &mut self.provinces {
            province.stop().await?;
        }
        for server in self.nats.iter_mut().rev() {
            server.stop().await?;
        }
        Ok(())
    }

    /// Stops everything and drops the stack's databases (tests).
    pub async fn destroy(mut self) -> anyhow::Result<()> {
        self.stop().await?;
        for (code, _, _) in &self.settings.provinces {
            postgres::drop_database(
                &self.settings.admin_database_url,
                &format!("{}_{code}", self.settings.database_prefix),
            )
            .await?;
        }
        Ok(())
    }
}
