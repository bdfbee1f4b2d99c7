//! gRPC transport of the transfer service.

use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_pii::SealPublicKey;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::transfer_service_server::TransferService;
use nol_proto::v1::{
    AcceptHandoffRequest, AcceptHandoffResponse, CaseStatus, CaseView, ChildSummary, GetCaseRequest, GetHandoffRequest,
    GetHandoffResponse, Handoff, HandoffDirection, HandoffDossier, HandoffState, ListHandoffsRequest,
    ListHandoffsResponse, RequestHandoffRequest, RequestHandoffResponse, Sex,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ProvinceKeys, ServiceError, audit, database};
use nol_telemetry::PropagateTrace;
use prost::Message;
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{Direction, Refusal, State, check_accept, check_request};
use crate::handoffs;
use crate::store::{self, HandoffRow, ListFilter, NewHandoff};

type CaseClient = CaseServiceClient<InterceptedService<Channel, PropagateTrace>>;

pub struct Transfer {
    pool: PgPool,
    keys: ProvinceKeys,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    cases: CaseClient,
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AlreadyUnderWay | Refusal::AlreadyAccepted => ServiceError::already_exists(refusal.to_string()),
            other => ServiceError::precondition(other.to_string()),
        }
    }
}

impl Transfer {
    pub fn new(platform: &Platform, cases_url: &str) -> anyhow::Result<Transfer> {
        let channel = tonic::transport::Endpoint::from_shared(cases_url.to_owned())?
            .connect_timeout(std::time::Duration::from_secs(3))
            .connect_lazy();
        Ok(Transfer {
            pool: platform.pool.clone(),
            keys: platform.keys.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            cases: CaseServiceClient::with_interceptor(channel, PropagateTrace),
        })
    }

    /// The key to seal a dossier for `destination`'s province (our own for a hand-off inside it).
    fn seal_key(&self, destination: &RegionCode) -> Result<SealPublicKey, Refusal> {
        if destination.province() == self.province {
            return Ok(self.keys.seal.public_key());
        }
        self.keys.seal_key_of(destination).ok_or(Refusal::NoLink { province: destination.province() })
    }

    async fn request(&self, caller: &Caller, request: RequestHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::HandCasesOver)?;
        let mut violations = nol_runtime::Violations::default();
        let case_id = violations
            .check("case_id", Uuid::parse_str(request.case_id.trim()).map_err(|_| "is not a valid identifier (UUID)"));
        let destination =
            violations.check("destination_region_code", RegionCode::parse_county(&request.destination_region_code));
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() {
            violations.add("reason", "is required: tell the destination's case worker why");
        } else if reason.chars().count() > 2000 {
            violations.add("reason", "is longer than 2,000 characters");
        }
        violations.finish()?;
        let (case_id, destination) = (nol_runtime::error::checked(case_id)?, nol_runtime::error::checked(destination)?);

