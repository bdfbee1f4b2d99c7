//! A model-based property test of the case rules: random sequences of commands over a few
//! children, applied to a model of the ledger through the pure rules of `nol_cases::case::domain`
//! (exactly as the service applies them), checking the invariants after every step:
//! - never two active cases for one child (R2);
//! - never deferred or suspended without R6's conditions and a pending request (granted);
//! - a relapse only from monitoring, and it reopens the case (R13);
//! - home teaching only with a severe disability (R4);
//! - an ended case (exempt, closed, handed over) takes no attempts and never changes again.

use nol_cases::case::domain::{
    CaseFacts, CaseState, Command, Status, Transition, check_attempt, check_file_change, check_one_active, decide,
    deferral_missing, is_severe,
};
use nol_proto::v1::{CloseReason, DeferralKind};
use proptest::prelude::*;

const CHILDREN: usize = 3;

#[derive(Debug, Clone)]
struct ModelCase {
    child: usize,
    facts: CaseFacts,
    attempts: u32,
    relapses: u32,
}

#[derive(Debug, Clone, Copy)]
enum Evidence {
    Medical,
    JudicialRuling,
    GuardianDuty,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Open { child: usize, disability_grade: i16, age_years: u32 },
    Attempt { case: usize, joint: bool, refused: bool, agreed: bool },
    AddEvidence { case: usize, evidence: Evidence },
    Transition { case: usize, command: Command },
    RejectDeferral { case: usize },
    HandOver { case: usize },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::ReturnToSchool),
        Just(Command::StartMonitoring),
        Just(Command::Close(CloseReason::Completed)),
        Just(Command::Close(CloseReason::AgedOut)),
        Just(Command::StartHomeTeaching),
        Just(Command::RequestDeferral(DeferralKind::Deferred)),
        Just(Command::RequestDeferral(DeferralKind::Suspended)),
        Just(Command::ApproveDeferral),
        Just(Command::Exempt),
        Just(Command::RecordRelapse),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let case = 0usize..4;
    prop_oneof![
        (0..CHILDREN, 0i16..6, 10u32..18).prop_map(|(child, disability_grade, age_years)| Step::Open {
            child,
            disability_grade,
            age_years
        }),
        (case.clone(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(case, joint, refused, agreed)| Step::Attempt { case, joint, refused, agreed }),
        (
            case.clone(),
            prop_oneof![Just(Evidence::Medical), Just(Evidence::JudicialRuling), Just(Evidence::GuardianDuty)]
        )
            .prop_map(|(case, evidence)| Step::AddEvidence { case, evidence }),
        (case.clone(), command()).prop_map(|(case, command)| Step::Transition { case, command }),
        (case.clone(), command()).prop_map(|(case, command)| Step::Transition { case, command }),
        case.clone().prop_map(|case| Step::RejectDeferral { case }),
        case.prop_map(|case| Step::HandOver { case }),
    ]
}

#[derive(Debug, Default)]
struct Ledger {
    cases: Vec<ModelCase>,
}

impl Ledger {
    fn apply(&mut self, step: Step) {
        match step {
            Step::Open { child, disability_grade, age_years } => {
                let existing: Vec<Status> =
                    self.cases.iter().filter(|case| case.child == child).map(|case| case.facts.status).collect();
                if check_one_active(existing).is_ok() {
                    self.cases.push(ModelCase {
                        child,
                        facts: CaseFacts {
                            status: Status::Open,
                            disability_grade,
                            joint_attempts: 0,
                            judicial_ruling: false,
                            guardian_duty: false,
                            refusal: false,
                            medical_evidence: false,
                            pending_deferral: None,
                            age_years,
                        },
                        attempts: 0,
                        relapses: 0,
                    });
                }
            }
            Step::Attempt { case, joint, refused, agreed } => {
                let Some(case) = self.cases.get_mut(case) else { return };
                let before = case.facts.status;
                match check_attempt(before) {
                    Ok(()) => {
                        case.attempts += 1;
                        case.facts.joint_attempts += u32::from(joint);
                        // The newest decisive outcome decides whether the refusal stands.
                        if refused {
                            case.facts.refusal = true;
                        } else if agreed {
                            case.facts.refusal = false;
                        }
                    }
                    Err(_) => assert!(!before.is_active(), "an attempt was refused on an active case"),
                }
            }
            Step::AddEvidence { case, evidence } => {
                let Some(case) = self.cases.get_mut(case) else { return };
                if check_file_change(case.facts.status).is_ok() {
                    match evidence {
                        Evidence::Medical => case.facts.medical_evidence = true,
                        Evidence::JudicialRuling => case.facts.judicial_ruling = true,
                        Evidence::GuardianDuty => case.facts.guardian_duty = true,
                    }
                }
            }
            Step::RejectDeferral { case } => {
                if let Some(case) = self.cases.get_mut(case) {
                    case.facts.pending_deferral = None;
                }
            }
            Step::HandOver { case } => {
                let Some(case) = self.cases.get_mut(case) else { return };
                let state = CaseState { status: case.facts.status, handoff_id: None };
                if let Ok(Transition::To(status)) = state.complete_handoff(uuid::Uuid::nil()) {
                    assert_eq!(status, Status::HandedOver);
                    assert_eq!(case.facts.status, Status::Open, "only an open case is handed over");
                    case.facts.status = status;
                }
            }
            Step::Transition { case, command } => {
                let Some(case) = self.cases.get_mut(case) else { return };
                let before = case.facts.clone();
                let Ok(to) = decide(&before, command) else {
                    return;
                };
                assert!(before.status.is_active(), "{command:?} changed an ended case ({:?})", before.status);
                match command {
                    Command::RequestDeferral(kind) => {
                        assert!(deferral_missing(&before).is_empty(), "requested without R6's conditions");
                        case.facts.pending_deferral = Some(kind);
                    }
                    Command::ApproveDeferral => {
                        assert!(deferral_missing(&before).is_empty(), "granted without R6's conditions");
                        assert!(before.pending_deferral.is_some(), "granted without a request");
                        assert!(matches!(to, Status::Deferred | Status::Suspended));
                        case.facts.pending_deferral = None;
                    }
                    Command::RecordRelapse => {
                        assert_eq!(before.status, Status::Monitoring, "relapse only from monitoring");
                        assert_eq!(to, Status::Open);
                        case.relapses += 1;
                    }
                    Command::StartHomeTeaching => {
                        assert!(is_severe(before.disability_grade), "home teaching without a severe disability");
                    }
                    Command::Exempt => assert!(before.medical_evidence, "exempt without medical evidence"),
                    Command::Close(CloseReason::AgedOut) => assert!(before.age_years >= 16),
                    _ => {}
                }
                case.facts.status = to;
            }
        }
        self.check();
    }

