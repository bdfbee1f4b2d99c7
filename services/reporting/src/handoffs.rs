//! What the province's events say about each side of a hand-off (R11), and how a subtree's sides
//! add up. No I/O.
//!
//! A hand-off has two sides, each a county: the origin's (outgoing) and the destination's
//! (incoming). Each event says one thing about one side — it exists, it was decided, or its
//! decision is due on a day — and the store keeps one [`Side`] per side, so an event applied twice
//! or late changes nothing: a side counts once, keeps its outcome (a side is decided once), and
//! keeps the due date announced last.

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::HandoffRejectReason;
use nol_region::RegionCode;

/// Which side of a hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The origin's: a hand-off the county requested.
    Outgoing,
    /// The destination's: a hand-off the county received.
    Incoming,
}

/// Why a destination refused, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    ChildNotFound,
    HukouNotHere,
    AlreadyHasCase,
    DataWrong,
    Other,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::ChildNotFound,
        RejectReason::HukouNotHere,
        RejectReason::AlreadyHasCase,
        RejectReason::DataWrong,
        RejectReason::Other,
    ];

    /// A reason off the wire; one not given or not known counts as "other", as the transfer
    /// service records it.
    pub fn from_proto(value: i32) -> RejectReason {
        match HandoffRejectReason::try_from(value) {
            Ok(HandoffRejectReason::ChildNotFound) => RejectReason::ChildNotFound,
            Ok(HandoffRejectReason::HukouNotHere) => RejectReason::HukouNotHere,
            Ok(HandoffRejectReason::AlreadyHasCase) => RejectReason::AlreadyHasCase,
            Ok(HandoffRejectReason::DataWrong) => RejectReason::DataWrong,
            Ok(HandoffRejectReason::Other | HandoffRejectReason::Unspecified) | Err(_) => RejectReason::Other,
        }
    }

    /// Its place in [`RejectReason::ALL`].
    fn index(self) -> usize {
        match self {
            RejectReason::ChildNotFound => 0,
            RejectReason::HukouNotHere => 1,
            RejectReason::AlreadyHasCase => 2,
            RejectReason::DataWrong => 3,
            RejectReason::Other => 4,
        }
    }

    pub fn to_proto(self) -> HandoffRejectReason {
        match self {
            RejectReason::ChildNotFound => HandoffRejectReason::ChildNotFound,
            RejectReason::HukouNotHere => HandoffRejectReason::HukouNotHere,
            RejectReason::AlreadyHasCase => HandoffRejectReason::AlreadyHasCase,
            RejectReason::DataWrong => HandoffRejectReason::DataWrong,
            RejectReason::Other => HandoffRejectReason::Other,
        }
    }
}

/// How a side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The destination opened the case (at the origin: the origin has learned so).
    Accepted,
    Rejected(RejectReason),
    /// The origin withdrew it before the accept.
    Cancelled,
}

/// What one event says about one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The side exists: requested at the origin, arrived at the destination.
    Exists,
    /// The side was decided.
    Decided(Outcome),
    /// The case service set the side's decision date: on time until the end of that day.
    DueOn(NaiveDate),
}

/// One side of one hand-off, and what an event says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideFact {
    pub handoff_id: uuid::Uuid,
    pub direction: Direction,
    /// The side's county.
    pub region: RegionCode,
    pub fact: Fact,
}

/// One side of a hand-off as its events have told it so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    /// A step of the hand-off on this side was seen (not only its due date): the side counts.
    pub counted: bool,
    pub outcome: Option<Outcome>,
    /// The decision's due date, and when the case service announced it.
    pub due: Option<(NaiveDate, DateTime<Utc>)>,
    /// When the newest event applied happened.
    pub last_event_at: DateTime<Utc>,
}

impl Side {
    /// A side no event has told anything yet.
    pub fn unknown(at: DateTime<Utc>) -> Side {
        Side { counted: false, outcome: None, due: None, last_event_at: at }
    }

    /// This side after `fact`, from an event that happened at `at`. The same facts applied in any
    /// order, any number of times, give the same side: existence and the newest event time only
    /// grow, the due date announced last wins (a new deadline policy moves it), and the outcome
    /// is the side's one decision.
    pub fn apply(self, fact: Fact, at: DateTime<Utc>) -> Side {
        let mut next = Side { last_event_at: self.last_event_at.max(at), ..self };
        match fact {
            Fact::Exists => next.counted = true,
            Fact::Decided(outcome) => {
                next.counted = true;
                next.outcome = self.outcome.or(Some(outcome));
            }
            Fact::DueOn(day) => {
                let announced = (at, day);
                if self.due.is_none_or(|(kept_day, kept_at)| (kept_at, kept_day) < announced) {
                    next.due = Some((day, at));
                }
            }
        }
        next
    }

    /// Whether `fact` decides this side otherwise than it was decided: never, by the hand-off's
    /// state machine (each side ends once); kept as it was, and worth a warning.
    pub fn contradicts(&self, fact: Fact) -> bool {
        matches!((self.outcome, fact), (Some(kept), Fact::Decided(outcome)) if kept != outcome)
    }
}

/// The side of a hand-off between `origin` and `destination` that an event about `region` (the
/// county in its subject) is about; `None` when it is neither county. A hand-off never goes to
/// the county it comes from, so the side is never ambiguous.
pub fn side_of(region: &RegionCode, origin: &RegionCode, destination: &RegionCode) -> Option<Direction> {
    debug_assert_ne!(origin, destination, "a hand-off goes to another county");
    if region == origin {
        Some(Direction::Outgoing)
    } else if region == destination {
        Some(Direction::Incoming)
    } else {
        None
    }
}

