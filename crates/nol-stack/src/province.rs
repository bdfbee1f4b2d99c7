//! One province's four services, and a stack of provinces whose NATS servers are linked through
//! the national exchange's hub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nol_region::RegionCode;

use nol_events::SubjectScheme;

use crate::nats::{CertUser, NatsOptions, NatsServer, NatsTls, NatsUser};
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

/// The four running services of one province (and their further replicas, if asked for).
pub struct ProvinceStack {
    pub province: RegionCode,
    /// The province database as its admin (tests and tools); the services connect as their roles.
    pub database_url: String,
    /// The database's roles (`<database>_<service>`, the readers), made by `nol db provision`.
    pub roles: nol_runtime::provision::Roles,
    /// How the stack's tools and tests call the services (the CA, the tools' certificate).
    pub client_tls: nol_tls::ClientTls,
    pub registry: ServiceProcess,
    pub cases: ServiceProcess,
    pub transfer: ServiceProcess,
    pub reporting: ServiceProcess,
    /// Further processes of every service (`ProvinceSettings::replicas` − 1 sets), against the
    /// same database and stream: their relays share the outbox (`SKIP LOCKED`), their consumers
    /// the durable consumers, and each service's callers know every replica.
    pub replicas: Vec<Replicas>,
}

/// One more process of each of a province's services.
pub struct Replicas {
    pub registry: ServiceProcess,
    pub cases: ServiceProcess,
    pub transfer: ServiceProcess,
    pub reporting: ServiceProcess,
}

/// How to start one province's services.
#[derive(Debug, Clone)]
pub struct ProvinceSettings {
    pub province: RegionCode,
    /// The province database as its admin, provisioned (`nol_runtime::provision`): each service
    /// connects to it as its own role.
    pub database_url: String,
    pub nats_url: String,
    pub subject_prefix: String,
    /// The province's key folder: each service is given its own folder in it (`<service>/`).
    pub keys_dir: PathBuf,
    pub ports: ServicePorts,
    pub ack_wait: Duration,
    /// Log folder (one file per service), or `None` to inherit stderr.
    pub log_dir: Option<PathBuf>,
    /// More settings for every service (e.g. hand-off deadlines in tests).
    pub extra_env: BTreeMap<String, String>,
    /// Processes per service (1 unless replicas are tested); the first uses `ports`, the others
    /// free ones.
    pub replicas: usize,
    /// Each service's TLS identity (`NOL_TLS_*`), by service name; every service needs one.
    pub tls: BTreeMap<String, nol_tls::TlsFiles>,
    /// How the stack's tools and tests call the services.
    pub client_tls: nol_tls::ClientTls,
}

