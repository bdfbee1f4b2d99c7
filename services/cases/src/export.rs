//! Dropout cases as an .xlsx file, headers in Chinese first; resident ID numbers masked only.

use chrono::NaiveDate;
use nol_region::RegionCode;
use nol_tabular::{Encoding, Format, TableWriter};

use crate::domain::Status;
use crate::store::CaseRow;

const HEADER: [&str; 16] = [
    "案件编号 case",
    "区县代码 county",
    "区县 county name",
    "姓名 name",
    "身份证号 ID (masked)",
    "出生日期 birth date",
    "户籍地 hukou",
    "状态 status",
    "辍学原因 causes",
    "随迁子女 migrant",
    "建档立卡 registered poor",
    "残疾等级 disability",
    "确认日期 confirmed",
    "最近劝返 last attempt",
    "截止日期 due",
    "逾期 overdue",
];

fn status_chinese(status: &str) -> &'static str {
    match Status::parse(status) {
        Some(Status::Open) => "劝返中 open",
        Some(Status::HandoffPending) => "移交中 hand-off pending",
        Some(Status::HandedOver) => "已移交 handed over",
        Some(Status::Returned) => "已复学 returned",
        Some(Status::Monitoring) => "巩固跟踪 monitoring",
        Some(Status::HomeTeaching) => "送教上门 home teaching",
        Some(Status::Deferred) => "缓学 deferred",
        Some(Status::Suspended) => "休学 suspended",
        Some(Status::Exempt) => "免学 exempt",
        Some(Status::Closed) => "已结案 closed",
        None => "?",
    }
}

fn cause_chinese(cause: &str) -> &str {
    match cause {
        "family_poverty" => "家庭贫困",
        "disability" => "残疾",
        "learning_difficulty" => "学习困难",
        "gone_to_work" => "外出打工",
        "religion" => "宗教",
        "other" => "其他",
        other => other,
    }
}

fn disability_chinese(grade: i16) -> &'static str {
    match grade {
        1 => "无",
        2 => "一级",
        3 => "二级",
        4 => "三级",
        5 => "四级",
        _ => "",
    }
}

fn yes_no(value: bool) -> String {
    if value { "是".to_owned() } else { "否".to_owned() }
}

fn date(value: Option<NaiveDate>) -> String {
    value.map(|day| day.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

pub fn cases_xlsx(rows: &[CaseRow], today: NaiveDate) -> Result<Vec<u8>, nol_tabular::TableError> {
    let header: Vec<String> = HEADER.iter().map(|cell| (*cell).to_owned()).collect();
    let mut writer = TableWriter::new(Format::Xlsx, Encoding::Utf8, &header)?;
    for row in rows {
        let region_name = RegionCode::parse(&row.region).map(|region| region.full_name()).unwrap_or_default();
        let causes: Vec<&str> = row.causes.iter().map(|cause| cause_chinese(cause)).collect();
        let overdue = row.due_on.is_some_and(|due| crate::deadlines::is_overdue(due, today));
        writer.write_row(&[
            row.id.to_string(),
            row.region.clone(),
            region_name,
            row.child_name.clone(),
            row.resident_id_masked.clone(),
            row.birth_date.format("%Y-%m-%d").to_string(),
            row.hukou_region.clone(),
            status_chinese(&row.status).to_owned(),
            causes.join("、"),
            yes_no(row.migrant),
            yes_no(row.registered_poor),
            disability_chinese(row.disability_grade).to_owned(),
            date(row.confirmed_on),
            date(row.last_attempt_on),
            date(row.due_on),
            yes_no(overdue),
        ])?;
    }
    writer.finish()
}
