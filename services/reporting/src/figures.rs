//! A period's figures: which daily counts are flows (summed over the period's days) and which are
//! balances (summed up to its last day), and how they read as `PeriodFigures`. No I/O.
//!
//! Names are stored (in `daily_count` and in reports' frozen figures), so they are explicit here.

use std::collections::BTreeMap;

use nol_proto::v1::{CaseStatus, CaseStatusCount, DropoutCause, DropoutCauseCount, GradeCount, PeriodFigures};

/// Flows kept only per day (the older metrics of `region_count` are flows too, by their names).
pub const PUPILS_LEFT_ENROLLED: &str = "pupils_left_enrolled";
/// Pupils who completed compulsory education (the consolidation rate's numerator).
pub const PUPILS_GRADUATED: &str = "pupils_graduated";
pub const SUSPECTS_RECORDED: &str = "suspects_recorded";
pub const SUSPECTS_CONFIRMED: &str = "suspects_confirmed";
pub const SUSPECTS_CLOSED: &str = "suspects_closed";
pub const SUPERVISION_RAISED: &str = "supervision_raised";
pub const SUPERVISION_CLOSED: &str = "supervision_closed";
pub const HANDOFFS_OUT: &str = "handoffs_out";
pub const HANDOFFS_IN: &str = "handoffs_in";

/// Semester-start checks (R13): children listed, marks given (a follow-up that finds the child in
/// class counts as present), absences confirmed as relapses.
pub const CHECK_LISTED: &str = "check_listed";
pub const CHECK_PRESENT: &str = "check_present";
pub const CHECK_ABSENT: &str = "check_absent";
pub const CHECK_RELAPSED: &str = "check_relapsed";

/// A checklist item's stored state, as the case service names it.
pub fn check_state(text: &str) -> Option<&'static str> {
    ["pending", "present", "absent", "relapsed"].into_iter().find(|state| *state == text)
}

/// The states kept as balances (work still to do): `check.pending`, `check.absent`.
pub fn check_state_is_balance(state: &str) -> bool {
    matches!(state, "pending" | "absent")
}

pub fn check_state_metric(state: &str) -> String {
    format!("check.{state}")
}

/// The flow counted when an item reaches `state`.
pub fn check_flow(state: &str) -> Option<&'static str> {
    match state {
        "present" => Some(CHECK_PRESENT),
        "absent" => Some(CHECK_ABSENT),
        "relapsed" => Some(CHECK_RELAPSED),
        _ => None,
    }
}

/// Balances of the pupils enrolled, by who they are: migrant children, registered-poor, with a
/// disability on record, and by grade (`enrolled.grade.5`).
pub const ENROLLED_MIGRANT: &str = "enrolled.migrant";
pub const ENROLLED_POOR: &str = "enrolled.registered_poor";
pub const ENROLLED_DISABILITY: &str = "enrolled.disability";

pub fn enrolled_grade_metric(grade: i32) -> String {
    format!("enrolled.grade.{grade}")
}

/// What an enrolled pupil counts under besides `pupil.enrolled`: each metric once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PupilKinds {
    pub grade: i32,
    pub migrant: bool,
    pub registered_poor: bool,
    pub disability: bool,
}

impl PupilKinds {
    pub fn metrics(self) -> Vec<String> {
        let mut metrics = Vec::new();
        if (1..=9).contains(&self.grade) {
            metrics.push(enrolled_grade_metric(self.grade));
        }
        for (on, metric) in [
            (self.migrant, ENROLLED_MIGRANT),
            (self.registered_poor, ENROLLED_POOR),
            (self.disability, ENROLLED_DISABILITY),
        ] {
            if on {
                metrics.push(metric.to_owned());
            }
        }
        metrics
    }
}

/// Balances.
pub const SUSPECTS_PENDING: &str = "suspects_pending";
pub const SUPERVISION_OPEN: &str = "supervision_open";

/// The balance of cases in a status: `case.open`.
pub fn case_status_metric(status: &str) -> String {
    format!("case.{status}")
}

/// The balance of active cases with a cause: `cause.gone_to_work`.
pub fn cause_metric(cause: &str) -> String {
    format!("cause.{cause}")
}

/// The balance of pupils whose record is in a status: `pupil.enrolled`.
pub fn pupil_status_metric(status: &str) -> String {
    format!("pupil.{status}")
}

/// Whether a stored metric is a balance (read at the period's end) rather than a flow.
pub fn is_balance(metric: &str) -> bool {
    metric.starts_with("case.")
        || metric.starts_with("cause.")
        || metric.starts_with("pupil.")
        || metric.starts_with("check.")
        || metric.starts_with("enrolled.")
        || metric == SUSPECTS_PENDING
        || metric == SUPERVISION_OPEN
}

