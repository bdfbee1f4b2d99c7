//! What a valid pupil record is, whether it comes from a request or a row of a bureau's file.

use chrono::NaiveDate;
use nol_messages::{Common, Count, Msg, Registry};
use nol_pii::{ResidentId, Sex};
use nol_region::RegionCode;

use super::columns::*;
use super::status::Status;

/// A pupil's fields as text, the way a file row or a request gives them.
#[derive(Debug, Default, Clone)]
pub struct PupilText<'a> {
    pub full_name: &'a str,
    pub resident_id: &'a str,
    pub sex: &'a str,
    pub birth_date: &'a str,
    pub hukou_region: &'a str,
    pub residence_region: &'a str,
    pub school_code: &'a str,
    pub grade: &'a str,
    pub status: &'a str,
    pub disability: &'a str,
    pub registered_poor: &'a str,
    pub household_id: &'a str,
}

/// Who the pupil is: by resident ID number, or provisionally (registered without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Resident(ResidentId),
    Provisional { birth_date: NaiveDate, sex: Sex },
}

/// A pupil record that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct ValidPupil {
    pub full_name: String,
    pub identity: Identity,
    pub hukou_region: RegionCode,
    pub residence_region: Option<RegionCode>,
    pub school_code: String,
    pub grade: i16,
    pub status: Status,
    /// 0 none on record, 1–4 the certificate grade (1 and 2 are severe).
    pub disability_grade: i16,
    pub registered_poor: bool,
    pub household_id: Option<String>,
}

impl ValidPupil {
    pub fn birth_date(&self) -> NaiveDate {
        match &self.identity {
            Identity::Resident(id) => id.birth_date(),
            Identity::Provisional { birth_date, .. } => *birth_date,
        }
    }

    pub fn sex(&self) -> Sex {
        match &self.identity {
            Identity::Resident(id) => id.sex(),
            Identity::Provisional { sex, .. } => *sex,
        }
    }

    /// A migrant child (随迁子女): the household registration is outside the school's county.
    pub fn migrant(&self, enrollment_region: &RegionCode) -> bool {
        enrollment_region.is_migrant_here(self.hukou_region.as_str())
    }

    /// What makes a provisional identity the same pupil again in a later import.
    pub fn provisional_key_text(&self) -> String {
        format!("provisional|{}|{}|{}", self.school_code, self.full_name, self.birth_date())
    }
}