impl ProvinceStack {
    /// Starts the registry, then cases (which reads the registry), then transfer (which reads
    /// cases), then reporting (whose dashboard reads all three) — each as `replicas` processes,
    /// its callers given every replica's URL.
    pub async fn start(binary: &Path, settings: &ProvinceSettings) -> anyhow::Result<ProvinceStack> {
        let env = |port: u16, extra: &[(&str, String)]| {
            let mut env = BTreeMap::from([
                ("NOL_PROVINCE".to_owned(), settings.province.to_string()),
                ("NOL_DATABASE_URL".to_owned(), settings.database_url.clone()),
                ("NOL_NATS_URL".to_owned(), settings.nats_url.clone()),
                ("NOL_SUBJECT_PREFIX".to_owned(), settings.subject_prefix.clone()),
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
        let log = |service: &str, replica: usize| match &settings.log_dir {
            Some(dir) if replica == 0 => LogTo::File(dir.join(format!("{}-{service}.log", settings.province))),
            Some(dir) => LogTo::File(dir.join(format!("{}-{service}-{replica}.log", settings.province))),
            None => LogTo::Inherit,
        };
        let replicas = settings.replicas.max(1);
        let start_all = |service: &'static str, port: u16, extra: Vec<(&'static str, String)>| {
            let env = &env;
            let log = &log;
            async move {
                let mut processes = Vec::new();
                for replica in 0..replicas {
                    let name = match replica {
                        0 => format!("{service}@{}", settings.province),
                        _ => format!("{service}#{replica}@{}", settings.province),
                    };
                    let mut extra = extra.clone();
                    if replica > 0 && service == "reporting" {
                        extra.retain(|(key, _)| *key != "NOL_WEB_ADDR");
                        extra.push(("NOL_WEB_ADDR", "127.0.0.1:0".to_owned()));
                    }
                    let port = if replica == 0 { port } else { 0 };
                    extra.push(("NOL_DATABASE_URL", service_database_url(settings, service)?));
                    let tls = settings
                        .tls
                        .get(service)
                        .ok_or_else(|| anyhow::anyhow!("no TLS identity for the {service} service"))?;
                    extra.extend(tls.env());
                    // Its own key folder only.
                    extra.push(("NOL_KEYS_DIR", settings.keys_dir.join(service).display().to_string()));
                    processes.push(
                        ServiceProcess::start(binary, &name, service, env(port, &extra), log(service, replica)).await?,
                    );
                }
                anyhow::Ok(processes)
            }
        };
        let urls =
            |processes: &[ServiceProcess]| processes.iter().map(ServiceProcess::url).collect::<Vec<_>>().join(",");
        let registry = start_all("registry", settings.ports.registry, Vec::new()).await?;
        let cases = start_all("cases", settings.ports.cases, vec![("NOL_REGISTRY_URL", urls(&registry))]).await?;
        let transfer = start_all(
            "transfer",
            settings.ports.transfer,
            vec![("NOL_REGISTRY_URL", urls(&registry)), ("NOL_CASES_URL", urls(&cases))],
        )
        .await?;
        let reporting = start_all(
            "reporting",
            settings.ports.reporting,
            vec![
                ("NOL_REGISTRY_URL", urls(&registry)),
                ("NOL_CASES_URL", urls(&cases)),
                ("NOL_TRANSFER_URL", urls(&transfer)),
                ("NOL_WEB_ADDR", format!("127.0.0.1:{}", settings.ports.web)),
            ],
        )
        .await?;
        let mut sets = registry
            .into_iter()
            .zip(cases)
            .zip(transfer)
            .zip(reporting)
            .map(|(((registry, cases), transfer), reporting)| Replicas { registry, cases, transfer, reporting });
        let first = sets.next().ok_or_else(|| anyhow::anyhow!("no process started"))?;
        Ok(ProvinceStack {
            province: settings.province,
            database_url: settings.database_url.clone(),
            roles: database_roles(&settings.database_url)?,
            client_tls: settings.client_tls.clone(),
            registry: first.registry,
            cases: first.cases,
            transfer: first.transfer,
            reporting: first.reporting,
            replicas: sets.collect(),
        })
    }

    /// The province database as `role` (one of [`ProvinceStack::roles`]).
    pub fn role_url(&self, role: &str) -> String {
        postgres::role_url(&self.database_url, role)
    }

    /// Every process of the province that runs (not killed or stopped), first replica first.
    pub fn running(&self) -> Vec<&ServiceProcess> {
        let firsts = [&self.registry, &self.cases, &self.transfer, &self.reporting];
        let others = self.replicas.iter().flat_map(|set| [&set.registry, &set.cases, &set.transfer, &set.reporting]);
        firsts.into_iter().chain(others).filter(|process| process.pid().is_some()).collect()
    }

    /// Tells every service to read the peer provinces' keys again (SIGHUP).
    pub fn reload_peers(&self) {
        for service in self.running() {
            if let Some(pid) = service.pid() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP);
            }
        }
    }

    /// Stops the services gracefully, transfer first.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for set in &mut self.replicas {
            set.transfer.stop().await?;
            set.cases.stop().await?;
            set.reporting.stop().await?;
            set.registry.stop().await?;
        }
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
    /// Provinces to run; each province's NATS server links to the exchange's hub as a leaf node.
    pub provinces: Vec<(RegionCode, ServicePorts, Option<u16>)>,
    /// A PostgreSQL server's admin URL; each province gets database `<database_prefix>_<code>`.
    pub admin_database_url: String,
    pub database_prefix: String,
    pub subject_prefix: String,
    pub ack_wait: Duration,
    /// Write service logs to files under the data folder (else inherit stderr).
    pub log_to_files: bool,
    /// Leaf-node port of the exchange's hub, `None` for a free one.
    pub hub_leaf_port: Option<u16>,
    /// Route the second province's link to the hub through a [`LinkProxy`] that tests can cut.
    pub cuttable_link: bool,
    /// More settings for every service.
    pub extra_env: BTreeMap<String, String>,
    /// Processes per service in every province (1 but in the replica tests).
    pub replicas: usize,
}

