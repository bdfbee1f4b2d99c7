//! The hand-off rules (R11, R12), without I/O: a hand-off is a task in the sense of HL7 FHIR
//! `Task` — requested → received → accepted | rejected | cancelled, then completed — held by both
//! sides, each reading the same state. Which step each side may take, and the refusals (their
//! words are in the catalogue, `nol-messages`).
//!
//! | here (stored)  | FHIR Task  | meaning |
//! |---|---|---|
//! | `requested`    | requested  | the origin sent it; no receipt yet |
//! | `delivered`    | received   | the destination recorded it; its decision is due (R12) |
//! | `accepting`    | received   | the destination accepted; its case service is opening the case |
//! | `accepted`     | accepted   | the destination's case is open: responsibility moved with that commit |
//! | `rejected`     | rejected   | the destination refused, with a reason; the origin keeps the case |
//! | `cancelled`    | cancelled  | the origin withdrew it before the accept |
//! | `completed`    | completed  | the origin recorded the hand-over; both sides are done |

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_messages::{CaseStanding, Transfer};
use nol_pii::Sex;
use nol_proto::v1::CaseStatus;
use nol_region::RegionCode;
use uuid::Uuid;

/// Which way a hand-off (or a transfer-in request) goes, seen from this province.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Where a hand-off is (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Requested,
    Delivered,
    Accepting,
    Accepted,
    Rejected,
    Cancelled,
    Completed,
}

impl State {
    /// Nothing happens to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, State::Rejected | State::Cancelled | State::Completed)
    }

    /// How far along the hand-off is: answers only ever move it forward.
    fn rank(self) -> u8 {
        match self {
            State::Requested => 0,
            State::Delivered => 1,
            State::Accepting => 2,
            State::Accepted => 3,
            State::Rejected | State::Cancelled | State::Completed => 4,
        }
    }

    /// The state an answer moves to, or `None` when it would move backwards or sideways from a
    /// final state (a late receipt after the accept, a duplicate acceptance): nothing to do.
    pub fn advance_to(self, next: State) -> Option<State> {
        if self.is_final() {
            return None;
        }
        (next.rank() > self.rank()).then_some(next)
    }
}

/// Why a destination refused a hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    ChildNotFound,
    HukouNotHere,
    AlreadyHasCase,
    DataWrong,
    Other,
}

/// The child a hand-off is about, as the origin's case file names it (the full record travels
/// only in the sealed dossier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedChild {
    pub full_name: String,
    pub resident_id_masked: String,
    /// `None` when not known.
    pub sex: Option<Sex>,
    pub birth_date: NaiveDate,
    /// The household-register region as the case file gives it.
    pub hukou_region: String,
}

/// A refusal by the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub note: String,
    pub by: String,
    pub at: Option<DateTime<Utc>>,
    /// ALREADY_HAS_CASE: the destination's existing case of the child.
    pub linked_case_id: Option<Uuid>,
}

/// A withdrawal by the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: String,
    pub by: String,
    /// Asked (the origin waits for the destination's answer).
    pub requested_at: Option<DateTime<Utc>>,
    /// Confirmed.
    pub at: Option<DateTime<Utc>>,
}

/// A hand-off as this province holds it: an outgoing one (ours), or an incoming one (received).
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    pub id: Uuid,
    pub direction: Direction,
    pub state: State,
    /// The case in the origin region.
    pub case_id: Uuid,
    pub origin: RegionCode,
    pub destination: RegionCode,
    pub reason: String,
    pub child: HandedChild,
    /// Incoming: the dossier sealed to this province; outgoing: sealed to the destination.
    pub sealed_dossier: Option<Vec<u8>>,
    /// The request's trace, continued by the accept.
    pub trace_context: HashMap<String, String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// Outgoing: the event the request went out as (re-sent under it until answered).
    pub request_event_id: Option<Uuid>,
    pub resend_count: i32,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalated_to: Option<RegionCode>,
    pub rejection: Option<Rejection>,
    pub cancellation: Option<Cancellation>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Accepted: the destination's new case.
    pub destination_case_id: Option<Uuid>,
    pub notice_number: Option<String>,
    pub notice_sha256: Option<Vec<u8>>,
    /// Incoming: the dossier as the destination's case worker reads it (HandoffDossierView).
    pub dossier_view: Option<Vec<u8>>,
}

