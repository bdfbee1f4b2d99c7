//! A case's rules, without I/O: which changes its status allows.

use chrono::{Datelike, NaiveDate};
use nol_proto::v1::{
    CaseStatus, CloseReason, DeferralKind, DropoutCause, EvidenceType, LearningSupport, MeasureKind, OfficerRole,
    PersuasionDepartment, PersuasionMeans, PersuasionOutcome, PersuasionPlace,
};
use nol_region::RegionCode;
use uuid::Uuid;

/// Where a case is; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    HandoffPending,
    HandedOver,
    Returned,
    Monitoring,
    HomeTeaching,
    Deferred,
    Suspended,
    Exempt,
    Closed,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Open,
        Status::HandoffPending,
        Status::HandedOver,
        Status::Returned,
        Status::Monitoring,
        Status::HomeTeaching,
        Status::Deferred,
        Status::Suspended,
        Status::Exempt,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::HandoffPending => "handoff_pending",
            Status::HandedOver => "handed_over",
            Status::Returned => "returned",
            Status::Monitoring => "monitoring",
            Status::HomeTeaching => "home_teaching",
            Status::Deferred => "deferred",
            Status::Suspended => "suspended",
            Status::Exempt => "exempt",
            Status::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn to_proto(self) -> CaseStatus {
        match self {
            Status::Open => CaseStatus::Open,
            Status::HandoffPending => CaseStatus::HandoffPending,
            Status::HandedOver => CaseStatus::HandedOver,
            Status::Returned => CaseStatus::Returned,
            Status::Monitoring => CaseStatus::Monitoring,
            Status::HomeTeaching => CaseStatus::HomeTeaching,
            Status::Deferred => CaseStatus::Deferred,
            Status::Suspended => CaseStatus::Suspended,
            Status::Exempt => CaseStatus::Exempt,
            Status::Closed => CaseStatus::Closed,
        }
    }

    pub fn from_proto(status: CaseStatus) -> Option<Status> {
        Status::ALL.into_iter().find(|candidate| candidate.to_proto() == status)
    }

    /// The child's one case (R2): every status but the three ends. Must match the partial unique
    /// index `dropout_case_one_active_per_child`.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::HandedOver | Status::Exempt | Status::Closed)
    }
}

/// A refused change, naming the rule and what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("R11: the case is {status}; only an open case can be handed over")]
    NotOpen { status: &'static str },
    #[error("R11: hand-off {pending} of this case is already under way")]
    HandoffUnderWay { pending: Uuid },
    #[error("R11: the case was handed over by hand-off {by}, not {requested}")]
    HandedOverByAnother { by: Uuid, requested: Uuid },
    #[error("R2: at least one cause is required")]
    NoCause,
    #[error("the stored case has an unreadable {0}")]
    Corrupt(&'static str),
    /// A lifecycle rule refused the change; the text names the rule and everything missing.
    #[error("{0}")]
    Refused(String),
}

/// The outcome of an allowed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status moves to this.
    To(Status),
    /// Already done (a redelivered or reordered event): nothing to change.
    AlreadyDone,
}

/// The part of a case the hand-off rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseState {
    pub status: Status,
    pub region: RegionCode,
    pub handoff_id: Option<Uuid>,
}

impl CaseState {
    /// The hand-off state of a stored case; a row the rules cannot read is an error.
    pub fn from_row(row: &crate::store::CaseRow) -> Result<CaseState, RuleViolation> {
        let status = Status::parse(&row.status).ok_or(RuleViolation::Corrupt("status"))?;
        let region = RegionCode::parse(&row.region).map_err(|_| RuleViolation::Corrupt("region"))?;
        Ok(CaseState { status, region, handoff_id: row.handoff_id })
    }

    /// A hand-off was requested: the case stays owned here, marked pending.
    pub fn begin_handoff(&self, handoff_id: Uuid) -> Result<Transition, RuleViolation> {
        match (self.status, self.handoff_id) {
            (Status::Open, _) => Ok(Transition::To(Status::HandoffPending)),
            (Status::HandoffPending | Status::HandedOver, Some(current)) if current == handoff_id => {
                Ok(Transition::AlreadyDone)
            }
            (Status::HandoffPending, current) => {
                Err(RuleViolation::HandoffUnderWay { pending: current.unwrap_or_default() })
            }
            (_, _) => Err(RuleViolation::NotOpen { status: self.status.as_str() }),
        }
    }

