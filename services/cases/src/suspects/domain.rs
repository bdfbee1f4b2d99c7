//! The suspected-dropout ledger's rules, without I/O: what a report must carry, which proof each
//! way of closing an item needs (销号), and that a resolved item stays resolved. A refusal is a
//! [`SuspectRefusal`] in the catalogue's words.

use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use nol_messages::{Common, Count, FieldViolation, Suspect as Says};
use nol_proto::v1::{
    DataErrorProof, DeceasedProof, EmigratedProof, EnrolledElsewhereProof, ExemptProof, SuspectOrigin, SuspectOutcome,
    SuspectProof, SuspectState, suspect_proof,
};
use nol_region::RegionCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::case::domain::stored::{Stored, stored_own};

/// A refused change of an item, naming the rule (R14), in the catalogue's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspectRefusal(pub Says);

impl std::fmt::Display for SuspectRefusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0.en())
    }
}

impl std::error::Error for SuspectRefusal {}

/// Where an item came from; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    CrossCheck,
    SchoolReport,
    Caseworker,
}

stored_own! {
    Origin { CrossCheck => "cross_check", SchoolReport => "school_report", Caseworker => "caseworker" }
}

impl Origin {
    pub fn to_proto(self) -> SuspectOrigin {
        match self {
            Origin::CrossCheck => SuspectOrigin::CrossCheck,
            Origin::SchoolReport => SuspectOrigin::SchoolReport,
            Origin::Caseworker => SuspectOrigin::Caseworker,
        }
    }

    /// `None` for unspecified (any origin).
    pub fn from_proto(origin: SuspectOrigin) -> Option<Origin> {
        Origin::ALL.iter().copied().find(|candidate| candidate.to_proto() == origin)
    }
}

/// Where an item is; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Confirmed,
    Closed,
}

stored_own! {
    State { Pending => "pending", Confirmed => "confirmed", Closed => "closed" }
}

impl State {
    pub fn to_proto(self) -> SuspectState {
        match self {
            State::Pending => SuspectState::Pending,
            State::Confirmed => SuspectState::Confirmed,
            State::Closed => SuspectState::Closed,
        }
    }

    /// `None` for unspecified (any state).
    pub fn from_proto(state: SuspectState) -> Option<State> {
        State::ALL.iter().copied().find(|candidate| candidate.to_proto() == state)
    }
}

/// How an item left the ledger; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A dropout: a case opened.
    Confirmed,
    EnrolledElsewhere,
    Deceased,
    Emigrated,
    Exempt,
    DataError,
}

stored_own! {
    Outcome {
        Confirmed => "confirmed", EnrolledElsewhere => "enrolled_elsewhere", Deceased => "deceased",
        Emigrated => "emigrated", Exempt => "exempt", DataError => "data_error",
    }
}

impl Outcome {
    pub fn to_proto(self) -> SuspectOutcome {
        match self {
            Outcome::Confirmed => SuspectOutcome::Confirmed,
            Outcome::EnrolledElsewhere => SuspectOutcome::EnrolledElsewhere,
            Outcome::Deceased => SuspectOutcome::Deceased,
            Outcome::Emigrated => SuspectOutcome::Emigrated,
            Outcome::Exempt => SuspectOutcome::Exempt,
            Outcome::DataError => SuspectOutcome::DataError,
        }
    }
}

/// An item of the suspected-dropout ledger as the domain reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectItem {
    pub id: Uuid,
    pub region: RegionCode,
    pub origin: Origin,
    pub state: State,
    pub pupil_id: Option<Uuid>,
    pub check_item_id: Option<Uuid>,
    pub child_name: String,
    pub resident_id_cipher: Option<Vec<u8>>,
    /// The blind index, which the ciphertext is bound to.
    pub resident_id_index: Option<Vec<u8>>,
    pub resident_id_masked: String,
    pub sex: i16,
    pub birth_date: Option<NaiveDate>,
    pub hukou_region: String,
    pub residence_region: String,
    pub reason: String,
    pub days_missed: Option<i32>,
    pub absent_since: Option<NaiveDate>,
    pub school_code: Option<String>,
    pub notes: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub recorded_on: NaiveDate,
    pub outcome: Option<Outcome>,
    pub proof: Option<Value>,
    pub case_id: Option<Uuid>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_on: Option<NaiveDate>,
    pub version: i64,
}

