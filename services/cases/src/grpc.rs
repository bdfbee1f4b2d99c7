//! gRPC transport of the case service.

use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_pii::{DataKey, ResidentId};
use nol_proto::v1::case_service_server::CaseService;
use nol_proto::v1::registry_service_client::RegistryServiceClient;
use nol_proto::v1::{
    CaseSource, CaseStatus, CaseView, ChildSummary, DropoutCase, GetCaseRequest, GetCaseResponse, GetPupilRequest,
    ListCasesRequest, ListCasesResponse, OpenCaseRequest, OpenCaseResponse, PupilView, Sex,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, audit, database};
use nol_telemetry::PropagateTrace;
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status as GrpcStatus};
use uuid::Uuid;

use crate::domain::{Status, cause_from_name, cause_name, check_causes};
use crate::store::{self, CaseRow, ChildRecord, NewCase};
use crate::{RESIDENT_ID_CONTEXT, ledger};

type RegistryClient = RegistryServiceClient<InterceptedService<Channel, PropagateTrace>>;

pub struct Cases {
    pool: PgPool,
    data_key: DataKey,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    registry: RegistryClient,
    clock: nol_runtime::clock::Clock,
}

impl Cases {
    pub fn new(platform: &Platform, registry_url: &str) -> anyhow::Result<Cases> {
        let channel = tonic::transport::Endpoint::from_shared(registry_url.to_owned())?
            .connect_timeout(std::time::Duration::from_secs(3))
            .connect_lazy();
        Ok(Cases {
            pool: platform.pool.clone(),
            data_key: platform.keys.data.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            registry: RegistryServiceClient::with_interceptor(channel, PropagateTrace),
            clock: platform.clock.clone(),
        })
    }

    async fn open(&self, caller: &Caller, request: OpenCaseRequest) -> Result<DropoutCase, ServiceError> {
        caller.require_role(&[Role::Caseworker], "open dropout cases")?;
        let pupil_id = parse_uuid("pupil_id", &request.pupil_id)?;
        let causes = check_causes(&request.causes).map_err(|rule| ServiceError::invalid("causes", rule.to_string()))?;
        if request.notes.chars().count() > 4000 {
            return Err(ServiceError::invalid("notes", "is longer than 4,000 characters"));
        }
        // The registry checks the caller's scope over the pupil again, and audits the full read.
        let mut lookup = Request::new(GetPupilRequest { pupil_id: pupil_id.to_string(), view: PupilView::Full as i32 });
        lookup.metadata_mut().insert("authorization", caller.authorization_header());
        let pupil = self
            .registry
            .clone()
            .get_pupil(lookup)
            .await
            .map_err(|status| ServiceError::from_upstream(status, "registry"))?
            .into_inner()
            .pupil
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("registry answered without a pupil")))?;
        let region = RegionCode::parse_county(&pupil.enrollment_region_code).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        let resident_id = ResidentId::parse(&pupil.resident_id).map_err(anyhow::Error::from)?;
        let child = child_record(&self.data_key, &pupil.full_name, &resident_id, &pupil.hukou_region_code);
        let index = child.resident_id_index.clone();
        let case = NewCase {
            id: Uuid::now_v7(),
            pupil_id: Some(pupil_id),
            child,
            region: region.to_string(),
            causes: causes.iter().map(|cause| cause_name(*cause).to_owned()).collect(),
            notes: request.notes.trim().to_owned(),
            source: "local",
            origin_region: None,
            origin_case_id: None,
            handoff_id: None,
            opened_by: caller.subject.clone(),
            confirmed_on: self.clock.today(),
            migrant: pupil.migrant,
            registered_poor: pupil.registered_poor,
            disability_grade: pupil.disability_grade as i16,
            suspect_id: None,
        };
        let mut tx = self.pool.begin().await?;
        let row = match ledger::open(&mut tx, &self.scheme, &case).await {
            Ok(row) => row,
            Err(error) if database::is_unique_violation(&error, Some("dropout_case_one_active_per_child")) => {
                drop(tx);
                return Err(self.already_active(caller, &index).await);
            }
            Err(error) => return Err(error.into()),
        };
        audit::record(&mut tx, caller, "case.open", "dropout_case", &[row.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(case_id = %row.id, region = %row.region, "case opened");
        Ok(to_proto(&row, None))
    }

    async fn already_active(&self, caller: &Caller, index: &[u8]) -> ServiceError {
        match store::find_active_by_index(&self.pool, index).await {
            Ok(Some(existing)) => {
                let visible = RegionCode::parse(&existing.region).is_ok_and(|region| caller.sees(&region));
                if visible {
                    ServiceError::AlreadyExists(format!(
                        "R2: this child already has an active case ({}, {})",
                        existing.id, existing.status
                    ))
                } else {
                    ServiceError::AlreadyExists(
                        "R2: this child already has an active case in another region of the province".to_owned(),
                    )
                }
            }
            Ok(None) => ServiceError::AlreadyExists("R2: this child already has an active case".to_owned()),
            Err(error) => error.into(),
        }
    }

    async fn get(&self, caller: &Caller, request: GetCaseRequest) -> Result<DropoutCase, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        let full = CaseView::try_from(request.view) == Ok(CaseView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], "see full resident ID numbers")?;
        }
        let row = store::get(&self.pool, id).await?.ok_or_else(|| ServiceError::NotFound(format!("no case {id}")))?;
        let region = RegionCode::parse(&row.region).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        let mut conn = self.pool.acquire().await?;
        let action = if full { "case.read_full" } else { "case.read" };
        audit::record(&mut conn, caller, action, "dropout_case", &[id.to_string()]).await?;
        let revealed = if full { Some(reveal(&self.data_key, &row.resident_id_cipher)?) } else { None };
        Ok(to_proto(&row, revealed))
    }

    async fn list(&self, caller: &Caller, request: ListCasesRequest) -> Result<ListCasesResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let status = CaseStatus::try_from(request.status)
            .map(Status::from_proto)
            .map_err(|_| ServiceError::invalid("status", "is not a known case status"))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = store::list(&self.pool, region.subtree_prefix(), status, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.opened_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.list", "dropout_case", &ids).await?;
        Ok(ListCasesResponse { dropout_cases: rows.iter().map(|row| to_proto(row, None)).collect(), next_page_token })
    }
}