/// A hand-off to record: an outgoing request here, or an incoming one received.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub id: Uuid,
    pub direction: Direction,
    pub state: State,
    pub case_id: Uuid,
    pub origin: RegionCode,
    pub destination: RegionCode,
    pub reason: String,
    pub child: HandedChild,
    pub sealed_dossier: Option<Vec<u8>>,
    pub trace_context: HashMap<String, String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub notice_number: Option<String>,
    pub notice_sha256: Option<Vec<u8>>,
    pub dossier_view: Option<Vec<u8>>,
}

/// What the destination's side answers to the origin, for its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Recorded; no decision yet.
    Receipt,
    /// Accepted: the case is the destination's.
    Acceptance,
    Rejection,
    Cancellation,
    /// Completed, or accepting (the case service is still opening the case): nothing to say yet
    /// beyond a receipt.
    Nothing,
}

impl Handoff {
    /// The region on this province's side: the origin of an outgoing hand-off, the destination
    /// of an incoming one. Scope checks are against it.
    pub fn own_region(&self) -> RegionCode {
        match self.direction {
            Direction::Outgoing => self.origin,
            Direction::Incoming => self.destination,
        }
    }

    /// A destination case worker accepts: an incoming hand-off, once, while it is undecided.
    pub fn check_accept(&self) -> Result<(), Refusal> {
        match (self.direction, self.state) {
            (Direction::Outgoing, _) => Err(Refusal::NotIncoming),
            (Direction::Incoming, State::Delivered) => Ok(()),
            (Direction::Incoming, State::Accepting | State::Accepted | State::Completed) => {
                Err(Refusal::AlreadyAccepted { by: self.accepted_by.clone(), at: self.accepted_at })
            }
            (Direction::Incoming, State::Rejected) => Err(Refusal::Decided { state: State::Rejected }),
            (Direction::Incoming, State::Cancelled) => Err(Refusal::Decided { state: State::Cancelled }),
            (Direction::Incoming, State::Requested) => Err(Refusal::NotIncoming),
        }
    }

    /// A destination case worker refuses: an incoming hand-off still undecided.
    pub fn check_reject(&self) -> Result<(), Refusal> {
        match (self.direction, self.state) {
            (Direction::Outgoing, _) => Err(Refusal::NotIncoming),
            (Direction::Incoming, State::Delivered) => Ok(()),
            (Direction::Incoming, state) => Err(Refusal::Decided { state }),
        }
    }

    /// The origin withdraws: an outgoing hand-off this side does not yet know was decided.
    pub fn check_cancel(&self) -> Result<(), Refusal> {
        match (self.direction, self.state) {
            (Direction::Incoming, _) => Err(Refusal::NotOutgoing),
            (Direction::Outgoing, State::Requested | State::Delivered) => Ok(()),
            (Direction::Outgoing, state) => Err(Refusal::Decided { state }),
        }
    }

    /// What the destination answers (to a request, a re-sent request, or a cancel request).
    pub fn answer(&self) -> Answer {
        match self.state {
            State::Requested | State::Delivered | State::Accepting => Answer::Receipt,
            State::Accepted | State::Completed => Answer::Acceptance,
            State::Rejected => Answer::Rejection,
            State::Cancelled => Answer::Cancellation,
        }
    }

    /// Where a hand-off not accepted by its deadline is escalated (R12): the origin's parent
    /// bureau (the origin itself for a province, which has none).
    pub fn escalation_target(&self) -> RegionCode {
        self.origin.parent().unwrap_or(self.origin)
    }
}

/// The destination decides on a cancel request: a hand-off not yet accepted is cancelled; one
/// accepted (or accepting: its case is being opened) wins over the cancel.
pub fn cancel_wins(state: State) -> bool {
    matches!(state, State::Requested | State::Delivered)
}

/// Why a hand-off step is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The destination owns the case already.
    SameRegion {
        region: RegionCode,
    },
    /// Only an open case can be handed over.
    CaseNotOpen {
        standing: CaseStanding,
    },
    AlreadyUnderWay,
    /// No hand-off link (the sealing key) to the destination's province.
    NoLink {
        province: RegionCode,
    },
    /// Accepted before, by whom and when the record says.
    AlreadyAccepted {
        by: Option<String>,
        at: Option<DateTime<Utc>>,
    },
    NotIncoming,
    NotOutgoing,
    /// The hand-off was already decided (rejected, cancelled, completed, accepted).
    Decided {
        state: State,
    },
}

