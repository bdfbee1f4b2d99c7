//! gRPC transport of the case service.

use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_pii::{DataKey, ResidentId};
use nol_proto::v1::case_service_server::CaseService;
use nol_proto::v1::*;
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit, database};
use sqlx::PgPool;
use tonic::{Request, Response, Status as GrpcStatus};
use uuid::Uuid;

use crate::deadlines::{DueKind, is_overdue};
use crate::domain::{Status, StoredName, cause_from_name, cause_name, check_causes};
use crate::store::{self, CaseQuery, CaseRow, ChildRecord, NewCase};
use crate::{RESIDENT_ID_CONTEXT, file_store, ledger};

use crate::registry::RegistryClient;

pub struct Cases {
    pub(crate) pool: PgPool,
    data_key: DataKey,
    pub(crate) scheme: SubjectScheme,
    pub(crate) wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    registry: RegistryClient,
    pub(crate) clock: nol_runtime::clock::Clock,
}

impl Cases {
    pub fn new(platform: &Platform, registry_url: &str) -> anyhow::Result<Cases> {
        Ok(Cases {
            pool: platform.pool.clone(),
            data_key: platform.keys.data.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            registry: crate::registry::client(registry_url)?,
            clock: platform.clock.clone(),
        })
    }

    async fn open(&self, caller: &Caller, request: OpenCaseRequest) -> Result<DropoutCase, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::OpenCases)?;
        let pupil_id = parse_uuid("pupil_id", &request.pupil_id)?;
        let causes = check_causes(&request.causes).map_err(|rule| ServiceError::invalid("causes", rule.to_string()))?;
        if request.notes.chars().count() > 4000 {
            return Err(ServiceError::invalid("notes", "is longer than 4,000 characters"));
        }
        let pupil = crate::registry::pupil(&self.registry, caller, pupil_id, PupilView::Full).await?;
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
        Ok(to_proto(&row, None, self.clock.today(), None))
    }

    /// A case as the API shows it, with its counts.
    pub(crate) async fn view(&self, row: &CaseRow, revealed: Option<ResidentId>) -> Result<DropoutCase, ServiceError> {
        let counts = file_store::counts(&self.pool, &[row.id]).await?;
        Ok(to_proto(row, revealed, self.clock.today(), counts.first()))
    }

    async fn already_active(&self, caller: &Caller, index: &[u8]) -> ServiceError {
        match store::find_active_by_index(&self.pool, index).await {
            Ok(Some(existing)) => {
                let visible = RegionCode::parse(&existing.region).is_ok_and(|region| caller.sees(&region));
                if visible {
                    ServiceError::already_exists(format!(
                        "R2: this child already has an active case ({}, {})",
                        existing.id, existing.status
                    ))
                } else {
                    ServiceError::already_exists(
                        "R2: this child already has an active case in another region of the province".to_owned(),
                    )
                }
            }
            Ok(None) => ServiceError::already_exists("R2: this child already has an active case".to_owned()),
            Err(error) => error.into(),
        }
    }

    async fn get(&self, caller: &Caller, request: GetCaseRequest) -> Result<DropoutCase, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        let full = CaseView::try_from(request.view) == Ok(CaseView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], nol_messages::vocab::Action::SeeFullResidentIds)?;
        }
        let row = store::get(&self.pool, id).await?.ok_or_else(|| ServiceError::not_found(format!("no case {id}")))?;
        let region = RegionCode::parse(&row.region).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        let mut conn = self.pool.acquire().await?;
        let action = if full { "case.read_full" } else { "case.read" };
        audit::record(&mut conn, caller, action, "dropout_case", &[id.to_string()]).await?;
        let revealed = if full { Some(reveal(&self.data_key, &row.resident_id_cipher)?) } else { None };
        self.view(&row, revealed).await
    }

    /// The region subtree and the query a listing or export asks for.
    fn query(
        &self,
        caller: &Caller,
        region_code: &str,
        status: i32,
        filter: Option<CaseFilter>,
    ) -> Result<(RegionCode, CaseQuery), ServiceError> {
        let region = nol_runtime::region_in_scope(caller, region_code)?;
        let filter = filter.unwrap_or_default();
        let mut violations = Violations::default();
        let mut statuses = Vec::new();
        for (field, value) in std::iter::once(("status", status))
            .filter(|(_, value)| *value != 0)
            .chain(filter.statuses.iter().map(|value| ("filter.statuses", *value)))
        {
            match CaseStatus::try_from(value).ok().and_then(Status::from_proto) {
                Some(status) if !statuses.contains(&status) => statuses.push(status),
                Some(_) => {}
                None => violations.add(field, format!("{value} is not a known case status")),
            }
        }
        let mut causes = Vec::new();
        for value in &filter.causes {
            match DropoutCause::try_from(*value) {
                Ok(cause) if cause != DropoutCause::Unspecified => causes.push(cause_name(cause).to_owned()),
                _ => violations.add("filter.causes", format!("{value} is not a known cause")),
            }
        }
        violations.finish()?;
        let query = CaseQuery {
            statuses,
            causes,
            overdue: filter.overdue,
            migrant: filter.migrant,
            registered_poor: filter.registered_poor,
            disability: filter.disability,
            today: Some(self.clock.today()),
        };
        Ok((region, query))
    }

    async fn list(&self, caller: &Caller, request: ListCasesRequest) -> Result<ListCasesResponse, ServiceError> {
        let (region, query) = self.query(caller, &request.region_code, request.status, request.filter)?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = store::list(&self.pool, region.subtree_prefix(), &query, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.opened_at, id: row.id });
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let counts = file_store::counts(&self.pool, &ids).await?;
        let mut conn = self.pool.acquire().await?;
        let audited: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        audit::record(&mut conn, caller, "case.list", "dropout_case", &audited).await?;
        let today = self.clock.today();
        Ok(ListCasesResponse {
            dropout_cases: rows
                .iter()
                .map(|row| to_proto(row, None, today, counts.iter().find(|count| count.case_id == row.id)))
                .collect(),
            next_page_token,
        })
    }

    /// The most cases one export holds.
    const EXPORT_LIMIT: i64 = 200_000;

    async fn export(&self, caller: &Caller, request: ExportCasesRequest) -> Result<(Vec<u8>, String), ServiceError> {
        let (region, query) = self.query(caller, &request.region_code, request.status, request.filter)?;
        let rows = store::list(&self.pool, region.subtree_prefix(), &query, None, Self::EXPORT_LIMIT + 1).await?;
        if rows.len() as i64 > Self::EXPORT_LIMIT {
            return Err(ServiceError::precondition(format!(
                "more than {} cases match; narrow the region or the filters",
                Self::EXPORT_LIMIT
            )));
        }
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.export", "dropout_case", &ids).await?;
        let bytes = crate::export::cases_xlsx(&rows, self.clock.today())
            .map_err(|error| ServiceError::Internal(error.into()))?;
        Ok((bytes, format!("辍学台账-{region}.xlsx")))
    }
}

type ByteStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, GrpcStatus>> + Send + 'static>>;

/// A file as a stream of 1 MiB chunks, the name (and more) in the first.
fn chunks<T: Send + 'static>(bytes: Vec<u8>, make: impl Fn(Vec<u8>, bool) -> T) -> ByteStream<T> {
    let mut messages: Vec<Result<T, GrpcStatus>> =
        bytes.chunks(1 << 20).enumerate().map(|(index, chunk)| Ok(make(chunk.to_vec(), index == 0))).collect();
    if messages.is_empty() {
        messages.push(Ok(make(Vec::new(), true)));
    }
    Box::pin(futures::stream::iter(messages))
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

/// The child as lists and reads show it: the number masked, and in clear only when `revealed`.
pub fn child_summary(
    full_name: &str,
    masked: &str,
    sex: i16,
    birth_date: Option<chrono::NaiveDate>,
    hukou_region: &str,
    revealed: Option<&ResidentId>,
) -> ChildSummary {
    ChildSummary {
        full_name: full_name.to_owned(),
        resident_id_masked: masked.to_owned(),
        sex: match sex {
            1 => Sex::Male as i32,
            2 => Sex::Female as i32,
            _ => Sex::Unspecified as i32,
        },
        birth_date: birth_date.map(|date| date.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        hukou_region_code: hukou_region.to_owned(),
        resident_id: revealed.map(|id| id.expose().to_owned()).unwrap_or_default(),
    }
}

/// Decrypts a stored resident ID number.
pub fn reveal(data_key: &DataKey, cipher: &[u8]) -> Result<ResidentId, ServiceError> {
    let bytes = data_key.decrypt(cipher, RESIDENT_ID_CONTEXT).map_err(|error| ServiceError::Internal(error.into()))?;
    let text = String::from_utf8(bytes).map_err(|error| ServiceError::Internal(error.into()))?;
    ResidentId::parse(&text).map_err(|error| ServiceError::Internal(error.into()))
}

fn to_proto(
    row: &CaseRow,
    revealed: Option<ResidentId>,
    today: chrono::NaiveDate,
    counts: Option<&file_store::CaseCounts>,
) -> DropoutCase {
    let date = |day: Option<chrono::NaiveDate>| day.map(|day| day.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let detail = |key: &str| row.status_detail.get(key).and_then(|value| value.as_str()).unwrap_or_default().to_owned();
    let counts = counts.cloned().unwrap_or_default();
    let returned = (!detail("school_name").is_empty()).then(|| ReturnDetails {
        school_name: detail("school_name"),
        school_code: detail("school_code"),
        class_name: detail("class_name"),
        returned_on: detail("returned_on"),
    });
    DropoutCase {
        migrant: row.migrant,
        registered_poor: row.registered_poor,
        disability_grade: i32::from(row.disability_grade),
        confirmed_on: date(row.confirmed_on),
        last_attempt_on: date(row.last_attempt_on),
        due_on: date(row.due_on),
        due_kind: match row.due_kind.as_deref().and_then(DueKind::parse) {
            Some(DueKind::FirstContact) => CaseDueKind::FirstContact,
            Some(DueKind::NextAttempt) => CaseDueKind::NextAttempt,
            Some(DueKind::FollowUp) => CaseDueKind::FollowUp,
            None => CaseDueKind::Unspecified,
        } as i32,
        overdue: row.due_on.is_some_and(|due| is_overdue(due, today)),
        relapse_count: row.relapse_count,
        returned,
        follow_up_from: date(row.follow_up_from),
        end_time: row.ended_at.map(nol_runtime::time::timestamp),
        officer_count: counts.officers as i32,
        open_measure_count: counts.open_measures as i32,
        evidence_count: counts.evidence as i32,
        attempt_count: counts.attempts as i32,
        joint_attempt_count: counts.joint_attempts as i32,
        pending_deferral_request_id: counts.pending_deferral.map(|id| id.to_string()).unwrap_or_default(),
        close_reason: CloseReason::from_stored(&detail("close_reason")).map(|reason| reason as i32).unwrap_or(0),
        case_id: row.id.to_string(),
        pupil_id: row.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        child: Some(child_summary(
            &row.child_name,
            &row.resident_id_masked,
            row.sex,
            Some(row.birth_date),
            &row.hukou_region,
            revealed.as_ref(),
        )),
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

    type ExportCasesStream = ByteStream<ExportCasesResponse>;

    async fn export_cases(
        &self,
        request: Request<ExportCasesRequest>,
    ) -> Result<Response<Self::ExportCasesStream>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let (bytes, file_name) = self.export(&caller, request.into_inner()).await?;
        Ok(Response::new(chunks(bytes, move |data, first| ExportCasesResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
        })))
    }

    async fn get_case_file(
        &self,
        request: Request<GetCaseFileRequest>,
    ) -> Result<Response<GetCaseFileResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.case_file(&caller, request.into_inner()).await?))
    }

    async fn list_case_history(
        &self,
        request: Request<ListCaseHistoryRequest>,
    ) -> Result<Response<ListCaseHistoryResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.history(&caller, request.into_inner()).await?))
    }

    async fn update_causes(
        &self,
        request: Request<UpdateCausesRequest>,
    ) -> Result<Response<UpdateCausesResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = Cases::update_causes(self, &caller, request.into_inner()).await?;
        Ok(Response::new(UpdateCausesResponse { dropout_case: Some(dropout_case) }))
    }

    async fn add_officer(
        &self,
        request: Request<AddOfficerRequest>,
    ) -> Result<Response<AddOfficerResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let officer = Cases::add_officer(self, &caller, request.into_inner()).await?;
        Ok(Response::new(AddOfficerResponse { officer: Some(officer) }))
    }

    async fn add_measure(
        &self,
        request: Request<AddMeasureRequest>,
    ) -> Result<Response<AddMeasureResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let measure = Cases::add_measure(self, &caller, request.into_inner()).await?;
        Ok(Response::new(AddMeasureResponse { measure: Some(measure) }))
    }

    async fn complete_measure(
        &self,
        request: Request<CompleteMeasureRequest>,
    ) -> Result<Response<CompleteMeasureResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let measure = Cases::complete_measure(self, &caller, request.into_inner()).await?;
        Ok(Response::new(CompleteMeasureResponse { measure: Some(measure) }))
    }

    async fn add_evidence(
        &self,
        request: Request<AddEvidenceRequest>,
    ) -> Result<Response<AddEvidenceResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let evidence = Cases::add_evidence(self, &caller, request.into_inner()).await?;
        Ok(Response::new(AddEvidenceResponse { evidence: Some(evidence) }))
    }

    type GetEvidenceFileStream = ByteStream<GetEvidenceFileResponse>;

    async fn get_evidence_file(
        &self,
        request: Request<GetEvidenceFileRequest>,
    ) -> Result<Response<Self::GetEvidenceFileStream>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let (file_name, file_sha256, bytes) =
            self.evidence_file(&caller, &request.case_id, &request.evidence_id).await?;
        Ok(Response::new(chunks(bytes, move |data, first| GetEvidenceFileResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
            file_sha256: if first { file_sha256.clone() } else { String::new() },
        })))
    }

    async fn record_persuasion_attempt(
        &self,
        request: Request<RecordPersuasionAttemptRequest>,
    ) -> Result<Response<RecordPersuasionAttemptResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.record_attempt(&caller, request.into_inner()).await?))
    }

    async fn list_persuasion_attempts(
        &self,
        request: Request<ListPersuasionAttemptsRequest>,
    ) -> Result<Response<ListPersuasionAttemptsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.attempts(&caller, request.into_inner()).await?))
    }

    async fn return_to_school(
        &self,
        request: Request<ReturnToSchoolRequest>,
    ) -> Result<Response<ReturnToSchoolResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = Cases::return_to_school(self, &caller, request.into_inner()).await?;
        Ok(Response::new(ReturnToSchoolResponse { dropout_case: Some(dropout_case) }))
    }

    async fn start_monitoring(
        &self,
        request: Request<StartMonitoringRequest>,
    ) -> Result<Response<StartMonitoringResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = Cases::start_monitoring(self, &caller, request.into_inner()).await?;
        Ok(Response::new(StartMonitoringResponse { dropout_case: Some(dropout_case) }))
    }

    async fn close_case(&self, request: Request<CloseCaseRequest>) -> Result<Response<CloseCaseResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = self.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseCaseResponse { dropout_case: Some(dropout_case) }))
    }

    async fn start_home_teaching(
        &self,
        request: Request<StartHomeTeachingRequest>,
    ) -> Result<Response<StartHomeTeachingResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = Cases::start_home_teaching(self, &caller, request.into_inner()).await?;
        Ok(Response::new(StartHomeTeachingResponse { dropout_case: Some(dropout_case) }))
    }

    async fn log_home_teaching_visit(
        &self,
        request: Request<LogHomeTeachingVisitRequest>,
    ) -> Result<Response<LogHomeTeachingVisitResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let visit = self.log_visit(&caller, request.into_inner()).await?;
        Ok(Response::new(LogHomeTeachingVisitResponse { visit: Some(visit) }))
    }

    async fn request_deferral(
        &self,
        request: Request<RequestDeferralRequest>,
    ) -> Result<Response<RequestDeferralResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let deferral = Cases::request_deferral(self, &caller, request.into_inner()).await?;
        Ok(Response::new(RequestDeferralResponse { request: Some(deferral) }))
    }

    async fn approve_deferral(
        &self,
        request: Request<ApproveDeferralRequest>,
    ) -> Result<Response<ApproveDeferralResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(Cases::approve_deferral(self, &caller, request.into_inner()).await?))
    }

    async fn reject_deferral(
        &self,
        request: Request<RejectDeferralRequest>,
    ) -> Result<Response<RejectDeferralResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let deferral = Cases::reject_deferral(self, &caller, request.into_inner()).await?;
        Ok(Response::new(RejectDeferralResponse { request: Some(deferral) }))
    }

    async fn exempt_case(
        &self,
        request: Request<ExemptCaseRequest>,
    ) -> Result<Response<ExemptCaseResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = self.exempt(&caller, request.into_inner()).await?;
        Ok(Response::new(ExemptCaseResponse { dropout_case: Some(dropout_case) }))
    }

    async fn record_relapse(
        &self,
        request: Request<RecordRelapseRequest>,
    ) -> Result<Response<RecordRelapseResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let dropout_case = self.relapse(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordRelapseResponse { dropout_case: Some(dropout_case) }))
    }
}
