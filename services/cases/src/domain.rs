//! A case's rules, without I/O: which changes its status allows.

use nol_proto::v1::{CaseStatus, DropoutCause};
use nol_region::RegionCode;
use uuid::Uuid;

/// Where a case is; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    HandoffPending,
    HandedOver,
    Returned,
    Monitoring,
    HomeTeaching,
    Deferred,
    Suspended,
    Exempt,
    Closed,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Open,
        Status::HandoffPending,
        Status::HandedOver,
        Status::Returned,
        Status::Monitoring,
        Status::HomeTeaching,
        Status::Deferred,
        Status::Suspended,
        Status::Exempt,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::HandoffPending => "handoff_pending",
            Status::HandedOver => "handed_over",
            Status::Returned => "returned",
            Status::Monitoring => "monitoring",
            Status::HomeTeaching => "home_teaching",
            Status::Deferred => "deferred",
            Status::Suspended => "suspended",
            Status::Exempt => "exempt",
            Status::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn to_proto(self) -> CaseStatus {
        match self {
            Status::Open => CaseStatus::Open,
            Status::HandoffPending => CaseStatus::HandoffPending,
            Status::HandedOver => CaseStatus::HandedOver,
            Status::Returned => CaseStatus::Returned,
            Status::Monitoring => CaseStatus::Monitoring,
            Status::HomeTeaching => CaseStatus::HomeTeaching,
            Status::Deferred => CaseStatus::Deferred,
            Status::Suspended => CaseStatus::Suspended,
            Status::Exempt => CaseStatus::Exempt,
            Status::Closed => CaseStatus::Closed,
        }
    }

    pub fn from_proto(status: CaseStatus) -> Option<Status> {
        Status::ALL.into_iter().find(|candidate| candidate.to_proto() == status)
    }

    /// The child's one case (R2): every status but the three ends. Must match the partial unique
    /// index `dropout_case_one_active_per_child`.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::HandedOver | Status::Exempt | Status::Closed)
    }
}

/// A refused change, naming the rule and what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("R11: the case is {status}; only an open case can be handed over")]
    NotOpen { status: &'static str },
    #[error("R11: hand-off {pending} of this case is already under way")]
    HandoffUnderWay { pending: Uuid },
    #[error("R11: the case was handed over by hand-off {by}, not {requested}")]
    HandedOverByAnother { by: Uuid, requested: Uuid },
    #[error("R2: at least one cause is required")]
    NoCause,
    #[error("the stored case has an unreadable {0}")]
    Corrupt(&'static str),
}

/// The outcome of an allowed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status moves to this.
    To(Status),
    /// Already done (a redelivered or reordered event): nothing to change.
    AlreadyDone,
}

/// The part of a case the hand-off rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseState {
    pub status: Status,
    pub region: RegionCode,
    pub handoff_id: Option<Uuid>,
}

impl CaseState {
    /// The hand-off state of a stored case; a row the rules cannot read is an error.
    pub fn from_row(row: &crate::store::CaseRow) -> Result<CaseState, RuleViolation> {
        let status = Status::parse(&row.status).ok_or(RuleViolation::Corrupt("status"))?;
        let region = RegionCode::parse(&row.region).map_err(|_| RuleViolation::Corrupt("region"))?;
        Ok(CaseState { status, region, handoff_id: row.handoff_id })
    }

    /// A hand-off was requested: the case stays owned here, marked pending.
    pub fn begin_handoff(&self, handoff_id: Uuid) -> Result<Transition, RuleViolation> {
        match (self.status, self.handoff_id) {
            (Status::Open, _) => Ok(Transition::To(Status::HandoffPending)),
            (Status::HandoffPending | Status::HandedOver, Some(current)) if current == handoff_id => {
                Ok(Transition::AlreadyDone)
            }
            (Status::HandoffPending, current) => {
                Err(RuleViolation::HandoffUnderWay { pending: current.unwrap_or_default() })
            }
            (_, _) => Err(RuleViolation::NotOpen { status: self.status.as_str() }),
        }
    }

