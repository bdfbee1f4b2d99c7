//! The suspected-dropout ledger (疑似辍学台账, R14) through gRPC on the real stack: the registry's
//! cross-check suspects arrive through the inbox (once, however often they are found), schools
//! report absent pupils, case workers record suspects, and each item leaves the ledger confirmed
//! (a case opens) or closed with proof (销号), with the refusals of the rules.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestOptions, TestStack, eventually, resident_id};
use nol_auth::Role;
use nol_import::ImportTarget;
use nol_proto::v1::*;
use nol_stack::Clients;
use tonic::Code;
use tonic_types::StatusExt;

async fn import(clients: &Clients, target: ImportTarget, path: &Path) -> ImportJob {
    let job = common::import(clients, target, path).await.unwrap();
    assert_eq!(job.rows_rejected, 0, "{:?}", job.errors);
    job
}

async fn run_cross_check(system: &Clients) -> CrossCheckRun {
    system
        .registry
        .clone()
        .run_cross_check(RunCrossCheckRequest { region_code: String::new(), as_of_date: "2026-09-01".into() })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap()
}

/// Every item of the ledger the caller may list with these filters, through all pages of 2.
async fn list_all(clients: &Clients, state: SuspectState, origin: SuspectOrigin) -> Vec<Suspect> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .suspects
            .clone()
            .list_suspects(ListSuspectsRequest {
                region_code: String::new(),
                state: state as i32,
                origin: origin as i32,
                page_size: 2,
                page_token: page_token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        items.extend(page.suspects);
        if page.next_page_token.is_empty() {
            return items;
        }
        page_token = page.next_page_token;
    }
}

fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.get_details_bad_request().unwrap().field_violations.into_iter().map(|violation| violation.field).collect()
}

fn close(suspect: &Suspect, kind: suspect_proof::Kind) -> CloseSuspectRequest {
    CloseSuspectRequest {
        suspect_id: suspect.suspect_id.clone(),
        proof: Some(SuspectProof { kind: Some(kind) }),
        notes: String::new(),
    }
}

fn confirm(suspect: &Suspect) -> ConfirmSuspectRequest {
    ConfirmSuspectRequest {
        suspect_id: suspect.suspect_id.clone(),
        causes: vec![DropoutCause::GoneToWork as i32],
        notes: "家访确认已辍学".into(),
    }
}

