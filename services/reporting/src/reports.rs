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

/// The state a step reaches from `state` (`None`: not drafted yet). A semester report has no
/// city approval: the province returns or accepts it as submitted.
pub fn next(state: Option<State>, step: Step, semester: bool) -> Result<State, OutOfOrder> {
    let is = |text: ReportStateWord| text.zh().to_owned();
    match (step, state) {
        (Step::Approve, _) if semester => Err(OutOfOrder(Says::SemesterNoApproval)),
        (Step::Accept, Some(State::Submitted)) if semester => Ok(State::Accepted),
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
/// A semester report is a city's: the city drafts and submits it, the province decides it.
pub fn may(
    caller: &Caller,
    county: &RegionCode,
    step: Step,
    state: Option<State>,
    semester: bool,
) -> Result<(), Denied> {
    if semester {
        return may_semester(caller, county, step);
    }
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

fn may_semester(caller: &Caller, city: &RegionCode, step: Step) -> Result<(), Denied> {
    caller.require_role(
        &[Role::Supervisor],
        if matches!(step, Step::Draft | Step::Submit) { Doing::DraftReports } else { Doing::ApproveReports },
    )?;
    match step {
        Step::Draft | Step::Submit if caller.region != *city => Err(Denied::Refused(Says::OwnCityOnly.into())),
        Step::Draft | Step::Submit => Ok(()),
        Step::Approve | Step::Return | Step::Accept | Step::Reopen
            if caller.region.level() != RegionLevel::Province =>
        {
            Err(Denied::Refused(Says::ProvinceOnly.into()))
        }
        Step::Approve | Step::Return | Step::Accept | Step::Reopen => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(region: &str, role: Role) -> Caller {
        Caller::for_tests(RegionCode::parse(region).unwrap(), role)
    }

    #[test]
    fn the_report_goes_up_and_can_come_back() {
        let mut state = next(None, Step::Draft, false).unwrap();
        assert_eq!(state, State::Draft);
        state = next(Some(state), Step::Submit, false).unwrap();
        assert_eq!(
            next(Some(state), Step::Submit, false),
            Err(OutOfOrder(Says::NotSubmittable { state: "已上报".into() }))
        );
        assert!(next(Some(state), Step::Draft, false).is_err(), "a submitted report is not edited");
        assert_eq!(next(Some(state), Step::Return, false), Ok(State::Returned));
        state = next(Some(state), Step::Approve, false).unwrap();
        assert!(next(Some(state), Step::Draft, false).is_err(), "an approved report is not edited");
        assert!(next(Some(state), Step::Approve, false).is_err());
        state = next(Some(state), Step::Accept, false).unwrap();
        assert_eq!(state, State::Accepted);
        assert_eq!(next(Some(state), Step::Reopen, false), Ok(State::Returned));
        assert!(next(None, Step::Submit, false).is_err());
        assert!(next(Some(State::Submitted), Step::Accept, false).is_err(), "the city approves first");
    }

    #[test]
    fn each_level_takes_its_own_steps() {
        let county = RegionCode::parse("320102").unwrap();
        let own = caller("320102", Role::Caseworker);
        assert!(may(&own, &county, Step::Submit, Some(State::Draft), false).is_ok());
        assert!(may(&own, &county, Step::Approve, Some(State::Submitted), false).is_err(), "a county does not approve");
        let city = caller("320100", Role::Supervisor);
        assert!(may(&city, &county, Step::Approve, Some(State::Submitted), false).is_ok());
        assert!(may(&city, &county, Step::Submit, Some(State::Draft), false).is_err());
        assert!(may(&city, &county, Step::Accept, Some(State::Approved), false).is_err(), "the province accepts");
        assert!(may(&city, &county, Step::Reopen, Some(State::Approved), false).is_ok());
        assert!(may(&city, &county, Step::Reopen, Some(State::Accepted), false).is_err());
        let province = caller("320000", Role::Supervisor);
        assert!(may(&province, &county, Step::Accept, Some(State::Approved), false).is_ok());
        assert!(may(&province, &county, Step::Approve, Some(State::Submitted), false).is_err(), "the city approves");
        assert!(may(&province, &county, Step::Reopen, Some(State::Accepted), false).is_ok());
        let nanjing = RegionCode::parse("320100").unwrap();
        assert!(
            may(&city, &nanjing, Step::Submit, Some(State::Draft), true).is_ok(),
            "a city submits its semester report"
        );
        assert!(may(&province, &nanjing, Step::Accept, Some(State::Submitted), true).is_ok());
        assert!(may(&city, &nanjing, Step::Accept, Some(State::Submitted), true).is_err());
        assert!(may(&own, &nanjing, Step::Draft, None, true).is_err(), "a county does not write it");
        assert_eq!(next(Some(State::Submitted), Step::Accept, true), Ok(State::Accepted));
        assert!(next(Some(State::Submitted), Step::Approve, true).is_err());
        let school = caller("320102", Role::School);
        assert!(matches!(may(&school, &county, Step::Draft, None, false), Err(Denied::Role { .. })));
    }
}