    /// The destination accepted: ownership has moved, the case here is handed over. Also valid
    /// straight from open, when the completion overtakes the pending notice.
    pub fn complete_handoff(&self, handoff_id: Uuid) -> Result<Transition, RuleViolation> {
        match (self.status, self.handoff_id) {
            (Status::HandedOver, Some(current)) if current == handoff_id => Ok(Transition::AlreadyDone),
            (Status::HandedOver, current) => {
                Err(RuleViolation::HandedOverByAnother { by: current.unwrap_or_default(), requested: handoff_id })
            }
            (Status::HandoffPending, Some(current)) if current != handoff_id => {
                Err(RuleViolation::HandoffUnderWay { pending: current })
            }
            (Status::Open | Status::HandoffPending, _) => Ok(Transition::To(Status::HandedOver)),
            (_, _) => Err(RuleViolation::NotOpen { status: self.status.as_str() }),
        }
    }
}

/// Validates the causes of a new case: at least one, each known, no repeats.
pub fn check_causes(raw: &[i32]) -> Result<Vec<DropoutCause>, RuleViolation> {
    let mut causes = Vec::new();
    for value in raw {
        if let Ok(cause) = DropoutCause::try_from(*value)
            && cause != DropoutCause::Unspecified
            && !causes.contains(&cause)
        {
            causes.push(cause);
        }
    }
    if causes.is_empty() {
        return Err(RuleViolation::NoCause);
    }
    Ok(causes)
}

pub fn cause_name(cause: DropoutCause) -> &'static str {
    match cause {
        DropoutCause::Unspecified => "unspecified",
        DropoutCause::FamilyPoverty => "family_poverty",
        DropoutCause::Disability => "disability",
        DropoutCause::LearningDifficulty => "learning_difficulty",
        DropoutCause::GoneToWork => "gone_to_work",
        DropoutCause::Religion => "religion",
        DropoutCause::Other => "other",
    }
}

pub fn cause_from_name(name: &str) -> DropoutCause {
    match name {
        "family_poverty" => DropoutCause::FamilyPoverty,
        "disability" => DropoutCause::Disability,
        "learning_difficulty" => DropoutCause::LearningDifficulty,
        "gone_to_work" => DropoutCause::GoneToWork,
        "religion" => DropoutCause::Religion,
        "other" => DropoutCause::Other,
        _ => DropoutCause::Unspecified,
    }
}

/// Stored names of the proto enums: the value name without its prefix, in lowercase
/// (`PERSUASION_OUTCOME_REFUSED` is stored as `refused`).
pub trait StoredName: Sized + Copy {
    fn stored(self) -> String;
    fn from_stored(name: &str) -> Option<Self>;
    /// The known, specified value of a wire number.
    fn from_wire(value: i32) -> Option<Self>;
}

macro_rules! stored_name {
    ($($enum:ty => $prefix:literal),* $(,)?) => {$(
        impl StoredName for $enum {
            fn stored(self) -> String {
                self.as_str_name().trim_start_matches($prefix).to_ascii_lowercase()
            }
            fn from_stored(name: &str) -> Option<Self> {
                <$enum>::from_str_name(&format!("{}{}", $prefix, name.to_ascii_uppercase()))
            }
            fn from_wire(value: i32) -> Option<Self> {
                <$enum>::try_from(value).ok().filter(|known| *known as i32 != 0)
            }
        }
    )*};
}

stored_name! {
    OfficerRole => "OFFICER_ROLE_",
    MeasureKind => "MEASURE_KIND_",
    LearningSupport => "LEARNING_SUPPORT_",
    EvidenceType => "EVIDENCE_TYPE_",
    PersuasionDepartment => "PERSUASION_DEPARTMENT_",
    PersuasionMeans => "PERSUASION_MEANS_",
    PersuasionPlace => "PERSUASION_PLACE_",
    PersuasionOutcome => "PERSUASION_OUTCOME_",
    DeferralKind => "DEFERRAL_KIND_",
    CloseReason => "CLOSE_REASON_",
}

