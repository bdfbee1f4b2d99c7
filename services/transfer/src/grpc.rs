//! The transfer service's use cases (one per RPC) and their gRPC transport.

use chrono::Datelike;
use std::time::Duration;

use nol_auth::{Caller, Role};
use nol_messages::vocab::Action;
use nol_messages::{Common, Count, Transfer as Msg};
use nol_pii::ResidentId;
use nol_proto::v1::case_handoff_service_client::CaseHandoffServiceClient;
use nol_proto::v1::case_service_client::CaseServiceClient;
use nol_proto::v1::transfer_service_server::TransferService;
use nol_proto::v1::*;
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit, database};
use nol_telemetry::PropagateTrace;
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{self, Direction, Refusal, RejectReason, Rejection, State, TransferInState, check_request};
use crate::handoffs::{Reserved, Steps};
use crate::proto::{
    direction_from_proto, handoff_to_proto, reject_reason_from_proto, state_from_proto, transfer_in_state_from_proto,
    transfer_in_to_proto,
};
use crate::store::{self, ListFilter, NewTransferIn};
use crate::transfer_in;

/// The longest reason or note, in characters.
const TEXT_MAX_CHARS: usize = 2000;

/// How long an accept waits for this province's case service to open the case (or refuse it)
/// before it answers with the hand-off as it stands.
const ACCEPT_WAIT: Duration = Duration::from_secs(5);

type CaseClient = CaseServiceClient<InterceptedService<Channel, PropagateTrace>>;
type CaseHandoffClient = CaseHandoffServiceClient<InterceptedService<Channel, PropagateTrace>>;

pub struct Transfer {
    pool: PgPool,
    steps: Steps,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    cases: CaseClient,
    case_handoffs: CaseHandoffClient,
    clock: nol_runtime::clock::Clock,
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
            | Refusal::NotIncoming
            | Refusal::NotOutgoing
            | Refusal::Decided { .. } => ServiceError::precondition(Msg::from(refusal)),
        }
    }
}

impl From<crate::handoffs::StepError> for ServiceError {
    fn from(error: crate::handoffs::StepError) -> Self {
        match error {
            crate::handoffs::StepError::Database(error) => error.into(),
            crate::handoffs::StepError::Permanent(reason) => ServiceError::Internal(anyhow::anyhow!(reason)),
        }
    }
}

/// A text of at most 2,000 characters, trimmed; `missing` is the violation when it is required
/// and empty.
pub(crate) fn text(violations: &mut Violations, field: &str, text: &str, missing: Option<nol_messages::Msg>) -> String {
    let text = text.trim();
    if text.is_empty() {
        if let Some(missing) = missing {
            violations.add(field, missing);
        }
    } else if text.chars().count() > TEXT_MAX_CHARS {
        violations.add(field, Common::TooLong { max: Count(TEXT_MAX_CHARS as u64) });
    }
    text.to_owned()
}

/// A required text of at most 2,000 characters.
fn required_text(violations: &mut Violations, field: &str, value: &str, missing: Msg) -> String {
    text(violations, field, value, Some(missing.into()))
}

/// A call to another service of this province on the caller's behalf (its token forwarded).
pub(crate) fn with_token<T>(caller: &Caller, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", caller.authorization_header());
    request
}

/// A lazy channel to this province's case service.
pub(crate) fn case_channel(platform: &Platform, cases_url: &str) -> anyhow::Result<Channel> {
    platform.upstream(cases_url, None)
}

impl Transfer {
    pub fn new(platform: &Platform, cases_url: &str, steps: Steps) -> anyhow::Result<Transfer> {
        let channel = case_channel(platform, cases_url)?;
        Ok(Transfer {
            pool: platform.pool.clone(),
            steps,
            wake: platform.wake.clone(),
            province: platform.config.province,
            cases: CaseServiceClient::with_interceptor(channel.clone(), PropagateTrace),
            case_handoffs: CaseHandoffServiceClient::with_interceptor(channel, PropagateTrace),
            clock: platform.clock.clone(),
        })
    }

