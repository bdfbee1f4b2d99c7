//! Regions working one case together (协查协办, R8, R11): the owner of a case asks another county
//! for help, the helper receives (its receipt goes back), accepts or declines, reports what it did,
//! and the owner closes. Each side keeps its own row (`assistance`, direction outgoing at the
//! owner, incoming at the helper) and learns the other's steps from cross-region messages; the
//! owner's side also tells its own case service every step (the case's history, and the reported
//! attempts counted as the case's). The child travels as a masked summary sealed to the helper's
//! province.
//!
//! ```text
//! owner   RequestAssistance ─► outgoing requested ──xp assistance_requested──► incoming delivered
//!         delivered ◄──────────────────────────────── xp assistance_answered (receipt)
//!         accepted / declined ◄───────────────────── xp assistance_answered ◄── Accept / Decline
//!         report kept, case file ◄────────────────── xp assistance_reported ◄── ReportAssistance
//!         CloseAssistance ─► closed ─────────────────xp assistance_closed ──► closed
//! ```

pub mod grpc;
pub mod notice;
mod store;

use chrono::{DateTime, NaiveDate, Utc};
use nol_events::{
    ASSISTANCE_ANSWERED, ASSISTANCE_ASKED, ASSISTANCE_CLOSED, ASSISTANCE_OFFERED, ASSISTANCE_REPORTED, EventHeader,
    EventType,
};
use nol_messages::{AssistanceStanding, Transfer as Msg};
use nol_proto::v1::{
    AssistanceAnswered, AssistanceAsked, AssistanceClosed, AssistanceNeed, AssistanceReason, AssistanceReport,
    AssistanceReported, AssistanceRequested, AssistanceState, ChildSummary, HandoffDirection,
};
use nol_region::RegionCode;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Direction;
use crate::handoffs::{StepError, Steps};
pub use store::{NewAssistance, due_for_resend, get, latest_request_to};

/// How long the helper has by default.
pub const DEFAULT_DUE_DAYS: i64 = 14;
/// The furthest due date a request may set.
pub const MAX_DUE_DAYS: i64 = 180;

/// Where a request for help is, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Requested,
    Delivered,
    Accepted,
    Declined,
    Closed,
}

impl State {
    pub fn as_stored(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Delivered => "delivered",
            State::Accepted => "accepted",
            State::Declined => "declined",
            State::Closed => "closed",
        }
    }

    pub fn from_stored(text: &str) -> Option<State> {
        [State::Requested, State::Delivered, State::Accepted, State::Declined, State::Closed]
            .into_iter()
            .find(|state| state.as_stored() == text)
    }

    pub fn to_proto(self) -> AssistanceState {
        match self {
            State::Requested => AssistanceState::Requested,
            State::Delivered => AssistanceState::Delivered,
            State::Accepted => AssistanceState::Accepted,
            State::Declined => AssistanceState::Declined,
            State::Closed => AssistanceState::Closed,
        }
    }

    pub fn from_proto(state: AssistanceState) -> Option<State> {
        match state {
            AssistanceState::Unspecified => None,
            AssistanceState::Requested => Some(State::Requested),
            AssistanceState::Delivered => Some(State::Delivered),
            AssistanceState::Accepted => Some(State::Accepted),
            AssistanceState::Declined => Some(State::Declined),
            AssistanceState::Closed => Some(State::Closed),
        }
    }

    /// Still waiting for the helper or its work.
    pub fn is_open(self) -> bool {
        matches!(self, State::Requested | State::Delivered | State::Accepted)
    }

    fn standing(self) -> AssistanceStanding {
        match self {
            State::Requested => AssistanceStanding::Requested,
            State::Delivered => AssistanceStanding::Delivered,
            State::Accepted => AssistanceStanding::Accepted,
            State::Declined => AssistanceStanding::Declined,
            State::Closed => AssistanceStanding::Closed,
        }
    }

    /// The helper takes the request on or declines it: only before either.
    pub fn check_decide(self) -> Result<(), Msg> {
        match self {
            State::Requested | State::Delivered => Ok(()),
            other => Err(Msg::AssistanceAlready { state: other.standing() }),
        }
    }

    /// The helper reports: only on an accepted request.
    pub fn check_report(self) -> Result<(), Msg> {
        match self {
            State::Accepted => Ok(()),
            other => Err(Msg::AssistanceNotAccepted { state: other.standing() }),
        }
    }

    /// The owner closes: anything not closed yet.
    pub fn check_close(self) -> Result<(), Msg> {
        match self {
            State::Closed => Err(Msg::AssistanceAlready { state: State::Closed.standing() }),
            _ => Ok(()),
        }
    }

    /// The owner learns the helper's answer: a receipt moves only a request not yet received; an
    /// accept or decline moves anything the owner has not closed (the helper decides once).
    pub fn answered(self, answer: State) -> Option<State> {
        match (self, answer) {
            (State::Requested, State::Delivered) => Some(State::Delivered),
            (State::Requested | State::Delivered, State::Accepted | State::Declined) => Some(answer),
            _ => None,
        }
    }
}

