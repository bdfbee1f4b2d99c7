//! gRPC transport of the transfer service.

use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_messages::{Common, Count, Transfer as Msg};
use nol_pii::SealPublicKey;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::transfer_service_server::TransferService;
use nol_proto::v1::{
    AcceptHandoffRequest, AcceptHandoffResponse, CaseStatus, CaseView, GetCaseRequest, GetHandoffRequest,
    GetHandoffResponse, Handoff, HandoffDirection, HandoffDossier, HandoffState, ListHandoffsRequest,
    ListHandoffsResponse, RequestHandoffRequest, RequestHandoffResponse,
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

use crate::domain::{Direction, HandedChild, NewHandoff, Refusal, State, check_request};
use crate::handoffs;
use crate::proto::{direction_from_proto, handoff_to_proto, sex_from_proto, state_from_proto};
use crate::store::{self, ListFilter};

/// The longest reason a hand-off request may give, in characters.
const REASON_MAX_CHARS: usize = 2000;

type CaseClient = CaseServiceClient<InterceptedService<Channel, PropagateTrace>>;

pub struct Transfer {
    pool: PgPool,
    keys: ProvinceKeys,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    cases: CaseClient,
}

/// A refusal is ALREADY_EXISTS when the hand-off it would make exists (under way, or accepted),
/// FAILED_PRECONDITION otherwise.
impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AlreadyUnderWay | Refusal::AlreadyAccepted { .. } => {
                ServiceError::already_exists(Msg::from(refusal))
            }
            Refusal::SameRegion { .. }
            | Refusal::CaseNotOpen { .. }
            | Refusal::NoLink { .. }
            | Refusal::NotIncoming => ServiceError::precondition(Msg::from(refusal)),
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
        let case_id =
            violations.check("case_id", Uuid::parse_str(request.case_id.trim()).map_err(|_| Common::NotAUuid));
        let destination =
            violations.check("destination_region_code", RegionCode::parse_county(&request.destination_region_code));
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() {
            violations.add("reason", Msg::ReasonRequired);
        } else if reason.chars().count() > REASON_MAX_CHARS {
            violations.add("reason", Common::TooLong { max: Count(REASON_MAX_CHARS as u64) });
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
            origin,
            destination,
            reason,
            child: HandedChild {
                full_name: child.full_name.clone(),
                resident_id_masked: child.resident_id_masked.clone(),
                sex: sex_from_proto(child.sex),
                birth_date: chrono::NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d").unwrap_or_default(),
                hukou_region: child.hukou_region_code.clone(),
            },
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
        Ok(handoff_to_proto(&row))
    }

    async fn accept(&self, caller: &Caller, request: AcceptHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::AcceptHandoffs)?;
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let mut tx = self.pool.begin().await?;
        let row = store::get_for_update(&mut tx, id, Direction::Incoming)
            .await?
            .ok_or_else(|| ServiceError::not_found(Msg::NoIncomingHandoff { id: id.to_string() }))?;
        let destination = row.destination;
        caller.require_scope(&destination)?;
        row.check_accept()?;
        // The accept's messages continue the hand-off's own trace, so one hand-off is one trace
        // across both provinces, from the origin's request to its case marked handed over.
        let span = tracing::info_span!("handoff.accept", handoff_id = %id);
        nol_telemetry::set_parent_from_map(&span, &row.trace_context);
        let updated = handoffs::accept(&mut tx, &self.scheme, &row, &caller.subject).instrument(span).await?;
        audit::record(&mut tx, caller, "handoff.accept", "handoff", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(handoff_id = %id, region = %destination, "hand-off accepted; ownership moved here");
        Ok(handoff_to_proto(&updated))
    }

    async fn get(&self, caller: &Caller, request: GetHandoffRequest) -> Result<Handoff, ServiceError> {
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let rows = match direction {
            Some(direction) => store::get(&self.pool, id, direction).await?.into_iter().collect(),
            None => store::get_any(&self.pool, id).await?,
        };
        let no_handoff = || ServiceError::not_found(Msg::NoHandoff { id: id.to_string() });
        if rows.is_empty() {
            return Err(no_handoff());
        }
        let mut denied = None;
        for row in rows {
            match caller.require_scope(&row.own_region()) {
                Ok(()) => {
                    let mut conn = self.pool.acquire().await?;
                    audit::record(&mut conn, caller, "handoff.read", "handoff", &[id.to_string()]).await?;
                    return Ok(handoff_to_proto(&row));
                }
                Err(error) => denied = Some(error),
            }
        }
        Err(denied.map(ServiceError::from).unwrap_or_else(no_handoff))
    }

    async fn list(&self, caller: &Caller, request: ListHandoffsRequest) -> Result<ListHandoffsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let state = HandoffState::try_from(request.state)
            .map(state_from_proto)
            .map_err(|_| ServiceError::invalid("state", Msg::NotAState))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let filter =
            ListFilter { prefix: region.subtree_prefix(), direction, state, escalated_only: request.escalated_only };
        let mut rows = store::list(&self.pool, &filter, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.requested_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "handoff.list", "handoff", &ids).await?;
        Ok(ListHandoffsResponse { handoffs: rows.iter().map(handoff_to_proto).collect(), next_page_token })
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
