//! A case's rules, without I/O: what its status allows, what its file must show, what a change
//! must carry. Every rule of the case file lives here once; the service asks, the ledger writes.
//! A refusal is a [`CaseRefusal`] in the catalogue's words, naming the rule and everything missing.

pub mod deadlines;
pub mod file;
pub mod stored;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nol_messages::vocab::{CaseStep, DeferralGap};
use nol_messages::{Case as Says, Common, FieldViolation};
use nol_proto::v1::{
    CaseStatus, CloseReason, DeferralKind, DropoutCause, LearningSupport, MeasureKind, PersuasionDepartment,
    PersuasionMeans, PersuasionPlace,
};
use nol_region::RegionCode;
use uuid::Uuid;

use deadlines::DueKind;
use stored::Stored;

/// A refused change of a case: the rule and what is missing, in the catalogue's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRefusal(pub Says);

impl std::fmt::Display for CaseRefusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0.en())
    }
}

impl std::error::Error for CaseRefusal {}

fn refuse<T>(message: Says) -> Result<T, CaseRefusal> {
    Err(CaseRefusal(message))
}

/// Where a case is.
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

stored::stored_own! {
    Status {
        Open => "open", HandoffPending => "handoff_pending", HandedOver => "handed_over", Returned => "returned",
        Monitoring => "monitoring", HomeTeaching => "home_teaching", Deferred => "deferred",
        Suspended => "suspended", Exempt => "exempt", Closed => "closed",
    }
}

impl Status {
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
        Status::ALL.iter().copied().find(|candidate| candidate.to_proto() == status)
    }

    /// The child's one case (R2): every status but the three ends. Must match the partial unique
    /// index `dropout_case_one_active_per_child`.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::HandedOver | Status::Exempt | Status::Closed)
    }
}

/// How a case came to this province's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Confirmed here (opened by a case worker or from a suspected-dropout item).
    Local,
    /// Taken in from another region's hand-off (R11).
    Handoff,
}

stored::stored_own! {
    Source { Local => "local", Handoff => "handoff" }
}

/// What a deferral request is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferralState {
    Pending,
    Approved,
    Rejected,
}

stored::stored_own! {
    DeferralState { Pending => "pending", Approved => "approved", Rejected => "rejected" }
}

/// The child as a case holds them (the number encrypted; see `crate::child`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOnFile {
    pub full_name: String,
    pub resident_id_cipher: Vec<u8>,
    /// The blind index, which the ciphertext is bound to.
    pub resident_id_index: Vec<u8>,
    pub resident_id_masked: String,
    /// 1 male, 2 female (from the resident ID number).
    pub sex: i16,
    pub birth_date: NaiveDate,
    pub hukou_region: String,
}

/// What a case owes next and by when (R12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub on: NaiveDate,
    pub kind: DueKind,
}

/// A dropout case (一人一案) as the ledger holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: Uuid,
    pub pupil_id: Option<Uuid>,
    pub child: ChildOnFile,
    /// The owning county.
    pub region: RegionCode,
    pub status: Status,
    pub causes: Vec<DropoutCause>,
    pub notes: String,
    pub source: Source,
    pub origin_region: Option<RegionCode>,
    pub origin_case_id: Option<Uuid>,
    pub handoff_id: Option<Uuid>,
    pub handoff_destination: Option<RegionCode>,
    pub supervision_region: Option<RegionCode>,
    pub supervision_reason: Option<String>,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub migrant: bool,
    pub registered_poor: bool,
    /// `DisabilityGrade` as its number.
    pub disability_grade: i16,
    pub confirmed_on: Option<NaiveDate>,
    pub last_attempt_on: Option<NaiveDate>,
    pub follow_up_from: Option<NaiveDate>,
    /// For a case pending a hand-off: the day it was requested.
    pub handoff_requested_on: Option<NaiveDate>,
    pub due: Option<Due>,
    pub relapse_count: i32,
    /// What the current status records (the school, class and date of a return; a close reason).
    pub status_detail: serde_json::Value,
    pub suspect_id: Option<Uuid>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Case {
    /// The dates its deadlines run from.
    pub fn dates(&self) -> deadlines::CaseDates {
        deadlines::CaseDates {
            status: self.status,
            confirmed_on: self.confirmed_on.unwrap_or_else(|| china_date(self.opened_at)),
            last_attempt_on: self.last_attempt_on,
            follow_up_from: self.follow_up_from,
            handoff_requested_on: self.handoff_requested_on,
        }
    }

    /// A text field of the status detail ("" when absent).
    pub fn detail(&self, key: &str) -> &str {
        self.status_detail.get(key).and_then(|value| value.as_str()).unwrap_or_default()
    }

    /// The part of the case the hand-off rules look at.
    pub fn handoff_state(&self) -> CaseState {
        CaseState { status: self.status, handoff_id: self.handoff_id }
    }
}