/// A list of enum values from the wire: each known and specified, without repeats; the unknown
/// ones are returned as the error.
pub fn wire_list<E: StoredName + PartialEq>(values: &[i32]) -> Result<Vec<E>, Vec<i32>> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for value in values {
        match E::from_wire(*value) {
            Some(item) if !known.contains(&item) => known.push(item),
            Some(_) => {}
            None => unknown.push(*value),
        }
    }
    if unknown.is_empty() { Ok(known) } else { Err(unknown) }
}

/// Joint persuasion (联合劝返, R5/R6): at least one department besides education took part.
pub fn is_joint(departments: &[PersuasionDepartment]) -> bool {
    departments.iter().any(|department| *department != PersuasionDepartment::Education)
}

/// DisabilityGrade ONE (2) and TWO (3) are severe (R4).
pub fn is_severe(disability_grade: i16) -> bool {
    matches!(disability_grade, 2 | 3)
}

/// Whole years from `birth` to `today`.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> u32 {
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The age from which a child is past compulsory-school age (义务教育: 6 to 15 years of age).
pub const AGED_OUT_AT: u32 = 16;

/// A phone number a case worker can call: an 11-digit mainland mobile number (1[3-9]xxxxxxxxx),
/// or a landline with its area code (0 + 2 or 3 digits, optional '-', 7 or 8 digits).
pub fn check_phone(phone: &str) -> Result<(), &'static str> {
    let phone = phone.trim();
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let mobile =
        phone.len() == 11 && digits(phone) && phone.starts_with('1') && matches!(phone.as_bytes()[1], b'3'..=b'9');
    let landline = match phone.split_once('-') {
        Some((area, number)) => {
            digits(area)
                && area.starts_with('0')
                && (3..=4).contains(&area.len())
                && digits(number)
                && (7..=8).contains(&number.len())
        }
        None => digits(phone) && phone.starts_with('0') && (10..=12).contains(&phone.len()),
    };
    if mobile || landline {
        Ok(())
    } else {
        Err("is not a mobile number (11 digits, 1[3-9]...) or a landline with area code (e.g. 025-83331234)")
    }
}

/// What the lifecycle rules look at: the case's status and what its file shows. Gathered by the
/// store; decided here without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    pub status: Status,
    /// `DisabilityGrade` as its number.
    pub disability_grade: i16,
    /// Persuasion attempts in which a department besides education took part.
    pub joint_attempts: u32,
    /// Evidence of type judicial_ruling on the case (R6 a).
    pub judicial_ruling: bool,
    /// Evidence of type guardian_duty on the case (R6 b).
    pub guardian_duty: bool,
    /// The child's refusal stands: of the attempts that ended in "refused" or "agreed to return",
    /// the newest ended in "refused" (R6 c).
    pub refusal: bool,
    /// Evidence of type medical on the case (R1).
    pub medical_evidence: bool,
    /// The pending deferral request's kind, if one is pending (R6 d).
    pub pending_deferral: Option<DeferralKind>,
    /// The child's age in whole years today, by the rule clock.
    pub age_years: u32,
}

/// A lifecycle command on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    ReturnToSchool,
    StartMonitoring,
    Close(CloseReason),
    StartHomeTeaching,
    RequestDeferral(DeferralKind),
    ApproveDeferral,
    Exempt,
    RecordRelapse,
}

/// The number of joint attempts R6 (a) requires ("three or more").
pub const JOINT_ATTEMPTS_FOR_DEFERRAL: u32 = 3;

fn wrong_status(rule: &str, action: &str, allowed: &[Status], status: Status) -> RuleViolation {
    let allowed: Vec<&str> = allowed.iter().map(|status| status.as_str()).collect();
    RuleViolation::Refused(format!(
        "{rule}: {action} needs a case that is {}; this case is {}",
        allowed.join(" or "),
        status.as_str()
    ))
}

/// R6 (a)–(c): what is missing for a deferral or suspension; empty when nothing is.
pub fn deferral_missing(facts: &CaseFacts) -> Vec<String> {
    let mut missing = Vec::new();
    if facts.joint_attempts < JOINT_ATTEMPTS_FOR_DEFERRAL && !facts.judicial_ruling {
        missing.push(format!(
            "needs {JOINT_ATTEMPTS_FOR_DEFERRAL} joint persuasion attempts or a judicial ruling, this case has {} and no ruling",
            facts.joint_attempts
        ));
    }
    if !facts.guardian_duty {
        missing.push("guardian's duty not recorded (evidence of type guardian_duty)".to_owned());
    }
    if !facts.refusal {
        missing.push("the child's refusal not recorded (a persuasion attempt with outcome refused)".to_owned());
    }
    missing
}