/// An item may be confirmed or closed only while pending.
pub fn check_pending(item: &SuspectItem) -> Result<(), SuspectRefusal> {
    match item.state {
        State::Pending => Ok(()),
        State::Confirmed | State::Closed => Err(SuspectRefusal(Says::AlreadyResolved {
            state: item.state.as_stored(),
            outcome: item.outcome.map(|outcome| outcome.as_stored()).unwrap_or_default().to_owned(),
            by: item.resolved_by.clone().unwrap_or_default(),
        })),
    }
}

/// The proof an item was closed with (销号), each kind with the fields it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    EnrolledElsewhere { school_name: String, school_code: String, region_code: String },
    Deceased { death_record_number: String, issuing_body: String, date: NaiveDate },
    Emigrated { evidence: String, issuing_body: String, date: Option<NaiveDate> },
    Exempt { evidence_number: String, issuing_body: String, date: NaiveDate },
    DataError { what_corrected: String, how_corrected: String },
}

const MAX_TEXT: usize = 500;

/// Collects the violations of one proof; fields are named as in `CloseSuspectRequest`.
struct Checker<'a> {
    today: NaiveDate,
    prefix: &'a str,
    violations: Vec<FieldViolation>,
}

impl Checker<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    fn text(&mut self, name: &str, value: &str, required: bool) -> String {
        let value = value.trim();
        if value.is_empty() {
            if required {
                self.violations.push(FieldViolation::new(self.field(name), Common::Required));
            }
        } else if value.chars().count() > MAX_TEXT {
            self.violations.push(FieldViolation::new(self.field(name), Common::TooLong { max: Count(500) }));
        }
        value.to_owned()
    }

    fn date(&mut self, name: &str, value: &str, required: bool) -> Option<NaiveDate> {
        let value = value.trim();
        if value.is_empty() {
            if required {
                self.violations.push(FieldViolation::new(self.field(name), Common::RequiredDate));
            }
            return None;
        }
        match past_date(value, self.today) {
            Ok(day) => Some(day),
            Err(description) => {
                self.violations.push(FieldViolation::new(self.field(name), description));
                None
            }
        }
    }
}

/// A date (YYYY-MM-DD) that is not after `today`.
pub fn past_date(text: &str, today: NaiveDate) -> Result<NaiveDate, Common> {
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| Common::NotADate)?;
    if day > today {
        return Err(Common::DateInFuture { day: day.to_string(), today: today.to_string() });
    }
    Ok(day)
}

impl Proof {
    /// Validates the proof of a `CloseSuspectRequest` against the rule clock's `today`.
    pub fn check(proof: Option<&SuspectProof>, today: NaiveDate) -> Result<Proof, Vec<FieldViolation>> {
        let Some(kind) = proof.and_then(|proof| proof.kind.as_ref()) else {
            return Err(vec![FieldViolation::new("proof", Says::ProofRequired)]);
        };
        let prefix = match kind {
            suspect_proof::Kind::EnrolledElsewhere(_) => "proof.enrolled_elsewhere",
            suspect_proof::Kind::Deceased(_) => "proof.deceased",
            suspect_proof::Kind::Emigrated(_) => "proof.emigrated",
            suspect_proof::Kind::Exempt(_) => "proof.exempt",
            suspect_proof::Kind::DataError(_) => "proof.data_error",
        };
        let mut checker = Checker { today, prefix, violations: Vec::new() };
        let proof = match kind {
            suspect_proof::Kind::EnrolledElsewhere(school) => {
                let school_name = checker.text("school_name", &school.school_name, true);
                let school_code = checker.text("school_code", &school.school_code, false);
                let region_code = checker.text("region_code", &school.region_code, false);
                if school_code.is_empty() && region_code.is_empty() {
                    checker.violations.push(FieldViolation::new(checker.field("school_code"), Says::WhichSchool));
                }
                if !region_code.is_empty()
                    && let Err(error) = RegionCode::parse(&region_code)
                {
                    checker.violations.push(FieldViolation::new(checker.field("region_code"), error));
                }
                Some(Proof::EnrolledElsewhere { school_name, school_code, region_code })
            }
            suspect_proof::Kind::Deceased(death) => {
                let death_record_number = checker.text("death_record_number", &death.death_record_number, true);
                let issuing_body = checker.text("issuing_body", &death.issuing_body, true);
                checker.date("date", &death.date, true).map(|date| Proof::Deceased {
                    death_record_number,
                    issuing_body,
                    date,
                })
            }
            suspect_proof::Kind::Emigrated(emigrated) => {
                let evidence = checker.text("evidence", &emigrated.evidence, true);
                let issuing_body = checker.text("issuing_body", &emigrated.issuing_body, false);
                let date = checker.date("date", &emigrated.date, false);
                Some(Proof::Emigrated { evidence, issuing_body, date })
            }
            suspect_proof::Kind::Exempt(medical) => {
                let evidence_number = checker.text("evidence_number", &medical.evidence_number, true);
                let issuing_body = checker.text("issuing_body", &medical.issuing_body, true);
                checker.date("date", &medical.date, true).map(|date| Proof::Exempt {
                    evidence_number,
                    issuing_body,
                    date,
                })
            }
            suspect_proof::Kind::DataError(error) => {
                let what_corrected = checker.text("what_corrected", &error.what_corrected, true);
                let how_corrected = checker.text("how_corrected", &error.how_corrected, true);
                Some(Proof::DataError { what_corrected, how_corrected })
            }
        };
        match proof {
            Some(proof) if checker.violations.is_empty() => Ok(proof),
            _ => Err(checker.violations),
        }
    }

