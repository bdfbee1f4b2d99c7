use nol_proto::v1::{EvidenceType, OfficerRole, PersuasionOutcome};

use super::stored::{from_wire, wire_list};
use super::*;

fn state(status: Status, handoff_id: Option<Uuid>) -> CaseState {
    CaseState { status, handoff_id }
}

fn refused<T: std::fmt::Debug>(result: Result<T, CaseRefusal>) -> String {
    match result {
        Err(refusal) => refusal.to_string(),
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_hand_off_goes_open_pending_handed_over() {
    let handoff = Uuid::now_v7();
    let open = state(Status::Open, None);
    assert_eq!(open.begin_handoff(handoff), Ok(Transition::To(Status::HandoffPending)));
    let pending = state(Status::HandoffPending, Some(handoff));
    assert_eq!(pending.begin_handoff(handoff), Ok(Transition::AlreadyDone));
    assert_eq!(pending.complete_handoff(handoff), Ok(Transition::To(Status::HandedOver)));
    let done = state(Status::HandedOver, Some(handoff));
    assert_eq!(done.complete_handoff(handoff), Ok(Transition::AlreadyDone));
    assert_eq!(done.begin_handoff(handoff), Ok(Transition::AlreadyDone));
}

#[test]
fn a_rejected_or_withdrawn_hand_off_leaves_the_case_open_here() {
    let handoff = Uuid::now_v7();
    assert_eq!(state(Status::HandoffPending, Some(handoff)).release_handoff(handoff), Ok(Transition::To(Status::Open)));
    assert_eq!(state(Status::Open, None).release_handoff(handoff), Ok(Transition::AlreadyDone));
    assert_eq!(
        state(Status::HandoffPending, Some(Uuid::now_v7())).release_handoff(handoff),
        Ok(Transition::AlreadyDone),
        "a release of an older hand-off leaves the newer one pending"
    );
    assert!(state(Status::HandedOver, Some(handoff)).release_handoff(handoff).is_err());
}

#[test]
fn completion_may_overtake_the_pending_notice() {
    let handoff = Uuid::now_v7();
    assert_eq!(state(Status::Open, None).complete_handoff(handoff), Ok(Transition::To(Status::HandedOver)));
}

#[test]
fn a_second_hand_off_is_refused_while_one_is_under_way_or_done() {
    let first = Uuid::now_v7();
    let second = Uuid::now_v7();
    assert!(matches!(
        state(Status::HandoffPending, Some(first)).begin_handoff(second),
        Err(CaseRefusal(Says::HandoffUnderWay { .. }))
    ));
    assert!(matches!(
        state(Status::HandedOver, Some(first)).complete_handoff(second),
        Err(CaseRefusal(Says::HandedOverByAnother { .. }))
    ));
    assert!(matches!(
        state(Status::HandedOver, Some(first)).begin_handoff(second),
        Err(CaseRefusal(Says::HandoffNotOpen { .. }))
    ));
}

#[test]
fn causes_are_required_and_deduplicated() {
    assert_eq!(check_causes(&[]), Err(CaseRefusal(Says::NoCause)));
    assert_eq!(check_causes(&[0, 99]), Err(CaseRefusal(Says::NoCause)));
    assert_eq!(check_causes(&[1, 4, 1]).unwrap(), vec![DropoutCause::FamilyPoverty, DropoutCause::GoneToWork]);
}

fn facts(status: Status) -> CaseFacts {
    CaseFacts {
        status,
        disability_grade: 1,
        joint_attempts: 0,
        judicial_ruling: false,
        guardian_duty: false,
        refusal: false,
        medical_evidence: false,
        pending_deferral: None,
        age_years: 13,
    }
}

#[test]
fn a_return_goes_returned_monitoring_closed() {
    assert_eq!(decide(&facts(Status::Open), Command::ReturnToSchool), Ok(Status::Returned));
    assert_eq!(decide(&facts(Status::Returned), Command::StartMonitoring), Ok(Status::Monitoring));
    assert_eq!(decide(&facts(Status::Monitoring), Command::Close(CloseReason::Completed)), Ok(Status::Closed));
    assert_eq!(decide(&facts(Status::Deferred), Command::ReturnToSchool), Ok(Status::Returned));
    let text = refused(decide(&facts(Status::Open), Command::StartMonitoring));
    assert_eq!(text, "R13: monitoring needs a case that is returned; this case is open");
    assert!(refused(decide(&facts(Status::Open), Command::Close(CloseReason::Completed))).starts_with("R1:"));
    assert!(refused(decide(&facts(Status::Closed), Command::ReturnToSchool)).contains("this case is closed"));
    let zh = decide(&facts(Status::Open), Command::StartMonitoring).unwrap_err().0.zh();
    assert_eq!(zh, "R13：巩固跟踪要求案件处于已复学状态；此案件为劝返中");
}

#[test]
fn aged_out_needs_sixteen_years() {
    let mut open = facts(Status::Open);
    let text = refused(decide(&open, Command::Close(CloseReason::AgedOut)));
    assert_eq!(text, "R1: closing as aged out needs a child of 16 or older; this child is 13");
    open.age_years = 16;
    assert_eq!(decide(&open, Command::Close(CloseReason::AgedOut)), Ok(Status::Closed));
    assert_eq!(age_on(NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), NaiveDate::from_ymd_opt(2029, 5, 1).unwrap()), 15);
    assert_eq!(age_on(NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), NaiveDate::from_ymd_opt(2029, 5, 2).unwrap()), 16);
}

