//! Hand-offs between regions (R11) on every path, on the real stack: the destination refuses
//! with a coded reason, the origin withdraws, the accept finds the child's case already there,
//! two requests or a request and a status change race for one case, a region that found the
//! child asks for the case, the written notice and the dossier travel with the request, the
//! decision is due on both sides (R12), an accept opens the case at once and once, and more
//! requests at once than a pool holds connections all answer. After every path both sides show
//! the same outcome, the case has exactly one owner, and no dead letter sits anywhere.

mod common;

use common::cases::{attempt, evidence, record};
use common::handoffs::*;
use common::{RuleClock, TestStack, eventually, resident_id};
use nol_auth::Role;
use nol_proto::v1::*;
use tonic::Code;

/// Both provinces on the rule clock at 09:00 China time on 1 March 2027.
async fn start() -> (RuleClock, TestStack) {
    let clock = RuleClock::at("2027-03-01T09:00:00+08:00");
    let test = TestStack::start_with(clock.options()).await;
    (clock, test)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_refuses_with_a_reason_and_the_origin_may_send_the_case_elsewhere() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let yingzhou = test.clients("340000", "341202", Role::Caseworker);

    let reasons = [
        (HandoffRejectReason::ChildNotFound, "经核查，本县无此学生"),
        (HandoffRejectReason::HukouNotHere, "户籍已迁至颍州区"),
        (HandoffRejectReason::DataWrong, "出生日期与户籍登记不符"),
        (HandoffRejectReason::Other, "家长已在外省务工，未返回"),
    ];
    let mut refused = Vec::new();
    for (index, (reason, note)) in reasons.into_iter().enumerate() {
        let case = migrant_case(&xuanwu, &format!("周小{index}"), 51 + index as u16, "341221").await;
        let handoff = request(&xuanwu, &case.case_id, "341221").await.expect("requested");
        delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
        let rejected = linquan
            .transfer
            .clone()
            .reject_handoff(reject(&handoff.handoff_id, reason, note))
            .await
            .expect("rejected")
            .into_inner()
            .handoff
            .unwrap();
        assert_eq!(rejected.state, HandoffState::Rejected as i32);
        assert_eq!((rejected.reject_reason, rejected.reject_note.as_str()), (reason as i32, note));
        assert_eq!(rejected.rejected_by, "caseworker@341221");
        refused.push((case, handoff.handoff_id, reason, note));
    }

    // The origin sees why, and has the case back: open, owned by Jiangsu, the refusal in its history.
    for (case, handoff_id, reason, note) in &refused {
        let origin = until(&xuanwu, handoff_id, HandoffDirection::Outgoing, HandoffState::Rejected).await;
        assert_eq!((origin.reject_reason, origin.reject_note.as_str()), (*reason as i32, *note));
        assert_eq!(origin.rejected_by, "caseworker@341221");
        assert!(origin.reject_time.is_some());
        let back = until_case(&xuanwu, &case.case_id, CaseStatus::Open).await;
        assert_eq!(back.region_code, "320102");
        assert!(back.handoff_id.is_empty() && back.handoff_destination_region_code.is_empty(), "{back:?}");
        let entries = history(&xuanwu, &case.case_id).await;
        let refusal = entries.iter().find(|entry| entry.change == "handoff_rejected").expect("refusal in history");
        let detail: serde_json::Value = serde_json::from_str(&refusal.detail_json).unwrap();
        assert_eq!(detail["handoff_id"], handoff_id.as_str());
        assert_eq!(detail["reject_reason"], *reason as i32);
        assert_eq!(detail["note"], *note);
        assert!(taken_in(&linquan, &case.case_id).await.is_empty(), "nothing opened in Anhui");
    }

    // Refusing again, refusing what is not yours, refusing without a reason: each refused, nothing changes.
    let (case, handoff_id, ..) = &refused[1];
    let again = linquan.transfer.clone().reject_handoff(reject(handoff_id, HandoffRejectReason::DataWrong, "")).await;
    let again = again.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("already rejected"), "{}", again.message());
    assert_eq!(zh(&again), "R11：该移交已被拒收");

    let second = request(&xuanwu, &case.case_id, "341221").await.expect("the same case may be sent again");
    delivered(&xuanwu, &linquan, &second.handoff_id).await;
    let bad = [
        (reject(&second.handoff_id, HandoffRejectReason::Unspecified, ""), vec!["reason"]),
        (reject(&second.handoff_id, HandoffRejectReason::Other, " "), vec!["note"]),
        (reject("不是编号", HandoffRejectReason::ChildNotFound, ""), vec!["handoff_id"]),
        (reject(&second.handoff_id, HandoffRejectReason::DataWrong, &"长".repeat(2001)), vec!["note"]),
    ];
    for (request, wanted) in bad {
        let status = linquan.transfer.clone().reject_handoff(request).await.unwrap_err();
        assert_eq!(fields(&status), wanted, "{status:?}");
        assert!(!zh(&status).is_empty());
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = linquan
        .transfer
        .clone()
        .reject_handoff(reject(&unknown, HandoffRejectReason::DataWrong, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(zh(&status).contains(&unknown));
    let status = yingzhou
        .transfer
        .clone()
        .reject_handoff(reject(&second.handoff_id, HandoffRejectReason::DataWrong, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "another county's hand-off: {status:?}");
    let status = xuanwu
        .transfer
        .clone()
        .reject_handoff(reject(&second.handoff_id, HandoffRejectReason::DataWrong, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "the origin has no incoming hand-off to refuse: {status:?}");
    let unchanged = handoff(&linquan, &second.handoff_id, HandoffDirection::Incoming).await;
    assert_eq!(unchanged.state, HandoffState::Delivered as i32, "bad input changed nothing");
    assert_eq!(unchanged.reject_reason, HandoffRejectReason::Unspecified as i32);

    // Refused as "hukou not here": withdrawn, then sent to 颍州区, which accepts.
    let withdrawn = xuanwu.transfer.clone().cancel_handoff(cancel(&second.handoff_id)).await.expect("withdrawn");
    assert!(withdrawn.into_inner().handoff.unwrap().cancel_requested);
    until(&xuanwu, &second.handoff_id, HandoffDirection::Outgoing, HandoffState::Cancelled).await;
    until_case(&xuanwu, &case.case_id, CaseStatus::Open).await;
    let elsewhere = request(&xuanwu, &case.case_id, "341202").await.expect("sent elsewhere");
    delivered(&xuanwu, &yingzhou, &elsewhere.handoff_id).await;
    let accepted = yingzhou
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: elsewhere.handoff_id.clone() })
        .await
        .expect("accepted")
        .into_inner()
        .handoff
        .unwrap();
    assert!([HandoffState::Accepted as i32, HandoffState::Completed as i32].contains(&accepted.state));
    until(&xuanwu, &elsewhere.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    until(&yingzhou, &elsewhere.handoff_id, HandoffDirection::Incoming, HandoffState::Completed).await;
    let handed = until_case(&xuanwu, &case.case_id, CaseStatus::HandedOver).await;
    assert_eq!(handed.handoff_destination_region_code, "341202");
    let opened = until_taken_in(&yingzhou, &case.case_id).await;
    assert_eq!((opened.region_code.as_str(), opened.status), ("341202", CaseStatus::Open as i32));
    assert_eq!(opened.handoff_id, elsewhere.handoff_id);
    assert!(taken_in(&linquan, &case.case_id).await.is_empty(), "临泉县 refused; it owns nothing");

    // Inside one province (玄武区 → 秦淮区, one case ledger): the origin's case is handed over in
    // the commit that opens the new one, so the child never has two active cases.
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let moved = migrant_case(&xuanwu, "周小五", 59, "341221").await;
    let inside = request(&xuanwu, &moved.case_id, "320104").await.expect("requested inside the province");
    until(&qinhuai, &inside.handoff_id, HandoffDirection::Incoming, HandoffState::Delivered).await;
    accept(&qinhuai, &inside.handoff_id).await.expect("accepted inside the province");
    until(&xuanwu, &inside.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    until(&qinhuai, &inside.handoff_id, HandoffDirection::Incoming, HandoffState::Completed).await;
    until_case(&xuanwu, &moved.case_id, CaseStatus::HandedOver).await;
    let opened = until_taken_in(&qinhuai, &moved.case_id).await;
    assert_eq!((opened.region_code.as_str(), opened.status), ("320104", CaseStatus::Open as i32));

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_that_finds_the_childs_case_already_there_is_a_rejection_both_sides_see() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);

    // The family came back to 临泉县 and the county opened its own case for the child.
    let case = migrant_case(&xuanwu, "吴小雨", 61, "341221").await;
    let here = found_back_home(&linquan, "吴小雨", 61).await;

    let handoff = request(&xuanwu, &case.case_id, "341221").await.expect("requested");
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    let refused = linquan
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: handoff.handoff_id.clone() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().starts_with("R2:") && refused.message().contains(&here), "{}", refused.message());
    assert!(zh(&refused).contains("本地已有在办案件"), "{}", zh(&refused));

    // Both sides read the same outcome, with the two cases linked.
    let destination = handoff_after(&linquan, &handoff.handoff_id, HandoffDirection::Incoming).await;
    let origin = until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Rejected).await;
    for side in [&destination, &origin] {
        assert_eq!(side.state, HandoffState::Rejected as i32);
        assert_eq!(side.reject_reason, HandoffRejectReason::AlreadyHasCase as i32);
        assert_eq!(side.linked_case_id, here, "the existing case is named so the two can be merged");
    }
    let back = until_case(&xuanwu, &case.case_id, CaseStatus::Open).await;
    assert_eq!(back.region_code, "320102", "responsibility stays with the origin");
    let entries = history(&xuanwu, &case.case_id).await;
    let refusal = entries.iter().find(|entry| entry.change == "handoff_rejected").expect("in the history");
    assert!(refusal.detail_json.contains(&here), "{}", refusal.detail_json);
    assert!(taken_in(&linquan, &case.case_id).await.is_empty(), "no second case in Anhui");
    let anhui_case = case_of(&linquan, &here).await;
    assert_eq!(anhui_case.status, CaseStatus::Open as i32, "the existing case is untouched");

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

/// 临泉县 opens its own case for a child of its hukou (`sequence` as in `resident_id`) who came
/// back home: an unregistered child found by the village committee, confirmed as a dropout.
/// Returns the case's id.
async fn found_back_home(linquan: &nol_stack::Clients, name: &str, sequence: u16) -> String {
    let suspect = linquan
        .suspects
        .clone()
        .record_suspect(RecordSuspectRequest {
            child: Some(record_suspect_request::Child::Unregistered(UnregisteredChild {
                full_name: name.into(),
                resident_id: resident_id("341221", sequence),
                hukou_region_code: "341221".into(),
            })),
            region_code: String::new(),
            reason: "村委会反映已返乡未入学".into(),
        })
        .await
        .expect("suspect recorded")
        .into_inner()
        .suspect
        .unwrap();
    linquan
        .suspects
        .clone()
        .confirm_suspect(ConfirmSuspectRequest {
            suspect_id: suspect.suspect_id,
            causes: vec![DropoutCause::GoneToWork as i32],
            notes: "家访确认".into(),
        })
        .await
        .expect("confirmed")
        .into_inner()
        .case_id
}

/// The case worker's accept opens the case at once: the transfer service asks the case service
/// (`TakeInHandoff`) instead of waiting for its own event to reach it, so the accept answers
/// with the case even while Anhui's NATS is down, and the origin learns of it when NATS is back.
/// The event, applied later, finds the decision made and makes no second case nor a second
/// answer; and no one but the transfer service may ask the case service to take a case in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_opens_the_case_at_once_and_once() {
    let (_clock, mut test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let moving = migrant_case(&xuanwu, "郑小北", 71, "341221").await;
    let moving_handoff = request(&xuanwu, &moving.case_id, "341221").await.expect("requested");
    delivered(&xuanwu, &linquan, &moving_handoff.handoff_id).await;
    let back = migrant_case(&xuanwu, "郑小南", 72, "341221").await;
    let back_home = found_back_home(&linquan, "郑小南", 72).await;
    let back_handoff = request(&xuanwu, &back.case_id, "341221").await.expect("requested");
    delivered(&xuanwu, &linquan, &back_handoff.handoff_id).await;

    // A case worker's own token over another certificate (the tools') is refused: only the
    // transfer service's certificate may have a case taken in.
    let anhui = test.stack().province("340000");
    let channel = anhui.client_tls.channel(&anhui.cases.url()).unwrap();
    let bearer = nol_stack::client::Bearer::new(&test.token("341221", Role::Caseworker)).unwrap();
    let mut direct = case_handoff_service_client::CaseHandoffServiceClient::with_interceptor(channel, bearer);
    let forged = TakeInHandoffRequest {
        handoff_id: moving_handoff.handoff_id.clone(),
        case_id: moving.case_id.clone(),
        origin_region_code: "320102".into(),
        destination_region_code: "341221".into(),
        sealed_dossier: b"not a dossier".to_vec(),
    };
    let refused = direct.take_in_handoff(forged).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(zh(&refused).contains("只能由本省的移交服务开立"), "{}", zh(&refused));
    assert!(taken_in(&linquan, &moving.case_id).await.is_empty(), "nothing opened");

    // Anhui's NATS stops: the accepts' events wait in the transfer service's outbox.
    assert_eq!(test.provinces[1], "340000", "the second nats-server is Anhui's");
    test.stack_mut().nats[1].stop().await.unwrap();
    let accepted = linquan
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: moving_handoff.handoff_id.clone() })
        .await
        .expect("accepted")
        .into_inner()
        .handoff
        .unwrap();
    assert_eq!(accepted.state, HandoffState::Accepted as i32, "accepted at once: {accepted:?}");
    let opened = case_of(&linquan, &accepted.destination_case_id).await;
    assert_eq!((opened.region_code.as_str(), opened.origin_case_id.as_str()), ("341221", moving.case_id.as_str()));
    // R2 at once as well: the child has a case here already.
    let refused = linquan
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: back_handoff.handoff_id.clone() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains(&back_home), "{}", refused.message());
    let rejected = case_of(&linquan, &back_home).await;
    assert_eq!(rejected.status, CaseStatus::Open as i32, "the existing case is untouched");

    // NATS back: the origin learns both outcomes, and the accepts' own events reach the case
    // service, which answers them with the decisions made.
    test.stack_mut().nats[1].restart().await.unwrap();
    until_case(&xuanwu, &moving.case_id, CaseStatus::HandedOver).await;
    until(&xuanwu, &back_handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Rejected).await;
    until_case(&xuanwu, &back.case_id, CaseStatus::Open).await;
    settled_without_dead_letters(&test).await;
    let cases = test.database("340000", "cases").await;
    let count = |sql: &'static str, event_type: nol_events::EventType| {
        let cases = cases.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).bind(event_type.qualified()).fetch_one(&cases).await.unwrap() }
    };
    let applied = "SELECT count(*) FROM inbox WHERE event_type = $1 AND outcome = 'applied'";
    let told = "SELECT count(*) FROM outbox WHERE event_type = $1";
    assert_eq!(count(applied, nol_events::HANDOFF_ACCEPTED).await, 2, "both accepts' events applied");
    assert_eq!(count(told, nol_events::CASE_TAKEN_IN).await, 1, "one case taken in, told once");
    assert_eq!(count(told, nol_events::CASE_TAKE_IN_REFUSED).await, 1, "one refusal, told once");
    let listed = taken_in(&linquan, &moving.case_id).await;
    assert_eq!(listed.len(), 1, "one case for the hand-off: {listed:?}");
    assert!(taken_in(&linquan, &back.case_id).await.is_empty(), "no second case for the child back home");
    for (handoff, state) in [(&moving_handoff, HandoffState::Completed), (&back_handoff, HandoffState::Rejected)] {
        until(&linquan, &handoff.handoff_id, HandoffDirection::Incoming, state).await;
    }
    cases.close().await;
    test.finish().await;
}

