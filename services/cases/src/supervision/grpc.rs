//! gRPC transport of `nol.v1.SupervisionService`.

use nol_proto::v1::supervision_service_server::SupervisionService as SupervisionApi;
use nol_proto::v1::{
    AnswerSupervisionItemRequest, AnswerSupervisionItemResponse, CheckProgress, CloseSupervisionItemRequest,
    CloseSupervisionItemResponse, DeadlinePolicy as PolicyMessage, GetDeadlinePolicyRequest, GetDeadlinePolicyResponse,
    GetSemesterCheckProgressRequest, GetSemesterCheckProgressResponse, ListOverdueWorkRequest, ListOverdueWorkResponse,
    ListSemesterCheckItemsRequest, ListSemesterCheckItemsResponse, ListSemesterChecksRequest,
    ListSemesterChecksResponse, ListSupervisionItemsRequest, ListSupervisionItemsResponse,
    MarkSemesterAttendanceRequest, MarkSemesterAttendanceResponse, OverdueWork, RecordAbsenceFollowUpRequest,
    RecordAbsenceFollowUpResponse, SemesterCheck, SemesterCheckItem, StartSemesterCheckRequest,
    StartSemesterCheckResponse, SupervisionItem as ItemMessage, SweepOverdueWorkRequest, SweepOverdueWorkResponse,
    UpdateDeadlinePolicyRequest, UpdateDeadlinePolicyResponse,
};
use nol_runtime::ServiceError;
use nol_runtime::time::timestamp;
use tonic::{Request, Response, Status as GrpcStatus};

use super::domain::SupervisionItem;
use super::service::SupervisionService;
use super::store::{Check, CheckItem, ChildSummary, Progress};
use crate::case::store::PolicyRow;

/// Supervision and the semester check as the contract serves them.
pub struct SupervisionGrpc(pub SupervisionService);

fn child(child: &ChildSummary) -> nol_proto::v1::ChildSummary {
    crate::child::summary(
        &child.full_name,
        &child.resident_id_masked,
        child.sex,
        Some(child.birth_date),
        &child.hukou_region,
        None,
    )
}

fn overdue_child(work: &super::store::OverdueWork) -> nol_proto::v1::ChildSummary {
    crate::child::summary(
        &work.child_name,
        &work.resident_id_masked,
        work.sex,
        work.birth_date,
        &work.hukou_region,
        None,
    )
}

