//! Deadlines and supervision (R12) through the real stack, with the services' rule clock moved
//! by the test: overdue work per region, supervision items raised to the parent bureau, answered
//! and closed, escalated when left unanswered, the deadline policy as data, and the
//! semester-start check (R13).

mod common;

use common::{RuleClock, TestStack, open_case, register_pupil, resident_id};
use nol_auth::Role;
use nol_proto::v1::{
    AbsenceFollowUpOutcome, AnswerSupervisionItemRequest, CaseStatus, CheckItemState, CloseSupervisionItemRequest,
    DeadlinePolicy, GetCaseRequest, GetDeadlinePolicyRequest, GetSemesterCheckProgressRequest, ListOverdueWorkRequest,
    ListSemesterCheckItemsRequest, ListSemesterChecksRequest, ListSupervisionItemsRequest,
    MarkSemesterAttendanceRequest, OverdueKind, ProgressGrouping, RecordAbsenceFollowUpRequest,
    StartSemesterCheckRequest, SupervisionItem, SupervisionState, SweepOverdueWorkRequest, UpdateDeadlinePolicyRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

async fn overdue(test: &TestStack, region: &str, role: Role) -> Vec<nol_proto::v1::OverdueWork> {
    test.clients("320000", region, role)
        .supervision
        .list_overdue_work(ListOverdueWorkRequest { region_code: String::new(), ..Default::default() })
        .await
        .expect("overdue work listed")
        .into_inner()
        .work
}

async fn sweep(test: &TestStack) -> (i64, i64) {
    let response = test
        .clients("320000", "320000", Role::Operator)
        .supervision
        .sweep_overdue_work(SweepOverdueWorkRequest {})
        .await
        .expect("sweep")
        .into_inner();
    (response.raised, response.escalated)
}

async fn items(test: &TestStack, region: &str, role: Role) -> Vec<SupervisionItem> {
    test.clients("320000", region, role)
        .supervision
        .list_supervision_items(ListSupervisionItemsRequest::default())
        .await
        .expect("items listed")
        .into_inner()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_work_is_listed_raised_answered_closed_and_escalated() {
    let clock = RuleClock::at("2027-03-01T09:00:00+08:00");
    let test = TestStack::start_with(clock.options()).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let first = open_case(&xuanwu, &register_pupil(&xuanwu, "王小红", &resident_id("320102", 41)).await).await;

    // Confirmed on 1 March: first contact is due by 8 March (policy default 7 days).
    assert!(overdue(&test, "320102", Role::Caseworker).await.is_empty());
    clock.set("2027-03-10T09:00:00+08:00");
    let work = overdue(&test, "320102", Role::Caseworker).await;
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].case_id, first);
    assert_eq!(work[0].kind, OverdueKind::FirstContact as i32);
    assert_eq!(work[0].due_date, "2027-03-08");
    assert_eq!(work[0].days_overdue, 2);
    assert!(work[0].child.as_ref().unwrap().resident_id.is_empty(), "lists are masked");
    // The city sees its counties' overdue work; a neighbouring county does not.
    assert_eq!(overdue(&test, "320100", Role::Supervisor).await.len(), 1);
    assert!(overdue(&test, "320104", Role::Caseworker).await.is_empty());
    let denied = xuanwu
        .supervision
        .clone()
        .list_overdue_work(ListOverdueWorkRequest { region_code: "320104".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Not yet past the supervision threshold (7 days past due): nothing is raised.
    assert_eq!(sweep(&test).await, (0, 0));
    clock.set("2027-03-16T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (1, 0));
    assert_eq!(sweep(&test).await, (0, 0), "the same overdue work raises one item");
    let raised = items(&test, "320100", Role::Supervisor).await;
    assert_eq!(raised.len(), 1);
    let item = &raised[0];
    assert_eq!(item.case_id, first);
    assert_eq!(item.region_code, "320102");
    assert_eq!(item.supervising_region_code, "320100", "county work is supervised by the city");
    assert_eq!(item.state, SupervisionState::Open as i32);
    assert!(item.reason.starts_with("R12: first contact"), "{}", item.reason);
    let case = xuanwu
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: first.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(case.supervision_region_code, "320100");
    let listed = overdue(&test, "320102", Role::Caseworker).await;
    assert_eq!(listed[0].supervision_item_id, item.item_id);

    // The city cannot close what the county has not answered; the county answers; the city closes.
    let city = test.clients("320000", "320100", Role::Supervisor);
    let early = city
        .supervision
        .clone()
        .close_supervision_item(CloseSupervisionItemRequest {
            item_id: item.item_id.clone(),
            closing_note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("not been answered"), "{}", early.message());
    let empty = xuanwu
        .supervision
        .clone()
        .answer_supervision_item(AnswerSupervisionItemRequest { item_id: item.item_id.clone(), answer: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let other_county = test.clients("320000", "320104", Role::Caseworker);
    let foreign = other_county
        .supervision
        .clone()
        .answer_supervision_item(AnswerSupervisionItemRequest {
            item_id: item.item_id.clone(),
            answer: "已联系".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let answered = xuanwu
        .supervision
        .clone()
        .answer_supervision_item(AnswerSupervisionItemRequest {
            item_id: item.item_id.clone(),
            answer: "3月16日已入户劝返，家长同意下周送返".into(),
        })
        .await
        .expect("answered")
        .into_inner()
        .item
        .unwrap();
    assert_eq!(answered.state, SupervisionState::Answered as i32);
    assert_eq!(answered.answered_by, "caseworker@320102");
    let by_county = xuanwu
        .supervision
        .clone()
        .close_supervision_item(CloseSupervisionItemRequest {
            item_id: item.item_id.clone(),
            closing_note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_county.code(), Code::PermissionDenied);
    let closed = city
        .supervision
        .clone()
        .close_supervision_item(CloseSupervisionItemRequest {
            item_id: item.item_id.clone(),
            closing_note: "已核实".into(),
        })
        .await
        .expect("closed")
        .into_inner()
        .item
        .unwrap();
    assert_eq!(closed.state, SupervisionState::Closed as i32);
    assert_eq!(closed.closed_by, "supervisor@320100");

    // A second case's overdue item, left unanswered past the threshold, climbs to the province.
    let second = open_case(&xuanwu, &register_pupil(&xuanwu, "赵小刚", &resident_id("320102", 42)).await).await;
    // Confirmed on 16 March: due 23 March, past the threshold from 31 March.
    clock.set("2027-03-30T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (0, 0));
    clock.set("2027-03-31T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (1, 0));
    clock.set("2027-04-07T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (0, 0), "unanswered for 7 days is not yet past the threshold");
    clock.set("2027-04-08T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (0, 1));
    clock.set("2027-04-20T09:00:00+08:00");
    assert_eq!(sweep(&test).await, (0, 0), "the province is the top");
    let escalated: Vec<_> =
        items(&test, "320000", Role::Supervisor).await.into_iter().filter(|item| item.case_id == second).collect();
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].supervising_region_code, "320000");
    assert_eq!(escalated[0].escalations, 1);

    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_policy_is_data_changed_by_the_province_only() {
    let clock = RuleClock::at("2027-03-01T09:00:00+08:00");
    let test = TestStack::start_with(clock.options()).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    open_case(&xuanwu, &register_pupil(&xuanwu, "钱小芳", &resident_id("320102", 43)).await).await;

    let policy = xuanwu
        .supervision
        .clone()
        .get_deadline_policy(GetDeadlinePolicyRequest {})
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(
        (
            policy.first_contact_days,
            policy.attempt_interval_days,
            policy.deferred_follow_up_days,
            policy.supervision_after_days
        ),
        (7, 14, 30, 7)
    );
    let shorter = DeadlinePolicy { first_contact_days: 3, ..policy.clone() };
    let city = test.clients("320000", "320100", Role::Supervisor);
    let denied = city
        .supervision
        .clone()
        .update_deadline_policy(UpdateDeadlinePolicyRequest { policy: Some(shorter.clone()) })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let province = test.clients("320000", "320000", Role::Supervisor);
    let invalid = province
        .supervision
        .clone()
        .update_deadline_policy(UpdateDeadlinePolicyRequest {
            policy: Some(DeadlinePolicy { first_contact_days: 0, attempt_interval_days: 400, ..policy.clone() }),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        invalid.get_details_bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["policy.first_contact_days", "policy.attempt_interval_days"]);

    clock.set("2027-03-05T09:00:00+08:00");
    assert!(overdue(&test, "320102", Role::Caseworker).await.is_empty());
    let updated = province
        .supervision
        .clone()
        .update_deadline_policy(UpdateDeadlinePolicyRequest { policy: Some(shorter) })
        .await
        .expect("policy updated")
        .into_inner();
    assert_eq!(updated.cases_rescheduled, 1);
    assert_eq!(updated.policy.unwrap().update_by, "supervisor@320000");
    let work = overdue(&test, "320102", Role::Caseworker).await;
    assert_eq!(work.len(), 1, "first contact is now due three days after confirmation");
    assert_eq!(work[0].due_date, "2027-03-04");

    test.finish().await;
}

/// A case worker confirms that a child marked absent has dropped out again.
async fn confirm_absent(
    clients: &nol_stack::Clients,
    item_id: &str,
    note: &str,
) -> Result<tonic::Response<nol_proto::v1::RecordAbsenceFollowUpResponse>, tonic::Status> {
    clients
        .supervision
        .clone()
        .record_absence_follow_up(RecordAbsenceFollowUpRequest {
            item_id: item_id.into(),
            outcome: AbsenceFollowUpOutcome::ConfirmedAbsent as i32,
            note: note.into(),
        })
        .await
}

async fn start_check(
    clients: &nol_stack::Clients,
    region_code: &str,
    semester: &str,
    deadline: &str,
) -> Result<tonic::Response<nol_proto::v1::StartSemesterCheckResponse>, tonic::Status> {
    clients
        .supervision
        .clone()
        .start_semester_check(StartSemesterCheckRequest {
            region_code: region_code.into(),
            semester: semester.into(),
            deadline: deadline.into(),
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_semester_check_lists_monitored_children_and_a_confirmed_absence_is_a_relapse() {
    let clock = RuleClock::at("2027-02-20T09:00:00+08:00");
    let test = TestStack::start_with(clock.options()).await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let mut cases = Vec::new();
    for (sequence, name) in [(51, "孙小燕"), (52, "周小军"), (53, "吴小丽")] {
        let case_id = open_case(&xuanwu, &register_pupil(&xuanwu, name, &resident_id("320102", sequence)).await).await;
        common::cases::into_monitoring(&xuanwu, &case_id).await;
        cases.push(case_id);
    }
    let still_open = open_case(&xuanwu, &register_pupil(&xuanwu, "郑小东", &resident_id("320102", 54)).await).await;

    // Bad requests name their fields; a region outside the caller's is refused.
    let invalid = start_check(&xuanwu, "320102", "2027-summer", "2027-02-01").await.unwrap_err();
    let fields: Vec<_> =
        invalid.get_details_bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["semester", "deadline"]);
    let foreign = start_check(&xuanwu, "320104", "2027-spring", "2027-03-01").await.unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);

    // The checklist holds the three monitored children, not the open case.
    let check = start_check(&xuanwu, "320102", "2027-spring", "2027-03-01")
        .await
        .expect("check started")
        .into_inner()
        .check
        .unwrap();
    assert_eq!(check.item_count, 3);
    let overlapping = test
        .clients("320000", "320100", Role::Supervisor)
        .supervision
        .start_semester_check(StartSemesterCheckRequest {
            region_code: "320100".into(),
            semester: "2027-spring".into(),
            deadline: "2027-03-01".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(overlapping.code(), Code::AlreadyExists, "a city check would count 玄武区's children twice");

    let school = test.school_clients("320000", "320102", "3201020001");
    let items = school
        .supervision
        .clone()
        .list_semester_check_items(ListSemesterCheckItemsRequest {
            check_id: check.check_id.clone(),
            school_code: "3201020001".into(),
            ..Default::default()
        })
        .await
        .expect("items listed")
        .into_inner()
        .items;
    assert_eq!(items.len(), 3);
    let other_school = school
        .supervision
        .clone()
        .list_semester_check_items(ListSemesterCheckItemsRequest {
            check_id: check.check_id.clone(),
            school_code: "3201040001".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other_school.code(), Code::PermissionDenied, "a school lists its own pupils' items only");
    assert!(items.iter().all(|item| item.state == CheckItemState::Pending as i32));
    assert!(!items.iter().any(|item| item.case_id == still_open));
    assert!(items.iter().all(|item| item.school_name == "南京市玄武区示范小学"));
    // The checklist's references hold without per-row foreign keys (checked per statement): an item
    // naming no case is refused whole, an item's case never changes, and a case or a check is never
    // deleted. Statements the service never runs, sent as any client of the database could.
    let database = test.database("320000", "cases").await;
    let check_uuid = uuid::Uuid::parse_str(&check.check_id).unwrap();
    let sqlstate = |error: sqlx::Error| error.as_database_error().and_then(|error| error.code()).unwrap().into_owned();
    let dangling = sqlx::query(
        "INSERT INTO semester_check_item (id, check_id, case_id, region)
         SELECT gen_random_uuid(), $1, c, '320102' FROM unnest(ARRAY[$2, gen_random_uuid()]) AS c",
    )
    .bind(check_uuid)
    .bind(uuid::Uuid::parse_str(&still_open).unwrap())
    .execute(&database)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(dangling), "23503", "an item naming no case is a foreign key violation");
    let moved = sqlx::query("UPDATE semester_check_item SET case_id = $2 WHERE check_id = $1")
        .bind(check_uuid)
        .bind(uuid::Uuid::parse_str(&still_open).unwrap())
        .execute(&database)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(moved), "23503");
    for delete in ["DELETE FROM dropout_case WHERE id = $1", "DELETE FROM semester_check WHERE id = $1"] {
        let id = if delete.contains("dropout_case") { uuid::Uuid::parse_str(&cases[0]).unwrap() } else { check_uuid };
        let refused = sqlx::query(delete).bind(id).execute(&database).await.unwrap_err();
        assert_eq!(sqlstate(refused), "23001", "{delete}");
    }
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM semester_check_item WHERE check_id = $1")
        .bind(check_uuid)
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(listed, 3, "nothing of the refused statements stayed");
    let item_of = |case_id: &str| items.iter().find(|item| item.case_id == case_id).unwrap().item_id.clone();
    let (present, absent, unconfirmed) = (item_of(&cases[0]), item_of(&cases[1]), item_of(&cases[2]));

    // The school marks one present and one absent; only the absent child is followed up.
    let mark = |item_id: String, present: bool| {
        let mut client = school.supervision.clone();
        async move { client.mark_semester_attendance(MarkSemesterAttendanceRequest { item_id, present }).await }
    };
    mark(present.clone(), true).await.expect("marked present");
    mark(absent.clone(), false).await.expect("marked absent");
    let not_absent = confirm_absent(&xuanwu, &present, "电话联系").await.unwrap_err();
    assert_eq!(not_absent.code(), Code::FailedPrecondition);
    assert!(not_absent.message().starts_with("R13:"), "{}", not_absent.message());
    let no_note = confirm_absent(&xuanwu, &absent, "").await.unwrap_err();
    assert_eq!(no_note.code(), Code::InvalidArgument);
    let by_school = confirm_absent(&school, &absent, "家访").await.unwrap_err();
    assert_eq!(by_school.code(), Code::PermissionDenied);

    // A confirmed absence reopens the case at once, as a relapse (反弹).
    let relapsed = confirm_absent(&xuanwu, &absent, "2月20日家访：孩子随父母外出务工，未返校")
        .await
        .expect("followed up")
        .into_inner()
        .item
        .unwrap();
    assert_eq!(relapsed.state, CheckItemState::Relapsed as i32);
    let reopened = xuanwu
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: cases[1].clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!(reopened.status, CaseStatus::Open as i32);
    assert_eq!(reopened.relapse_count, 1);
    let again = mark(absent.clone(), true).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "a confirmed absence is not re-marked");

    // Progress per school while the campaign runs.
    let progress = |grouping: ProgressGrouping| {
        let mut client = xuanwu.supervision.clone();
        let check_id = check.check_id.clone();
        async move {
            client
                .get_semester_check_progress(GetSemesterCheckProgressRequest { check_id, grouping: grouping as i32 })
                .await
                .expect("progress")
                .into_inner()
        }
    };
    let by_school = progress(ProgressGrouping::School).await;
    assert_eq!(by_school.rows.len(), 1);
    let row = &by_school.rows[0];
    assert_eq!(row.key, "3201020001");
    assert_eq!((row.total, row.pending, row.present, row.absent, row.relapsed, row.overdue), (3, 1, 1, 0, 1, 0));
    let by_county = progress(ProgressGrouping::County).await;
    assert_eq!(by_county.rows[0].key, "320102");
    assert_eq!(by_county.rows[0].name, "江苏省南京市玄武区");

    // Past the deadline the unconfirmed child is overdue work; past the threshold, supervised.
    clock.set("2027-03-02T09:00:00+08:00");
    let overdue_checks = xuanwu
        .supervision
        .clone()
        .list_overdue_work(ListOverdueWorkRequest { kind: OverdueKind::SemesterCheck as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue_checks.total_count, 1);
    assert_eq!(overdue_checks.work[0].case_id, cases[2]);
    assert_eq!(overdue_checks.work[0].due_date, "2027-03-01");
    assert_eq!(progress(ProgressGrouping::School).await.total.unwrap().overdue, 1);
    clock.set("2027-03-09T09:00:00+08:00");
    sweep(&test).await;
    let supervised = crate::items(&test, "320100", Role::Supervisor).await;
    let check_item = supervised.iter().find(|item| item.kind == OverdueKind::SemesterCheck as i32).expect("raised");
    assert_eq!(check_item.case_id, cases[2]);
    assert_eq!(check_item.supervising_region_code, "320100");
    drop(unconfirmed);

    // The relapse reached the reporting service's stream.
    common::eventually("the relapse is counted", || async {
        let summary = xuanwu
            .reporting
            .clone()
            .get_region_summary(nol_proto::v1::GetRegionSummaryRequest { region_code: "320102".into() })
            .await?
            .into_inner()
            .summary
            .unwrap_or_default();
        Ok((summary.cases_relapsed == 1).then_some(()))
    })
    .await;

    // The check's marks are counted per period (events carry the real time of the change): three
    // listed, one present, one absent then confirmed as a relapse, one still unmarked.
    let period = nol_reporting::periods::Period::containing(nol_runtime::clock::china_date(chrono::Utc::now())).code();
    let figures = common::eventually("the check's marks are counted", || {
        let mut reporting = xuanwu.reporting.clone();
        let period = period.clone();
        async move {
            let figures = reporting
                .get_period_figures(nol_proto::v1::GetPeriodFiguresRequest { region_code: "320102".into(), period })
                .await?
                .into_inner()
                .total
                .and_then(|total| total.figures)
                .unwrap_or_default();
            Ok((figures.check_relapsed == 1).then_some(figures))
        }
    })
    .await;
    assert_eq!(
        (figures.check_listed, figures.check_present, figures.check_absent, figures.check_relapsed),
        (3, 1, 1, 1)
    );
    assert_eq!((figures.check_pending, figures.check_absent_open), (1, 0));

    // The checks a region sees: its own, and those above it that cover it.
    let list = |clients: &nol_stack::Clients, region: &str, semester: &str| {
        let mut client = clients.supervision.clone();
        let request = ListSemesterChecksRequest { region_code: region.into(), semester: semester.into(), page_size: 0 };
        async move { client.list_semester_checks(request).await.map(|response| response.into_inner().checks) }
    };
    let nanjing = test.clients("320000", "320100", Role::Supervisor);
    let seen = list(&nanjing, "320100", "").await.expect("listed");
    assert_eq!(seen.iter().map(|check| check.check_id.as_str()).collect::<Vec<_>>(), [check.check_id.as_str()]);
    assert_eq!(list(&school, "", "2027-spring").await.unwrap().len(), 1, "the school's county check");
    assert!(list(&nanjing, "320100", "2026-autumn").await.unwrap().is_empty());
    assert!(list(&test.clients("320000", "320104", Role::Caseworker), "", "").await.unwrap().is_empty());
    let bad = list(&nanjing, "320100", "2027-summer").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(list(&xuanwu, "320100", "").await.unwrap_err().code(), Code::PermissionDenied);

    test.finish().await;
}
