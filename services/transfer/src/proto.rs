//! The contract's enums and messages, to and from the domain's types.

use nol_pii::Sex;
use nol_proto::v1::{ChildSummary, HandoffDirection, HandoffDossierView, HandoffRejectReason, HandoffState};
use prost::Message;

use crate::domain::{Direction, HandedChild, Handoff, RejectReason, State, TransferIn, TransferInState};

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

/// The contract's state: accepting reads as received (the destination's case is not open yet).
pub fn state_to_proto(state: State) -> HandoffState {
    match state {
        State::Requested => HandoffState::Requested,
        State::Delivered | State::Accepting => HandoffState::Delivered,
        State::Accepted => HandoffState::Accepted,
        State::Rejected => HandoffState::Rejected,
        State::Cancelled => HandoffState::Cancelled,
        State::Completed => HandoffState::Completed,
    }
}

/// `None` for "not given" (any state, as a list filter).
pub fn state_from_proto(state: HandoffState) -> Option<State> {
    match state {
        HandoffState::Unspecified => None,
        HandoffState::Requested => Some(State::Requested),
        HandoffState::Delivered => Some(State::Delivered),
        HandoffState::Accepted => Some(State::Accepted),
        HandoffState::Rejected => Some(State::Rejected),
        HandoffState::Cancelled => Some(State::Cancelled),
        HandoffState::Completed => Some(State::Completed),
    }
}

pub fn reject_reason_to_proto(reason: RejectReason) -> HandoffRejectReason {
    match reason {
        RejectReason::ChildNotFound => HandoffRejectReason::ChildNotFound,
        RejectReason::HukouNotHere => HandoffRejectReason::HukouNotHere,
        RejectReason::AlreadyHasCase => HandoffRejectReason::AlreadyHasCase,
        RejectReason::DataWrong => HandoffRejectReason::DataWrong,
        RejectReason::Other => HandoffRejectReason::Other,
    }
}

/// `None` for "not given" or an unknown number.
pub fn reject_reason_from_proto(reason: i32) -> Option<RejectReason> {
    match HandoffRejectReason::try_from(reason).ok()? {
        HandoffRejectReason::Unspecified => None,
        HandoffRejectReason::ChildNotFound => Some(RejectReason::ChildNotFound),
        HandoffRejectReason::HukouNotHere => Some(RejectReason::HukouNotHere),
        HandoffRejectReason::AlreadyHasCase => Some(RejectReason::AlreadyHasCase),
        HandoffRejectReason::DataWrong => Some(RejectReason::DataWrong),
        HandoffRejectReason::Other => Some(RejectReason::Other),
    }
}

pub fn transfer_in_state_to_proto(state: TransferInState) -> nol_proto::v1::TransferInState {
    match state {
        TransferInState::Requested => nol_proto::v1::TransferInState::Requested,
        TransferInState::Pending => nol_proto::v1::TransferInState::Pending,
        TransferInState::Approved => nol_proto::v1::TransferInState::Approved,
        TransferInState::Declined => nol_proto::v1::TransferInState::Declined,
    }
}

/// `None` for "not given" (any state, as a list filter).
pub fn transfer_in_state_from_proto(state: nol_proto::v1::TransferInState) -> Option<TransferInState> {
    use nol_proto::v1::TransferInState as Wire;
    match state {
        Wire::Unspecified => None,
        Wire::Requested => Some(TransferInState::Requested),
        Wire::Pending => Some(TransferInState::Pending),
        Wire::Approved => Some(TransferInState::Approved),
        Wire::Declined => Some(TransferInState::Declined),
    }
}

fn child_message(child: &HandedChild) -> ChildSummary {
    ChildSummary {
        full_name: child.full_name.clone(),
        resident_id_masked: child.resident_id_masked.clone(),
        sex: sex_to_proto(child.sex) as i32,
        // A masked view: the year of birth, not the date (with the mask's last four characters
        // the date would rebuild the number).
        birth_date: String::new(),
        birth_year: chrono::Datelike::year(&child.birth_date),
        hukou_region_code: child.hukou_region.clone(),
        resident_id: String::new(),
    }
}