/// The stored name of a case status.
pub fn case_status_name(status: CaseStatus) -> Option<&'static str> {
    Some(match status {
        CaseStatus::Unspecified => return None,
        CaseStatus::Open => "open",
        CaseStatus::HandoffPending => "handoff_pending",
        CaseStatus::HandedOver => "handed_over",
        CaseStatus::Returned => "returned",
        CaseStatus::Monitoring => "monitoring",
        CaseStatus::HomeTeaching => "home_teaching",
        CaseStatus::Deferred => "deferred",
        CaseStatus::Suspended => "suspended",
        CaseStatus::Exempt => "exempt",
        CaseStatus::Closed => "closed",
    })
}

/// The statuses of a child's one active case (every status but the three ends), as the ledger's
/// R2 index counts them.
pub const ACTIVE_STATUSES: [CaseStatus; 7] = [
    CaseStatus::Open,
    CaseStatus::HandoffPending,
    CaseStatus::Returned,
    CaseStatus::Monitoring,
    CaseStatus::HomeTeaching,
    CaseStatus::Deferred,
    CaseStatus::Suspended,
];

pub fn is_active(status: &str) -> bool {
    ACTIVE_STATUSES.iter().any(|active| case_status_name(*active) == Some(status))
}

/// The stored name of a cause.
pub fn cause_name(cause: DropoutCause) -> Option<&'static str> {
    Some(match cause {
        DropoutCause::Unspecified => return None,
        DropoutCause::FamilyPoverty => "family_poverty",
        DropoutCause::Disability => "disability",
        DropoutCause::LearningDifficulty => "learning_difficulty",
        DropoutCause::GoneToWork => "gone_to_work",
        DropoutCause::Religion => "religion",
        DropoutCause::Other => "other",
    })
}

pub const CAUSES: [DropoutCause; 6] = [
    DropoutCause::FamilyPoverty,
    DropoutCause::Disability,
    DropoutCause::LearningDifficulty,
    DropoutCause::GoneToWork,
    DropoutCause::Religion,
    DropoutCause::Other,
];

/// The stored name of a pupil's enrollment status.
pub fn pupil_status_name(status: nol_proto::v1::EnrollmentStatus) -> &'static str {
    use nol_proto::v1::EnrollmentStatus as S;
    match status {
        S::Unspecified | S::Enrolled => "enrolled",
        S::Graduated => "graduated",
        S::TransferredOut => "transferred_out",
        S::DroppedOut => "dropped_out",
        S::Deferred => "deferred",
        S::Suspended => "suspended",
        S::HomeTaught => "home_taught",
        S::Exempt => "exempt",
        S::Deceased => "deceased",
    }
}

/// One region's resolved figures for a period: each metric's flow within it or balance at its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures(pub BTreeMap<String, i64>);

impl Figures {
    pub fn get(&self, metric: &str) -> i64 {
        self.0.get(metric).copied().unwrap_or(0)
    }

    /// Adds a daily row group: `in_period` is the sum over the period's days, `to_end` up to its end.
    pub fn add_row(&mut self, metric: &str, in_period: i64, to_end: i64) {
        let value = if is_balance(metric) { to_end } else { in_period };
        *self.0.entry(metric.to_owned()).or_default() += value;
    }

    /// Adds another region's figures (a sum up the tree).
    pub fn add(&mut self, other: &Figures) {
        for (metric, value) in &other.0 {
            *self.0.entry(metric.clone()).or_default() += value;
        }
    }

    /// Active cases at the period's end, from the balances by status.
    pub fn dropout_balance(&self) -> i64 {
        ACTIVE_STATUSES
            .iter()
            .filter_map(|status| case_status_name(*status))
            .map(|name| self.get(&case_status_metric(name)))
            .sum()
    }

    /// The reconciliation: the balance by status equals the cases that became active here less
    /// those that left or ended, both cumulative to the period's end. Returns (balance, ledger).
    pub fn reconciles(&self, cumulative: &Figures) -> Result<(), (i64, i64)> {
        let ledger = cumulative.get("cases_opened") + cumulative.get("cases_taken_in")
            - cumulative.get("cases_handed_out")
            - cumulative.get("cases_exempt")
            - cumulative.get("cases_closed");
        let balance = self.dropout_balance();
        if balance == ledger { Ok(()) } else { Err((balance, ledger)) }
    }

