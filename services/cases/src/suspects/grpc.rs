//! gRPC transport of the suspected-dropout ledger (`nol.v1.SuspectService`).

use nol_pii::ResidentId;
use nol_proto::v1::suspect_service_server::SuspectService as SuspectApi;
use nol_proto::v1::{
    CloseSuspectRequest, CloseSuspectResponse, ConfirmSuspectRequest, ConfirmSuspectResponse, GetSuspectRequest,
    GetSuspectResponse, ListSuspectsRequest, ListSuspectsResponse, RecordSuspectRequest, RecordSuspectResponse,
    ReportAbsenceRequest, ReportAbsenceResponse, Suspect, SuspectOutcome,
};
use nol_runtime::time::timestamp;
use tonic::{Request, Response, Status as GrpcStatus};

use super::domain::{SuspectItem, proof_to_proto};
use super::service::SuspectService;

/// The suspected-dropout ledger as the contract serves it.
pub struct SuspectGrpc(pub SuspectService);

fn suspect_message(item: &SuspectItem, revealed: Option<&ResidentId>) -> Suspect {
    let day =
        |date: Option<chrono::NaiveDate>| date.map(|date| date.format("%Y-%m-%d").to_string()).unwrap_or_default();
    Suspect {
        suspect_id: item.id.to_string(),
        region_code: item.region.to_string(),
        origin: item.origin.to_proto() as i32,
        state: item.state.to_proto() as i32,
        child: Some(crate::child::summary(
            &item.child_name,
            &item.resident_id_masked,
            item.sex,
            item.birth_date,
            &item.hukou_region,
            revealed,
        )),
        pupil_id: item.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        check_item_id: item.check_item_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: item.reason.clone(),
        days_missed: item.days_missed.unwrap_or_default(),
        absent_since: day(item.absent_since),
        school_code: item.school_code.clone().unwrap_or_default(),
        recorded_by: item.recorded_by.clone(),
        record_time: Some(timestamp(item.recorded_at)),
        outcome: item.outcome.map(|outcome| outcome.to_proto()).unwrap_or(SuspectOutcome::Unspecified) as i32,
        proof: match (item.outcome, &item.proof) {
            (Some(outcome), Some(proof)) => proof_to_proto(outcome, proof),
            _ => None,
        },
        case_id: item.case_id.map(|id| id.to_string()).unwrap_or_default(),
        resolved_by: item.resolved_by.clone().unwrap_or_default(),
        resolve_time: item.resolved_at.map(timestamp),
        notes: item.notes.clone(),
        residence_region_code: item.residence_region.clone(),
        recorded_on: day(Some(item.recorded_on)),
        resolved_on: day(item.resolved_on),
    }
}

#[tonic::async_trait]
impl SuspectApi for SuspectGrpc {
    async fn report_absence(
        &self,
        request: Request<ReportAbsenceRequest>,
    ) -> Result<Response<ReportAbsenceResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.report_absence(&caller, request.into_inner()).await?;
        Ok(Response::new(ReportAbsenceResponse { suspect: Some(suspect_message(&item, None)) }))
    }

    async fn record_suspect(
        &self,
        request: Request<RecordSuspectRequest>,
    ) -> Result<Response<RecordSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.record_suspect(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordSuspectResponse { suspect: Some(suspect_message(&item, None)) }))
    }

    async fn confirm_suspect(
        &self,
        request: Request<ConfirmSuspectRequest>,
    ) -> Result<Response<ConfirmSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let (item, case_id) = self.0.confirm(&caller, request.into_inner()).await?;
        Ok(Response::new(ConfirmSuspectResponse {
            suspect: Some(suspect_message(&item, None)),
            case_id: case_id.to_string(),
        }))
    }

    async fn close_suspect(
        &self,
        request: Request<CloseSuspectRequest>,
    ) -> Result<Response<CloseSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseSuspectResponse { suspect: Some(suspect_message(&item, None)) }))
    }

    async fn get_suspect(
        &self,
        request: Request<GetSuspectRequest>,
    ) -> Result<Response<GetSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let (item, revealed) = self.0.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetSuspectResponse { suspect: Some(suspect_message(&item, revealed.as_ref())) }))
    }

    async fn list_suspects(
        &self,
        request: Request<ListSuspectsRequest>,
    ) -> Result<Response<ListSuspectsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let page = self.0.list(&caller, request.into_inner()).await?;
        Ok(Response::new(ListSuspectsResponse {
            suspects: page.items.iter().map(|item| suspect_message(item, None)).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
