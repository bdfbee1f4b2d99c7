//! The columns of the files bureaus send, by their Chinese headers and the aliases in use.
//! The first header of each is the one written in error files and exports.

use nol_tabular::Column;

const fn required(key: &'static str, headers: &'static [&'static str]) -> Column {
    Column { key, headers, required: true }
}

const fn optional(key: &'static str, headers: &'static [&'static str]) -> Column {
    Column { key, headers, required: false }
}

pub const FULL_NAME: &str = "full_name";
pub const RESIDENT_ID: &str = "resident_id";
pub const SEX: &str = "sex";
pub const BIRTH_DATE: &str = "birth_date";
pub const HUKOU: &str = "hukou_region";
pub const RESIDENCE: &str = "residence_region";
pub const SCHOOL_CODE: &str = "school_code";
pub const GRADE: &str = "grade";
pub const STATUS: &str = "enrollment_status";
pub const DISABILITY: &str = "disability_grade";
pub const POOR: &str = "registered_poor";
pub const HOUSEHOLD: &str = "household_id";
pub const SCHOOL_NAME: &str = "school_name";
pub const REGION: &str = "region_code";
pub const LEVEL: &str = "level";
pub const OWNERSHIP: &str = "ownership";

const NAME_HEADERS: &[&str] = &["姓名", "学生姓名", "儿童姓名", "name", "full_name"];
const ID_HEADERS: &[&str] =
    &["身份证号", "居民身份证号", "身份证号码", "身份证件号", "公民身份号码", "证件号码", "resident_id"];
const SEX_HEADERS: &[&str] = &["性别", "sex"];
const BIRTH_HEADERS: &[&str] = &["出生日期", "出生年月日", "生日", "birth_date"];
const HUKOU_HEADERS: &[&str] = &["户籍地", "户籍所在地", "户籍地代码", "户口所在地", "hukou_region_code"];
const RESIDENCE_HEADERS: &[&str] = &["现住地", "居住地", "现居住地", "现住址代码", "residence_region_code"];

/// A pupil list (学生名单).
pub const PUPILS: &[Column] = &[
    required(FULL_NAME, NAME_HEADERS),
    required(RESIDENT_ID, ID_HEADERS),
    optional(SEX, SEX_HEADERS),
    optional(BIRTH_DATE, BIRTH_HEADERS),
    required(HUKOU, HUKOU_HEADERS),
    optional(RESIDENCE, RESIDENCE_HEADERS),
    required(SCHOOL_CODE, &["学校代码", "学校标识码", "学校编号", "school_code"]),
    required(GRADE, &["年级", "grade"]),
    optional(STATUS, &["学籍状态", "在读状态", "enrollment_status"]),
    optional(DISABILITY, &["残疾等级", "残疾类别等级", "disability_grade"]),
    optional(POOR, &["建档立卡", "是否建档立卡", "建档立卡贫困户", "registered_poor"]),
    optional(HOUSEHOLD, &["贫困户编号", "户编号", "建档立卡户编号", "poor_household_id"]),
];

/// A school list (学校名单).
pub const SCHOOLS: &[Column] = &[
    required(SCHOOL_CODE, &["学校代码", "学校标识码", "school_code"]),
    required(SCHOOL_NAME, &["学校名称", "学校", "name"]),
    required(REGION, &["所在地", "区县代码", "所在区县", "行政区划代码", "region_code"]),
    required(LEVEL, &["学段", "办学类型", "学校类型", "level"]),
    optional(OWNERSHIP, &["办学性质", "公办民办", "ownership"]),
];

/// The household register's children (户籍人口中的适龄儿童).
pub const HOUSEHOLD_REGISTER: &[Column] = &[
    required(FULL_NAME, NAME_HEADERS),
    required(RESIDENT_ID, ID_HEADERS),
    optional(SEX, SEX_HEADERS),
    optional(BIRTH_DATE, BIRTH_HEADERS),
    required(HUKOU, HUKOU_HEADERS),
    optional(RESIDENCE, RESIDENCE_HEADERS),
];

/// The poverty registry's children (建档立卡贫困家庭子女).
pub const POVERTY_REGISTRY: &[Column] = &[
    required(FULL_NAME, NAME_HEADERS),
    required(RESIDENT_ID, ID_HEADERS),
    required(HOUSEHOLD, &["户编号", "贫困户编号", "建档立卡户编号", "household_id"]),
    required(REGION, &["所在地", "区县代码", "户籍地", "region_code"]),
];

/// The header a column is written under in error files.
pub fn header_of(columns: &[Column], key: &str) -> String {
    columns
        .iter()
        .find(|column| column.key == key)
        .and_then(|column| column.headers.first())
        .copied()
        .unwrap_or(key)
        .to_owned()
}