fn policy_message(row: &PolicyRow) -> PolicyMessage {
    PolicyMessage {
        first_contact_days: row.first_contact_days,
        attempt_interval_days: row.attempt_interval_days,
        deferred_follow_up_days: row.deferred_follow_up_days,
        supervision_after_days: row.supervision_after_days,
        handoff_decision_days: row.handoff_decision_days,
        update_by: row.updated_by.clone(),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn item_message(item: &SupervisionItem) -> ItemMessage {
    ItemMessage {
        item_id: item.id.to_string(),
        kind: item.kind.to_proto() as i32,
        case_id: item.case_id.map(|id| id.to_string()).unwrap_or_default(),
        handoff_id: item.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
        region_code: item.region.to_string(),
        supervising_region_code: item.supervising_region.to_string(),
        reason: item.reason.clone(),
        due_date: item.due_on.to_string(),
        state: item.state.to_proto() as i32,
        answer: item.answer.clone().unwrap_or_default(),
        answered_by: item.answered_by.clone().unwrap_or_default(),
        closing_note: item.closing_note.clone().unwrap_or_default(),
        closed_by: item.closed_by.clone().unwrap_or_default(),
        raise_time: Some(timestamp(item.raised_at)),
        escalations: item.escalations,
    }
}

fn check_message(check: &Check) -> SemesterCheck {
    SemesterCheck {
        check_id: check.id.to_string(),
        region_code: check.region.to_string(),
        semester: check.semester.clone(),
        deadline: check.deadline.to_string(),
        item_count: check.item_count,
        started_by: check.started_by.clone(),
        start_time: Some(timestamp(check.started_at)),
    }
}

fn check_item_message(item: &CheckItem, today: chrono::NaiveDate) -> SemesterCheckItem {
    SemesterCheckItem {
        item_id: item.id.to_string(),
        check_id: item.check_id.to_string(),
        case_id: item.case_id.to_string(),
        region_code: item.region.to_string(),
        school_code: item.school_code.clone(),
        school_name: item.school_name.clone(),
        child: Some(child(&item.child)),
        state: item.state.to_proto() as i32,
        overdue: item.state.is_open() && today > item.deadline,
        updated_by: item.updated_by.clone().unwrap_or_default(),
        note: item.note.clone(),
    }
}

fn progress_message(row: Progress) -> CheckProgress {
    CheckProgress {
        key: row.key,
        name: row.name,
        total: row.total,
        pending: row.pending,
        present: row.present,
        absent: row.absent,
        relapsed: row.relapsed,
        overdue: row.overdue,
    }
}

#[tonic::async_trait]
impl SupervisionApi for SupervisionGrpc {
    async fn get_deadline_policy(
        &self,
        request: Request<GetDeadlinePolicyRequest>,
    ) -> Result<Response<GetDeadlinePolicyResponse>, GrpcStatus> {
        nol_runtime::caller_of(&request, &self.0.province)?;
        let row = self.0.policy().await?;
        Ok(Response::new(GetDeadlinePolicyResponse { policy: Some(policy_message(&row)) }))
    }

    async fn update_deadline_policy(
        &self,
        request: Request<UpdateDeadlinePolicyRequest>,
    ) -> Result<Response<UpdateDeadlinePolicyResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let (row, rescheduled) = self.0.update_policy(&caller, request.into_inner()).await?;
        Ok(Response::new(UpdateDeadlinePolicyResponse {
            policy: Some(policy_message(&row)),
            cases_rescheduled: rescheduled,
        }))
    }

    async fn list_overdue_work(
        &self,
        request: Request<ListOverdueWorkRequest>,
    ) -> Result<Response<ListOverdueWorkResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let page = self.0.list_overdue(&caller, request.into_inner()).await?;
        let today = page.today;
        Ok(Response::new(ListOverdueWorkResponse {
            work: page
                .work
                .iter()
                .map(|work| OverdueWork {
                    case_id: work.case_id.to_string(),
                    region_code: work.region.to_string(),
                    child: Some(overdue_child(work)),
                    kind: work.kind.to_proto() as i32,
                    due_date: work.due_on.to_string(),
                    days_overdue: (today - work.due_on).num_days() as i32,
                    supervision_item_id: work.supervision_item_id.map(|id| id.to_string()).unwrap_or_default(),
                    handoff_id: work.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
                    assistance_id: work.assistance_id.map(|id| id.to_string()).unwrap_or_default(),
                })
                .collect(),
            next_page_token: page.next_page_token,
            total_count: page.total_count,
        }))
    }

    async fn sweep_overdue_work(
        &self,
        request: Request<SweepOverdueWorkRequest>,
    ) -> Result<Response<SweepOverdueWorkResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        caller
            .require_role(
                &[nol_auth::Role::Operator, nol_auth::Role::System],
                nol_messages::vocab::Action::RunSupervisionSweep,
            )
            .map_err(ServiceError::from)?;
        let (raised, escalated) = self.0.sweep().await?;
        Ok(Response::new(SweepOverdueWorkResponse { raised, escalated }))
    }

    async fn list_supervision_items(
        &self,
        request: Request<ListSupervisionItemsRequest>,
    ) -> Result<Response<ListSupervisionItemsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let page = self.0.list_items(&caller, request.into_inner()).await?;
        Ok(Response::new(ListSupervisionItemsResponse {
            items: page.items.iter().map(item_message).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn answer_supervision_item(
        &self,
        request: Request<AnswerSupervisionItemRequest>,
    ) -> Result<Response<AnswerSupervisionItemResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.answer(&caller, request.into_inner()).await?;
        Ok(Response::new(AnswerSupervisionItemResponse { item: Some(item_message(&item)) }))
    }

    async fn close_supervision_item(
        &self,
        request: Request<CloseSupervisionItemRequest>,
    ) -> Result<Response<CloseSupervisionItemResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseSupervisionItemResponse { item: Some(item_message(&item)) }))
    }

    async fn start_semester_check(
        &self,
        request: Request<StartSemesterCheckRequest>,
    ) -> Result<Response<StartSemesterCheckResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let check = self.0.start_check(&caller, request.into_inner()).await?;
        Ok(Response::new(StartSemesterCheckResponse { check: Some(check_message(&check)) }))
    }

    async fn list_semester_check_items(
        &self,
        request: Request<ListSemesterCheckItemsRequest>,
    ) -> Result<Response<ListSemesterCheckItemsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let page = self.0.list_check_items(&caller, request.into_inner()).await?;
        Ok(Response::new(ListSemesterCheckItemsResponse {
            items: page.items.iter().map(|item| check_item_message(item, page.today)).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn mark_semester_attendance(
        &self,
        request: Request<MarkSemesterAttendanceRequest>,
    ) -> Result<Response<MarkSemesterAttendanceResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.mark(&caller, request.into_inner()).await?;
        let today = self.0.clock.today();
        Ok(Response::new(MarkSemesterAttendanceResponse { item: Some(check_item_message(&item, today)) }))
    }

    async fn record_absence_follow_up(
        &self,
        request: Request<RecordAbsenceFollowUpRequest>,
    ) -> Result<Response<RecordAbsenceFollowUpResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let item = self.0.follow_up(&caller, request.into_inner()).await?;
        let today = self.0.clock.today();
        Ok(Response::new(RecordAbsenceFollowUpResponse { item: Some(check_item_message(&item, today)) }))
    }

    async fn list_semester_checks(
        &self,
        request: Request<ListSemesterChecksRequest>,
    ) -> Result<Response<ListSemesterChecksResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let checks = self.0.list_checks(&caller, request.into_inner()).await?;
        Ok(Response::new(ListSemesterChecksResponse { checks: checks.iter().map(check_message).collect() }))
    }

    async fn get_semester_check_progress(
        &self,
        request: Request<GetSemesterCheckProgressRequest>,
    ) -> Result<Response<GetSemesterCheckProgressResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.0.province)?;
        let progress = self.0.progress(&caller, request.into_inner()).await?;
        Ok(Response::new(GetSemesterCheckProgressResponse {
            check: Some(check_message(&progress.check)),
            rows: progress.rows.into_iter().map(progress_message).collect(),
            total: Some(progress_message(progress.total)),
        }))
    }
}