    fn check(&self) {
        for child in 0..CHILDREN {
            let active = self.cases.iter().filter(|case| case.child == child && case.facts.status.is_active()).count();
            assert!(active <= 1, "child {child} has {active} active cases");
        }
        for case in &self.cases {
            if case.facts.status == Status::HomeTeaching {
                assert!(is_severe(case.facts.disability_grade));
            }
            if matches!(case.facts.status, Status::Deferred | Status::Suspended) {
                // (a) and (b) only grow; (c) may lapse later, persuasion continues.
                assert!(case.facts.joint_attempts >= 3 || case.facts.judicial_ruling);
                assert!(case.facts.guardian_duty);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(steps in proptest::collection::vec(step(), 1..80)) {
        let mut ledger = Ledger::default();
        let mut ended_attempts = Vec::new();
        for step in steps {
            ledger.apply(step);
            // An ended case never takes another attempt nor changes status.
            for (index, case) in ledger.cases.iter().enumerate() {
                if !case.facts.status.is_active() {
                    match ended_attempts.iter().find(|(seen, _, _)| *seen == index) {
                        Some((_, attempts, status)) => {
                            prop_assert_eq!(*attempts, case.attempts);
                            prop_assert_eq!(*status, case.facts.status);
                        }
                        None => ended_attempts.push((index, case.attempts, case.facts.status)),
                    }
                }
            }
        }
    }
}

#[test]
fn a_case_reaches_deferral_only_through_the_full_r6_path() {
    let mut ledger = Ledger::default();
    ledger.apply(Step::Open { child: 0, disability_grade: 1, age_years: 12 });
    ledger.apply(Step::Transition { case: 0, command: Command::ApproveDeferral });
    assert_eq!(ledger.cases[0].facts.status, Status::Open);
    for _ in 0..3 {
        ledger.apply(Step::Attempt { case: 0, joint: true, refused: true, agreed: false });
    }
    ledger.apply(Step::AddEvidence { case: 0, evidence: Evidence::GuardianDuty });
    ledger.apply(Step::Transition { case: 0, command: Command::ApproveDeferral });
    assert_eq!(ledger.cases[0].facts.status, Status::Open, "no approval without a request");
    ledger.apply(Step::Transition { case: 0, command: Command::RequestDeferral(DeferralKind::Deferred) });
    ledger.apply(Step::Transition { case: 0, command: Command::ApproveDeferral });
    assert_eq!(ledger.cases[0].facts.status, Status::Deferred);
    ledger.apply(Step::Attempt { case: 0, joint: false, refused: false, agreed: true });
    ledger.apply(Step::Transition { case: 0, command: Command::ReturnToSchool });
    ledger.apply(Step::Transition { case: 0, command: Command::StartMonitoring });
    ledger.apply(Step::Transition { case: 0, command: Command::RecordRelapse });
    assert_eq!((ledger.cases[0].facts.status, ledger.cases[0].relapses), (Status::Open, 1));
    ledger.apply(Step::Open { child: 0, disability_grade: 1, age_years: 12 });
    assert_eq!(ledger.cases.len(), 1, "the relapsed case is the child's one case");
}
