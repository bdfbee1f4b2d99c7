//! The rules of supervision (督办, R12) and the semester-start check (R13), without I/O. A refusal
//! is a [`SupervisionRefusal`] in the catalogue's words.

use chrono::{DateTime, NaiveDate, Utc};
use nol_messages::Supervision as Says;
use nol_proto::v1::{CheckItemState, OverdueKind, SupervisionState};
use nol_region::{RegionCode, RegionLevel};
use uuid::Uuid;

use crate::case::domain::deadlines::DueKind;
use crate::case::domain::stored::{Stored, stored_own};

/// A refused supervision or semester-check step, naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionRefusal(pub Says);

impl std::fmt::Display for SupervisionRefusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0.en())
    }
}

impl std::error::Error for SupervisionRefusal {}

fn refuse<T>(message: Says) -> Result<T, SupervisionRefusal> {
    Err(SupervisionRefusal(message))
}

/// A semester: `YYYY-spring` or `YYYY-autumn`, years 2000–2100.
pub fn check_semester(text: &str) -> Result<String, Says> {
    let text = text.trim();
    let (year, half) = text.split_once('-').ok_or(Says::Semester)?;
    let year: u16 = year.parse().map_err(|_| Says::Semester)?;
    if !(2000..=2100).contains(&year) {
        return Err(Says::SemesterYear);
    }
    if !matches!(half, "spring" | "autumn") {
        return Err(Says::Semester);
    }
    Ok(format!("{year}-{half}"))
}

/// The bureau that supervises `region`'s overdue work: its parent (county → city → province).
/// A province supervises itself (there is no one above it in this system).
pub fn supervisor_of(region: &RegionCode) -> RegionCode {
    if region.level() == RegionLevel::Province {
        return *region;
    }
    region.parent().unwrap_or_else(|| region.province())
}

/// Where an unanswered item goes next: one level up, unless it is already with the province.
pub fn escalate(supervising: &RegionCode) -> Option<RegionCode> {
    (supervising.level() != RegionLevel::Province).then(|| supervisor_of(supervising))
}

/// Which overdue work: a case's deadline, or a child not confirmed at a semester-start check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Due(DueKind),
    SemesterCheck,
    /// A county's bi-monthly report not submitted by its due date (R16): an item, never a list row.
    Report,
    /// A request for help between regions still open past its due date, on either side.
    Assistance,
}

impl Stored for WorkKind {
    const ALL: &'static [WorkKind] = &[
        WorkKind::Due(DueKind::FirstContact),
        WorkKind::Due(DueKind::NextAttempt),
        WorkKind::Due(DueKind::FollowUp),
        WorkKind::SemesterCheck,
        WorkKind::Due(DueKind::HandoffDecision),
        WorkKind::Report,
        WorkKind::Assistance,
    ];

    fn as_stored(self) -> &'static str {
        match self {
            WorkKind::Due(kind) => kind.as_stored(),
            WorkKind::SemesterCheck => "semester_check",
            WorkKind::Report => "report",
            WorkKind::Assistance => "assistance",
        }
    }
}

impl WorkKind {
    pub fn to_proto(self) -> OverdueKind {
        match self {
            WorkKind::Due(DueKind::FirstContact) => OverdueKind::FirstContact,
            WorkKind::Due(DueKind::NextAttempt) => OverdueKind::NextAttempt,
            WorkKind::Due(DueKind::FollowUp) => OverdueKind::FollowUp,
            WorkKind::SemesterCheck => OverdueKind::SemesterCheck,
            WorkKind::Due(DueKind::HandoffDecision) => OverdueKind::HandoffDecision,
            WorkKind::Report => OverdueKind::Report,
            WorkKind::Assistance => OverdueKind::Assistance,
        }
    }

    /// `None` for unspecified (any kind).
    pub fn from_proto(kind: OverdueKind) -> Option<WorkKind> {
        WorkKind::ALL.iter().copied().find(|candidate| candidate.to_proto() == kind)
    }

