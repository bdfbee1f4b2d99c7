//! Deadlines (R12) as data, without I/O: what work a case owes next and by when.
//!
//! The policy is one row of `deadline_policy` per province database; the defaults follow the
//! notice: first contact within 7 days of confirmation, an attempt at least every 14 days while
//! open, deferred or suspended cases followed up monthly, and overdue work escalated to the parent
//! bureau (督办) once it is 7 days past due.

use chrono::{Duration, NaiveDate};

use super::Status;
use super::stored::stored_own;

/// The province's deadlines, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlinePolicy {
    pub first_contact_days: i32,
    pub attempt_interval_days: i32,
    pub deferred_follow_up_days: i32,
    pub supervision_after_days: i32,
    /// A destination decides on a hand-off within this many days of receiving it (R11, R12).
    pub handoff_decision_days: i32,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy {
            first_contact_days: 7,
            attempt_interval_days: 14,
            deferred_follow_up_days: 30,
            supervision_after_days: 7,
            handoff_decision_days: 7,
        }
    }
}

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// No attempt yet since the dropout was confirmed.
    FirstContact,
    /// The next persuasion attempt of an open case.
    NextAttempt,
    /// The follow-up of a deferred or suspended case (persuasion continues, R6).
    FollowUp,
    /// A hand-off's decision by the destination (the origin's case waits for it, R11).
    HandoffDecision,
}

stored_own! {
    DueKind {
        FirstContact => "first_contact", NextAttempt => "next_attempt", FollowUp => "follow_up",
        HandoffDecision => "handoff_decision",
    }
}

impl DueKind {
    /// The catalogue's words for this work, in a supervision item's reason.
    pub fn overdue_what(self) -> nol_messages::OverdueWhat {
        match self {
            DueKind::FirstContact => nol_messages::OverdueWhat::FirstContact,
            DueKind::NextAttempt => nol_messages::OverdueWhat::NextAttempt,
            DueKind::FollowUp => nol_messages::OverdueWhat::FollowUp,
            DueKind::HandoffDecision => nol_messages::OverdueWhat::HandoffDecision,
        }
    }
}

/// The dates a case's deadlines run from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseDates {
    pub status: Status,
    /// The day the dropout was confirmed (the case opened or was taken in).
    pub confirmed_on: NaiveDate,
    /// The newest persuasion attempt.
    pub last_attempt_on: Option<NaiveDate>,
    /// For a deferred or suspended case: the day the deferral was granted.
    pub follow_up_from: Option<NaiveDate>,
    /// For a case pending a hand-off: the day it was requested.
    pub handoff_requested_on: Option<NaiveDate>,
}

/// The next piece of work a case owes and its due date; `None` when its status owes none by
/// deadline (returned, monitoring — checked by semester campaigns instead —, home teaching,
/// handed over, ended). A case pending a hand-off waits for the destination's decision.
pub fn next_due(dates: &CaseDates, policy: &DeadlinePolicy) -> Option<(NaiveDate, DueKind)> {
    match dates.status {
        Status::Open => Some(match dates.last_attempt_on {
            None => (dates.confirmed_on + Duration::days(policy.first_contact_days.into()), DueKind::FirstContact),
            Some(last) => (last + Duration::days(policy.attempt_interval_days.into()), DueKind::NextAttempt),
        }),
        Status::Deferred | Status::Suspended => {
            let from = [dates.follow_up_from, dates.last_attempt_on].into_iter().flatten().max()?;
            Some((from + Duration::days(policy.deferred_follow_up_days.into()), DueKind::FollowUp))
        }
        Status::HandoffPending => {
            let requested = dates.handoff_requested_on?;
            Some((requested + Duration::days(policy.handoff_decision_days.into()), DueKind::HandoffDecision))
        }
        _ => None,
    }
}

/// Whether work due on `due_on` is overdue on `today` (due dates are inclusive).
pub fn is_overdue(due_on: NaiveDate, today: NaiveDate) -> bool {
    today > due_on
}

/// Whether overdue work has slipped far enough to be escalated to the parent bureau (督办).
pub fn needs_supervision(due_on: NaiveDate, today: NaiveDate, policy: &DeadlinePolicy) -> bool {
    today > due_on + Duration::days(policy.supervision_after_days.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn dates(status: Status, last_attempt: Option<&str>, follow_up: Option<&str>) -> CaseDates {
        CaseDates {
            status,
            confirmed_on: day("2027-03-01"),
            last_attempt_on: last_attempt.map(day),
            follow_up_from: follow_up.map(day),
            handoff_requested_on: None,
        }
    }

    #[test]
    fn an_open_case_owes_first_contact_then_an_attempt_every_interval() {
        let policy = DeadlinePolicy::default();
        assert_eq!(
            next_due(&dates(Status::Open, None, None), &policy),
            Some((day("2027-03-08"), DueKind::FirstContact))
        );
        assert_eq!(
            next_due(&dates(Status::Open, Some("2027-03-05"), None), &policy),
            Some((day("2027-03-19"), DueKind::NextAttempt))
        );
    }

    #[test]
    fn a_deferred_case_is_followed_up_monthly_from_the_newer_of_grant_and_attempt() {
        let policy = DeadlinePolicy::default();
        assert_eq!(
            next_due(&dates(Status::Deferred, Some("2027-03-05"), Some("2027-03-10")), &policy),
            Some((day("2027-04-09"), DueKind::FollowUp))
        );
        assert_eq!(
            next_due(&dates(Status::Suspended, Some("2027-04-01"), Some("2027-03-10")), &policy),
            Some((day("2027-05-01"), DueKind::FollowUp))
        );
    }

    #[test]
    fn other_statuses_owe_nothing_by_deadline() {
        let policy = DeadlinePolicy::default();
        for status in [
            Status::Returned,
            Status::Monitoring,
            Status::HomeTeaching,
            Status::HandedOver,
            Status::Closed,
            Status::HandoffPending,
        ] {
            assert_eq!(next_due(&dates(status, None, None), &policy), None, "{status:?}");
        }
    }

    #[test]
    fn due_kinds_are_stored_by_name() {
        use super::super::stored::Stored;
        let names: Vec<&str> = DueKind::ALL.iter().map(|kind| kind.as_stored()).collect();
        assert_eq!(names, ["first_contact", "next_attempt", "follow_up", "handoff_decision"]);
    }

    #[test]
    fn a_pending_hand_off_waits_for_the_destinations_decision() {
        let policy = DeadlinePolicy::default();
        let mut pending = dates(Status::HandoffPending, Some("2027-03-05"), None);
        pending.handoff_requested_on = Some(day("2027-03-10"));
        assert_eq!(next_due(&pending, &policy), Some((day("2027-03-17"), DueKind::HandoffDecision)));
    }

    #[test]
    fn overdue_and_supervision_thresholds_are_exclusive_of_the_due_day() {
        let policy = DeadlinePolicy::default();
        assert!(!is_overdue(day("2027-03-08"), day("2027-03-08")));
        assert!(is_overdue(day("2027-03-08"), day("2027-03-09")));
        assert!(!needs_supervision(day("2027-03-08"), day("2027-03-15"), &policy));
        assert!(needs_supervision(day("2027-03-08"), day("2027-03-16"), &policy));
    }
}
