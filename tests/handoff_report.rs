//! Reporting counts hand-offs (R11) on the side of each county that sent or received them —
//! requested, received, accepted, rejected by reason, cancelled, pending and overdue — and rolls
//! them up to the city and the province, from real hand-offs between Jiangsu and Anhui driven
//! through the API with the services' rule clock moved past the decision's deadline (R12).

mod common;

use common::cases::nine_am;
use common::{RuleClock, TestStack, eventually, resident_id};
use nol_auth::Role;
use nol_proto::v1::{
    AcceptHandoffRequest, CancelHandoffRequest, CreatePupilRequest, DeadlinePolicy, DropoutCause,
    GetDeadlinePolicyRequest, GetHandoffRequest, GetRegionSummaryRequest, HandoffCounts, HandoffRejectReason,
    HandoffRejectionCount, HandoffTally, ListOverdueWorkRequest, OpenCaseRequest, OverdueKind, Pupil,
    RejectHandoffRequest, RequestHandoffRequest, UpdateDeadlinePolicyRequest,
};
use nol_stack::Clients;
use tonic::Code;
use tonic_types::StatusExt;

/// Registers a child of 南京市玄武区 (hukou in 临泉县, Anhui) and opens its case; returns the case id.
async fn open_case(xuanwu: &Clients, name: &str, sequence: u16) -> String {
    let pupil = xuanwu
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: name.into(),
                resident_id: resident_id("341221", sequence),
                hukou_region_code: "341221".into(),
                school_code: "3201020001".into(),
                grade: 6,
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .unwrap();
    xuanwu
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: pupil.pupil_id,
            causes: vec![DropoutCause::FamilyPoverty as i32],
            notes: String::new(),
        })
        .await
        .expect("case opened")
        .into_inner()
        .dropout_case
        .unwrap()
        .case_id
}

/// Hands a case of 玄武区 over to `destination`; returns the hand-off id.
async fn request(xuanwu: &Clients, case_id: &str, destination: &str) -> String {
    xuanwu
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest {
            case_id: case_id.into(),
            destination_region_code: destination.into(),
            reason: "家庭已返回户籍地".into(),
            ..Default::default()
        })
        .await
        .expect("hand-off requested")
        .into_inner()
        .handoff
        .unwrap()
        .handoff_id
}

/// Waits until the destination has recorded the hand-off.
async fn arrived(destination: &Clients, handoff_id: &str) {
    eventually("the hand-off to arrive at the destination", || {
        let mut transfer = destination.transfer.clone();
        let handoff_id = handoff_id.to_owned();
        async move {
            match transfer.get_handoff(GetHandoffRequest { handoff_id, ..Default::default() }).await {
                Ok(_) => Ok(Some(())),
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => Err(status.into()),
            }
        }
    })
    .await;
}

/// The hand-off counts of `region` as `clients` see them, once they equal `expected`: reporting
/// counts from events, so the test waits for them (and fails with the last figures it saw).
async fn reported(clients: &Clients, region: &str, expected: &HandoffCounts) -> HandoffCounts {
    eventually(&format!("reporting to count the hand-offs of {region}"), || {
        let mut reporting = clients.reporting.clone();
        let region = region.to_owned();
        async move {
            let summary = reporting
                .get_region_summary(GetRegionSummaryRequest { region_code: region })
                .await?
                .into_inner()
                .summary
                .unwrap();
            let counts = summary.handoffs.unwrap_or_default();
            Ok((&counts == expected).then_some(counts))
        }
    })
    .await
}

/// One side's figures: `rejected` lists the reasons met (others count zero).
fn tally(
    accepted: i64,
    rejected: &[(HandoffRejectReason, i64)],
    cancelled: i64,
    pending: i64,
    overdue: i64,
) -> HandoffTally {
    let reasons = [
        HandoffRejectReason::ChildNotFound,
        HandoffRejectReason::HukouNotHere,
        HandoffRejectReason::AlreadyHasCase,
        HandoffRejectReason::DataWrong,
        HandoffRejectReason::Other,
    ];
    let rejected_by_reason: Vec<HandoffRejectionCount> = reasons
        .into_iter()
        .map(|reason| HandoffRejectionCount {
            reason: reason as i32,
            count: rejected.iter().filter(|(met, _)| *met == reason).map(|(_, count)| count).sum(),
        })
        .collect();
    let rejected: i64 = rejected.iter().map(|(_, count)| count).sum();
    HandoffTally {
        total: accepted + rejected + cancelled + pending,
        accepted,
        rejected,
        rejected_by_reason,
        cancelled,
        pending,
        overdue,
    }
}