/// One field's problem: the column key (see `columns`) and what is wrong, in words for the
/// person who will fix it. Never contains the resident ID number.
pub type FieldProblem = (&'static str, Msg);

/// The code a sex is stored as (`pupil.sex`, `household_member.sex`): 0 when not on record
/// (a household-register child whose number does not decode), 1 male, 2 female.
pub fn sex_as_stored(sex: Option<Sex>) -> i16 {
    match sex {
        None => 0,
        Some(Sex::Male) => 1,
        Some(Sex::Female) => 2,
    }
}

/// The sex a stored code names (`Some(None)`: not on record); None for a code no sex is stored as.
pub fn sex_from_stored(code: i16) -> Option<Option<Sex>> {
    match code {
        0 => Some(None),
        1 => Some(Some(Sex::Male)),
        2 => Some(Some(Sex::Female)),
        _ => None,
    }
}

/// Validates every field, reporting all problems at once.
pub fn validate(text: &PupilText<'_>, today: NaiveDate) -> Result<ValidPupil, Vec<FieldProblem>> {
    let mut problems: Vec<FieldProblem> = Vec::new();
    if let Err(problem) = check_name(text.full_name) {
        problems.push((FULL_NAME, problem));
    }
    let listed_birth =
        optional_date(text.birth_date).map_err(|problem| problems.push((BIRTH_DATE, problem))).ok().flatten();
    let listed_sex = optional_sex(text.sex).map_err(|problem| problems.push((SEX, problem))).ok().flatten();
    let identity = if text.resident_id.trim().is_empty() {
        match (listed_birth, listed_sex) {
            (Some(birth_date), Some(sex)) => Some(Identity::Provisional { birth_date, sex }),
            _ => {
                problems.push((RESIDENT_ID, Registry::ProvisionalIdentityIncomplete.into()));
                None
            }
        }
    } else {
        match parse_resident_id(text.resident_id, today) {
            Ok(id) => {
                if listed_birth.is_some_and(|birth| birth != id.birth_date()) {
                    problems.push((BIRTH_DATE, Registry::BirthDateDisagreesWithId.into()));
                }
                if listed_sex.is_some_and(|sex| sex != id.sex()) {
                    problems.push((SEX, Registry::SexDisagreesWithId.into()));
                }
                Some(Identity::Resident(id))
            }
            Err(problem) => {
                problems.push((RESIDENT_ID, problem));
                None
            }
        }
    };
    let hukou = RegionCode::parse_county(text.hukou_region).map_err(|error| problems.push((HUKOU, error.into())));
    let residence = if text.residence_region.trim().is_empty() {
        Ok(None)
    } else {
        RegionCode::parse_county(text.residence_region)
            .map(Some)
            .map_err(|error| problems.push((RESIDENCE, error.into())))
    };
    let school_code = text.school_code.trim();
    if let Err(problem) = check_school_code(school_code) {
        problems.push((SCHOOL_CODE, problem));
    }
    let grade = parse_grade(text.grade).map_err(|problem| problems.push((GRADE, problem)));
    let status = if text.status.trim().is_empty() {
        Ok(Status::Enrolled)
    } else {
        Status::parse(text.status).ok_or_else(|| problems.push((STATUS, Registry::NotAnEnrollmentStatus.into())))
    };
    let disability = parse_disability(text.disability).map_err(|problem| problems.push((DISABILITY, problem)));
    let poor = parse_yes_no(text.registered_poor).map_err(|problem| problems.push((POOR, problem)));
    let household_id = text.household_id.trim();
    if poor == Ok(true) && household_id.is_empty() {
        problems.push((HOUSEHOLD, Registry::HouseholdIdRequired.into()));
    }
    match (identity, hukou, residence, grade, status, disability, poor) {
        (Some(identity), Ok(hukou), Ok(residence), Ok(grade), Ok(status), Ok(disability), Ok(poor))
            if problems.is_empty() =>
        {
            Ok(ValidPupil {
                full_name: normalize_name(text.full_name),
                identity,
                hukou_region: hukou,
                residence_region: residence,
                school_code: school_code.to_owned(),
                grade,
                status,
                disability_grade: disability,
                registered_poor: poor,
                household_id: (!household_id.is_empty()).then(|| household_id.to_owned()),
            })
        }
        _ => Err(problems),
    }
}

/// The longest name the household register holds.
const NAME_MAX_CHARACTERS: usize = 50;

/// A person's name as in the household register: not empty, at most 50 characters.
pub fn check_name(name: &str) -> Result<(), Msg> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        Err(Common::Required.into())
    } else if trimmed.chars().count() > NAME_MAX_CHARACTERS {
        Err(Common::TooLong { max: Count(NAME_MAX_CHARACTERS as u64) }.into())
    } else if trimmed.chars().any(char::is_control) {
        Err(Common::ControlCharacters.into())
    } else {
        Ok(())
    }
}

/// Names compare without inner spaces bureaus' files are inconsistent about ("张 伟" = "张伟").
pub fn normalize_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(if name.is_ascii() { " " } else { "" })
}

pub fn check_school_code(code: &str) -> Result<(), Msg> {
    if code.is_empty() {
        Err(Common::Required.into())
    } else if code.len() > 20 || !code.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        Err(Registry::NotASchoolCode.into())
    } else {
        Ok(())
    }
}

/// A resident ID number, with a precise reason when it is not one. An 18-digit number Excel
/// stored as a number cell has lost digits: that is said plainly.
pub fn parse_resident_id(text: &str, today: NaiveDate) -> Result<ResidentId, Msg> {
    let trimmed = text.trim();
    if trimmed.contains(['e', 'E'])
        && trimmed.chars().all(|character| character.is_ascii_digit() || ".eE+".contains(character))
    {
        return Err(Registry::StoredByExcelAsNumber.into());
    }
    ResidentId::parse_on(trimmed, today).map_err(Msg::from)
}

/// A date as bureaus write it: 2013-05-02, 2013/5/2, 20130502, 2013.05.02 or 2013年5月2日.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let trimmed = text.trim().trim_end_matches('日');
    let unified: String = trimmed
        .chars()
        .map(|character| if matches!(character, '/' | '.' | '年' | '月') { '-' } else { character })
        .collect();
    NaiveDate::parse_from_str(&unified, "%Y-%m-%d").ok().or_else(|| NaiveDate::parse_from_str(&unified, "%Y%m%d").ok())
}

fn optional_date(text: &str) -> Result<Option<NaiveDate>, Msg> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_date(text).map(Some).ok_or_else(|| Common::NotADate.into())
}

fn optional_sex(text: &str) -> Result<Option<Sex>, Msg> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "男" | "1" | "m" | "male" => Ok(Some(Sex::Male)),
        "女" | "2" | "f" | "female" => Ok(Some(Sex::Female)),
        _ => Err(Registry::NotASex.into()),
    }
}

