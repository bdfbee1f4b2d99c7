//! gRPC transport of the reporting service.

use nol_auth::{Caller, Role};
use nol_messages::vocab::Action;
use nol_proto::v1::reporting_service_server::ReportingService;
use nol_proto::v1::{
    AcceptReportRequest, AcceptReportResponse, ApproveReportRequest, ApproveReportResponse, ConsolidationYear,
    DraftReportRequest, DraftReportResponse, ExportPeriodFiguresRequest, ExportPeriodFiguresResponse,
    GetConsolidationRateRequest, GetConsolidationRateResponse, GetPeriodFiguresRequest, GetPeriodFiguresResponse,
    GetRegionSummaryRequest, GetRegionSummaryResponse, GetReportPdfRequest, GetReportPdfResponse, GetReportRequest,
    GetReportResponse, HandoffCounts, HandoffRejectionCount, HandoffTally, ImportCohortEntrantsRequest,
    ImportCohortEntrantsResponse, RegionFigures, RegionSummary, ReopenReportRequest, ReopenReportResponse,
    ReturnReportRequest, ReturnReportResponse, SubmitReportRequest, SubmitReportResponse, SweepLateReportsRequest,
    SweepLateReportsResponse,
};
use nol_region::RegionCode;
use nol_runtime::clock::Clock;
use nol_runtime::{Platform, ServiceError};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::handoffs::{RejectReason, Tally};
use crate::metrics::{Metric, cases_active};
use crate::reports::Step;
use crate::store;
use crate::workflow::{Reports, parse_period};

pub struct Reporting {
    reports: Reports,
    pool: PgPool,
    province: RegionCode,
    /// Rule time: the day overdue hand-offs are reckoned on.
    clock: Clock,
}

fn tally_to_proto(tally: &Tally) -> HandoffTally {
    HandoffTally {
        total: tally.total(),
        accepted: tally.accepted,
        rejected: tally.rejected(),
        rejected_by_reason: RejectReason::ALL
            .into_iter()
            .zip(tally.rejected)
            .map(|(reason, count)| HandoffRejectionCount { reason: reason.to_proto() as i32, count })
            .collect(),
        cancelled: tally.cancelled,
        pending: tally.pending,
        overdue: tally.overdue,
    }
}

impl Reporting {
    pub fn new(platform: &Platform) -> Reporting {
        Reporting {
            reports: Reports::new(platform),
            pool: platform.pool.clone(),
            province: platform.config.province,
            clock: platform.clock.clone(),
        }
    }

    async fn summary(&self, caller: &Caller, request: GetRegionSummaryRequest) -> Result<RegionSummary, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let totals = store::totals(&self.pool, &region).await?;
        let today = self.clock.today();
        let (outgoing, incoming, newest_handoff_event) = store::handoff_tallies(&self.pool, &region, today).await?;
        let value =
            |metric: Metric| totals.iter().find(|total| total.metric == metric).map(|total| total.value).unwrap_or(0);
        let opened = value(Metric::CasesOpened);
        let taken_in = value(Metric::CasesTakenIn);
        let handed_out = value(Metric::CasesHandedOut);
        let (exempt, closed) = (value(Metric::CasesExempt), value(Metric::CasesClosed));
        Ok(RegionSummary {
            region_code: region.to_string(),
            region_name: region.full_name(),
            pupils_registered: value(Metric::PupilsRegistered),
            cases_opened: opened,
            cases_active: cases_active(opened, taken_in, handed_out, exempt + closed),
            cases_handed_out: handed_out,
            cases_taken_in: taken_in,
            cases_returned: value(Metric::CasesReturned),
            cases_relapsed: value(Metric::CasesRelapsed),
            cases_home_teaching: value(Metric::CasesHomeTeaching),
            cases_deferred: value(Metric::CasesDeferred),
            cases_suspended: value(Metric::CasesSuspended),
            cases_exempt: exempt,
            cases_closed: closed,
            persuasion_attempts: value(Metric::PersuasionAttempts),
            joint_persuasion_attempts: value(Metric::JointPersuasionAttempts),
            last_event_time: totals
                .iter()
                .map(|total| total.last_event_at)
                .chain(newest_handoff_event)
                .max()
                .map(nol_runtime::time::timestamp),
            handoffs: Some(HandoffCounts {
                outgoing: Some(tally_to_proto(&outgoing)),
                incoming: Some(tally_to_proto(&incoming)),
                overdue_as_of: today.format("%Y-%m-%d").to_string(),
            }),
        })
    }
}

