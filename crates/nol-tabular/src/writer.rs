use rust_xlsxwriter::{Format as CellFormat, Workbook};

use crate::{Encoding, Format, TableError};

/// Writes rows in a format and encoding (for error files: the same as the file they answer).
pub struct TableWriter {
    inner: Inner,
}

enum Inner {
    Csv { writer: Box<csv::Writer<Vec<u8>>>, encoding: Encoding },
    Xlsx { workbook: Box<Workbook>, row: u32 },
}

fn xlsx_error(error: rust_xlsxwriter::XlsxError) -> TableError {
    TableError::BadXlsx(error.to_string())
}

impl TableWriter {
    /// A new file with `header` as its first row.
    pub fn new(format: Format, encoding: Encoding, header: &[String]) -> Result<TableWriter, TableError> {
        let inner = match format {
            Format::Csv => Inner::Csv { writer: Box::new(csv::Writer::from_writer(Vec::new())), encoding },
            Format::Xlsx => {
                let mut workbook = Box::new(Workbook::new());
                workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
                Inner::Xlsx { workbook, row: 0 }
            }
        };
        let mut writer = TableWriter { inner };
        writer.write_row(header)?;
        Ok(writer)
    }

    pub fn write_row(&mut self, cells: &[String]) -> Result<(), TableError> {
        match &mut self.inner {
            Inner::Csv { writer, .. } => writer.write_record(cells).map_err(|error| TableError::Csv(error.to_string())),
            Inner::Xlsx { workbook, row } => {
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx_error)?;
                // Text cells throughout, so an ID number is never turned into a float.
                let text = CellFormat::new().set_num_format("@");
                for (column, cell) in cells.iter().enumerate() {
                    sheet.write_string_with_format(*row, column as u16, cell, &text).map_err(xlsx_error)?;
                }
                *row += 1;
                Ok(())
            }
        }
    }

    /// The file written to an unnamed temporary file (gone once closed) and rewound, for a file
    /// too large to hold in memory: the `.xlsx` sheet is already kept on disk row by row
    /// (constant-memory mode), and the workbook is zipped straight into the file.
    pub fn finish_to_file(self) -> Result<std::fs::File, TableError> {
        use std::io::{Seek, Write};
        let io = |error: std::io::Error| TableError::BadXlsx(error.to_string());
        let mut file = tempfile::tempfile().map_err(io)?;
        match self.inner {
            Inner::Xlsx { mut workbook, .. } => workbook.save_to_writer(&mut file).map_err(xlsx_error)?,
            csv => file.write_all(&TableWriter { inner: csv }.finish()?).map_err(io)?,
        }
        file.rewind().map_err(io)?;
        Ok(file)
    }

    /// The file's bytes. CSV in UTF-8 starts with a BOM (Excel reads it right); GBK is encoded.
    pub fn finish(self) -> Result<Vec<u8>, TableError> {
        match self.inner {
            Inner::Csv { writer, encoding } => {
                let utf8 = writer.into_inner().map_err(|error| TableError::Csv(error.to_string()))?;
                let text = String::from_utf8_lossy(&utf8);
                Ok(match encoding {
                    Encoding::Gbk => encoding_rs::GBK.encode(&text).0.into_owned(),
                    _ => {
                        let mut bytes = vec![0xEF, 0xBB, 0xBF];
                        bytes.extend_from_slice(text.as_bytes());
                        bytes
                    }
                })
            }
            Inner::Xlsx { mut workbook, .. } => workbook.save_to_buffer().map_err(xlsx_error),
        }
    }
}
