//! Dropout cases as an .xlsx file, headers in Chinese first; resident ID numbers masked only.

use chrono::NaiveDate;
use nol_tabular::{Encoding, Format, TableWriter};

use nol_messages::vocab::case_status_zh;

use super::domain::Case;
use super::domain::stored::Stored;

const HEADER: [&str; 16] = [
    "案件编号 case",
    "区县代码 county",
    "区县 county name",
    "姓名 name",
    "身份证号 ID (masked)",
    "出生年份 birth year",
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

fn cause_chinese(cause: &str) -> &'static str {
    match cause {
        "family_poverty" => "家庭贫困",
        "disability" => "残疾",
        "learning_difficulty" => "学习困难",
        "gone_to_work" => "外出打工",
        "religion" => "宗教",
        "other" => "其他",
        _ => "?",
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

/// The ledger as an .xlsx, written a page of cases at a time (the sheet is kept on disk as it
/// grows) and finished into a temporary file that is then streamed out.
pub struct CasesXlsx {
    writer: TableWriter,
    today: NaiveDate,
}

impl CasesXlsx {
    pub fn new(today: NaiveDate) -> Result<CasesXlsx, nol_tabular::TableError> {
        let header: Vec<String> = HEADER.iter().map(|cell| (*cell).to_owned()).collect();
        Ok(CasesXlsx { writer: TableWriter::new(Format::Xlsx, Encoding::Utf8, &header)?, today })
    }

    pub fn write(&mut self, cases: &[Case]) -> Result<(), nol_tabular::TableError> {
        write_rows(&mut self.writer, cases, self.today)
    }

    pub fn finish(self) -> Result<std::fs::File, nol_tabular::TableError> {
        self.writer.finish_to_file()
    }
}

fn write_rows(writer: &mut TableWriter, cases: &[Case], today: NaiveDate) -> Result<(), nol_tabular::TableError> {
    for case in cases {
        let causes: Vec<&str> = case.causes.iter().map(|cause| cause_chinese(cause.as_stored())).collect();
        let overdue = case.due.is_some_and(|due| super::domain::deadlines::is_overdue(due.on, today));
        let status = case.status.as_stored();
        writer.write_row(&[
            case.id.to_string(),
            case.region.to_string(),
            case.region.full_name(),
            case.child.full_name.clone(),
            case.child.resident_id_masked.clone(),
            chrono::Datelike::year(&case.child.birth_date).to_string(),
            case.child.hukou_region.clone(),
            format!("{} {}", case_status_zh(status), status.replace('_', " ")),
            causes.join("、"),
            yes_no(case.migrant),
            yes_no(case.registered_poor),
            disability_chinese(case.disability_grade).to_owned(),
            date(case.confirmed_on),
            date(case.last_attempt_on),
            date(case.due.map(|due| due.on)),
            yes_no(overdue),
        ])?;
    }
    Ok(())
}