fn counts(outgoing: HandoffTally, incoming: HandoffTally, as_of: &str) -> HandoffCounts {
    HandoffCounts { outgoing: Some(outgoing), incoming: Some(incoming), overdue_as_of: as_of.into() }
}

fn none() -> HandoffTally {
    tally(0, &[], 0, 0, 0)
}

/// Overdue hand-off decisions the case service lists for `region`'s subtree (ListOverdueWork).
async fn overdue_decisions(clients: &Clients, region: &str) -> i64 {
    clients
        .supervision
        .clone()
        .list_overdue_work(ListOverdueWorkRequest {
            region_code: region.into(),
            kind: OverdueKind::HandoffDecision as i32,
            ..Default::default()
        })
        .await
        .expect("overdue work listed")
        .into_inner()
        .total_count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoffs_are_counted_on_both_sides_by_outcome_and_rolled_up() {
    let clock = RuleClock::at(&nine_am("2027-03-01"));
    let test = TestStack::start_with(clock.options()).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let jiangsu = test.clients("320000", "320000", Role::Supervisor);
    let fuyang = test.clients("340000", "341200", Role::Supervisor);
    let anhui = test.clients("340000", "340000", Role::Supervisor);

    // 1 March: four hand-offs from 玄武区 to 临泉县. Anhui accepts one and refuses one (the hukou
    // is not there); Jiangsu withdraws one after it arrived; one waits.
    let mut cases = Vec::new();
    for (index, name) in ["随迁甲", "随迁乙", "随迁丙", "随迁丁", "随迁戊", "随迁己"].into_iter().enumerate()
    {
        cases.push(open_case(&xuanwu, name, 51 + 2 * index as u16).await);
    }
    let accepted = request(&xuanwu, &cases[0], "341221").await;
    let rejected = request(&xuanwu, &cases[1], "341221").await;
    let cancelled = request(&xuanwu, &cases[2], "341221").await;
    let waiting = request(&xuanwu, &cases[3], "341221").await;
    for handoff_id in [&accepted, &rejected, &cancelled, &waiting] {
        arrived(&linquan, handoff_id).await;
    }
    linquan
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: accepted.clone() })
        .await
        .expect("accepted");
    linquan
        .transfer
        .clone()
        .reject_handoff(RejectHandoffRequest {
            handoff_id: rejected.clone(),
            reason: HandoffRejectReason::HukouNotHere as i32,
            note: "该生户籍已迁出临泉县".into(),
        })
        .await
        .expect("rejected");
    xuanwu
        .transfer
        .clone()
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: cancelled.clone(), reason: "家长决定暂不返乡".into()
        })
        .await
        .expect("cancel asked");

    let hukou = [(HandoffRejectReason::HukouNotHere, 1)];
    let sent = tally(1, &hukou, 1, 1, 0);
    let first_day = "2027-03-01";
    reported(&xuanwu, "320102", &counts(sent.clone(), none(), first_day)).await;
    reported(&linquan, "341221", &counts(none(), sent.clone(), first_day)).await;
    reported(&jiangsu, "320000", &counts(sent.clone(), none(), first_day)).await;
    reported(&anhui, "340000", &counts(none(), sent.clone(), first_day)).await;
    assert_eq!(overdue_decisions(&xuanwu, "320102").await, 0);

    // 9 March: the waiting hand-off's decision was due by 8 March (policy: 7 days), on both sides.
    // Two new hand-offs wait, not yet due: to 临泉县, and to 秦淮区 inside Jiangsu (both of whose
    // sides are then counted by Jiangsu).
    let ninth = "2027-03-09";
    clock.set(&nine_am(ninth));
    let fresh = request(&xuanwu, &cases[4], "341221").await;
    let inside = request(&xuanwu, &cases[5], "320104").await;
    arrived(&linquan, &fresh).await;
    arrived(&qinhuai, &inside).await;

    let sent = tally(1, &hukou, 1, 3, 1);
    let received_in_anhui = tally(1, &hukou, 1, 2, 1);
    let received_in_qinhuai = tally(0, &[], 0, 1, 0);
    let xuanwu_counts = reported(&xuanwu, "320102", &counts(sent.clone(), none(), ninth)).await;
    assert_eq!(xuanwu_counts.outgoing.unwrap().total, 6, "six hand-offs requested by 玄武区");
    reported(&qinhuai, "320104", &counts(none(), received_in_qinhuai.clone(), ninth)).await;
    // The city and the province see both sides of the hand-off inside Nanjing.
    reported(&nanjing, "320100", &counts(sent.clone(), received_in_qinhuai.clone(), ninth)).await;
    reported(&jiangsu, "320000", &counts(sent.clone(), received_in_qinhuai.clone(), ninth)).await;
    let linquan_counts = reported(&linquan, "341221", &counts(none(), received_in_anhui.clone(), ninth)).await;
    assert_eq!(linquan_counts.incoming.unwrap().total, 5, "five hand-offs received by 临泉县");
    reported(&fuyang, "341200", &counts(none(), received_in_anhui.clone(), ninth)).await;
    reported(&anhui, "340000", &counts(none(), received_in_anhui.clone(), ninth)).await;
    // Overdue as the case service lists it, on each side.
    assert_eq!(overdue_decisions(&xuanwu, "320102").await, 1);
    assert_eq!(overdue_decisions(&linquan, "341221").await, 1);
    assert_eq!(overdue_decisions(&qinhuai, "320104").await, 0);

    // The late decision: 临泉县 finds no such child. Nothing is overdue any more.
    linquan
        .transfer
        .clone()
        .reject_handoff(RejectHandoffRequest {
            handoff_id: waiting.clone(),
            reason: HandoffRejectReason::ChildNotFound as i32,
            note: "经核查辖区内无此学生".into(),
        })
        .await
        .expect("rejected late");
    let both = [(HandoffRejectReason::HukouNotHere, 1), (HandoffRejectReason::ChildNotFound, 1)];
    reported(&jiangsu, "320000", &counts(tally(1, &both, 1, 2, 0), received_in_qinhuai.clone(), ninth)).await;
    reported(&anhui, "340000", &counts(none(), tally(1, &both, 1, 1, 0), ninth)).await;

    // Jiangsu shortens its decision deadline to one day: its two waiting hand-offs (requested on
    // 9 March) are due on 10 March at the origin, overdue on the 11th; the destinations' dates
    // (set by their own provinces at arrival: 16 March) stay.
    let policy = jiangsu
        .supervision
        .clone()
        .get_deadline_policy(GetDeadlinePolicyRequest {})
        .await
        .expect("policy read")
        .into_inner()
        .policy
        .unwrap();
    jiangsu
        .supervision
        .clone()
        .update_deadline_policy(UpdateDeadlinePolicyRequest {
            policy: Some(DeadlinePolicy { handoff_decision_days: 1, ..policy }),
        })
        .await
        .expect("policy updated");
    let eleventh = "2027-03-11";
    clock.set(&nine_am(eleventh));
    reported(&nanjing, "320100", &counts(tally(1, &both, 1, 2, 2), received_in_qinhuai, eleventh)).await;
    reported(&anhui, "340000", &counts(none(), tally(1, &both, 1, 1, 0), eleventh)).await;
    assert_eq!(overdue_decisions(&xuanwu, "320102").await, 2);
    assert_eq!(overdue_decisions(&qinhuai, "320104").await, 0);
    assert_eq!(overdue_decisions(&linquan, "341221").await, 0);
    println!(
        "hand-offs: 玄武区 requested 6 (accepted 1, rejected 2, cancelled 1, pending 2); 临泉县 received 5; \
         秦淮区 received 1; overdue 1 on each side on {ninth}, none after the late decision, \
         2 at 玄武区 on {eleventh} under a one-day deadline"
    );

    // Region scope: a county sees only itself, and a bad code is refused field by field.
    let denied = qinhuai
        .reporting
        .clone()
        .get_region_summary(GetRegionSummaryRequest { region_code: "320102".into() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let foreign = jiangsu
        .reporting
        .clone()
        .get_region_summary(GetRegionSummaryRequest { region_code: "341221".into() })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied, "{foreign:?}");
    for bad in ["32010", "3201xx", "329999"] {
        let status = jiangsu
            .reporting
            .clone()
            .get_region_summary(GetRegionSummaryRequest { region_code: bad.into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        let details = status.get_error_details();
        let violations = details.bad_request().expect("BadRequest details").field_violations.clone();
        assert_eq!(violations.len(), 1, "{bad}");
        assert_eq!(violations[0].field, "region_code", "{bad}");
        let chinese = violations[0].localized_message.as_ref().expect("a Chinese message");
        assert_eq!(chinese.locale, "zh-CN");
        assert!(chinese.message.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{bad}: {}", chinese.message);
        assert!(details.localized_message().expect("summary").message.starts_with("请求有误"), "{bad}");
    }

    test.finish().await;
}