/// Stored names of the contract's reasons and needs (explicit, never derived from the contract).
pub fn reason_as_stored(reason: AssistanceReason) -> Option<&'static str> {
    Some(match reason {
        AssistanceReason::Unspecified => return None,
        AssistanceReason::WorkPlace => "work_place",
        AssistanceReason::InflowRegion => "inflow_region",
        AssistanceReason::Sighting => "sighting",
        AssistanceReason::Other => "other",
        AssistanceReason::HukouRegion => "hukou_region",
    })
}

pub fn reason_from_stored(text: &str) -> Option<AssistanceReason> {
    [
        AssistanceReason::WorkPlace,
        AssistanceReason::InflowRegion,
        AssistanceReason::Sighting,
        AssistanceReason::Other,
        AssistanceReason::HukouRegion,
    ]
    .into_iter()
    .find(|reason| reason_as_stored(*reason) == Some(text))
}

pub fn need_as_stored(need: AssistanceNeed) -> Option<&'static str> {
    Some(match need {
        AssistanceNeed::Unspecified => return None,
        AssistanceNeed::FindChild => "find_child",
        AssistanceNeed::VisitFamily => "visit_family",
        AssistanceNeed::PersuadeEmployer => "persuade_employer",
        AssistanceNeed::CheckSchoolRoll => "check_school_roll",
    })
}

pub fn need_from_stored(text: &str) -> Option<AssistanceNeed> {
    [
        AssistanceNeed::FindChild,
        AssistanceNeed::VisitFamily,
        AssistanceNeed::PersuadeEmployer,
        AssistanceNeed::CheckSchoolRoll,
    ]
    .into_iter()
    .find(|need| need_as_stored(*need) == Some(text))
}

/// One side's request for help.
#[derive(Debug, Clone)]
pub struct Assistance {
    pub id: Uuid,
    pub direction: Direction,
    pub state: State,
    pub case_id: Uuid,
    pub owner_region: RegionCode,
    pub assisting_region: RegionCode,
    pub reason: AssistanceReason,
    pub needs: Vec<AssistanceNeed>,
    pub due_on: NaiveDate,
    pub note: String,
    pub attempt_id: Option<Uuid>,
    pub child: ChildSummary,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decline_reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub close_note: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Assistance {
    /// Open past its due date, on the rule clock's `today`.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.state.is_open() && self.due_on < today
    }

    /// The region on this side: the owner for an outgoing request, the helper for an incoming one.
    pub fn own_region(&self) -> &RegionCode {
        match self.direction {
            Direction::Outgoing => &self.owner_region,
            Direction::Incoming => &self.assisting_region,
        }
    }
}

fn header<'a>(event_type: EventType, source: RegionCode, id: &'a str, actor: &'a str) -> EventHeader<'a> {
    EventHeader {
        event_type,
        source_region: source,
        aggregate_type: "assistance",
        aggregate_id: id,
        aggregate_sequence: 1,
        actor,
    }
}