    /// The outcome it closes the item with.
    pub fn outcome(&self) -> Outcome {
        match self {
            Proof::EnrolledElsewhere { .. } => Outcome::EnrolledElsewhere,
            Proof::Deceased { .. } => Outcome::Deceased,
            Proof::Emigrated { .. } => Outcome::Emigrated,
            Proof::Exempt { .. } => Outcome::Exempt,
            Proof::DataError { .. } => Outcome::DataError,
        }
    }

    /// As stored in `suspect.proof`.
    pub fn to_json(&self) -> Value {
        let day = |date: &NaiveDate| date.format("%Y-%m-%d").to_string();
        match self {
            Proof::EnrolledElsewhere { school_name, school_code, region_code } => {
                json!({ "school_name": school_name, "school_code": school_code, "region_code": region_code })
            }
            Proof::Deceased { death_record_number, issuing_body, date } => {
                json!({ "death_record_number": death_record_number, "issuing_body": issuing_body, "date": day(date) })
            }
            Proof::Emigrated { evidence, issuing_body, date } => {
                json!({ "evidence": evidence, "issuing_body": issuing_body, "date": date.as_ref().map(day).unwrap_or_default() })
            }
            Proof::Exempt { evidence_number, issuing_body, date } => {
                json!({ "evidence_number": evidence_number, "issuing_body": issuing_body, "date": day(date) })
            }
            Proof::DataError { what_corrected, how_corrected } => {
                json!({ "what_corrected": what_corrected, "how_corrected": how_corrected })
            }
        }
    }
}

/// The stored proof of an item closed with `outcome`, as the API shows it.
pub fn proof_to_proto(outcome: Outcome, stored: &Value) -> Option<SuspectProof> {
    let field = |name: &str| stored.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = match outcome {
        Outcome::EnrolledElsewhere => suspect_proof::Kind::EnrolledElsewhere(EnrolledElsewhereProof {
            school_name: field("school_name"),
            school_code: field("school_code"),
            region_code: field("region_code"),
        }),
        Outcome::Deceased => suspect_proof::Kind::Deceased(DeceasedProof {
            death_record_number: field("death_record_number"),
            issuing_body: field("issuing_body"),
            date: field("date"),
        }),
        Outcome::Emigrated => suspect_proof::Kind::Emigrated(EmigratedProof {
            evidence: field("evidence"),
            issuing_body: field("issuing_body"),
            date: field("date"),
        }),
        Outcome::Exempt => suspect_proof::Kind::Exempt(ExemptProof {
            evidence_number: field("evidence_number"),
            issuing_body: field("issuing_body"),
            date: field("date"),
        }),
        Outcome::DataError => suspect_proof::Kind::DataError(DataErrorProof {
            what_corrected: field("what_corrected"),
            how_corrected: field("how_corrected"),
        }),
        Outcome::Confirmed => return None,
    };
    Some(SuspectProof { kind: Some(kind) })
}

/// The most school days a report can claim missed (a year's calendar days).
pub const MAX_DAYS_MISSED: i32 = 366;

