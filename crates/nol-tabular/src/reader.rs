use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx};

use crate::{
    Column, Encoding, Format, MAX_RECORD_BYTES, MAX_ROW_BYTES, MAX_XLSX_PART_BYTES, MAX_XLSX_RATIO,
    MAX_XLSX_UNPACKED_BYTES, TableError, normalize_header,
};

/// One data row: its number as a person sees it (the header is usually row 1) and its cells in
/// file order. A row longer than [`MAX_ROW_BYTES`] comes without cells, marked `too_long`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub number: u64,
    pub cells: Vec<String>,
    pub too_long: bool,
}

type Rows = Box<dyn Iterator<Item = Result<RawRow, TableError>> + Send>;

/// Where each expected column is in a file's rows.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    positions: HashMap<&'static str, usize>,
}

impl ColumnMap {
    /// The column positions, to read rows elsewhere (the rows may be read on another thread).
    pub fn columns(&self) -> ColumnMap {
        ColumnMap { positions: self.positions.clone() }
    }

    /// True when the file has the column `key`.
    pub fn has(&self, key: &str) -> bool {
        self.positions.contains_key(key)
    }

    /// The index of column `key` in a row's cells, when the file has it.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.positions.get(key).copied()
    }

    /// The trimmed cell of column `key` in `row` ("" when absent).
    pub fn cell<'row>(&self, row: &'row RawRow, key: &str) -> &'row str {
        self.positions.get(key).and_then(|index| row.cells.get(*index)).map(|cell| cell.trim()).unwrap_or("")
    }
}

/// A file being read: its header mapped onto the expected columns, then its rows.
pub struct TableReader {
    header: Vec<String>,
    positions: HashMap<&'static str, usize>,
    rows: Rows,
    encoding: Encoding,
}

impl TableReader {
    /// Opens `path`, reads the header and checks it has every required column of `columns`.
    pub fn open(
        path: &Path,
        format: Format,
        encoding: Encoding,
        columns: &[Column],
    ) -> Result<TableReader, TableError> {
        if std::fs::metadata(path)?.len() == 0 {
            return Err(TableError::Empty);
        }
        let (mut rows, encoding): (Rows, Encoding) = match format {
            Format::Csv => {
                let encoding = detect_encoding(path, encoding)?;
                (csv_rows(path, encoding)?, encoding)
            }
            Format::Xlsx => (xlsx_rows(path)?, Encoding::Utf8),
        };
        let header_row = match rows.next() {
            Some(row) => row?,
            None => return Err(TableError::Empty),
        };
        if header_row.too_long {
            return Err(TableError::NoHeader);
        }
        let header: Vec<String> = header_row.cells.iter().map(|cell| cell.trim().to_owned()).collect();
        let positions = map_columns(&header, columns)?;
        Ok(TableReader { header, positions, rows, encoding })
    }

    /// The header as written in the file.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The encoding the file was read in (UTF-8 for `.xlsx`).
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The column positions, to read rows elsewhere (the rows may be read on another thread).
    pub fn columns(&self) -> ColumnMap {
        ColumnMap { positions: self.positions.clone() }
    }

    /// True when the file has the column `key`.
    pub fn has(&self, key: &str) -> bool {
        self.positions.contains_key(key)
    }

    /// The trimmed cell of column `key` in `row` ("" when absent).
    pub fn cell<'row>(&self, row: &'row RawRow, key: &str) -> &'row str {
        self.positions.get(key).and_then(|index| row.cells.get(*index)).map(|cell| cell.trim()).unwrap_or("")
    }
}

impl Iterator for TableReader {
    type Item = Result<RawRow, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next()
    }
}

fn map_columns(header: &[String], columns: &[Column]) -> Result<HashMap<&'static str, usize>, TableError> {
    let mut positions = HashMap::new();
    for (index, cell) in header.iter().enumerate() {
        let name = normalize_header(cell);
        if name.is_empty() {
            continue;
        }
        let known = columns
            .iter()
            .find(|column| column.key == name || column.headers.iter().any(|header| normalize_header(header) == name));
        if let Some(column) = known
            && positions.insert(column.key, index).is_some()
        {
            return Err(TableError::DuplicateColumn(cell.clone()));
        }
    }
    let missing: Vec<String> = columns
        .iter()
        .filter(|column| column.required && !positions.contains_key(column.key))
        .map(|column| column.headers.first().copied().unwrap_or(column.key).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(TableError::MissingColumns(missing));
    }
    Ok(positions)
}

