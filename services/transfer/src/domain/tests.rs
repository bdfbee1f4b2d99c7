use super::*;

fn code(text: &str) -> RegionCode {
    RegionCode::parse(text).unwrap()
}

fn handoff(direction: Direction, state: State) -> Handoff {
    Handoff {
        id: Uuid::nil(),
        direction,
        state,
        case_id: Uuid::nil(),
        origin: code("320102"),
        destination: code("341221"),
        reason: "家庭已返回户籍地".into(),
        child: HandedChild {
            full_name: "张三".into(),
            resident_id_masked: "341221********0012".into(),
            sex: Some(Sex::Male),
            birth_date: NaiveDate::from_ymd_opt(2014, 3, 1).unwrap(),
            hukou_region: "341221".into(),
        },
        sealed_dossier: None,
        trace_context: HashMap::new(),
        requested_by: "caseworker@320102".into(),
        requested_at: DateTime::UNIX_EPOCH,
        delivered_at: None,
        accepted_by: None,
        accepted_at: None,
        request_event_id: None,
        resend_count: 0,
        escalated_at: None,
        escalated_to: None,
        rejection: None,
        cancellation: None,
        completed_at: None,
        destination_case_id: None,
        notice_number: None,
        notice_sha256: None,
        dossier_view: None,
    }
}

#[test]
fn a_case_goes_to_another_region_only_when_open() {
    assert_eq!(check_request(&code("320102"), CaseStatus::Open, &code("341221")), Ok(()));
    let same = check_request(&code("320102"), CaseStatus::Open, &code("320102")).unwrap_err();
    assert_eq!(same, Refusal::SameRegion { region: code("320102") });
    assert!(same.to_string().contains("already owned by"), "{same}");
    assert_eq!(
        check_request(&code("320102"), CaseStatus::HandoffPending, &code("341221")),
        Err(Refusal::AlreadyUnderWay)
    );
    assert_eq!(
        check_request(&code("320102"), CaseStatus::HandedOver, &code("341221")),
        Err(Refusal::CaseNotOpen { standing: CaseStanding::HandedOver })
    );
}

#[test]
fn accept_once_and_only_incoming_and_undecided() {
    assert_eq!(handoff(Direction::Incoming, State::Delivered).check_accept(), Ok(()));
    let mut accepted = handoff(Direction::Incoming, State::Accepted);
    accepted.accepted_by = Some("caseworker@341221".into());
    let refusal = accepted.check_accept().unwrap_err();
    assert_eq!(refusal, Refusal::AlreadyAccepted { by: Some("caseworker@341221".into()), at: None });
    assert_eq!(refusal.to_string(), "R11: this hand-off was already accepted by caseworker@341221 at ");
    assert_eq!(handoff(Direction::Outgoing, State::Delivered).check_accept(), Err(Refusal::NotIncoming));
    assert_eq!(
        handoff(Direction::Incoming, State::Cancelled).check_accept(),
        Err(Refusal::Decided { state: State::Cancelled })
    );
    assert!(handoff(Direction::Incoming, State::Accepting).check_accept().is_err(), "accepting is accepted");
}

#[test]
fn only_the_destination_rejects_and_only_the_origin_withdraws_undecided_hand_offs() {
    assert_eq!(handoff(Direction::Incoming, State::Delivered).check_reject(), Ok(()));
    assert!(handoff(Direction::Incoming, State::Accepting).check_reject().is_err());
    assert_eq!(handoff(Direction::Outgoing, State::Delivered).check_reject(), Err(Refusal::NotIncoming));
    assert_eq!(handoff(Direction::Outgoing, State::Requested).check_cancel(), Ok(()));
    assert_eq!(handoff(Direction::Outgoing, State::Delivered).check_cancel(), Ok(()));
    let accepted = handoff(Direction::Outgoing, State::Accepted).check_cancel().unwrap_err();
    assert_eq!(accepted.to_string(), "R11: this hand-off was already accepted");
    assert_eq!(handoff(Direction::Incoming, State::Delivered).check_cancel(), Err(Refusal::NotOutgoing));
}

#[test]
fn the_destination_decides_between_a_cancel_and_an_accept() {
    assert!(cancel_wins(State::Delivered));
    assert!(cancel_wins(State::Requested));
    assert!(!cancel_wins(State::Accepting), "the case is being opened: the accept came first");
    assert!(!cancel_wins(State::Accepted));
    assert_eq!(handoff(Direction::Incoming, State::Accepting).answer(), Answer::Receipt);
    assert_eq!(handoff(Direction::Incoming, State::Accepted).answer(), Answer::Acceptance);
    assert_eq!(handoff(Direction::Incoming, State::Rejected).answer(), Answer::Rejection);
    assert_eq!(handoff(Direction::Incoming, State::Cancelled).answer(), Answer::Cancellation);
}

#[test]
fn own_region_and_escalation_follow_the_direction_and_the_tree() {
    assert_eq!(handoff(Direction::Outgoing, State::Requested).own_region(), code("320102"));
    assert_eq!(handoff(Direction::Incoming, State::Delivered).own_region(), code("341221"));
    assert_eq!(handoff(Direction::Outgoing, State::Requested).escalation_target(), code("320100"));
}

#[test]
fn steps_only_move_forward_and_final_states_stay() {
    assert_eq!(State::Requested.advance_to(State::Delivered), Some(State::Delivered));
    assert_eq!(State::Requested.advance_to(State::Accepted), Some(State::Accepted));
    assert_eq!(State::Accepted.advance_to(State::Delivered), None);
    assert_eq!(State::Delivered.advance_to(State::Delivered), None);
    assert_eq!(State::Accepted.advance_to(State::Completed), Some(State::Completed));
    assert_eq!(State::Rejected.advance_to(State::Completed), None);
    assert_eq!(State::Cancelled.advance_to(State::Accepted), None);
    assert_eq!(State::Delivered.advance_to(State::Rejected), Some(State::Rejected));
}
