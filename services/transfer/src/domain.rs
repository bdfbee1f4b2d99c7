//! The hand-off rules (R11, R12), without I/O: what a hand-off is, where it stands, when one may
//! be requested or accepted, and the refusals (their words are in the catalogue, `nol-messages`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_messages::{CaseStanding, Transfer};
use nol_pii::Sex;
use nol_proto::v1::CaseStatus;
use nol_region::RegionCode;
use uuid::Uuid;

/// Which way a hand-off goes, seen from this province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
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
    /// A step only moves forward: a late receipt after the accept changes nothing.
    pub fn advance_to(self, next: State) -> Option<State> {
        (next > self).then_some(next)
    }
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

    /// Checks that this hand-off may be accepted now: an incoming one, once.
    pub fn check_accept(&self) -> Result<(), Refusal> {
        match (self.direction, self.state) {
            (Direction::Outgoing, _) => Err(Refusal::NotIncoming),
            (Direction::Incoming, State::Accepted) => {
                Err(Refusal::AlreadyAccepted { by: self.accepted_by.clone(), at: self.accepted_at })
            }
            (Direction::Incoming, _) => Ok(()),
        }
    }

    /// Where a hand-off not accepted by its deadline is escalated (R12): the origin's parent
    /// bureau (the origin itself for a province, which has none).
    pub fn escalation_target(&self) -> RegionCode {
        self.origin.parent().unwrap_or(self.origin)
    }
}

/// Why a hand-off cannot be requested or accepted.
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
        }
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
    let standing = match case_status {
        CaseStatus::Open => return Ok(()),
        CaseStatus::HandoffPending => return Err(Refusal::AlreadyUnderWay),
        CaseStatus::HandedOver => CaseStanding::HandedOver,
        CaseStatus::Returned => CaseStanding::Returned,
        CaseStatus::Monitoring => CaseStanding::Monitoring,
        CaseStatus::HomeTeaching => CaseStanding::HomeTeaching,
        CaseStatus::Deferred => CaseStanding::Deferred,
        CaseStatus::Suspended => CaseStanding::Suspended,
        CaseStatus::Exempt => CaseStanding::Exempt,
        CaseStatus::Closed => CaseStanding::Closed,
        CaseStatus::Unspecified => CaseStanding::Unknown,
    };
    Err(Refusal::CaseNotOpen { standing })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> RegionCode {
        RegionCode::parse(text).unwrap()
    }

    fn handoff(direction: Direction, state: State) -> Handoff {
        Handoff {
            id: Uuid::nil(),
            direction,
            state,
            case_id: Uuid::nil(),
            origin: code("320102"),
            destination: code("341221"),
            reason: "家庭已返回户籍地".into(),
            child: HandedChild {
                full_name: "张三".into(),
                resident_id_masked: "341221********0012".into(),
                sex: Some(Sex::Male),
                birth_date: NaiveDate::from_ymd_opt(2014, 3, 1).unwrap(),
                hukou_region: "341221".into(),
            },
            sealed_dossier: None,
            trace_context: HashMap::new(),
            requested_by: "caseworker@320102".into(),
            requested_at: DateTime::UNIX_EPOCH,
            delivered_at: None,
            accepted_by: None,
            accepted_at: None,
            request_event_id: None,
            resend_count: 0,
            escalated_at: None,
            escalated_to: None,
        }
    }

    #[test]
    fn a_case_goes_to_another_region_only_when_open() {
        assert_eq!(check_request(&code("320102"), CaseStatus::Open, &code("341221")), Ok(()));
        let same = check_request(&code("320102"), CaseStatus::Open, &code("320102")).unwrap_err();
        assert_eq!(same, Refusal::SameRegion { region: code("320102") });
        assert!(same.to_string().contains("already owned by"), "{same}");
        assert_eq!(
            check_request(&code("320102"), CaseStatus::HandoffPending, &code("341221")),
            Err(Refusal::AlreadyUnderWay)
        );
        assert_eq!(
            check_request(&code("320102"), CaseStatus::HandedOver, &code("341221")),
            Err(Refusal::CaseNotOpen { standing: CaseStanding::HandedOver })
        );
    }

    #[test]
    fn accept_once_and_only_incoming() {
        assert_eq!(handoff(Direction::Incoming, State::Delivered).check_accept(), Ok(()));
        let mut accepted = handoff(Direction::Incoming, State::Accepted);
        accepted.accepted_by = Some("caseworker@341221".into());
        let refusal = accepted.check_accept().unwrap_err();
        assert_eq!(refusal, Refusal::AlreadyAccepted { by: Some("caseworker@341221".into()), at: None });
        assert_eq!(refusal.to_string(), "R11: this hand-off was already accepted by caseworker@341221 at ");
        assert_eq!(handoff(Direction::Outgoing, State::Delivered).check_accept(), Err(Refusal::NotIncoming));
    }

    #[test]
    fn own_region_and_escalation_follow_the_direction_and_the_tree() {
        assert_eq!(handoff(Direction::Outgoing, State::Requested).own_region(), code("320102"));
        assert_eq!(handoff(Direction::Incoming, State::Delivered).own_region(), code("341221"));
        assert_eq!(handoff(Direction::Outgoing, State::Requested).escalation_target(), code("320100"));
    }

    #[test]
    fn steps_only_move_forward() {
        assert_eq!(State::Requested.advance_to(State::Delivered), Some(State::Delivered));
        assert_eq!(State::Requested.advance_to(State::Accepted), Some(State::Accepted));
        assert_eq!(State::Accepted.advance_to(State::Delivered), None);
        assert_eq!(State::Delivered.advance_to(State::Delivered), None);
    }
}