        // The case service checks the caller's scope over the case again, and audits the read.
        let mut lookup = Request::new(GetCaseRequest { case_id: case_id.to_string(), view: CaseView::Full as i32 });
        lookup.metadata_mut().insert("authorization", caller.authorization_header());
        let case = self
            .cases
            .clone()
            .get_case(lookup)
            .await
            .map_err(|status| ServiceError::from_upstream(status, "case"))?
            .into_inner()
            .dropout_case
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("case service answered without a case")))?;
        let origin = RegionCode::parse(&case.region_code).map_err(anyhow::Error::from)?;
        caller.require_scope(&origin)?;
        check_request(&origin, CaseStatus::try_from(case.status).unwrap_or_default(), &destination)?;
        let seal_key = self.seal_key(&destination)?;
        let child = case.child.clone().unwrap_or_default();
        let dossier = HandoffDossier {
            child: Some(child.clone()),
            causes: case.causes.clone(),
            notes: case.notes.clone(),
            open_time: case.open_time,
        };
        let sealed = seal_key.seal(&dossier.encode_to_vec());
        let handoff = NewHandoff {
            id: Uuid::now_v7(),
            direction: Direction::Outgoing,
            state: State::Requested,
            case_id,
            origin_region: origin.to_string(),
            destination_region: destination.to_string(),
            reason,
            child_name: child.full_name.clone(),
            resident_id_masked: child.resident_id_masked.clone(),
            sex: child.sex as i16,
            birth_date: chrono::NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d").unwrap_or_default(),
            hukou_region: child.hukou_region_code.clone(),
            sealed_dossier: Some(sealed),
            trace_context: nol_telemetry::current_trace_context(),
            requested_by: caller.subject.clone(),
            requested_at: chrono::Utc::now(),
        };
        let mut tx = self.pool.begin().await?;
        let row = match handoffs::request(&mut tx, &self.scheme, &handoff).await {
            Ok(row) => row,
            Err(error) if database::is_unique_violation(&error, Some("handoff_one_under_way_per_case")) => {
                return Err(Refusal::AlreadyUnderWay.into());
            }
            Err(error) => return Err(error.into()),
        };
        audit::record(&mut tx, caller, "handoff.request", "handoff", &[row.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(handoff_id = %row.id, origin = %origin, destination = %destination, "hand-off requested");
        Ok(to_proto(&row))
    }

    async fn accept(&self, caller: &Caller, request: AcceptHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::AcceptHandoffs)?;
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let mut tx = self.pool.begin().await?;
        let row = store::get_for_update(&mut tx, id, Direction::Incoming)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no incoming hand-off {id}")))?;
        let destination = RegionCode::parse(&row.destination_region).map_err(anyhow::Error::from)?;
        caller.require_scope(&destination)?;
        let state = State::parse(&row.state).unwrap_or(State::Requested);
        if let Err(refusal) = check_accept(Direction::Incoming, state) {
            return Err(ServiceError::already_exists(format!(
                "{refusal} by {} at {}",
                row.accepted_by.as_deref().unwrap_or("?"),
                row.accepted_at.map(|time| time.to_rfc3339()).unwrap_or_default()
            )));
        }
        // The accept's messages continue the hand-off's own trace, so one hand-off is one trace
        // across both provinces, from the origin's request to its case marked handed over.
        let span = tracing::info_span!("handoff.accept", handoff_id = %id);
        nol_telemetry::set_parent_from_map(&span, &row.trace_context);
        let updated = handoffs::accept(&mut tx, &self.scheme, &row, &caller.subject).instrument(span).await?;
        audit::record(&mut tx, caller, "handoff.accept", "handoff", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(handoff_id = %id, region = %destination, "hand-off accepted; ownership moved here");
        Ok(to_proto(&updated))
    }

    async fn get(&self, caller: &Caller, request: GetHandoffRequest) -> Result<Handoff, ServiceError> {
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(Direction::from_proto)
            .map_err(|_| ServiceError::invalid("direction", "is not a known direction"))?;
        let rows = match direction {
            Some(direction) => store::get(&self.pool, id, direction).await?.into_iter().collect(),
            None => store::get_any(&self.pool, id).await?,
        };
        if rows.is_empty() {
            return Err(ServiceError::not_found(format!("no hand-off {id}")));
        }
        let mut denied = None;
        for row in rows {
            match caller.require_scope(&own_side_region(&row)?) {
                Ok(()) => {
                    let mut conn = self.pool.acquire().await?;
                    audit::record(&mut conn, caller, "handoff.read", "handoff", &[id.to_string()]).await?;
                    return Ok(to_proto(&row));
                }
                Err(error) => denied = Some(error),
            }
        }
        Err(denied.map(ServiceError::from).unwrap_or_else(|| ServiceError::not_found(format!("no hand-off {id}"))))
    }

    async fn list(&self, caller: &Caller, request: ListHandoffsRequest) -> Result<ListHandoffsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(Direction::from_proto)
            .map_err(|_| ServiceError::invalid("direction", "is not a known direction"))?;
        let state = HandoffState::try_from(request.state)
            .map(State::from_proto)
            .map_err(|_| ServiceError::invalid("state", "is not a known state"))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let filter =
            ListFilter { prefix: region.subtree_prefix(), direction, state, escalated_only: request.escalated_only };
        let mut rows = store::list(&self.pool, &filter, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.requested_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "handoff.list", "handoff", &ids).await?;
        Ok(ListHandoffsResponse { handoffs: rows.iter().map(to_proto).collect(), next_page_token })
    }
}

/// The region on this province's side of the hand-off: the origin of an outgoing one, the
/// destination of an incoming one.
fn own_side_region(row: &HandoffRow) -> Result<RegionCode, ServiceError> {
    let text = match Direction::parse(&row.direction) {
        Some(Direction::Incoming) => &row.destination_region,
        _ => &row.origin_region,
    };
    Ok(RegionCode::parse(text).map_err(anyhow::Error::from)?)
}

fn to_proto(row: &HandoffRow) -> Handoff {
    let time = nol_runtime::time::optional_timestamp;
    Handoff {
        handoff_id: row.id.to_string(),
        direction: Direction::parse(&row.direction).map(Direction::to_proto).unwrap_or_default() as i32,
        state: State::parse(&row.state).map(State::to_proto).unwrap_or_default() as i32,
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin_region.clone(),
        destination_region_code: row.destination_region.clone(),
        reason: row.reason.clone(),
        child: Some(ChildSummary {
            full_name: row.child_name.clone(),
            resident_id_masked: row.resident_id_masked.clone(),
            sex: Sex::try_from(i32::from(row.sex)).unwrap_or_default() as i32,
            birth_date: row.birth_date.format("%Y-%m-%d").to_string(),
            hukou_region_code: row.hukou_region.clone(),
            resident_id: String::new(),
        }),
        requested_by: row.requested_by.clone(),
        request_time: time(Some(row.requested_at)),
        deliver_time: time(row.delivered_at),
        accepted_by: row.accepted_by.clone().unwrap_or_default(),
        accept_time: time(row.accepted_at),
        escalate_time: time(row.escalated_at),
        escalated_to_region_code: row.escalated_to.clone().unwrap_or_default(),
        resend_count: row.resend_count,
    }
}

#[tonic::async_trait]
impl TransferService for Transfer {
    async fn request_handoff(
        &self,
        request: Request<RequestHandoffRequest>,
    ) -> Result<Response<RequestHandoffResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let handoff = self.request(&caller, request.into_inner()).await?;
        Ok(Response::new(RequestHandoffResponse { handoff: Some(handoff) }))
    }

    async fn get_handoff(&self, request: Request<GetHandoffRequest>) -> Result<Response<GetHandoffResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let handoff = self.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetHandoffResponse { handoff: Some(handoff) }))
    }

    async fn list_handoffs(
        &self,
        request: Request<ListHandoffsRequest>,
    ) -> Result<Response<ListHandoffsResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn accept_handoff(
        &self,
        request: Request<AcceptHandoffRequest>,
    ) -> Result<Response<AcceptHandoffResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let handoff = self.accept(&caller, request.into_inner()).await?;
        Ok(Response::new(AcceptHandoffResponse { handoff: Some(handoff) }))
    }
}
