//! The case file and its life (issue 5) on the real stack, one capability per test: opening,
//! the file (officers, measures, evidence files), persuasion with R8's request for help, each
//! family of transitions with its refusals, filtered lists and the export, the history, and the
//! reporting service counting each change. "Today" is the rule clock's, moved by rewriting the
//! file `NOL_CLOCK_FILE` points at; every test starts on 1 March 2027 with children born on
//! 2 May 2013.

mod common;

use common::assistance::{until_assistance, until_listed};
use common::cases::{Child, FIRST_DAY, attempt, collect, evidence, nine_am, record, refused, reported, return_to};
use common::{RuleClock, TestStack};
use nol_auth::Role;
use nol_proto::v1::PersuasionDepartment::*;
use nol_proto::v1::*;
use nol_stack::Clients;
use nol_tabular::{Column, Encoding, Format, TableReader};
use sha2::{Digest, Sha256};
use tonic::Code;

/// A stack whose services read a rule clock set to 09:00 on the first day.
async fn start() -> (RuleClock, TestStack) {
    let clock = RuleClock::at(&nine_am(FIRST_DAY));
    let test = TestStack::start_with(clock.options()).await;
    (clock, test)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_starts_the_first_contact_deadline_and_r2_keeps_a_cause() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let province = test.clients("320000", "320000", Role::Supervisor);

    let a = Child::Xiaoyi.open_case(&xuanwu).await;
    let d = Child::Xiaosi.open_case(&xuanwu).await;
    assert_eq!((a.confirmed_on.as_str(), a.due_on.as_str()), ("2027-03-01", "2027-03-08"));
    assert_eq!(a.due_kind, CaseDueKind::FirstContact as i32);
    assert!(d.migrant && d.registered_poor && d.disability_grade == DisabilityGrade::Three as i32);

    let updated = cases
        .clone()
        .update_causes(UpdateCausesRequest {
            case_id: a.case_id.clone(),
            causes: vec![DropoutCause::LearningDifficulty as i32, DropoutCause::FamilyPoverty as i32],
        })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(updated.causes.len(), 2);
    refused(
        cases.clone().update_causes(UpdateCausesRequest { case_id: a.case_id.clone(), causes: vec![] }).await,
        Code::InvalidArgument,
        "R2: at least one cause",
    );

    let counted = reported(&province, "320102", |summary| summary.cases_opened >= 2).await;
    assert_eq!((counted.cases_opened, counted.cases_active), (2, 2));
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_file_holds_officers_measures_and_evidence_files_of_its_county() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let a = Child::Xiaoyi.open_case(&xuanwu).await;

    // Officers, phones checked.
    let officer = |phone: &str, role: OfficerRole| AddOfficerRequest {
        case_id: a.case_id.clone(),
        officer: Some(CaseOfficer {
            full_name: "李老师".into(),
            role: role as i32,
            phone: phone.into(),
            ..Default::default()
        }),
    };
    cases.clone().add_officer(officer("13812345678", OfficerRole::SchoolStaff)).await.unwrap();
    cases.clone().add_officer(officer("025-83331234", OfficerRole::VillageCadre)).await.unwrap();
    refused(
        cases.clone().add_officer(officer("12345", OfficerRole::BureauOfficial)).await,
        Code::InvalidArgument,
        "officer.phone",
    );
    refused(
        cases.clone().add_officer(officer("13812345678", OfficerRole::Unspecified)).await,
        Code::InvalidArgument,
        "officer.role",
    );

    // The plan: aid names a fund (R3), learning support its form (R7).
    let measure = |kind: MeasureKind, fund: &str, support: &[LearningSupport]| AddMeasureRequest {
        case_id: a.case_id.clone(),
        measure: Some(CaseMeasure {
            kind: kind as i32,
            description: "每月资助并安排辅导".into(),
            fund: fund.into(),
            learning_support: support.iter().map(|item| *item as i32).collect(),
            due_on: "2027-03-15".into(),
            ..Default::default()
        }),
    };
    let aid = cases
        .clone()
        .add_measure(measure(MeasureKind::FinancialAid, "建档立卡学生资助", &[]))
        .await
        .unwrap()
        .into_inner()
        .measure
        .unwrap();
    refused(cases.clone().add_measure(measure(MeasureKind::FinancialAid, "", &[])).await, Code::InvalidArgument, "R3");
    refused(
        cases.clone().add_measure(measure(MeasureKind::LearningSupport, "", &[])).await,
        Code::InvalidArgument,
        "R7",
    );
    cases
        .clone()
        .add_measure(measure(
            MeasureKind::LearningSupport,
            "",
            &[LearningSupport::OnlineLessons, LearningSupport::TeacherOneToOne],
        ))
        .await
        .unwrap();
    let complete = || CompleteMeasureRequest {
        case_id: a.case_id.clone(),
        measure_id: aid.measure_id.clone(),
        done_on: String::new(),
    };
    let done = cases.clone().complete_measure(complete()).await.unwrap().into_inner().measure.unwrap();
    assert_eq!((done.done_on.as_str(), done.done_by.as_str()), ("2027-03-01", "caseworker@320102"));
    refused(cases.clone().complete_measure(complete()).await, Code::FailedPrecondition, "already marked done");

    // Evidence with its file, read back whole; only by the county that owns the case.
    let file: Vec<u8> = (0..2_500_000u32).map(|index| (index % 251) as u8).collect();
    let added = evidence(&xuanwu, &a.case_id, EvidenceType::Other, Some(("家访记录.pdf", file.clone()))).await.unwrap();
    assert_eq!(added.file_size, file.len() as i64);
    let sha: String = Sha256::digest(&file).iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(added.file_sha256, sha);
    let read_file = || GetEvidenceFileRequest { case_id: a.case_id.clone(), evidence_id: added.evidence_id.clone() };
    let stream = cases.clone().get_evidence_file(read_file()).await.unwrap().into_inner();
    let (name, bytes) = collect(stream, |part| (part.data, part.file_name)).await;
    assert_eq!((name.as_str(), bytes == file), ("家访记录.pdf", true));
    refused(
        evidence(&xuanwu, &a.case_id, EvidenceType::Other, Some(("big.pdf", vec![0; 10 * 1024 * 1024 + 1]))).await,
        Code::InvalidArgument,
        "at most 10 MiB",
    );
    let other_county = test.clients("320000", "320104", Role::Caseworker).cases;
    refused(other_county.clone().get_evidence_file(read_file()).await, Code::PermissionDenied, "outside your region");

    // The case counts its file.
    let after =
        record(&xuanwu, &a.case_id, attempt(FIRST_DAY, &[Education], PersuasionOutcome::AgreedToReturn)).await.unwrap();
    assert_eq!(
        (
            after.attempt_count,
            after.joint_attempt_count,
            after.officer_count,
            after.open_measure_count,
            after.evidence_count
        ),
        (1, 0, 2, 1, 1)
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persuasion_names_its_departments_r5_and_a_work_place_its_region_r8() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let province = test.clients("320000", "320000", Role::Supervisor);
    let a = Child::Xiaoyi.open_case(&xuanwu).await;
    let d = Child::Xiaosi.open_case(&xuanwu).await;

    refused(
        record(&xuanwu, &a.case_id, attempt("2027-03-02", &[Education], PersuasionOutcome::Refused)).await,
        Code::InvalidArgument,
        "in the future",
    );
    refused(
        record(&xuanwu, &a.case_id, attempt(FIRST_DAY, &[], PersuasionOutcome::Refused)).await,
        Code::InvalidArgument,
        "R5: at least one department",
    );
    let after =
        record(&xuanwu, &a.case_id, attempt(FIRST_DAY, &[Education], PersuasionOutcome::AgreedToReturn)).await.unwrap();
    assert_eq!((after.last_attempt_on.as_str(), after.due_on.as_str()), ("2027-03-01", "2027-03-15"));

    // A child found working in 临泉县 (Anhui): Anhui's bureau is asked to help (R8).
    let mut at_work = attempt("2027-02-27", &[Education, HumanResources], PersuasionOutcome::Refused);
    at_work.place = PersuasionPlace::WorkPlace as i32;
    at_work.place_region_code = "341221".into();
    record(&xuanwu, &d.case_id, at_work.clone()).await.unwrap();
    at_work.place_region_code = String::new();
    refused(record(&xuanwu, &d.case_id, at_work).await, Code::InvalidArgument, "R8");
    // The request for help reaches 临泉县 (the child masked), and its receipt comes back.
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let asked = until_listed(&linquan, HandoffDirection::Incoming, "R8's request for help in 临泉县", |asked| {
        asked.case_id == d.case_id
    })
    .await;
    assert_eq!(asked.reason, AssistanceReason::WorkPlace as i32);
    assert_eq!(asked.state, AssistanceState::Delivered as i32);
    let child = asked.child.clone().unwrap();
    assert_eq!((child.full_name.as_str(), child.resident_id.as_str()), ("王小四", ""));
    assert!(asked.note.contains("R8"), "{}", asked.note);
    until_assistance(&xuanwu, &asked.assistance_id, HandoffDirection::Outgoing, "the receipt in 玄武区", |ours| {
        ours.state == AssistanceState::Delivered as i32 && !ours.attempt_id.is_empty()
    })
    .await;

    let counted = reported(&province, "320102", |summary| summary.persuasion_attempts >= 2).await;
    assert_eq!((counted.persuasion_attempts, counted.joint_persuasion_attempts), (2, 1));
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_returns_is_monitored_relapses_and_closes_with_every_change_in_its_history() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let province = test.clients("320000", "320000", Role::Supervisor);
    let a = Child::Xiaoyi.open_case(&xuanwu).await;
    build_a_file(&xuanwu, &a.case_id).await;

    // open → returned → monitoring → relapsed (open again) → returned → monitoring → closed.
    refused(
        cases.clone().start_monitoring(StartMonitoringRequest { case_id: a.case_id.clone() }).await,
        Code::FailedPrecondition,
        "R13: monitoring needs a case that is returned; this case is open",
    );
    refused(
        cases.clone().record_relapse(RecordRelapseRequest { case_id: a.case_id.clone(), note: "x".into() }).await,
        Code::FailedPrecondition,
        "R13: a relapse needs a case that is monitoring",
    );
    refused(
        cases.clone().return_to_school(return_to(&a.case_id, "2027-03-05")).await,
        Code::InvalidArgument,
        "in the future",
    );
    let returned = cases
        .clone()
        .return_to_school(return_to(&a.case_id, FIRST_DAY))
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(returned.status, CaseStatus::Returned as i32);
    assert_eq!(returned.returned.as_ref().unwrap().class_name, "六年级二班");
    assert_eq!(returned.due_on, "", "a returned case owes nothing by deadline");
    let monitored = cases
        .clone()
        .start_monitoring(StartMonitoringRequest { case_id: a.case_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(monitored.status, CaseStatus::Monitoring as i32);
    assert_eq!(monitored.returned.unwrap().school_code, "3201020001", "monitoring keeps where the child returned");

    clock.set(&nine_am("2027-03-10"));
    let relapsed = cases
        .clone()
        .record_relapse(RecordRelapseRequest { case_id: a.case_id.clone(), note: "开学后未到校".into() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!((relapsed.status, relapsed.relapse_count), (CaseStatus::Open as i32, 1));
    assert_eq!(
        (relapsed.confirmed_on.as_str(), relapsed.due_on.as_str(), relapsed.last_attempt_on.as_str()),
        ("2027-03-10", "2027-03-17", "")
    );
    cases.clone().return_to_school(return_to(&a.case_id, "")).await.unwrap();
    cases.clone().start_monitoring(StartMonitoringRequest { case_id: a.case_id.clone() }).await.unwrap();
    let close = |reason: CloseReason, note: &str| CloseCaseRequest {
        case_id: a.case_id.clone(),
        reason: reason as i32,
        note: note.into(),
    };
    refused(
        cases.clone().close_case(close(CloseReason::AgedOut, "")).await,
        Code::FailedPrecondition,
        "R1: closing as aged out needs a child of 16 or older; this child is 13",
    );
    let closed = cases
        .clone()
        .close_case(close(CloseReason::Completed, "初中毕业"))
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!((closed.status, closed.close_reason), (CaseStatus::Closed as i32, CloseReason::Completed as i32));
    assert!(closed.end_time.is_some());
    refused(
        record(&xuanwu, &a.case_id, attempt("2027-03-10", &[Education], PersuasionOutcome::Refused)).await,
        Code::FailedPrecondition,
        "R5: persuasion attempts are recorded on an active case; this case is closed",
    );
    refused(
        evidence(&xuanwu, &a.case_id, EvidenceType::Other, None).await,
        Code::FailedPrecondition,
        "R2: the file of an ended case",
    );

    // The history: every change, who made it, paged.
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let page = cases
            .clone()
            .list_case_history(ListCaseHistoryRequest { case_id: a.case_id.clone(), page_size: 4, page_token: token })
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let changes: Vec<&str> = entries.iter().map(|entry| entry.change.as_str()).collect();
    assert_eq!(
        changes,
        [
            "opened",
            "causes_updated",
            "officer_added",
            "officer_added",
            "measure_added",
            "measure_added",
            "measure_done",
            "evidence_added",
            "persuasion_recorded",
            "returned",
            "monitoring",
            "relapsed",
            "returned",
            "monitoring",
            "closed"
        ]
    );
    assert!(entries.iter().all(|entry| entry.actor == "caseworker@320102"));
    assert!(entries.windows(2).all(|pair| pair[1].version == pair[0].version + 1), "one entry per version");

    let counted = reported(&province, "320102", |summary| summary.cases_closed >= 1).await;
    assert_eq!((counted.cases_returned, counted.cases_relapsed, counted.cases_closed), (2, 1, 1));
    assert_eq!((counted.cases_opened, counted.cases_active), (1, 0));
    test.finish().await;
}

/// The file of a case as a case worker builds it on the first day: the causes, two officers, an
/// aid measure (done) and a learning-support one, a home-visit record, and a first attempt.
async fn build_a_file(clients: &Clients, case_id: &str) {
    let cases = clients.cases.clone();
    cases
        .clone()
        .update_causes(UpdateCausesRequest {
            case_id: case_id.into(),
            causes: vec![DropoutCause::LearningDifficulty as i32, DropoutCause::FamilyPoverty as i32],
        })
        .await
        .unwrap();
    for (phone, role) in [("13812345678", OfficerRole::SchoolStaff), ("025-83331234", OfficerRole::VillageCadre)] {
        let officer =
            CaseOfficer { full_name: "李老师".into(), role: role as i32, phone: phone.into(), ..Default::default() };
        cases.clone().add_officer(AddOfficerRequest { case_id: case_id.into(), officer: Some(officer) }).await.unwrap();
    }
    let mut measure_ids = Vec::new();
    for (kind, fund, support) in [
        (MeasureKind::FinancialAid, "建档立卡学生资助", vec![]),
        (MeasureKind::LearningSupport, "", vec![LearningSupport::OnlineLessons as i32]),
    ] {
        let measure = CaseMeasure {
            kind: kind as i32,
            description: "每月资助并安排辅导".into(),
            fund: fund.into(),
            learning_support: support,
            due_on: "2027-03-15".into(),
            ..Default::default()
        };
        let added = cases
            .clone()
            .add_measure(AddMeasureRequest { case_id: case_id.into(), measure: Some(measure) })
            .await
            .unwrap()
            .into_inner()
            .measure
            .unwrap();
        measure_ids.push(added.measure_id);
    }
    cases
        .clone()
        .complete_measure(CompleteMeasureRequest {
            case_id: case_id.into(),
            measure_id: measure_ids[0].clone(),
            done_on: String::new(),
        })
        .await
        .unwrap();
    evidence(clients, case_id, EvidenceType::Other, Some(("家访记录.pdf", b"record".to_vec()))).await.unwrap();
    record(clients, case_id, attempt(FIRST_DAY, &[Education], PersuasionOutcome::AgreedToReturn)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_teaching_needs_a_severe_disability_r4_and_an_exemption_medical_evidence_r1() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let province = test.clients("320000", "320000", Role::Supervisor);
    let b = Child::Xiaoer.open_case(&xuanwu).await;
    let d = Child::Xiaosi.open_case(&xuanwu).await;

    refused(
        cases
            .clone()
            .start_home_teaching(StartHomeTeachingRequest { case_id: d.case_id.clone(), note: String::new() })
            .await,
        Code::FailedPrecondition,
        "R4: home teaching needs a severe disability",
    );
    clock.set(&nine_am("2027-03-10"));
    let visit = |day: &str| LogHomeTeachingVisitRequest {
        case_id: b.case_id.clone(),
        visit: Some(HomeTeachingVisit {
            visit_date: day.into(),
            teacher: "赵老师".into(),
            duration_minutes: 90,
            content: "语文、数学".into(),
            ..Default::default()
        }),
    };
    refused(
        cases.clone().log_home_teaching_visit(visit("2027-03-10")).await,
        Code::FailedPrecondition,
        "R4: a home-teaching visit needs a case that is home_teaching; this case is open",
    );
    let teaching = cases
        .clone()
        .start_home_teaching(StartHomeTeachingRequest { case_id: b.case_id.clone(), note: "每周两次".into() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(teaching.status, CaseStatus::HomeTeaching as i32);
    cases.clone().log_home_teaching_visit(visit("2027-03-09")).await.unwrap();
    refused(cases.clone().log_home_teaching_visit(visit("2027-03-11")).await, Code::InvalidArgument, "in the future");

    // Exemption (R1): only with medical evidence on the case.
    refused(
        cases.clone().exempt_case(ExemptCaseRequest { case_id: b.case_id.clone(), note: String::new() }).await,
        Code::FailedPrecondition,
        "R1: an exemption needs medical evidence",
    );
    evidence(&xuanwu, &b.case_id, EvidenceType::Medical, Some(("诊断证明.jpg", b"scan".to_vec()))).await.unwrap();
    let exempt = cases
        .clone()
        .exempt_case(ExemptCaseRequest { case_id: b.case_id.clone(), note: "身体原因不具备学习条件".into() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(exempt.status, CaseStatus::Exempt as i32);
    let file = cases
        .clone()
        .get_case_file(GetCaseFileRequest { case_id: b.case_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .file
        .unwrap();
    assert_eq!((file.home_teaching_visits.len(), file.evidence.len()), (1, 1));

    let counted = reported(&province, "320102", |summary| summary.cases_exempt >= 1).await;
    assert_eq!((counted.cases_home_teaching, counted.cases_exempt), (1, 1));
    assert_eq!(counted.cases_active, 1, "two opened, one exempt");
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferral_r6_needs_its_conditions_and_the_countys_approver_and_follow_ups_go_on() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let approver = test.clients("320000", "320102", Role::Approver).cases;
    let city_approver = test.clients("320000", "320100", Role::Approver).cases;
    let province = test.clients("320000", "320000", Role::Supervisor);
    let c = Child::Xiaosan.open_case(&xuanwu).await;
    let e = Child::Xiaowu.open_case(&xuanwu).await;

    // Conditions at request and at approval; only the county's approver decides.
    clock.set(&nine_am("2027-03-10"));
    for day in ["2027-03-02", "2027-03-05"] {
        record(&xuanwu, &c.case_id, attempt(day, &[Education, ReligiousAffairs], PersuasionOutcome::Refused))
            .await
            .unwrap();
    }
    let ask = |kind: DeferralKind| RequestDeferralRequest {
        case_id: c.case_id.clone(),
        kind: kind as i32,
        reason: "本人坚持不愿返校".into(),
    };
    refused(
        cases.clone().request_deferral(ask(DeferralKind::Deferred)).await,
        Code::FailedPrecondition,
        "R6: deferral needs 3 joint persuasion attempts or a judicial ruling, this case has 2 and no ruling; guardian's duty not recorded",
    );
    record(
        &xuanwu,
        &c.case_id,
        attempt("2027-03-08", &[Education, VillageCommittee, Justice], PersuasionOutcome::Refused),
    )
    .await
    .unwrap();
    refused(
        cases.clone().request_deferral(ask(DeferralKind::Deferred)).await,
        Code::FailedPrecondition,
        "R6: deferral refused: guardian's duty not recorded",
    );
    evidence(&xuanwu, &c.case_id, EvidenceType::GuardianDuty, None).await.unwrap();
    let request =
        cases.clone().request_deferral(ask(DeferralKind::Deferred)).await.unwrap().into_inner().request.unwrap();
    assert_eq!(request.state, DeferralState::Pending as i32);
    refused(
        cases.clone().request_deferral(ask(DeferralKind::Suspended)).await,
        Code::FailedPrecondition,
        "already pending",
    );
    let approve = || ApproveDeferralRequest {
        request_id: request.request_id.clone(),
        note: "经县扶贫工作领导小组核实同意".into(),
    };
    refused(
        cases.clone().approve_deferral(approve()).await,
        Code::PermissionDenied,
        "may not call /nol.v1.CaseService/ApproveDeferral",
    );
    refused(
        city_approver.clone().approve_deferral(approve()).await,
        Code::PermissionDenied,
        "R6: deferral requests of 320102 are decided by an approver of that county",
    );
    let approved = approver.clone().approve_deferral(approve()).await.unwrap().into_inner();
    let deferred = approved.dropout_case.unwrap();
    assert_eq!(approved.request.unwrap().decided_by, "approver@320102");
    assert_eq!(deferred.status, CaseStatus::Deferred as i32);
    assert_eq!((deferred.follow_up_from.as_str(), deferred.due_on.as_str()), ("2027-03-10", "2027-04-09"));
    assert_eq!(deferred.due_kind, CaseDueKind::FollowUp as i32);
    refused(approver.clone().approve_deferral(approve()).await, Code::FailedPrecondition, "already approved");

    // A suspension on a judicial ruling, rejected: the case stays as it was.
    let suspend = |reason: &str| RequestDeferralRequest {
        case_id: e.case_id.clone(),
        kind: DeferralKind::Suspended as i32,
        reason: reason.into(),
    };
    refused(
        cases.clone().request_deferral(suspend("x")).await,
        Code::FailedPrecondition,
        "R6: suspension needs 3 joint persuasion attempts",
    );
    evidence(&xuanwu, &e.case_id, EvidenceType::JudicialRuling, None).await.unwrap();
    evidence(&xuanwu, &e.case_id, EvidenceType::GuardianDuty, None).await.unwrap();
    record(&xuanwu, &e.case_id, attempt("2027-03-10", &[Education], PersuasionOutcome::Refused)).await.unwrap();
    let pending = cases.clone().request_deferral(suspend("法院已裁定")).await.unwrap().into_inner().request.unwrap();
    let rejected = approver
        .clone()
        .reject_deferral(RejectDeferralRequest {
            request_id: pending.request_id.clone(), reason: "材料不全".into()
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(rejected.state, DeferralState::Rejected as i32);
    let after_rejection = cases
        .clone()
        .get_case(GetCaseRequest { case_id: e.case_id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(after_rejection.status, CaseStatus::Open as i32);

    // The follow-up slips: the deferred case shows as overdue, and lists filter by it.
    clock.set(&nine_am("2027-04-12"));
    let overdue_deferred = || {
        let cases = cases.clone();
        async move {
            let filter =
                CaseFilter { overdue: Some(true), statuses: vec![CaseStatus::Deferred as i32], ..Default::default() };
            cases
                .clone()
                .list_cases(ListCasesRequest { filter: Some(filter), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .dropout_cases
        }
    };
    let overdue = overdue_deferred().await;
    assert_eq!(overdue.len(), 1);
    assert!(overdue[0].overdue);
    // Persuasion continues on a deferred case (R6), which moves its follow-up.
    let followed =
        record(&xuanwu, &c.case_id, attempt("2027-04-12", &[Education], PersuasionOutcome::Refused)).await.unwrap();
    assert_eq!((followed.due_on.as_str(), followed.overdue), ("2027-05-12", false));
    assert!(overdue_deferred().await.is_empty());
    let back = cases
        .clone()
        .return_to_school(return_to(&c.case_id, "2027-04-12"))
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(back.status, CaseStatus::Returned as i32, "a deferred child may return");

    // The approval is the approver's in the history; attempts page newest first.
    let history = cases
        .clone()
        .list_case_history(ListCaseHistoryRequest {
            case_id: c.case_id.clone(),
            page_size: 50,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let deferred_entry = history.entries.iter().find(|entry| entry.change == "deferred").unwrap();
    assert_eq!(deferred_entry.actor, "approver@320102");
    let attempts = cases
        .clone()
        .list_persuasion_attempts(ListPersuasionAttemptsRequest {
            case_id: c.case_id.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((attempts.attempts.len(), attempts.attempts[0].attempt_date.as_str()), (2, "2027-04-12"));
    assert!(attempts.attempts[1].joint && !attempts.attempts[0].joint);

    let counted = reported(&province, "320102", |summary| summary.cases_returned >= 1).await;
    assert_eq!((counted.cases_deferred, counted.cases_suspended, counted.cases_returned), (1, 0, 1));
    assert_eq!((counted.persuasion_attempts, counted.joint_persuasion_attempts), (5, 3));
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_page_the_export_is_masked_and_a_child_of_16_ages_out() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let cases = xuanwu.cases.clone();
    let province = test.clients("320000", "320000", Role::Supervisor);
    let a = Child::Xiaoyi.open_case(&xuanwu).await;
    let b = Child::Xiaoer.open_case(&xuanwu).await;
    let c = Child::Xiaosan.open_case(&xuanwu).await;
    let d = Child::Xiaosi.open_case(&xuanwu).await;
    Child::Xiaowu.open_case(&xuanwu).await;
    // A went back to school and finished; B is exempt.
    cases.clone().return_to_school(return_to(&a.case_id, "")).await.unwrap();
    cases.clone().start_monitoring(StartMonitoringRequest { case_id: a.case_id.clone() }).await.unwrap();
    cases
        .clone()
        .close_case(CloseCaseRequest {
            case_id: a.case_id.clone(),
            reason: CloseReason::Completed as i32,
            note: "初中毕业".into(),
        })
        .await
        .unwrap();
    evidence(&xuanwu, &b.case_id, EvidenceType::Medical, Some(("诊断证明.jpg", b"scan".to_vec()))).await.unwrap();
    cases
        .clone()
        .exempt_case(ExemptCaseRequest { case_id: b.case_id.clone(), note: "身体原因不具备学习条件".into() })
        .await
        .unwrap();

    // Filters: migrant, registered poor, disability, causes, statuses; paging.
    let list = |filter: CaseFilter| {
        let cases = cases.clone();
        async move {
            cases
                .clone()
                .list_cases(ListCasesRequest { filter: Some(filter), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let migrant = list(CaseFilter { migrant: Some(true), ..Default::default() }).await;
    assert_eq!(
        migrant.dropout_cases.iter().map(|case| case.case_id.clone()).collect::<Vec<_>>(),
        vec![d.case_id.clone()]
    );
    assert_eq!(list(CaseFilter { registered_poor: Some(true), ..Default::default() }).await.dropout_cases.len(), 1);
    assert_eq!(
        list(CaseFilter { disability: Some(true), ..Default::default() }).await.dropout_cases.len(),
        2,
        "grades one and three"
    );
    assert_eq!(
        list(CaseFilter { causes: vec![DropoutCause::Religion as i32], ..Default::default() }).await.dropout_cases[0]
            .case_id,
        c.case_id
    );
    let ended =
        list(CaseFilter { statuses: vec![CaseStatus::Exempt as i32, CaseStatus::Closed as i32], ..Default::default() })
            .await;
    assert_eq!(ended.dropout_cases.len(), 2);
    let first =
        cases.clone().list_cases(ListCasesRequest { page_size: 3, ..Default::default() }).await.unwrap().into_inner();
    let second = cases
        .clone()
        .list_cases(ListCasesRequest { page_size: 3, page_token: first.next_page_token.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.dropout_cases.len(), second.dropout_cases.len(), second.next_page_token.as_str()), (3, 2, ""));
    refused(
        cases
            .clone()
            .list_cases(ListCasesRequest {
                filter: Some(CaseFilter { statuses: vec![77], ..Default::default() }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "filter.statuses",
    );

    // Export: the same filters, .xlsx with Chinese headers, masked IDs only.
    let stream = province
        .cases
        .clone()
        .export_cases(ExportCasesRequest {
            region_code: "320102".into(),
            filter: Some(CaseFilter { migrant: Some(false), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (name, bytes) = collect(stream, |part| (part.data, part.file_name)).await;
    assert!(name.ends_with(".xlsx"), "{name}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&name);
    std::fs::write(&path, bytes).unwrap();
    let columns = [
        Column { key: "name", headers: &["姓名 name"], required: true },
        Column { key: "id", headers: &["身份证号 ID (masked)"], required: true },
        Column { key: "born", headers: &["出生年份 birth year"], required: true },
    ];
    let reader = TableReader::open(&path, Format::Xlsx, Encoding::Auto, &columns).unwrap();
    let column_map = reader.columns();
    let rows: Vec<_> = reader.map(|row| row.unwrap()).collect();
    assert_eq!(rows.len(), 4, "every case but the migrant child's");
    for row in &rows {
        let id = column_map.cell(row, "id");
        assert!(id.len() == 18 && id.starts_with(&"*".repeat(14)), "the last four only: {id:?}");
        assert_eq!(column_map.cell(row, "born").len(), 4, "the year of birth, not the date");
    }
    // The stack's exports read three rows a page: four cases came over two pages, each audited.
    let audited: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT resource_id) FROM audit_log WHERE action = 'case.export'")
            .fetch_one(&test.database("320000", "cases").await)
            .await
            .unwrap();
    assert_eq!(audited, 4, "every case handed out is audited");

    // Aged out: two years later the child in D is 16.
    clock.set(&nine_am("2029-06-01"));
    let aged = cases
        .clone()
        .close_case(CloseCaseRequest {
            case_id: d.case_id.clone(),
            reason: CloseReason::AgedOut as i32,
            note: "已满16周岁".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!((aged.status, aged.close_reason), (CaseStatus::Closed as i32, CloseReason::AgedOut as i32));

    let counted = reported(&province, "320102", |summary| summary.cases_closed >= 2).await;
    assert_eq!((counted.cases_opened, counted.cases_exempt, counted.cases_closed), (5, 1, 2));
    assert_eq!(counted.cases_active, 2, "five opened, one exempt, two closed");
    test.finish().await;
}
