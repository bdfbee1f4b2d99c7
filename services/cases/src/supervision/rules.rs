//! The rules of supervision (R12) and the semester-start check (R13), without I/O.

use nol_proto::v1::{CheckItemState, OverdueKind, SupervisionState};
use nol_region::{RegionCode, RegionLevel};

use crate::deadlines::DueKind;

/// A semester: `YYYY-spring` or `YYYY-autumn`, years 2000–2100.
pub fn check_semester(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    let (year, half) = text.split_once('-').ok_or("must be YYYY-spring or YYYY-autumn")?;
    let year: u16 = year.parse().map_err(|_| "must be YYYY-spring or YYYY-autumn")?;
    if !(2000..=2100).contains(&year) {
        return Err("the year must be between 2000 and 2100");
    }
    if !matches!(half, "spring" | "autumn") {
        return Err("must be YYYY-spring or YYYY-autumn");
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

/// The kinds of overdue work, stored by name.
pub fn overdue_kind_name(kind: OverdueKind) -> Option<&'static str> {
    match kind {
        OverdueKind::Unspecified => None,
        OverdueKind::FirstContact => Some(DueKind::FirstContact.as_str()),
        OverdueKind::NextAttempt => Some(DueKind::NextAttempt.as_str()),
        OverdueKind::FollowUp => Some(DueKind::FollowUp.as_str()),
        OverdueKind::SemesterCheck => Some(SEMESTER_CHECK),
    }
}

pub const SEMESTER_CHECK: &str = "semester_check";

pub fn overdue_kind(name: &str) -> OverdueKind {
    match DueKind::parse(name) {
        Some(DueKind::FirstContact) => OverdueKind::FirstContact,
        Some(DueKind::NextAttempt) => OverdueKind::NextAttempt,
        Some(DueKind::FollowUp) => OverdueKind::FollowUp,
        None if name == SEMESTER_CHECK => OverdueKind::SemesterCheck,
        None => OverdueKind::Unspecified,
    }
}

/// What overdue work is, in words, for the supervising bureau.
pub fn overdue_reason(kind: &str, due_on: chrono::NaiveDate) -> String {
    let what = match DueKind::parse(kind) {
        Some(DueKind::FirstContact) => "first contact after confirmation",
        Some(DueKind::NextAttempt) => "the next persuasion attempt",
        Some(DueKind::FollowUp) => "the follow-up of a deferred or suspended case",
        None => "confirming the child at the semester-start check",
    };
    format!("R12: {what} was due on {due_on} and is overdue past the supervision threshold")
}

/// Supervision item states, stored by name.
pub fn supervision_state_name(state: SupervisionState) -> Option<&'static str> {
    match state {
        SupervisionState::Unspecified => None,
        SupervisionState::Open => Some("open"),
        SupervisionState::Answered => Some("answered"),
        SupervisionState::Closed => Some("closed"),
    }
}

pub fn supervision_state(name: &str) -> SupervisionState {
    match name {
        "open" => SupervisionState::Open,
        "answered" => SupervisionState::Answered,
        "closed" => SupervisionState::Closed,
        _ => SupervisionState::Unspecified,
    }
}

/// A supervision item may be answered while open or answered (a better answer replaces the first),
/// and closed only once answered.
pub fn answer(state: &str) -> Result<(), String> {
    match state {
        "open" | "answered" => Ok(()),
        _ => Err("R12: the supervision item is closed; it takes no more answers".to_owned()),
    }
}

pub fn close(state: &str) -> Result<(), String> {
    match state {
        "answered" => Ok(()),
        "open" => Err("R12: the supervision item has not been answered by the lower bureau yet".to_owned()),
        _ => Err("R12: the supervision item is already closed".to_owned()),
    }
}

/// A child's place on a semester check, stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Pending,
    Present,
    Absent,
    Relapsed,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Present => "present",
            ItemState::Absent => "absent",
            ItemState::Relapsed => "relapsed",
        }
    }

    pub fn parse(text: &str) -> Option<ItemState> {
        [ItemState::Pending, ItemState::Present, ItemState::Absent, ItemState::Relapsed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub fn to_proto(self) -> CheckItemState {
        match self {
            ItemState::Pending => CheckItemState::Pending,
            ItemState::Present => CheckItemState::Present,
            ItemState::Absent => CheckItemState::Absent,
            ItemState::Relapsed => CheckItemState::Relapsed,
        }
    }

    pub fn from_proto(state: CheckItemState) -> Option<ItemState> {
        match state {
            CheckItemState::Unspecified => None,
            CheckItemState::Pending => Some(ItemState::Pending),
            CheckItemState::Present => Some(ItemState::Present),
            CheckItemState::Absent => Some(ItemState::Absent),
            CheckItemState::Relapsed => Some(ItemState::Relapsed),
        }
    }

    /// Still owes a confirmation: counts as overdue past the deadline.
    pub fn is_open(self) -> bool {
        matches!(self, ItemState::Pending | ItemState::Absent)
    }
}

/// A school marks a child. A mark may be corrected until the absence is confirmed.
pub fn mark(state: ItemState, present: bool) -> Result<ItemState, String> {
    match state {
        ItemState::Relapsed => {
            Err("R13: the absence was confirmed and the case reopened as a relapse; work the case instead".to_owned())
        }
        _ => Ok(if present { ItemState::Present } else { ItemState::Absent }),
    }
}

/// A case worker's contact with a child marked absent.
pub fn follow_up(state: ItemState, confirmed_absent: bool) -> Result<ItemState, String> {
    match state {
        ItemState::Absent => Ok(if confirmed_absent { ItemState::Relapsed } else { ItemState::Present }),
        ItemState::Pending => Err("R13: the school has not marked the child absent".to_owned()),
        ItemState::Present => Err("R13: the school marked the child present; nothing to follow up".to_owned()),
        ItemState::Relapsed => Err("R13: the absence was already confirmed and the case reopened".to_owned()),
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
        assert_eq!(mark(ItemState::Pending, false), Ok(ItemState::Absent));
        assert_eq!(mark(ItemState::Absent, true), Ok(ItemState::Present));
        assert_eq!(mark(ItemState::Present, false), Ok(ItemState::Absent));
        assert!(mark(ItemState::Relapsed, true).is_err());
    }

    #[test]
    fn only_an_absent_child_is_followed_up() {
        assert_eq!(follow_up(ItemState::Absent, true), Ok(ItemState::Relapsed));
        assert_eq!(follow_up(ItemState::Absent, false), Ok(ItemState::Present));
        for state in [ItemState::Pending, ItemState::Present, ItemState::Relapsed] {
            assert!(follow_up(state, true).is_err(), "{state:?}");
        }
    }

    #[test]
    fn an_item_is_answered_then_closed() {
        assert!(answer("open").is_ok());
        assert!(answer("answered").is_ok());
        assert!(answer("closed").is_err());
        assert!(close("open").unwrap_err().contains("not been answered"));
        assert!(close("answered").is_ok());
        assert!(close("closed").is_err());
    }
}