    /// RequestHandoff: the case is reserved by the case service (checked and marked pending in one
    /// transaction), then the hand-off recorded and sent with its written notice.
    async fn request(&self, caller: &Caller, request: RequestHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::HandCasesOver)?;
        let mut violations = Violations::default();
        let case_id =
            violations.check("case_id", Uuid::parse_str(request.case_id.trim()).map_err(|_| Common::NotAUuid));
        let destination =
            violations.check("destination_region_code", RegionCode::parse_county(&request.destination_region_code));
        let reason = required_text(&mut violations, "reason", &request.reason, Msg::ReasonRequired);
        let new_inflow = match request.new_inflow_region_code.trim() {
            "" => None,
            code => violations.check("new_inflow_region_code", RegionCode::parse_county(code)),
        };
        if new_inflow.is_some() && new_inflow == destination {
            violations.add("new_inflow_region_code", Msg::NewInflowIsDestination);
        }
        violations.finish()?;
        let (case_id, destination) = (nol_runtime::error::checked(case_id)?, nol_runtime::error::checked(destination)?);
        self.start_handoff(caller, case_id, destination, reason, new_inflow).await
    }

    /// Checks what can be checked before anything changes (the caller's scope over the case, its
    /// status, the destination, the link), then reserves the case and records the hand-off.
    async fn start_handoff(
        &self,
        caller: &Caller,
        case_id: Uuid,
        destination: RegionCode,
        reason: String,
        new_inflow: Option<RegionCode>,
    ) -> Result<Handoff, ServiceError> {
        // A first read (the case service checks scope again and audits it) refuses the plain
        // mistakes without reserving anything; the reservation below decides for real.
        let lookup = with_token(caller, GetCaseRequest { case_id: case_id.to_string(), view: CaseView::Masked as i32 });
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
        if self.steps.seal_key(&destination).is_none() {
            return Err(Refusal::NoLink { province: destination.province() }.into());
        }
        let handoff_id = Uuid::now_v7();
        let reserve = with_token(
            caller,
            ReserveCaseRequest {
                case_id: case_id.to_string(),
                handoff_id: handoff_id.to_string(),
                destination_region_code: destination.to_string(),
                reason: reason.clone(),
                new_inflow_region_code: new_inflow.map(|region| region.to_string()).unwrap_or_default(),
            },
        );
        let reserved = self
            .case_handoffs
            .clone()
            .reserve_case(reserve)
            .await
            .map_err(|status| ServiceError::from_upstream(status, "case"))?
            .into_inner();
        let reserved = Reserved {
            handoff_id,
            case_id,
            origin,
            destination,
            reason,
            requested_by: caller.subject.clone(),
            sealed_dossier: reserved.sealed_dossier,
            trace_context: nol_telemetry::current_trace_context(),
            today: self.clock.today(),
        };
        // The notice number first, holding no connection: a request that held its transaction's
        // connection while waiting for the claim's could, many at once, empty the pool.
        store::claim_notice_number(&self.pool, handoff_id, &origin, reserved.today.year()).await?;
        let mut tx = self.pool.begin().await?;
        let handoff = match self.steps.request(&mut tx, &reserved).await {
            Ok(handoff) => handoff,
            Err(crate::handoffs::StepError::Database(error))
                if database::is_unique_violation(&error, Some("handoff_one_under_way_per_case")) =>
            {
                return Err(Refusal::AlreadyUnderWay.into());
            }
            Err(error) => return Err(error.into()),
        };
        audit::record(&mut tx, caller, "handoff.request", "handoff", &[handoff.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(handoff_to_proto(&handoff))
    }

    /// An incoming hand-off in the caller's scope, locked.
    async fn incoming_for_update(
        &self,
        conn: &mut sqlx::PgConnection,
        caller: &Caller,
        id: Uuid,
    ) -> Result<domain::Handoff, ServiceError> {
        let handoff = store::get_for_update(conn, id, Direction::Incoming)
            .await?
            .ok_or_else(|| ServiceError::not_found(Msg::NoIncomingHandoff { id: id.to_string() }))?;
        caller.require_scope(&handoff.destination)?;
        Ok(handoff)
    }

    /// AcceptHandoff: accepting (committed with its fallback event), then this province's case
    /// service asked to open the case at once (R2 checked there) and its answer recorded, the
    /// origin told; if that call fails, the fallback event has the case opened and the call waits
    /// briefly for that outcome, so the case worker hears it either way.
    async fn accept(&self, caller: &Caller, request: AcceptHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::AcceptHandoffs)?;
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        // Keyed statements only, as a consumer's batch: planned as PostgreSQL chooses.
        let mut tx = self.pool.begin_with(nol_backbone::BEGIN_BATCH).await?;
        let handoff = self.incoming_for_update(&mut tx, caller, id).await?;
        handoff.check_accept()?;
        // The accept's messages continue the hand-off's own trace, so one hand-off is one trace
        // across both provinces, from the origin's request to its case marked handed over.
        let span = tracing::info_span!("handoff.accept", handoff_id = %id);
        nol_telemetry::set_parent_from_map(&span, &handoff.trace_context);
        self.steps.accept(&mut tx, &handoff, &caller.subject).instrument(span.clone()).await?;
        audit::record(&mut tx, caller, "handoff.accept", "handoff", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        let outcome = match self.take_in_now(caller, &handoff).instrument(span).await {
            Some(outcome) => outcome,
            None => self.wait_decided(id).await?,
        };
        match (&outcome.state, &outcome.rejection) {
            (State::Rejected, Some(rejection)) if rejection.reason == RejectReason::AlreadyHasCase => {
                let case_id = rejection.linked_case_id.map(|id| id.to_string()).unwrap_or_default();
                Err(ServiceError::already_exists(Msg::AcceptRefusedByR2 { case_id }))
            }
            _ => self.with_coworker(handoff_to_proto(&outcome)).await,
        }
    }

    /// The accepted hand-off's case opened by the case service at once (`TakeInHandoff`) and its
    /// answer recorded here as its event's would be: accepted and the origin answered, or
    /// rejected as "already has a case here". This takes two hops off the way to the origin (the
    /// accept's event to the case service, its answer back), each a relay pass and a commit.
    /// `None` when the call or the recording fails: the accept is committed with its event, due a
    /// second later, which decides instead (the case service answers whichever comes second with
    /// the first's decision).
    async fn take_in_now(&self, caller: &Caller, handoff: &domain::Handoff) -> Option<domain::Handoff> {
        let request = with_token(
            caller,
            TakeInHandoffRequest {
                handoff_id: handoff.id.to_string(),
                case_id: handoff.case_id.to_string(),
                origin_region_code: handoff.origin.to_string(),
                destination_region_code: handoff.destination.to_string(),
                sealed_dossier: handoff.sealed_dossier.clone().unwrap_or_default(),
            },
        );
        let answer = match self.case_handoffs.clone().take_in_handoff(request).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                tracing::warn!(handoff_id = %handoff.id, code = ?status.code(), message = status.message(), "the case service did not take the case in at once; the accept's event will");
                return None;
            }
        };
        // The hand-off as this transaction leaves it: no second read after the commit.
        let recorded: sqlx::Result<Option<domain::Handoff>> = async {
            let mut tx = self.pool.begin_with(nol_backbone::BEGIN_BATCH).await?;
            let outcome = if let Ok(case_id) = Uuid::parse_str(&answer.case_id) {
                self.steps.taken_in(&mut tx, handoff.id, case_id).await?
            } else if let Ok(existing) = Uuid::parse_str(&answer.existing_case_id) {
                self.steps.take_in_refused(&mut tx, handoff.id, existing).await?
            } else {
                return Ok(None);
            };
            tx.commit().await?;
            self.wake.notify();
            Ok(outcome)
        }
        .await;
        match recorded {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(handoff_id = %handoff.id, %error, "the case service's answer was not recorded at once; its event will be");
                None
            }
        }
    }

    /// The incoming hand-off once it is no longer accepting, or as it stands after a short wait.
    ///
    /// The decision is committed by this service's consumer (the case service's answer), in this
    /// process or, with replicas, in another: it looks again after each of this process's
    /// consumer commits, and polls besides (5, 10, 20 … 100 ms) for a decision made elsewhere.
    async fn wait_decided(&self, id: Uuid) -> Result<domain::Handoff, ServiceError> {
        let deadline = tokio::time::Instant::now() + ACCEPT_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            // Listening before looking, so a commit between the two is not missed.
            let committed = self.steps.committed.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let handoff = store::get(&self.pool, id, Direction::Incoming).await?.ok_or(sqlx::Error::RowNotFound)?;
            if handoff.state != State::Accepting || tokio::time::Instant::now() >= deadline {
                return Ok(handoff);
            }
            tokio::select! {
                _ = committed => {}
                _ = tokio::time::sleep(pause) => pause = (pause * 2).min(Duration::from_millis(100)),
            }
        }
    }

    /// RejectHandoff: the destination refuses with a coded reason; the origin keeps the case.
    async fn reject(&self, caller: &Caller, request: RejectHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::AcceptHandoffs)?;
        let mut violations = Violations::default();
        let id =
            violations.check("handoff_id", Uuid::parse_str(request.handoff_id.trim()).map_err(|_| Common::NotAUuid));
        let reason =
            violations.check("reason", reject_reason_from_proto(request.reason).ok_or(Msg::RejectReasonRequired));
        let note = request.note.trim().to_owned();
        if note.chars().count() > TEXT_MAX_CHARS {
            violations.add("note", Common::TooLong { max: Count(TEXT_MAX_CHARS as u64) });
        } else if reason == Some(RejectReason::Other) && note.is_empty() {
            violations.add("note", Msg::NoteRequiredForOther);
        }
        violations.finish()?;
        let (id, reason) = (nol_runtime::error::checked(id)?, nol_runtime::error::checked(reason)?);
        let mut tx = self.pool.begin().await?;
        let handoff = self.incoming_for_update(&mut tx, caller, id).await?;
        handoff.check_reject()?;
        let rejection = Rejection { reason, note, by: caller.subject.clone(), at: None, linked_case_id: None };
        let updated = self.steps.reject(&mut tx, &handoff, &rejection).await?;
        audit::record(&mut tx, caller, "handoff.reject", "handoff", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(handoff_to_proto(&updated))
    }

    /// CancelHandoff: the origin withdraws; the destination confirms unless it accepted first.
    async fn cancel(&self, caller: &Caller, request: CancelHandoffRequest) -> Result<Handoff, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::HandCasesOver)?;
        let mut violations = Violations::default();
        let id =
            violations.check("handoff_id", Uuid::parse_str(request.handoff_id.trim()).map_err(|_| Common::NotAUuid));
        let reason = required_text(&mut violations, "reason", &request.reason, Msg::CancelReasonRequired);
        violations.finish()?;
        let id = nol_runtime::error::checked(id)?;
        let mut tx = self.pool.begin().await?;
        let handoff = store::get_for_update(&mut tx, id, Direction::Outgoing)
            .await?
            .ok_or_else(|| ServiceError::not_found(Msg::NoHandoff { id: id.to_string() }))?;
        caller.require_scope(&handoff.origin)?;
        handoff.check_cancel()?;
        let updated = self.steps.cancel(&mut tx, &handoff, &reason, &caller.subject).await?;
        audit::record(&mut tx, caller, "handoff.cancel", "handoff", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(handoff_to_proto(&updated))
    }

    /// The side of a hand-off the caller may see (of the two a hand-off inside the province has).
    async fn visible(
        &self,
        caller: &Caller,
        id: Uuid,
        direction: Option<Direction>,
    ) -> Result<domain::Handoff, ServiceError> {
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
                Ok(()) => return Ok(row),
                Err(error) => denied = Some(error),
            }
        }
        Err(denied.map(ServiceError::from).unwrap_or_else(no_handoff))
    }

    async fn get(&self, caller: &Caller, request: GetHandoffRequest) -> Result<Handoff, ServiceError> {
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let handoff = self.visible(caller, id, direction).await?;
        audit::record_read(&self.pool, caller, "handoff.read", "handoff", &[id.to_string()]).await?;
        self.with_coworker(handoff_to_proto(&handoff)).await
    }

    /// R11: an accepted incoming hand-off whose dossier names the county the child moved to
    /// prompts the new owner to invite it as co-worker, until a request for help has gone to it.
    async fn with_coworker(&self, mut handoff: Handoff) -> Result<Handoff, ServiceError> {
        let new_inflow = handoff.dossier.as_ref().map(|dossier| dossier.new_inflow_region_code.as_str()).unwrap_or("");
        let accepted = [HandoffState::Accepted as i32, HandoffState::Completed as i32].contains(&handoff.state);
        let case_id = Uuid::parse_str(&handoff.destination_case_id).ok();
        if let (false, true, Some(case_id)) = (new_inflow.is_empty(), accepted, case_id) {
            let asked = crate::assistance::latest_request_to(&self.pool, case_id, new_inflow).await?;
            handoff.coworker_assistance_id = asked.map(|id| id.to_string()).unwrap_or_default();
            handoff.invite_coworker = asked.is_none();
        }
        Ok(handoff)
    }

    /// GetHandoffNotice: the written notice, to the origin's or the destination's side only.
    async fn notice(
        &self,
        caller: &Caller,
        request: GetHandoffNoticeRequest,
    ) -> Result<(store::Notice, String), ServiceError> {
        let id = parse_uuid("handoff_id", &request.handoff_id)?;
        let handoff = self.visible(caller, id, None).await?;
        let notice = store::notice(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Msg::NoNotice { id: handoff.id.to_string() }))?;
        audit::record_read(&self.pool, caller, "handoff.read_notice", "handoff", &[id.to_string()]).await?;
        Ok((notice, format!("移交通知-{id}.pdf")))
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
        audit::record_read(&self.pool, caller, "handoff.list", "handoff", &ids).await?;
        let mut handoffs = Vec::with_capacity(rows.len());
        for row in &rows {
            handoffs.push(self.with_coworker(handoff_to_proto(row)).await?);
        }
        Ok(ListHandoffsResponse { handoffs, next_page_token })
    }

    /// RequestTransferIn: a county that found a child asks the owner for the case.
    async fn request_transfer_in(
        &self,
        caller: &Caller,
        request: RequestTransferInRequest,
    ) -> Result<TransferIn, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::HandCasesOver)?;
        let mut violations = Violations::default();
        let resident_id =
            violations.check("resident_id", ResidentId::parse_on(&request.resident_id, self.clock.today()));
        let owner = violations.check("owner_region_code", RegionCode::parse_county(&request.owner_region_code));
        let asking_code =
            if request.region_code.trim().is_empty() { caller.region.to_string() } else { request.region_code.clone() };
        let asking = violations.check("region_code", RegionCode::parse_county(&asking_code));
        let reason = required_text(&mut violations, "reason", &request.reason, Msg::ReasonRequired);
        if let (Some(owner), Some(asking)) = (owner, asking)
            && owner == asking
        {
            violations.add("owner_region_code", Msg::OwnerNotElsewhere);
        }
        violations.finish()?;
        let (resident_id, owner, asking) = (
            nol_runtime::error::checked(resident_id)?,
            nol_runtime::error::checked(owner)?,
            nol_runtime::error::checked(asking)?,
        );
        caller.require_scope(&asking)?;
        let seal_key = self.steps.seal_key(&owner).ok_or(Refusal::NoLink { province: owner.province() })?;
        let sealed = seal_key.seal_from(resident_id.expose().as_bytes(), asking.province().as_str());
        let new = NewTransferIn {
            id: Uuid::now_v7(),
            direction: Direction::Outgoing,
            asking_region: &asking,
            owner_region: &owner,
            reason: &reason,
            requested_by: &caller.subject,
            resident_id_sealed: Some(&sealed),
        };
        let mut tx = self.pool.begin().await?;
        let request = transfer_in::request(&self.steps, &mut tx, &new, &sealed).await?;
        audit::record(&mut tx, caller, "transfer_in.request", "transfer_in", &[request.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(transfer_in_to_proto(&request))
    }

    async fn list_transfer_ins(
        &self,
        caller: &Caller,
        request: ListTransferInsRequest,
    ) -> Result<ListTransferInsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let direction = HandoffDirection::try_from(request.direction)
            .map(direction_from_proto)
            .map_err(|_| ServiceError::invalid("direction", Msg::NotADirection))?;
        let state = nol_proto::v1::TransferInState::try_from(request.state)
            .map(transfer_in_state_from_proto)
            .map_err(|_| ServiceError::invalid("state", Msg::NotAState))?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows =
            store::list_transfer_ins(&self.pool, region.subtree_prefix(), direction, state, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.requested_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        audit::record_read(&self.pool, caller, "transfer_in.list", "transfer_in", &ids).await?;
        Ok(ListTransferInsResponse { transfer_ins: rows.iter().map(transfer_in_to_proto).collect(), next_page_token })
    }

    /// An incoming transfer-in request the caller (its owner's case worker) decides, with its case.
    async fn deciding(&self, caller: &Caller, request_id: &str) -> Result<(domain::TransferIn, Uuid), ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::HandCasesOver)?;
        let id = parse_uuid("request_id", request_id)?;
        let mut conn = self.pool.acquire().await?;
        let request = store::get_transfer_in(&mut conn, id, Direction::Incoming, false)
            .await?
            .ok_or_else(|| ServiceError::not_found(Msg::NoTransferIn { id: id.to_string() }))?;
        caller.require_scope(&request.owner_region)?;
        let case_id = match request.state {
            TransferInState::Requested => return Err(ServiceError::precondition(Msg::TransferInNotMatched)),
            TransferInState::Approved | TransferInState::Declined => {
                return Err(ServiceError::precondition(Msg::TransferInDecided));
            }
            TransferInState::Pending => request.check_decide()?,
        };
        Ok((request, case_id))
    }

    /// ApproveTransferIn: a hand-off of the matched case to the asking region starts.
    async fn approve_transfer_in(
        &self,
        caller: &Caller,
        request: ApproveTransferInRequest,
    ) -> Result<(TransferIn, Handoff), ServiceError> {
        let (transfer, case_id) = self.deciding(caller, &request.request_id).await?;
        let reason =
            if request.reason.trim().is_empty() { transfer.reason.clone() } else { request.reason.trim().to_owned() };
        if reason.chars().count() > TEXT_MAX_CHARS {
            return Err(ServiceError::invalid("reason", Common::TooLong { max: Count(TEXT_MAX_CHARS as u64) }));
        }
        let handoff = self.start_handoff(caller, case_id, transfer.asking_region, reason, None).await?;
        let handoff_id = Uuid::parse_str(&handoff.handoff_id).ok();
        let mut tx = self.pool.begin().await?;
        let decided = store::set_transfer_in_decision(
            &mut tx,
            transfer.id,
            Direction::Incoming,
            TransferInState::Approved,
            handoff_id,
            None,
            &caller.subject,
        )
        .await?
        .ok_or_else(|| ServiceError::precondition(Msg::TransferInDecided))?;
        transfer_in::answer(&self.steps, &mut tx, &decided).await?;
        audit::record(&mut tx, caller, "transfer_in.approve", "transfer_in", &[transfer.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok((transfer_in_to_proto(&decided), handoff))
    }

    async fn decline_transfer_in(
        &self,
        caller: &Caller,
        request: DeclineTransferInRequest,
    ) -> Result<TransferIn, ServiceError> {
        let mut violations = Violations::default();
        let reason = required_text(&mut violations, "reason", &request.reason, Msg::DeclineReasonRequired);
        violations.finish()?;
        let (transfer, _) = self.deciding(caller, &request.request_id).await?;
        let mut tx = self.pool.begin().await?;
        let decided = store::set_transfer_in_decision(
            &mut tx,
            transfer.id,
            Direction::Incoming,
            TransferInState::Declined,
            None,
            Some(&reason),
            &caller.subject,
        )
        .await?
        .ok_or_else(|| ServiceError::precondition(Msg::TransferInDecided))?;
        transfer_in::answer(&self.steps, &mut tx, &decided).await?;
        audit::record(&mut tx, caller, "transfer_in.decline", "transfer_in", &[transfer.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(transfer_in_to_proto(&decided))
    }
}

type ByteStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

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

    async fn reject_handoff(
        &self,
        request: Request<RejectHandoffRequest>,
    ) -> Result<Response<RejectHandoffResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let handoff = self.reject(&caller, request.into_inner()).await?;
        Ok(Response::new(RejectHandoffResponse { handoff: Some(handoff) }))
    }

    async fn cancel_handoff(
        &self,
        request: Request<CancelHandoffRequest>,
    ) -> Result<Response<CancelHandoffResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let handoff = self.cancel(&caller, request.into_inner()).await?;
        Ok(Response::new(CancelHandoffResponse { handoff: Some(handoff) }))
    }

    type GetHandoffNoticeStream = ByteStream<GetHandoffNoticeResponse>;

    async fn get_handoff_notice(
        &self,
        request: Request<GetHandoffNoticeRequest>,
    ) -> Result<Response<Self::GetHandoffNoticeStream>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let (notice, file_name) = self.notice(&caller, request.into_inner()).await?;
        let sha256 = crate::notice::hex(&notice.sha256);
        let number = notice.number.clone();
        let chunks: Vec<Result<GetHandoffNoticeResponse, Status>> = notice
            .pdf
            .chunks(1 << 20)
            .enumerate()
            .map(|(index, chunk)| {
                let first = index == 0;
                Ok(GetHandoffNoticeResponse {
                    data: chunk.to_vec(),
                    file_name: if first { file_name.clone() } else { String::new() },
                    notice_number: if first { number.clone() } else { String::new() },
                    sha256: if first { sha256.clone() } else { String::new() },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn request_transfer_in(
        &self,
        request: Request<RequestTransferInRequest>,
    ) -> Result<Response<RequestTransferInResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let transfer_in = self.request_transfer_in(&caller, request.into_inner()).await?;
        Ok(Response::new(RequestTransferInResponse { transfer_in: Some(transfer_in) }))
    }

    async fn list_transfer_ins(
        &self,
        request: Request<ListTransferInsRequest>,
    ) -> Result<Response<ListTransferInsResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(Transfer::list_transfer_ins(self, &caller, request.into_inner()).await?))
    }

    async fn approve_transfer_in(
        &self,
        request: Request<ApproveTransferInRequest>,
    ) -> Result<Response<ApproveTransferInResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let (transfer_in, handoff) = Transfer::approve_transfer_in(self, &caller, request.into_inner()).await?;
        Ok(Response::new(ApproveTransferInResponse { transfer_in: Some(transfer_in), handoff: Some(handoff) }))
    }

    async fn decline_transfer_in(
        &self,
        request: Request<DeclineTransferInRequest>,
    ) -> Result<Response<DeclineTransferInResponse>, Status> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let transfer_in = Transfer::decline_transfer_in(self, &caller, request.into_inner()).await?;
        Ok(Response::new(DeclineTransferInResponse { transfer_in: Some(transfer_in) }))
    }
}