/// The calendar date of `time` in China Standard Time (UTC+8), the calendar bureaus work by.
pub fn china_date(time: DateTime<Utc>) -> NaiveDate {
    (time + chrono::Duration::hours(8)).date_naive()
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
    pub handoff_id: Option<Uuid>,
}

impl CaseState {
    /// A hand-off was requested: the case stays owned here, marked pending.
    pub fn begin_handoff(&self, handoff_id: Uuid) -> Result<Transition, CaseRefusal> {
        match (self.status, self.handoff_id) {
            (Status::Open, _) => Ok(Transition::To(Status::HandoffPending)),
            (Status::HandoffPending | Status::HandedOver, Some(current)) if current == handoff_id => {
                Ok(Transition::AlreadyDone)
            }
            (Status::HandoffPending, current) => {
                refuse(Says::HandoffUnderWay { pending: current.unwrap_or_default().to_string() })
            }
            (_, _) => refuse(Says::HandoffNotOpen { status: self.status.as_stored() }),
        }
    }

    /// The destination accepted: ownership has moved, the case here is handed over. Also valid
    /// straight from open, when the completion overtakes the pending notice.
    pub fn complete_handoff(&self, handoff_id: Uuid) -> Result<Transition, CaseRefusal> {
        match (self.status, self.handoff_id) {
            (Status::HandedOver, Some(current)) if current == handoff_id => Ok(Transition::AlreadyDone),
            (Status::HandedOver, current) => refuse(Says::HandedOverByAnother {
                by: current.unwrap_or_default().to_string(),
                requested: handoff_id.to_string(),
            }),
            (Status::HandoffPending, Some(current)) if current != handoff_id => {
                refuse(Says::HandoffUnderWay { pending: current.to_string() })
            }
            (Status::Open | Status::HandoffPending, _) => Ok(Transition::To(Status::HandedOver)),
            (_, _) => refuse(Says::HandoffNotOpen { status: self.status.as_stored() }),
        }
    }
}

impl CaseState {
    /// The destination refused or the origin withdrew hand-off `handoff_id`: the case is open here
    /// again, owned as before. A release already applied (or of a hand-off the case is no longer
    /// pending for) changes nothing; a handed-over case cannot come back this way.
    pub fn release_handoff(&self, handoff_id: Uuid) -> Result<Transition, CaseRefusal> {
        match (self.status, self.handoff_id) {
            (Status::HandoffPending, Some(current)) if current == handoff_id => Ok(Transition::To(Status::Open)),
            (Status::HandedOver, Some(current)) if current == handoff_id => {
                refuse(Says::HandedOverByAnother { by: current.to_string(), requested: handoff_id.to_string() })
            }
            (_, _) => Ok(Transition::AlreadyDone),
        }
    }
}

/// Validates the causes of a case: at least one, each known, no repeats (R2).
pub fn check_causes(raw: &[i32]) -> Result<Vec<DropoutCause>, CaseRefusal> {
    let mut causes = Vec::new();
    for value in raw {
        if let Some(cause) = stored::from_wire::<DropoutCause>(*value)
            && !causes.contains(&cause)
        {
            causes.push(cause);
        }
    }
    if causes.is_empty() {
        return refuse(Says::NoCause);
    }
    Ok(causes)
}

/// The child's active case, as the R2 check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingCase {
    pub id: Uuid,
    pub status: Status,
    pub region: RegionCode,
}

/// R2: a child with an active case gets no second one (the partial unique index
/// `dropout_case_one_active_per_child` enforces the same). The refusal names the existing case
/// only to a caller who may see its region.
pub fn check_open(
    existing: Option<&ExistingCase>,
    caller_sees: impl Fn(&RegionCode) -> bool,
) -> Result<(), CaseRefusal> {
    match existing {
        Some(case) if case.status.is_active() && caller_sees(&case.region) => {
            refuse(Says::ActiveCase { case_id: case.id.to_string(), status: case.status.as_stored() })
        }
        Some(case) if case.status.is_active() => refuse(Says::ActiveCaseElsewhere),
        _ => Ok(()),
    }
}