pub fn transfer_in_to_proto(request: &TransferIn) -> nol_proto::v1::TransferIn {
    let time = nol_runtime::time::optional_timestamp;
    nol_proto::v1::TransferIn {
        request_id: request.id.to_string(),
        direction: direction_to_proto(request.direction) as i32,
        state: transfer_in_state_to_proto(request.state) as i32,
        asking_region_code: request.asking_region.to_string(),
        owner_region_code: request.owner_region.to_string(),
        reason: request.reason.clone(),
        case_id: request.case_id.map(|id| id.to_string()).unwrap_or_default(),
        child: request.child.as_ref().map(child_message),
        requested_by: request.requested_by.clone(),
        request_time: time(Some(request.requested_at)),
        handoff_id: request.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
        decline_reason: request.decline_reason.clone().unwrap_or_default(),
        decided_by: request.decided_by.clone().unwrap_or_default(),
        decide_time: time(request.decided_at),
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
    let rejection = handoff.rejection.as_ref();
    let cancellation = handoff.cancellation.as_ref();
    nol_proto::v1::Handoff {
        handoff_id: handoff.id.to_string(),
        direction: direction_to_proto(handoff.direction) as i32,
        state: state_to_proto(handoff.state) as i32,
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        reason: handoff.reason.clone(),
        child: Some(child_message(&handoff.child)),
        requested_by: handoff.requested_by.clone(),
        request_time: time(Some(handoff.requested_at)),
        deliver_time: time(handoff.delivered_at),
        accepted_by: handoff.accepted_by.clone().unwrap_or_default(),
        accept_time: time(handoff.accepted_at),
        escalate_time: time(handoff.escalated_at),
        escalated_to_region_code: handoff.escalated_to.map(|region| region.to_string()).unwrap_or_default(),
        resend_count: handoff.resend_count,
        reject_reason: rejection.map(|rejection| reject_reason_to_proto(rejection.reason) as i32).unwrap_or(0),
        reject_note: rejection.map(|rejection| rejection.note.clone()).unwrap_or_default(),
        rejected_by: rejection.map(|rejection| rejection.by.clone()).unwrap_or_default(),
        reject_time: time(rejection.and_then(|rejection| rejection.at)),
        linked_case_id: rejection
            .and_then(|rejection| rejection.linked_case_id)
            .map(|id| id.to_string())
            .unwrap_or_default(),
        cancelled_by: cancellation.map(|cancel| cancel.by.clone()).unwrap_or_default(),
        cancel_reason: cancellation.map(|cancel| cancel.reason.clone()).unwrap_or_default(),
        cancel_time: time(cancellation.and_then(|cancel| cancel.at)),
        cancel_requested: cancellation.is_some_and(|cancel| cancel.at.is_none()),
        complete_time: time(handoff.completed_at),
        destination_case_id: handoff.destination_case_id.map(|id| id.to_string()).unwrap_or_default(),
        notice_number: handoff.notice_number.clone().unwrap_or_default(),
        notice_sha256: handoff.notice_sha256.as_deref().map(crate::notice::hex).unwrap_or_default(),
        dossier: handoff.dossier_view.as_deref().and_then(|bytes| HandoffDossierView::decode(bytes).ok()),
        // Set by the service where it applies (an accepted incoming hand-off, R11).
        invite_coworker: false,
        coworker_assistance_id: String::new(),
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
        for state in
            [State::Requested, State::Delivered, State::Accepted, State::Rejected, State::Cancelled, State::Completed]
        {
            assert_eq!(state_from_proto(state_to_proto(state)), Some(state));
        }
        assert_eq!(state_to_proto(State::Accepting), HandoffState::Delivered, "accepting reads as received");
        for reason in [
            RejectReason::ChildNotFound,
            RejectReason::HukouNotHere,
            RejectReason::AlreadyHasCase,
            RejectReason::DataWrong,
            RejectReason::Other,
        ] {
            assert_eq!(reject_reason_from_proto(reject_reason_to_proto(reason) as i32), Some(reason));
        }
        assert_eq!(reject_reason_from_proto(0), None);
        for sex in [None, Some(Sex::Male), Some(Sex::Female)] {
            assert_eq!(sex_from_proto(sex_to_proto(sex) as i32), sex);
        }
        assert_eq!(sex_from_proto(7), None);
    }
}