/// Where `command` takes a case with these facts, or why it may not (naming the rule and
/// everything missing).
pub fn decide(facts: &CaseFacts, command: Command) -> Result<Status, RuleViolation> {
    use Status::*;
    let status = facts.status;
    let allow = |rule: &str, action: &str, allowed: &[Status]| {
        if allowed.contains(&status) { Ok(()) } else { Err(wrong_status(rule, action, allowed, status)) }
    };
    match command {
        Command::ReturnToSchool => {
            allow("R5", "a return to school", &[Open, HomeTeaching, Deferred, Suspended])?;
            Ok(Returned)
        }
        Command::StartMonitoring => {
            allow("R13", "monitoring", &[Returned])?;
            Ok(Monitoring)
        }
        Command::Close(CloseReason::Completed) => {
            allow("R1", "closing as completed", &[Monitoring, HomeTeaching])?;
            Ok(Closed)
        }
        Command::Close(CloseReason::AgedOut) => {
            allow("R1", "closing as aged out", &[Open, Returned, Monitoring, HomeTeaching, Deferred, Suspended])?;
            if facts.age_years < AGED_OUT_AT {
                return Err(RuleViolation::Refused(format!(
                    "R1: closing as aged out needs a child of {AGED_OUT_AT} or older; this child is {}",
                    facts.age_years
                )));
            }
            Ok(Closed)
        }
        Command::Close(CloseReason::Unspecified) => {
            Err(RuleViolation::Refused("R1: a case closes as completed or as aged out".to_owned()))
        }
        Command::StartHomeTeaching => {
            allow("R4", "home teaching", &[Open])?;
            if !is_severe(facts.disability_grade) {
                return Err(RuleViolation::Refused(
                    "R4: home teaching needs a severe disability (grade 1 or 2) on record; this child has none"
                        .to_owned(),
                ));
            }
            Ok(HomeTeaching)
        }
        Command::RequestDeferral(kind) => {
            allow("R6", "a deferral request", &[Open])?;
            if let Some(pending) = facts.pending_deferral {
                return Err(RuleViolation::Refused(format!(
                    "R6: a {} request is already pending on this case",
                    pending.stored()
                )));
            }
            refuse_deferral(kind, facts)?;
            Ok(Open)
        }
        Command::ApproveDeferral => {
            allow("R6", "an approved deferral", &[Open])?;
            let Some(kind) = facts.pending_deferral else {
                return Err(RuleViolation::Refused(
                    "R6: no deferral request is pending; the county group approves a request".to_owned(),
                ));
            };
            refuse_deferral(kind, facts)?;
            Ok(if kind == DeferralKind::Suspended { Suspended } else { Deferred })
        }
        Command::Exempt => {
            allow("R1", "an exemption", &[Open, HomeTeaching])?;
            if !facts.medical_evidence {
                return Err(RuleViolation::Refused(
                    "R1: an exemption needs medical evidence on the case (evidence of type medical)".to_owned(),
                ));
            }
            Ok(Exempt)
        }
        Command::RecordRelapse => {
            allow("R13", "a relapse", &[Monitoring])?;
            Ok(Open)
        }
    }
}

/// R6 (a)–(c) for a deferral or suspension of `kind`: "R6: deferral needs 3 joint persuasion
/// attempts or a judicial ruling, this case has 2 and no ruling; guardian's duty not recorded".
fn refuse_deferral(kind: DeferralKind, facts: &CaseFacts) -> Result<(), RuleViolation> {
    let missing = deferral_missing(facts);
    if missing.is_empty() {
        return Ok(());
    }
    let text = missing.join("; ");
    let word = deferral_word(kind);
    Err(RuleViolation::Refused(if text.starts_with("needs") {
        format!("R6: {word} {text}")
    } else {
        format!("R6: {word} refused: {text}")
    }))
}

fn deferral_word(kind: DeferralKind) -> &'static str {
    if kind == DeferralKind::Suspended { "suspension" } else { "deferral" }
}

/// R2: a child with an active case gets no second one (the database's partial unique index
/// `dropout_case_one_active_per_child` enforces the same).
pub fn check_open(existing: impl IntoIterator<Item = Status>) -> Result<(), RuleViolation> {
    match existing.into_iter().find(|status| status.is_active()) {
        Some(status) => {
            Err(RuleViolation::Refused(format!("R2: this child already has an active case ({})", status.as_str())))
        }
        None => Ok(()),
    }
}