/// R2 over the statuses of all a child's cases: at most one of them active.
pub fn check_one_active(statuses: impl IntoIterator<Item = Status>) -> Result<(), CaseRefusal> {
    match statuses.into_iter().find(|status| status.is_active()) {
        Some(status) => refuse(Says::ActiveCaseIn { status: status.as_stored() }),
        None => Ok(()),
    }
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
pub fn check_phone(phone: &str) -> Result<(), Common> {
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
    if mobile || landline { Ok(()) } else { Err(Common::NotAPhone) }
}

/// A rule date (an attempt, a visit, a return, a document) may not lie in the future.
pub fn check_not_future(day: NaiveDate, today: NaiveDate) -> Result<NaiveDate, Common> {
    if day > today { Err(Common::InFuture { today: today.to_string() }) } else { Ok(day) }
}

/// R3 and R7: a measure of the plan names what its kind needs — financial aid its fund, learning
/// support at least one form — and nothing that belongs to another kind.
pub fn check_measure(kind: Option<MeasureKind>, fund: &str, support: &[LearningSupport]) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    match kind {
        Some(MeasureKind::FinancialAid) if fund.is_empty() => {
            violations.push(FieldViolation::new("measure.fund", Says::FundRequired))
        }
        Some(MeasureKind::FinancialAid) => {}
        _ if !fund.is_empty() => violations.push(FieldViolation::new("measure.fund", Says::FundOnlyForAid)),
        _ => {}
    }
    match kind {
        Some(MeasureKind::LearningSupport) if support.is_empty() => {
            violations.push(FieldViolation::new("measure.learning_support", Says::LearningSupportRequired))
        }
        Some(MeasureKind::LearningSupport) => {}
        _ if !support.is_empty() => {
            violations.push(FieldViolation::new("measure.learning_support", Says::LearningSupportOnlyForSupport))
        }
        _ => {}
    }
    violations
}

/// R5: an attempt names who took part and by what means (lists that could not be read are
/// reported by the caller and skipped here).
pub fn check_persuasion(
    departments: Option<&[PersuasionDepartment]>,
    means: Option<&[PersuasionMeans]>,
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if departments.is_some_and(<[_]>::is_empty) {
        violations.push(FieldViolation::new("attempt.departments", Says::DepartmentRequired));
    }
    if means.is_some_and(<[_]>::is_empty) {
        violations.push(FieldViolation::new("attempt.means", Says::MeansRequired));
    }
    violations
}

/// R8: an attempt at a work place names the county-level region of the work place; no other place
/// names a region. Returns the work place's region.
pub fn check_place_region(
    place: Option<PersuasionPlace>,
    region_code: &str,
) -> Result<Option<RegionCode>, FieldViolation> {
    const FIELD: &str = "attempt.place_region_code";
    match (place, region_code.trim()) {
        (Some(PersuasionPlace::WorkPlace), "") => Err(FieldViolation::new(FIELD, Says::WorkPlaceRegionRequired)),
        (Some(PersuasionPlace::WorkPlace), code) => {
            RegionCode::parse_county(code).map(Some).map_err(|error| FieldViolation::new(FIELD, error))
        }
        (_, "") => Ok(None),
        (_, _) => Err(FieldViolation::new(FIELD, Says::PlaceRegionOnlyForWorkPlace)),
    }
}

