//! Replicas: every service of both provinces runs as two processes against the same database and
//! stream. Work is asked through either process; then one process of every pair is killed
//! (SIGKILL, mid-flight) and the survivors finish it: every hand-off completes once, every request
//! for help ends closed, each case has exactly one owner at the end, and no dead letter sits
//! anywhere. The relays share the outbox by `SKIP LOCKED`, the consumers share their durable
//! consumers and inboxes, the sweepers' passes are idempotent, and each service's callers know
//! both replicas.

mod common;

use common::assistance::until_assistance;
use common::cases::{FIRST_DAY, nine_am};
use common::handoffs::*;
use common::{RuleClock, TestOptions, TestStack, eventually};
use nol_auth::Role;
use nol_proto::v1::*;
use nol_stack::Clients;

/// Clients of the second process of each of `province`'s services.
fn second_replica(test: &TestStack, province: &str, region: &str) -> Clients {
    let stack = test.stack().province(province);
    let set = &stack.replicas[0];
    let token = test.token(region, Role::Caseworker);
    let tls = &stack.client_tls;
    Clients::at(&set.registry.url(), &set.cases.url(), &set.transfer.url(), &set.reporting.url(), tls, &token)
        .expect("clients")
}

/// A call through the surviving replicas; right after the kill, a call (or the service's own call
/// to another service) may still land on a dead connection: that one is tried again.
async fn surviving<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    eventually(what, || {
        let result = call();
        async move {
            match result.await {
                Ok(value) => Ok(Some(value)),
                Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown) => Ok(None),
                Err(status) => Err(status.into()),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_offs_and_requests_for_help_hold_while_one_process_of_every_service_is_killed() {
    let clock = RuleClock::at(&nine_am(FIRST_DAY));
    let mut options = TestOptions { replicas: 2, ..clock.options() };
    options.extra_env.insert("NOL_HANDOFF_RESEND_SECS".to_owned(), "1".to_owned());
    let mut test = TestStack::start_with(options).await;
    let xuanwu = [test.clients("320000", "320102", Role::Caseworker), second_replica(&test, "320000", "320102")];
    let linquan = [test.clients("340000", "341221", Role::Caseworker), second_replica(&test, "340000", "341221")];

    // Eight cases, opened through either process; four handed to 临泉县, four with its help asked.
    let mut cases = Vec::new();
    for index in 0..8u16 {
        cases.push(migrant_case(&xuanwu[usize::from(index % 2)], &format!("学生{index}"), index + 1, "341221").await);
    }
    let mut handoffs = Vec::new();
    for (index, case) in cases[..4].iter().enumerate() {
        handoffs.push(request(&xuanwu[index % 2], &case.case_id, "341221").await.expect("requested").handoff_id);
    }
    let mut requests = Vec::new();
    for (index, case) in cases[4..].iter().enumerate() {
        let ask = RequestAssistanceRequest {
            case_id: case.case_id.clone(),
            assisting_region_code: "341221".into(),
            reason: AssistanceReason::WorkPlace as i32,
            needs: vec![AssistanceNeed::FindChild as i32],
            due_date: "2027-03-15".into(),
            note: "孩子随父母到当地务工，请协助查找".into(),
        };
        let asked = xuanwu[index % 2].assistance.clone().request_assistance(ask).await.expect("help asked");
        requests.push(asked.into_inner().assistance.unwrap().assistance_id);
    }

    // The first process of every service, in both provinces, dies now, with all of it in flight.
    for province in ["320000", "340000"] {
        let stack = test.stack_mut().province_mut(province);
        for process in [&mut stack.registry, &mut stack.cases, &mut stack.transfer, &mut stack.reporting] {
            process.kill().await.unwrap();
        }
    }
    let (xuanwu, linquan) = (&xuanwu[1], &linquan[1]);

    // The survivors carry every hand-off to its end.
    for handoff_id in &handoffs {
        delivered(xuanwu, linquan, handoff_id).await;
        let accept = AcceptHandoffRequest { handoff_id: handoff_id.clone() };
        let accepted = surviving("the hand-off to be accepted", || {
            let mut transfer = linquan.transfer.clone();
            let accept = accept.clone();
            async move { transfer.accept_handoff(accept).await }
        })
        .await;
        assert_eq!(accepted.into_inner().handoff.unwrap().handoff_id, *handoff_id);
    }
    for (handoff_id, case) in handoffs.iter().zip(&cases) {
        until(xuanwu, handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
        assert_eq!(case_of(xuanwu, &case.case_id).await.status, CaseStatus::HandedOver as i32);
        assert_eq!(taken_in(linquan, &case.case_id).await.len(), 1, "taken in exactly once");
    }

    // And every request for help: accepted, reported, closed, on both sides.
    for id in &requests {
        until_assistance(linquan, id, HandoffDirection::Incoming, "the request to arrive", |theirs| {
            theirs.state == AssistanceState::Delivered as i32
        })
        .await;
        let accept = AcceptAssistanceRequest { assistance_id: id.clone() };
        surviving("the request to be accepted", || {
            let mut assistance = linquan.assistance.clone();
            let accept = accept.clone();
            async move { assistance.accept_assistance(accept).await }
        })
        .await;
        let close = CloseAssistanceRequest { assistance_id: id.clone(), note: "已找到孩子，谢谢协助".into() };
        until_assistance(xuanwu, id, HandoffDirection::Outgoing, "the acceptance to reach the owner", |ours| {
            ours.state == AssistanceState::Accepted as i32
        })
        .await;
        surviving("the request to be closed", || {
            let mut assistance = xuanwu.assistance.clone();
            let close = close.clone();
            async move { assistance.close_assistance(close).await }
        })
        .await;
        until_assistance(linquan, id, HandoffDirection::Incoming, "the close to reach the helper", |theirs| {
            theirs.state == AssistanceState::Closed as i32
        })
        .await;
    }

    // Each case has exactly one owner: the four handed over are 临泉县's, the other four 玄武区's.
    for case in &cases[4..] {
        assert_eq!(case_of(xuanwu, &case.case_id).await.status, CaseStatus::Open as i32);
        assert!(taken_in(linquan, &case.case_id).await.is_empty());
    }
    settled_without_dead_letters(&test).await;
    test.finish().await;
}

async fn case_of(clients: &Clients, case_id: &str) -> DropoutCase {
    case(clients, case_id).await
}
