//! The bureau-side import client: sends a bureau's file (a list of pupils, schools, the household
//! register or the poverty registry) to the registry as an import job, streamed in chunks, waits
//! for the job to finish, and writes the error file of the rejected rows next to the input.
//! `nol import` is built on it; the system tests import through it too.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::{DownloadImportErrorsRequest, ImportJob, TextEncoding};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

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

/// A client of the registry, calling with a bearer token.
pub type RegistryClient = RegistryServiceClient<InterceptedService<Channel, Bearer>>;

/// A client of the registry at `url` (an `https://` URL, checked against the CA of `tls`;
/// connected on first use), calling with `token`.
pub fn connect(url: &str, tls: &nol_tls::ClientTls, token: &str) -> anyhow::Result<RegistryClient> {
    let channel = tls.channel(url)?;
    Ok(RegistryServiceClient::with_interceptor(channel, Bearer::new(token)?))
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

/// Sends a file to the registry as an import job and waits for the job to finish. `registry` is
/// a registry client or anything that holds one; `job_id` makes a resume of a failed job;
/// `progress` hears of every chunk sent.
pub async fn import_file(
    registry: impl Into<RegistryClient>,
    target: ImportTarget,
    path: &Path,
    job_id: uuid::Uuid,
    encoding: TextEncoding,
    progress: impl Fn(UploadProgress) + Send + Sync + 'static,
) -> Result<ImportJob, tonic::Status> {
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
    let mut registry = registry.into();
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

/// Downloads the error file of job `job_id` (the rejected rows with row, column and reason, in
/// the input's format) and writes it next to `input`, under the name the registry gives it.
/// Returns where it was written.
pub async fn write_error_file(
    registry: impl Into<RegistryClient>,
    job_id: &str,
    input: &Path,
) -> anyhow::Result<PathBuf> {
    let stream = registry
        .into()
        .download_import_errors(DownloadImportErrorsRequest { job_id: job_id.to_owned() })
        .await?
        .into_inner();
    let (name, bytes) = collect_file(stream, |part| (part.data, part.file_name)).await?;
    let path = error_path(input, &name);
    tokio::fs::write(&path, bytes).await?;
    Ok(path)
}

/// The error file's path: the registry's name for it, in the input's folder.
fn error_path(input: &Path, name: &str) -> PathBuf {
    input.parent().unwrap_or(Path::new(".")).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_named_as_bureaus_name_them() {
        assert_eq!("hukou".parse(), Ok(ImportTarget::HouseholdRegister));
        assert_eq!("poverty-registry".parse(), Ok(ImportTarget::PovertyRegistry));
        assert!("students".parse::<ImportTarget>().unwrap_err().contains("pupils, schools, hukou or poverty"));
    }

    #[test]
    fn the_error_file_goes_next_to_the_input() {
        assert_eq!(error_path(Path::new("data/pupils.csv"), "pupils.errors.csv"), Path::new("data/pupils.errors.csv"));
        assert_eq!(error_path(Path::new("pupils.csv"), "pupils.errors.csv"), Path::new("pupils.errors.csv"));
    }
}