#[test]
fn home_teaching_needs_a_severe_disability() {
    let mut open = facts(Status::Open);
    assert!(refused(decide(&open, Command::StartHomeTeaching)).starts_with("R4: home teaching needs a severe"));
    open.disability_grade = 4; // grade three: not severe
    assert!(decide(&open, Command::StartHomeTeaching).is_err());
    open.disability_grade = 3; // grade two
    assert_eq!(decide(&open, Command::StartHomeTeaching), Ok(Status::HomeTeaching));
    assert!(check_visit(Status::HomeTeaching).is_ok());
    assert!(check_visit(Status::Open).is_err());
}

#[test]
fn deferral_names_everything_missing() {
    let mut open = facts(Status::Open);
    open.joint_attempts = 2;
    let text = refused(decide(&open, Command::RequestDeferral(DeferralKind::Deferred)));
    assert_eq!(
        text,
        "R6: deferral needs 3 joint persuasion attempts or a judicial ruling, this case has 2 and no ruling; \
         guardian's duty not recorded (evidence of type guardian_duty); the child's refusal not recorded \
         (a persuasion attempt with outcome refused)"
    );
    open.joint_attempts = 3;
    open.guardian_duty = true;
    let text = refused(decide(&open, Command::RequestDeferral(DeferralKind::Suspended)));
    assert_eq!(
        text,
        "R6: suspension refused: the child's refusal not recorded (a persuasion attempt with outcome refused)"
    );
    assert!(
        decide(&open, Command::RequestDeferral(DeferralKind::Suspended))
            .unwrap_err()
            .0
            .zh()
            .starts_with("R6：不符合休学条件")
    );
    open.refusal = true;
    assert_eq!(decide(&open, Command::RequestDeferral(DeferralKind::Suspended)), Ok(Status::Open));
    // Approval needs a pending request, and checks the conditions again.
    assert!(refused(decide(&open, Command::ApproveDeferral)).contains("no deferral request is pending"));
    open.pending_deferral = Some(DeferralKind::Suspended);
    assert_eq!(decide(&open, Command::ApproveDeferral), Ok(Status::Suspended));
    assert!(refused(decide(&open, Command::RequestDeferral(DeferralKind::Deferred))).contains("already pending"));
    open.refusal = false;
    assert!(refused(decide(&open, Command::ApproveDeferral)).contains("refusal not recorded"));
    // A judicial ruling stands in for the three joint attempts.
    let mut ruled = facts(Status::Open);
    ruled.judicial_ruling = true;
    ruled.guardian_duty = true;
    ruled.refusal = true;
    ruled.pending_deferral = Some(DeferralKind::Deferred);
    assert_eq!(decide(&ruled, Command::ApproveDeferral), Ok(Status::Deferred));
}

