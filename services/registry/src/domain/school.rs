//! What a valid school is.

use nol_messages::{Msg, Registry};
use nol_proto::v1::{SchoolLevel, SchoolOwnership};
use nol_region::RegionCode;

use super::columns::*;
use super::pupil::{FieldProblem, check_name, check_school_code};

/// Which grades a school teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// 小学: grades 1–6.
    Primary,
    /// 初中: grades 7–9.
    JuniorMiddle,
    /// 九年一贯制: grades 1–9.
    NineYear,
}

impl Level {
    /// The text stored in `school.level`.
    pub fn as_stored(self) -> &'static str {
        match self {
            Level::Primary => "primary",
            Level::JuniorMiddle => "junior_middle",
            Level::NineYear => "nine_year",
        }
    }

    pub fn from_stored(text: &str) -> Option<Level> {
        match text {
            "primary" => Some(Level::Primary),
            "junior_middle" => Some(Level::JuniorMiddle),
            "nine_year" => Some(Level::NineYear),
            _ => None,
        }
    }

    /// From a file's cell or a request: the stored name or a bureau's words.
    pub fn parse(text: &str) -> Option<Level> {
        let text = text.trim();
        Level::from_stored(text).or(match text {
            "小学" => Some(Level::Primary),
            "初中" | "初级中学" => Some(Level::JuniorMiddle),
            "九年一贯制" | "九年一贯制学校" | "一贯制" => Some(Level::NineYear),
            _ => None,
        })
    }

    pub fn to_proto(self) -> SchoolLevel {
        match self {
            Level::Primary => SchoolLevel::Primary,
            Level::JuniorMiddle => SchoolLevel::JuniorMiddle,
            Level::NineYear => SchoolLevel::NineYear,
        }
    }

    /// A request that names no level registers a nine-year school.
    pub fn from_proto(level: SchoolLevel) -> Level {
        match level {
            SchoolLevel::Primary => Level::Primary,
            SchoolLevel::JuniorMiddle => Level::JuniorMiddle,
            SchoolLevel::NineYear | SchoolLevel::Unspecified => Level::NineYear,
        }
    }
}

/// Who runs a school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ownership {
    /// 公办.
    Public,
    /// 民办.
    Private,
}

impl Ownership {
    /// The text stored in `school.ownership`.
    pub fn as_stored(self) -> &'static str {
        match self {
            Ownership::Public => "public",
            Ownership::Private => "private",
        }
    }

    pub fn from_stored(text: &str) -> Option<Ownership> {
        match text {
            "public" => Some(Ownership::Public),
            "private" => Some(Ownership::Private),
            _ => None,
        }
    }

    /// From a file's cell or a request; an empty cell is a public school.
    pub fn parse(text: &str) -> Option<Ownership> {
        match text.trim() {
            "" | "公办" => Some(Ownership::Public),
            "民办" => Some(Ownership::Private),
            other => Ownership::from_stored(other),
        }
    }

    pub fn to_proto(self) -> SchoolOwnership {
        match self {
            Ownership::Public => SchoolOwnership::Public,
            Ownership::Private => SchoolOwnership::Private,
        }
    }

    /// A request that names no ownership registers a public school.
    pub fn from_proto(ownership: SchoolOwnership) -> Ownership {
        match ownership {
            SchoolOwnership::Private => Ownership::Private,
            SchoolOwnership::Public | SchoolOwnership::Unspecified => Ownership::Public,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSchool {
    pub code: String,
    pub name: String,
    pub region: RegionCode,
    pub level: Level,
    pub ownership: Ownership,
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
    let region = RegionCode::parse_county(region).map_err(|error| problems.push((REGION, Msg::from(error))));
    let level = Level::parse(level).ok_or_else(|| problems.push((LEVEL, Registry::NotASchoolLevel.into())));
    let ownership =
        Ownership::parse(ownership).ok_or_else(|| problems.push((OWNERSHIP, Registry::NotAnOwnership.into())));
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
        assert_eq!(school.level, Level::Primary);
        let problems = validate("", "x", "320100", "高中", "国际").unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, [SCHOOL_CODE, REGION, LEVEL, OWNERSHIP]);
        assert_eq!(problems[2].1.en(), "is not 小学, 初中 or 九年一贯制");
    }

    #[test]
    fn stored_values_are_pinned() {
        for (level, text) in
            [(Level::Primary, "primary"), (Level::JuniorMiddle, "junior_middle"), (Level::NineYear, "nine_year")]
        {
            assert_eq!(level.as_stored(), text);
            assert_eq!(Level::from_stored(text), Some(level));
            assert_eq!(Level::from_proto(level.to_proto()), level);
        }
        for (ownership, text) in [(Ownership::Public, "public"), (Ownership::Private, "private")] {
            assert_eq!(ownership.as_stored(), text);
            assert_eq!(Ownership::from_stored(text), Some(ownership));
            assert_eq!(Ownership::from_proto(ownership.to_proto()), ownership);
        }
        assert_eq!(Level::from_stored("小学"), None);
        assert_eq!(Ownership::from_stored(""), None);
        assert_eq!(Level::from_proto(SchoolLevel::Unspecified), Level::NineYear);
        assert_eq!(Ownership::parse(""), Some(Ownership::Public));
    }
}
