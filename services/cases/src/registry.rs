//! The case service's client of the province's registry.

use nol_auth::Caller;
use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::{GetPupilRequest, Pupil, PupilView};
use nol_runtime::ServiceError;
use nol_telemetry::PropagateTrace;
use tonic::Request;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type RegistryClient = RegistryServiceClient<InterceptedService<Channel, PropagateTrace>>;

/// A client of the registry at `url`, connecting on first use (mutual TLS) and carrying the trace
/// context.
pub fn client(platform: &nol_runtime::Platform, url: &str) -> anyhow::Result<RegistryClient> {
    let channel = platform.upstream(url, None)?;
    Ok(RegistryServiceClient::with_interceptor(channel, PropagateTrace))
}

/// Reads a pupil as the caller: the registry checks the caller's scope over the pupil again and
/// audits the read.
pub async fn pupil(
    registry: &RegistryClient,
    caller: &Caller,
    pupil_id: Uuid,
    view: PupilView,
) -> Result<Pupil, ServiceError> {
    let mut lookup = Request::new(GetPupilRequest { pupil_id: pupil_id.to_string(), view: view as i32 });
    lookup.metadata_mut().insert("authorization", caller.authorization_header());
    registry
        .clone()
        .get_pupil(lookup)
        .await
        .map_err(|status| ServiceError::from_upstream(status, "registry"))?
        .into_inner()
        .pupil
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("registry answered without a pupil")))
}
