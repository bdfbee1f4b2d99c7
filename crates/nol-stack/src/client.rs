//! gRPC clients of one province's services, calling with a bearer token.

use nol_proto::v1::admin_service_client::AdminServiceClient;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::reporting_service_client::ReportingServiceClient;
use nol_proto::v1::supervision_service_client::SupervisionServiceClient;
use nol_proto::v1::suspect_service_client::SuspectServiceClient;
use nol_proto::v1::transfer_service_client::TransferServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::ProvinceStack;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Bearer> {
        Ok(Bearer(format!("Bearer {token}").parse()?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The four services of a province (and the ledger the case service also serves), as one caller.
#[derive(Clone)]
pub struct Clients {
    pub registry: RegistryServiceClient<Authed>,
    pub cases: CaseServiceClient<Authed>,
    /// The suspected-dropout ledger, served by the case service.
    pub suspects: SuspectServiceClient<Authed>,
    pub transfer: TransferServiceClient<Authed>,
    pub reporting: ReportingServiceClient<Authed>,
    /// Deadlines, supervision and semester checks, served by the case service.
    pub supervision: SupervisionServiceClient<Authed>,
}

impl Clients {
    /// Clients of a running province stack.
    pub fn for_province(province: &ProvinceStack, token: &str) -> anyhow::Result<Clients> {
        Clients::at(
            &province.registry.url(),
            &province.cases.url(),
            &province.transfer.url(),
            &province.reporting.url(),
            token,
        )
    }

    /// Clients of services at these URLs.
    pub fn at(registry: &str, cases: &str, transfer: &str, reporting: &str, token: &str) -> anyhow::Result<Clients> {
        let bearer = Bearer::new(token)?;
        let channel =
            |url: &str| -> anyhow::Result<Channel> { Ok(Endpoint::from_shared(url.to_owned())?.connect_lazy()) };
        Ok(Clients {
            registry: RegistryServiceClient::with_interceptor(channel(registry)?, bearer.clone()),
            cases: CaseServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            supervision: SupervisionServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            suspects: SuspectServiceClient::with_interceptor(channel(cases)?, bearer.clone()),
            transfer: TransferServiceClient::with_interceptor(channel(transfer)?, bearer.clone()),
            reporting: ReportingServiceClient::with_interceptor(channel(reporting)?, bearer),
        })
    }
}

impl Clients {
    /// Registers a primary school unless its code is already registered.
    pub async fn ensure_school(&self, school_code: &str, name: &str, region_code: &str) -> anyhow::Result<()> {
        let school = nol_proto::v1::School {
            school_code: school_code.into(),
            name: name.into(),
            region_code: region_code.into(),
            level: nol_proto::v1::SchoolLevel::Primary as i32,
            ownership: nol_proto::v1::SchoolOwnership::Public as i32,
            ..Default::default()
        };
        match self.registry.clone().create_school(nol_proto::v1::CreateSchoolRequest { school: Some(school) }).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(status.into()),
        }
    }
}

/// The admin service of one service process, as `token`'s caller.
pub fn admin(url: &str, token: &str) -> anyhow::Result<AdminServiceClient<Authed>> {
    let channel = Endpoint::from_shared(url.to_owned())?.connect_lazy();
    Ok(AdminServiceClient::with_interceptor(channel, Bearer::new(token)?))
}

/// Which list a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportTarget {
    Pupils,
    Schools,
    HouseholdRegister,
    PovertyRegistry,
}

impl std::str::FromStr for ImportTarget {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pupils" => Ok(ImportTarget::Pupils),
            "schools" => Ok(ImportTarget::Schools),
            "hukou" | "household" | "household-register" => Ok(ImportTarget::HouseholdRegister),
            "poverty" | "poverty-registry" => Ok(ImportTarget::PovertyRegistry),
            other => Err(format!("unknown list {other:?}: pupils, schools, hukou or poverty")),
        }
    }
}

/// How far an upload has come.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadProgress {
    pub bytes_sent: u64,
    pub bytes_total: u64,
}

/// Sends a file to the registry as an import job and waits for the job to finish. `job_id` makes
/// a resume of a failed job; `progress` hears of every chunk sent.
pub async fn import_file(
    clients: &Clients,
    target: ImportTarget,
    path: &std::path::Path,
    job_id: uuid::Uuid,
    encoding: nol_proto::v1::TextEncoding,
    progress: impl Fn(UploadProgress) + Send + Sync + 'static,
) -> Result<nol_proto::v1::ImportJob, tonic::Status> {
    use nol_proto::v1::*;
    use tokio::io::AsyncReadExt;

    let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("upload").to_owned();
    let header = ImportHeader { job_id: job_id.to_string(), file_name, format: 0, encoding: encoding as i32 };
    let mut file =
        tokio::fs::File::open(path).await.map_err(|error| tonic::Status::invalid_argument(error.to_string()))?;
    let total = file.metadata().await.map(|metadata| metadata.len()).unwrap_or(0);
    let (sender, receiver) = tokio::sync::mpsc::channel::<(Option<ImportHeader>, Vec<u8>)>(8);
    tokio::spawn(async move {
        if sender.send((Some(header), Vec::new())).await.is_err() {
            return;
        }
        let mut sent = 0u64;
        loop {
            let mut chunk = vec![0u8; 256 * 1024];
            match file.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    chunk.truncate(read);
                    sent += read as u64;
                    if sender.send((None, chunk)).await.is_err() {
                        break;
                    }
                    progress(UploadProgress { bytes_sent: sent, bytes_total: total });
                }
            }
        }
    });
    let messages = tokio_stream::wrappers::ReceiverStream::new(receiver);
    macro_rules! stream_of {
        ($request:ident, $part:ident) => {
            futures::StreamExt::map(messages, |(header, data)| $request {
                part: Some(match header {
                    Some(header) => $part::Part::Header(header),
                    None => $part::Part::Data(data),
                }),
            })
        };
    }
    let mut registry = clients.registry.clone();
    let job = match target {
        ImportTarget::Pupils => {
            registry.import_pupils(stream_of!(ImportPupilsRequest, import_pupils_request)).await?.into_inner().job
        }
        ImportTarget::Schools => {
            registry.import_schools(stream_of!(ImportSchoolsRequest, import_schools_request)).await?.into_inner().job
        }
        ImportTarget::HouseholdRegister => {
            registry
                .import_household_register(stream_of!(
                    ImportHouseholdRegisterRequest,
                    import_household_register_request
                ))
                .await?
                .into_inner()
                .job
        }
        ImportTarget::PovertyRegistry => {
            registry
                .import_poverty_registry(stream_of!(ImportPovertyRegistryRequest, import_poverty_registry_request))
                .await?
                .into_inner()
                .job
        }
    };
    job.ok_or_else(|| tonic::Status::internal("the registry answered without a job"))
}

/// Downloads a file streamed by the registry (an import's error file, an export), returning its
/// name and bytes.
pub async fn collect_file<T>(
    mut stream: tonic::Streaming<T>,
    part: impl Fn(T) -> (Vec<u8>, String),
) -> Result<(String, Vec<u8>), tonic::Status> {
    let mut name = String::new();
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        let (data, file_name) = part(message);
        if name.is_empty() {
            name = file_name;
        }
        bytes.extend(data);
    }
    Ok((name, bytes))
}