#[test]
fn a_deferral_is_decided_once_by_the_owning_county() {
    let county = RegionCode::parse("320102").unwrap();
    let city = RegionCode::parse("320100").unwrap();
    assert!(check_decider(&county, &county).is_ok());
    assert!(check_decider(&county, &city).unwrap_err().en().starts_with("R6: deferral requests of 320102"));
    assert!(check_undecided(DeferralState::Pending, None).is_ok());
    assert_eq!(
        refused(check_undecided(DeferralState::Approved, Some("approver@320102"))),
        "R6: the request was already approved by approver@320102"
    );
}

#[test]
fn exemption_needs_medical_evidence_and_relapse_needs_monitoring() {
    let mut open = facts(Status::Open);
    assert!(refused(decide(&open, Command::Exempt)).starts_with("R1: an exemption needs medical evidence"));
    open.medical_evidence = true;
    assert_eq!(decide(&open, Command::Exempt), Ok(Status::Exempt));
    assert_eq!(decide(&facts(Status::Monitoring), Command::RecordRelapse), Ok(Status::Open));
    for status in [Status::Open, Status::Returned, Status::Deferred, Status::Closed] {
        assert!(decide(&facts(status), Command::RecordRelapse).is_err(), "{status:?}");
    }
}

#[test]
fn ended_cases_take_no_attempts_and_keep_their_file() {
    for status in [Status::Exempt, Status::Closed, Status::HandedOver] {
        assert!(check_attempt(status).is_err());
        assert!(check_file_change(status).is_err());
    }
    for status in [Status::Open, Status::Deferred, Status::Suspended, Status::Monitoring, Status::HandoffPending] {
        assert!(check_attempt(status).is_ok());
    }
    assert!(check_one_active([Status::Closed, Status::HandedOver]).is_ok());
    assert!(check_one_active([Status::Closed, Status::Deferred]).is_err());
}

#[test]
fn r2_names_the_existing_case_only_to_who_may_see_it() {
    let existing =
        ExistingCase { id: Uuid::now_v7(), status: Status::Deferred, region: RegionCode::parse("320102").unwrap() };
    let seen = check_open(Some(&existing), |_| true).unwrap_err();
    assert!(matches!(&seen.0, Says::ActiveCase { case_id, status: "deferred" } if *case_id == existing.id.to_string()));
    assert_eq!(check_open(Some(&existing), |_| false), Err(CaseRefusal(Says::ActiveCaseElsewhere)));
    let ended = ExistingCase { status: Status::Closed, ..existing };
    assert!(check_open(Some(&ended), |_| true).is_ok());
    assert!(check_open(None, |_| true).is_ok());
    assert!(seen.0.is_active_case_conflict());
}

#[test]
fn joint_means_a_department_besides_education() {
    assert!(!is_joint(&[PersuasionDepartment::Education]));
    assert!(is_joint(&[PersuasionDepartment::Education, PersuasionDepartment::WomensFederation]));
    assert!(is_joint(&[PersuasionDepartment::VillageCommittee]));
}

#[test]
fn phones_are_mobile_or_landline_with_area_code() {
    for good in ["13812345678", "025-83331234", "0551-6543210", "02583331234"] {
        assert!(check_phone(good).is_ok(), "{good}");
    }
    for bad in ["", "12812345678", "1381234567", "83331234", "025-123", "phone", "138-1234-5678"] {
        assert!(check_phone(bad).is_err(), "{bad}");
    }
}

fn fields(violations: &[FieldViolation]) -> Vec<&str> {
    violations.iter().map(|violation| violation.field.as_str()).collect()
}

