//! Starting a service: configuration and keys in, database and NATS connected, migrations
//! applied, the province stream ensured, the outbox relay and consumers running, the gRPC server
//! bound. Each service's `start` is this plus its own handlers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use nol_backbone::consumer::{Consumer, ConsumerSpec, EventHandler};
use nol_backbone::exchange::Exchange;
use nol_backbone::outbox::RelayWake;
use nol_backbone::relay::{Relay, RelaySettings};
use nol_backbone::{BackboneStats, StreamSettings};
use nol_events::SubjectScheme;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use std::sync::Arc;

use nol_proto::v1::admin_service_server::AdminServiceServer;

use crate::admin::{self, Admin, Gauges, NoGauges, Observer};
use crate::{ProvinceKeys, ServiceConfig, database, server};

/// A started service's connections and background tasks.
pub struct Platform {
    pub config: ServiceConfig,
    pub keys: ProvinceKeys,
    /// This service's TLS identity: its gRPC server, its calls to the province's other services,
    /// its NATS connection and the dashboard.
    pub tls: nol_tls::Tls,
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub scheme: SubjectScheme,
    pub stream: jetstream::stream::Stream,
    pub stats: BackboneStats,
    /// Tell it after committing a transaction that wrote to the outbox.
    pub wake: RelayWake,
    /// The time business rules see (`NOL_CLOCK_FILE` in tests).
    pub clock: crate::clock::Clock,
    pub shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// The province's side of the exchange, for a service that signs (holds `sign.key`).
    exchange: Option<Exchange>,
    consumer: Option<String>,
    old_key_rows: crate::reencrypt::OldKeyRows,
    gauges: Arc<dyn Gauges>,
}

/// A service that is serving; `addr` is the bound gRPC address, `metrics_addr` serves `/metrics`.
pub struct RunningService {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Where the dashboard is served (the reporting service with `NOL_WEB_ADDR`).
    pub web_addr: Option<SocketAddr>,
    pub stats: BackboneStats,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Waits until the service has shut down (after its shutdown token was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.handle.await.context("service task panicked")?
    }
}

