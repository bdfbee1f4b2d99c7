use rust_xlsxwriter::{Format as CellFormat, Workbook};

use crate::{Encoding, Format, TableError};

/// Writes rows in a format and encoding (for error files: the same as the file they answer).
pub struct TableWriter {
    inner: Inner,
}

enum Inner {
    /// CSV written into memory; with a `spill` file, moved there (encoded) every megabyte.
    Csv {
        writer: Box<csv::Writer<Vec<u8>>>,
        encoding: Encoding,
        spill: Option<std::fs::File>,
        bom_written: bool,
    },
    Xlsx {
        workbook: Box<Workbook>,
        row: u32,
    },
}

fn xlsx_error(error: rust_xlsxwriter::XlsxError) -> TableError {
    TableError::BadXlsx(error.to_string())
}

impl TableWriter {
    /// A new file with `header` as its first row.
    pub fn new(format: Format, encoding: Encoding, header: &[String]) -> Result<TableWriter, TableError> {
        let inner = match format {
            Format::Csv => Inner::Csv {
                writer: Box::new(csv::Writer::from_writer(Vec::new())),
                encoding,
                spill: None,
                bom_written: false,
            },
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

    /// A new file kept on disk as it is written, whatever its size: an `.xlsx` sheet in
    /// constant-memory mode, CSV moved to an unnamed temporary file every megabyte. Finish it with
    /// [`TableWriter::finish_to_file`].
    pub fn on_disk(format: Format, encoding: Encoding, header: &[String]) -> Result<TableWriter, TableError> {
        let mut writer = TableWriter::new(format, encoding, header)?;
        if let Inner::Csv { spill, .. } = &mut writer.inner {
            *spill = Some(tempfile::tempfile().map_err(|error| TableError::Csv(error.to_string()))?);
        }
        Ok(writer)
    }

    pub fn write_row(&mut self, cells: &[String]) -> Result<(), TableError> {
        match &mut self.inner {
            Inner::Csv { writer, encoding, spill, bom_written } => {
                let csv_error = |error: std::io::Error| TableError::Csv(error.to_string());
                writer.write_record(cells).map_err(|error| TableError::Csv(error.to_string()))?;
                if let Some(file) = spill {
                    writer.flush().map_err(csv_error)?;
                    if writer.get_ref().len() >= 1 << 20 {
                        let full = std::mem::replace(writer, Box::new(csv::Writer::from_writer(Vec::new())));
                        let text = full.into_inner().map_err(|error| TableError::Csv(error.to_string()))?;
                        spill_csv(&text, *encoding, file, bom_written).map_err(csv_error)?;
                    }
                }
                Ok(())
            }
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
        let mut file = match self.inner {
            Inner::Xlsx { mut workbook, .. } => {
                let mut file = tempfile::tempfile().map_err(io)?;
                workbook.save_to_writer(&mut file).map_err(xlsx_error)?;
                file
            }
            Inner::Csv { writer, encoding, spill: Some(mut file), mut bom_written } => {
                let text = writer.into_inner().map_err(|error| TableError::Csv(error.to_string()))?;
                spill_csv(&text, encoding, &mut file, &mut bom_written).map_err(io)?;
                file
            }
            csv => {
                let mut file = tempfile::tempfile().map_err(io)?;
                file.write_all(&TableWriter { inner: csv }.finish()?).map_err(io)?;
                file
            }
        };
        file.rewind().map_err(io)?;
        Ok(file)
    }

    /// The file's bytes. CSV in UTF-8 starts with a BOM (Excel reads it right); GBK is encoded.
    pub fn finish(self) -> Result<Vec<u8>, TableError> {
        match self.inner {
            Inner::Csv { writer, encoding, .. } => {
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

/// Moves the CSV written so far (whole records, UTF-8) into `file` in the file's encoding, a BOM
/// first for UTF-8 (as [`TableWriter::finish`] writes it).
fn spill_csv(
    buffer: &[u8],
    encoding: Encoding,
    file: &mut std::fs::File,
    bom_written: &mut bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let text = String::from_utf8_lossy(buffer);
    match encoding {
        Encoding::Gbk => file.write_all(&encoding_rs::GBK.encode(&text).0)?,
        _ => {
            if !*bom_written {
                file.write_all(&[0xEF, 0xBB, 0xBF])?;
            }
            file.write_all(text.as_bytes())?;
        }
    }
    *bom_written = true;
    Ok(())
}
