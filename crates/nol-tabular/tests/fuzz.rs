//! Fuzzing the readers of bureaus' files on stable Rust (proptest): whatever bytes arrive — random,
//! CSV-shaped with quotes, separators, GBK and Chinese text, or a valid `.xlsx` with bytes flipped —
//! opening and reading every row ends in rows or an error, never a panic. Bounded: `PROPTEST_CASES`
//! `PROPTEST_CASES` (256 by default) per property.

use std::io::Write;

use nol_tabular::{Column, Encoding, Format, TableReader, TableWriter};
use proptest::prelude::*;

const COLUMNS: &[Column] = &[
    Column { key: "name", headers: &["姓名", "name"], required: true },
    Column { key: "id", headers: &["身份证号", "id"], required: false },
    Column { key: "school", headers: &["学校代码"], required: false },
];

/// Opens `bytes` as a file of `format` and reads every row; only panics matter.
fn read_all(bytes: &[u8], format: Format, encoding: Encoding) {
    let mut file = tempfile::Builder::new().suffix(format.extension()).tempfile().expect("temp file");
    file.write_all(bytes).expect("written");
    if let Ok(reader) = TableReader::open(file.path(), format, encoding, COLUMNS) {
        for row in reader.take(10_000) {
            let _ = row;
        }
    }
}

/// CSV-shaped text: header-like words, separators, quotes, line breaks, Chinese and digits.
fn csvish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("姓名".to_owned()),
        Just("身份证号".to_owned()),
        Just(",".to_owned()),
        Just("\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n".to_owned()),
        Just("\u{feff}".to_owned()),
        "[0-9X]{1,18}",
        "[\\u{4e00}-\\u{4eff}]{1,4}",
        ".{0,8}",
    ];
    proptest::collection::vec(token, 0..200).prop_map(|tokens| tokens.concat())
}

/// A valid `.xlsx` with a header and a few rows.
fn valid_xlsx() -> Vec<u8> {
    let header: Vec<String> = ["姓名", "身份证号", "学校代码"].iter().map(|text| (*text).to_owned()).collect();
    let mut writer = TableWriter::new(Format::Xlsx, Encoding::Utf8, &header).expect("writer");
    for index in 0..5 {
        writer.write_row(&[format!("学生{index}"), "11010519491231002X".to_owned(), "3201020001".to_owned()]).unwrap();
    }
    writer.finish().expect("xlsx")
}

proptest! {
    // No regression files; `PROPTEST_CASES` runs a longer campaign (256 cases per property here).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_as_csv_or_xlsx(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_all(&bytes, Format::Csv, Encoding::Auto);
        read_all(&bytes, Format::Csv, Encoding::Gbk);
        read_all(&bytes, Format::Xlsx, Encoding::Utf8);
    }

    #[test]
    fn csv_shaped_text_in_either_encoding(text in csvish()) {
        read_all(text.as_bytes(), Format::Csv, Encoding::Auto);
        read_all(text.as_bytes(), Format::Csv, Encoding::Utf8);
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        read_all(&gbk, Format::Csv, Encoding::Gbk);
    }

    #[test]
    fn an_xlsx_with_bytes_flipped(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let mut bytes = valid_xlsx();
        for (at, value) in flips {
            let index = at.index(bytes.len());
            bytes[index] = value;
        }
        read_all(&bytes, Format::Xlsx, Encoding::Utf8);
    }
}
