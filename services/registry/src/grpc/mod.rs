//! gRPC transport of the registry: authenticate, validate, call the domain and the store, map
//! errors. One module per group of RPCs; this one holds the service and the conversions.

mod checks;
mod imports;
mod pupils;
mod schools;

use std::pin::Pin;

use futures::Stream;
use nol_auth::Caller;
use nol_backbone::outbox::RelayWake;
use nol_events::SubjectScheme;
use nol_proto::v1::registry_service_server::RegistryService;
use nol_proto::v1::*;
use nol_region::RegionCode;
use nol_runtime::clock::Clock;
use nol_runtime::keys::DataKeys;
use nol_runtime::{Platform, ServiceError};
use sqlx::PgPool;
use tonic::{Request, Response, Status, Streaming};

use crate::crosscheck::CrossCheck;
use crate::domain::import_job::ListKind;
use crate::import::Importer;

pub struct Registry {
    pool: PgPool,
    data_key: DataKeys,
    scheme: SubjectScheme,
    province: RegionCode,
    wake: RelayWake,
    importer: Importer,
    crosscheck: CrossCheck,
    /// `CreatePupil`'s group commit.
    registrations: crate::group_commit::Writer,
    /// The schools calls name, kept for a minute.
    schools: crate::store::schools::SchoolCache,
    /// The rule clock (China Standard Time): every date the registry derives ("today", a default
    /// as-of or effective date, "in the future").
    clock: Clock,
    /// How long rejected import rows are kept (`NOL_IMPORT_ERRORS_RETENTION_DAYS`).
    import_errors_retention: std::time::Duration,
    /// Items an export reads, writes and audits at a time (`NOL_EXPORT_PAGE_ROWS`).
    export_page: i64,
}

impl Registry {
    pub fn new(platform: &Platform) -> anyhow::Result<Registry> {
        let data_key = platform.keys.data()?;
        let importer = Importer {
            pool: platform.pool.clone(),
            data_key: data_key.clone(),
            scheme: platform.scheme.clone(),
            province: platform.config.province,
            wake: platform.wake.clone(),
            clock: platform.clock.clone(),
        };
        let crosscheck = CrossCheck {
            pool: platform.pool.clone(),
            data_key: data_key.clone(),
            event_keys: platform.keys.events()?,
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            clock: platform.clock.clone(),
            turns: std::sync::Arc::new(tokio::sync::Semaphore::new(crate::crosscheck::CONCURRENT_CHECKS)),
        };
        Ok(Registry {
            pool: platform.pool.clone(),
            data_key: data_key.clone(),
            scheme: platform.scheme.clone(),
            province: platform.config.province,
            wake: platform.wake.clone(),
            importer,
            crosscheck,
            registrations: crate::group_commit::Writer::start(platform.pool.clone(), platform.wake.clone()),
            schools: Default::default(),
            clock: platform.clock.clone(),
            import_errors_retention: platform.config.import_errors_retention,
            export_page: platform.config.export_page_rows,
        })
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, ServiceError> {
        nol_runtime::caller_of(request, &self.province)
    }
}

type ByteStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RegistryService for Registry {
    async fn create_pupil(
        &self,
        request: Request<CreatePupilRequest>,
    ) -> Result<Response<CreatePupilResponse>, Status> {
        let caller = self.caller(&request)?;
        let pupil = self.create_pupil(&caller, request.into_inner()).await?;
        Ok(Response::new(CreatePupilResponse { pupil: Some(pupil) }))
    }

    async fn get_pupil(&self, request: Request<GetPupilRequest>) -> Result<Response<GetPupilResponse>, Status> {
        let caller = self.caller(&request)?;
        let pupil = self.get_pupil(&caller, request.into_inner()).await?;
        Ok(Response::new(GetPupilResponse { pupil: Some(pupil) }))
    }

    async fn list_pupils(&self, request: Request<ListPupilsRequest>) -> Result<Response<ListPupilsResponse>, Status> {
        let caller = self.caller(&request)?;
        Ok(Response::new(self.list_pupils(&caller, request.into_inner()).await?))
    }

    async fn update_pupil_status(
        &self,
        request: Request<UpdatePupilStatusRequest>,
    ) -> Result<Response<UpdatePupilStatusResponse>, Status> {
        let caller = self.caller(&request)?;
        let pupil = self.update_status(&caller, request.into_inner()).await?;
        Ok(Response::new(UpdatePupilStatusResponse { pupil: Some(pupil) }))
    }

    async fn transfer_pupil(
        &self,
        request: Request<TransferPupilRequest>,
    ) -> Result<Response<TransferPupilResponse>, Status> {
        let caller = self.caller(&request)?;
        let pupil = self.transfer(&caller, request.into_inner()).await?;
        Ok(Response::new(TransferPupilResponse { pupil: Some(pupil) }))
    }

    async fn list_pupil_status_changes(
        &self,
        request: Request<ListPupilStatusChangesRequest>,
    ) -> Result<Response<ListPupilStatusChangesResponse>, Status> {
        let caller = self.caller(&request)?;
        Ok(Response::new(self.history(&caller, request.into_inner()).await?))
    }

    async fn list_data_quality_issues(
        &self,
        request: Request<ListDataQualityIssuesRequest>,
    ) -> Result<Response<ListDataQualityIssuesResponse>, Status> {
        let caller = self.caller(&request)?;
        Ok(Response::new(self.data_quality(&caller, request.into_inner()).await?))
    }

    async fn set_pupil_resident_id(
        &self,
        request: Request<SetPupilResidentIdRequest>,
    ) -> Result<Response<SetPupilResidentIdResponse>, Status> {
        let caller = self.caller(&request)?;
        let pupil = self.set_resident_id(&caller, request.into_inner()).await?;
        Ok(Response::new(SetPupilResidentIdResponse { pupil: Some(pupil) }))
    }

    async fn create_school(
        &self,
        request: Request<CreateSchoolRequest>,
    ) -> Result<Response<CreateSchoolResponse>, Status> {
        let caller = self.caller(&request)?;
        let school = self.create_school(&caller, request.into_inner()).await?;
        Ok(Response::new(CreateSchoolResponse { school: Some(school) }))
    }

    async fn get_school(&self, request: Request<GetSchoolRequest>) -> Result<Response<GetSchoolResponse>, Status> {
        let caller = self.caller(&request)?;
        let school = self.get_school(&caller, request.into_inner()).await?;
        Ok(Response::new(GetSchoolResponse { school: Some(school) }))
    }

    async fn list_schools(
        &self,
        request: Request<ListSchoolsRequest>,
    ) -> Result<Response<ListSchoolsResponse>, Status> {
        let caller = self.caller(&request)?;
        Ok(Response::new(self.list_schools(&caller, request.into_inner()).await?))
    }

    async fn import_pupils(
        &self,
        request: Request<Streaming<ImportPupilsRequest>>,
    ) -> Result<Response<ImportPupilsResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self.import(&caller, ListKind::Pupils, request.into_inner()).await?;
        Ok(Response::new(ImportPupilsResponse { job: Some(job) }))
    }

