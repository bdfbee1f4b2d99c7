//! gRPC transport of `nol.v1.CaseService`: the caller from the request, the use case, and the
//! domain's answer mapped onto the contract's messages.

use chrono::NaiveDate;
use nol_proto::v1::case_service_server::CaseService as CaseApi;
use nol_proto::v1::*;
use nol_runtime::time::timestamp;
use tonic::{Request, Response, Status as GrpcStatus};

use super::domain::DeferralState as StoredDeferralState;
use super::domain::Source;
use super::domain::deadlines::{DueKind, is_overdue};
use super::domain::file::{Attempt, DeferralRequest as Deferral, Evidence, Measure, Officer, Visit};
use super::domain::stored::Stored;
use super::service::{CaseService, CaseView};

/// The caller of a request to this province's service.
macro_rules! caller {
    ($self:ident, $request:ident) => {
        nol_runtime::caller_of(&$request, &$self.0.province)?
    };
}

/// The case service as the contract serves it.
pub struct CaseGrpc(pub std::sync::Arc<CaseService>);

/// The case side of a hand-off as the contract serves it (to the province's transfer service).
pub struct CaseHandoffGrpc(pub std::sync::Arc<CaseService>);

#[tonic::async_trait]
impl nol_proto::v1::case_handoff_service_server::CaseHandoffService for CaseHandoffGrpc {
    async fn reserve_case(
        &self,
        request: Request<ReserveCaseRequest>,
    ) -> Result<Response<ReserveCaseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let (view, sealed_dossier) = self.0.reserve(&caller, request.into_inner()).await?;
        Ok(Response::new(ReserveCaseResponse { dropout_case: Some(case_message(&view)), sealed_dossier }))
    }

    async fn take_in_handoff(
        &self,
        request: Request<TakeInHandoffRequest>,
    ) -> Result<Response<TakeInHandoffResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        // The dossier is trusted as the transfer service's own event is: only its certificate
        // (the identity NATS lets publish its events) may ask.
        let transfer = nol_tls::service_name("transfer", self.0.province.province().as_str());
        let certificates = request.peer_certs();
        if !certificates.is_some_and(|chain| nol_tls::peer_is(&chain, &transfer)) {
            let refused = nol_runtime::ServiceError::Denied(nol_auth::Denied::Refused(
                nol_messages::Case::TakeInByTransferOnly.into(),
            ));
            return Err(refused.into());
        }
        let response = match self.0.take_in_now(&caller, request.into_inner()).await? {
            crate::case::store::TakeInDecided::Opened(case_id) => {
                TakeInHandoffResponse { case_id: case_id.to_string(), existing_case_id: String::new() }
            }
            crate::case::store::TakeInDecided::Refused(existing) => {
                TakeInHandoffResponse { case_id: String::new(), existing_case_id: existing.to_string() }
            }
        };
        Ok(Response::new(response))
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

