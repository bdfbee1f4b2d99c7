//! The bi-monthly report's workflow (双月报, R16), like DHIS2's data approval up the tree: the
//! county drafts and submits, the city approves or returns, the province accepts; an approver can
//! re-open. Who may take which step, and which state it reaches. No I/O.

use nol_auth::{Caller, Denied, Role};
use nol_messages::vocab::Action as Doing;
use nol_messages::{ReportStateWord, Reporting as Says};
use nol_proto::v1::ReportState;
use nol_region::{RegionCode, RegionLevel};

/// Where a county's report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Draft,
    Submitted,
    Returned,
    Approved,
    Accepted,
}

impl State {
    pub const ALL: [State; 5] = [State::Draft, State::Submitted, State::Returned, State::Approved, State::Accepted];

    pub fn as_stored(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Submitted => "submitted",
            State::Returned => "returned",
            State::Approved => "approved",
            State::Accepted => "accepted",
        }
    }

    pub fn from_stored(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_stored() == text)
    }

    pub fn to_proto(self) -> ReportState {
        match self {
            State::Draft => ReportState::Draft,
            State::Submitted => ReportState::Submitted,
            State::Returned => ReportState::Returned,
            State::Approved => ReportState::Approved,
            State::Accepted => ReportState::Accepted,
        }
    }

    /// Counted in the sums of the city and the province.
    pub fn counts_up(self) -> bool {
        matches!(self, State::Approved | State::Accepted)
    }

    /// In the county's hands still: a report in it by the due date is not late.
    pub fn with_county(self) -> bool {
        matches!(self, State::Draft | State::Returned)
    }
}

/// How a state reads in a message.
pub fn word(state: Option<State>) -> ReportStateWord {
    match state {
        None => ReportStateWord::NotDrafted,
        Some(State::Draft) => ReportStateWord::Draft,
        Some(State::Submitted) => ReportStateWord::Submitted,
        Some(State::Returned) => ReportStateWord::Returned,
        Some(State::Approved) => ReportStateWord::Approved,
        Some(State::Accepted) => ReportStateWord::Accepted,
    }
}

/// A step of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Draft,
    Submit,
    Approve,
    Return,
    Accept,
    Reopen,
}

impl Step {
    pub fn as_stored(self) -> &'static str {
        match self {
            Step::Draft => "draft",
            Step::Submit => "submit",
            Step::Approve => "approve",
            Step::Return => "return",
            Step::Accept => "accept",
            Step::Reopen => "reopen",
        }
    }
}

/// A step's name in Chinese, from its stored name.
pub fn step_zh(action: &str) -> &'static str {
    match action {
        "draft" => "起草",
        "submit" => "上报",
        "approve" => "审核通过",
        "return" => "退回",
        "accept" => "接收",
        "reopen" => "重新打开",
        _ => "操作",
    }
}

/// A step refused for the report's state (FAILED_PRECONDITION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrder(pub Says);

/// The state a step reaches from `state` (`None`: not drafted yet).
pub fn next(state: Option<State>, step: Step) -> Result<State, OutOfOrder> {
    let is = |text: ReportStateWord| text.zh().to_owned();
    match (step, state) {
        (Step::Draft, None | Some(State::Draft | State::Returned)) => Ok(state.unwrap_or(State::Draft)),
        (Step::Draft, Some(other)) => Err(OutOfOrder(Says::NotEditable { state: is(word(Some(other))) })),
        (Step::Submit, Some(State::Draft | State::Returned)) => Ok(State::Submitted),
        (Step::Submit, other) => Err(OutOfOrder(Says::NotSubmittable { state: is(word(other)) })),
        (Step::Approve, Some(State::Submitted)) => Ok(State::Approved),
        (Step::Return, Some(State::Submitted)) => Ok(State::Returned),
        (Step::Approve | Step::Return, other) => Err(OutOfOrder(Says::NotSubmitted { state: is(word(other)) })),
        (Step::Accept, Some(State::Approved)) => Ok(State::Accepted),
        (Step::Accept, other) => Err(OutOfOrder(Says::NotApproved { state: is(word(other)) })),
        (Step::Reopen, Some(State::Approved | State::Accepted)) => Ok(State::Returned),
        (Step::Reopen, other) => Err(OutOfOrder(Says::NotReopenable { state: is(word(other)) })),
    }
}

