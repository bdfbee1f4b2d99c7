//! Bad input gets the right gRPC code, a message a case worker understands, field details where a
//! field is wrong, and leaves no partial record.

mod common;

use common::handoffs::zh;
use common::{TestStack, counts, eventually, resident_id};
use nol_auth::Role;
use nol_proto::v1::{
    AcceptHandoffRequest, CreatePupilRequest, DropoutCause, GetPupilRequest, HandoffDirection, ListHandoffsRequest,
    ListPupilsRequest, OpenCaseRequest, Pupil, RequestHandoffRequest,
};
use nol_stack::Clients;
use tonic::Code;
use tonic_types::StatusExt;

fn pupil(resident_id: &str) -> Pupil {
    Pupil {
        full_name: "王芳".into(),
        resident_id: resident_id.into(),
        hukou_region_code: "341221".into(),
        school_code: "3201020001".into(),
        grade: 4,
        ..Default::default()
    }
}

async fn register(clients: &Clients, pupil: Pupil) -> Result<Pupil, tonic::Status> {
    Ok(clients
        .registry
        .clone()
        .create_pupil(CreatePupilRequest { pupil: Some(pupil) })
        .await?
        .into_inner()
        .pupil
        .unwrap())
}

/// The fields named in an INVALID_ARGUMENT's `google.rpc.BadRequest`.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_and_unknown_regions_are_refused_field_by_field_and_nothing_is_written() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let valid = resident_id("341221", 31);
    let mut wrong_check_digit = valid.clone();
    let last = if valid.ends_with('1') { "2" } else { "1" };
    wrong_check_digit.replace_range(17..18, last);

    let cases = [
        ("wrong length", pupil(&valid[..17]), vec!["pupil.resident_id"], "18 characters"),
        ("impossible date", pupil("341221201302300012"), vec!["pupil.resident_id"], "not a real date"),
        ("wrong check digit", pupil(&wrong_check_digit), vec!["pupil.resident_id"], "check digit"),
        (
            "unknown region code",
            Pupil { hukou_region_code: "349999".into(), ..pupil(&valid) },
            vec!["pupil.hukou_region_code"],
            "not a code of the GB/T 2260",
        ),
        (
            "a city where a county is needed, and no name",
            Pupil { hukou_region_code: "320100".into(), full_name: "".into(), ..pupil(&valid) },
            vec!["pupil.full_name", "pupil.hukou_region_code"],
            "not a county-level region",
        ),
        (
            // Refused by the codec's one check of every text before the handler runs.
            "a text longer than any field of any request may be",
            Pupil { full_name: "王".repeat(4001), ..pupil(&valid) },
            vec!["pupil.full_name"],
            "is longer than 4,000 characters",
        ),
    ];
    for (what, request, fields, message) in cases {
        let status = register(&xuanwu, request).await.expect_err(what);
        assert_eq!(violated_fields(&status), fields, "{what}");
        assert!(status.message().contains(message), "{what}: {}", status.message());
        assert!(!status.message().contains(&valid[6..14]), "{what}: the number is not echoed");
    }

    // Nothing half-written: no pupil, no event, no audit entry.
    let registry = test.database("320000", "registry").await;
    assert_eq!(counts::pupils(&registry).await.unwrap(), 0);
    assert_eq!(counts::registry_events(&registry).await.unwrap(), 0);
    let listed = xuanwu.registry.clone().list_pupils(ListPupilsRequest::default()).await.unwrap();
    assert!(listed.into_inner().pupils.is_empty());

    // A second registration of the same child is a conflict naming the first record.
    let first = register(&xuanwu, pupil(&valid)).await.unwrap();
    let status = register(&xuanwu, pupil(&valid)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains(&first.pupil_id), "{}", status.message());
    assert_eq!(counts::pupils(&registry).await.unwrap(), 1);
    assert_eq!(counts::registry_events(&registry).await.unwrap(), 1);
    // Seen from a sibling county, the conflict does not reveal the record.
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let status = register(&qinhuai, Pupil { school_code: "3201040001".into(), ..pupil(&valid) }).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(!status.message().contains(&first.pupil_id));

    // One child, one case: a second case for the same child is ALREADY_EXISTS.
    let open = OpenCaseRequest {
        pupil_id: first.pupil_id.clone(),
        causes: vec![DropoutCause::LearningDifficulty as i32],
        notes: String::new(),
    };
    xuanwu.cases.clone().open_case(open.clone()).await.unwrap();
    let status = xuanwu.cases.clone().open_case(open.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().starts_with("R2"), "{}", status.message());
    let no_cause =
        xuanwu.cases.clone().open_case(OpenCaseRequest { causes: vec![], ..open.clone() }).await.unwrap_err();
    assert_eq!(violated_fields(&no_cause), ["causes"]);
    let unknown_pupil = xuanwu
        .cases
        .clone()
        .open_case(OpenCaseRequest { pupil_id: uuid::Uuid::now_v7().to_string(), ..open })
        .await
        .unwrap_err();
    assert_eq!(unknown_pupil.code(), Code::NotFound);
    let cases_db = test.database("320000", "cases").await;
    assert_eq!(counts::cases(&cases_db).await.unwrap(), 1);
    // The one case's events: opened, and R10's notice to the hukou region (a migrant child).
    assert_eq!(counts::case_events(&cases_db).await.unwrap(), 2);

    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_see_only_their_own_subtree_and_province() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let registered = register(&xuanwu, pupil(&resident_id("341221", 33))).await.unwrap();
    let get = |clients: Clients| {
        let pupil_id = registered.pupil_id.clone();
        async move { clients.registry.clone().get_pupil(GetPupilRequest { pupil_id, ..Default::default() }).await }
    };

    // The own county, the city and the province above it see the pupil.
    for region in ["320102", "320100", "320000"] {
        let clients = test.clients("320000", region, Role::Supervisor);
        assert!(get(clients).await.is_ok(), "{region}");
    }
    // A sibling county does not.
    let sibling = get(test.clients("320000", "320104", Role::Caseworker)).await.unwrap_err();
    assert_eq!(sibling.code(), Code::PermissionDenied);
    assert!(sibling.message().contains("outside your region"), "{}", sibling.message());
    // Nor may a county list its city.
    let upward = xuanwu
        .registry
        .clone()
        .list_pupils(ListPupilsRequest { region_code: "320100".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(upward.code(), Code::PermissionDenied);
    // A token for another province is refused outright, even a province-level one.
    let other_province =
        get(Clients::for_province(test.stack().province("320000"), &test.token("340000", Role::Supervisor)).unwrap())
            .await
            .unwrap_err();
    assert_eq!(other_province.code(), Code::PermissionDenied);
    assert!(other_province.message().contains("安徽省"), "{}", other_province.message());
    // No token, or a forged one, is unauthenticated.
    let jiangsu = test.stack().province("320000");
    let anonymous = Clients::for_province(jiangsu, "not-a-token").unwrap();
    assert_eq!(get(anonymous).await.unwrap_err().code(), Code::Unauthenticated);
    let mut bare = nol_proto::v1::registry_service_client::RegistryServiceClient::new(
        jiangsu.client_tls.channel(&jiangsu.registry.url()).unwrap(),
    );
    let missing = bare.list_pupils(ListPupilsRequest::default()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(missing.message().contains("Bearer"));
    // A token for another audience, or living longer than the deployment allows, is refused.
    let keys_dir = test.stack().keys.province_dir(&nol_region::RegionCode::parse("320000").unwrap());
    let issuer_pem = std::fs::read(keys_dir.parent().unwrap().join("auth.pem")).unwrap();
    let xuanwu_code = nol_region::RegionCode::parse("320102").unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let elsewhere = nol_auth::TokenIssuer::from_pem(&issuer_pem)
        .unwrap()
        .with_audience("another-system")
        .issue("x", xuanwu_code, Role::Caseworker, hour)
        .unwrap();
    assert_eq!(
        get(Clients::for_province(jiangsu, &elsewhere).unwrap()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let two_days = test.stack().keys.token("x", xuanwu_code, Role::Caseworker, 48 * hour).unwrap();
    let too_long = get(Clients::for_province(jiangsu, &two_days).unwrap()).await.unwrap_err();
    assert_eq!(too_long.code(), Code::Unauthenticated);
    assert!(zh(&too_long).contains("有效期超过"), "{too_long:?}");
    // A revoked token is refused once the services read their keys again; others still pass.
    let revoked = test.token("320102", Role::Caseworker);
    let kept = test.token("320102", Role::Caseworker);
    assert!(get(Clients::for_province(jiangsu, &revoked).unwrap()).await.is_ok());
    test.stack().keys.revoke(&nol_auth::token_id(&revoked).unwrap()).unwrap();
    jiangsu.reload_peers();
    let refused = eventually("the revoked token to be refused", || async {
        match get(Clients::for_province(jiangsu, &revoked).unwrap()).await {
            Err(status) if status.code() == Code::Unauthenticated => Ok(Some(status)),
            _ => Ok(None),
        }
    })
    .await;
    assert!(zh(&refused).contains("吊销"), "{refused:?}");
    assert!(get(Clients::for_province(jiangsu, &kept).unwrap()).await.is_ok());
    // The identity provider's next key, once its public half is beside the current one.
    let (next_private, next_public) = nol_auth::generate_signing_key_pem().unwrap();
    let by_next = nol_auth::TokenIssuer::from_pem(next_private.as_bytes())
        .unwrap()
        .issue("x", xuanwu_code, Role::Caseworker, hour)
        .unwrap();
    assert_eq!(get(Clients::for_province(jiangsu, &by_next).unwrap()).await.unwrap_err().code(), Code::Unauthenticated);
    for service in nol_stack::SERVICES {
        std::fs::write(keys_dir.join(service).join("auth.next.pub.pem"), &next_public).unwrap();
    }
    jiangsu.reload_peers();
    eventually("the next key to be trusted", || async {
        Ok(get(Clients::for_province(jiangsu, &by_next).unwrap()).await.ok())
    })
    .await;
    assert!(get(Clients::for_province(jiangsu, &kept).unwrap()).await.is_ok(), "the current key still is");
    // The full resident ID number is for case workers only, and every read is audited.
    let full = GetPupilRequest { pupil_id: registered.pupil_id.clone(), view: nol_proto::v1::PupilView::Full as i32 };
    let shown = xuanwu.registry.clone().get_pupil(full.clone()).await.unwrap().into_inner().pupil.unwrap();
    assert_eq!(shown.resident_id, resident_id("341221", 33));
    assert_eq!(shown.birth_date, "2013-05-02", "the full view has the birth date; the masked one only the year");
    let supervisor = test.clients("320000", "320000", Role::Supervisor);
    assert_eq!(supervisor.registry.clone().get_pupil(full).await.unwrap_err().code(), Code::PermissionDenied);
    let registry = test.database("320000", "registry").await;
    let audited: Vec<(String, String)> =
        sqlx::query!("SELECT action, actor_region FROM registry_audit.audit_log ORDER BY id")
            .fetch_all(&registry)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.action, row.actor_region))
            .collect();
    assert!(audited.contains(&("pupil.read_full".to_owned(), "320102".to_owned())));
    assert!(audited.contains(&("pupil.read".to_owned(), "320000".to_owned())));

    // Health and reflection need no token.
    let channel = jiangsu.client_tls.endpoint(&jiangsu.cases.url()).unwrap().connect().await.unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: "nol.v1.CaseService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let channel = jiangsu.client_tls.endpoint(&jiangsu.cases.url()).unwrap().connect().await.unwrap();
    let mut reflection = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        reflection.message().await.unwrap().unwrap().message_response
    else {
        panic!("reflection did not list services");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|service| service.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "nol.v1.AdminService",
            "nol.v1.CaseHandoffService",
            "nol.v1.CaseService",
            "nol.v1.SupervisionService",
            "nol.v1.SuspectService"
        ]
    );

    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_off_refusals_leave_one_hand_off_and_one_owner() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let registered = register(&xuanwu, pupil(&resident_id("341221", 35))).await.unwrap();
    let case = xuanwu
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: registered.pupil_id,
            causes: vec![DropoutCause::GoneToWork as i32],
            notes: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    let request = |destination: &str| RequestHandoffRequest {
        case_id: case.case_id.clone(),
        destination_region_code: destination.into(),
        reason: "家庭已返回户籍地".into(),
        ..Default::default()
    };

    let same = xuanwu.transfer.clone().request_handoff(request("320102")).await.unwrap_err();
    assert_eq!(same.code(), Code::FailedPrecondition);
    assert!(same.message().contains("already owned by"), "{}", same.message());
    let city = xuanwu.transfer.clone().request_handoff(request("341200")).await.unwrap_err();
    assert_eq!(violated_fields(&city), ["destination_region_code"]);
    let missing_case = xuanwu
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest { case_id: uuid::Uuid::now_v7().to_string(), ..request("341221") })
        .await
        .unwrap_err();
    assert_eq!(missing_case.code(), Code::NotFound);
    let sibling = test.clients("320000", "320104", Role::Caseworker);
    let not_theirs = sibling.transfer.clone().request_handoff(request("341221")).await.unwrap_err();
    assert_eq!(not_theirs.code(), Code::PermissionDenied);

    let handoff =
        xuanwu.transfer.clone().request_handoff(request("341221")).await.unwrap().into_inner().handoff.unwrap();
    let twice = xuanwu.transfer.clone().request_handoff(request("341222")).await.unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);

    eventually("Anhui to receive the hand-off", || {
        let mut transfer = linquan.transfer.clone();
        async move {
            let list = transfer
                .list_handoffs(ListHandoffsRequest {
                    direction: HandoffDirection::Incoming as i32,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok((!list.handoffs.is_empty()).then_some(()))
        }
    })
    .await;
    let accept = AcceptHandoffRequest { handoff_id: handoff.handoff_id.clone() };
    let neighbour = test.clients("340000", "341222", Role::Caseworker);
    let wrong_county = neighbour.transfer.clone().accept_handoff(accept.clone()).await.unwrap_err();
    assert_eq!(wrong_county.code(), Code::PermissionDenied);
    linquan.transfer.clone().accept_handoff(accept.clone()).await.unwrap();
    let again = linquan.transfer.clone().accept_handoff(accept).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains("already accepted"), "{}", again.message());

    // Exactly one hand-off of the case, and in the end exactly one active case (in Anhui).
    let transfer_db = test.database("320000", "transfer").await;
    assert_eq!(counts::handoffs(&transfer_db).await.unwrap(), 1);
    eventually("ownership to settle in Anhui", || {
        let jiangsu_cases = xuanwu.cases.clone();
        let anhui_cases = linquan.cases.clone();
        async move {
            let active = |status: i32| {
                status == nol_proto::v1::CaseStatus::Open as i32
                    || status == nol_proto::v1::CaseStatus::HandoffPending as i32
            };
            let jiangsu = jiangsu_cases
                .clone()
                .list_cases(nol_proto::v1::ListCasesRequest::default())
                .await?
                .into_inner()
                .dropout_cases;
            let anhui = anhui_cases
                .clone()
                .list_cases(nol_proto::v1::ListCasesRequest::default())
                .await?
                .into_inner()
                .dropout_cases;
            let owners = jiangsu.iter().chain(&anhui).filter(|case| active(case.status)).count();
            Ok((owners == 1 && anhui.len() == 1).then_some(()))
        }
    })
    .await;

    test.finish().await;
}
