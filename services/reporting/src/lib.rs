//! Reporting: counts up the administrative tree (county → city → province), built from the
//! province's event stream by a consumer with an inbox, so each event counts exactly once; and
//! each side of every hand-off, so a subtree's hand-offs are counted by outcome.
#![forbid(unsafe_code)]

mod consumers;
mod export;
pub mod figures;
mod grpc;
pub mod handoffs;
pub mod metrics;
pub mod periods;
mod report_store;
pub mod reports;
mod store;
mod workflow;

use nol_proto::v1::reporting_service_server::ReportingServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Starts the reporting service of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let filters = consumers::filter_subjects(&platform.scheme, &platform.config.province);
    platform.spawn_consumer(filters, consumers::Counting);
    let service = grpc::Reporting::new(&platform);
    let routes = Routes::new(ReportingServiceServer::with_interceptor(service, platform.authenticate()));
    platform.serve(routes, &["nol.v1.ReportingService"]).await
}