impl Platform {
    /// Connects everything and applies the runtime's, the backbone's and the service's migrations.
    pub async fn start(
        config: ServiceConfig,
        service_migrator: sqlx::migrate::Migrator,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Platform> {
        nol_tls::install_crypto_provider();
        let tls = config.tls.load().context("loading the service's TLS identity")?;
        let mut keys = ProvinceKeys::load(&config.keys_dir)?;
        keys.verifier.0 = keys.verifier.0.clone().for_deployment(&config.token_audience, config.token_max_lifetime);
        let pool = database::connect(&config.database_url, config.service, config.database_pool_size)
            .await
            .with_context(|| format!("connecting to the database for {}", config.service))?;
        database::refuse_superuser(&pool).await?;
        database::migrate_runtime(&pool).await.context(
            "the runtime's migrations (the audit schema) are applied by `nol db provision`, run with the admin URL",
        )?;
        nol_backbone::migrate(&pool).await?;
        service_migrator.run(&pool).await?;
        let scheme = SubjectScheme::new(&config.subject_prefix)?;
        let client = nol_backbone::connect_nats(
            &config.nats_url,
            &format!("nol-{}-{}", config.service, config.province),
            &config.tls,
        )
        .await?;
        let js = nol_backbone::jetstream_context(client, Duration::from_secs(5));
        let settings = StreamSettings {
            replicas: config.stream_replicas,
            max_age: config.stream_max_age,
            ..StreamSettings::default()
        };
        let stream = nol_backbone::ensure_province_stream(&js, &scheme, &config.province, &settings)
            .await
            .context("creating the province stream")?;
        let stats = BackboneStats::default();
        let mut tasks = JoinSet::new();
        let relay_settings = RelaySettings {
            crash_after_batches: config.fault_relay_crash_after,
            max_attempts: config.outbox_max_attempts,
            ..RelaySettings::default()
        };
        let wake = RelayWake::default();
        // Only the transfer service holds sign.key: the others send nothing across provinces.
        let exchange = keys.sign.clone().map(|sign| Exchange::new(config.province, sign, Arc::new(keys.peers.clone())));
        let mut relay = Relay::new(pool.clone(), js.clone(), wake.clone(), relay_settings, stats.clone());
        if let Some(exchange) = &exchange {
            relay = relay.with_exchange(exchange.clone());
        }
        tasks.spawn(relay.run(shutdown.clone()));
        // The SIGHUP handler is installed here, before the service reports ready: a SIGHUP that
        // came before the task first ran would otherwise end the process (the default action).
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        tasks.spawn(reload_peers(keys.clone(), hangups, config.peers_reload, shutdown.clone()));
        let clock = match &config.clock_file {
            Some(path) => crate::clock::Clock::from_file(path.clone()),
            None => crate::clock::Clock::system(),
        };
        Ok(Platform {
            clock,
            config,
            keys,
            tls,
            pool,
            js,
            scheme,
            stream,
            stats,
            wake,
            shutdown,
            tasks,
            exchange,
            consumer: None,
            old_key_rows: Default::default(),
            gauges: Arc::new(NoGauges),
        })
    }

    /// Service-specific gauges for the admin service and `/metrics`.
    pub fn set_gauges(&mut self, gauges: impl Gauges) {
        self.gauges = Arc::new(gauges);
    }

    /// Runs a background task of the service until shutdown (it must watch `self.shutdown`).
    pub fn spawn_task(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Starts the service's durable consumer on its province stream.
    pub fn spawn_consumer<H: EventHandler>(&mut self, filter_subjects: Vec<String>, handler: H) {
        let spec = ConsumerSpec {
            durable_name: self.config.consumer_name.clone(),
            filter_subjects,
            ack_wait: self.config.ack_wait,
            max_batch: 256,
            max_deliveries: self.config.max_deliveries,
            crash_after_batches: self.config.fault_consumer_crash_after,
        };
        self.consumer = Some(spec.durable_name.clone());
        let mut consumer =
            Consumer::new(self.pool.clone(), self.stream.clone(), spec, handler, self.stats.clone(), self.wake.clone());
        if let Some(exchange) = &self.exchange {
            consumer = consumer.with_exchange(exchange.clone());
        }
        self.tasks.spawn(consumer.run(self.shutdown.clone()));
    }

    /// Starts the re-encryption of `columns` under the service's current data key
    /// ([`crate::reencrypt`]), every `NOL_REENCRYPT_SECS` and whenever the keys change.
    pub fn spawn_reencryption(&mut self, columns: Vec<crate::reencrypt::Column>) -> anyhow::Result<()> {
        let keyring = self.keys.data()?.keyring;
        self.tasks.spawn(crate::reencrypt::run(
            self.pool.clone(),
            keyring,
            columns,
            crate::reencrypt::interval_from_env(),
            self.old_key_rows.clone(),
            self.shutdown.clone(),
        ));
        Ok(())
    }

    /// A lazy channel to another service of this province (`NOL_*_URL`: one `https://` URL or
    /// the replicas' comma-separated), over mutual TLS with this service's certificate.
    pub fn upstream(&self, urls: &str, timeout: Option<Duration>) -> anyhow::Result<tonic::transport::Channel> {
        crate::upstream::channel(urls, &self.tls.client(), Duration::from_secs(3), timeout)
    }

    /// Binds the gRPC and metrics ports and serves `routes` with the admin service, health and
    /// reflection until shutdown, then waits for the relay and consumers to stop. Every call but
    /// health and reflection passes the token check and the RPC × role table first
    /// ([`crate::access`]): services add their servers to `routes` as they are.
    pub async fn serve(self, routes: Routes, service_names: &[&str]) -> anyhow::Result<RunningService> {
        let bound =
            server::bind(self.config.grpc_addr).await.with_context(|| format!("binding {}", self.config.grpc_addr))?;
        let addr = bound.addr;
        let metrics_listener = tokio::net::TcpListener::bind(self.config.metrics_addr)
            .await
            .with_context(|| format!("binding the metrics port {}", self.config.metrics_addr))?;
        let metrics_addr = metrics_listener.local_addr()?;
        let observer = Observer {
            service: self.config.service,
            province: self.config.province,
            pool: self.pool.clone(),
            stream: self.stream.clone(),
            stats: self.stats.clone(),
            consumer: self.consumer.clone(),
            gauges: self.gauges.clone(),
            old_key_rows: self.old_key_rows.clone(),
        };
        let admin = AdminServiceServer::new(Admin::new(observer.clone()));
        let access = crate::access::AccessLayer::new(self.keys.verifier.0.clone())
            .with_calls_in_flight(self.config.caller_concurrency)
            .with_timeouts(self.config.request_timeouts);
        let routes = routes.add_service(admin);
        let mut service_names = service_names.to_vec();
        service_names.push("nol.v1.AdminService");
        let (reporter, health_service) = server::health();
        for name in &service_names {
            reporter.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
        }
        let shutdown = self.shutdown.clone();
        let mut tasks = self.tasks;
        let metrics_shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(error) = admin::serve_metrics(metrics_listener, observer, metrics_shutdown).await {
                tracing::warn!(error = %error, "metrics server stopped");
            }
        });
        let pool = self.pool.clone();
        let stats = self.stats.clone();
        let names: Vec<String> = service_names.iter().map(|name| (*name).to_owned()).collect();
        let tls = self.tls.grpc_server();
        let handle = tokio::spawn(async move {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let served = server::serve(bound, tls, routes, access, &names, health_service, shutdown.clone()).await;
            shutdown.cancel();
            while tasks.join_next().await.is_some() {}
            pool.close().await;
            served
        });
        tracing::info!(service = %self.config.service, province = %self.config.province, addr = %addr, metrics = %metrics_addr, "serving");
        Ok(RunningService { addr, metrics_addr, web_addr: None, stats, handle })
    }
}