#[tonic::async_trait]
impl ReportingService for Reporting {
    async fn get_region_summary(
        &self,
        request: Request<GetRegionSummaryRequest>,
    ) -> Result<Response<GetRegionSummaryResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let summary = self.summary(&caller, request.into_inner()).await?;
        Ok(Response::new(GetRegionSummaryResponse { summary: Some(summary) }))
    }

    async fn get_period_figures(
        &self,
        request: Request<GetPeriodFiguresRequest>,
    ) -> Result<Response<GetPeriodFiguresResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let region = nol_runtime::region_in_scope(&caller, &request.region_code)?;
        let period = parse_period(&request.period)?;
        let cut = self.reports.period(&region, period).await?;
        let row = |code: &RegionCode, figures: &crate::figures::Figures| RegionFigures {
            region_code: code.to_string(),
            region_name: code.full_name(),
            figures: Some(figures.to_proto()),
        };
        Ok(Response::new(GetPeriodFiguresResponse {
            total: Some(row(&region, &cut.total)),
            counties: cut.counties.iter().map(|(code, figures)| row(code, figures)).collect(),
            period_start: period.start().format("%Y-%m-%d").to_string(),
            period_end: period.end().format("%Y-%m-%d").to_string(),
            period_name: period.name_zh(),
            warnings: cut.warnings,
        }))
    }

    async fn draft_report(
        &self,
        request: Request<DraftReportRequest>,
    ) -> Result<Response<DraftReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let notes = request.notes.unwrap_or_default();
        let report = self.reports.draft(&caller, &request.region_code, &request.period, notes).await?;
        Ok(Response::new(DraftReportResponse { report: Some(report) }))
    }

    async fn submit_report(
        &self,
        request: Request<SubmitReportRequest>,
    ) -> Result<Response<SubmitReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report = self.reports.step(&caller, &request.region_code, &request.period, Step::Submit, "").await?;
        Ok(Response::new(SubmitReportResponse { report: Some(report) }))
    }

    async fn approve_report(
        &self,
        request: Request<ApproveReportRequest>,
    ) -> Result<Response<ApproveReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report =
            self.reports.step(&caller, &request.region_code, &request.period, Step::Approve, &request.comment).await?;
        Ok(Response::new(ApproveReportResponse { report: Some(report) }))
    }

    async fn return_report(
        &self,
        request: Request<ReturnReportRequest>,
    ) -> Result<Response<ReturnReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report =
            self.reports.step(&caller, &request.region_code, &request.period, Step::Return, &request.comment).await?;
        Ok(Response::new(ReturnReportResponse { report: Some(report) }))
    }

    async fn accept_report(
        &self,
        request: Request<AcceptReportRequest>,
    ) -> Result<Response<AcceptReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report =
            self.reports.step(&caller, &request.region_code, &request.period, Step::Accept, &request.comment).await?;
        Ok(Response::new(AcceptReportResponse { report: Some(report) }))
    }

    async fn reopen_report(
        &self,
        request: Request<ReopenReportRequest>,
    ) -> Result<Response<ReopenReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report =
            self.reports.step(&caller, &request.region_code, &request.period, Step::Reopen, &request.reason).await?;
        Ok(Response::new(ReopenReportResponse { report: Some(report) }))
    }

    async fn get_report(&self, request: Request<GetReportRequest>) -> Result<Response<GetReportResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let report = self.reports.get(&caller, &request.region_code, &request.period).await?;
        Ok(Response::new(GetReportResponse { report: Some(report) }))
    }

    async fn get_report_pdf(
        &self,
        request: Request<GetReportPdfRequest>,
    ) -> Result<Response<GetReportPdfResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let (file_name, content) = self.reports.pdf(&caller, &request.region_code, &request.period).await?;
        Ok(Response::new(GetReportPdfResponse { file_name, content }))
    }

    async fn sweep_late_reports(
        &self,
        request: Request<SweepLateReportsRequest>,
    ) -> Result<Response<SweepLateReportsResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        caller
            .require_role(&[Role::Supervisor, Role::Operator, Role::System], Action::RunSupervisionSweep)
            .map_err(ServiceError::from)?;
        let raised = self.reports.sweep_late(&self.province).await?;
        Ok(Response::new(SweepLateReportsResponse { raised }))
    }

    async fn import_cohort_entrants(
        &self,
        request: Request<ImportCohortEntrantsRequest>,
    ) -> Result<Response<ImportCohortEntrantsResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let today = self.clock.today();
        let rows_imported =
            crate::cohorts::import(&self.pool, &caller, &request.file_name, &request.content, today).await?;
        Ok(Response::new(ImportCohortEntrantsResponse { rows_imported }))
    }

    async fn get_consolidation_rate(
        &self,
        request: Request<GetConsolidationRateRequest>,
    ) -> Result<Response<GetConsolidationRateResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let region = nol_runtime::region_in_scope(&caller, &request.into_inner().region_code)?;
        let years = crate::cohorts::rates(&self.pool, &region)
            .await?
            .into_iter()
            .map(|rate| ConsolidationYear {
                graduation_year: rate.graduation_year,
                entrants: rate.entrants,
                graduates: rate.graduates,
                rate: rate.rate(),
                counties_counted: rate.counties,
            })
            .collect();
        Ok(Response::new(GetConsolidationRateResponse { years }))
    }

    async fn export_period_figures(
        &self,
        request: Request<ExportPeriodFiguresRequest>,
    ) -> Result<Response<ExportPeriodFiguresResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let request = request.into_inner();
        let region = nol_runtime::region_in_scope(&caller, &request.region_code)?;
        let period = parse_period(&request.period)?;
        let (file_name, content) = self.reports.export(&region, period).await?;
        Ok(Response::new(ExportPeriodFiguresResponse {
            file_name,
            media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
            content,
        }))
    }
}
