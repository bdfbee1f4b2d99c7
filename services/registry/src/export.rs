//! Cross-check items as an .xlsx file, headers in Chinese first.

use nol_tabular::{Encoding, Format, TableWriter};

use crate::store::checks::ItemRecord;

const HEADER: [&str; 11] = [
    "类型 kind",
    "区县代码 county",
    "区县 county name",
    "姓名 name",
    "身份证号 ID (masked)",
    "原因 reason",
    "状态 status",
    "销号结果 outcome",
    "销号说明 detail",
    "首次发现 first found",
    "最近发现 last found",
];

/// Check items as an .xlsx, written a page at a time (the sheet is kept on disk as it grows) and
/// finished into a temporary file that is then streamed out.
pub struct ItemsXlsx(TableWriter);

impl ItemsXlsx {
    pub fn new() -> Result<ItemsXlsx, nol_tabular::TableError> {
        let header: Vec<String> = HEADER.iter().map(|cell| (*cell).to_owned()).collect();
        Ok(ItemsXlsx(TableWriter::new(Format::Xlsx, Encoding::Utf8, &header)?))
    }

    pub fn write(&mut self, items: &[ItemRecord]) -> Result<(), nol_tabular::TableError> {
        write_rows(&mut self.0, items)
    }

    pub fn finish(self) -> Result<std::fs::File, nol_tabular::TableError> {
        self.0.finish_to_file()
    }
}

fn write_rows(writer: &mut TableWriter, items: &[ItemRecord]) -> Result<(), nol_tabular::TableError> {
    for item in items {
        let outcome = item.outcome.map(|outcome| format!("{:?}", outcome.to_proto())).unwrap_or_default();
        writer.write_row(&[
            item.kind.chinese().to_owned(),
            item.region.to_string(),
            item.region.full_name(),
            item.full_name.clone(),
            item.resident_id_masked.clone(),
            item.reason.clone(),
            if item.open { "未销号 open".to_owned() } else { "已销号 closed".to_owned() },
            outcome,
            item.outcome_detail.clone().unwrap_or_default(),
            item.first_found_at.format("%Y-%m-%d %H:%M").to_string(),
            item.last_found_at.format("%Y-%m-%d %H:%M").to_string(),
        ])?;
    }
    Ok(())
}
