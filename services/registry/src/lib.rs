//! The student registry (学籍): the province's pupils, one per resident ID number.
#![forbid(unsafe_code)]

pub mod domain;
mod grpc;
mod store;

use nol_proto::v1::registry_service_server::RegistryServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Starts the registry of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let service = grpc::Registry::new(&platform);
    let routes = Routes::new(RegistryServiceServer::with_interceptor(service, platform.authenticate()));
    platform.serve(routes, &["nol.v1.RegistryService"]).await
}