impl StackSettings {
    /// What the benchmarks run: Jiangsu and Anhui (and the exchange's hub) on free ports, databases
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
            replicas: 1,
        }
    }
}

/// A running stack: the national exchange's hub, each province's NATS server linked to it,
/// databases, and every province's services.
pub struct Stack {
    pub keys: StackKeys,
    /// The national exchange: a nats-server of its own (a cluster of three in production, see
    /// `deploy/nats/`), without JetStream, that every province links to as a leaf node with its
    /// own user. No province hosts it, so any province may be down while the others exchange.
    pub hub: NatsServer,
    /// Each province's nats-server (its own JetStream domain), in the order of the settings.
    pub nats: Vec<NatsServer>,
    /// The link between the second province and the hub, when `cuttable_link` was asked for.
    pub link: Option<LinkProxy>,
    pub provinces: Vec<ProvinceStack>,
    settings: StackSettings,
    scheme: SubjectScheme,
}

impl Stack {
    pub async fn start(settings: StackSettings) -> anyhow::Result<Stack> {
        // The transfer service will not start without it (it writes the notices).
        crate::tools::cjk_font()?;
        let codes: Vec<RegionCode> = settings.provinces.iter().map(|(code, _, _)| *code).collect();
        let keys = StackKeys::ensure(&settings.data_dir.join("keys"), &codes)?;
        std::fs::create_dir_all(settings.data_dir.join("log"))?;
        let scheme = SubjectScheme::new(&settings.subject_prefix)?;
        // The hub knows one user per province, limited to that province's cross-province
        // subjects; a province's leaf link authenticates as it.
        let users = codes.iter().map(|code| leaf_user(&keys, &scheme, code)).collect::<anyhow::Result<Vec<_>>>()?;
        let hub = NatsServer::start(
            &settings.data_dir.join("nats").join("exchange"),
            NatsOptions {
                name: "nol-exchange".to_owned(),
                leaf_listen: Some(settings.hub_leaf_port),
                users,
                no_jetstream: true,
                tls: Some(NatsTls { server: keys.exchange_tls()?, client: keys.tools_tls()? }),
                ..NatsOptions::default()
            },
        )
        .await?;
        let mut stack = Stack {
            keys,
            hub,
            nats: Vec::new(),
            link: None,
            provinces: Vec::new(),
            settings: settings.clone(),
            scheme,
        };
        for (index, (code, ports, client_port)) in settings.provinces.iter().enumerate() {
            let cuttable = index == 1 && settings.cuttable_link;
            stack.start_province(*code, *ports, *client_port, cuttable).await?;
        }
        Ok(stack)
    }

    /// A province joins the running exchange by configuration alone: its keys are made and every
    /// province's `peers/` folder learns its public keys (the running services read them again on
    /// SIGHUP, sent here, or on their own within `NOL_PEERS_RELOAD_SECS`), the hub learns its
    /// user and reloads, then its server links to the hub and its services start. Nothing that
    /// runs is restarted.
    pub async fn add_province(&mut self, code: RegionCode, ports: ServicePorts) -> anyhow::Result<()> {
        let mut codes: Vec<RegionCode> = self.settings.provinces.iter().map(|(code, _, _)| *code).collect();
        codes.push(code);
        self.keys = StackKeys::ensure(&self.settings.data_dir.join("keys"), &codes)?;
        self.hub.add_user(leaf_user(&self.keys, &self.scheme, &code)?).await?;
        // The running provinces learn the new peer (the new one read every key as it started).
        for province in &self.provinces {
            province.reload_peers();
        }
        self.start_province(code, ports, None, false).await?;
        self.settings.provinces.push((code, ports, None));
        Ok(())
    }

