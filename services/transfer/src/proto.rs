//! The contract's enums and messages, to and from the domain's types.

use nol_pii::Sex;
use nol_proto::v1::{ChildSummary, HandoffDirection, HandoffState};

use crate::domain::{Direction, Handoff, State};

pub fn direction_to_proto(direction: Direction) -> HandoffDirection {
    match direction {
        Direction::Outgoing => HandoffDirection::Outgoing,
        Direction::Incoming => HandoffDirection::Incoming,
    }
}

/// `None` for "not given" (both directions, as a list filter).
pub fn direction_from_proto(direction: HandoffDirection) -> Option<Direction> {
    match direction {
        HandoffDirection::Unspecified => None,
        HandoffDirection::Outgoing => Some(Direction::Outgoing),
        HandoffDirection::Incoming => Some(Direction::Incoming),
    }
}

pub fn state_to_proto(state: State) -> HandoffState {
    match state {
        State::Requested => HandoffState::Requested,
        State::Delivered => HandoffState::Delivered,
        State::Accepted => HandoffState::Accepted,
    }
}

/// `None` for "not given" (any state, as a list filter).
pub fn state_from_proto(state: HandoffState) -> Option<State> {
    match state {
        HandoffState::Unspecified => None,
        HandoffState::Requested => Some(State::Requested),
        HandoffState::Delivered => Some(State::Delivered),
        HandoffState::Accepted => Some(State::Accepted),
    }
}

/// A child's sex as the contract numbers it; anything but male or female is "not known".
pub fn sex_from_proto(sex: i32) -> Option<Sex> {
    match nol_proto::v1::Sex::try_from(sex) {
        Ok(nol_proto::v1::Sex::Male) => Some(Sex::Male),
        Ok(nol_proto::v1::Sex::Female) => Some(Sex::Female),
        _ => None,
    }
}

pub fn sex_to_proto(sex: Option<Sex>) -> nol_proto::v1::Sex {
    match sex {
        None => nol_proto::v1::Sex::Unspecified,
        Some(Sex::Male) => nol_proto::v1::Sex::Male,
        Some(Sex::Female) => nol_proto::v1::Sex::Female,
    }
}

pub fn handoff_to_proto(handoff: &Handoff) -> nol_proto::v1::Handoff {
    let time = nol_runtime::time::optional_timestamp;
    nol_proto::v1::Handoff {
        handoff_id: handoff.id.to_string(),
        direction: direction_to_proto(handoff.direction) as i32,
        state: state_to_proto(handoff.state) as i32,
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        reason: handoff.reason.clone(),
        child: Some(ChildSummary {
            full_name: handoff.child.full_name.clone(),
            resident_id_masked: handoff.child.resident_id_masked.clone(),
            sex: sex_to_proto(handoff.child.sex) as i32,
            birth_date: handoff.child.birth_date.format("%Y-%m-%d").to_string(),
            hukou_region_code: handoff.child.hukou_region.clone(),
            resident_id: String::new(),
        }),
        requested_by: handoff.requested_by.clone(),
        request_time: time(Some(handoff.requested_at)),
        deliver_time: time(handoff.delivered_at),
        accepted_by: handoff.accepted_by.clone().unwrap_or_default(),
        accept_time: time(handoff.accepted_at),
        escalate_time: time(handoff.escalated_at),
        escalated_to_region_code: handoff.escalated_to.map(|region| region.to_string()).unwrap_or_default(),
        resend_count: handoff.resend_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_value_maps_both_ways() {
        for direction in [Direction::Outgoing, Direction::Incoming] {
            assert_eq!(direction_from_proto(direction_to_proto(direction)), Some(direction));
        }
        for state in [State::Requested, State::Delivered, State::Accepted] {
            assert_eq!(state_from_proto(state_to_proto(state)), Some(state));
        }
        for sex in [None, Some(Sex::Male), Some(Sex::Female)] {
            assert_eq!(sex_from_proto(sex_to_proto(sex) as i32), sex);
        }
        assert_eq!(sex_from_proto(7), None);
    }
}
