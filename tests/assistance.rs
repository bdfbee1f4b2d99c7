//! Regions working one case together (协查协办, R8, R11): a county asks another — across the
//! province border or inside it — for help on a case; the helper sees the child masked, accepts
//! or declines, reports attempts, findings and evidence; the report lands in the owner's case file
//! (the attempts counted as the case's, attributed to the helper); the owner closes. Bad input is
//! refused with the right code and changes nothing.

mod common;

use common::assistance::{listed, until_assistance, until_listed};
use common::cases::{Child, FIRST_DAY, attempt, nine_am, refused};
use common::web::{WebUser, web_url};
use common::{RuleClock, TestStack, eventually};
use nol_auth::Role;
use nol_proto::v1::PersuasionDepartment::{Education, PublicSecurity};
use nol_proto::v1::*;
use nol_stack::Clients;
use tonic::Code;

async fn start() -> (RuleClock, TestStack) {
    let clock = RuleClock::at(&nine_am(FIRST_DAY));
    let test = TestStack::start_with(clock.options()).await;
    (clock, test)
}

fn ask(case_id: &str, helper: &str, reason: AssistanceReason, needs: &[AssistanceNeed]) -> RequestAssistanceRequest {
    RequestAssistanceRequest {
        case_id: case_id.into(),
        assisting_region_code: helper.into(),
        reason: reason as i32,
        needs: needs.iter().map(|need| *need as i32).collect(),
        due_date: "2027-03-15".into(),
        note: "孩子随父母到当地务工，请协助查找并入户劝返".into(),
    }
}

async fn request(clients: &Clients, ask: RequestAssistanceRequest) -> Result<Assistance, tonic::Status> {
    clients.assistance.clone().request_assistance(ask).await.map(|response| response.into_inner().assistance.unwrap())
}

async fn report(clients: &Clients, id: &str, report: AssistanceReport) -> Result<Assistance, tonic::Status> {
    clients
        .assistance
        .clone()
        .report_assistance(ReportAssistanceRequest { assistance_id: id.into(), report: Some(report) })
        .await
        .map(|response| response.into_inner().assistance.unwrap())
}

/// The persuasion attempts of a case file, as its owner reads them.
async fn case_attempts(clients: &Clients, case_id: &str) -> Result<Vec<PersuasionAttempt>, tonic::Status> {
    let request = ListPersuasionAttemptsRequest { case_id: case_id.into(), ..Default::default() };
    Ok(clients.cases.clone().list_persuasion_attempts(request).await?.into_inner().attempts)
}