/// Events of the case service whose type contains `like`.
async fn events(test: &TestStack, like: &str) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM cases.outbox WHERE event_type LIKE '%' || $1 || '%'"#, like)
        .fetch_one(&test.database("320000", "cases").await)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_suspects_enter_the_ledger_once_and_leave_it_with_an_outcome() {
    let test = TestStack::start().await;
    let system = test.clients("320000", "320000", Role::System);
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let dir = tempfile::tempdir().unwrap();

    // Three school-age children in the household register of 玄武区, enrolled nowhere; one of
    // them has an Anhui hukou (a migrant family).
    let ids = [resident_id("320102", 201), resident_id("320102", 203), resident_id("341221", 205)];
    let mut csv = String::from("姓名,身份证号,户籍地,现住地\n");
    for (name, id) in ["王一", "王二", "王三"].iter().zip(&ids) {
        csv.push_str(&format!("{name},{id},{},320102\n", &id[..6]));
    }
    let hukou = dir.path().join("hukou.csv");
    std::fs::write(&hukou, csv).unwrap();
    import(&system, ImportTarget::HouseholdRegister, &hukou).await;
    let first = run_cross_check(&system).await;
    assert_eq!(first.found.get("out_of_school").copied(), Some(3), "{:?}", first.found);

    // The suspects arrive through the inbox as pending items of 玄武区, numbers masked.
    let items = eventually("the cross-check's suspects in the ledger", || {
        let xuanwu = xuanwu.clone();
        async move {
            let items = list_all(&xuanwu, SuspectState::Pending, SuspectOrigin::CrossCheck).await;
            Ok((items.len() == 3).then_some(items))
        }
    })
    .await;
    for item in &items {
        assert_eq!(item.region_code, "320102");
        assert_eq!(item.origin, SuspectOrigin::CrossCheck as i32);
        assert!(!item.check_item_id.is_empty());
        let child = item.child.as_ref().unwrap();
        assert!(child.resident_id.is_empty(), "lists are masked");
        assert!(ids.iter().any(|id| nol_pii::ResidentId::parse(id).unwrap().masked() == child.resident_id_masked));
    }
    assert_eq!(events(&test, "suspect_recorded").await, 3);
    let by_name =
        |name: &str| items.iter().find(|item| item.child.as_ref().unwrap().full_name == name).unwrap().clone();
    let (first_child, second_child, third_child) = (by_name("王一"), by_name("王二"), by_name("王三"));

    // The same child found again while pending makes no second item: the registry republishes
    // a check item whose data changed after it was closed there.
    let items_in_registry = system
        .registry
        .clone()
        .list_check_items(ListCheckItemsRequest {
            kind: CheckItemKind::OutOfSchool as i32,
            page_size: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let check_item = items_in_registry.iter().find(|item| item.item_id == third_child.check_item_id).unwrap();
    xuanwu
        .registry
        .clone()
        .close_check_item(CloseCheckItemRequest {
            item_id: check_item.item_id.clone(),
            outcome: CheckOutcome::DataErrorCorrected as i32,
            outcome_detail: "户籍地址待核实".into(),
        })
        .await
        .unwrap();
    let moved = dir.path().join("moved.csv");
    std::fs::write(&moved, format!("姓名,身份证号,户籍地,现住地\n王三,{},341221,320104\n", ids[2])).unwrap();
    import(&system, ImportTarget::HouseholdRegister, &moved).await;
    assert_eq!(run_cross_check(&system).await.opened, 1, "the registry republished the changed item");
    let cases_db = test.database("320000", "cases").await;
    eventually("the case service to take in the republished suspect", || {
        let cases_db = cases_db.clone();
        async move {
            let seen = sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM cases.inbox
                    WHERE event_type LIKE '%pupil_suspected_out_of_school%'"#
            )
            .fetch_one(&cases_db)
            .await?;
            Ok((seen == 4).then_some(()))
        }
    })
    .await;
    let all =
        sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM cases.suspect"#).fetch_one(&cases_db).await.unwrap();
    assert_eq!(all, 3, "no second item for a child already pending");
    assert_eq!(events(&test, "suspect_recorded").await, 3);

    // Confirmed: a case opens in the same step, pointing back at the item.
    let refused = test
        .school_clients("320000", "320102", "3201020001")
        .suspects
        .clone()
        .confirm_suspect(confirm(&first_child))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "schools do not confirm");
    let no_cause = ConfirmSuspectRequest { causes: vec![], ..confirm(&first_child) };
    assert_eq!(fields(&xuanwu.suspects.clone().confirm_suspect(no_cause).await.unwrap_err()), ["causes"]);
    let outsider = qinhuai.suspects.clone().confirm_suspect(confirm(&first_child)).await.unwrap_err();
    assert_eq!(outsider.code(), Code::PermissionDenied, "another county's item");
    let confirmed = xuanwu.suspects.clone().confirm_suspect(confirm(&first_child)).await.unwrap().into_inner();
    let item = confirmed.suspect.unwrap();
    assert_eq!(item.state, SuspectState::Confirmed as i32);
    assert_eq!(item.outcome, SuspectOutcome::Confirmed as i32);
    assert_eq!(item.case_id, confirmed.case_id);
    assert_eq!(item.resolved_by, "caseworker@320102");
    let case = xuanwu
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: confirmed.case_id.clone(), view: CaseView::Full as i32 })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(case.status, CaseStatus::Open as i32);
    assert_eq!(case.region_code, "320102");
    assert_eq!(case.child.unwrap().resident_id, ids[0]);
    let confirmed_row = sqlx::query!(
        "SELECT suspect_id, confirmed_on FROM cases.dropout_case WHERE id = $1",
        uuid::Uuid::parse_str(&confirmed.case_id).unwrap()
    )
    .fetch_one(&cases_db)
    .await
    .unwrap();
    assert_eq!(confirmed_row.suspect_id.unwrap().to_string(), first_child.suspect_id);
    assert!(confirmed_row.confirmed_on.is_some());

    // Resolved once: neither a second confirmation nor a closing.
    let twice = xuanwu.suspects.clone().confirm_suspect(confirm(&first_child)).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().starts_with("R14:"), "{}", twice.message());
    let deceased = suspect_proof::Kind::Deceased(DeceasedProof {
        death_record_number: "D-2026-117".into(),
        issuing_body: "玄武区公安分局".into(),
        date: "2026-10-01".into(),
    });
    let closed_twice = xuanwu.suspects.clone().close_suspect(close(&first_child, deceased.clone())).await.unwrap_err();
    assert_eq!(closed_twice.code(), Code::FailedPrecondition);

    // Closed with proof: the fields its kind needs, dates not in the future.
    let vague = suspect_proof::Kind::Deceased(DeceasedProof::default());
    assert_eq!(
        fields(&xuanwu.suspects.clone().close_suspect(close(&second_child, vague)).await.unwrap_err()),
        ["proof.deceased.death_record_number", "proof.deceased.issuing_body", "proof.deceased.date"]
    );
    let future = suspect_proof::Kind::Deceased(DeceasedProof { date: "2099-01-01".into(), ..Default::default() });
    assert!(
        fields(&xuanwu.suspects.clone().close_suspect(close(&second_child, future)).await.unwrap_err())
            .contains(&"proof.deceased.date".to_owned())
    );
    let no_proof = CloseSuspectRequest { proof: None, ..close(&second_child, deceased.clone()) };
    assert_eq!(fields(&xuanwu.suspects.clone().close_suspect(no_proof).await.unwrap_err()), ["proof"]);
    let closed =
        xuanwu.suspects.clone().close_suspect(close(&second_child, deceased.clone())).await.unwrap().into_inner();
    let closed = closed.suspect.unwrap();
    assert_eq!((closed.state, closed.outcome), (SuspectState::Closed as i32, SuspectOutcome::Deceased as i32));
    assert_eq!(closed.proof, Some(SuspectProof { kind: Some(deceased) }));
    assert_eq!(closed.resolved_by, "caseworker@320102");

    // R2: a case worker records the first child again (as a child the registry does not know);
    // the child already has an active case, so the item cannot be confirmed and stays pending.
    let again = xuanwu
        .suspects
        .clone()
        .record_suspect(RecordSuspectRequest {
            child: Some(record_suspect_request::Child::Unregistered(UnregisteredChild {
                full_name: "王一".into(),
                resident_id: ids[0].clone(),
                hukou_region_code: "320102".into(),
            })),
            region_code: String::new(),
            reason: "村委会反映".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .suspect
        .unwrap();
    let r2 = xuanwu.suspects.clone().confirm_suspect(confirm(&again)).await.unwrap_err();
    assert_eq!(r2.code(), Code::AlreadyExists, "R2 is ALREADY_EXISTS wherever it is raised");
    assert!(r2.message().starts_with("R2:") && r2.message().contains(&confirmed.case_id), "{}", r2.message());
    let still = xuanwu
        .suspects
        .clone()
        .get_suspect(GetSuspectRequest { suspect_id: again.suspect_id.clone(), view: SuspectView::Full as i32 })
        .await
        .unwrap()
        .into_inner()
        .suspect
        .unwrap();
    assert_eq!(still.state, SuspectState::Pending as i32);
    assert_eq!(still.child.unwrap().resident_id, ids[0], "the full view shows the number to a case worker");

    // The full number is for case workers only; every read is audited.
    let supervisor = test.clients("320000", "320000", Role::Supervisor);
    let full = GetSuspectRequest { suspect_id: third_child.suspect_id.clone(), view: SuspectView::Full as i32 };
    assert_eq!(supervisor.suspects.clone().get_suspect(full).await.unwrap_err().code(), Code::PermissionDenied);
    let audited = sqlx::query_scalar!("SELECT action FROM cases_audit.audit_log WHERE resource_type = 'suspect'")
        .fetch_all(&cases_db)
        .await
        .unwrap();
    for action in ["suspect.list", "suspect.confirm", "suspect.close", "suspect.record", "suspect.read_full"] {
        assert!(audited.iter().any(|found| found == action), "{action} audited: {audited:?}");
    }

    // Lists: scoped to the caller's subtree, filtered by state, a page at a time.
    assert_eq!(list_all(&qinhuai, SuspectState::Unspecified, SuspectOrigin::Unspecified).await.len(), 0);
    assert_eq!(list_all(&supervisor, SuspectState::Unspecified, SuspectOrigin::Unspecified).await.len(), 4);
    assert_eq!(list_all(&xuanwu, SuspectState::Pending, SuspectOrigin::Unspecified).await.len(), 2);
    assert_eq!(list_all(&xuanwu, SuspectState::Confirmed, SuspectOrigin::Unspecified).await.len(), 1);
    assert_eq!(list_all(&xuanwu, SuspectState::Closed, SuspectOrigin::CrossCheck).await.len(), 1);
    assert_eq!(list_all(&xuanwu, SuspectState::Unspecified, SuspectOrigin::Caseworker).await.len(), 1);
    let out_of_scope = qinhuai
        .suspects
        .clone()
        .list_suspects(ListSuspectsRequest { region_code: "320102".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(out_of_scope.code(), Code::PermissionDenied);
    assert_eq!(events(&test, "suspect_resolved").await, 2);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schools_and_case_workers_report_suspects_and_each_proof_closes_one() {
    // Rule time is 2027-03-01 in China, ahead of the machine's clock.
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("now");
    std::fs::write(&clock, "2027-03-01T09:00:00+08:00").unwrap();
    let options = TestOptions {
        extra_env: BTreeMap::from([("NOL_CLOCK_FILE".to_owned(), clock.display().to_string())]),
        ..Default::default()
    };
    let test = TestStack::start_with(options).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let school = test.school_clients("320000", "320102", "3201020001");
    let other_school = test.school_clients("320000", "320104", "3201040001");
    let mut pupils = Vec::new();
    for (name, sequence) in [("赵一", 301u16), ("赵二", 303)] {
        let pupil = xuanwu
            .registry
            .clone()
            .create_pupil(CreatePupilRequest {
                pupil: Some(Pupil {
                    full_name: name.into(),
                    resident_id: resident_id("320102", sequence),
                    hukou_region_code: "320102".into(),
                    school_code: "3201020001".into(),
                    grade: 6,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .pupil
            .unwrap();
        pupils.push(pupil);
    }
    let report = |pupil: &Pupil, days: i32, since: &str| ReportAbsenceRequest {
        pupil_id: pupil.pupil_id.clone(),
        days_missed: days,
        absent_since: since.into(),
        notes: "电话联系不上家长".into(),
    };

    // A school reports an absent pupil: dates by the rule clock, days counted.
    let future = school.suspects.clone().report_absence(report(&pupils[0], 12, "2027-03-02")).await.unwrap_err();
    assert_eq!(fields(&future), ["absent_since"]);
    let nonsense = school.suspects.clone().report_absence(report(&pupils[0], 0, "")).await.unwrap_err();
    assert_eq!(fields(&nonsense), ["days_missed", "absent_since"]);
    let wrong_role = xuanwu.suspects.clone().report_absence(report(&pupils[0], 12, "2027-02-10")).await.unwrap_err();
    assert_eq!(wrong_role.code(), Code::PermissionDenied);
    let elsewhere =
        other_school.suspects.clone().report_absence(report(&pupils[0], 12, "2027-02-10")).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied, "another county's pupil");
    let reported = school
        .suspects
        .clone()
        .report_absence(report(&pupils[0], 12, "2027-02-10"))
        .await
        .unwrap()
        .into_inner()
        .suspect
        .unwrap();
    assert_eq!(reported.origin, SuspectOrigin::SchoolReport as i32);
    assert_eq!((reported.days_missed, reported.absent_since.as_str()), (12, "2027-02-10"));
    assert_eq!(reported.school_code, "3201020001");
    assert_eq!(reported.recorded_on, "2027-03-01");
    assert_eq!(reported.region_code, "320102");
    let again = school.suspects.clone().report_absence(report(&pupils[0], 13, "2027-02-10")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains(&reported.suspect_id), "{}", again.message());

    // A case worker records a pupil, and children the registry does not know.
    let recorded = xuanwu
        .suspects
        .clone()
        .record_suspect(RecordSuspectRequest {
            child: Some(record_suspect_request::Child::PupilId(pupils[1].pupil_id.clone())),
            region_code: String::new(),
            reason: "邻居反映外出打工".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .suspect
        .unwrap();
    assert_eq!(recorded.origin, SuspectOrigin::Caseworker as i32);
    assert_eq!(recorded.pupil_id, pupils[1].pupil_id);
    let unregistered = |sequence: u16, region_code: &str| RecordSuspectRequest {
        child: Some(record_suspect_request::Child::Unregistered(UnregisteredChild {
            full_name: format!("孙{sequence}"),
            resident_id: resident_id("320102", sequence),
            hukou_region_code: "320102".into(),
        })),
        region_code: region_code.into(),
        reason: "村委会摸排".into(),
    };
    let mut bad_id = unregistered(401, "");
    if let Some(record_suspect_request::Child::Unregistered(child)) = bad_id.child.as_mut() {
        let last = if child.resident_id.ends_with('0') { "1" } else { "0" };
        child.resident_id.replace_range(17.., last);
        child.full_name.clear();
    }
    assert_eq!(
        fields(&xuanwu.suspects.clone().record_suspect(bad_id).await.unwrap_err()),
        ["unregistered.full_name", "unregistered.resident_id"]
    );
    let to_qinhuai = xuanwu.suspects.clone().record_suspect(unregistered(401, "320104")).await.unwrap_err();
    assert_eq!(to_qinhuai.code(), Code::PermissionDenied, "a county records for itself");
    let school_records = school.suspects.clone().record_suspect(unregistered(401, "")).await.unwrap_err();
    assert_eq!(school_records.code(), Code::PermissionDenied);
    let mut items = Vec::new();
    for sequence in [401u16, 403, 405, 407, 409] {
        let item = xuanwu.suspects.clone().record_suspect(unregistered(sequence, "")).await.unwrap().into_inner();
        items.push(item.suspect.unwrap());
    }
    let duplicate = xuanwu.suspects.clone().record_suspect(unregistered(401, "")).await.unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    // The school's report is confirmed: the case opens from the pupil's registry record.
    let confirmed = xuanwu.suspects.clone().confirm_suspect(confirm(&reported)).await.unwrap().into_inner();
    let case = xuanwu
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: confirmed.case_id.clone(), view: CaseView::Masked as i32 })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(case.pupil_id, pupils[0].pupil_id);
    assert_eq!(case.causes, [DropoutCause::GoneToWork as i32]);
    let cases_db = test.database("320000", "cases").await;
    let confirmed_on = sqlx::query_scalar!(
        r#"SELECT confirmed_on AS "confirmed_on!" FROM cases.dropout_case WHERE id = $1"#,
        uuid::Uuid::parse_str(&confirmed.case_id).unwrap()
    )
    .fetch_one(&cases_db)
    .await
    .unwrap();
    assert_eq!(confirmed_on.to_string(), "2027-03-01", "confirmed on the rule clock's day");
    // The case worker's pupil item is closed as a data error.
    let data_error = suspect_proof::Kind::DataError(DataErrorProof {
        what_corrected: "学籍状态录入错误".into(),
        how_corrected: String::new(),
    });
    assert_eq!(
        fields(&xuanwu.suspects.clone().close_suspect(close(&recorded, data_error)).await.unwrap_err()),
        ["proof.data_error.how_corrected"]
    );

    // Each kind of proof closes an item (销号), and shows as its outcome.
    let proofs = [
        (
            suspect_proof::Kind::EnrolledElsewhere(EnrolledElsewhereProof {
                school_name: "上海市徐汇区某小学".into(),
                school_code: String::new(),
                region_code: "310104".into(),
            }),
            SuspectOutcome::EnrolledElsewhere,
        ),
        (
            suspect_proof::Kind::Deceased(DeceasedProof {
                death_record_number: "D-2027-009".into(),
                issuing_body: "南京市鼓楼医院".into(),
                date: "2027-01-15".into(),
            }),
            SuspectOutcome::Deceased,
        ),
        (
            suspect_proof::Kind::Emigrated(EmigratedProof {
                evidence: "出入境记录 E-778".into(),
                issuing_body: "南京市公安局出入境管理局".into(),
                date: "2027-02-28".into(),
            }),
            SuspectOutcome::Emigrated,
        ),
        (
            suspect_proof::Kind::Exempt(ExemptProof {
                evidence_number: "M-2027-031".into(),
                issuing_body: "南京市儿童医院".into(),
                date: "2027-03-01".into(),
            }),
            SuspectOutcome::Exempt,
        ),
        (
            suspect_proof::Kind::DataError(DataErrorProof {
                what_corrected: "身份证号重复登记".into(),
                how_corrected: "户籍信息已由公安更正".into(),
            }),
            SuspectOutcome::DataError,
        ),
    ];
    for (item, (kind, outcome)) in items.iter().zip(proofs) {
        let closed = xuanwu.suspects.clone().close_suspect(close(item, kind.clone())).await.unwrap().into_inner();
        let closed = closed.suspect.unwrap();
        assert_eq!((closed.state, closed.outcome), (SuspectState::Closed as i32, outcome as i32));
        assert_eq!(closed.proof, Some(SuspectProof { kind: Some(kind) }));
        assert_eq!(closed.resolved_on, "2027-03-01");
    }
    let closed = list_all(&xuanwu, SuspectState::Closed, SuspectOrigin::Caseworker).await;
    assert_eq!(closed.len(), 5);
    assert!(closed.iter().all(|item| item.resolved_by == "caseworker@320102" && item.proof.is_some()));
    assert_eq!(list_all(&xuanwu, SuspectState::Pending, SuspectOrigin::Unspecified).await.len(), 1);
    assert_eq!(list_all(&xuanwu, SuspectState::Confirmed, SuspectOrigin::SchoolReport).await.len(), 1);
    // The ledger holds other schools' pupils and unregistered children: not a school's to list.
    let listed = school.suspects.clone().list_suspects(ListSuspectsRequest::default()).await.unwrap_err();
    assert_eq!(listed.code(), Code::PermissionDenied);

    // Every change went out as an event, in the transaction of the change.
    assert_eq!(events(&test, "suspect_recorded").await, 7);
    assert_eq!(events(&test, "suspect_resolved").await, 6);

    // The case service reports the ledger healthy and lists it by reflection, without a token.
    let cases_url = test.stack().province("320000").cases.url();
    let tls = &test.stack().province("320000").client_tls;
    let channel = tls.endpoint(&cases_url).unwrap().connect().await.unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest { service: "nol.v1.SuspectService".into() })
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
        message_request: Some(MessageRequest::FileContainingSymbol("nol.v1.SuspectService".into())),
    };
    let mut reflection = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = reflection.message().await.unwrap().unwrap().message_response;
    assert!(matches!(answer, Some(MessageResponse::FileDescriptorResponse(_))), "{answer:?}");
    test.finish().await;
}
