//! What a valid school is.

use nol_proto::v1::{SchoolLevel, SchoolOwnership};
use nol_region::RegionCode;

use super::columns::*;
use super::pupil::{FieldProblem, check_name, check_school_code};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSchool {
    pub code: String,
    pub name: String,
    pub region: RegionCode,
    pub level: SchoolLevel,
    pub ownership: SchoolOwnership,
}

pub fn level_name(level: SchoolLevel) -> &'static str {
    match level {
        SchoolLevel::Primary => "primary",
        SchoolLevel::JuniorMiddle => "junior_middle",
        SchoolLevel::NineYear | SchoolLevel::Unspecified => "nine_year",
    }
}

pub fn level_from_name(text: &str) -> Option<SchoolLevel> {
    match text.trim() {
        "primary" | "小学" => Some(SchoolLevel::Primary),
        "junior_middle" | "初中" | "初级中学" => Some(SchoolLevel::JuniorMiddle),
        "nine_year" | "九年一贯制" | "九年一贯制学校" | "一贯制" => Some(SchoolLevel::NineYear),
        _ => None,
    }
}

pub fn ownership_name(ownership: SchoolOwnership) -> &'static str {
    match ownership {
        SchoolOwnership::Private => "private",
        SchoolOwnership::Public | SchoolOwnership::Unspecified => "public",
    }
}

pub fn ownership_from_name(text: &str) -> Option<SchoolOwnership> {
    match text.trim() {
        "" | "public" | "公办" => Some(SchoolOwnership::Public),
        "private" | "民办" => Some(SchoolOwnership::Private),
        _ => None,
    }
}

/// Validates a school from text fields.
pub fn validate(
    code: &str,
    name: &str,
    region: &str,
    level: &str,
    ownership: &str,
) -> Result<ValidSchool, Vec<FieldProblem>> {
    let mut problems: Vec<FieldProblem> = Vec::new();
    if let Err(problem) = check_school_code(code.trim()) {
        problems.push((SCHOOL_CODE, problem));
    }
    if let Err(problem) = check_name(name) {
        problems.push((SCHOOL_NAME, problem));
    }
    let region = RegionCode::parse_county(region).map_err(|error| problems.push((REGION, error.to_string())));
    let level =
        level_from_name(level).ok_or_else(|| problems.push((LEVEL, "is not 小学, 初中 or 九年一贯制".to_owned())));
    let ownership =
        ownership_from_name(ownership).ok_or_else(|| problems.push((OWNERSHIP, "is not 公办 or 民办".to_owned())));
    match (region, level, ownership) {
        (Ok(region), Ok(level), Ok(ownership)) if problems.is_empty() => {
            Ok(ValidSchool { code: code.trim().to_owned(), name: name.trim().to_owned(), region, level, ownership })
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_school_in_chinese_words() {
        let school = validate("3201020001", "玄武区示范小学", "320102", "小学", "公办").unwrap();
        assert_eq!(school.level, SchoolLevel::Primary);
        let problems = validate("", "x", "320100", "高中", "国际").unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, [SCHOOL_CODE, REGION, LEVEL, OWNERSHIP]);
    }
}