    /// Why an item for this work was raised, for the supervising bureau.
    pub fn overdue_reason(self, due_on: NaiveDate) -> Says {
        let what = match self {
            WorkKind::Due(kind) => kind.overdue_what(),
            WorkKind::SemesterCheck => nol_messages::OverdueWhat::SemesterCheck,
            WorkKind::Report => nol_messages::OverdueWhat::Report,
            WorkKind::Assistance => nol_messages::OverdueWhat::Assistance,
        };
        Says::Overdue { what, due_on: due_on.to_string() }
    }
}

/// Where a supervision item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Open,
    Answered,
    Closed,
}

stored_own! {
    ItemState { Open => "open", Answered => "answered", Closed => "closed" }
}

impl ItemState {
    pub fn to_proto(self) -> SupervisionState {
        match self {
            ItemState::Open => SupervisionState::Open,
            ItemState::Answered => SupervisionState::Answered,
            ItemState::Closed => SupervisionState::Closed,
        }
    }

    /// `None` for unspecified (any state).
    pub fn from_proto(state: SupervisionState) -> Option<ItemState> {
        ItemState::ALL.iter().copied().find(|candidate| candidate.to_proto() == state)
    }
}

/// A supervision item (督办事项) as the domain reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionItem {
    pub id: Uuid,
    pub kind: WorkKind,
    /// The case (for a destination's undecided hand-off, none: see `handoff_id`).
    pub case_id: Option<Uuid>,
    /// For a hand-off decision: the hand-off.
    pub handoff_id: Option<Uuid>,
    /// The county whose work is overdue.
    pub region: RegionCode,
    /// The bureau chasing it (county's city, then the province).
    pub supervising_region: RegionCode,
    pub escalations: i32,
    pub reason: String,
    pub due_on: NaiveDate,
    pub raised_at: DateTime<Utc>,
    pub state: ItemState,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub closing_note: Option<String>,
    pub closed_by: Option<String>,
}

/// A supervision item may be answered while open or answered (a better answer replaces the first).
pub fn answer(state: ItemState) -> Result<(), SupervisionRefusal> {
    match state {
        ItemState::Open | ItemState::Answered => Ok(()),
        ItemState::Closed => refuse(Says::ClosedTakesNoAnswers),
    }
}

/// A supervision item is closed only once answered.
pub fn close(state: ItemState) -> Result<(), SupervisionRefusal> {
    match state {
        ItemState::Answered => Ok(()),
        ItemState::Open => refuse(Says::NotAnswered),
        ItemState::Closed => refuse(Says::AlreadyClosed),
    }
}

/// A child's place on a semester check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Pending,
    Present,
    Absent,
    Relapsed,
}

stored_own! {
    CheckState { Pending => "pending", Present => "present", Absent => "absent", Relapsed => "relapsed" }
}

impl CheckState {
    pub fn to_proto(self) -> CheckItemState {
        match self {
            CheckState::Pending => CheckItemState::Pending,
            CheckState::Present => CheckItemState::Present,
            CheckState::Absent => CheckItemState::Absent,
            CheckState::Relapsed => CheckItemState::Relapsed,
        }
    }

    /// `None` for unspecified (any state).
    pub fn from_proto(state: CheckItemState) -> Option<CheckState> {
        CheckState::ALL.iter().copied().find(|candidate| candidate.to_proto() == state)
    }

    /// Still owes a confirmation: counts as overdue past the deadline.
    pub fn is_open(self) -> bool {
        matches!(self, CheckState::Pending | CheckState::Absent)
    }
}

/// A school marks a child. A mark may be corrected until the absence is confirmed.
pub fn mark(state: CheckState, present: bool) -> Result<CheckState, SupervisionRefusal> {
    match state {
        CheckState::Relapsed => refuse(Says::MarkAfterRelapse),
        _ => Ok(if present { CheckState::Present } else { CheckState::Absent }),
    }
}