/// The child's record with the resident ID number encrypted under this province's key.
pub fn child_record(data_key: &DataKey, full_name: &str, resident_id: &ResidentId, hukou_region: &str) -> ChildRecord {
    ChildRecord {
        full_name: full_name.trim().to_owned(),
        resident_id_cipher: data_key.encrypt(resident_id.expose().as_bytes(), RESIDENT_ID_CONTEXT),
        resident_id_index: data_key.blind_index(resident_id.expose()),
        resident_id_masked: resident_id.masked(),
        sex: match resident_id.sex() {
            nol_pii::Sex::Male => 1,
            nol_pii::Sex::Female => 2,
        },
        birth_date: resident_id.birth_date(),
        hukou_region: hukou_region.to_owned(),
    }
}

/// Decrypts a stored resident ID number.
pub fn reveal(data_key: &DataKey, cipher: &[u8]) -> Result<ResidentId, ServiceError> {
    let bytes = data_key.decrypt(cipher, RESIDENT_ID_CONTEXT).map_err(|error| ServiceError::Internal(error.into()))?;
    let text = String::from_utf8(bytes).map_err(|error| ServiceError::Internal(error.into()))?;
    ResidentId::parse(&text).map_err(|error| ServiceError::Internal(error.into()))
}

fn to_proto(row: &CaseRow, revealed: Option<ResidentId>) -> DropoutCase {
    DropoutCase {
        case_id: row.id.to_string(),
        pupil_id: row.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        child: Some(ChildSummary {
            full_name: row.child_name.clone(),
            resident_id_masked: row.resident_id_masked.clone(),
            sex: match row.sex {
                1 => Sex::Male as i32,
                2 => Sex::Female as i32,
                _ => Sex::Unspecified as i32,
            },
            birth_date: row.birth_date.format("%Y-%m-%d").to_string(),
            hukou_region_code: row.hukou_region.clone(),
            resident_id: revealed.map(|id| id.expose().to_owned()).unwrap_or_default(),
        }),
        region_code: row.region.clone(),
        status: Status::parse(&row.status).map(Status::to_proto).unwrap_or_default() as i32,
        causes: row.causes.iter().map(|name| cause_from_name(name) as i32).collect(),
        notes: row.notes.clone(),
        source: if row.source == "handoff" { CaseSource::Handoff } else { CaseSource::Local } as i32,
        origin_region_code: row.origin_region.clone().unwrap_or_default(),
        origin_case_id: row.origin_case_id.map(|id| id.to_string()).unwrap_or_default(),
        handoff_id: row.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
        handoff_destination_region_code: row.handoff_destination.clone().unwrap_or_default(),
        opened_by: row.opened_by.clone(),
        open_time: Some(nol_runtime::time::timestamp(row.opened_at)),
        update_time: Some(nol_runtime::time::timestamp(row.updated_at)),
        supervision_region_code: row.supervision_region.clone().unwrap_or_default(),
        supervision_reason: row.supervision_reason.clone().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl CaseService for Cases {
    async fn open_case(&self, request: Request<OpenCaseRequest>) -> Result<Response<OpenCaseResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = self.open(&caller, request.into_inner()).await?;
        Ok(Response::new(OpenCaseResponse { dropout_case: Some(dropout_case) }))
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> Result<Response<GetCaseResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = self.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetCaseResponse { dropout_case: Some(dropout_case) }))
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }
}
