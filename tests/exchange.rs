//! The national exchange on the real stack: a hub of its own that every province links to, so a
//! province that is down stops no one else; a province that joins at run time by configuration
//! alone; and cross-province messages that are signed, so a forged one — unsigned, signed by
//! another key, by a province that is not configured, or in another province's name — is refused
//! as a dead letter with its reason, and changes nothing.

mod common;

use std::collections::BTreeMap;

use common::handoffs::*;
use common::{TestOptions, TestStack, eventually};
use nol_auth::Role;
use nol_proto::v1::*;
use prost::Message;

/// Jiangsu → `destination`: a hand-off requested, delivered, accepted, completed; the case has one
/// owner at every step, read through the API.
async fn hand_over(test: &TestStack, case: &DropoutCase, destination_province: &str, destination: &str) {
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let receiver = test.clients(destination_province, destination, Role::Caseworker);
    // A province that just joined is known once the origin has read its peers again.
    let handoff = eventually("the hand-off to be requested", || async {
        match request(&xuanwu, &case.case_id, destination).await {
            Ok(handoff) => Ok(Some(handoff)),
            Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(None),
            Err(status) => Err(status.into()),
        }
    })
    .await;
    delivered(&xuanwu, &receiver, &handoff.handoff_id).await;
    assert_eq!(case_status(&xuanwu, &case.case_id).await, CaseStatus::HandoffPending);
    assert!(taken_in(&receiver, &case.case_id).await.is_empty(), "not yet owned at the destination");
    accept(&receiver, &handoff.handoff_id).await.expect("accepted");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    assert_eq!(case_status(&xuanwu, &case.case_id).await, CaseStatus::HandedOver);
    let there = until_taken_in(&receiver, &case.case_id).await;
    assert_eq!(there.region_code, destination);
}

async fn handoff_state(clients: &nol_stack::Clients, handoff_id: &str) -> HandoffState {
    HandoffState::try_from(handoff(clients, handoff_id, HandoffDirection::Outgoing).await.state).unwrap()
}