/// A case worker's contact with a child marked absent. A confirmed absence is a relapse, which
/// the case's own rules then decide (only a monitored case relapses).
pub fn follow_up(state: CheckState, confirmed_absent: bool) -> Result<CheckState, SupervisionRefusal> {
    match state {
        CheckState::Absent => Ok(if confirmed_absent { CheckState::Relapsed } else { CheckState::Present }),
        CheckState::Pending => refuse(Says::NotMarkedAbsent),
        CheckState::Present => refuse(Says::MarkedPresent),
        CheckState::Relapsed => refuse(Says::AlreadyRelapsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> RegionCode {
        RegionCode::parse(text).unwrap()
    }

    #[test]
    fn semesters_are_a_year_and_a_half() {
        assert_eq!(check_semester(" 2027-spring ").unwrap(), "2027-spring");
        assert_eq!(check_semester("2027-autumn").unwrap(), "2027-autumn");
        assert!(check_semester("2027-summer").is_err());
        assert!(check_semester("27-spring").is_err());
        assert!(check_semester("spring").is_err());
    }

    #[test]
    fn supervision_climbs_county_city_province_and_stops() {
        assert_eq!(supervisor_of(&code("320102")), code("320100"));
        assert_eq!(escalate(&code("320100")), Some(code("320000")));
        assert_eq!(escalate(&code("320000")), None);
    }

    #[test]
    fn marks_can_be_corrected_until_the_absence_is_confirmed() {
        assert_eq!(mark(CheckState::Pending, false), Ok(CheckState::Absent));
        assert_eq!(mark(CheckState::Absent, true), Ok(CheckState::Present));
        assert_eq!(mark(CheckState::Present, false), Ok(CheckState::Absent));
        assert!(mark(CheckState::Relapsed, true).is_err());
    }

    #[test]
    fn only_an_absent_child_is_followed_up() {
        assert_eq!(follow_up(CheckState::Absent, true), Ok(CheckState::Relapsed));
        assert_eq!(follow_up(CheckState::Absent, false), Ok(CheckState::Present));
        for state in [CheckState::Pending, CheckState::Present, CheckState::Relapsed] {
            assert!(follow_up(state, true).is_err(), "{state:?}");
        }
        assert!(follow_up(CheckState::Pending, true).unwrap_err().to_string().starts_with("R13:"));
    }

    #[test]
    fn an_item_is_answered_then_closed() {
        assert!(answer(ItemState::Open).is_ok());
        assert!(answer(ItemState::Answered).is_ok());
        assert!(answer(ItemState::Closed).is_err());
        assert!(close(ItemState::Open).unwrap_err().to_string().contains("not been answered"));
        assert!(close(ItemState::Answered).is_ok());
        assert!(close(ItemState::Closed).is_err());
    }

    #[test]
    fn stored_names_are_pinned() {
        let names = |all: &[&'static str]| all.to_vec();
        assert_eq!(
            names(&WorkKind::ALL.iter().map(|kind| kind.as_stored()).collect::<Vec<_>>()),
            [
                "first_contact",
                "next_attempt",
                "follow_up",
                "semester_check",
                "handoff_decision",
                "report",
                "assistance"
            ]
        );
        assert_eq!(
            names(&ItemState::ALL.iter().map(|state| state.as_stored()).collect::<Vec<_>>()),
            ["open", "answered", "closed"]
        );
        assert_eq!(
            names(&CheckState::ALL.iter().map(|state| state.as_stored()).collect::<Vec<_>>()),
            ["pending", "present", "absent", "relapsed"]
        );
        for kind in WorkKind::ALL {
            assert_eq!(WorkKind::from_proto(kind.to_proto()), Some(*kind));
        }
        assert_eq!(WorkKind::from_proto(OverdueKind::Unspecified), None);
    }

    #[test]
    fn an_overdue_reason_names_the_work_in_both_languages() {
        let reason = WorkKind::Due(DueKind::FirstContact).overdue_reason(NaiveDate::from_ymd_opt(2027, 3, 8).unwrap());
        assert_eq!(
            reason.en(),
            "R12: first contact after confirmation was due on 2027-03-08 and is overdue past the supervision threshold"
        );
        assert!(reason.zh().starts_with("R12：确认辍学后的首次联系应于 2027-03-08 前完成"));
    }
}
