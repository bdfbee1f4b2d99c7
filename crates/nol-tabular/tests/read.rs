//! Reading the files bureaus produce, as other tools write them (see fixtures/make_fixtures.py).

use std::path::{Path, PathBuf};

use nol_tabular::{Column, Encoding, Format, TableError, TableReader, TableWriter};

const COLUMNS: &[Column] = &[
    Column { key: "full_name", headers: &["姓名"], required: true },
    Column { key: "resident_id", headers: &["身份证号", "居民身份证号"], required: true },
    Column { key: "school_code", headers: &["学校代码", "学校标识码"], required: true },
    Column { key: "grade", headers: &["年级"], required: false },
    Column { key: "birth_date", headers: &["出生日期"], required: false },
    Column { key: "hukou", headers: &["户籍地"], required: false },
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rows(reader: TableReader) -> Vec<(u64, Vec<String>)> {
    reader.map(|row| row.unwrap()).map(|row| (row.number, row.cells)).collect()
}

#[test]
fn reads_an_xlsx_written_by_openpyxl_with_columns_in_another_order() {
    let reader = TableReader::open(&fixture("pupils-openpyxl.xlsx"), Format::Xlsx, Encoding::Auto, COLUMNS).unwrap();
    assert_eq!(reader.header()[0], "学校代码");
    let mut reader = reader;
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.number, 2);
    assert_eq!(reader.cell(&first, "full_name"), "李小明");
    assert_eq!(reader.cell(&first, "resident_id"), "341221201305020313");
    assert_eq!(reader.cell(&first, "birth_date"), "2013-05-02", "an Excel date cell reads as a date");
    assert_eq!(reader.cell(&first, "grade"), "5");
    let rest: Vec<_> = reader.by_ref().map(|row| row.unwrap()).collect();
    assert_eq!(rest.len(), 3);
    let damaged = &rest[2];
    assert!(reader.cell(damaged, "resident_id").contains('e'), "an 18-digit number cell shows its damage");
    assert_eq!(reader.cell(damaged, "grade"), "3");
}

#[test]
fn reads_gbk_csv_as_excel_saves_it_and_utf8_with_bom() {
    for (name, expected) in [("pupils-excel-gbk.csv", Encoding::Gbk), ("pupils-excel-utf8.csv", Encoding::Utf8)] {
        let reader = TableReader::open(&fixture(name), Format::Csv, Encoding::Auto, COLUMNS).unwrap();
        assert_eq!(reader.encoding(), expected, "{name}");
        assert_eq!(reader.header()[0], "学校代码", "{name}: the BOM is not part of the header");
        let rows = rows(reader);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[2].1[1], "张 伟");
    }
}

#[test]
fn a_gbk_file_read_as_utf8_is_refused_with_the_reason() {
    let error =
        TableReader::open(&fixture("pupils-excel-gbk.csv"), Format::Csv, Encoding::Utf8, COLUMNS).err().unwrap();
    assert!(matches!(error, TableError::NotUtf8 { looks_like_gbk: true, .. }), "{error}");
    assert!(error.to_string().contains("looks like GBK"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn empty_header_only_missing_columns_and_overlong_rows() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.csv", b"");
    assert!(matches!(TableReader::open(&empty, Format::Csv, Encoding::Auto, COLUMNS), Err(TableError::Empty)));
    let header_only = write(dir.path(), "header.csv", "姓名,身份证号,学校代码\n".as_bytes());
    let reader = TableReader::open(&header_only, Format::Csv, Encoding::Auto, COLUMNS).unwrap();
    assert_eq!(rows(reader).len(), 0);
    let missing = write(dir.path(), "missing.csv", "姓名,年级\n张三,3\n".as_bytes());
    match TableReader::open(&missing, Format::Csv, Encoding::Auto, COLUMNS) {
        Err(TableError::MissingColumns(columns)) => assert_eq!(columns, ["身份证号", "学校代码"]),
        other => panic!("{:?}", other.err()),
    }
    let mut long = "姓名,身份证号,学校代码\n张三,1,2\n".to_owned();
    long.push_str(&"x".repeat(2 * 1024 * 1024));
    long.push_str(",1,2\n李四,3,4\n");
    let long = write(dir.path(), "long.csv", long.as_bytes());
    let rows: Vec<_> =
        TableReader::open(&long, Format::Csv, Encoding::Auto, COLUMNS).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[1].too_long && rows[1].cells.is_empty());
    assert_eq!((rows[2].number, rows[2].cells[0].as_str()), (4, "李四"));
}

#[test]
fn error_files_come_back_in_the_same_format_and_encoding() {
    let header = vec!["姓名".to_owned(), "错误原因".to_owned()];
    let mut gbk = TableWriter::new(Format::Csv, Encoding::Gbk, &header).unwrap();
    gbk.write_row(&["王芳".to_owned(), "身份证号校验位错误".to_owned()]).unwrap();
    let bytes = gbk.finish().unwrap();
    let (text, _, malformed) = encoding_rs::GBK.decode(&bytes);
    assert!(!malformed && text.contains("身份证号校验位错误"));

    let dir = tempfile::tempdir().unwrap();
    let mut xlsx = TableWriter::new(Format::Xlsx, Encoding::Auto, &header).unwrap();
    xlsx.write_row(&["王芳".to_owned(), "320102201408110021".to_owned()]).unwrap();
    let path = write(dir.path(), "errors.xlsx", &xlsx.finish().unwrap());
    let columns = [Column { key: "full_name", headers: &["姓名"], required: true }];
    let rows = rows(TableReader::open(&path, Format::Xlsx, Encoding::Auto, &columns).unwrap());
    assert_eq!(rows[0].1[1], "320102201408110021", "IDs stay text");
}

#[test]
fn a_file_written_on_disk_reads_back_whole_in_every_format() {
    use std::io::Read;
    let header = vec!["姓名".to_owned(), "错误原因".to_owned()];
    let dir = tempfile::tempdir().unwrap();
    // CSV: enough rows to be moved to disk twice or more (a megabyte at a time).
    for (format, encoding, name, count) in [
        (Format::Csv, Encoding::Gbk, "gbk.csv", 60_000),
        (Format::Csv, Encoding::Utf8, "utf8.csv", 60_000),
        (Format::Xlsx, Encoding::Utf8, "big.xlsx", 15_000),
    ] {
        let mut writer = TableWriter::on_disk(format, encoding, &header).unwrap();
        for index in 0..count {
            writer.write_row(&[format!("王芳{index}"), "身份证号校验位错误".to_owned()]).unwrap();
        }
        let mut bytes = Vec::new();
        writer.finish_to_file().unwrap().read_to_end(&mut bytes).unwrap();
        if encoding == Encoding::Utf8 && format == Format::Csv {
            assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "one BOM, first");
            assert_eq!(bytes.windows(3).filter(|window| *window == [0xEF, 0xBB, 0xBF]).count(), 1);
        }
        let path = write(dir.path(), name, &bytes);
        let columns = [Column { key: "full_name", headers: &["姓名"], required: true }];
        let read = rows(TableReader::open(&path, format, Encoding::Auto, &columns).unwrap());
        assert_eq!(read.len(), count, "{name}");
        assert_eq!(read[count - 1].1[0], format!("王芳{}", count - 1), "{name}");
        assert_eq!(read[12_345].1[1], "身份证号校验位错误", "{name}");
        assert_eq!(read[12_345].1[0], "王芳12345", "{name}");
    }
}