#[test]
fn r3_aid_names_its_fund_and_r7_support_names_its_forms() {
    assert!(check_measure(Some(MeasureKind::FinancialAid), "教育资助专项资金", &[]).is_empty());
    let no_fund = check_measure(Some(MeasureKind::FinancialAid), "", &[]);
    assert_eq!(fields(&no_fund), ["measure.fund"]);
    assert!(no_fund[0].message.en().starts_with("R3:"));
    assert_eq!(fields(&check_measure(Some(MeasureKind::Legal), "fund", &[])), ["measure.fund"]);
    let no_form = check_measure(Some(MeasureKind::LearningSupport), "", &[]);
    assert!(no_form[0].message.en().starts_with("R7:"));
    assert!(check_measure(Some(MeasureKind::LearningSupport), "", &[LearningSupport::OnlineLessons]).is_empty());
    assert_eq!(
        fields(&check_measure(Some(MeasureKind::Other), "", &[LearningSupport::OnlineLessons])),
        ["measure.learning_support"]
    );
}

#[test]
fn r5_an_attempt_names_departments_and_means() {
    let both = check_persuasion(Some(&[]), Some(&[]));
    assert_eq!(fields(&both), ["attempt.departments", "attempt.means"]);
    assert!(both.iter().all(|violation| violation.message.en().starts_with("R5:")));
    assert!(check_persuasion(Some(&[PersuasionDepartment::Education]), Some(&[PersuasionMeans::Legal])).is_empty());
    assert!(check_persuasion(None, Some(&[PersuasionMeans::Legal])).is_empty(), "an unreadable list is not R5's");
}

#[test]
fn r8_a_work_place_names_its_county_and_that_county_is_asked_to_help() {
    let owner = RegionCode::parse("320102").unwrap();
    let missing = check_place_region(Some(PersuasionPlace::WorkPlace), " ").unwrap_err();
    assert!(missing.message.en().starts_with("R8:"));
    assert!(check_place_region(Some(PersuasionPlace::WorkPlace), "320100").is_err(), "a city is not a county");
    assert!(check_place_region(Some(PersuasionPlace::Home), "341221").is_err());
    assert_eq!(check_place_region(Some(PersuasionPlace::Home), ""), Ok(None));
    let found = check_place_region(Some(PersuasionPlace::WorkPlace), "341221").unwrap();
    assert_eq!(assisting_region(found, &owner), RegionCode::parse("341221").ok());
    assert_eq!(assisting_region(Some(owner), &owner), None);
}

#[test]
fn own_stored_names_are_pinned() {
    let names = |all: &[&'static str]| all.to_vec();
    assert_eq!(
        names(&Status::ALL.iter().map(|status| status.as_stored()).collect::<Vec<_>>()),
        [
            "open",
            "handoff_pending",
            "handed_over",
            "returned",
            "monitoring",
            "home_teaching",
            "deferred",
            "suspended",
            "exempt",
            "closed"
        ]
    );
    assert_eq!(Source::ALL.iter().map(|source| source.as_stored()).collect::<Vec<_>>(), ["local", "handoff"]);
    assert_eq!(
        DeferralState::ALL.iter().map(|state| state.as_stored()).collect::<Vec<_>>(),
        ["pending", "approved", "rejected"]
    );
    assert_eq!(Status::from_stored("closed"), Some(Status::Closed));
    assert_eq!(Status::from_stored("Closed"), None);
    for status in Status::ALL {
        assert_eq!(Status::from_proto(status.to_proto()), Some(*status));
    }
}

#[test]
fn stored_names_of_the_contract_round_trip() {
    assert_eq!(PersuasionOutcome::Refused.as_stored(), "refused");
    assert_eq!(PersuasionOutcome::from_stored("agreed_to_return"), Some(PersuasionOutcome::AgreedToReturn));
    assert_eq!(EvidenceType::JudicialRuling.as_stored(), "judicial_ruling");
    assert_eq!(from_wire::<OfficerRole>(0), None);
    assert_eq!(wire_list::<PersuasionMeans>(&[1, 4, 1]), Ok(vec![PersuasionMeans::Emotional, PersuasionMeans::Legal]));
    assert!(
        check_not_future(NaiveDate::from_ymd_opt(2027, 3, 2).unwrap(), NaiveDate::from_ymd_opt(2027, 3, 1).unwrap())
            .is_err()
    );
}
