//! The walking skeleton's scenario, end to end on real parts: two provinces (江苏 320000 and
//! 安徽 340000), each with its own nats-server (linked as leaf nodes), its own PostgreSQL database
//! and its four service processes; every step asserted through the gRPC API.

mod common;

use common::{TestStack, code, eventually, resident_id};
use futures::StreamExt;
use nol_auth::Role;
use nol_proto::v1::{
    AcceptHandoffRequest, CaseSource, CaseStatus, CreatePupilRequest, DropoutCause, GetCaseRequest, GetHandoffRequest,
    GetRegionSummaryRequest, HandoffDirection, HandoffState, ListCasesRequest, ListHandoffsRequest, OpenCaseRequest,
    Pupil, RequestHandoffRequest, Sex,
};
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrant_childs_case_is_handed_from_jiangsu_to_anhui() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let child_id = resident_id("341221", 31);

    // 1. A case worker of 南京市玄武区 registers a migrant child whose hukou is in 临泉县.
    let pupil = xuanwu
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "李小明".into(),
                resident_id: child_id.clone(),
                hukou_region_code: "341221".into(),
                school_code: "3201020001".into(),
                grade: 5,
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .unwrap();
    assert!(pupil.migrant, "hukou outside the enrollment county makes a migrant child");
    assert_eq!(pupil.resident_id, "", "the full number is not echoed back");
    // The mask keeps the last four characters and the year of birth, never the birth date: the
    // date and the old mask's digits (341221********1234) were the whole number.
    assert_eq!(pupil.resident_id_masked, format!("**************{}", &child_id[14..]));
    assert_eq!((pupil.birth_date.as_str(), pupil.birth_year), ("", 2013));
    assert_eq!(pupil.sex, Sex::Male as i32);

    // 2. The child stops attending: a dropout case is opened in Jiangsu.
    let opened = xuanwu
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: pupil.pupil_id.clone(),
            causes: vec![DropoutCause::FamilyPoverty as i32],
            notes: "连续两周未到校".into(),
        })
        .await
        .expect("case opened")
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(opened.status, CaseStatus::Open as i32);
    assert_eq!(opened.region_code, "320102");
    assert_eq!(opened.source, CaseSource::Local as i32);

    // 3. The family moved back: under R11 the case is handed to the hukou region.
    let requested = xuanwu
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest {
            case_id: opened.case_id.clone(),
            destination_region_code: "341221".into(),
            reason: "家庭已返回户籍地".into(),
            ..Default::default()
        })
        .await
        .expect("hand-off requested")
        .into_inner()
        .handoff
        .unwrap();
    // Requested — or already received: the case service publishes the reservation, and the
    // transfer service's consumer may send the request (and Anhui answer) before this call returns.
    assert!(
        [HandoffState::Requested as i32, HandoffState::Delivered as i32].contains(&requested.state),
        "{requested:?}"
    );
    assert_eq!(requested.direction, HandoffDirection::Outgoing as i32);
    let handoff_id = requested.handoff_id.clone();

    // 4. The request crosses to Anhui, which records it and acknowledges receipt; an Anhui case
    //    worker sees it as incoming.
    let incoming = eventually("Anhui to list the incoming hand-off", || {
        let mut transfer = linquan.transfer.clone();
        async move {
            let list = transfer
                .list_handoffs(ListHandoffsRequest {
                    direction: HandoffDirection::Incoming as i32,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok(list.handoffs.into_iter().next())
        }
    })
    .await;
    assert_eq!(incoming.handoff_id, handoff_id);
    assert_eq!(incoming.state, HandoffState::Delivered as i32);
    assert_eq!(incoming.origin_region_code, "320102");
    let child = incoming.child.clone().unwrap();
    assert_eq!(child.full_name, "李小明");
    assert_eq!(child.resident_id_masked, pupil.resident_id_masked);
    eventually("Jiangsu to record Anhui's receipt", || {
        let mut transfer = xuanwu.transfer.clone();
        let handoff_id = handoff_id.clone();
        async move {
            let handoff = transfer
                .get_handoff(GetHandoffRequest { handoff_id, ..Default::default() })
                .await?
                .into_inner()
                .handoff
                .unwrap();
            Ok((handoff.state == HandoffState::Delivered as i32).then_some(()))
        }
    })
    .await;
    // Until the accept, Jiangsu still owns the case (pending) and Anhui owns nothing.
    let pending = eventually("Jiangsu's case to show the pending hand-off", || {
        let mut cases = xuanwu.cases.clone();
        let case_id = opened.case_id.clone();
        async move {
            let case = cases
                .get_case(GetCaseRequest { case_id, ..Default::default() })
                .await?
                .into_inner()
                .dropout_case
                .unwrap();
            Ok((case.status == CaseStatus::HandoffPending as i32).then_some(case))
        }
    })
    .await;
    assert_eq!(pending.handoff_destination_region_code, "341221");
    let anhui_cases = linquan.cases.clone().list_cases(ListCasesRequest::default()).await.unwrap().into_inner();
    assert!(anhui_cases.dropout_cases.is_empty(), "no second owner before the accept");

    // 5. Anhui accepts: its case service owns an open case; Jiangsu's is marked handed over.
    let accepted = linquan
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: handoff_id.clone() })
        .await
        .expect("hand-off accepted")
        .into_inner()
        .handoff
        .unwrap();
    // Accepted — or already completed: the origin's answer may come back before the call returns.
    assert!([HandoffState::Accepted as i32, HandoffState::Completed as i32].contains(&accepted.state), "{accepted:?}");
    assert_eq!(accepted.accepted_by, "caseworker@341221");

    let taken_in = eventually("Anhui's case service to open the case", || {
        let mut cases = linquan.cases.clone();
        async move {
            let list = cases.list_cases(ListCasesRequest::default()).await?.into_inner();
            Ok(list.dropout_cases.into_iter().next())
        }
    })
    .await;
    assert_eq!(taken_in.status, CaseStatus::Open as i32);
    assert_eq!(taken_in.region_code, "341221");
    assert_eq!(taken_in.source, CaseSource::Handoff as i32);
    assert_eq!(taken_in.origin_region_code, "320102");
    assert_eq!(taken_in.origin_case_id, opened.case_id);
    assert_eq!(taken_in.handoff_id, handoff_id);
    assert_eq!(taken_in.causes, vec![DropoutCause::FamilyPoverty as i32]);
    assert_eq!(taken_in.child.as_ref().unwrap().resident_id_masked, pupil.resident_id_masked);

    let handed_over = eventually("Jiangsu's case to be marked handed over", || {
        let mut cases = xuanwu.cases.clone();
        let case_id = opened.case_id.clone();
        async move {
            let case = cases
                .get_case(GetCaseRequest { case_id, ..Default::default() })
                .await?
                .into_inner()
                .dropout_case
                .unwrap();
            Ok((case.status == CaseStatus::HandedOver as i32).then_some(case))
        }
    })
    .await;
    assert_eq!(handed_over.handoff_destination_region_code, "341221");
    assert_eq!(handed_over.notes, "连续两周未到校", "the history stays with the origin");

    // 6. Each province's reporting shows it: Jiangsu one case handed out, Anhui one taken in.
    let jiangsu_bureau = test.clients("320000", "320000", Role::Supervisor);
    let anhui_bureau = test.clients("340000", "340000", Role::Supervisor);
    let jiangsu = eventually("Jiangsu's report to count the hand-off", || {
        let mut reporting = jiangsu_bureau.reporting.clone();
        async move {
            let summary =
                reporting.get_region_summary(GetRegionSummaryRequest::default()).await?.into_inner().summary.unwrap();
            Ok((summary.cases_handed_out == 1).then_some(summary))
        }
    })
    .await;
    assert_eq!((jiangsu.pupils_registered, jiangsu.cases_opened, jiangsu.cases_active), (1, 1, 0));
    assert_eq!(jiangsu.region_name, "江苏省");
    let anhui = eventually("Anhui's report to count the case taken in", || {
        let mut reporting = anhui_bureau.reporting.clone();
        async move {
            let summary = reporting
                .get_region_summary(GetRegionSummaryRequest { region_code: "341200".into() })
                .await?
                .into_inner()
                .summary
                .unwrap();
            Ok((summary.cases_taken_in == 1).then_some(summary))
        }
    })
    .await;
    assert_eq!((anhui.cases_opened, anhui.cases_active, anhui.cases_handed_out), (0, 1, 0));

    // The resident ID number never travels in clear, and the hand-off is one trace across both
    // provinces: every message about it, in either stream, carries the request's trace id.
    let mut trace_ids = std::collections::BTreeSet::new();
    for (index, province) in [(0, "320000"), (1, "340000")] {
        let messages = stream_messages(&test, index, province).await;
        assert!(!messages.is_empty());
        for (subject, body) in messages {
            assert!(
                !body.windows(child_id.len()).any(|window| window == child_id.as_bytes()),
                "resident ID in clear on {subject}"
            );
            let envelope = nol_proto::v1::EventEnvelope::decode(body.as_slice()).unwrap();
            if envelope.aggregate_id == handoff_id || subject.contains(".case_handed_over.") {
                let traceparent = envelope.trace_context.get("traceparent").cloned().unwrap_or_default();
                trace_ids.insert(traceparent.split('-').nth(1).unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(trace_ids.len(), 1, "one hand-off, one trace: {trace_ids:?}");
    assert!(!trace_ids.iter().next().unwrap().is_empty());
    let _ = code("320000");

    test.finish().await;
}

/// Every message in a province's stream, as (subject, body).
async fn stream_messages(test: &TestStack, nats_index: usize, province: &str) -> Vec<(String, Vec<u8>)> {
    let client = nol_backbone::connect_nats(
        &test.stack().nats[nats_index].client_url(),
        "test",
        test.stack().nats[nats_index].client_tls(),
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(client);
    let stream_name = format!("{}_{province}", test.subject_prefix.to_uppercase());
    let stream = js.get_stream(&stream_name).await.unwrap();
    let consumer =
        stream.create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default()).await.unwrap();
    let count = stream.get_info().await.unwrap().state.messages as usize;
    let mut messages = consumer.messages().await.unwrap().take(count);
    let mut out = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        out.push((message.subject.to_string(), message.payload.to_vec()));
    }
    out
}
