//! Case management: the dropout ledger (台账) and one case file per child (一人一案).
#![forbid(unsafe_code)]

mod consumers;
pub mod deadlines;
pub mod domain;
mod export;
mod file_store;
mod grpc;
mod ledger;
mod lifecycle;
mod registry;
mod store;
pub mod supervision;
mod suspects;

use nol_proto::v1::case_service_server::CaseServiceServer;
use nol_proto::v1::supervision_service_server::SupervisionServiceServer;
use nol_proto::v1::suspect_service_server::SuspectServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Binds encrypted resident ID numbers to this column, so a value copied elsewhere won't decrypt.
const RESIDENT_ID_CONTEXT: &str = "cases.dropout_case.resident_id";

/// Starts the case service of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let registry_url = config.require_url(&config.registry_url, "NOL_REGISTRY_URL")?;
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let handler = consumers::CaseEvents {
        scheme: platform.scheme.clone(),
        data_key: platform.keys.data.clone(),
        seal: platform.keys.seal.clone(),
        clock: platform.clock.clone(),
    };
    let filters = consumers::filter_subjects(&platform.scheme, &platform.config.province);
    platform.spawn_consumer(filters, handler);
    let service = grpc::Cases::new(&platform, &registry_url)?;
    let supervision = supervision::Supervision::new(&platform);
    supervision::spawn_sweeper(supervision.clone(), platform.config.supervision_sweep, platform.shutdown.clone());
    let suspects = suspects::grpc::Suspects::new(&platform, &registry_url)?;
    // Evidence files of up to 10 MiB arrive in one AddEvidence request.
    let cases = CaseServiceServer::new(service).max_decoding_message_size(lifecycle::MAX_EVIDENCE_FILE + (1 << 20));
    let routes = Routes::new(tonic::service::interceptor::InterceptedService::new(cases, platform.authenticate()))
        .add_service(SuspectServiceServer::with_interceptor(suspects, platform.authenticate()))
        .add_service(SupervisionServiceServer::with_interceptor(supervision, platform.authenticate()));
    platform.serve(routes, &["nol.v1.CaseService", "nol.v1.SuspectService", "nol.v1.SupervisionService"]).await
}