impl From<Refusal> for Transfer {
    fn from(refusal: Refusal) -> Transfer {
        match refusal {
            Refusal::SameRegion { region } => {
                Transfer::SameRegion { name: region.full_name(), code: region.to_string() }
            }
            Refusal::CaseNotOpen { standing } => Transfer::CaseNotOpen { standing },
            Refusal::AlreadyUnderWay => Transfer::AlreadyUnderWay,
            Refusal::NoLink { province } => {
                Transfer::NoLink { name: province.name().to_owned(), code: province.to_string() }
            }
            Refusal::AlreadyAccepted { by, at } => Transfer::AlreadyAccepted {
                by: by.unwrap_or_else(|| "?".to_owned()),
                at: at.map(|time| time.to_rfc3339()).unwrap_or_default(),
            },
            Refusal::NotIncoming => Transfer::NotIncoming,
            Refusal::NotOutgoing => Transfer::NotOutgoing,
            Refusal::Decided { state } => Transfer::AlreadyDecided { state: state_word(state) },
        }
    }
}

/// The catalogue's word for where a decided hand-off is.
fn state_word(state: State) -> nol_messages::HandoffStanding {
    use nol_messages::HandoffStanding as Word;
    match state {
        State::Requested | State::Delivered => Word::Undecided,
        State::Accepting | State::Accepted => Word::Accepted,
        State::Rejected => Word::Rejected,
        State::Cancelled => Word::Cancelled,
        State::Completed => Word::Completed,
    }
}

impl std::fmt::Display for Refusal {
    /// The English text of the refusal's catalogue message.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&Transfer::from(self.clone()).en())
    }
}

impl std::error::Error for Refusal {}

/// Checks that a case in `case_status`, owned by `case_region`, may go to `destination`.
pub fn check_request(
    case_region: &RegionCode,
    case_status: CaseStatus,
    destination: &RegionCode,
) -> Result<(), Refusal> {
    if destination == case_region {
        return Err(Refusal::SameRegion { region: *case_region });
    }
    match case_status {
        CaseStatus::Open => Ok(()),
        CaseStatus::HandoffPending => Err(Refusal::AlreadyUnderWay),
        other => Err(Refusal::CaseNotOpen { standing: case_standing(other) }),
    }
}

/// Where a case stands, for a refusal that names it.
pub fn case_standing(status: CaseStatus) -> CaseStanding {
    match status {
        CaseStatus::HandedOver => CaseStanding::HandedOver,
        CaseStatus::Returned => CaseStanding::Returned,
        CaseStatus::Monitoring => CaseStanding::Monitoring,
        CaseStatus::HomeTeaching => CaseStanding::HomeTeaching,
        CaseStatus::Deferred => CaseStanding::Deferred,
        CaseStatus::Suspended => CaseStanding::Suspended,
        CaseStatus::Exempt => CaseStanding::Exempt,
        CaseStatus::Closed => CaseStanding::Closed,
        CaseStatus::Open | CaseStatus::HandoffPending | CaseStatus::Unspecified => CaseStanding::Unknown,
    }
}

/// Where a transfer-in request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferInState {
    /// Asked; no answer yet (or, at the owner, not yet matched to a case).
    Requested,
    /// The owner found the child's case; its case worker decides.
    Pending,
    Approved,
    Declined,
}

/// A transfer-in request (a region that found a child asks the owner for the case).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferIn {
    pub id: Uuid,
    pub direction: Direction,
    pub state: TransferInState,
    pub asking_region: RegionCode,
    pub owner_region: RegionCode,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub resident_id_sealed: Option<Vec<u8>>,
    pub case_id: Option<Uuid>,
    pub child: Option<HandedChild>,
    pub handoff_id: Option<Uuid>,
    pub decline_reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl TransferIn {
    /// The region on this province's side: the asker of an outgoing request, the owner of an
    /// incoming one.
    pub fn own_region(&self) -> RegionCode {
        match self.direction {
            Direction::Outgoing => self.asking_region,
            Direction::Incoming => self.owner_region,
        }
    }

    /// The owner's case worker decides a request matched to a case, once.
    pub fn check_decide(&self) -> Result<Uuid, Refusal> {
        match (self.direction, self.state, self.case_id) {
            (Direction::Outgoing, _, _) => Err(Refusal::NotIncoming),
            (Direction::Incoming, TransferInState::Pending, Some(case_id)) => Ok(case_id),
            (Direction::Incoming, TransferInState::Approved, _) => Err(Refusal::Decided { state: State::Accepted }),
            (Direction::Incoming, _, _) => Err(Refusal::Decided { state: State::Rejected }),
        }
    }
}

#[cfg(test)]
mod tests;