/// Decides the encoding of a CSV file, reading it once (in constant memory).
fn detect_encoding(path: &Path, requested: Encoding) -> Result<Encoding, TableError> {
    let mut head = [0u8; 3];
    let read = File::open(path)?.read(&mut head)?;
    let has_bom = read == 3 && head == [0xEF, 0xBB, 0xBF];
    match requested {
        Encoding::Gbk => match first_malformed(path, encoding_rs::GBK)? {
            None => Ok(Encoding::Gbk),
            Some(byte_offset) => Err(TableError::NotGbk { byte_offset }),
        },
        Encoding::Utf8 => match first_malformed(path, encoding_rs::UTF_8)? {
            None => Ok(Encoding::Utf8),
            Some(byte_offset) => {
                let looks_like_gbk = !has_bom && first_malformed(path, encoding_rs::GBK)?.is_none();
                Err(TableError::NotUtf8 { byte_offset, looks_like_gbk })
            }
        },
        Encoding::Auto => {
            if has_bom || first_malformed(path, encoding_rs::UTF_8)?.is_none() {
                Ok(Encoding::Utf8)
            } else if first_malformed(path, encoding_rs::GBK)?.is_none() {
                Ok(Encoding::Gbk)
            } else {
                Err(TableError::UnknownEncoding)
            }
        }
    }
}

/// The offset of the first byte sequence that is not valid in `encoding`, if any.
fn first_malformed(path: &Path, encoding: &'static encoding_rs::Encoding) -> Result<Option<u64>, TableError> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut decoder = encoding.new_decoder_with_bom_removal();
    let mut chunk = vec![0u8; 1 << 16];
    let mut out = String::with_capacity(1 << 17);
    let mut offset = 0u64;
    loop {
        let read = file.read(&mut chunk)?;
        let last = read == 0;
        let mut input = &chunk[..read];
        loop {
            out.clear();
            out.reserve(decoder.max_utf8_buffer_length_without_replacement(input.len()).unwrap_or(1 << 18));
            let (result, consumed) = decoder.decode_to_string_without_replacement(input, &mut out, last);
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => input = &input[consumed..],
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    return Ok(Some(offset + consumed as u64));
                }
            }
        }
        offset += read as u64;
        if last {
            return Ok(None);
        }
    }
}

fn csv_rows(path: &Path, encoding: Encoding) -> Result<Rows, TableError> {
    let source = match encoding {
        Encoding::Gbk => encoding_rs::GBK,
        _ => encoding_rs::UTF_8,
    };
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(source))
        .bom_override(true)
        .build(BufReader::with_capacity(1 << 16, File::open(path)?));
    let bounded = BoundedRecords { inner: decoded, since_record: 0, quoted: false };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bounded);
    let mut record = csv::ByteRecord::new();
    Ok(Box::new(std::iter::from_fn(move || {
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => {
                    // Records, not lines: a quoted cell may span lines, yet it is one row in Excel.
                    let number = record.position().map(|position| position.record() + 1).unwrap_or(0);
                    if record.as_slice().len() > MAX_ROW_BYTES {
                        return Some(Ok(RawRow { number, cells: Vec::new(), too_long: true }));
                    }
                    let cells: Vec<String> =
                        record.iter().map(|field| String::from_utf8_lossy(field).into_owned()).collect();
                    if cells.iter().all(|cell| cell.trim().is_empty()) {
                        continue;
                    }
                    return Some(Ok(RawRow { number, cells, too_long: false }));
                }
                Err(error) => return Some(Err(TableError::Csv(error.to_string()))),
            }
        }
    })))
}

/// A CSV source that fails once a record runs past [`MAX_RECORD_BYTES`], before the CSV reader
/// buffers it whole: it follows quotes (a doubled quote toggles twice) so a quoted cell may span
/// lines, and counts the bytes since the last line end outside quotes.
struct BoundedRecords<R> {
    inner: R,
    since_record: usize,
    quoted: bool,
}

impl<R: Read> Read for BoundedRecords<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        for &byte in &buffer[..read] {
            match byte {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.since_record = 0,
                _ => {}
            }
            self.since_record += 1;
            if self.since_record > MAX_RECORD_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "a record longer than {} MiB (a line without an end, or an unclosed quote)",
                        MAX_RECORD_BYTES >> 20
                    ),
                ));
            }
        }
        Ok(read)
    }
}