    async fn import_schools(
        &self,
        request: Request<Streaming<ImportSchoolsRequest>>,
    ) -> Result<Response<ImportSchoolsResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self.import(&caller, ListKind::Schools, request.into_inner()).await?;
        Ok(Response::new(ImportSchoolsResponse { job: Some(job) }))
    }

    async fn import_household_register(
        &self,
        request: Request<Streaming<ImportHouseholdRegisterRequest>>,
    ) -> Result<Response<ImportHouseholdRegisterResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self.import(&caller, ListKind::HouseholdRegister, request.into_inner()).await?;
        Ok(Response::new(ImportHouseholdRegisterResponse { job: Some(job) }))
    }

    async fn import_poverty_registry(
        &self,
        request: Request<Streaming<ImportPovertyRegistryRequest>>,
    ) -> Result<Response<ImportPovertyRegistryResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self.import(&caller, ListKind::PovertyRegistry, request.into_inner()).await?;
        Ok(Response::new(ImportPovertyRegistryResponse { job: Some(job) }))
    }

    async fn get_import_job(
        &self,
        request: Request<GetImportJobRequest>,
    ) -> Result<Response<GetImportJobResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self.get_job(&caller, request.into_inner()).await?;
        Ok(Response::new(GetImportJobResponse { job: Some(job) }))
    }

    type DownloadImportErrorsStream = ByteStream<DownloadImportErrorsResponse>;

    async fn download_import_errors(
        &self,
        request: Request<DownloadImportErrorsRequest>,
    ) -> Result<Response<Self::DownloadImportErrorsStream>, Status> {
        let caller = self.caller(&request)?;
        let (file, file_name) = self.error_file(&caller, request.into_inner()).await?;
        Ok(Response::new(nol_runtime::files::stream_file(file, move |data, first| DownloadImportErrorsResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
        })))
    }

    async fn run_cross_check(
        &self,
        request: Request<RunCrossCheckRequest>,
    ) -> Result<Response<RunCrossCheckResponse>, Status> {
        let caller = self.caller(&request)?;
        let run = self.run_check(&caller, request.into_inner()).await?;
        Ok(Response::new(RunCrossCheckResponse { run: Some(run) }))
    }

    async fn list_check_items(
        &self,
        request: Request<ListCheckItemsRequest>,
    ) -> Result<Response<ListCheckItemsResponse>, Status> {
        let caller = self.caller(&request)?;
        Ok(Response::new(self.list_items(&caller, request.into_inner()).await?))
    }

    async fn close_check_item(
        &self,
        request: Request<CloseCheckItemRequest>,
    ) -> Result<Response<CloseCheckItemResponse>, Status> {
        let caller = self.caller(&request)?;
        let item = self.close_item(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseCheckItemResponse { item: Some(item) }))
    }

    type ExportCheckItemsStream = ByteStream<ExportCheckItemsResponse>;

    async fn export_check_items(
        &self,
        request: Request<ExportCheckItemsRequest>,
    ) -> Result<Response<Self::ExportCheckItemsStream>, Status> {
        let caller = self.caller(&request)?;
        let (file, file_name) = self.export_items(&caller, request.into_inner()).await?;
        Ok(Response::new(nol_runtime::files::stream_file(file, move |data, first| ExportCheckItemsResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
        })))
    }
}