fn permanent(id: &str, what: impl std::fmt::Display) -> StepError {
    StepError::Permanent(format!("assistance {id}: {what}"))
}

impl Steps {
    /// The owner records its request and sends it: across to the helper (the child sealed to the
    /// helper's province) and to its own case service (the case's history). `None` when a request
    /// of the case to that county is still open. A helper's province without a link is refused by
    /// the caller before; here it is recorded as declined by the system (the R8 path).
    pub async fn ask_help(
        &self,
        conn: &mut PgConnection,
        new: &NewAssistance<'_>,
    ) -> Result<Option<Assistance>, StepError> {
        let Some(seal) = self.seal_key(new.assisting_region) else {
            let reason = Msg::NoLinkForAssistance {
                name: new.assisting_region.province().full_name(),
                code: new.assisting_region.province().to_string(),
            }
            .zh();
            let declined = store::insert(conn, new, Direction::Outgoing, Some(&reason)).await?;
            return Ok(declined);
        };
        let Some(request) = store::insert(conn, new, Direction::Outgoing, None).await? else {
            return Ok(None);
        };
        self.send_help_request(conn, &request, &seal.seal_from(&request.child.encode_to_vec(), self.province.as_str()))
            .await?;
        let id = request.id.to_string();
        let mut told = asked_message(&request);
        told.sealed_child.clear();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(ASSISTANCE_ASKED, &request.owner_region),
            header(ASSISTANCE_ASKED, request.owner_region, &id, &request.requested_by),
            &told,
        )
        .await?;
        tracing::info!(assistance_id = %request.id, owner = %request.owner_region, helper = %request.assisting_region, "help asked");
        Ok(Some(request))
    }

    /// Sends (or re-sends) the request across to the helper.
    pub async fn send_help_request(
        &self,
        conn: &mut PgConnection,
        request: &Assistance,
        sealed_child: &[u8],
    ) -> sqlx::Result<()> {
        let mut message = asked_message(request);
        message.sealed_child = sealed_child.to_vec();
        let id = request.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(ASSISTANCE_ASKED, &request.owner_region, &request.assisting_region),
            header(ASSISTANCE_ASKED, request.owner_region, &id, &request.requested_by),
            &message,
        )
        .await?;
        store::touch(conn, request.id).await
    }

    /// Re-sends an unanswered request (the sweeper).
    pub async fn resend_help_request(&self, conn: &mut PgConnection, request: &Assistance) -> sqlx::Result<()> {
        match self.seal_key(&request.assisting_region) {
            Some(seal) => {
                let sealed = seal.seal_from(&request.child.encode_to_vec(), self.province.as_str());
                self.send_help_request(conn, request, &sealed).await
            }
            None => store::touch(conn, request.id).await,
        }
    }

    /// The helper receives a request: records it once (delivered) and answers with its receipt;
    /// a request seen before is answered again with where it stands.
    pub async fn receive_help_request(
        &self,
        conn: &mut PgConnection,
        asked: &AssistanceAsked,
    ) -> Result<(), StepError> {
        let id = Uuid::parse_str(&asked.assistance_id).map_err(|_| permanent(&asked.assistance_id, "id"))?;
        let region = |text: &str, what: &str| {
            RegionCode::parse(text).map_err(|_| permanent(&asked.assistance_id, format!("{what} {text:?}")))
        };
        let owner = region(&asked.owner_region_code, "owner region")?;
        let helper = region(&asked.assisting_region_code, "assisting region")?;
        if helper.province() != self.province {
            return Err(permanent(&asked.assistance_id, "addressed outside this province"));
        }
        if let Some(existing) = store::get(&mut *conn, id, Direction::Incoming).await? {
            return Ok(self.answer_help(conn, &existing).await?);
        }
        let opened = self
            .seal
            .open_from(&asked.sealed_child, owner.province().as_str())
            .map_err(|error| permanent(&asked.assistance_id, error))?;
        let child = ChildSummary::decode(opened.as_slice()).map_err(|error| permanent(&asked.assistance_id, error))?;
        let reason = AssistanceReason::try_from(asked.reason)
            .ok()
            .filter(|reason| *reason != AssistanceReason::Unspecified)
            .ok_or_else(|| permanent(&asked.assistance_id, "reason"))?;
        let needs: Vec<AssistanceNeed> = asked
            .needs
            .iter()
            .filter_map(|need| AssistanceNeed::try_from(*need).ok())
            .filter(|need| *need != AssistanceNeed::Unspecified)
            .collect();
        if needs.is_empty() {
            return Err(permanent(&asked.assistance_id, "no need"));
        }
        let due_on = NaiveDate::parse_from_str(&asked.due_date, "%Y-%m-%d")
            .map_err(|_| permanent(&asked.assistance_id, "due date"))?;
        let case_id = Uuid::parse_str(&asked.case_id).map_err(|_| permanent(&asked.assistance_id, "case id"))?;
        let new = NewAssistance {
            id,
            case_id,
            owner_region: &owner,
            assisting_region: &helper,
            reason,
            needs: &needs,
            due_on,
            note: &asked.note,
            attempt_id: Uuid::parse_str(&asked.attempt_id).ok(),
            child: &child,
            requested_by: &asked.requested_by,
        };
        // Only the id can conflict, and it was looked up above under the inbox's guard.
        let received = store::insert(conn, &new, Direction::Incoming, None)
            .await?
            .ok_or_else(|| permanent(&asked.assistance_id, "recorded twice at once"))?;
        self.answer_help(conn, &received).await?;
        // The helper's own case service watches its due date (R12).
        let told = AssistanceAsked {
            sealed_child: Vec::new(),
            side: HandoffDirection::Incoming as i32,
            child: Some(received.child.clone()),
            ..asked.clone()
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(ASSISTANCE_ASKED, &helper),
            header(ASSISTANCE_ASKED, helper, &asked.assistance_id, &asked.requested_by),
            &told,
        )
        .await?;
        tracing::info!(assistance_id = %id, owner = %owner, helper = %helper, "request for help received");
        Ok(())
    }

    /// Tells the owner where the helper's side stands (receipt, accept or decline).
    pub async fn answer_help(&self, conn: &mut PgConnection, request: &Assistance) -> sqlx::Result<()> {
        let state = match request.state {
            State::Accepted | State::Declined => request.state,
            State::Requested | State::Delivered => State::Delivered,
            State::Closed => return Ok(()),
        };
        let message = AssistanceAnswered {
            assistance_id: request.id.to_string(),
            case_id: request.case_id.to_string(),
            owner_region_code: request.owner_region.to_string(),
            assisting_region_code: request.assisting_region.to_string(),
            state: state.to_proto() as i32,
            decline_reason: request.decline_reason.clone().unwrap_or_default(),
            decided_by: request.decided_by.clone().unwrap_or_else(|| "system".to_owned()),
            side: HandoffDirection::Outgoing as i32,
        };
        let id = request.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(ASSISTANCE_ANSWERED, &request.assisting_region, &request.owner_region),
            header(ASSISTANCE_ANSWERED, request.assisting_region, &id, &message.decided_by),
            &message,
        )
        .await?;
        Ok(())
    }

    /// The owner learns the helper's answer; an accept or decline is told to its case service.
    pub async fn record_help_answer(
        &self,
        conn: &mut PgConnection,
        answered: &AssistanceAnswered,
    ) -> Result<(), StepError> {
        let id = Uuid::parse_str(&answered.assistance_id).map_err(|_| permanent(&answered.assistance_id, "id"))?;
        let answer = AssistanceState::try_from(answered.state)
            .ok()
            .and_then(State::from_proto)
            .filter(|state| matches!(state, State::Delivered | State::Accepted | State::Declined))
            .ok_or_else(|| permanent(&answered.assistance_id, "not an answer"))?;
        let Some(request) = store::get_for_update(&mut *conn, id, Direction::Outgoing).await? else {
            return Err(permanent(&answered.assistance_id, "no such request here"));
        };
        let Some(next) = request.state.answered(answer) else {
            return Ok(());
        };
        let reason = Some(answered.decline_reason.as_str()).filter(|reason| !reason.is_empty());
        store::decide(conn, id, Direction::Outgoing, next, reason, &answered.decided_by).await?;
        if next != State::Delivered {
            nol_backbone::outbox::emit(
                conn,
                &self.scheme.local(ASSISTANCE_ANSWERED, &request.owner_region),
                header(ASSISTANCE_ANSWERED, request.owner_region, &answered.assistance_id, &answered.decided_by),
                answered,
            )
            .await?;
        }
        Ok(())
    }

    /// The helper's case worker accepts or declines (the grpc use case checked the state).
    pub async fn decide_help(
        &self,
        conn: &mut PgConnection,
        request: &Assistance,
        decision: State,
        reason: Option<&str>,
        by: &str,
    ) -> sqlx::Result<Assistance> {
        let decided = store::decide(conn, request.id, Direction::Incoming, decision, reason, by).await?;
        self.answer_help(conn, &decided).await?;
        if decision == State::Declined {
            // The helper owes nothing more: its own case service stops watching.
            let told = AssistanceAnswered {
                assistance_id: decided.id.to_string(),
                case_id: decided.case_id.to_string(),
                owner_region_code: decided.owner_region.to_string(),
                assisting_region_code: decided.assisting_region.to_string(),
                state: State::Declined.to_proto() as i32,
                decline_reason: reason.unwrap_or_default().to_owned(),
                decided_by: by.to_owned(),
                side: HandoffDirection::Incoming as i32,
            };
            let id = decided.id.to_string();
            nol_backbone::outbox::emit(
                conn,
                &self.scheme.local(ASSISTANCE_ANSWERED, &decided.assisting_region),
                header(ASSISTANCE_ANSWERED, decided.assisting_region, &id, by),
                &told,
            )
            .await?;
        }
        Ok(decided)
    }

    /// The helper reports; the report is kept on its side and sent to the owner.
    pub async fn report_help(
        &self,
        conn: &mut PgConnection,
        request: &Assistance,
        report: &AssistanceReport,
        at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        let report_id = Uuid::parse_str(&report.report_id).map_err(|_| sqlx::Error::RowNotFound)?;
        store::insert_report(conn, report_id, request.id, Direction::Incoming, report, at).await?;
        let message = AssistanceReported {
            assistance_id: request.id.to_string(),
            case_id: request.case_id.to_string(),
            owner_region_code: request.owner_region.to_string(),
            report: Some(report.clone()),
        };
        let id = request.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(ASSISTANCE_REPORTED, &request.assisting_region, &request.owner_region),
            header(ASSISTANCE_REPORTED, request.assisting_region, &id, &report.reported_by),
            &message,
        )
        .await?;
        Ok(())
    }

    /// The owner receives a report: kept once, and told to its case service (which records the
    /// attempts in the case file).
    pub async fn record_help_report(
        &self,
        conn: &mut PgConnection,
        reported: &AssistanceReported,
    ) -> Result<(), StepError> {
        let id = Uuid::parse_str(&reported.assistance_id).map_err(|_| permanent(&reported.assistance_id, "id"))?;
        let report = reported.report.clone().ok_or_else(|| permanent(&reported.assistance_id, "no report"))?;
        let report_id =
            Uuid::parse_str(&report.report_id).map_err(|_| permanent(&reported.assistance_id, "report id"))?;
        let Some(request) = store::get(&mut *conn, id, Direction::Outgoing).await? else {
            return Err(permanent(&reported.assistance_id, "no such request here"));
        };
        if report.assisting_region_code != request.assisting_region.as_str() {
            return Err(permanent(&reported.assistance_id, "reported by a county not asked"));
        }
        let at = report
            .report_time
            .and_then(|time| DateTime::<Utc>::from_timestamp(time.seconds, time.nanos.max(0) as u32))
            .unwrap_or_else(Utc::now);
        if store::insert_report(conn, report_id, id, Direction::Outgoing, &report, at).await? {
            nol_backbone::outbox::emit(
                conn,
                &self.scheme.local(ASSISTANCE_REPORTED, &request.owner_region),
                header(ASSISTANCE_REPORTED, request.owner_region, &reported.assistance_id, &report.reported_by),
                reported,
            )
            .await?;
        }
        Ok(())
    }

    /// The owner closes its request: told to the helper and to its own case service.
    pub async fn close_help(
        &self,
        conn: &mut PgConnection,
        request: &Assistance,
        note: &str,
        by: &str,
    ) -> sqlx::Result<Assistance> {
        let closed = store::close(conn, request.id, Direction::Outgoing, note, by).await?;
        let message = AssistanceClosed {
            assistance_id: request.id.to_string(),
            case_id: request.case_id.to_string(),
            owner_region_code: request.owner_region.to_string(),
            assisting_region_code: request.assisting_region.to_string(),
            note: note.to_owned(),
            closed_by: by.to_owned(),
            side: HandoffDirection::Outgoing as i32,
        };
        let id = request.id.to_string();
        for subject in [
            self.scheme.cross(ASSISTANCE_CLOSED, &request.owner_region, &request.assisting_region),
            self.scheme.local(ASSISTANCE_CLOSED, &request.owner_region),
        ] {
            nol_backbone::outbox::emit(
                conn,
                &subject,
                header(ASSISTANCE_CLOSED, request.owner_region, &id, by),
                &message,
            )
            .await?;
        }
        Ok(closed)
    }

    /// The helper learns the owner closed the request.
    pub async fn record_help_close(&self, conn: &mut PgConnection, closed: &AssistanceClosed) -> Result<(), StepError> {
        let id = Uuid::parse_str(&closed.assistance_id).map_err(|_| permanent(&closed.assistance_id, "id"))?;
        if let Some(request) = store::get_for_update(&mut *conn, id, Direction::Incoming).await?
            && request.state != State::Closed
        {
            store::close(conn, id, Direction::Incoming, &closed.note, &closed.closed_by).await?;
            let told = AssistanceClosed { side: HandoffDirection::Incoming as i32, ..closed.clone() };
            nol_backbone::outbox::emit(
                conn,
                &self.scheme.local(ASSISTANCE_CLOSED, &request.assisting_region),
                header(ASSISTANCE_CLOSED, request.assisting_region, &closed.assistance_id, &closed.closed_by),
                &told,
            )
            .await?;
        }
        Ok(())
    }

    /// R10: the hukou region offers its help on the case a notice named. Its side starts
    /// accepted; the owner learns of it (`assistance_offered`, the child sealed to the owner's
    /// province) and records its side accepted too. `None` when a request between them on this
    /// case is still open here.
    pub async fn offer_help(
        &self,
        conn: &mut PgConnection,
        new: &NewAssistance<'_>,
    ) -> Result<Option<Assistance>, StepError> {
        if store::open_between(&mut *conn, new.case_id, new.assisting_region).await? {
            return Ok(None);
        }
        let Some(offered) = store::insert_accepted(conn, new, Direction::Incoming).await? else {
            return Ok(None);
        };
        let seal = self.seal_key(&offered.owner_region).ok_or_else(|| {
            StepError::Permanent(format!("assistance {}: no link to the owner's province", offered.id))
        })?;
        let mut message = asked_message(&offered);
        message.sealed_child = seal.seal_from(&offered.child.encode_to_vec(), self.province.as_str());
        message.offered_by = new.requested_by.to_owned();
        let id = offered.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(ASSISTANCE_OFFERED, &offered.assisting_region, &offered.owner_region),
            header(ASSISTANCE_OFFERED, offered.assisting_region, &id, new.requested_by),
            &message,
        )
        .await?;
        // The helper's own case service watches the due date.
        let told = AssistanceAsked {
            sealed_child: Vec::new(),
            side: HandoffDirection::Incoming as i32,
            child: Some(offered.child.clone()),
            ..message
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(ASSISTANCE_ASKED, &offered.assisting_region),
            header(ASSISTANCE_ASKED, offered.assisting_region, &id, new.requested_by),
            &told,
        )
        .await?;
        Ok(Some(offered))
    }

    /// The owner learns of an offer: its side recorded accepted (once), and its case service told
    /// (the request, then the acceptance, for the case's history and the due date's watch).
    pub async fn record_offer(&self, conn: &mut PgConnection, offered: &AssistanceAsked) -> Result<(), StepError> {
        let id = Uuid::parse_str(&offered.assistance_id).map_err(|_| permanent(&offered.assistance_id, "id"))?;
        let region = |text: &str, what: &str| {
            RegionCode::parse(text).map_err(|_| permanent(&offered.assistance_id, format!("{what} {text:?}")))
        };
        let owner = region(&offered.owner_region_code, "owner region")?;
        let helper = region(&offered.assisting_region_code, "assisting region")?;
        if owner.province() != self.province {
            return Err(permanent(&offered.assistance_id, "addressed outside this province"));
        }
        if store::get(&mut *conn, id, Direction::Outgoing).await?.is_some() {
            return Ok(());
        }
        let offering = RegionCode::parse(&offered.assisting_region_code)
            .map_err(|_| permanent(&offered.assistance_id, "assisting region"))?;
        let opened = self
            .seal
            .open_from(&offered.sealed_child, offering.province().as_str())
            .map_err(|error| permanent(&offered.assistance_id, error))?;
        let child =
            ChildSummary::decode(opened.as_slice()).map_err(|error| permanent(&offered.assistance_id, error))?;
        let needs: Vec<AssistanceNeed> =
            offered.needs.iter().filter_map(|need| AssistanceNeed::try_from(*need).ok()).collect();
        let due_on = NaiveDate::parse_from_str(&offered.due_date, "%Y-%m-%d")
            .map_err(|_| permanent(&offered.assistance_id, "due date"))?;
        let case_id = Uuid::parse_str(&offered.case_id).map_err(|_| permanent(&offered.assistance_id, "case id"))?;
        let new = NewAssistance {
            id,
            case_id,
            owner_region: &owner,
            assisting_region: &helper,
            reason: AssistanceReason::HukouRegion,
            needs: &needs,
            due_on,
            note: &offered.note,
            attempt_id: None,
            child: &child,
            requested_by: &offered.offered_by,
        };
        if store::insert_accepted(conn, &new, Direction::Outgoing).await?.is_none() {
            return Ok(()); // recorded before
        }
        let told =
            AssistanceAsked { sealed_child: Vec::new(), side: HandoffDirection::Outgoing as i32, ..offered.clone() };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(ASSISTANCE_ASKED, &owner),
            header(ASSISTANCE_ASKED, owner, &offered.assistance_id, &offered.offered_by),
            &told,
        )
        .await?;
        let accepted = AssistanceAnswered {
            assistance_id: offered.assistance_id.clone(),
            case_id: offered.case_id.clone(),
            owner_region_code: offered.owner_region_code.clone(),
            assisting_region_code: offered.assisting_region_code.clone(),
            state: State::Accepted.to_proto() as i32,
            decline_reason: String::new(),
            decided_by: offered.offered_by.clone(),
            side: HandoffDirection::Outgoing as i32,
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(ASSISTANCE_ANSWERED, &owner),
            header(ASSISTANCE_ANSWERED, owner, &offered.assistance_id, &offered.offered_by),
            &accepted,
        )
        .await?;
        tracing::info!(assistance_id = %id, owner = %owner, helper = %helper, "R10: the hukou region offered help");
        Ok(())
    }

    /// R8: the case service recorded an attempt at a work place in another county; this province
    /// asks that county for help (once per attempt: the request's id is the event's).
    pub async fn ask_for_work_place(
        &self,
        conn: &mut PgConnection,
        event_id: Uuid,
        requested: &AssistanceRequested,
        today: NaiveDate,
    ) -> Result<(), StepError> {
        let case_id = Uuid::parse_str(&requested.case_id).map_err(|_| permanent(&requested.case_id, "case id"))?;
        let owner = RegionCode::parse(&requested.region_code).map_err(|_| permanent(&requested.case_id, "region"))?;
        let helper = RegionCode::parse(&requested.assisting_region_code)
            .map_err(|_| permanent(&requested.case_id, "assisting region"))?;
        let child = requested.child.clone().unwrap_or_else(|| ChildSummary {
            full_name: requested.full_name.clone(),
            resident_id_masked: requested.resident_id_masked.clone(),
            ..ChildSummary::default()
        });
        let needs = [AssistanceNeed::PersuadeEmployer, AssistanceNeed::VisitFamily];
        let new = NewAssistance {
            id: event_id,
            case_id,
            owner_region: &owner,
            assisting_region: &helper,
            reason: AssistanceReason::WorkPlace,
            needs: &needs,
            due_on: today + chrono::Duration::days(DEFAULT_DUE_DAYS),
            note: &requested.request,
            attempt_id: Uuid::parse_str(&requested.attempt_id).ok(),
            child: &child,
            requested_by: "system",
        };
        if self.ask_help(conn, &new).await?.is_none() {
            tracing::info!(case_id = %case_id, helper = %helper, "R8: a request for help to this county is open already");
        }
        Ok(())
    }
}