/// The common `main` of a service process: telemetry, configuration from the environment,
/// SIGINT/SIGTERM, start, a ready line on stdout (`NOL_READY service=… grpc=host:port`), wait.
pub async fn run_main<F, Fut>(service: &'static str, start: F) -> anyhow::Result<()>
where
    F: FnOnce(ServiceConfig, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<RunningService>>,
{
    let config = ServiceConfig::from_env(service)?;
    let province = config.province.to_string();
    let _telemetry = nol_telemetry::init_for(&format!("nol-{service}"), Some(&province))?;
    let shutdown = crate::shutdown::on_signal();
    let running = start(config, shutdown).await?;
    let web = running.web_addr.map(|addr| format!(" web={addr}")).unwrap_or_default();
    println!("NOL_READY service={service} grpc={} metrics={}{web}", running.addr, running.metrics_addr);
    running.wait().await
}

/// Reads the peer provinces' keys, the token keys and the keyrings again every `interval` and on
/// SIGHUP, logging what changed; a folder that cannot be read keeps the keys in use.
async fn reload_peers(
    keys: ProvinceKeys,
    mut hangups: Option<tokio::signal::unix::Signal>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let peers = keys.peers.clone();
    tracing::info!(peers = ?peers.provinces().iter().map(ToString::to_string).collect::<Vec<_>>(), "exchange peers");
    loop {
        let hangup = async {
            match hangups.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = hangup => {}
        }
        match peers.reload() {
            Ok(Some(provinces)) => tracing::info!(
                peers = ?provinces.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "exchange peers changed"
            ),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %error, "exchange peers could not be read again; keeping the ones in use")
            }
        }
        // The token keys (a rotation) and the revoked tokens.
        if let Err(error) = keys.verifier.reload(&keys.dir) {
            tracing::warn!(error = %error, "token keys could not be read again; keeping the ones in use");
        }
        // The data and event keyrings (`nol keys rotate`, `nol keys retire`).
        for keyring in keys.keyrings() {
            match keyring.reload() {
                Ok(Some((ids, current))) => {
                    tracing::info!(keyring = keyring.folder(), keys = ?ids, current_key = current, "keys changed")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    error = %error,
                    keyring = keyring.folder(),
                    "keys could not be read again; keeping the ones in use"
                ),
            }
        }
    }
}
