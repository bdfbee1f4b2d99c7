//! A period's figures as the bureaus' spreadsheet (XLSX): a title row naming the region and the
//! period, Chinese headers, one row per county grouped by city with a subtotal row after each
//! city, and the region's total last. Numbers are number cells (sums work in Excel).

use nol_region::{RegionCode, RegionLevel};
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, XlsxError};

use crate::figures::Figures;

/// How a column's value is read from a region's figures.
type Read = fn(&Figures) -> i64;

/// The columns after the region's code and name: header and how the value is read.
const COLUMNS: [(&str, Read); 32] = [
    ("在读学生", |f| f.get("pupil.enrolled")),
    ("其中随迁子女", |f| f.get(crate::figures::ENROLLED_MIGRANT)),
    ("其中建档立卡", |f| f.get(crate::figures::ENROLLED_POOR)),
    ("其中残疾学生", |f| f.get(crate::figures::ENROLLED_DISABILITY)),
    ("新增学籍", |f| f.get("pupils_registered")),
    ("新增疑似辍学", |f| f.get(crate::figures::SUSPECTS_RECORDED)),
    ("疑似确认辍学", |f| f.get(crate::figures::SUSPECTS_CONFIRMED)),
    ("疑似销号", |f| f.get(crate::figures::SUSPECTS_CLOSED)),
    ("疑似待核实", |f| f.get(crate::figures::SUSPECTS_PENDING)),
    ("新增辍学", |f| f.get("cases_opened")),
    ("接收移交", |f| f.get("cases_taken_in")),
    ("移出", |f| f.get("cases_handed_out")),
    ("劝返复学", |f| f.get("cases_returned")),
    ("复学后再次辍学（反弹）", |f| f.get("cases_relapsed")),
    ("缓学", |f| f.get("cases_deferred")),
    ("休学", |f| f.get("cases_suspended")),
    ("送教上门", |f| f.get("cases_home_teaching")),
    ("免学", |f| f.get("cases_exempt")),
    ("结案", |f| f.get("cases_closed")),
    ("劝返次数", |f| f.get("persuasion_attempts")),
    ("其中联合劝返", |f| f.get("joint_persuasion_attempts")),
    ("督办新增", |f| f.get(crate::figures::SUPERVISION_RAISED)),
    ("督办办结", |f| f.get(crate::figures::SUPERVISION_CLOSED)),
    ("督办未结", |f| f.get(crate::figures::SUPERVISION_OPEN)),
    ("移交转出", |f| f.get(crate::figures::HANDOFFS_OUT)),
    ("移交转入", |f| f.get(crate::figures::HANDOFFS_IN)),
    ("期末辍学存量", Figures::dropout_balance),
    ("开学核查列入", |f| f.get(crate::figures::CHECK_LISTED)),
    ("核查确认到校", |f| f.get(crate::figures::CHECK_PRESENT)),
    ("核查确认反弹", |f| f.get(crate::figures::CHECK_RELAPSED)),
    ("核查未标记", |f| f.get(&crate::figures::check_state_metric("pending"))),
    ("报告状态", |_| 0),
];

/// The header row's cells.
pub fn header() -> Vec<&'static str> {
    let mut cells = vec!["地区代码", "地区"];
    cells.extend(COLUMNS.iter().map(|(name, _)| *name));
    cells
}

/// The workbook of `region`'s counties in a period. `counties` are by code; `state` names each
/// county's report state in Chinese.
pub fn period_xlsx(
    region: &RegionCode,
    period_name: &str,
    counties: &[(RegionCode, Figures)],
    state: impl Fn(&RegionCode) -> String,
) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("双月报")?;
    let title = Format::new().set_bold().set_font_size(14).set_align(FormatAlign::Center);
    let head = Format::new().set_bold().set_text_wrap().set_border(FormatBorder::Thin).set_background_color("#DDEBF7");
    let cell = Format::new().set_border(FormatBorder::Thin).set_num_format("#,##0");
    let text = Format::new().set_border(FormatBorder::Thin).set_num_format("@");
    let subtotal =
        Format::new().set_bold().set_border(FormatBorder::Thin).set_num_format("#,##0").set_background_color("#F2F2F2");
    let subtotal_text = Format::new().set_bold().set_border(FormatBorder::Thin).set_background_color("#F2F2F2");
    let header = header();
    let last = (header.len() - 1) as u16;
    sheet.merge_range(
        0,
        0,
        0,
        last,
        &format!("{} {} 控辍保学工作情况统计表", region.full_name(), period_name),
        &title,
    )?;
    for (column, name) in header.iter().enumerate() {
        sheet.write_string_with_format(1, column as u16, *name, &head)?;
    }
    sheet.set_column_width(0, 10)?;
    sheet.set_column_width(1, 24)?;
    sheet.set_freeze_panes(2, 2)?;
    let mut row = 2u32;
    let write = |sheet: &mut rust_xlsxwriter::Worksheet,
                 row: u32,
                 code: &str,
                 name: &str,
                 figures: &Figures,
                 status: &str,
                 total: bool|
     -> Result<(), XlsxError> {
        let (number, label) = if total { (&subtotal, &subtotal_text) } else { (&cell, &text) };
        sheet.write_string_with_format(row, 0, code, label)?;
        sheet.write_string_with_format(row, 1, name, label)?;
        for (index, (_, read)) in COLUMNS.iter().enumerate().take(COLUMNS.len() - 1) {
            sheet.write_number_with_format(row, index as u16 + 2, read(figures) as f64, number)?;
        }
        sheet.write_string_with_format(row, last, status, label)?;
        Ok(())
    };
    let city_of = |county: &RegionCode| -> RegionCode {
        let mut cursor = *county;
        while let Some(parent) = cursor.parent() {
            if parent.level() == RegionLevel::City || parent.level() == RegionLevel::Province {
                return if parent.level() == RegionLevel::City { parent } else { cursor };
            }
            cursor = parent;
        }
        cursor
    };
    let mut total = Figures::default();
    let mut index = 0;
    while index < counties.len() {
        let city = city_of(&counties[index].0);
        let mut sum = Figures::default();
        let mut members = 0;
        while index < counties.len() && city_of(&counties[index].0) == city {
            let (county, figures) = &counties[index];
            write(sheet, row, county.as_str(), &county.full_name(), figures, &state(county), false)?;
            sum.add(figures);
            row += 1;
            index += 1;
            members += 1;
        }
        if region.level() == RegionLevel::Province && (members > 1 || city != counties[index - 1].0) {
            write(sheet, row, city.as_str(), &format!("{}小计", city.name()), &sum, "", true)?;
            row += 1;
        }
        total.add(&sum);
    }
    write(sheet, row, region.as_str(), &format!("{}合计", region.name()), &total, "", true)?;
    workbook.save_to_buffer()
}