/// The bureau that approves a county's report: the level above it.
pub fn approver_of(county: &RegionCode) -> RegionCode {
    county.parent().unwrap_or_else(|| county.province())
}

/// Whether `caller` may take `step` on `county`'s report in `state` (scope is checked before).
pub fn may(caller: &Caller, county: &RegionCode, step: Step, state: Option<State>) -> Result<(), Denied> {
    match step {
        Step::Draft | Step::Submit => {
            caller.require_role(&[Role::Caseworker], Doing::DraftReports)?;
            if caller.region != *county {
                return Err(Denied::Refused(Says::OwnCountyOnly.into()));
            }
        }
        Step::Approve | Step::Return => {
            caller.require_role(&[Role::Supervisor], Doing::ApproveReports)?;
            let approver = approver_of(county);
            if caller.region != approver {
                return Err(Denied::Refused(Says::ApproverOnly { approver: approver.full_name() }.into()));
            }
        }
        Step::Accept => {
            caller.require_role(&[Role::Supervisor], Doing::ApproveReports)?;
            if caller.region.level() != RegionLevel::Province {
                return Err(Denied::Refused(Says::ProvinceOnly.into()));
            }
        }
        Step::Reopen => {
            caller.require_role(&[Role::Supervisor], Doing::ApproveReports)?;
            let province = caller.region.level() == RegionLevel::Province;
            let allowed = match state {
                Some(State::Accepted) => province,
                _ => province || caller.region == approver_of(county),
            };
            if !allowed {
                return Err(Denied::Refused(Says::ReopenNotYours.into()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(region: &str, role: Role) -> Caller {
        Caller::for_tests(RegionCode::parse(region).unwrap(), role)
    }

    #[test]
    fn the_report_goes_up_and_can_come_back() {
        let mut state = next(None, Step::Draft).unwrap();
        assert_eq!(state, State::Draft);
        state = next(Some(state), Step::Submit).unwrap();
        assert_eq!(next(Some(state), Step::Submit), Err(OutOfOrder(Says::NotSubmittable { state: "已上报".into() })));
        assert!(next(Some(state), Step::Draft).is_err(), "a submitted report is not edited");
        assert_eq!(next(Some(state), Step::Return), Ok(State::Returned));
        state = next(Some(state), Step::Approve).unwrap();
        assert!(next(Some(state), Step::Draft).is_err(), "an approved report is not edited");
        assert!(next(Some(state), Step::Approve).is_err());
        state = next(Some(state), Step::Accept).unwrap();
        assert_eq!(state, State::Accepted);
        assert_eq!(next(Some(state), Step::Reopen), Ok(State::Returned));
        assert!(next(None, Step::Submit).is_err());
        assert!(next(Some(State::Submitted), Step::Accept).is_err(), "the city approves first");
    }

    #[test]
    fn each_level_takes_its_own_steps() {
        let county = RegionCode::parse("320102").unwrap();
        let own = caller("320102", Role::Caseworker);
        assert!(may(&own, &county, Step::Submit, Some(State::Draft)).is_ok());
        assert!(may(&own, &county, Step::Approve, Some(State::Submitted)).is_err(), "a county does not approve");
        let city = caller("320100", Role::Supervisor);
        assert!(may(&city, &county, Step::Approve, Some(State::Submitted)).is_ok());
        assert!(may(&city, &county, Step::Submit, Some(State::Draft)).is_err());
        assert!(may(&city, &county, Step::Accept, Some(State::Approved)).is_err(), "the province accepts");
        assert!(may(&city, &county, Step::Reopen, Some(State::Approved)).is_ok());
        assert!(may(&city, &county, Step::Reopen, Some(State::Accepted)).is_err());
        let province = caller("320000", Role::Supervisor);
        assert!(may(&province, &county, Step::Accept, Some(State::Approved)).is_ok());
        assert!(may(&province, &county, Step::Approve, Some(State::Submitted)).is_err(), "the city approves");
        assert!(may(&province, &county, Step::Reopen, Some(State::Accepted)).is_ok());
        let school = caller("320102", Role::School);
        assert!(matches!(may(&school, &county, Step::Draft, None), Err(Denied::Role { .. })));
    }
}