    /// The destination accepted: ownership has moved, the case here is handed over. Also valid
    /// straight from open, when the completion overtakes the pending notice.
    pub fn complete_handoff(&self, handoff_id: Uuid) -> Result<Transition, RuleViolation> {
        match (self.status, self.handoff_id) {
            (Status::HandedOver, Some(current)) if current == handoff_id => Ok(Transition::AlreadyDone),
            (Status::HandedOver, current) => {
                Err(RuleViolation::HandedOverByAnother { by: current.unwrap_or_default(), requested: handoff_id })
            }
            (Status::HandoffPending, Some(current)) if current != handoff_id => {
                Err(RuleViolation::HandoffUnderWay { pending: current })
            }
            (Status::Open | Status::HandoffPending, _) => Ok(Transition::To(Status::HandedOver)),
            (_, _) => Err(RuleViolation::NotOpen { status: self.status.as_str() }),
        }
    }
}

/// Validates the causes of a new case: at least one, each known, no repeats.
pub fn check_causes(raw: &[i32]) -> Result<Vec<DropoutCause>, RuleViolation> {
    let mut causes = Vec::new();
    for value in raw {
        if let Ok(cause) = DropoutCause::try_from(*value)
            && cause != DropoutCause::Unspecified
            && !causes.contains(&cause)
        {
            causes.push(cause);
        }
    }
    if causes.is_empty() {
        return Err(RuleViolation::NoCause);
    }
    Ok(causes)
}

pub fn cause_name(cause: DropoutCause) -> &'static str {
    match cause {
        DropoutCause::Unspecified => "unspecified",
        DropoutCause::FamilyPoverty => "family_poverty",
        DropoutCause::Disability => "disability",
        DropoutCause::LearningDifficulty => "learning_difficulty",
        DropoutCause::GoneToWork => "gone_to_work",
        DropoutCause::Religion => "religion",
        DropoutCause::Other => "other",
    }
}

pub fn cause_from_name(name: &str) -> DropoutCause {
    match name {
        "family_poverty" => DropoutCause::FamilyPoverty,
        "disability" => DropoutCause::Disability,
        "learning_difficulty" => DropoutCause::LearningDifficulty,
        "gone_to_work" => DropoutCause::GoneToWork,
        "religion" => DropoutCause::Religion,
        "other" => DropoutCause::Other,
        _ => DropoutCause::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, handoff_id: Option<Uuid>) -> CaseState {
        CaseState { status, region: RegionCode::parse("320102").unwrap(), handoff_id }
    }

    #[test]
    fn a_hand_off_goes_open_pending_handed_over() {
        let handoff = Uuid::now_v7();
        let open = state(Status::Open, None);
        assert_eq!(open.begin_handoff(handoff), Ok(Transition::To(Status::HandoffPending)));
        let pending = state(Status::HandoffPending, Some(handoff));
        assert_eq!(pending.begin_handoff(handoff), Ok(Transition::AlreadyDone));
        assert_eq!(pending.complete_handoff(handoff), Ok(Transition::To(Status::HandedOver)));
        let done = state(Status::HandedOver, Some(handoff));
        assert_eq!(done.complete_handoff(handoff), Ok(Transition::AlreadyDone));
        assert_eq!(done.begin_handoff(handoff), Ok(Transition::AlreadyDone));
    }

    #[test]
    fn completion_may_overtake_the_pending_notice() {
        let handoff = Uuid::now_v7();
        assert_eq!(state(Status::Open, None).complete_handoff(handoff), Ok(Transition::To(Status::HandedOver)));
    }

    #[test]
    fn a_second_hand_off_is_refused_while_one_is_under_way_or_done() {
        let first = Uuid::now_v7();
        let second = Uuid::now_v7();
        assert!(matches!(
            state(Status::HandoffPending, Some(first)).begin_handoff(second),
            Err(RuleViolation::HandoffUnderWay { .. })
        ));
        assert!(matches!(
            state(Status::HandedOver, Some(first)).complete_handoff(second),
            Err(RuleViolation::HandedOverByAnother { .. })
        ));
        assert!(matches!(
            state(Status::HandedOver, Some(first)).begin_handoff(second),
            Err(RuleViolation::NotOpen { .. })
        ));
    }

    #[test]
    fn causes_are_required_and_deduplicated() {
        assert_eq!(check_causes(&[]), Err(RuleViolation::NoCause));
        assert_eq!(check_causes(&[0, 99]), Err(RuleViolation::NoCause));
        assert_eq!(check_causes(&[1, 4, 1]).unwrap(), vec![DropoutCause::FamilyPoverty, DropoutCause::GoneToWork]);
    }
}