/// What a school reports about an absent pupil: days missed and since when, the date not in the
/// future by the rule clock.
pub fn check_absence(days_missed: i32, absent_since: &str, today: NaiveDate) -> Result<NaiveDate, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    if !(1..=MAX_DAYS_MISSED).contains(&days_missed) {
        violations.push(FieldViolation::new("days_missed", Says::DaysMissed { max: MAX_DAYS_MISSED }));
    }
    let since = if absent_since.trim().is_empty() {
        violations.push(FieldViolation::new("absent_since", Common::RequiredDate));
        None
    } else {
        match past_date(absent_since, today) {
            Ok(day) => Some(day),
            Err(description) => {
                violations.push(FieldViolation::new("absent_since", description));
                None
            }
        }
    };
    match since {
        Some(day) if violations.is_empty() => Ok(day),
        _ => Err(violations),
    }
}

/// Free text of a request (notes, reason): at most 4,000 characters.
pub fn check_notes(field: &str, text: &str) -> Result<String, FieldViolation> {
    if text.chars().count() > 4000 {
        return Err(FieldViolation::new(field, Common::TooLong { max: Count(4000) }));
    }
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
    }

    fn check(kind: suspect_proof::Kind) -> Result<Proof, Vec<String>> {
        Proof::check(Some(&SuspectProof { kind: Some(kind) }), today())
            .map_err(|violations| violations.into_iter().map(|violation| violation.field).collect())
    }

    #[test]
    fn every_proof_kind_needs_its_own_fields() {
        assert_eq!(
            check(suspect_proof::Kind::EnrolledElsewhere(EnrolledElsewhereProof::default())).unwrap_err(),
            ["proof.enrolled_elsewhere.school_name", "proof.enrolled_elsewhere.school_code"]
        );
        assert_eq!(
            check(suspect_proof::Kind::Deceased(DeceasedProof::default())).unwrap_err(),
            ["proof.deceased.death_record_number", "proof.deceased.issuing_body", "proof.deceased.date"]
        );
        assert_eq!(
            check(suspect_proof::Kind::Emigrated(EmigratedProof::default())).unwrap_err(),
            ["proof.emigrated.evidence"]
        );
        assert_eq!(
            check(suspect_proof::Kind::Exempt(ExemptProof::default())).unwrap_err(),
            ["proof.exempt.evidence_number", "proof.exempt.issuing_body", "proof.exempt.date"]
        );
        assert_eq!(
            check(suspect_proof::Kind::DataError(DataErrorProof::default())).unwrap_err(),
            ["proof.data_error.what_corrected", "proof.data_error.how_corrected"]
        );
        let missing = Proof::check(None, today()).unwrap_err();
        assert_eq!(missing[0].field, "proof");
        let empty = Proof::check(Some(&SuspectProof { kind: None }), today()).unwrap_err();
        assert_eq!(empty[0].field, "proof");
    }

    #[test]
    fn complete_proofs_pass_and_round_trip() {
        let kinds = [
            suspect_proof::Kind::EnrolledElsewhere(EnrolledElsewhereProof {
                school_name: "上海市某小学".into(),
                school_code: String::new(),
                region_code: "310104".into(),
            }),
            suspect_proof::Kind::Deceased(DeceasedProof {
                death_record_number: "D-2027-001".into(),
                issuing_body: "玄武区人民医院".into(),
                date: "2027-02-01".into(),
            }),
            suspect_proof::Kind::Emigrated(EmigratedProof {
                evidence: "出境记录 E123".into(),
                issuing_body: String::new(),
                date: String::new(),
            }),
            suspect_proof::Kind::Exempt(ExemptProof {
                evidence_number: "M-88".into(),
                issuing_body: "南京市儿童医院".into(),
                date: "2027-03-01".into(),
            }),
            suspect_proof::Kind::DataError(DataErrorProof {
                what_corrected: "身份证号录入错误".into(),
                how_corrected: "学籍已更正".into(),
            }),
        ];
        for kind in kinds {
            let sent = SuspectProof { kind: Some(kind) };
            let proof = Proof::check(Some(&sent), today()).unwrap();
            assert_eq!(proof_to_proto(proof.outcome(), &proof.to_json()), Some(sent));
            assert_ne!(proof.outcome().to_proto(), SuspectOutcome::Unspecified);
        }
    }

    #[test]
    fn dates_in_the_future_or_unreadable_are_refused() {
        let future = check(suspect_proof::Kind::Deceased(DeceasedProof {
            death_record_number: "D".into(),
            issuing_body: "医院".into(),
            date: "2027-03-02".into(),
        }));
        assert_eq!(future.unwrap_err(), ["proof.deceased.date"]);
        let garbage = check(suspect_proof::Kind::Exempt(ExemptProof {
            evidence_number: "M".into(),
            issuing_body: "医院".into(),
            date: "1 March".into(),
        }));
        assert_eq!(garbage.unwrap_err(), ["proof.exempt.date"]);
        let bad_region = check(suspect_proof::Kind::EnrolledElsewhere(EnrolledElsewhereProof {
            school_name: "某小学".into(),
            school_code: String::new(),
            region_code: "99".into(),
        }));
        assert_eq!(bad_region.unwrap_err(), ["proof.enrolled_elsewhere.region_code"]);
    }

    #[test]
    fn an_absence_report_needs_days_and_a_past_date() {
        assert_eq!(check_absence(12, "2027-02-10", today()), Ok(NaiveDate::from_ymd_opt(2027, 2, 10).unwrap()));
        assert_eq!(check_absence(1, "2027-03-01", today()).unwrap(), today());
        let fields = |result: Result<NaiveDate, Vec<FieldViolation>>| -> Vec<String> {
            result.unwrap_err().into_iter().map(|violation| violation.field).collect()
        };
        assert_eq!(fields(check_absence(0, "2027-03-02", today())), ["days_missed", "absent_since"]);
        assert_eq!(fields(check_absence(400, "", today())), ["days_missed", "absent_since"]);
        assert_eq!(fields(check_absence(3, "2027-02-30", today())), ["absent_since"]);
    }

    fn item(state: State, outcome: Option<Outcome>, by: Option<&str>) -> SuspectItem {
        SuspectItem {
            id: Uuid::now_v7(),
            region: RegionCode::parse("320102").unwrap(),
            origin: Origin::Caseworker,
            state,
            pupil_id: None,
            check_item_id: None,
            child_name: "某某".into(),
            resident_id_cipher: None,
            resident_id_index: None,
            resident_id_masked: String::new(),
            sex: 0,
            birth_date: None,
            hukou_region: String::new(),
            residence_region: String::new(),
            reason: String::new(),
            days_missed: None,
            absent_since: None,
            school_code: None,
            notes: String::new(),
            recorded_by: "caseworker@320102".into(),
            recorded_at: Utc::now(),
            recorded_on: today(),
            outcome,
            proof: None,
            case_id: None,
            resolved_by: by.map(str::to_owned),
            resolved_at: None,
            resolved_on: None,
            version: 1,
        }
    }

    #[test]
    fn a_resolved_item_stays_resolved() {
        assert!(check_pending(&item(State::Pending, None, None)).is_ok());
        let twice =
            check_pending(&item(State::Closed, Some(Outcome::Deceased), Some("caseworker@320102"))).unwrap_err();
        assert!(twice.to_string().starts_with("R14: this item was already closed (deceased) by caseworker@320102"));
        assert_eq!(twice.0.zh(), "R14：该记录已由 caseworker@320102 处理为“已销号”（死亡），不能再次处理");
        assert!(check_pending(&item(State::Confirmed, Some(Outcome::Confirmed), Some("x"))).is_err());
    }

    #[test]
    fn names_round_trip_and_are_pinned() {
        let names = |all: Vec<&'static str>| all;
        assert_eq!(
            names(Origin::ALL.iter().map(|origin| origin.as_stored()).collect()),
            ["cross_check", "school_report", "caseworker"]
        );
        assert_eq!(
            names(State::ALL.iter().map(|state| state.as_stored()).collect()),
            ["pending", "confirmed", "closed"]
        );
        assert_eq!(
            names(Outcome::ALL.iter().map(|outcome| outcome.as_stored()).collect()),
            ["confirmed", "enrolled_elsewhere", "deceased", "emigrated", "exempt", "data_error"]
        );
        for origin in Origin::ALL {
            assert_eq!(Origin::from_stored(origin.as_stored()), Some(*origin));
            assert_eq!(Origin::from_proto(origin.to_proto()), Some(*origin));
        }
        for state in State::ALL {
            assert_eq!(State::from_stored(state.as_stored()), Some(*state));
            assert_eq!(State::from_proto(state.to_proto()), Some(*state));
        }
        assert_eq!(State::from_proto(SuspectState::Unspecified), None);
        assert_eq!(Origin::from_proto(SuspectOrigin::Unspecified), None);
    }
}