/// Persuasion continues in every status but the ends (R5, R6): an exempt, closed or handed-over
/// case takes no attempts.
pub fn check_attempt(status: Status) -> Result<(), RuleViolation> {
    if status.is_active() {
        Ok(())
    } else {
        Err(RuleViolation::Refused(format!(
            "R5: persuasion attempts are recorded on an active case; this case is {}",
            status.as_str()
        )))
    }
}

/// Home-teaching visits are logged while the case is in home teaching (R4).
pub fn check_visit(status: Status) -> Result<(), RuleViolation> {
    if status == Status::HomeTeaching {
        Ok(())
    } else {
        Err(wrong_status("R4", "a home-teaching visit", &[Status::HomeTeaching], status))
    }
}

/// The file of an ended case (exempt, closed, handed over) is kept as it is (R2).
pub fn check_file_change(status: Status) -> Result<(), RuleViolation> {
    if status.is_active() {
        Ok(())
    } else {
        Err(RuleViolation::Refused(format!(
            "R2: the file of an ended case is kept as it is; this case is {}",
            status.as_str()
        )))
    }
}

/// A rule date (an attempt, a visit, a return, a document) may not lie in the future.
pub fn check_not_future(day: NaiveDate, today: NaiveDate) -> Result<(), String> {
    if day > today { Err(format!("is in the future (today is {today})")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, handoff_id: Option<Uuid>) -> CaseState {
        CaseState { status, region: RegionCode::parse("320102").unwrap(), handoff_id }
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
            Err(RuleViolation::HandoffUnderWay { .. })
        ));
        assert!(matches!(
            state(Status::HandedOver, Some(first)).complete_handoff(second),
            Err(RuleViolation::HandedOverByAnother { .. })
        ));
        assert!(matches!(
            state(Status::HandedOver, Some(first)).begin_handoff(second),
            Err(RuleViolation::NotOpen { .. })
        ));
    }

    #[test]
    fn causes_are_required_and_deduplicated() {
        assert_eq!(check_causes(&[]), Err(RuleViolation::NoCause));
        assert_eq!(check_causes(&[0, 99]), Err(RuleViolation::NoCause));
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

    fn refused(result: Result<Status, RuleViolation>) -> String {
        match result {
            Err(RuleViolation::Refused(text)) => text,
            other => panic!("expected a refusal, got {other:?}"),
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
    }

    #[test]
    fn aged_out_needs_sixteen_years() {
        let mut open = facts(Status::Open);
        let text = refused(decide(&open, Command::Close(CloseReason::AgedOut)));
        assert_eq!(text, "R1: closing as aged out needs a child of 16 or older; this child is 13");
        open.age_years = 16;
        assert_eq!(decide(&open, Command::Close(CloseReason::AgedOut)), Ok(Status::Closed));
        assert_eq!(
            age_on(NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), NaiveDate::from_ymd_opt(2029, 5, 1).unwrap()),
            15
        );
        assert_eq!(
            age_on(NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), NaiveDate::from_ymd_opt(2029, 5, 2).unwrap()),
            16
        );
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
        assert!(check_open([Status::Closed, Status::HandedOver]).is_ok());
        assert!(check_open([Status::Closed, Status::Deferred]).is_err());
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

    #[test]
    fn stored_names_round_trip() {
        assert_eq!(PersuasionOutcome::Refused.stored(), "refused");
        assert_eq!(PersuasionOutcome::from_stored("agreed_to_return"), Some(PersuasionOutcome::AgreedToReturn));
        assert_eq!(EvidenceType::JudicialRuling.stored(), "judicial_ruling");
        assert_eq!(OfficerRole::from_wire(0), None);
        assert_eq!(
            wire_list::<PersuasionMeans>(&[1, 4, 1]),
            Ok(vec![PersuasionMeans::Emotional, PersuasionMeans::Legal])
        );
        assert_eq!(wire_list::<PersuasionMeans>(&[1, 99]), Err(vec![99]));
        assert!(
            check_not_future(
                NaiveDate::from_ymd_opt(2027, 3, 2).unwrap(),
                NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
            )
            .is_err()
        );
    }
}
