//! Every RPC of every service, called with every role over real gRPC, answers as the RPC × role
//! table (`nol_auth::policy::TABLE`) says: a role it refuses gets PERMISSION_DENIED from the table
//! before any handler runs; a role it allows is not refused for its role (an empty request may be
//! invalid, or name nothing: that is fine). The methods come from the proto descriptor set, so a
//! new RPC without a row in the table fails here. And a school sees and changes its own pupils only.

mod common;

use std::collections::BTreeSet;

use common::{TestStack, resident_id};
use nol_auth::Role;
use nol_auth::policy;
use nol_proto::v1::{
    CreatePupilRequest, EnrollmentStatus, GetPupilRequest, ListPupilsRequest, Pupil, UpdatePupilStatusRequest,
};
use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// The table's refusal, and a handler's refusal by role (which the table should have made first).
const TABLE_REFUSAL: &str = "ROLE_MAY_NOT_CALL";
const HANDLER_ROLE_REFUSAL: &str = "ROLE_MAY_NOT";

/// One RPC of the descriptor set.
struct Method {
    service: String,
    path: String,
    client_streaming: bool,
    server_streaming: bool,
}

fn methods() -> Vec<Method> {
    let set = prost_types::FileDescriptorSet::decode(nol_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut methods = Vec::new();
    for file in set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            for method in &service.method {
                methods.push(Method {
                    service: full.clone(),
                    path: format!("/{full}/{}", method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    methods
}

/// Where each caller of the test sits: a county's case worker, school and approver, a city's
/// supervisor, the province's operator and system.
fn token(test: &TestStack, role: Role) -> String {
    match role {
        Role::School => test.school_token("320102", "3201020001"),
        Role::Supervisor => test.token("320100", role),
        Role::Operator | Role::System => test.token("320000", role),
        Role::Caseworker | Role::Approver => test.token("320102", role),
    }
}

/// Calls `method` with an empty message (each field at its default) as the bearer of `token`;
/// a stream answered is read to its end.
async fn call(channel: Channel, method: &Method, token: &str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let path = PathAndQuery::try_from(method.path.clone()).expect("path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let authorization = format!("Bearer {token}").parse().expect("header");
    match (method.client_streaming, method.server_streaming) {
        (false, false) => {
            let mut request = tonic::Request::new(());
            request.metadata_mut().insert("authorization", authorization);
            grpc.unary(request, path, codec).await.map(drop)
        }
        (false, true) => {
            let mut request = tonic::Request::new(());
            request.metadata_mut().insert("authorization", authorization);
            let mut stream = grpc.server_streaming(request, path, codec).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok(())
        }
        (true, false) => {
            let mut request = tonic::Request::new(futures::stream::iter([()]));
            request.metadata_mut().insert("authorization", authorization);
            grpc.client_streaming(request, path, codec).await.map(drop)
        }
        (true, true) => {
            let mut request = tonic::Request::new(futures::stream::iter([()]));
            request.metadata_mut().insert("authorization", authorization);
            let mut stream = grpc.streaming(request, path, codec).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok(())
        }
    }
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|info| info.reason.clone()).unwrap_or_default()
}

fn localized(status: &tonic::Status) -> String {
    status.get_error_details().localized_message().map(|message| message.message.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_role_as_the_table_says() {
    let methods = methods();
    let described: BTreeSet<&str> = methods.iter().map(|method| method.path.as_str()).collect();
    let listed: BTreeSet<&str> = policy::TABLE.iter().map(|rule| rule.method).collect();
    let unlisted: Vec<_> = described.difference(&listed).collect();
    assert!(unlisted.is_empty(), "RPCs without a row in nol_auth::policy::TABLE: {unlisted:?}");
    let stale: Vec<_> = listed.difference(&described).collect();
    assert!(stale.is_empty(), "rows of nol_auth::policy::TABLE for RPCs that do not exist: {stale:?}");

    let test = TestStack::start().await;
    let jiangsu = test.stack().province("320000");
    let channel = |url: String| jiangsu.client_tls.channel(&url).expect("an https:// URL");
    let (registry, cases, transfer, reporting) = (
        channel(jiangsu.registry.url()),
        channel(jiangsu.cases.url()),
        channel(jiangsu.transfer.url()),
        channel(jiangsu.reporting.url()),
    );
    let tokens: Vec<(Role, String)> = Role::ALL.into_iter().map(|role| (role, token(&test, role))).collect();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for method in &methods {
        let servers = match method.service.as_str() {
            "nol.v1.RegistryService" => vec![registry.clone()],
            "nol.v1.CaseService"
            | "nol.v1.CaseHandoffService"
            | "nol.v1.SuspectService"
            | "nol.v1.SupervisionService" => vec![cases.clone()],
            "nol.v1.TransferService" | "nol.v1.AssistanceService" => vec![transfer.clone()],
            "nol.v1.ReportingService" => vec![reporting.clone()],
            // Every process serves its backbone's state.
            "nol.v1.AdminService" => vec![registry.clone(), cases.clone(), transfer.clone(), reporting.clone()],
            other => panic!("{other}: which process serves it? Add it here."),
        };
        let allowed = policy::roles_for(&method.path).expect("listed");
        for server in servers {
            for (role, token) in &tokens {
                calls += 1;
                let answer = call(server.clone(), method, token).await;
                let verdict = match (&answer, allowed.contains(role)) {
                    (Err(status), false)
                        if status.code() == Code::PermissionDenied && reason(status) == TABLE_REFUSAL =>
                    {
                        assert!(localized(status).contains("角色无权调用"), "{}", localized(status));
                        None
                    }
                    (_, false) => Some(format!("refused by the table, answered {answer:?}")),
                    (Err(status), true)
                        if status.code() == Code::PermissionDenied
                            && [TABLE_REFUSAL, HANDLER_ROLE_REFUSAL].contains(&reason(status).as_str()) =>
                    {
                        Some(format!("allowed by the table, refused for its role: {}", localized(status)))
                    }
                    (Err(status), true)
                        if matches!(status.code(), Code::Unauthenticated | Code::Unimplemented | Code::Unavailable) =>
                    {
                        Some(format!("allowed by the table, answered {status:?}"))
                    }
                    (_, true) => None,
                };
                if let Some(verdict) = verdict {
                    wrong.push(format!("{} as {role}: {verdict}", method.path));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {calls} calls disagree with the table:\n{}", wrong.len(), wrong.join("\n"));
    println!("{calls} calls over {} RPCs answered as the table says", methods.len());

    // Deny by default: a method the table does not name is refused to every role, even one the
    // process would otherwise answer UNIMPLEMENTED; health needs no token.
    let unknown = Method {
        service: "nol.v1.CaseService".into(),
        path: "/nol.v1.CaseService/DeleteEverything".into(),
        client_streaming: false,
        server_streaming: false,
    };
    let refused = call(cases.clone(), &unknown, &token(&test, Role::Caseworker)).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "CALL_NOT_LISTED"));
    let no_token = call(cases.clone(), &unknown, "not-a-token").await.unwrap_err();
    assert_eq!(no_token.code(), Code::Unauthenticated);
    let mut health = tonic_health::pb::health_client::HealthClient::new(cases.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health without a token");
    test.finish().await;
}

fn pupil_at(school_code: &str, name: &str, sequence: u16) -> CreatePupilRequest {
    CreatePupilRequest {
        pupil: Some(Pupil {
            full_name: name.into(),
            resident_id: resident_id("320102", sequence),
            hukou_region_code: "320102".into(),
            school_code: school_code.into(),
            grade: 5,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_sees_and_changes_its_own_pupils_only() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    xuanwu.ensure_school("3201020002", "南京市玄武区第二小学", "320102").await.expect("school");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for (school, name, sequence) in
        [("3201020001", "周一", 501u16), ("3201020001", "周二", 503), ("3201020002", "吴三", 505)]
    {
        let pupil = xuanwu.registry.clone().create_pupil(pupil_at(school, name, sequence)).await.unwrap();
        let pupil_id = pupil.into_inner().pupil.unwrap().pupil_id;
        if school == "3201020001" { ours.push(pupil_id) } else { theirs.push(pupil_id) }
    }
    let school = test.school_clients("320000", "320102", "3201020001");

    // Lists: its own pupils whatever it asks for; another school's list is refused.
    let listed = |school_code: &str| ListPupilsRequest { school_code: school_code.into(), ..Default::default() };
    let seen: BTreeSet<String> = school
        .registry
        .clone()
        .list_pupils(listed(""))
        .await
        .expect("its own pupils")
        .into_inner()
        .pupils
        .into_iter()
        .map(|pupil| pupil.pupil_id)
        .collect();
    assert_eq!(seen, ours.iter().cloned().collect::<BTreeSet<_>>());
    let other_list = school.registry.clone().list_pupils(listed("3201020002")).await.unwrap_err();
    assert_eq!((other_list.code(), reason(&other_list).as_str()), (Code::PermissionDenied, "OTHER_SCHOOL"));
    assert!(localized(&other_list).contains("不是本校"), "{}", localized(&other_list));

    // Reads and changes: its own pupil yes, another school's no, and nothing changes there.
    let read = |pupil_id: &str| GetPupilRequest { pupil_id: pupil_id.into(), ..Default::default() };
    school.registry.clone().get_pupil(read(&ours[0])).await.expect("its own pupil");
    let other_read = school.registry.clone().get_pupil(read(&theirs[0])).await.unwrap_err();
    assert_eq!(other_read.code(), Code::PermissionDenied);
    let dropped_out = |pupil_id: &str| UpdatePupilStatusRequest {
        pupil_id: pupil_id.into(),
        enrollment_status: EnrollmentStatus::DroppedOut as i32,
        reason: "连续缺课两周，联系不上家长".into(),
        ..Default::default()
    };
    let changed = school.registry.clone().update_pupil_status(dropped_out(&ours[1])).await.expect("its own pupil");
    assert_eq!(changed.into_inner().pupil.unwrap().enrollment_status, EnrollmentStatus::DroppedOut as i32);
    let other_change = school.registry.clone().update_pupil_status(dropped_out(&theirs[0])).await.unwrap_err();
    assert_eq!((other_change.code(), reason(&other_change).as_str()), (Code::PermissionDenied, "OTHER_SCHOOL"));
    let untouched = xuanwu.registry.clone().get_pupil(read(&theirs[0])).await.unwrap().into_inner().pupil.unwrap();
    assert_eq!(untouched.enrollment_status, EnrollmentStatus::Enrolled as i32);
    let enrolled_elsewhere =
        school.registry.clone().create_pupil(pupil_at("3201020002", "郑四", 507)).await.unwrap_err();
    assert_eq!(enrolled_elsewhere.code(), Code::PermissionDenied, "a school registers its own pupils only");

    // The county's cases are not a school's to list.
    let cases = school.cases.clone().list_cases(nol_proto::v1::ListCasesRequest::default()).await.unwrap_err();
    assert_eq!((cases.code(), reason(&cases).as_str()), (Code::PermissionDenied, TABLE_REFUSAL));

    // A school token from before tokens named the school is refused for calls about pupils.
    let unnamed = test.clients("320000", "320102", Role::School);
    let refused = unnamed.registry.clone().list_pupils(listed("")).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "SCHOOL_CLAIM_MISSING"));
    test.finish().await;
}
