//! The hand-off rules (R11), without I/O.

use nol_proto::v1::{CaseStatus, HandoffDirection, HandoffState};
use nol_region::RegionCode;

/// Which way a hand-off goes, seen from this province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "outgoing" => Some(Direction::Outgoing),
            "incoming" => Some(Direction::Incoming),
            _ => None,
        }
    }

    pub fn to_proto(self) -> HandoffDirection {
        match self {
            Direction::Outgoing => HandoffDirection::Outgoing,
            Direction::Incoming => HandoffDirection::Incoming,
        }
    }

    pub fn from_proto(direction: HandoffDirection) -> Option<Direction> {
        match direction {
            HandoffDirection::Unspecified => None,
            HandoffDirection::Outgoing => Some(Direction::Outgoing),
            HandoffDirection::Incoming => Some(Direction::Incoming),
        }
    }
}

/// Where a hand-off is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Outgoing: sent, no receipt yet.
    Requested,
    /// The destination has recorded it (its receipt is in, on the outgoing side).
    Delivered,
    /// The destination accepted and owns the case.
    Accepted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Delivered => "delivered",
            State::Accepted => "accepted",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        match text {
            "requested" => Some(State::Requested),
            "delivered" => Some(State::Delivered),
            "accepted" => Some(State::Accepted),
            _ => None,
        }
    }

    pub fn to_proto(self) -> HandoffState {
        match self {
            State::Requested => HandoffState::Requested,
            State::Delivered => HandoffState::Delivered,
            State::Accepted => HandoffState::Accepted,
        }
    }

    pub fn from_proto(state: HandoffState) -> Option<State> {
        match state {
            HandoffState::Unspecified => None,
            HandoffState::Requested => Some(State::Requested),
            HandoffState::Delivered => Some(State::Delivered),
            HandoffState::Accepted => Some(State::Accepted),
        }
    }

    /// A step only moves forward: a late receipt after the accept changes nothing.
    pub fn advance_to(self, next: State) -> Option<State> {
        (next > self).then_some(next)
    }
}

/// Why a hand-off cannot be requested or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("R11: the case is already owned by {} ({region}); hand it to another region", .region.full_name())]
    SameRegion { region: RegionCode },
    #[error("R11: the case is {status}; only an open case can be handed over")]
    CaseNotOpen { status: &'static str },
    #[error("R11: a hand-off of this case is already under way")]
    AlreadyUnderWay,
    #[error("R11: no hand-off link to {} ({province}) is configured", .province.name())]
    NoLink { province: RegionCode },
    #[error("R11: this hand-off was already accepted")]
    AlreadyAccepted,
    #[error("R11: only an incoming hand-off can be accepted here")]
    NotIncoming,
}

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
        CaseStatus::HandedOver => Err(Refusal::CaseNotOpen { status: "handed over" }),
        CaseStatus::Returned => Err(Refusal::CaseNotOpen { status: "returned to school" }),
        CaseStatus::Monitoring => Err(Refusal::CaseNotOpen { status: "in monitoring" }),
        CaseStatus::HomeTeaching => Err(Refusal::CaseNotOpen { status: "in home teaching" }),
        CaseStatus::Deferred => Err(Refusal::CaseNotOpen { status: "deferred" }),
        CaseStatus::Suspended => Err(Refusal::CaseNotOpen { status: "suspended" }),
        CaseStatus::Exempt => Err(Refusal::CaseNotOpen { status: "exempt" }),
        CaseStatus::Closed => Err(Refusal::CaseNotOpen { status: "closed" }),
        CaseStatus::Unspecified => Err(Refusal::CaseNotOpen { status: "in an unknown state" }),
    }
}

/// Checks that a hand-off seen from here may be accepted now.
pub fn check_accept(direction: Direction, state: State) -> Result<(), Refusal> {
    match (direction, state) {
        (Direction::Outgoing, _) => Err(Refusal::NotIncoming),
        (Direction::Incoming, State::Accepted) => Err(Refusal::AlreadyAccepted),
        (Direction::Incoming, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> RegionCode {
        RegionCode::parse(text).unwrap()
    }

    #[test]
    fn a_case_goes_to_another_region_only_when_open() {
        assert_eq!(check_request(&code("320102"), CaseStatus::Open, &code("341221")), Ok(()));
        assert!(matches!(
            check_request(&code("320102"), CaseStatus::Open, &code("320102")),
            Err(Refusal::SameRegion { .. })
        ));
        assert_eq!(
            check_request(&code("320102"), CaseStatus::HandoffPending, &code("341221")),
            Err(Refusal::AlreadyUnderWay)
        );
        assert!(matches!(
            check_request(&code("320102"), CaseStatus::HandedOver, &code("341221")),
            Err(Refusal::CaseNotOpen { .. })
        ));
    }

    #[test]
    fn accept_once_and_only_incoming() {
        assert_eq!(check_accept(Direction::Incoming, State::Delivered), Ok(()));
        assert_eq!(check_accept(Direction::Incoming, State::Accepted), Err(Refusal::AlreadyAccepted));
        assert_eq!(check_accept(Direction::Outgoing, State::Delivered), Err(Refusal::NotIncoming));
    }

    #[test]
    fn steps_only_move_forward() {
        assert_eq!(State::Requested.advance_to(State::Delivered), Some(State::Delivered));
        assert_eq!(State::Requested.advance_to(State::Accepted), Some(State::Accepted));
        assert_eq!(State::Accepted.advance_to(State::Delivered), None);
        assert_eq!(State::Delivered.advance_to(State::Delivered), None);
    }
}