/// Whether a decision due on `due_on` is overdue on `today`: from the day after (due dates are
/// inclusive, as for all overdue work).
pub fn is_overdue(due_on: NaiveDate, today: NaiveDate) -> bool {
    today > due_on
}

/// A subtree's sides of one direction, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub accepted: i64,
    /// Rejections by reason, in [`RejectReason::ALL`]'s order.
    pub rejected: [i64; RejectReason::ALL.len()],
    pub cancelled: i64,
    pub pending: i64,
    /// Of the pending, those past their due date.
    pub overdue: i64,
}

impl Tally {
    /// Adds `count` sides that ended in `outcome` (`None`: still pending, `overdue` of them late).
    pub fn add(&mut self, outcome: Option<Outcome>, count: i64, overdue: i64) {
        match outcome {
            None => {
                self.pending += count;
                self.overdue += overdue;
            }
            Some(Outcome::Accepted) => self.accepted += count,
            Some(Outcome::Cancelled) => self.cancelled += count,
            Some(Outcome::Rejected(reason)) => self.rejected[reason.index()] += count,
        }
    }

    pub fn rejected(&self) -> i64 {
        self.rejected.iter().sum()
    }

    /// Every side counted: requested (outgoing) or received (incoming).
    pub fn total(&self) -> i64 {
        self.accepted + self.rejected() + self.cancelled + self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> RegionCode {
        RegionCode::parse(text).unwrap()
    }

    #[test]
    fn the_side_is_the_county_the_event_is_about() {
        let (xuanwu, linquan) = (code("320102"), code("341221"));
        assert_eq!(side_of(&xuanwu, &xuanwu, &linquan), Some(Direction::Outgoing));
        assert_eq!(side_of(&linquan, &xuanwu, &linquan), Some(Direction::Incoming));
        assert_eq!(side_of(&code("320104"), &xuanwu, &linquan), None);
    }

    /// Every order of `facts` (each also applied twice) ends in the same side.
    fn same_in_every_order(facts: &[(Fact, DateTime<Utc>)]) -> Side {
        fn permutations(items: &[(Fact, DateTime<Utc>)]) -> Vec<Vec<(Fact, DateTime<Utc>)>> {
            if items.len() <= 1 {
                return vec![items.to_vec()];
            }
            let mut all = Vec::new();
            for index in 0..items.len() {
                let mut rest = items.to_vec();
                let first = rest.remove(index);
                for mut tail in permutations(&rest) {
                    tail.insert(0, first);
                    all.push(tail);
                }
            }
            all
        }
        let start = DateTime::<Utc>::MIN_UTC;
        let sides: Vec<Side> = permutations(facts)
            .into_iter()
            .map(|order| {
                let twice = order.iter().chain(order.iter());
                twice.fold(Side::unknown(start), |side, (fact, at)| side.apply(*fact, *at))
            })
            .collect();
        assert!(sides.windows(2).all(|pair| pair[0] == pair[1]), "{sides:#?}");
        sides[0]
    }

    #[test]
    fn a_side_is_the_same_whatever_the_order_and_however_often_its_events_come() {
        let at = |minute: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute);
        let day = |d: u32| NaiveDate::from_ymd_opt(2027, 3, d).unwrap();
        let rejected = Fact::Decided(Outcome::Rejected(RejectReason::HukouNotHere));
        let side = same_in_every_order(&[
            (Fact::DueOn(day(8)), at(0)),
            (Fact::Exists, at(1)),
            (Fact::DueOn(day(15)), at(5)),
            (rejected, at(9)),
        ]);
        assert!(side.counted);
        assert_eq!(side.outcome, Some(Outcome::Rejected(RejectReason::HukouNotHere)));
        assert_eq!(side.due, Some((day(15), at(5))), "the due date announced last");
        assert_eq!(side.last_event_at, at(9));
        assert!(side.contradicts(Fact::Decided(Outcome::Cancelled)));
        assert!(!side.contradicts(rejected));

        let only_due = same_in_every_order(&[(Fact::DueOn(day(8)), at(0))]);
        assert!(!only_due.counted, "a due date alone does not make a hand-off counted");
        let pending = same_in_every_order(&[(Fact::Exists, at(1)), (Fact::DueOn(day(8)), at(0))]);
        assert_eq!((pending.counted, pending.outcome), (true, None));
    }

    #[test]
    fn a_decision_is_overdue_from_the_day_after_it_is_due() {
        let due = NaiveDate::from_ymd_opt(2027, 3, 8).unwrap();
        assert!(!is_overdue(due, due));
        assert!(is_overdue(due, due.succ_opt().unwrap()));
    }

    #[test]
    fn a_tally_adds_up_to_its_total_and_unknown_reasons_count_as_other() {
        let mut tally = Tally::default();
        tally.add(Some(Outcome::Accepted), 2, 0);
        tally.add(Some(Outcome::Rejected(RejectReason::HukouNotHere)), 1, 0);
        tally.add(Some(Outcome::Rejected(RejectReason::from_proto(0))), 1, 0);
        tally.add(Some(Outcome::Rejected(RejectReason::from_proto(99))), 1, 0);
        tally.add(Some(Outcome::Cancelled), 1, 0);
        tally.add(None, 3, 1);
        assert_eq!(tally.rejected, [0, 1, 0, 0, 2]);
        assert_eq!((tally.rejected(), tally.pending, tally.overdue, tally.total()), (3, 3, 1, 9));
        for (index, reason) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(RejectReason::from_proto(reason.to_proto() as i32), reason);
            assert_eq!(reason.index(), index);
        }
    }
}