/// Three joint attempts at the child's work place (education with the police), a finding and a
/// piece of evidence.
fn work_done() -> AssistanceReport {
    let mut attempts = Vec::new();
    for day in ["2027-03-02", "2027-03-03", "2027-03-04"] {
        let mut at_work = attempt(day, &[Education, PublicSecurity], PersuasionOutcome::Refused);
        at_work.place = PersuasionPlace::WorkPlace as i32;
        at_work.place_region_code = "341221".into();
        attempts.push(at_work);
    }
    AssistanceReport {
        attempts,
        findings: vec![AssistanceFinding {
            kind: AssistanceFindingKind::ChildFound as i32,
            place: "临泉县城关镇某服装加工厂".into(),
            found_date: "2027-03-02".into(),
            note: "与父母同住，在厂内帮工".into(),
        }],
        evidence: vec![AssistanceEvidence {
            title: "用工单位劝返告知书".into(),
            document_date: "2027-03-03".into(),
            note: String::new(),
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_province_helps_its_attempts_count_in_the_owners_case_file_and_the_owner_closes() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let school = test.school_clients("320000", "320102", "3201020001");
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let case = Child::Xiaosi.open_case(&xuanwu).await;
    let needs = [AssistanceNeed::FindChild, AssistanceNeed::VisitFamily];
    let inflow = AssistanceReason::InflowRegion;

    // Bad input: each refused with its code and field, nothing recorded.
    let mut no_need = ask(&case.case_id, "341221", inflow, &[]);
    refused(request(&xuanwu, no_need.clone()).await, Code::InvalidArgument, "needs");
    no_need.needs = vec![99];
    refused(request(&xuanwu, no_need).await, Code::InvalidArgument, "needs");
    refused(request(&xuanwu, ask(&case.case_id, "320102", inflow, &needs)).await, Code::InvalidArgument, "own county");
    refused(
        request(&xuanwu, ask(&case.case_id, "349999", inflow, &needs)).await,
        Code::InvalidArgument,
        "assisting_region_code",
    );
    let unspecified = ask(&case.case_id, "341221", AssistanceReason::Unspecified, &needs);
    refused(request(&xuanwu, unspecified).await, Code::InvalidArgument, "reason");
    let mut past = ask(&case.case_id, "341221", inflow, &needs);
    past.due_date = FIRST_DAY.into();
    refused(request(&xuanwu, past).await, Code::InvalidArgument, "after today");
    let not_ours = request(&qinhuai, ask(&case.case_id, "341221", inflow, &needs)).await;
    assert!(
        matches!(not_ours.as_ref().map_err(|status| status.code()), Err(Code::PermissionDenied | Code::NotFound)),
        "{not_ours:?}"
    );
    refused(request(&school, ask(&case.case_id, "341221", inflow, &needs)).await, Code::PermissionDenied, "");
    assert!(listed(&xuanwu, HandoffDirection::Unspecified).await.is_empty(), "a refused request leaves nothing");

    // The request, and its receipt from 临泉县.
    let asked = request(&xuanwu, ask(&case.case_id, "341221", inflow, &needs)).await.expect("help asked");
    assert_eq!((asked.state, asked.direction), (AssistanceState::Requested as i32, HandoffDirection::Outgoing as i32));
    refused(request(&xuanwu, ask(&case.case_id, "341221", inflow, &needs)).await, Code::AlreadyExists, "still open");
    let id = asked.assistance_id.clone();
    let theirs = until_listed(&linquan, HandoffDirection::Incoming, "the request in 临泉县", |theirs| {
        theirs.assistance_id == id
    })
    .await;
    let child = theirs.child.clone().unwrap();
    assert_eq!(child.full_name, "王小四");
    assert!(child.resident_id.is_empty() && child.resident_id_masked.contains('*'), "{child:?}");
    assert_eq!(theirs.needs, needs.iter().map(|need| *need as i32).collect::<Vec<_>>());
    until_assistance(&xuanwu, &id, HandoffDirection::Outgoing, "the receipt in 玄武区", |ours| {
        ours.state == AssistanceState::Delivered as i32
    })
    .await;

    // 临泉县 works with the family for a few days; it reports only once it has accepted, and a
    // finding of the child names where.
    clock.set(&nine_am("2027-03-05"));
    refused(report(&linquan, &id, work_done()).await, Code::FailedPrecondition, "accepted");
    let accept = AcceptAssistanceRequest { assistance_id: id.clone() };
    let accepted = linquan.assistance.clone().accept_assistance(accept.clone()).await.expect("accepted");
    assert_eq!(accepted.into_inner().assistance.unwrap().state, AssistanceState::Accepted as i32);
    refused(linquan.assistance.clone().accept_assistance(accept).await, Code::FailedPrecondition, "already");
    // 玄武区 cannot answer its own request.
    refused(
        xuanwu.assistance.clone().accept_assistance(AcceptAssistanceRequest { assistance_id: id.clone() }).await,
        Code::FailedPrecondition,
        "addressed to this region",
    );
    let mut nowhere = work_done();
    nowhere.findings[0].place.clear();
    refused(report(&linquan, &id, nowhere).await, Code::InvalidArgument, "report.findings[0].place");
    refused(report(&linquan, &id, AssistanceReport::default()).await, Code::InvalidArgument, "report");
    let reported = report(&linquan, &id, work_done()).await.expect("reported");
    assert_eq!(reported.reports.len(), 1);

    // The report reaches 玄武区: on its request, and in the case file as the case's own joint
    // attempts (R6 can rest on them), attributed to 临泉县.
    let ours = until_assistance(&xuanwu, &id, HandoffDirection::Outgoing, "the report in 玄武区", |ours| {
        ours.state == AssistanceState::Accepted as i32 && ours.reports.len() == 1
    })
    .await;
    assert_eq!(ours.reports[0].assisting_region_code, "341221");
    assert_eq!(ours.reports[0].findings[0].place, "临泉县城关镇某服装加工厂");
    let attempts = eventually("the helper's attempts in the case file", || async {
        let attempts = case_attempts(&xuanwu, &case.case_id).await?;
        Ok((attempts.len() == 3).then_some(attempts))
    })
    .await;
    assert!(attempts.iter().all(|attempt| attempt.assisting_region_code == "341221" && attempt.joint));
    assert!(attempts.iter().all(|attempt| attempt.assistance_id == id));
    let file = xuanwu
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: case.case_id.clone(), view: CaseView::Masked as i32 })
        .await
        .unwrap()
        .into_inner()
        .dropout_case
        .unwrap();
    assert_eq!((file.attempt_count, file.joint_attempt_count), (3, 3));
    assert_eq!(file.last_attempt_on, "2027-03-04");
    let history = xuanwu
        .cases
        .clone()
        .list_case_history(ListCaseHistoryRequest {
            case_id: case.case_id.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let changes: Vec<&str> = history.iter().map(|entry| entry.change.as_str()).collect();
    for change in ["assistance_requested", "assistance_accepted", "assistance_reported"] {
        assert!(changes.contains(&change), "{change} in {changes:?}");
    }
    // No new request for help came of the helper's attempts at the work place (R8 is the owner's).
    assert_eq!(listed(&xuanwu, HandoffDirection::Outgoing).await.len(), 1);

    // The owner closes; the helper's side closes too, and takes no more reports.
    let close = CloseAssistanceRequest { assistance_id: id.clone(), note: String::new() };
    refused(xuanwu.assistance.clone().close_assistance(close.clone()).await, Code::InvalidArgument, "note");
    let close =
        CloseAssistanceRequest { note: "已找到学生，转由户籍地与流入地共同劝返".into(), ..close };
    let closed = xuanwu.assistance.clone().close_assistance(close.clone()).await.expect("closed");
    assert_eq!(closed.into_inner().assistance.unwrap().state, AssistanceState::Closed as i32);
    refused(xuanwu.assistance.clone().close_assistance(close).await, Code::FailedPrecondition, "closed");
    until_assistance(&linquan, &id, HandoffDirection::Incoming, "the close in 临泉县", |theirs| {
        theirs.state == AssistanceState::Closed as i32 && !theirs.close_note.is_empty()
    })
    .await;
    refused(report(&linquan, &id, work_done()).await, Code::FailedPrecondition, "accepted");
    // Neither side sees the other's: 秦淮区 reads no request it is not part of.
    let foreign = qinhuai
        .assistance
        .clone()
        .get_assistance(GetAssistanceRequest { assistance_id: id.clone(), ..Default::default() })
        .await;
    refused(foreign, Code::NotFound, "no request for help");
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_of_the_same_province_declines_and_an_unanswered_request_shows_overdue_on_both_sides() {
    let (clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let qinhuai = test.clients("320000", "320104", Role::Caseworker);
    let gulou = test.clients("320000", "320106", Role::Caseworker);
    let city = test.clients("320000", "320100", Role::Supervisor);
    let case = Child::Xiaoyi.open_case(&xuanwu).await;
    let needs = [AssistanceNeed::CheckSchoolRoll];
    let sighting = AssistanceReason::Sighting;

    // 秦淮区 declines, with a reason it must give.
    let asked = request(&xuanwu, ask(&case.case_id, "320104", sighting, &needs)).await.expect("help asked");
    let id = asked.assistance_id.clone();
    until_assistance(&qinhuai, &id, HandoffDirection::Incoming, "the request in 秦淮区", |_| true).await;
    let decline = DeclineAssistanceRequest { assistance_id: id.clone(), reason: " ".into() };
    refused(qinhuai.assistance.clone().decline_assistance(decline).await, Code::InvalidArgument, "reason");
    let decline = DeclineAssistanceRequest {
        assistance_id: id.clone(), reason: "经核查，本区学籍系统中无该生".into()
    };
    qinhuai.assistance.clone().decline_assistance(decline).await.expect("declined");
    let ours = until_assistance(&xuanwu, &id, HandoffDirection::Outgoing, "the decline in 玄武区", |ours| {
        ours.state == AssistanceState::Declined as i32
    })
    .await;
    assert_eq!(ours.decline_reason, "经核查，本区学籍系统中无该生");
    assert_eq!(ours.decided_by, "caseworker@320104");

    // Another county is asked and does not answer: past the due date it is overdue on both sides,
    // and the city above both sees it.
    let asked = request(&xuanwu, ask(&case.case_id, "320106", sighting, &needs)).await.expect("help asked");
    let other = asked.assistance_id.clone();
    until_assistance(&gulou, &other, HandoffDirection::Incoming, "the request in 鼓楼区", |_| true).await;
    clock.set(&nine_am("2027-03-16"));
    let overdue = |clients: &Clients| {
        let clients = clients.clone();
        async move {
            clients
                .assistance
                .clone()
                .list_assistance(ListAssistanceRequest { overdue_only: true, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .assistance
        }
    };
    let ours = overdue(&xuanwu).await;
    assert_eq!(ours.iter().map(|found| found.assistance_id.as_str()).collect::<Vec<_>>(), [other.as_str()]);
    assert!(ours[0].overdue);
    let theirs = overdue(&gulou).await;
    assert_eq!((theirs.len(), theirs[0].direction), (1, HandoffDirection::Incoming as i32));
    assert_eq!(overdue(&city).await.len(), 2, "the city sees both sides");
    assert!(overdue(&qinhuai).await.is_empty());

    // The same in each side's overdue work, and past the supervision threshold the sweep raises
    // an item (督办) to each side's supervising bureau (R12).
    let work = |clients: &Clients| {
        let clients = clients.clone();
        async move {
            let request = ListOverdueWorkRequest { kind: OverdueKind::Assistance as i32, ..Default::default() };
            clients.supervision.clone().list_overdue_work(request).await.unwrap().into_inner().work
        }
    };
    let ours = work(&xuanwu).await;
    assert_eq!(
        (ours.len(), ours[0].assistance_id.as_str(), ours[0].case_id.as_str()),
        (1, other.as_str(), case.case_id.as_str())
    );
    assert_eq!(ours[0].child.as_ref().unwrap().full_name, "王小一");
    let theirs = work(&gulou).await;
    assert_eq!((theirs.len(), theirs[0].region_code.as_str()), (1, "320106"));
    assert_eq!(theirs[0].child.as_ref().unwrap().full_name, "王小一");
    clock.set(&nine_am("2027-03-24"));
    let system = test.clients("320000", "320000", Role::System);
    let swept = system.supervision.clone().sweep_overdue_work(SweepOverdueWorkRequest {}).await.unwrap().into_inner();
    assert!(swept.raised >= 2, "{swept:?}");
    let items = city
        .supervision
        .clone()
        .list_supervision_items(ListSupervisionItemsRequest { page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .items;
    let mut regions: Vec<&str> = items
        .iter()
        .filter(|item| item.kind == OverdueKind::Assistance as i32)
        .map(|item| item.region_code.as_str())
        .collect();
    regions.sort();
    assert_eq!(regions, ["320102", "320106"]);
    assert!(!work(&gulou).await[0].supervision_item_id.is_empty());

    // Closed, it is nobody's overdue work any more.
    let close = CloseAssistanceRequest { assistance_id: other.clone(), note: "已在本区找到该生".into() };
    xuanwu.assistance.clone().close_assistance(close).await.expect("closed");
    eventually("the closed request to leave both sides' overdue work", || async {
        Ok((work(&xuanwu).await.is_empty() && work(&gulou).await.is_empty()).then_some(()))
    })
    .await;
    test.finish().await;
}

async fn notices(clients: &Clients, direction: HandoffDirection) -> Vec<HukouNotice> {
    let request = ListHukouNoticesRequest { direction: direction as i32, ..Default::default() };
    clients.assistance.clone().list_hukou_notices(request).await.expect("notices").into_inner().notices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hukou_region_is_told_of_a_migrant_childs_case_and_acknowledges_it_r10() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let yingzhou = test.clients("340000", "341202", Role::Caseworker);
    let case = Child::Xiaosi.open_case(&xuanwu).await;
    // A child whose household registration is here: nobody else to tell.
    Child::Xiaoyi.open_case(&xuanwu).await;

    let theirs = eventually("the notice in 临泉县", || async {
        Ok(notices(&linquan, HandoffDirection::Incoming).await.into_iter().next())
    })
    .await;
    assert_eq!((theirs.case_id.as_str(), theirs.owner_region_code.as_str()), (case.case_id.as_str(), "320102"));
    assert_eq!(theirs.state, HukouNoticeState::Delivered as i32);
    let child = theirs.child.clone().unwrap();
    assert_eq!(child.full_name, "王小四");
    assert!(child.resident_id.is_empty() && child.resident_id_masked.contains('*'), "{child:?}");
    assert_eq!(theirs.causes, [DropoutCause::FamilyPoverty as i32]);
    assert_eq!(theirs.contact, "caseworker@320102");
    assert!(theirs.message.contains("玄武区"), "{}", theirs.message);
    let ours = eventually("the receipt in 玄武区", || async {
        Ok(notices(&xuanwu, HandoffDirection::Outgoing)
            .await
            .into_iter()
            .find(|ours| ours.state == HukouNoticeState::Delivered as i32))
    })
    .await;
    assert_eq!(ours.notice_id, theirs.notice_id);
    assert!(ours.deliver_time.is_some());
    assert_eq!(notices(&xuanwu, HandoffDirection::Outgoing).await.len(), 1, "only the migrant child's case");

    // Bad input: an unknown notice, and another county's, read as absent; nothing changes.
    let unknown = AcknowledgeHukouNoticeRequest { notice_id: uuid_like(), note: String::new() };
    refused(linquan.assistance.clone().acknowledge_hukou_notice(unknown).await, Code::NotFound, "no notice");
    let not_theirs = AcknowledgeHukouNoticeRequest { notice_id: theirs.notice_id.clone(), note: String::new() };
    refused(yingzhou.assistance.clone().acknowledge_hukou_notice(not_theirs).await, Code::NotFound, "no notice");
    let malformed = AcknowledgeHukouNoticeRequest { notice_id: "42".into(), note: String::new() };
    refused(linquan.assistance.clone().acknowledge_hukou_notice(malformed).await, Code::InvalidArgument, "notice_id");
    assert!(notices(&yingzhou, HandoffDirection::Unspecified).await.is_empty());

    // 临泉县 acknowledges (回执); once.
    let acknowledge = AcknowledgeHukouNoticeRequest {
        notice_id: theirs.notice_id.clone(),
        note: "已知悉，将配合玄武区做好劝返工作".into(),
    };
    let acknowledged =
        linquan.assistance.clone().acknowledge_hukou_notice(acknowledge.clone()).await.expect("acknowledged");
    assert_eq!(acknowledged.into_inner().notice.unwrap().state, HukouNoticeState::Acknowledged as i32);
    refused(
        linquan.assistance.clone().acknowledge_hukou_notice(acknowledge).await,
        Code::FailedPrecondition,
        "already",
    );
    let ours = eventually("the acknowledgment in 玄武区", || async {
        Ok(notices(&xuanwu, HandoffDirection::Outgoing)
            .await
            .into_iter()
            .find(|ours| ours.state == HukouNoticeState::Acknowledged as i32))
    })
    .await;
    assert_eq!(
        (ours.acknowledged_by.as_str(), ours.acknowledge_note.as_str()),
        ("caseworker@341221", "已知悉，将配合玄武区做好劝返工作")
    );
    assert!(ours.acknowledge_time.is_some());

    // The hukou region offers its help: a request the other way, accepted from the start.
    let offer = |needs: &[AssistanceNeed]| OfferAssistanceRequest {
        notice_id: theirs.notice_id.clone(),
        needs: needs.iter().map(|need| *need as i32).collect(),
        due_date: String::new(),
        note: "户籍地可协助入户走访家长".into(),
    };
    refused(linquan.assistance.clone().offer_assistance(offer(&[])).await, Code::InvalidArgument, "needs");
    let stranger = yingzhou.assistance.clone().offer_assistance(offer(&[AssistanceNeed::VisitFamily])).await;
    refused(stranger, Code::NotFound, "no notice");
    let offered = linquan
        .assistance
        .clone()
        .offer_assistance(offer(&[AssistanceNeed::VisitFamily]))
        .await
        .expect("offered")
        .into_inner()
        .assistance
        .unwrap();
    assert_eq!(
        (offered.state, offered.direction),
        (AssistanceState::Accepted as i32, HandoffDirection::Incoming as i32)
    );
    let again = linquan.assistance.clone().offer_assistance(offer(&[AssistanceNeed::VisitFamily])).await;
    refused(again, Code::AlreadyExists, "still open");
    let ours = until_assistance(
        &xuanwu,
        &offered.assistance_id,
        HandoffDirection::Outgoing,
        "the offer in 玄武区",
        |ours| ours.state == AssistanceState::Accepted as i32,
    )
    .await;
    assert_eq!((ours.reason, ours.case_id.as_str()), (AssistanceReason::HukouRegion as i32, case.case_id.as_str()));
    assert_eq!(ours.requested_by, "caseworker@341221");
    eventually("the offer in the case's history", || async {
        let history = xuanwu
            .cases
            .clone()
            .list_case_history(ListCaseHistoryRequest {
                case_id: case.case_id.clone(),
                page_size: 100,
                ..Default::default()
            })
            .await?
            .into_inner()
            .entries;
        Ok(history.iter().any(|entry| entry.change == "assistance_accepted").then_some(()))
    })
    .await;

    // The bureaus see both on their dashboards: 阜阳市 the notice it acknowledged and the help it
    // offered, 南京市 the notice's receipt and the help on its way.
    let fuyang = WebUser::sign_in(&web_url(&test, "340000"), &test.token("341200", Role::Supervisor)).await;
    let nanjing = WebUser::sign_in(&web_url(&test, "320000"), &test.token("320100", Role::Supervisor)).await;
    let cells = |table: &serde_json::Value, key: &str| -> Vec<String> {
        table["rows"].as_array().unwrap().iter().map(|row| row[key].as_str().unwrap_or_default().to_owned()).collect()
    };
    let (status, received) = fuyang.get("/api/lists/hukou_notices_in").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{received}");
    assert_eq!(received["title"], "收到的户籍地通知");
    assert_eq!(
        (cells(&received, "child"), cells(&received, "state")),
        (vec!["王小四".to_owned()], vec!["已回执".to_owned()])
    );
    let (_, sent) = nanjing.get("/api/lists/hukou_notices_out").await;
    assert_eq!(
        (cells(&sent, "hukou"), cells(&sent, "state")),
        (vec!["安徽省阜阳市临泉县".to_owned()], vec!["已回执".to_owned()])
    );
    let (_, helping) = fuyang.get("/api/lists/assistance_in?state=accepted").await;
    assert_eq!(
        (cells(&helping, "reason"), cells(&helping, "state")),
        (vec!["户籍地主动协助".to_owned()], vec!["协办中".to_owned()])
    );
    let (_, helped) = nanjing.get("/api/lists/assistance_out").await;
    assert_eq!(
        (cells(&helped, "helper"), cells(&helped, "needs")),
        (vec!["安徽省阜阳市临泉县".to_owned()], vec!["入户走访".to_owned()])
    );
    let (_, none_overdue) = nanjing.get("/api/lists/assistance_out?overdue=yes").await;
    assert!(none_overdue["rows"].as_array().unwrap().is_empty(), "{none_overdue}");
    test.finish().await;
}

fn uuid_like() -> String {
    "01900000-0000-7000-8000-000000000000".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_r11_hand_off_the_hukou_region_is_prompted_to_invite_the_new_inflow_region() {
    let (_clock, test) = start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let yingzhou = test.clients("340000", "341202", Role::Caseworker);
    let case = Child::Xiaosi.open_case(&xuanwu).await;
    let hand_off = |new_inflow: &str| RequestHandoffRequest {
        case_id: case.case_id.clone(),
        destination_region_code: "341221".into(),
        reason: "学生已随父母迁往阜阳市颍州区，依R11书面告知户籍地牵头劝返".into(),
        new_inflow_region_code: new_inflow.into(),
    };
    // The new inflow region is a county other than the destination.
    let same = xuanwu.transfer.clone().request_handoff(hand_off("341221")).await;
    refused(same, Code::InvalidArgument, "new_inflow_region_code");
    let city = xuanwu.transfer.clone().request_handoff(hand_off("341200")).await;
    refused(city, Code::InvalidArgument, "new_inflow_region_code");

    let handoff = xuanwu.transfer.clone().request_handoff(hand_off("341202")).await.expect("requested");
    let id = handoff.into_inner().handoff.unwrap().handoff_id;
    let incoming = common::handoffs::delivered(&xuanwu, &linquan, &id).await;
    assert_eq!(incoming.dossier.as_ref().unwrap().new_inflow_region_code, "341202");
    assert!(!incoming.invite_coworker, "only once the case is ours");
    linquan.transfer.clone().accept_handoff(AcceptHandoffRequest { handoff_id: id.clone() }).await.expect("accepted");
    let accepted = common::handoffs::until(&linquan, &id, HandoffDirection::Incoming, HandoffState::Completed).await;
    assert!(accepted.invite_coworker && accepted.coworker_assistance_id.is_empty(), "{accepted:?}");

    // 临泉县 invites 颍州区; the prompt gives way to the request.
    let ask = ask(
        &accepted.destination_case_id,
        "341202",
        AssistanceReason::InflowRegion,
        &[AssistanceNeed::FindChild, AssistanceNeed::VisitFamily],
    );
    let asked = request(&linquan, ask).await.expect("co-worker invited");
    let after = common::handoffs::handoff(&linquan, &id, HandoffDirection::Incoming).await;
    assert!(!after.invite_coworker);
    assert_eq!(after.coworker_assistance_id, asked.assistance_id);
    until_listed(&yingzhou, HandoffDirection::Incoming, "the invitation in 颍州区", |theirs| {
        theirs.assistance_id == asked.assistance_id && theirs.reason == AssistanceReason::InflowRegion as i32
    })
    .await;
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaf_provinces_work_a_case_together_through_the_hub() {
    let clock = RuleClock::at(&nine_am(FIRST_DAY));
    let test = TestStack::start_with(common::TestOptions { more_provinces: vec!["410000"], ..clock.options() }).await;
    // 安徽 and 河南 are leaves of the exchange's hub, as 江苏 is: everything between them crosses it.
    let system = test.clients("340000", "340000", Role::System);
    system.ensure_school("3412210001", "临泉县城关小学", "341221").await.expect("school");
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let zhongyuan = test.clients("410000", "410102", Role::Caseworker);
    let case = common::handoffs::migrant_case_at(&linquan, "3412210001", "李小河", 21, "410102").await;

    // R10: 中原区 (the hukou region, in 河南) is told, and its receipt comes back to 临泉县.
    let notice = eventually("the notice in 中原区", || async {
        Ok(notices(&zhongyuan, HandoffDirection::Incoming).await.into_iter().next())
    })
    .await;
    assert_eq!((notice.case_id.as_str(), notice.owner_region_code.as_str()), (case.case_id.as_str(), "341221"));
    eventually("the receipt in 临泉县", || async {
        Ok(notices(&linquan, HandoffDirection::Outgoing)
            .await
            .into_iter()
            .find(|ours| ours.state == HukouNoticeState::Delivered as i32))
    })
    .await;

    // 临泉县 asks 中原区 to visit the family; 中原区 accepts and reports; the attempt lands in the case.
    let mut asked = ask(&case.case_id, "410102", AssistanceReason::Other, &[AssistanceNeed::VisitFamily]);
    asked.note = "家长在郑州务工，请协助入户劝返".into();
    let asked = request(&linquan, asked).await.expect("asked");
    until_assistance(&zhongyuan, &asked.assistance_id, HandoffDirection::Incoming, "the request in 中原区", |_| {
        true
    })
    .await;
    let accept = AcceptAssistanceRequest { assistance_id: asked.assistance_id.clone() };
    zhongyuan.assistance.clone().accept_assistance(accept).await.expect("accepted");
    let mut home = attempt(FIRST_DAY, &[Education], PersuasionOutcome::AgreedToReturn);
    home.notes = "家长同意送孩子返校".into();
    report(&zhongyuan, &asked.assistance_id, AssistanceReport { attempts: vec![home], ..Default::default() })
        .await
        .expect("reported");
    eventually("the helper's attempt in 临泉县's case", || async {
        let attempts = case_attempts(&linquan, &case.case_id).await?;
        Ok(attempts.iter().any(|attempt| attempt.assisting_region_code == "410102").then_some(()))
    })
    .await;
    test.finish().await;
}