fn asked_message(request: &Assistance) -> AssistanceAsked {
    AssistanceAsked {
        assistance_id: request.id.to_string(),
        case_id: request.case_id.to_string(),
        owner_region_code: request.owner_region.to_string(),
        assisting_region_code: request.assisting_region.to_string(),
        reason: request.reason as i32,
        needs: request.needs.iter().map(|need| *need as i32).collect(),
        due_date: request.due_on.format("%Y-%m-%d").to_string(),
        note: request.note.clone(),
        requested_by: request.requested_by.clone(),
        sealed_child: Vec::new(),
        attempt_id: request.attempt_id.map(|id| id.to_string()).unwrap_or_default(),
        side: HandoffDirection::Outgoing as i32,
        child: None,
        offered_by: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_moves_only_forward_on_answers() {
        assert_eq!(State::Requested.answered(State::Delivered), Some(State::Delivered));
        assert_eq!(State::Delivered.answered(State::Delivered), None);
        assert_eq!(State::Delivered.answered(State::Accepted), Some(State::Accepted));
        assert_eq!(State::Requested.answered(State::Declined), Some(State::Declined));
        // A receipt arriving after the accept changes nothing; a closed request stays closed.
        assert_eq!(State::Accepted.answered(State::Delivered), None);
        assert_eq!(State::Closed.answered(State::Accepted), None);
    }

    #[test]
    fn who_may_do_what() {
        assert!(State::Delivered.check_decide().is_ok());
        assert!(State::Accepted.check_decide().is_err());
        assert!(State::Accepted.check_report().is_ok());
        assert!(State::Declined.check_report().is_err());
        assert!(State::Closed.check_report().is_err());
        assert!(State::Declined.check_close().is_ok());
        assert!(State::Closed.check_close().is_err());
    }

    #[test]
    fn stored_names_are_pinned() {
        for (reason, stored) in [
            (AssistanceReason::WorkPlace, "work_place"),
            (AssistanceReason::InflowRegion, "inflow_region"),
            (AssistanceReason::Sighting, "sighting"),
            (AssistanceReason::Other, "other"),
            (AssistanceReason::HukouRegion, "hukou_region"),
        ] {
            assert_eq!(reason_as_stored(reason), Some(stored));
            assert_eq!(reason_from_stored(stored), Some(reason));
        }
        for (need, stored) in [
            (AssistanceNeed::FindChild, "find_child"),
            (AssistanceNeed::VisitFamily, "visit_family"),
            (AssistanceNeed::PersuadeEmployer, "persuade_employer"),
            (AssistanceNeed::CheckSchoolRoll, "check_school_roll"),
        ] {
            assert_eq!(need_as_stored(need), Some(stored));
            assert_eq!(need_from_stored(stored), Some(need));
        }
        for state in [State::Requested, State::Delivered, State::Accepted, State::Declined, State::Closed] {
            assert_eq!(State::from_stored(state.as_stored()), Some(state));
        }
    }
}
