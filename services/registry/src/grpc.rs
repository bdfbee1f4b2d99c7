//! gRPC transport of the registry: authenticate, validate, call the store, map errors.

use nol_auth::{Caller, Role};
use nol_events::{EventHeader, PUPIL_REGISTERED, SubjectScheme};
use nol_pii::{DataKey, ResidentId};
use nol_proto::v1::registry_service_server::RegistryService;
use nol_proto::v1::{
    CreatePupilRequest, CreatePupilResponse, GetPupilRequest, GetPupilResponse, ListPupilsRequest, ListPupilsResponse,
    Pupil, PupilRegistered, PupilView, Sex,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, audit, database};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{NewPupil, status_from_name};
use crate::store::{self, ProtectedId, PupilRow};

const RESIDENT_ID_CONTEXT: &str = "registry.pupil.resident_id";

pub struct Registry {
    pool: PgPool,
    data_key: DataKey,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
}

impl Registry {
    pub fn new(platform: &Platform) -> Registry {
        Registry {
            pool: platform.pool.clone(),
            data_key: platform.keys.data.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
        }
    }

    async fn create(&self, caller: &Caller, request: CreatePupilRequest) -> Result<Pupil, ServiceError> {
        caller.require_role(&[Role::Caseworker, Role::School, Role::System], "register pupils")?;
        let pupil = request.pupil.ok_or_else(|| ServiceError::invalid("pupil", "is required"))?;
        let new_pupil = NewPupil::from_request(&pupil, chrono::Utc::now().date_naive())?;
        caller.require_scope(&new_pupil.enrollment_region)?;
        if new_pupil.enrollment_region.province() != self.province {
            return Err(ServiceError::invalid(
                "pupil.enrollment_region_code",
                format!("is not in {} ({})", self.province.name(), self.province),
            ));
        }
        let protected = ProtectedId {
            cipher: self.data_key.encrypt(new_pupil.resident_id.expose().as_bytes(), RESIDENT_ID_CONTEXT),
            index: self.data_key.blind_index(new_pupil.resident_id.expose()),
            masked: new_pupil.resident_id.masked(),
        };
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let row = match store::insert(&mut tx, id, &new_pupil, &protected, &caller.subject).await {
            Ok(row) => row,
            Err(error) if database::is_unique_violation(&error, Some("pupil_one_per_resident_id")) => {
                drop(tx);
                return Err(self.already_registered(caller, &protected.index).await);
            }
            Err(error) => return Err(error.into()),
        };
        let payload = PupilRegistered {
            pupil_id: id.to_string(),
            enrollment_region_code: row.enrollment_region.clone(),
            hukou_region_code: row.hukou_region.clone(),
            migrant: row.migrant,
        };
        nol_backbone::outbox::emit(
            &mut tx,
            &self.scheme.local(PUPIL_REGISTERED, &new_pupil.enrollment_region),
            EventHeader {
                event_type: PUPIL_REGISTERED,
                source_region: new_pupil.enrollment_region,
                aggregate_type: "pupil",
                aggregate_id: &payload.pupil_id,
                aggregate_sequence: 1,
                actor: &caller.subject,
            },
            &payload,
        )
        .await?;
        audit::record(&mut tx, caller, "pupil.create", "pupil", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(pupil_id = %id, region = %new_pupil.enrollment_region, "pupil registered");
        Ok(self.to_proto(&row, false))
    }

    /// ALREADY_EXISTS naming the existing record as far as the caller may see it.
    async fn already_registered(&self, caller: &Caller, index: &[u8]) -> ServiceError {
        match store::find_by_index(&self.pool, index).await {
            Ok(Some(existing)) => {
                let region = RegionCode::parse(&existing.enrollment_region).ok();
                match region {
                    Some(region) if caller.sees(&region) => ServiceError::AlreadyExists(format!(
                        "this resident ID number is already registered: pupil {} at {} in {} ({})",
                        existing.id,
                        existing.school_name,
                        region.full_name(),
                        region
                    )),
                    Some(region) => ServiceError::AlreadyExists(format!(
                        "this resident ID number is already registered in another region of the province ({}); \
                         ask {} to resolve it",
                        region.province().name(),
                        region.full_name()
                    )),
                    None => ServiceError::AlreadyExists("this resident ID number is already registered".to_owned()),
                }
            }
            Ok(None) => ServiceError::AlreadyExists("this resident ID number is already registered".to_owned()),
            Err(error) => error.into(),
        }
    }

    async fn get(&self, caller: &Caller, request: GetPupilRequest) -> Result<Pupil, ServiceError> {
        let id = parse_uuid("pupil_id", &request.pupil_id)?;
        let full = PupilView::try_from(request.view) == Ok(PupilView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], "see full resident ID numbers")?;
        }
        let row = store::get(&self.pool, id).await?.ok_or_else(|| ServiceError::NotFound(format!("no pupil {id}")))?;
        let region = RegionCode::parse(&row.enrollment_region).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        let action = if full { "pupil.read_full" } else { "pupil.read" };
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, action, "pupil", &[id.to_string()]).await?;
        Ok(self.to_proto(&row, full))
    }

    async fn list(&self, caller: &Caller, request: ListPupilsRequest) -> Result<ListPupilsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = store::list(&self.pool, region.subtree_prefix(), after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.created_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "pupil.list", "pupil", &ids).await?;
        Ok(ListPupilsResponse { pupils: rows.iter().map(|row| self.to_proto(row, false)).collect(), next_page_token })
    }

    fn to_proto(&self, row: &PupilRow, full: bool) -> Pupil {
        let resident_id = if full {
            self.data_key
                .decrypt(&row.resident_id_cipher, RESIDENT_ID_CONTEXT)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| ResidentId::parse(&text).ok())
                .map(|id| id.expose().to_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Pupil {
            pupil_id: row.id.to_string(),
            full_name: row.full_name.clone(),
            resident_id,
            resident_id_masked: row.resident_id_masked.clone(),
            sex: match row.sex {
                1 => Sex::Male as i32,
                2 => Sex::Female as i32,
                _ => Sex::Unspecified as i32,
            },
            birth_date: row.birth_date.format("%Y-%m-%d").to_string(),
            enrollment_region_code: row.enrollment_region.clone(),
            hukou_region_code: row.hukou_region.clone(),
            residence_region_code: row.residence_region.clone(),
            school_name: row.school_name.clone(),
            grade: i32::from(row.grade),
            migrant: row.migrant,
            enrollment_status: status_from_name(&row.enrollment_status) as i32,
            create_time: Some(nol_runtime::time::timestamp(row.created_at)),
            created_by: row.created_by.clone(),
        }
    }
}

#[tonic::async_trait]
impl RegistryService for Registry {
    async fn create_pupil(
        &self,
        request: Request<CreatePupilRequest>,
    ) -> Result<Response<CreatePupilResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let pupil = self.create(&caller, request.into_inner()).await?;
        Ok(Response::new(CreatePupilResponse { pupil: Some(pupil) }))
    }

    async fn get_pupil(&self, request: Request<GetPupilRequest>) -> Result<Response<GetPupilResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let pupil = self.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetPupilResponse { pupil: Some(pupil) }))
    }

    async fn list_pupils(&self, request: Request<ListPupilsRequest>) -> Result<Response<ListPupilsResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }
}