/// Refuses a workbook that would unpack to more than the limits allow, from the sizes its zip
/// directory declares (the zip reader stops each part at its declared size).
fn check_unpacked_size(path: &Path) -> Result<(), TableError> {
    let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path)?))
        .map_err(|error| TableError::BadXlsx(error.to_string()))?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let part = archive.by_index_raw(index).map_err(|error| TableError::BadXlsx(error.to_string()))?;
        let (packed, unpacked) = (part.compressed_size(), part.size());
        total = total.saturating_add(unpacked);
        let bomb = unpacked > MAX_XLSX_PART_BYTES || (unpacked > 16 << 20 && unpacked / packed.max(1) > MAX_XLSX_RATIO);
        if bomb || total > MAX_XLSX_UNPACKED_BYTES {
            return Err(TableError::BadXlsx(format!(
                "it would unpack to more than a workbook holds ({} unpacks to {} MiB from {} KiB); refused unread",
                part.name().map(|name| name.into_owned()).unwrap_or_default(),
                unpacked >> 20,
                packed >> 10
            )));
        }
    }
    Ok(())
}

/// Reads the first sheet of a workbook on a thread of its own (the cell reader borrows the
/// workbook), handing rows over through a bounded channel.
fn xlsx_rows(path: &Path) -> Result<Rows, TableError> {
    check_unpacked_size(path)?;
    let mut workbook: Xlsx<BufReader<File>> =
        calamine::open_workbook(path).map_err(|error: calamine::XlsxError| TableError::BadXlsx(error.to_string()))?;
    let sheet =
        workbook.sheet_names().first().cloned().ok_or_else(|| TableError::BadXlsx("no worksheet".to_owned()))?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<RawRow, TableError>>(256);
    std::thread::spawn(move || {
        let mut cells = match workbook.worksheet_cells_reader(&sheet) {
            Ok(cells) => cells,
            Err(error) => {
                let _ = sender.send(Err(TableError::BadXlsx(error.to_string())));
                return;
            }
        };
        let mut current: Option<(u32, Vec<String>, usize)> = None;
        let flush = |row: Option<(u32, Vec<String>, usize)>| -> Option<RawRow> {
            let (index, values, bytes) = row?;
            if bytes > MAX_ROW_BYTES {
                return Some(RawRow { number: u64::from(index) + 1, cells: Vec::new(), too_long: true });
            }
            if values.iter().all(|value| value.trim().is_empty()) {
                return None;
            }
            Some(RawRow { number: u64::from(index) + 1, cells: values, too_long: false })
        };
        loop {
            match cells.next_cell() {
                Ok(Some(cell)) => {
                    let (row_index, column) = cell.get_position();
                    if current.as_ref().is_none_or(|(index, _, _)| *index != row_index)
                        && let Some(row) = flush(current.take())
                        && sender.send(Ok(row)).is_err()
                    {
                        return;
                    }
                    let entry = current.get_or_insert_with(|| (row_index, Vec::new(), 0));
                    let text = cell_text(cell.get_value());
                    entry.2 += text.len();
                    let column = column as usize;
                    if entry.2 <= MAX_ROW_BYTES && column < 1024 {
                        if entry.1.len() <= column {
                            entry.1.resize(column + 1, String::new());
                        }
                        entry.1[column] = text;
                    }
                }
                Ok(None) => {
                    if let Some(row) = flush(current.take()) {
                        let _ = sender.send(Ok(row));
                    }
                    return;
                }
                Err(error) => {
                    let _ = sender.send(Err(TableError::BadXlsx(error.to_string())));
                    return;
                }
            }
        }
    });
    Ok(Box::new(receiver.into_iter()))
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(number) => number.to_string(),
        // Whole numbers print as such; a long number Excel stored as a float (an 18-digit ID
        // typed into a number cell) keeps its exponent, so it is recognisably damaged.
        DataRef::Float(number) if number.fract() == 0.0 && number.abs() < 1e15 => format!("{}", *number as i64),
        DataRef::Float(number) => format!("{number:e}"),
        DataRef::String(text) => text.clone(),
        DataRef::SharedString(text) => (*text).to_owned(),
        DataRef::Bool(flag) => if *flag { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(datetime) => {
            datetime.as_datetime().map(|moment| moment.date().format("%Y-%m-%d").to_string()).unwrap_or_default()
        }
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(error) => format!("#{error:?}"),
        DataRef::Empty => String::new(),
    }
}
