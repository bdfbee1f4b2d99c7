//! The student registry (学籍): the province's schools and pupils (one per resident ID number),
//! bulk imports of the files bureaus exchange, the other agencies' lists, and the cross-checks
//! that find the children no one counted (R14, R15).
#![forbid(unsafe_code)]

mod crosscheck;
pub mod domain;
mod export;
mod group_commit;
mod grpc;
mod import;
mod store;

use nol_proto::v1::registry_service_server::RegistryServiceServer;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Binds a pupil's encrypted resident ID number to its column (with the row's blind index, the
/// v2 ciphertext's row binding; also the imports' enrollment conflicts, which copy it).
const RESIDENT_ID_CONTEXT: &str = "registry.pupil.resident_id";
/// Binds the encrypted numbers of the household register and poverty registry lists.
const AGENCY_ID_CONTEXT: &str = "registry.agency.resident_id";

/// Every column of the registry holding a resident ID encrypted at rest, for the re-encryption
/// after a key rotation. Each ciphertext is bound to its row's blind index; a check item copies
/// the ciphertext of the row it was found in, whose index is its `subject` (a household
/// member's, a pupil's), that less a leading `p` (a poverty-list child's) or its first 32 bytes
/// (an enrollment conflict's, followed by the school code).
fn encrypted_columns() -> Vec<nol_runtime::reencrypt::Column> {
    use nol_runtime::reencrypt::{Column, RowPart};
    vec![
        Column::by_index("pupil", RESIDENT_ID_CONTEXT),
        Column::by_index("enrollment_conflict", RESIDENT_ID_CONTEXT),
        Column::by_index("household_member", AGENCY_ID_CONTEXT),
        Column::by_index("poverty_child", AGENCY_ID_CONTEXT),
        Column {
            table: "check_item",
            cipher: "resident_id_cipher",
            row: "subject",
            bindings: vec![
                (AGENCY_ID_CONTEXT, RowPart::Whole),
                (RESIDENT_ID_CONTEXT, RowPart::Whole),
                (AGENCY_ID_CONTEXT, RowPart::After(1)),
                (RESIDENT_ID_CONTEXT, RowPart::First(32)),
            ],
        },
    ]
}

/// Starts the registry of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    import::spawn_error_sweep(&mut platform);
    platform.spawn_reencryption(encrypted_columns())?;
    let service = grpc::Registry::new(&platform)?;
    let server = RegistryServiceServer::new(service);
    platform.serve(Routes::new(server), &["nol.v1.RegistryService"]).await
}