    pub fn to_proto(&self) -> PeriodFigures {
        let get = |metric: &str| self.get(metric);
        PeriodFigures {
            pupils_registered: get("pupils_registered"),
            pupils_left_enrolled: get(PUPILS_LEFT_ENROLLED),
            pupils_enrolled: get(&pupil_status_metric("enrolled")),
            suspects_new: get(SUSPECTS_RECORDED),
            suspects_confirmed: get(SUSPECTS_CONFIRMED),
            suspects_closed: get(SUSPECTS_CLOSED),
            suspects_pending: get(SUSPECTS_PENDING),
            dropouts_new: get("cases_opened"),
            cases_taken_in: get("cases_taken_in"),
            cases_handed_out: get("cases_handed_out"),
            returned: get("cases_returned"),
            relapsed: get("cases_relapsed"),
            deferred: get("cases_deferred"),
            suspended: get("cases_suspended"),
            home_teaching: get("cases_home_teaching"),
            exempt: get("cases_exempt"),
            closed: get("cases_closed"),
            persuasion_attempts: get("persuasion_attempts"),
            joint_persuasion_attempts: get("joint_persuasion_attempts"),
            supervision_raised: get(SUPERVISION_RAISED),
            supervision_closed: get(SUPERVISION_CLOSED),
            supervision_open: get(SUPERVISION_OPEN),
            handoffs_out: get(HANDOFFS_OUT),
            handoffs_in: get(HANDOFFS_IN),
            dropout_balance: self.dropout_balance(),
            check_listed: get(CHECK_LISTED),
            check_present: get(CHECK_PRESENT),
            check_absent: get(CHECK_ABSENT),
            check_relapsed: get(CHECK_RELAPSED),
            check_pending: get(&check_state_metric("pending")),
            check_absent_open: get(&check_state_metric("absent")),
            pupils_enrolled_migrant: get(ENROLLED_MIGRANT),
            pupils_enrolled_registered_poor: get(ENROLLED_POOR),
            pupils_enrolled_disability: get(ENROLLED_DISABILITY),
            pupils_enrolled_by_grade: (1..=9)
                .map(|grade| GradeCount { grade, count: get(&enrolled_grade_metric(grade)) })
                .collect(),
            balance_by_status: ACTIVE_STATUSES
                .iter()
                .filter_map(|status| Some((*status, case_status_name(*status)?)))
                .map(|(status, name)| CaseStatusCount { status: status as i32, count: get(&case_status_metric(name)) })
                .collect(),
            balance_by_cause: CAUSES
                .iter()
                .filter_map(|cause| Some((*cause, cause_name(*cause)?)))
                .map(|(cause, name)| DropoutCauseCount { cause: cause as i32, count: get(&cause_metric(name)) })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_count_the_period_and_balances_its_end() {
        let mut figures = Figures::default();
        figures.add_row("cases_opened", 3, 10);
        figures.add_row("case.open", 1, 4);
        figures.add_row("case.monitoring", 0, 2);
        figures.add_row("case.closed", 1, 5);
        figures.add_row(SUPERVISION_OPEN, -1, 2);
        assert_eq!(figures.get("cases_opened"), 3);
        assert_eq!(figures.dropout_balance(), 6, "closed cases are not in the balance");
        let proto = figures.to_proto();
        assert_eq!((proto.dropouts_new, proto.dropout_balance, proto.supervision_open), (3, 6, 2));
        assert_eq!(proto.balance_by_status.len(), 7);
        assert_eq!(proto.balance_by_cause.len(), 6);
        let mut sum = figures.clone();
        sum.add(&figures);
        assert_eq!(sum.get("cases_opened"), 6);
    }

    #[test]
    fn the_balance_reconciles_with_cases_opened_and_ended() {
        let mut at_end = Figures::default();
        at_end.add_row("case.open", 0, 2);
        let mut cumulative = Figures::default();
        cumulative.add_row("cases_opened", 4, 4);
        cumulative.add_row("cases_closed", 2, 2);
        assert_eq!(at_end.reconciles(&cumulative), Ok(()));
        cumulative.add_row("cases_taken_in", 1, 1);
        assert_eq!(at_end.reconciles(&cumulative), Err((2, 3)));
    }

    #[test]
    fn stored_names_are_pinned() {
        let names: Vec<_> = ACTIVE_STATUSES.iter().filter_map(|status| case_status_name(*status)).collect();
        assert_eq!(
            names,
            ["open", "handoff_pending", "returned", "monitoring", "home_teaching", "deferred", "suspended"]
        );
        let causes: Vec<_> = CAUSES.iter().filter_map(|cause| cause_name(*cause)).collect();
        assert_eq!(
            causes,
            ["family_poverty", "disability", "learning_difficulty", "gone_to_work", "religion", "other"]
        );
        assert!(is_balance("case.open") && is_balance(SUSPECTS_PENDING) && !is_balance(SUSPECTS_RECORDED));
        assert!(is_balance(&check_state_metric("pending")) && !is_balance(CHECK_PRESENT));
    }
}