async fn case_status(clients: &nol_stack::Clients, case_id: &str) -> CaseStatus {
    CaseStatus::try_from(case(clients, case_id).await.status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_down_stops_no_one_else_and_a_province_joins_at_run_time() {
    let mut test = TestStack::start_with(TestOptions {
        more_provinces: vec!["410000"],
        extra_env: BTreeMap::from([("NOL_HANDOFF_RESEND_SECS".to_owned(), "1".to_owned())]),
        ..TestOptions::default()
    })
    .await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let to_anhui = migrant_case(&xuanwu, "王小明", 1, "341221").await;
    let to_henan = migrant_case(&xuanwu, "李小红", 2, "410102").await;
    let to_guangxi = migrant_case(&xuanwu, "黄小刚", 3, "450102").await;

    // 河南 goes down entirely: its services and its nats-server.
    test.stack_mut().province_mut("410000").stop().await.unwrap();
    test.stack_mut().nats[2].kill().await.unwrap();

    // 江苏 and 安徽 exchange as before: the hub is no province's server.
    hand_over(&test, &to_anhui, "340000", "341221").await;

    // A hand-off to 河南 waits, visibly: requested at the origin, the case pending there.
    let waiting = request(&xuanwu, &to_henan.case_id, "410102").await.expect("requested while 河南 is down");
    assert_eq!(
        handoff(&xuanwu, &waiting.handoff_id, HandoffDirection::Outgoing).await.state,
        HandoffState::Requested as i32
    );
    assert_eq!(case_status(&xuanwu, &to_henan.case_id).await, CaseStatus::HandoffPending);

    // 广西 joins while everything runs: no link to it before, a hand-off to it after.
    let before = request(&xuanwu, &to_guangxi.case_id, "450102").await.unwrap_err();
    assert_eq!(before.code(), tonic::Code::FailedPrecondition, "{before:?}");
    assert_eq!(case_status(&xuanwu, &to_guangxi.case_id).await, CaseStatus::Open, "a refused request changes nothing");
    test.add_province("450000").await;
    hand_over(&test, &to_guangxi, "450000", "450102").await;

    // 河南 comes back: the waiting request is re-sent, received and decided.
    test.stack_mut().nats[2].restart().await.unwrap();
    {
        let henan = test.stack_mut().province_mut("410000");
        for service in [&mut henan.registry, &mut henan.cases, &mut henan.transfer, &mut henan.reporting] {
            service.restart().await.unwrap();
        }
    }
    let zhongyuan = test.clients("410000", "410102", Role::Caseworker);
    delivered(&xuanwu, &zhongyuan, &waiting.handoff_id).await;
    accept(&zhongyuan, &waiting.handoff_id).await.expect("accepted");
    until(&xuanwu, &waiting.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    until_taken_in(&zhongyuan, &to_henan.case_id).await;

    settled_without_dead_letters(&test).await;
    test.finish().await;
}

/// A message as a sender would publish it into 安徽's stream: `signer` signs it with `key`
/// unless `key` is `None`.
struct Forgery {
    subject: String,
    payload: Vec<u8>,
    signer: Option<(String, nol_pii::ExchangeSigningKey)>,
}

impl Forgery {
    /// A hand-off request; returns it with its hand-off id and event id.
    fn handoff_request(origin_province: &str, source: &str, origin: &str) -> (Forgery, String, String) {
        let handoff_id = uuid::Uuid::now_v7().to_string();
        let request = HandoffRequested {
            handoff_id: handoff_id.clone(),
            case_id: uuid::Uuid::now_v7().to_string(),
            origin_region_code: origin.into(),
            destination_region_code: "341221".into(),
            reason: "伪造".into(),
            ..Default::default()
        };
        let header = nol_events::EventHeader {
            event_type: nol_events::HANDOFF_REQUESTED,
            source_region: nol_region::RegionCode::parse(source).unwrap(),
            aggregate_type: "handoff",
            aggregate_id: &handoff_id,
            aggregate_sequence: 1,
            actor: "forger",
        };
        let envelope = nol_events::envelope(header, &request, chrono::Utc::now(), Default::default());
        let forgery = Forgery {
            subject: format!("{{prefix}}.340000.xp.{origin_province}.transfer.handoff_requested.341221"),
            payload: envelope.encode_to_vec(),
            signer: None,
        };
        (forgery, handoff_id, envelope.event_id)
    }

    fn signed_by(mut self, province: &str, key: nol_pii::ExchangeSigningKey) -> Forgery {
        self.signer = Some((province.to_owned(), key));
        self
    }

    async fn publish(self, test: &TestStack) {
        let subject = self.subject.replace("{prefix}", &test.subject_prefix);
        let mut headers = async_nats::HeaderMap::new();
        if let Some((province, key)) = &self.signer {
            let signature = key.sign_base64(&nol_backbone::exchange::signing_input(&subject, &self.payload));
            headers.insert(nol_backbone::exchange::SIGNER_HEADER, province.as_str());
            headers.insert(nol_backbone::exchange::SIGNATURE_HEADER, signature.as_str());
        }
        let client =
            nol_backbone::connect_nats(&test.stack().nats[1].client_url(), "forger", test.stack().nats[1].client_tls())
                .await
                .unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish_with_headers(subject, headers, self.payload.into())
            .await
            .expect("published")
            .await
            .expect("stored by 安徽's stream");
    }
}

fn key_of(test: &TestStack, province: &str) -> nol_pii::ExchangeSigningKey {
    let dir = test.stack().keys.service_dir(&nol_region::RegionCode::parse(province).unwrap(), "transfer");
    nol_pii::ExchangeSigningKey::from_base64(&std::fs::read_to_string(dir.join("sign.key")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cross_province_messages_are_refused_as_dead_letters_and_change_nothing() {
    let test = TestStack::start_with(TestOptions { more_provinces: vec!["410000"], ..TestOptions::default() }).await;
    let jiangsu = key_of(&test, "320000");
    let mut forged = Vec::new();
    // Unsigned.
    let (unsigned, id, event) = Forgery::handoff_request("320000", "320102", "320102");
    forged.push((id, event, "exchange: unsigned message from province 320000"));
    unsigned.publish(&test).await;
    // Signed by a key that is not Jiangsu's.
    let (wrong_key, id, event) = Forgery::handoff_request("320000", "320102", "320102");
    forged.push((id, event, "exchange: the signature of province 320000 does not verify"));
    wrong_key.signed_by("320000", nol_pii::ExchangeSigningKey::generate()).publish(&test).await;
    // Jiangsu's real key, but the header names another signer than the subject's origin.
    let (other_signer, id, event) = Forgery::handoff_request("320000", "320102", "320102");
    forged.push((id, event, "exchange: signed by province 410000, but the subject names province 320000"));
    other_signer.signed_by("410000", jiangsu.clone()).publish(&test).await;
    // A province that is not configured here.
    let (stranger, id, event) = Forgery::handoff_request("450000", "450102", "450102");
    forged.push((id, event, "exchange: province 450000 is not configured here"));
    stranger.signed_by("450000", nol_pii::ExchangeSigningKey::generate()).publish(&test).await;
    // Signed by Jiangsu, with an envelope from another province.
    let (elsewhere, id, event) = Forgery::handoff_request("320000", "410102", "410102");
    forged.push((id, event, "exchange: the envelope names source region 410102"));
    elsewhere.signed_by("320000", jiangsu.clone()).publish(&test).await;
    // Signed by Jiangsu, starting a hand-off in Henan's name.
    let (in_henans_name, id, event) = Forgery::handoff_request("320000", "320102", "410102");
    forged.push((id, event, "the origin \"410102\" is not in the sending province"));
    in_henans_name.signed_by("320000", jiangsu).publish(&test).await;

    // Each is parked by 安徽's transfer service with its reason; none became a hand-off.
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let token = test.token("340000", Role::Operator);
    let transfer_url = test.stack().province("340000").transfer.url();
    let tls = test.stack().province("340000").client_tls.clone();
    let letters = eventually("the forgeries to be parked", || {
        let token = token.clone();
        let transfer_url = transfer_url.clone();
        let tls = tls.clone();
        async move {
            let mut admin = nol_stack::client::admin(&transfer_url, &tls, &token)?;
            let letters =
                admin.list_dead_letters(ListDeadLettersRequest { page_size: 50 }).await?.into_inner().dead_letters;
            Ok((letters.len() >= 6).then_some(letters))
        }
    })
    .await;
    assert_eq!(letters.len(), 6, "{letters:#?}");
    for (handoff_id, event_id, reason) in &forged {
        let found = letters.iter().find(|letter| letter.event_id == *event_id);
        let letter = found.unwrap_or_else(|| panic!("no dead letter for {reason}: {letters:#?}"));
        assert!(letter.reason.contains(reason), "{} does not say {reason}", letter.reason);
        let status = linquan
            .transfer
            .clone()
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff_id.clone(),
                direction: HandoffDirection::Incoming as i32,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{reason}: {status:?}");
    }
    assert!(all_handoffs(&linquan, HandoffDirection::Incoming).await.unwrap().is_empty());

    // The alarm's counter says the same.
    let metrics_url = format!("http://{}/metrics", test.stack().province("340000").transfer.metrics_addr);
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    let refused = metrics.lines().find(|line| line.starts_with("nol_exchange_refused_total")).unwrap_or_default();
    assert!(refused.trim_end().ends_with(" 5"), "five refused by the signature check: {refused}");

    // The genuine exchange still works after all that.
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let child = migrant_case(&xuanwu, "王小明", 1, "341221").await;
    let handoff = request(&xuanwu, &child.case_id, "341221").await.expect("requested");
    delivered(&xuanwu, &linquan, &handoff.handoff_id).await;

    // 河南, configured and signing as itself, accepts a hand-off between 江苏 and 安徽: refused at
    // 江苏, whose hand-off still waits for 安徽.
    let accepted = HandoffAccepted {
        handoff_id: handoff.handoff_id.clone(),
        case_id: child.case_id.clone(),
        origin_region_code: "320102".into(),
        destination_region_code: "341221".into(),
        accepted_by: "caseworker@410102".into(),
        ..Default::default()
    };
    let header = nol_events::EventHeader {
        event_type: nol_events::HANDOFF_ACCEPTED,
        source_region: nol_region::RegionCode::parse("410102").unwrap(),
        aggregate_type: "handoff",
        aggregate_id: &handoff.handoff_id,
        aggregate_sequence: 2,
        actor: "caseworker@410102",
    };
    let envelope = nol_events::envelope(header, &accepted, chrono::Utc::now(), Default::default());
    let subject = format!("{}.320000.xp.410000.transfer.handoff_accepted.320102", test.subject_prefix);
    let payload = envelope.encode_to_vec();
    let mut headers = async_nats::HeaderMap::new();
    let henan = key_of(&test, "410000");
    headers.insert(nol_backbone::exchange::SIGNER_HEADER, "410000");
    headers.insert(
        nol_backbone::exchange::SIGNATURE_HEADER,
        henan.sign_base64(&nol_backbone::exchange::signing_input(&subject, &payload)).as_str(),
    );
    let client =
        nol_backbone::connect_nats(&test.stack().nats[0].client_url(), "forger", test.stack().nats[0].client_tls())
            .await
            .unwrap();
    async_nats::jetstream::new(client)
        .publish_with_headers(subject, headers, payload.into())
        .await
        .unwrap()
        .await
        .expect("stored by 江苏's stream");
    let jiangsu_url = test.stack().province("320000").transfer.url();
    let jiangsu_token = test.token("320000", Role::Operator);
    let tls = test.stack().province("320000").client_tls.clone();
    let letter = eventually("河南's acceptance to be parked in 江苏", || {
        let (url, token, event_id) = (jiangsu_url.clone(), jiangsu_token.clone(), envelope.event_id.clone());
        let tls = tls.clone();
        async move {
            let mut admin = nol_stack::client::admin(&url, &tls, &token)?;
            let letters =
                admin.list_dead_letters(ListDeadLettersRequest { page_size: 50 }).await?.into_inner().dead_letters;
            Ok(letters.into_iter().find(|letter| letter.event_id == event_id))
        }
    })
    .await;
    assert!(letter.reason.contains("not the other party"), "{}", letter.reason);
    assert_eq!(handoff_state(&xuanwu, &handoff.handoff_id).await, HandoffState::Delivered, "still waiting for 安徽");
    accept(&linquan, &handoff.handoff_id).await.expect("accepted by 安徽");
    until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    test.finish().await;
}