    async fn start_province(
        &mut self,
        code: RegionCode,
        ports: ServicePorts,
        client_port: Option<u16>,
        cuttable: bool,
    ) -> anyhow::Result<()> {
        let settings = &self.settings;
        let user = leaf_user(&self.keys, &self.scheme, &code)?;
        let hub_leaf = self.hub.leaf_port.ok_or_else(|| anyhow::anyhow!("the hub has no leaf port"))?;
        let leaf_port = if cuttable {
            let proxy = LinkProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], hub_leaf))).await?;
            let port = proxy.addr.port();
            self.link = Some(proxy);
            port
        } else {
            hub_leaf
        };
        let options = NatsOptions {
            name: format!("p{code}"),
            client_port,
            leaf_remotes: vec![format!("nats-leaf://{}:{}@127.0.0.1:{leaf_port}", user.user, user.password)],
            tls: Some(NatsTls { server: self.keys.nats_tls(&code)?, client: self.keys.tools_tls()? }),
            // Every client is known by its certificate: each service may publish only its own
            // events and messages; the operator's tools (and the tests) are unrestricted.
            cert_users: crate::keys::SERVICES
                .into_iter()
                .map(|service| CertUser {
                    name: format!("{service}.{code}.nol"),
                    permissions: Some(self.scheme.service_permissions(&code, service)),
                })
                .chain([CertUser { name: "tools.nol".to_owned(), permissions: None }])
                .collect(),
            ..NatsOptions::default()
        };
        let server = NatsServer::start(&settings.data_dir.join("nats").join(code.to_string()), options).await?;
        let database_url =
            postgres::create_database(&settings.admin_database_url, &format!("{}_{code}", settings.database_prefix))
                .await?;
        // A role per service, the audit log out of the services' reach (issue 12), before any
        // service starts: each connects as its own role.
        nol_runtime::provision::provision(&database_url, &nol_runtime::provision::Passwords::default()).await?;
        let province_settings = ProvinceSettings {
            province: code,
            database_url,
            nats_url: server.client_url(),
            subject_prefix: settings.subject_prefix.clone(),
            keys_dir: self.keys.province_dir(&code),
            ports,
            ack_wait: settings.ack_wait,
            log_dir: settings.log_to_files.then(|| settings.data_dir.join("log")),
            extra_env: settings.extra_env.clone(),
            replicas: settings.replicas,
            tls: crate::keys::SERVICES
                .into_iter()
                .map(|service| Ok((service.to_owned(), self.keys.service_tls(&code, service)?)))
                .collect::<anyhow::Result<_>>()?,
            client_tls: self.keys.client_tls()?,
        };
        self.nats.push(server);
        self.provinces.push(ProvinceStack::start(&settings.binary, &province_settings).await?);
        Ok(())
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

    /// Stops every service, then the NATS servers, the hub last.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for province in &mut self.provinces {
            province.stop().await?;
        }
        for server in self.nats.iter_mut().rev() {
            server.stop().await?;
        }
        self.hub.stop().await
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

/// The roles of the database `url` names.
fn database_roles(url: &str) -> anyhow::Result<nol_runtime::provision::Roles> {
    let name = url.rsplit_once('/').map(|(_, name)| name.split('?').next().unwrap_or(name)).unwrap_or_default();
    nol_runtime::provision::Roles::new(name)
}

/// `service`'s database URL: the province database as the service's own role.
fn service_database_url(settings: &ProvinceSettings, service: &str) -> anyhow::Result<String> {
    let role = database_roles(&settings.database_url)?.service(service);
    Ok(postgres::role_url(&settings.database_url, &role))
}

/// The hub's user for `province`: its link password, and permission for exactly its own
/// cross-province subjects (`SubjectScheme::link_permissions`).
fn leaf_user(keys: &StackKeys, scheme: &SubjectScheme, province: &RegionCode) -> anyhow::Result<NatsUser> {
    Ok(NatsUser {
        user: format!("p{province}"),
        password: keys.link_password(province)?,
        permissions: Some(scheme.link_permissions(province)),
    })
}