/// R8: the region asked to help is the work place's, when it is not the owning county.
pub fn assisting_region(work_place: Option<RegionCode>, owner: &RegionCode) -> Option<RegionCode> {
    work_place.filter(|region| region != owner)
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

fn wrong_status(rule: &'static str, step: CaseStep, allowed: &[Status], status: Status) -> CaseRefusal {
    CaseRefusal(Says::WrongStatus {
        rule,
        step,
        allowed: allowed.iter().map(|status| status.as_stored()).collect(),
        status: status.as_stored(),
    })
}

/// R6 (a)–(c): what is missing for a deferral or suspension; empty when nothing is.
pub fn deferral_missing(facts: &CaseFacts) -> Vec<DeferralGap> {
    let mut missing = Vec::new();
    if facts.joint_attempts < JOINT_ATTEMPTS_FOR_DEFERRAL && !facts.judicial_ruling {
        missing.push(DeferralGap::JointAttempts { required: JOINT_ATTEMPTS_FOR_DEFERRAL, has: facts.joint_attempts });
    }
    if !facts.guardian_duty {
        missing.push(DeferralGap::GuardianDuty);
    }
    if !facts.refusal {
        missing.push(DeferralGap::Refusal);
    }
    missing
}

/// Where `command` takes a case with these facts, or why it may not (naming the rule and
/// everything missing).
pub fn decide(facts: &CaseFacts, command: Command) -> Result<Status, CaseRefusal> {
    use Status::*;
    let status = facts.status;
    let allow = |rule: &'static str, step: CaseStep, allowed: &[Status]| {
        if allowed.contains(&status) { Ok(()) } else { Err(wrong_status(rule, step, allowed, status)) }
    };
    match command {
        Command::ReturnToSchool => {
            allow("R5", CaseStep::ReturnToSchool, &[Open, HomeTeaching, Deferred, Suspended])?;
            Ok(Returned)
        }
        Command::StartMonitoring => {
            allow("R13", CaseStep::StartMonitoring, &[Returned])?;
            Ok(Monitoring)
        }
        Command::Close(CloseReason::Completed) => {
            allow("R1", CaseStep::CloseCompleted, &[Monitoring, HomeTeaching])?;
            Ok(Closed)
        }
        Command::Close(CloseReason::AgedOut) => {
            allow("R1", CaseStep::CloseAgedOut, &[Open, Returned, Monitoring, HomeTeaching, Deferred, Suspended])?;
            if facts.age_years < AGED_OUT_AT {
                return refuse(Says::TooYoungToAgeOut { at: AGED_OUT_AT, age: facts.age_years });
            }
            Ok(Closed)
        }
        Command::Close(CloseReason::Unspecified) => refuse(Says::CloseHowUnknown),
        Command::StartHomeTeaching => {
            allow("R4", CaseStep::StartHomeTeaching, &[Open])?;
            if !is_severe(facts.disability_grade) {
                return refuse(Says::NoSevereDisability);
            }
            Ok(HomeTeaching)
        }
        Command::RequestDeferral(kind) => {
            allow("R6", CaseStep::RequestDeferral, &[Open])?;
            if let Some(pending) = facts.pending_deferral {
                return refuse(Says::DeferralAlreadyPending { kind: pending.as_stored() });
            }
            refuse_deferral(kind, facts)?;
            Ok(Open)
        }
        Command::ApproveDeferral => {
            allow("R6", CaseStep::ApproveDeferral, &[Open])?;
            let Some(kind) = facts.pending_deferral else {
                return refuse(Says::NoPendingDeferral);
            };
            refuse_deferral(kind, facts)?;
            Ok(if kind == DeferralKind::Suspended { Suspended } else { Deferred })
        }
        Command::Exempt => {
            allow("R1", CaseStep::Exempt, &[Open, HomeTeaching])?;
            if !facts.medical_evidence {
                return refuse(Says::NoMedicalEvidence);
            }
            Ok(Exempt)
        }
        Command::RecordRelapse => {
            allow("R13", CaseStep::Relapse, &[Monitoring])?;
            Ok(Open)
        }
    }
}

/// R6 (a)–(c) for a deferral or suspension of `kind`.
fn refuse_deferral(kind: DeferralKind, facts: &CaseFacts) -> Result<(), CaseRefusal> {
    let missing = deferral_missing(facts);
    if missing.is_empty() {
        return Ok(());
    }
    refuse(Says::DeferralConditions { kind: kind.as_stored(), missing })
}

/// Persuasion continues in every status but the ends (R5, R6): an exempt, closed or handed-over
/// case takes no attempts.
pub fn check_attempt(status: Status) -> Result<(), CaseRefusal> {
    if status.is_active() { Ok(()) } else { refuse(Says::AttemptOnEndedCase { status: status.as_stored() }) }
}

/// Home-teaching visits are logged while the case is in home teaching (R4).
pub fn check_visit(status: Status) -> Result<(), CaseRefusal> {
    if status == Status::HomeTeaching {
        Ok(())
    } else {
        Err(wrong_status("R4", CaseStep::HomeTeachingVisit, &[Status::HomeTeaching], status))
    }
}

/// The file of an ended case (exempt, closed, handed over) is kept as it is (R2).
pub fn check_file_change(status: Status) -> Result<(), CaseRefusal> {
    if status.is_active() { Ok(()) } else { refuse(Says::FileOfEndedCase { status: status.as_stored() }) }
}

/// Only an approver of the owning county decides its deferral requests (R6 d: the county
/// poverty-alleviation leading group).
pub fn check_decider(owner: &RegionCode, caller_region: &RegionCode) -> Result<(), Says> {
    if owner == caller_region {
        Ok(())
    } else {
        Err(Says::DeferralDecidedByCounty { county: owner.to_string(), caller: caller_region.to_string() })
    }
}

/// A deferral request is decided once.
pub fn check_undecided(state: DeferralState, decided_by: Option<&str>) -> Result<(), CaseRefusal> {
    match state {
        DeferralState::Pending => Ok(()),
        DeferralState::Approved | DeferralState::Rejected => refuse(Says::DeferralAlreadyDecided {
            state: state.as_stored().to_owned(),
            by: decided_by.unwrap_or_default().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
