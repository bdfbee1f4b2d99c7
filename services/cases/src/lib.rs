//! Case management: the dropout ledger (台账) and one case file per child (一人一案).
//!
//! One folder per capability, each with the same inside — `domain` (rules, no I/O), `store` (the
//! SQL of its own tables), `service` (one use case per RPC) and `grpc` (transport):
//!
//! | capability | writes |
//! |---|---|
//! | `case` — the case file and its life; `case::ledger` is the one writer of cases | `dropout_case`, `case_history`, `deadline_policy`, the file's tables |
//! | `suspects` — the suspected-dropout ledger (R14) | `suspect` |
//! | `supervision` — deadlines, 督办 and the semester-start check (R12, R13) | `supervision_item`, `semester_check`, `semester_check_item` |
//!
//! Shared pieces: `child` (the child's encrypted record and masked summary), `registry` (the
//! client of the province's registry), `error` (rule errors as service errors), `consumers`
//! (the events this service applies).
#![forbid(unsafe_code)]

pub mod case;
pub mod child;
mod consumers;
mod error;
mod registry;
pub mod supervision;
pub mod suspects;

use nol_proto::v1::case_handoff_service_server::CaseHandoffServiceServer;
use nol_proto::v1::case_service_server::CaseServiceServer;
use nol_proto::v1::supervision_service_server::SupervisionServiceServer;
use nol_proto::v1::suspect_service_server::SuspectServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Starts the case service of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let registry_url = config.require_url(&config.registry_url, "NOL_REGISTRY_URL")?;
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let handler = consumers::CaseEvents {
        scheme: platform.scheme.clone(),
        data_key: platform.keys.data()?,
        event_keys: platform.keys.events()?,
        seal: platform.keys.seal()?,
        clock: platform.clock.clone(),
    };
    // Every column of the case service holding a resident ID encrypted at rest, each bound to
    // its row's blind index: re-encrypted under the current key after a rotation.
    platform.spawn_reencryption(vec![
        nol_runtime::reencrypt::Column::by_index("dropout_case", child::CASE_RESIDENT_ID_CONTEXT),
        nol_runtime::reencrypt::Column::by_index("suspect", child::SUSPECT_RESIDENT_ID_CONTEXT),
    ])?;
    let filters = consumers::filter_subjects(&platform.scheme, &platform.config.province);
    platform.spawn_consumer(filters, handler);
    let registry = registry::client(&platform, &registry_url)?;
    let cases = std::sync::Arc::new(case::service::CaseService::new(&platform, registry.clone())?);
    let suspects = suspects::service::SuspectService::new(&platform, registry)?;
    let supervision = supervision::service::SupervisionService::new(&platform);
    supervision::sweeper::spawn(supervision.clone(), platform.config.supervision_sweep, platform.shutdown.clone());
    let handoffs = CaseHandoffServiceServer::new(case::grpc::CaseHandoffGrpc(cases.clone()));
    // Evidence files of up to 10 MiB arrive in one AddEvidence request.
    let cases = CaseServiceServer::new(case::grpc::CaseGrpc(cases))
        .max_decoding_message_size(case::service::MAX_EVIDENCE_FILE + (1 << 20));
    let routes = Routes::new(cases)
        .add_service(handoffs)
        .add_service(SuspectServiceServer::new(suspects::grpc::SuspectGrpc(suspects)))
        .add_service(SupervisionServiceServer::new(supervision::grpc::SupervisionGrpc(supervision)));
    platform
        .serve(
            routes,
            &["nol.v1.CaseService", "nol.v1.CaseHandoffService", "nol.v1.SuspectService", "nol.v1.SupervisionService"],
        )
        .await
}
