//! Files built to exhaust memory are refused before they are read: a CSV record with no end and a
//! `.xlsx` that unpacks a thousandfold.

use std::io::Write;

use nol_tabular::{Column, Encoding, Format, TableError, TableReader};

const COLUMNS: &[Column] = &[Column { key: "name", headers: &["姓名"], required: true }];

fn read_all(path: &std::path::Path, format: Format) -> Result<usize, TableError> {
    let reader = TableReader::open(path, format, Encoding::Utf8, COLUMNS)?;
    let mut rows = 0;
    for row in reader {
        row?;
        rows += 1;
    }
    Ok(rows)
}

#[test]
fn a_csv_record_without_an_end_is_refused_before_it_is_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endless.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "姓名,备注").unwrap();
    writeln!(file, "张三,\"a quoted cell\nthat spans lines\"").unwrap();
    // An unclosed quote: everything after it would be one record.
    write!(file, "李四,\"").unwrap();
    let line = "x".repeat(64 * 1024);
    for _ in 0..300 {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let error = read_all(&path, Format::Csv).unwrap_err();
    assert!(matches!(&error, TableError::Csv(detail) if detail.contains("record longer than")), "{error}");
    // The same file with the quote closed reads, long rows reported row by row.
    let fine = dir.path().join("fine.csv");
    std::fs::write(&fine, "姓名,备注\n张三,\"a quoted cell\nthat spans lines\"\n李四,x\n").unwrap();
    assert_eq!(read_all(&fine, Format::Csv).unwrap(), 2);
}

#[test]
fn an_xlsx_that_would_unpack_a_thousandfold_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.xlsx");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        zip.write_all(&spaces).unwrap();
    }
    zip.finish().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20, "64 MiB packed small");
    let error = read_all(&path, Format::Xlsx).unwrap_err();
    assert!(
        matches!(&error, TableError::BadXlsx(detail) if detail.contains("xl/sharedStrings.xml") && detail.contains("refused unread")),
        "{error}"
    );
}