/// The destination's side once the accept's outcome is known.
async fn handoff_after(clients: &nol_stack::Clients, handoff_id: &str, direction: HandoffDirection) -> Handoff {
    until(clients, handoff_id, direction, HandoffState::Rejected).await
}

async fn case_of(clients: &nol_stack::Clients, case_id: &str) -> DropoutCase {
    case(clients, case_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_and_acceptance_one_order_wins_and_the_other_is_refused() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let accept = |handoff_id: &str| AcceptHandoffRequest { handoff_id: handoff_id.into() };

    // Withdrawn first: cancelled on both sides, the case open at the origin, the accept refused.
    let first = migrant_case(&xuanwu, "郑小一", 71, "341221").await;
    let handoff = request(&xuanwu, &first.case_id, "341221").await.unwrap();
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    let bad = [
        (CancelHandoffRequest { reason: " ".into(), ..cancel(&handoff.handoff_id) }, vec!["reason"]),
        (cancel("42"), vec!["handoff_id"]),
    ];
    for (request, wanted) in bad {
        let status = xuanwu.transfer.clone().cancel_handoff(request).await.unwrap_err();
        assert_eq!(fields(&status), wanted);
    }
    let status = qinhuai.transfer.clone().cancel_handoff(cancel(&handoff.handoff_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "another county's hand-off: {status:?}");
    let status = linquan.transfer.clone().cancel_handoff(cancel(&handoff.handoff_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "the destination has nothing to withdraw: {status:?}");
    let status = xuanwu.transfer.clone().cancel_handoff(cancel(&uuid::Uuid::now_v7().to_string())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        !common::handoffs::handoff(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing).await.cancel_requested
    );

    let withdrawn = xuanwu.transfer.clone().cancel_handoff(cancel(&handoff.handoff_id)).await.unwrap().into_inner();
    let withdrawn = withdrawn.handoff.unwrap();
    assert!(withdrawn.cancel_requested, "the destination decides whether the withdrawal came first");
    assert_eq!(withdrawn.cancelled_by, "caseworker@320102");
    let at_destination =
        until(&linquan, &handoff.handoff_id, HandoffDirection::Incoming, HandoffState::Cancelled).await;
    assert_eq!(at_destination.cancel_reason, "家长表示暂不返回户籍地");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Cancelled).await;
    until_case(&xuanwu, &first.case_id, CaseStatus::Open).await;
    assert!(history(&xuanwu, &first.case_id).await.iter().any(|entry| entry.change == "handoff_cancelled"));
    let late = linquan.transfer.clone().accept_handoff(accept(&handoff.handoff_id)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert_eq!(zh(&late), "R11：该移交已被撤回");
    let late = linquan
        .transfer
        .clone()
        .reject_handoff(reject(&handoff.handoff_id, HandoffRejectReason::Other, "迟到的拒收"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    let again = xuanwu.transfer.clone().cancel_handoff(cancel(&handoff.handoff_id)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(taken_in(&linquan, &first.case_id).await.is_empty());

    // Accepted first: completed on both sides; the withdrawal refused.
    let second = migrant_case(&xuanwu, "郑小二", 72, "341221").await;
    let handoff = request(&xuanwu, &second.case_id, "341221").await.unwrap();
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    linquan.transfer.clone().accept_handoff(accept(&handoff.handoff_id)).await.expect("accepted");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    let late = xuanwu.transfer.clone().cancel_handoff(cancel(&handoff.handoff_id)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("already completed"), "{}", late.message());
    until_case(&xuanwu, &second.case_id, CaseStatus::HandedOver).await;
    assert_eq!(taken_in(&linquan, &second.case_id).await.len(), 1);

    // Both at once, several times: each hand-off ends one way on both sides, and the call that
    // lost hears it (the accept is refused) or sees it (the withdrawal stays a request, then the
    // hand-off completes).
    let mut races = Vec::new();
    for index in 0..4u16 {
        let case = migrant_case(&xuanwu, &format!("郑小{}", index + 3), 73 + index, "341221").await;
        let handoff = request(&xuanwu, &case.case_id, "341221").await.unwrap();
        delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
        races.push((case.case_id, handoff.handoff_id));
    }
    let mut outcomes = (0, 0);
    for (case_id, handoff_id) in &races {
        let (mut origin, mut destination) = (xuanwu.transfer.clone(), linquan.transfer.clone());
        let (withdrawal, acceptance) =
            tokio::join!(origin.cancel_handoff(cancel(handoff_id)), destination.accept_handoff(accept(handoff_id)));
        let withdrawal = withdrawal.expect("a withdrawal before the origin knows of an accept is taken");
        assert!(withdrawal.into_inner().handoff.unwrap().cancel_requested);
        let origin_end = eventually("the race to end at the origin", || {
            let mut transfer = xuanwu.transfer.clone();
            let handoff_id = handoff_id.clone();
            async move {
                let handoff = transfer
                    .get_handoff(GetHandoffRequest { handoff_id, direction: HandoffDirection::Outgoing as i32 })
                    .await?
                    .into_inner()
                    .handoff
                    .unwrap();
                let done = [HandoffState::Cancelled as i32, HandoffState::Completed as i32].contains(&handoff.state);
                Ok(done.then_some(handoff))
            }
        })
        .await;
        if origin_end.state == HandoffState::Cancelled as i32 {
            outcomes.0 += 1;
            let refused = acceptance.unwrap_err();
            assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
            until(&linquan, handoff_id, HandoffDirection::Incoming, HandoffState::Cancelled).await;
            until_case(&xuanwu, case_id, CaseStatus::Open).await;
            assert!(taken_in(&linquan, case_id).await.is_empty());
        } else {
            outcomes.1 += 1;
            acceptance.expect("the accept that won");
            until(&linquan, handoff_id, HandoffDirection::Incoming, HandoffState::Completed).await;
            until_case(&xuanwu, case_id, CaseStatus::HandedOver).await;
            assert_eq!(taken_in(&linquan, case_id).await.len(), 1);
        }
    }
    println!("withdrawal and acceptance at once: {} withdrawn, {} accepted", outcomes.0, outcomes.1);

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_requests_or_a_request_and_a_status_change_racing_for_one_case_one_wins() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let yingzhou = test.clients("340000", "341202", Role::Caseworker);

    // Two requests for one case at once, to two counties: one is recorded, the other refused.
    for index in 0..3u16 {
        let case = migrant_case(&xuanwu, &format!("钱小{index}"), 81 + index, "341221").await;
        let (a, b) = tokio::join!(request(&xuanwu, &case.case_id, "341221"), request(&xuanwu, &case.case_id, "341202"));
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("exactly one request wins: {other:?}"),
        };
        assert_eq!(lost.code(), Code::AlreadyExists, "{lost:?}");
        assert!(lost.message().contains("already under way"), "{}", lost.message());
        let pending = common::handoffs::case(&xuanwu, &case.case_id).await;
        assert_eq!(pending.status, CaseStatus::HandoffPending as i32);
        assert_eq!(pending.handoff_id, won.handoff_id);
        let destination = if won.destination_region_code == "341221" { &linquan } else { &yingzhou };
        delivered(&xuanwu, destination, &won.handoff_id).await;
        let listed = xuanwu
            .transfer
            .clone()
            .list_handoffs(ListHandoffsRequest { direction: HandoffDirection::Outgoing as i32, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .handoffs;
        assert_eq!(listed.iter().filter(|handoff| handoff.case_id == case.case_id).count(), 1, "one hand-off recorded");
    }

    // The interleaving forced: the transfer service read the case open, then the child went back
    // to school, then it asks the case service to reserve the case: the reservation checks the
    // case in its own transaction and refuses; nothing is reserved, sent or recorded.
    let case = migrant_case(&xuanwu, "钱小三", 84, "341221").await;
    let seen_open = common::handoffs::case(&xuanwu, &case.case_id).await;
    assert_eq!(seen_open.status, CaseStatus::Open as i32);
    xuanwu.cases.clone().return_to_school(common::cases::return_to(&case.case_id, "")).await.expect("returned");
    let reservation = ReserveCaseRequest {
        case_id: case.case_id.clone(),
        handoff_id: uuid::Uuid::now_v7().to_string(),
        destination_region_code: "341221".into(),
        reason: "家庭已返回户籍地".into(),
        ..Default::default()
    };
    let refused = case_handoffs(&test).reserve_case(reservation).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let after = common::handoffs::case(&xuanwu, &case.case_id).await;
    assert_eq!(after.status, CaseStatus::Returned as i32);
    assert!(after.handoff_id.is_empty());
    // Through the transfer API the same request is refused, and nothing is recorded there either.
    let status = request(&xuanwu, &case.case_id, "341221").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // The race left to the scheduler: a request and a return to school at once, several times.
    let mut outcomes = (0, 0);
    for index in 0..4u16 {
        let case = migrant_case(&xuanwu, &format!("钱小{}", index + 4), 85 + index, "341221").await;
        let mut cases = xuanwu.cases.clone();
        let (requested, returned) = tokio::join!(
            request(&xuanwu, &case.case_id, "341221"),
            cases.return_to_school(common::cases::return_to(&case.case_id, ""))
        );
        let now = common::handoffs::case(&xuanwu, &case.case_id).await;
        match (requested, returned) {
            (Ok(handoff), Err(refused)) => {
                outcomes.0 += 1;
                assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
                assert_eq!(now.status, CaseStatus::HandoffPending as i32);
                assert_eq!(now.handoff_id, handoff.handoff_id);
                delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
            }
            (Err(refused), Ok(_)) => {
                outcomes.1 += 1;
                assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
                assert_eq!(now.status, CaseStatus::Returned as i32);
            }
            other => panic!("exactly one of the two wins: {other:?}"),
        }
    }
    println!("request and return to school at once: {} requested, {} returned", outcomes.0, outcomes.1);
    let outgoing = xuanwu
        .transfer
        .clone()
        .list_handoffs(ListHandoffsRequest { direction: HandoffDirection::Outgoing as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .handoffs;
    assert_eq!(outgoing.len(), 3 + outcomes.0, "a hand-off only for each request that won");

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

/// The case service's hand-off API, as a 玄武区 case worker (what the transfer service calls).
fn case_handoffs(
    test: &TestStack,
) -> case_handoff_service_client::CaseHandoffServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, nol_stack::client::Bearer>,
> {
    let jiangsu = test.stack().province("320000");
    let channel = jiangsu.client_tls.channel(&jiangsu.cases.url()).unwrap();
    let bearer = nol_stack::client::Bearer::new(&test.token("320102", Role::Caseworker)).unwrap();
    case_handoff_service_client::CaseHandoffServiceClient::with_interceptor(channel, bearer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_found_the_child_asks_for_the_case_and_the_owner_answers() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let ask = |resident_id: String, owner: &str| RequestTransferInRequest {
        resident_id,
        owner_region_code: owner.into(),
        reason: "该生已随父母返回临泉县居住".into(),
        region_code: String::new(),
    };
    let approved_case = migrant_case(&xuanwu, "孙小一", 91, "341221").await;
    let declined_case = migrant_case(&xuanwu, "孙小二", 92, "341221").await;

    // Bad requests: refused field by field, the number never echoed; nothing is sent.
    let valid = resident_id("341221", 91);
    let mut wrong_check = valid.clone();
    wrong_check.replace_range(17.., if valid.ends_with('1') { "2" } else { "1" });
    let bad = [
        (ask(wrong_check.clone(), "320102"), vec!["resident_id"]),
        (ask(valid.clone(), "329999"), vec!["owner_region_code"]),
        (ask(valid.clone(), "320100"), vec!["owner_region_code"]),
        (ask(valid.clone(), "341221"), vec!["owner_region_code"]),
        (RequestTransferInRequest { reason: String::new(), ..ask(valid.clone(), "320102") }, vec!["reason"]),
    ];
    for (request, wanted) in bad {
        let status = linquan.transfer.clone().request_transfer_in(request).await.unwrap_err();
        assert_eq!(fields(&status), wanted, "{status:?}");
        assert!(!status.message().contains(&wrong_check[6..14]), "the number is not echoed");
    }
    let unlinked = linquan.transfer.clone().request_transfer_in(ask(valid.clone(), "110101")).await.unwrap_err();
    assert_eq!(unlinked.code(), Code::FailedPrecondition, "no hand-off link to Beijing: {unlinked:?}");
    assert!(zh(&unlinked).contains("北京市"), "{}", zh(&unlinked));
    let foreign = RequestTransferInRequest { region_code: "341202".into(), ..ask(valid.clone(), "320102") };
    let status = linquan.transfer.clone().request_transfer_in(foreign).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "a county asks for itself: {status:?}");
    let sent = linquan
        .transfer
        .clone()
        .list_transfer_ins(ListTransferInsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transfer_ins;
    assert!(sent.is_empty(), "bad requests send nothing");

    // Three requests: a child with a case (approved), one with a case (declined), one unknown.
    let mut asked = Vec::new();
    for resident_id in [valid.clone(), resident_id("341221", 92), resident_id("341221", 99)] {
        let request = linquan
            .transfer
            .clone()
            .request_transfer_in(ask(resident_id, "320102"))
            .await
            .expect("asked")
            .into_inner()
            .transfer_in
            .unwrap();
        assert_eq!(request.state, TransferInState::Requested as i32);
        assert!(request.child.is_none() && request.case_id.is_empty(), "the asker learns nothing but the answer");
        asked.push(request.request_id);
    }
    let (to_approve, to_decline, unknown) = (&asked[0], &asked[1], &asked[2]);
    let owner_sees = |request_id: &str, state: TransferInState| {
        let request_id = request_id.to_owned();
        let transfer = xuanwu.transfer.clone();
        async move {
            eventually("the owner to list the transfer-in request", || {
                let (mut transfer, request_id) = (transfer.clone(), request_id.clone());
                async move {
                    let listed = transfer
                        .list_transfer_ins(ListTransferInsRequest {
                            direction: HandoffDirection::Incoming as i32,
                            ..Default::default()
                        })
                        .await?
                        .into_inner()
                        .transfer_ins;
                    Ok(listed.into_iter().find(|item| item.request_id == request_id && item.state == state as i32))
                }
            })
            .await
        }
    };
    let pending = owner_sees(to_approve, TransferInState::Pending).await;
    assert_eq!(pending.case_id, approved_case.case_id, "matched by the blind index in the owner's county");
    assert_eq!(pending.asking_region_code, "341221");
    assert_eq!(
        pending.child.as_ref().unwrap().resident_id_masked,
        approved_case.child.as_ref().unwrap().resident_id_masked
    );
    owner_sees(to_decline, TransferInState::Pending).await;
    let nothing = owner_sees(unknown, TransferInState::Declined).await;
    assert!(nothing.case_id.is_empty());
    let asker_sees = |request_id: &str, state: TransferInState| {
        let request_id = request_id.to_owned();
        let transfer = linquan.transfer.clone();
        async move {
            eventually("the asker to hear the answer", || {
                let (mut transfer, request_id) = (transfer.clone(), request_id.clone());
                async move {
                    let listed = transfer
                        .list_transfer_ins(ListTransferInsRequest {
                            direction: HandoffDirection::Outgoing as i32,
                            ..Default::default()
                        })
                        .await?
                        .into_inner()
                        .transfer_ins;
                    Ok(listed.into_iter().find(|item| item.request_id == request_id && item.state == state as i32))
                }
            })
            .await
        }
    };
    let no_case = asker_sees(unknown, TransferInState::Declined).await;
    assert!(no_case.decline_reason.contains("no active case"), "{}", no_case.decline_reason);

    // The asker cannot answer its own request; an answer needs a reason to decline.
    let status = linquan
        .transfer
        .clone()
        .approve_transfer_in(ApproveTransferInRequest { request_id: to_approve.clone(), reason: String::new() })
        .await
        .unwrap_err();
    assert!([Code::NotFound, Code::FailedPrecondition].contains(&status.code()), "{status:?}");
    let status = xuanwu
        .transfer
        .clone()
        .decline_transfer_in(DeclineTransferInRequest { request_id: to_decline.clone(), reason: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["reason"]);

    // Approved: a normal hand-off to the asker starts, which it accepts.
    let approved = xuanwu
        .transfer
        .clone()
        .approve_transfer_in(ApproveTransferInRequest { request_id: to_approve.clone(), reason: String::new() })
        .await
        .expect("approved")
        .into_inner();
    let handoff = approved.handoff.unwrap();
    assert_eq!(approved.transfer_in.unwrap().state, TransferInState::Approved as i32);
    assert_eq!(
        (handoff.case_id.as_str(), handoff.destination_region_code.as_str()),
        (approved_case.case_id.as_str(), "341221")
    );
    let answered = asker_sees(to_approve, TransferInState::Approved).await;
    assert_eq!(answered.handoff_id, handoff.handoff_id);
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    accept(&linquan, &handoff.handoff_id).await.expect("accepted");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    until_taken_in(&linquan, &approved_case.case_id).await;
    let twice = xuanwu
        .transfer
        .clone()
        .approve_transfer_in(ApproveTransferInRequest { request_id: to_approve.clone(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);

    // Declined with a reason: the asker hears why; the case stays where it is.
    xuanwu
        .transfer
        .clone()
        .decline_transfer_in(DeclineTransferInRequest {
            request_id: to_decline.clone(),
            reason: "该生已于上周返回南京就读".into(),
        })
        .await
        .expect("declined");
    let declined = asker_sees(to_decline, TransferInState::Declined).await;
    assert_eq!(declined.decline_reason, "该生已于上周返回南京就读");
    assert_eq!(case(&xuanwu, &declined_case.case_id).await.status, CaseStatus::Open as i32);

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_notice_and_the_whole_dossier_travel_with_the_request() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);

    // 王小四: a migrant child of a registered-poor household, disability grade three, with a
    // contact officer, an aid measure, an evidence document and a joint home visit on file.
    let case = common::cases::Child::Xiaosi.open_case(&xuanwu).await;
    xuanwu
        .cases
        .clone()
        .add_officer(AddOfficerRequest {
            case_id: case.case_id.clone(),
            officer: Some(CaseOfficer {
                full_name: "李老师".into(),
                role: OfficerRole::SchoolStaff as i32,
                phone: "13812345678".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("officer");
    xuanwu
        .cases
        .clone()
        .add_measure(AddMeasureRequest {
            case_id: case.case_id.clone(),
            measure: Some(CaseMeasure {
                kind: MeasureKind::FinancialAid as i32,
                description: "每月资助并安排辅导".into(),
                fund: "建档立卡学生资助".into(),
                due_on: "2027-03-31".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("measure");
    evidence(&xuanwu, &case.case_id, EvidenceType::Other, Some(("家访记录.pdf", b"%PDF-1.4 visit".to_vec())))
        .await
        .expect("evidence");
    let departments = [PersuasionDepartment::Education, PersuasionDepartment::CivilAffairs];
    record(&xuanwu, &case.case_id, attempt("2027-03-01", &departments, PersuasionOutcome::Refused)).await.unwrap();

    let handoff = request(&xuanwu, &case.case_id, "341221").await.expect("requested");
    assert_eq!(handoff.notice_number, "玄武区教育局移交〔2027〕1号", "numbered per bureau and year");
    assert_eq!(handoff.notice_sha256.len(), 64);
    let incoming = delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    assert_eq!(
        (incoming.notice_number.as_str(), incoming.notice_sha256.as_str()),
        (handoff.notice_number.as_str(), handoff.notice_sha256.as_str())
    );
    let dossier = incoming.dossier.clone().expect("the destination sees the dossier before deciding");
    assert!(dossier.registered_poor);
    assert_eq!(dossier.disability_grade, DisabilityGrade::Three as i32);
    assert_eq!((dossier.attempt_count, dossier.joint_attempt_count), (1, 1));
    assert_eq!(dossier.causes, vec![DropoutCause::FamilyPoverty as i32]);
    assert!(dossier.contacts.iter().any(|contact| contact.contains("李老师") && contact.contains("13812345678")));

    // Both sides download the same notice; a third county may not.
    let notice = |clients: &nol_stack::Clients| {
        let mut transfer = clients.transfer.clone();
        let handoff_id = handoff.handoff_id.clone();
        async move {
            let stream = transfer.get_handoff_notice(GetHandoffNoticeRequest { handoff_id }).await?.into_inner();
            let meta = std::cell::RefCell::new((String::new(), String::new(), String::new()));
            let (_, bytes) = common::cases::collect(stream, |chunk| {
                if meta.borrow().0.is_empty() {
                    *meta.borrow_mut() = (chunk.file_name.clone(), chunk.notice_number.clone(), chunk.sha256.clone());
                }
                (chunk.data, chunk.file_name)
            })
            .await;
            Ok::<_, tonic::Status>((meta.into_inner(), bytes))
        }
    };
    let (meta, pdf) = notice(&xuanwu).await.expect("the origin downloads the notice");
    let (_, copy) = notice(&linquan).await.expect("the destination downloads it");
    assert_eq!(pdf, copy);
    let digest = sha256_hex(&pdf);
    assert_eq!((meta.2.as_str(), digest.as_str()), (handoff.notice_sha256.as_str(), handoff.notice_sha256.as_str()));
    assert_eq!(meta.1, handoff.notice_number);
    assert!(meta.0.ends_with(".pdf"), "{}", meta.0);
    let status = notice(&qinhuai).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "neither side: {status:?}");
    let status = xuanwu
        .transfer
        .clone()
        .get_handoff_notice(GetHandoffNoticeRequest { handoff_id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["handoff_id"]);

    // The PDF reads back in Chinese (text extraction finds the fields) and renders a page.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notice.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = std::process::Command::new("pdftotext").arg(&path).arg("-").output().expect("pdftotext (poppler-utils)");
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    let masked = case.child.as_ref().unwrap().resident_id_masked.clone();
    for wanted in [
        "关于移交辍学学生劝返案件的通知",
        "玄武区教育局移交〔2027〕1号",
        "安徽省阜阳市临泉县教育局",
        "王小四",
        masked.as_str(),
        "家庭已返回户籍地",
        "R11",
        "李老师",
        "江苏省南京市玄武区教育局",
        "2027年3月1日",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in the notice:\n{text}");
    }
    assert!(!text.contains(&resident_id("341221", 17)), "the number is masked");
    let page = dir.path().join("page");
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&page)
        .status()
        .expect("pdftoppm");
    assert!(rendered.success());
    let png = std::fs::read(dir.path().join("page.png")).unwrap();
    assert!(png.len() > 10_000, "a page with text on it");
    if let Ok(keep) = std::env::var("NOL_KEEP_NOTICE") {
        std::fs::write(keep, &png).unwrap();
    }

    // Accepted: the destination's case carries what the rules need, and the whole dossier.
    accept(&linquan, &handoff.handoff_id).await.expect("accepted");
    let opened = until_taken_in(&linquan, &case.case_id).await;
    assert!(opened.registered_poor, "R3 aid is not lost with the move");
    assert_eq!(opened.disability_grade, DisabilityGrade::Three as i32, "nor R4");
    let file = linquan
        .cases
        .clone()
        .get_case_file(GetCaseFileRequest { case_id: opened.case_id.clone() })
        .await
        .expect("case file")
        .into_inner()
        .file
        .unwrap();
    let origin = file.origin_dossier.expect("the origin's dossier");
    assert_eq!((origin.origin_case_id.as_str(), origin.origin_region_code.as_str()), (case.case_id.as_str(), "320102"));
    assert_eq!(origin.notice_number, handoff.notice_number);
    assert_eq!(origin.attempts.len(), 1);
    assert_eq!(origin.attempts[0].departments.len(), 2);
    assert_eq!(origin.measures.len(), 1);
    assert_eq!(origin.measures[0].fund, "建档立卡学生资助");
    assert_eq!(origin.evidence.len(), 1);
    assert_eq!(origin.evidence[0].file_name, "家访记录.pdf", "the document's metadata; the file stays with the origin");
    assert_eq!(origin.contacts.len(), 1);
    assert!(!origin.history.is_empty());
    let attempts = linquan
        .cases
        .clone()
        .list_persuasion_attempts(ListPersuasionAttemptsRequest {
            case_id: opened.case_id.clone(),
            ..Default::default()
        })
        .await
        .expect("attempts")
        .into_inner();
    assert_eq!(attempts.attempts.len(), 1, "the origin's attempts count toward the case's persuasion record");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_is_due_on_both_sides_and_an_overdue_one_reaches_both_provinces() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let case = migrant_case(&xuanwu, "冯小满", 95, "341221").await;
    let handoff = request(&xuanwu, &case.case_id, "341221").await.expect("requested");
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    let pending = common::handoffs::case(&xuanwu, &case.case_id).await;
    assert_eq!((pending.due_kind, pending.due_on.as_str()), (CaseDueKind::HandoffDecision as i32, "2027-03-08"));

    let overdue = |province: &'static str, region: &'static str, role: Role| {
        let clients = test.clients(province, region, role);
        async move {
            clients
                .supervision
                .clone()
                .list_overdue_work(ListOverdueWorkRequest {
                    kind: OverdueKind::HandoffDecision as i32,
                    ..Default::default()
                })
                .await
                .expect("overdue work")
                .into_inner()
                .work
        }
    };
    let sweep = |province: &'static str| {
        let clients = test.clients(province, province, Role::Operator);
        async move {
            let swept = clients.supervision.clone().sweep_overdue_work(SweepOverdueWorkRequest {}).await.unwrap();
            let swept = swept.into_inner();
            (swept.raised, swept.escalated)
        }
    };
    let items = |province: &'static str, region: &'static str| {
        let clients = test.clients(province, region, Role::Supervisor);
        async move {
            let mut supervision = clients.supervision.clone();
            let listed = supervision.list_supervision_items(ListSupervisionItemsRequest::default()).await;
            let items = listed.expect("items").into_inner().items;
            items.into_iter().filter(|item| !item.handoff_id.is_empty()).collect::<Vec<_>>()
        }
    };

    // Due within 7 days of receipt on both sides: nothing overdue on 8 March.
    clock.set("2027-03-08T09:00:00+08:00");
    assert!(overdue("320000", "320102", Role::Caseworker).await.is_empty());
    assert!(overdue("340000", "341221", Role::Caseworker).await.is_empty());
    clock.set("2027-03-10T09:00:00+08:00");
    for (province, county) in [("320000", "320102"), ("340000", "341221")] {
        let work = overdue(province, county, Role::Caseworker).await;
        assert_eq!(work.len(), 1, "{county}: {work:?}");
        assert_eq!(work[0].handoff_id, handoff.handoff_id);
        assert_eq!((work[0].due_date.as_str(), work[0].days_overdue), ("2027-03-08", 2));
    }
    assert_eq!(overdue("340000", "341200", Role::Supervisor).await.len(), 1, "the city sees its county's");

    // Past the supervision threshold each side's parent bureau gets an item; unanswered, both
    // climb to their provincial bureaus.
    clock.set("2027-03-16T09:00:00+08:00");
    let (jiangsu, anhui) = (sweep("320000").await, sweep("340000").await);
    assert_eq!((jiangsu.0 >= 1, anhui), (true, (1, 0)), "{jiangsu:?} {anhui:?}");
    let raised = items("340000", "341200").await;
    assert_eq!(raised.len(), 1);
    assert_eq!((raised[0].region_code.as_str(), raised[0].supervising_region_code.as_str()), ("341221", "341200"));
    assert!(raised[0].case_id.is_empty(), "the destination has no case yet; the item names the hand-off");
    let raised = items("320000", "320100").await;
    assert_eq!(raised.len(), 1);
    assert_eq!(
        (raised[0].case_id.as_str(), raised[0].supervising_region_code.as_str()),
        (case.case_id.as_str(), "320100")
    );
    clock.set("2027-03-24T09:00:00+08:00");
    sweep("320000").await;
    assert_eq!(sweep("340000").await, (0, 1));
    for (province, bureau) in [("320000", "320000"), ("340000", "340000")] {
        let escalated = items(province, bureau).await;
        assert_eq!(escalated.len(), 1, "{bureau}");
        assert_eq!(escalated[0].supervising_region_code, bureau);
        assert_eq!(escalated[0].handoff_id, handoff.handoff_id);
    }

    // Decided: the work is no longer owed on either side.
    linquan
        .transfer
        .clone()
        .reject_handoff(reject(&handoff.handoff_id, HandoffRejectReason::ChildNotFound, "多次家访未见该生"))
        .await
        .expect("rejected");
    until_case(&xuanwu, &case.case_id, CaseStatus::Open).await;
    common::eventually("the decision to leave both sides' overdue work", || async {
        let origin = overdue("320000", "320102", Role::Caseworker).await;
        let destination = overdue("340000", "341221", Role::Caseworker).await;
        Ok((origin.is_empty() && destination.is_empty()).then_some(()))
    })
    .await;

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

/// More calls at once than a service's pool holds connections all answer. A call that holds one
/// connection and waits for a second (a reservation reading its dossier from the pool, a read
/// taking another for its view while still holding the one its audit entry was written on) made
/// as many such calls as the pool holds wait on one another until the pool's timeout failed them
/// all: four hand-offs requested at once against a pool of four did, and eight reads of a case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_calls_at_once_than_the_pool_holds_all_answer() {
    let clock = RuleClock::at("2027-03-01T09:00:00+08:00");
    let mut options = clock.options();
    options.extra_env.insert("NOL_DATABASE_POOL_SIZE".into(), "3".into());
    let test = TestStack::start_with(options).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let mut cases = Vec::new();
    for sequence in 0..8u16 {
        cases.push(migrant_case(&xuanwu, &format!("钱小{sequence}"), 71 + sequence, "341221").await);
    }

    // Eight reads of a case, eight of its file and four hand-off requests, all at once: more
    // reservations than the case service's pool holds, fewer than would wait past its timeout
    // for the transfer service's (each request writes its notice, a PDF, in its transaction).
    let reads = cases.iter().map(|case| {
        let mut cases = xuanwu.cases.clone();
        let request = GetCaseRequest { case_id: case.case_id.clone(), ..Default::default() };
        async move { cases.get_case(request).await.map(|_| ()) }
    });
    let files = cases.iter().map(|case| {
        let mut cases = xuanwu.cases.clone();
        let request = GetCaseFileRequest { case_id: case.case_id.clone() };
        async move { cases.get_case_file(request).await.map(|_| ()) }
    });
    let requests = cases[..4].iter().map(|case| request(&xuanwu, &case.case_id, "341221"));
    let (reads, files, requested) = tokio::join!(
        futures::future::join_all(reads),
        futures::future::join_all(files),
        futures::future::join_all(requests)
    );
    for outcome in reads.into_iter().chain(files) {
        outcome.expect("a read answers");
    }
    let handoff_ids: Vec<String> =
        requested.into_iter().map(|handoff| handoff.expect("a request answers").handoff_id).collect();

    // Every hand-off read at once, as the origin keeps it, each with its case reserved.
    let handoffs = handoff_ids.iter().map(|handoff_id| {
        let mut transfer = xuanwu.transfer.clone();
        let request =
            GetHandoffRequest { handoff_id: handoff_id.clone(), direction: HandoffDirection::Outgoing as i32 };
        async move { transfer.get_handoff(request).await }
    });
    for handoff in futures::future::join_all(handoffs).await {
        handoff.expect("a hand-off is read");
    }
    for case in &cases[..4] {
        until_case(&xuanwu, &case.case_id, CaseStatus::HandoffPending).await;
    }
    settled_without_dead_letters(&test).await;
    test.finish().await;
}