/// Grade 1–9: "5", "五年级", "初一" (7), "九年级".
pub fn parse_grade(text: &str) -> Result<i16, Msg> {
    let trimmed = text.trim().trim_end_matches("年级").trim_end_matches('级');
    let grade = match trimmed {
        "一" | "1" => 1,
        "二" | "2" => 2,
        "三" | "3" => 3,
        "四" | "4" => 4,
        "五" | "5" => 5,
        "六" | "6" => 6,
        "七" | "7" | "初一" => 7,
        "八" | "8" | "初二" => 8,
        "九" | "9" | "初三" => 9,
        _ => return Err(Registry::NotAGrade.into()),
    };
    Ok(grade)
}

fn parse_disability(text: &str) -> Result<i16, Msg> {
    match text.trim() {
        "" | "无" | "0" | "否" => Ok(0),
        "一级" | "1" | "1级" => Ok(1),
        "二级" | "2" | "2级" => Ok(2),
        "三级" | "3" | "3级" => Ok(3),
        "四级" | "4" | "4级" => Ok(4),
        _ => Err(Registry::NotADisabilityGrade.into()),
    }
}

pub fn parse_yes_no(text: &str) -> Result<bool, Msg> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "否" | "n" | "no" | "false" | "0" => Ok(false),
        "是" | "y" | "yes" | "true" | "1" => Ok(true),
        _ => Err(Registry::NotYesOrNo.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    fn valid_id() -> String {
        ResidentId::from_parts("341221", NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), 31).unwrap().expose().to_owned()
    }

    fn text(id: &str) -> PupilText<'_> {
        PupilText {
            full_name: "李小明",
            resident_id: id,
            hukou_region: "341221",
            school_code: "3201020001",
            grade: "五年级",
            ..Default::default()
        }
    }

    #[test]
    fn a_migrant_pupil_from_a_bureaus_row() {
        let id = valid_id();
        let pupil = validate(
            &PupilText {
                birth_date: "2013年5月2日",
                sex: "男",
                registered_poor: "是",
                household_id: "H-1",
                ..text(&id)
            },
            today(),
        )
        .unwrap();
        assert_eq!(pupil.grade, 5);
        assert_eq!(pupil.status, Status::Enrolled);
        assert!(pupil.registered_poor);
        assert!(pupil.migrant(&RegionCode::parse("320102").unwrap()));
    }

    #[test]
    fn every_problem_of_a_row_is_named_and_the_number_never_repeated() {
        let id = valid_id();
        let bad =
            PupilText { birth_date: "2013-06-01", sex: "女", grade: "十年级", registered_poor: "是", ..text(&id) };
        let problems = validate(&bad, today()).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, [BIRTH_DATE, SEX, GRADE, HOUSEHOLD]);
        assert!(problems.iter().all(|(_, reason)| !reason.en().contains(&id) && !reason.zh().contains(&id)));
        assert_eq!(problems[0].1.en(), "disagrees with the birth date in the resident ID number");
    }

    #[test]
    fn excel_damage_and_missing_numbers() {
        let damaged = validate(&text("3.20102201409090e17"), today()).unwrap_err();
        assert!(damaged[0].1.en().contains("stored by Excel as a number"));
        assert!(damaged[0].1.zh().contains("Excel"));
        let missing = validate(&text(""), today()).unwrap_err();
        assert_eq!(missing[0].0, RESIDENT_ID);
        let provisional = validate(&PupilText { birth_date: "20140101", sex: "女", ..text("") }, today()).unwrap();
        assert!(matches!(provisional.identity, Identity::Provisional { .. }));
        assert!(provisional.provisional_key_text().contains("2014-01-01"));
    }

    #[test]
    fn dates_and_grades_in_the_forms_bureaus_use() {
        for text in ["2013-05-02", "2013/5/2", "20130502", "2013.05.02", "2013年5月2日"] {
            assert_eq!(parse_date(text), NaiveDate::from_ymd_opt(2013, 5, 2), "{text}");
        }
        assert_eq!(parse_grade("初三"), Ok(9));
        assert_eq!(parse_grade("3"), Ok(3));
        assert!(parse_grade("高一").is_err());
        assert_eq!(normalize_name("张 伟"), "张伟");
        assert_eq!(check_name(&"长".repeat(51)).unwrap_err().en(), "is longer than 50 characters");
        assert_eq!(check_name(" ").unwrap_err().en(), "is required");
    }

    #[test]
    fn stored_sex_codes_are_pinned() {
        for (sex, code) in [(None, 0), (Some(Sex::Male), 1), (Some(Sex::Female), 2)] {
            assert_eq!(sex_as_stored(sex), code);
            assert_eq!(sex_from_stored(code), Some(sex));
        }
        assert_eq!(sex_from_stored(3), None);
    }
}