fn date(day: Option<NaiveDate>) -> String {
    day.map(|day| day.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

fn wire<E: Stored + Into<i32>>(values: &[E]) -> Vec<i32> {
    values.iter().map(|value| (*value).into()).collect()
}

/// A case as the contract shows it.
pub fn case_message(view: &CaseView) -> DropoutCase {
    let case = &view.case;
    let counts = &view.counts;
    let returned = (!case.detail("school_name").is_empty()).then(|| ReturnDetails {
        school_name: case.detail("school_name").to_owned(),
        school_code: case.detail("school_code").to_owned(),
        class_name: case.detail("class_name").to_owned(),
        returned_on: case.detail("returned_on").to_owned(),
    });
    DropoutCase {
        case_id: case.id.to_string(),
        pupil_id: case.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        child: Some(crate::child::on_file(&case.child, view.revealed.as_ref())),
        region_code: case.region.to_string(),
        status: case.status.to_proto() as i32,
        causes: wire(&case.causes),
        notes: case.notes.clone(),
        source: match case.source {
            Source::Handoff => CaseSource::Handoff,
            Source::Local => CaseSource::Local,
        } as i32,
        origin_region_code: case.origin_region.map(|region| region.to_string()).unwrap_or_default(),
        origin_case_id: case.origin_case_id.map(|id| id.to_string()).unwrap_or_default(),
        handoff_id: case.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
        handoff_destination_region_code: case.handoff_destination.map(|region| region.to_string()).unwrap_or_default(),
        opened_by: case.opened_by.clone(),
        open_time: Some(timestamp(case.opened_at)),
        update_time: Some(timestamp(case.updated_at)),
        supervision_region_code: case.supervision_region.map(|region| region.to_string()).unwrap_or_default(),
        supervision_reason: case.supervision_reason.clone().unwrap_or_default(),
        migrant: case.migrant,
        registered_poor: case.registered_poor,
        disability_grade: i32::from(case.disability_grade),
        confirmed_on: date(case.confirmed_on),
        last_attempt_on: date(case.last_attempt_on),
        due_on: date(case.due.map(|due| due.on)),
        due_kind: match case.due.map(|due| due.kind) {
            Some(DueKind::FirstContact) => CaseDueKind::FirstContact,
            Some(DueKind::NextAttempt) => CaseDueKind::NextAttempt,
            Some(DueKind::FollowUp) => CaseDueKind::FollowUp,
            Some(DueKind::HandoffDecision) => CaseDueKind::HandoffDecision,
            None => CaseDueKind::Unspecified,
        } as i32,
        overdue: case.due.is_some_and(|due| is_overdue(due.on, view.today)),
        relapse_count: case.relapse_count,
        returned,
        follow_up_from: date(case.follow_up_from),
        end_time: case.ended_at.map(timestamp),
        officer_count: counts.officers as i32,
        open_measure_count: counts.open_measures as i32,
        evidence_count: counts.evidence as i32,
        attempt_count: counts.attempts as i32,
        joint_attempt_count: counts.joint_attempts as i32,
        pending_deferral_request_id: counts.pending_deferral.map(|id| id.to_string()).unwrap_or_default(),
        close_reason: CloseReason::from_stored(case.detail("close_reason")).map(|reason| reason as i32).unwrap_or(0),
    }
}

pub(crate) fn officer_message(officer: &Officer) -> CaseOfficer {
    CaseOfficer {
        officer_id: officer.id.to_string(),
        full_name: officer.full_name.clone(),
        role: officer.role as i32,
        phone: officer.phone.clone(),
        added_by: officer.added_by.clone(),
        add_time: Some(timestamp(officer.added_at)),
    }
}

pub(crate) fn measure_message(measure: &Measure) -> CaseMeasure {
    CaseMeasure {
        measure_id: measure.id.to_string(),
        kind: measure.kind as i32,
        description: measure.description.clone(),
        fund: measure.fund.clone(),
        learning_support: wire(&measure.learning_support),
        due_on: date(Some(measure.due_on)),
        done_on: date(measure.done_on),
        done_by: measure.done_by.clone().unwrap_or_default(),
        added_by: measure.added_by.clone(),
        add_time: Some(timestamp(measure.added_at)),
    }
}

pub(crate) fn evidence_message(evidence: &Evidence) -> CaseEvidence {
    CaseEvidence {
        evidence_id: evidence.id.to_string(),
        r#type: evidence.kind as i32,
        document_number: evidence.document_number.clone(),
        issuing_body: evidence.issuing_body.clone(),
        issued_on: date(Some(evidence.issued_on)),
        file_name: evidence.file_name.clone(),
        file_size: evidence.file_size,
        file_sha256: evidence.file_sha256.as_deref().map(super::service::hex).unwrap_or_default(),
        added_by: evidence.added_by.clone(),
        add_time: Some(timestamp(evidence.added_at)),
    }
}

pub(crate) fn attempt_message(attempt: &Attempt) -> PersuasionAttempt {
    PersuasionAttempt {
        attempt_id: attempt.id.to_string(),
        attempt_date: date(Some(attempt.attempt_on)),
        departments: wire(&attempt.departments),
        means: wire(&attempt.means),
        place: attempt.place as i32,
        place_region_code: attempt.place_region.map(|region| region.to_string()).unwrap_or_default(),
        outcome: attempt.outcome as i32,
        notes: attempt.notes.clone(),
        joint: attempt.joint,
        recorded_by: attempt.recorded_by.clone(),
        record_time: Some(timestamp(attempt.recorded_at)),
        assisting_region_code: attempt.assisting_region.map(|region| region.to_string()).unwrap_or_default(),
        assistance_id: attempt.assistance_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

fn visit_message(visit: &Visit) -> HomeTeachingVisit {
    HomeTeachingVisit {
        visit_id: visit.id.to_string(),
        visit_date: date(Some(visit.visited_on)),
        teacher: visit.teacher.clone(),
        duration_minutes: visit.duration_minutes,
        content: visit.content.clone(),
        recorded_by: visit.recorded_by.clone(),
        record_time: Some(timestamp(visit.recorded_at)),
    }
}

fn deferral_message(request: &Deferral) -> DeferralRequest {
    DeferralRequest {
        request_id: request.id.to_string(),
        case_id: request.case_id.to_string(),
        kind: request.kind as i32,
        reason: request.reason.clone(),
        state: match request.state {
            StoredDeferralState::Pending => DeferralState::Pending,
            StoredDeferralState::Approved => DeferralState::Approved,
            StoredDeferralState::Rejected => DeferralState::Rejected,
        } as i32,
        requested_by: request.requested_by.clone(),
        request_time: Some(timestamp(request.requested_at)),
        decided_by: request.decided_by.clone().unwrap_or_default(),
        decide_time: request.decided_at.map(timestamp),
        decision_note: request.decision_note.clone(),
    }
}

#[tonic::async_trait]
impl CaseApi for CaseGrpc {
    async fn open_case(&self, request: Request<OpenCaseRequest>) -> Result<Response<OpenCaseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.open(&caller, request.into_inner()).await?;
        Ok(Response::new(OpenCaseResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> Result<Response<GetCaseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetCaseResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let page = self.0.list(&caller, request.into_inner()).await?;
        Ok(Response::new(ListCasesResponse {
            dropout_cases: page.cases.iter().map(case_message).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    type ExportCasesStream = ByteStream<ExportCasesResponse>;

    async fn export_cases(
        &self,
        request: Request<ExportCasesRequest>,
    ) -> Result<Response<Self::ExportCasesStream>, GrpcStatus> {
        let caller = caller!(self, request);
        let (file, file_name) = self.0.export(&caller, request.into_inner()).await?;
        Ok(Response::new(nol_runtime::files::stream_file(file, move |data, first| ExportCasesResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
        })))
    }

    async fn get_case_file(
        &self,
        request: Request<GetCaseFileRequest>,
    ) -> Result<Response<GetCaseFileResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let file = self.0.case_file(&caller, request.into_inner()).await?;
        Ok(Response::new(GetCaseFileResponse {
            dropout_case: Some(case_message(&file.case)),
            file: Some(CaseFile {
                officers: file.officers.iter().map(officer_message).collect(),
                measures: file.measures.iter().map(measure_message).collect(),
                evidence: file.evidence.iter().map(evidence_message).collect(),
                deferral_requests: file.deferral_requests.iter().map(deferral_message).collect(),
                home_teaching_visits: file.visits.iter().map(visit_message).collect(),
                origin_dossier: file.origin_dossier,
            }),
        }))
    }

    async fn list_case_history(
        &self,
        request: Request<ListCaseHistoryRequest>,
    ) -> Result<Response<ListCaseHistoryResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let page = self.0.history(&caller, request.into_inner()).await?;
        Ok(Response::new(ListCaseHistoryResponse {
            entries: page
                .entries
                .into_iter()
                .map(|entry| CaseHistoryEntry {
                    version: entry.version,
                    change_time: Some(timestamp(entry.at)),
                    actor: entry.actor,
                    change: entry.change,
                    detail_json: entry.detail.to_string(),
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_causes(
        &self,
        request: Request<UpdateCausesRequest>,
    ) -> Result<Response<UpdateCausesResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.update_causes(&caller, request.into_inner()).await?;
        Ok(Response::new(UpdateCausesResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn add_officer(
        &self,
        request: Request<AddOfficerRequest>,
    ) -> Result<Response<AddOfficerResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let officer = self.0.add_officer(&caller, request.into_inner()).await?;
        Ok(Response::new(AddOfficerResponse { officer: Some(officer_message(&officer)) }))
    }

    async fn add_measure(
        &self,
        request: Request<AddMeasureRequest>,
    ) -> Result<Response<AddMeasureResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let measure = self.0.add_measure(&caller, request.into_inner()).await?;
        Ok(Response::new(AddMeasureResponse { measure: Some(measure_message(&measure)) }))
    }

    async fn complete_measure(
        &self,
        request: Request<CompleteMeasureRequest>,
    ) -> Result<Response<CompleteMeasureResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let measure = self.0.complete_measure(&caller, request.into_inner()).await?;
        Ok(Response::new(CompleteMeasureResponse { measure: Some(measure_message(&measure)) }))
    }

    async fn add_evidence(
        &self,
        request: Request<AddEvidenceRequest>,
    ) -> Result<Response<AddEvidenceResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let evidence = self.0.add_evidence(&caller, request.into_inner()).await?;
        Ok(Response::new(AddEvidenceResponse { evidence: Some(evidence_message(&evidence)) }))
    }

    type GetEvidenceFileStream = ByteStream<GetEvidenceFileResponse>;

    async fn get_evidence_file(
        &self,
        request: Request<GetEvidenceFileRequest>,
    ) -> Result<Response<Self::GetEvidenceFileStream>, GrpcStatus> {
        let caller = caller!(self, request);
        let request = request.into_inner();
        let file = self.0.evidence_file(&caller, &request.case_id, &request.evidence_id).await?;
        let (file_name, file_sha256) = (file.file_name, file.sha256_hex);
        Ok(Response::new(chunks(file.content, move |data, first| GetEvidenceFileResponse {
            data,
            file_name: if first { file_name.clone() } else { String::new() },
            file_sha256: if first { file_sha256.clone() } else { String::new() },
        })))
    }

    async fn record_persuasion_attempt(
        &self,
        request: Request<RecordPersuasionAttemptRequest>,
    ) -> Result<Response<RecordPersuasionAttemptResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let (attempt, view) = self.0.record_attempt(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordPersuasionAttemptResponse {
            attempt: Some(attempt_message(&attempt)),
            dropout_case: Some(case_message(&view)),
        }))
    }

    async fn list_persuasion_attempts(
        &self,
        request: Request<ListPersuasionAttemptsRequest>,
    ) -> Result<Response<ListPersuasionAttemptsResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let page = self.0.attempts(&caller, request.into_inner()).await?;
        Ok(Response::new(ListPersuasionAttemptsResponse {
            attempts: page.attempts.iter().map(attempt_message).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn return_to_school(
        &self,
        request: Request<ReturnToSchoolRequest>,
    ) -> Result<Response<ReturnToSchoolResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.return_to_school(&caller, request.into_inner()).await?;
        Ok(Response::new(ReturnToSchoolResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn start_monitoring(
        &self,
        request: Request<StartMonitoringRequest>,
    ) -> Result<Response<StartMonitoringResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.start_monitoring(&caller, request.into_inner()).await?;
        Ok(Response::new(StartMonitoringResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn close_case(&self, request: Request<CloseCaseRequest>) -> Result<Response<CloseCaseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseCaseResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn start_home_teaching(
        &self,
        request: Request<StartHomeTeachingRequest>,
    ) -> Result<Response<StartHomeTeachingResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.start_home_teaching(&caller, request.into_inner()).await?;
        Ok(Response::new(StartHomeTeachingResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn log_home_teaching_visit(
        &self,
        request: Request<LogHomeTeachingVisitRequest>,
    ) -> Result<Response<LogHomeTeachingVisitResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let visit = self.0.log_visit(&caller, request.into_inner()).await?;
        Ok(Response::new(LogHomeTeachingVisitResponse { visit: Some(visit_message(&visit)) }))
    }

    async fn request_deferral(
        &self,
        request: Request<RequestDeferralRequest>,
    ) -> Result<Response<RequestDeferralResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let deferral = self.0.request_deferral(&caller, request.into_inner()).await?;
        Ok(Response::new(RequestDeferralResponse { request: Some(deferral_message(&deferral)) }))
    }

    async fn approve_deferral(
        &self,
        request: Request<ApproveDeferralRequest>,
    ) -> Result<Response<ApproveDeferralResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let (deferral, view) = self.0.approve_deferral(&caller, request.into_inner()).await?;
        Ok(Response::new(ApproveDeferralResponse {
            request: Some(deferral_message(&deferral)),
            dropout_case: Some(case_message(&view)),
        }))
    }

    async fn reject_deferral(
        &self,
        request: Request<RejectDeferralRequest>,
    ) -> Result<Response<RejectDeferralResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let deferral = self.0.reject_deferral(&caller, request.into_inner()).await?;
        Ok(Response::new(RejectDeferralResponse { request: Some(deferral_message(&deferral)) }))
    }

    async fn exempt_case(
        &self,
        request: Request<ExemptCaseRequest>,
    ) -> Result<Response<ExemptCaseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.exempt(&caller, request.into_inner()).await?;
        Ok(Response::new(ExemptCaseResponse { dropout_case: Some(case_message(&view)) }))
    }

    async fn record_relapse(
        &self,
        request: Request<RecordRelapseRequest>,
    ) -> Result<Response<RecordRelapseResponse>, GrpcStatus> {
        let caller = caller!(self, request);
        let view = self.0.relapse(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordRelapseResponse { dropout_case: Some(case_message(&view)) }))
    }
}
