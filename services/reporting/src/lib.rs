//! Reporting: counts up the administrative tree (county → city → province), built from the
//! province's event stream by a consumer with an inbox, so each event counts exactly once; and
//! each side of every hand-off, so a subtree's hand-offs are counted by outcome.
#![forbid(unsafe_code)]

pub mod cohorts;
mod consumers;
mod export;
pub mod figures;
mod grpc;
pub mod handoffs;
pub mod metrics;
pub mod periods;
mod report_pdf;
mod report_store;
pub mod reports;
mod store;
mod web;
mod workflow;

pub use consumers::filter_subjects;

use anyhow::Context;
use nol_proto::v1::reporting_service_server::ReportingServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Starts the reporting service of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let filters = consumers::filter_subjects(&platform.scheme, &platform.config.province);
    platform.spawn_consumer(filters, consumers::Counting::default());
    let service = grpc::Reporting::new(&platform);
    let sweeper = workflow::Reports::new(&platform);
    let (every, province, stop) =
        (platform.config.supervision_sweep, platform.config.province, platform.shutdown.clone());
    platform.spawn_task(async move {
        // The first tick is now: it also fixes the first period reports are due for.
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {
                    if let Err(error) = sweeper.sweep_late(&province).await {
                        tracing::warn!(%error, "late-report sweep failed; retrying at the next tick");
                    }
                }
            }
        }
    });
    let web = platform.config.web_addr.map(|addr| {
        let reports = std::sync::Arc::new(workflow::Reports::new(&platform));
        let (live, _) = tokio::sync::broadcast::channel(1024);
        (addr, reports, live, platform.keys.verifier.0.clone(), platform.pool.clone(), platform.clock.clone())
    });
    let (config, shutdown, tls) = (platform.config.clone(), platform.shutdown.clone(), platform.tls.clone());
    let routes = Routes::new(ReportingServiceServer::new(service));
    let mut running = platform.serve(routes, &["nol.v1.ReportingService"]).await?;
    if let Some((addr, reports, live, verifier, pool, clock)) = web {
        let upstream = web::Upstream::connect(
            &tls.client(),
            config.registry_url.as_deref(),
            config.cases_url.as_deref(),
            config.transfer_url.as_deref(),
            running.addr,
        )?;
        let state = web::WebState {
            verifier,
            reports,
            pool: pool.clone(),
            province: config.province,
            clock,
            upstream,
            live: live.clone(),
        };
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding the dashboard's port {addr}"))?;
        let https = tls.https_server()?;
        running.web_addr = Some(listener.local_addr()?);
        tokio::spawn(web::live::listen(pool, live, shutdown.clone()));
        let router = web::router(state, config.web_dir.clone());
        tokio::spawn(async move {
            if let Err(error) = web::serve(listener, https, router, shutdown).await {
                tracing::warn!(%error, "the dashboard stopped");
            }
        });
        tracing::info!(web = %running.web_addr.unwrap_or(addr), "dashboard");
    }
    Ok(running)
}
