//! The student registry (学籍): the province's schools and pupils (one per resident ID number),
//! bulk imports of the files bureaus exchange, the other agencies' lists, and the cross-checks
//! that find the children no one counted (R14, R15).
#![forbid(unsafe_code)]

mod crosscheck;
pub mod domain;
mod export;
mod grpc;
mod import;
mod store;

use nol_proto::v1::registry_service_server::RegistryServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Binds a pupil's encrypted resident ID number to its column.
const RESIDENT_ID_CONTEXT: &str = "registry.pupil.resident_id";
/// Binds the encrypted numbers of the household register and poverty registry lists.
const AGENCY_ID_CONTEXT: &str = "registry.agency.resident_id";

/// Starts the registry of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    import::spawn_error_sweep(&mut platform);
    let service = grpc::Registry::new(&platform);
    let server = RegistryServiceServer::new(service);
    platform.serve(Routes::new(server), &["nol.v1.RegistryService"]).await
}
