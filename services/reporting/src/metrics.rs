//! What is counted, and what each event adds. No I/O.

use nol_proto::v1::{CaseOpened, CaseSource, CaseStatus, CaseStatusChanged, PersuasionRecorded};

/// A counted quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    PupilsRegistered,
    CasesOpened,
    CasesTakenIn,
    CasesHandedOut,
    /// Children back at school (复学).
    CasesReturned,
    /// Returned children who dropped out again (反弹): re-dropouts (R13, R16).
    CasesRelapsed,
    /// Cases put into home teaching (R4).
    CasesHomeTeaching,
    /// Deferrals granted (R6).
    CasesDeferred,
    /// Suspensions granted (R6).
    CasesSuspended,
    /// Exemptions (R1): the case ended.
    CasesExempt,
    /// Cases closed: the case ended.
    CasesClosed,
    /// Persuasion attempts recorded (R5).
    PersuasionAttempts,
    /// Of those, joint attempts.
    JointPersuasionAttempts,
}

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::PupilsRegistered,
        Metric::CasesOpened,
        Metric::CasesTakenIn,
        Metric::CasesHandedOut,
        Metric::CasesReturned,
        Metric::CasesRelapsed,
        Metric::CasesHomeTeaching,
        Metric::CasesDeferred,
        Metric::CasesSuspended,
        Metric::CasesExempt,
        Metric::CasesClosed,
        Metric::PersuasionAttempts,
        Metric::JointPersuasionAttempts,
    ];
}

/// What a status change counts: a relapse as a re-dropout, otherwise by the status reached.
pub fn for_status_changed(event: &CaseStatusChanged) -> Option<Metric> {
    if event.relapse {
        return Some(Metric::CasesRelapsed);
    }
    match CaseStatus::try_from(event.to_status).ok()? {
        CaseStatus::Returned => Some(Metric::CasesReturned),
        CaseStatus::HomeTeaching => Some(Metric::CasesHomeTeaching),
        CaseStatus::Deferred => Some(Metric::CasesDeferred),
        CaseStatus::Suspended => Some(Metric::CasesSuspended),
        CaseStatus::Exempt => Some(Metric::CasesExempt),
        CaseStatus::Closed => Some(Metric::CasesClosed),
        _ => None,
    }
}

/// What a persuasion attempt counts.
pub fn for_persuasion(event: &PersuasionRecorded) -> Vec<Metric> {
    let mut metrics = vec![Metric::PersuasionAttempts];
    if event.joint {
        metrics.push(Metric::JointPersuasionAttempts);
    }
    metrics
}

/// A case becoming active counts as opened here or as taken in from another region.
pub fn for_case_opened(event: &CaseOpened) -> Metric {
    if event.source == CaseSource::Handoff as i32 { Metric::CasesTakenIn } else { Metric::CasesOpened }
}

/// Cases owned and active: every case that became active here, less those handed out and those
/// that ended (exempt or closed). A relapse reopens a case that was still active (monitoring).
pub fn cases_active(opened: i64, taken_in: i64, handed_out: i64, ended: i64) -> i64 {
    opened + taken_in - handed_out - ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_taken_in_is_not_counted_as_opened_here() {
        let mut event = CaseOpened { source: CaseSource::Local as i32, ..Default::default() };
        assert_eq!(for_case_opened(&event), Metric::CasesOpened);
        event.source = CaseSource::Handoff as i32;
        assert_eq!(for_case_opened(&event), Metric::CasesTakenIn);
        assert_eq!(cases_active(3, 1, 2, 1), 1);
    }

    #[test]
    fn status_changes_count_by_status_reached_and_relapses_as_re_dropouts() {
        let change = |to: CaseStatus, relapse: bool| CaseStatusChanged {
            to_status: to as i32,
            from_status: CaseStatus::Monitoring as i32,
            relapse,
            ..Default::default()
        };
        assert_eq!(for_status_changed(&change(CaseStatus::Open, true)), Some(Metric::CasesRelapsed));
        assert_eq!(for_status_changed(&change(CaseStatus::Returned, false)), Some(Metric::CasesReturned));
        assert_eq!(for_status_changed(&change(CaseStatus::Deferred, false)), Some(Metric::CasesDeferred));
        assert_eq!(for_status_changed(&change(CaseStatus::Monitoring, false)), None);
        let joint = PersuasionRecorded { joint: true, ..Default::default() };
        assert_eq!(for_persuasion(&joint), vec![Metric::PersuasionAttempts, Metric::JointPersuasionAttempts]);
    }
}
