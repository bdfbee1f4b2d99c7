//! The files bureaus exchange.
//!
//! Bureaus send lists as CSV (UTF-8, with or without a BOM, or GBK as Excel saves it on a Chinese
//! Windows) and `.xlsx`, with Chinese column headers in whatever order. [`TableReader`] reads
//! such a file as a stream of rows (CSV in constant memory; `.xlsx` row by row from its sheet XML),
//! maps the header onto the columns a caller expects by name and alias, and numbers rows as a
//! person looking at the file sees them. [`TableWriter`] writes rows back in the same format and
//! encoding, for the error file returned to whoever sent the original.
#![forbid(unsafe_code)]

mod reader;
mod writer;

pub use reader::{ColumnMap, RawRow, TableReader};
pub use writer::TableWriter;

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// From a file name's extension.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") || lower.ends_with(".txt") {
            Some(Format::Csv)
        } else if lower.ends_with(".xlsx") {
            Some(Format::Xlsx)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A CSV file's text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 when the bytes are valid UTF-8, else GBK when they are valid GBK.
    Auto,
    Utf8,
    Gbk,
}

/// One column a reader expects: a key for the program, the header names people use for it
/// (the first is the name written in error files), and whether a file must have it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub key: &'static str,
    pub headers: &'static [&'static str],
    pub required: bool,
}

/// The largest row read; a longer one is reported as an error of that row and skipped.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// The most a CSV record may run to before it is read whole (the reader buffers a record): a file
/// with a longer one — a line without an end, an unclosed quote — is refused, not buffered. A
/// row longer than [`MAX_ROW_BYTES`] but within this is reported as that row's error.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The most a `.xlsx` may unpack to, in all and per part (a zip bomb is refused before it is
/// opened): a province's pupils (10 million rows) take about 1.5 GiB unpacked.
pub const MAX_XLSX_UNPACKED_BYTES: u64 = 4 << 30;
/// The most one part (a worksheet, the shared strings) may unpack to.
pub const MAX_XLSX_PART_BYTES: u64 = 2 << 30;
/// A part that unpacks to more than this many times its packed size is a bomb, not a sheet
/// (spreadsheets compress 5–20×).
pub const MAX_XLSX_RATIO: u64 = 250;

/// Why a file cannot be read at all (row-level problems are the caller's to report).
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has no header row")]
    NoHeader,
    #[error(
        "the file is not valid UTF-8 (at byte {byte_offset}){}",
        if *.looks_like_gbk { "; it looks like GBK (as Excel saves CSV on Chinese Windows): send it as GBK, or let the encoding be detected" } else { "" }
    )]
    NotUtf8 { byte_offset: u64, looks_like_gbk: bool },
    #[error("the file is not valid GBK (at byte {byte_offset})")]
    NotGbk { byte_offset: u64 },
    #[error("the file is neither UTF-8 nor GBK text")]
    UnknownEncoding,
    #[error("the .xlsx file cannot be read: {0}")]
    BadXlsx(String),
    #[error("the header lacks required columns: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[error("the header has column {0} twice")]
    DuplicateColumn(String),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the CSV is malformed: {0}")]
    Csv(String),
}

impl TableError {
    /// What a person reads of a whole-file problem (None for a failure to read the received
    /// file, which is the service's, not the caller's).
    pub fn message(&self) -> Option<nol_messages::Registry> {
        use nol_messages::Registry;
        Some(match self {
            TableError::Empty => Registry::FileEmpty,
            TableError::NoHeader => Registry::FileNoHeader,
            TableError::NotUtf8 { byte_offset, looks_like_gbk } => {
                Registry::FileNotUtf8 { byte_offset: *byte_offset, looks_like_gbk: *looks_like_gbk }
            }
            TableError::NotGbk { byte_offset } => Registry::FileNotGbk { byte_offset: *byte_offset },
            TableError::UnknownEncoding => Registry::FileUnknownEncoding,
            TableError::BadXlsx(detail) => Registry::FileBadXlsx { detail: detail.clone() },
            TableError::MissingColumns(columns) => Registry::FileMissingColumns { columns: columns.clone() },
            TableError::DuplicateColumn(column) => Registry::FileDuplicateColumn { column: column.clone() },
            TableError::Csv(detail) => Registry::FileMalformedCsv { detail: detail.clone() },
            TableError::Io(_) => return None,
        })
    }
}

/// Normalises a header cell: no spaces (ASCII or full-width), no BOM, no required-field stars.
pub(crate) fn normalize_header(text: &str) -> String {
    text.chars()
        .filter(|character| {
            !character.is_whitespace() && *character != '\u{feff}' && *character != '*' && *character != '＊'
        })
        .collect::<String>()
        .to_lowercase()
}
