//! No resident ID number in clear anywhere it could leak: after a day's work across both
//! provinces — an import with a rejected row, pupils, cases, a hand-off with its written notice,
//! the cross-check and its suspects — every service log, every message in every province's
//! stream, a `pg_dump` of every province's database and every file the system hands out are
//! searched for valid resident ID numbers (a real region, a real birth date, a right check
//! digit). There must be none.

mod common;

use std::io::Read;

use common::{TestOptions, TestStack, handoffs, resident_id, resident_ids_in};
use nol_auth::Role;
use nol_import::{ImportTarget, collect_file};
use nol_proto::v1::{
    CaseFilter, ExportCasesRequest, ExportCheckItemsRequest, GetHandoffNoticeRequest, HandoffDirection, HandoffState,
    RunCrossCheckRequest,
};

/// The bytes of `\x…` hex strings in a `pg_dump` (bytea columns), decoded, so a number stored in
/// clear inside a binary column is found too.
fn bytea_in(dump: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for part in dump.split("\\\\x").skip(1) {
        let hex: String = part.chars().take_while(char::is_ascii_hexdigit).collect();
        bytes.extend(hex::decode(&hex[..hex.len() - hex.len() % 2]).unwrap_or_default());
        bytes.push(b'\n');
    }
    bytes
}

/// The text of every cell of every sheet of an `.xlsx`.
fn xlsx_text(bytes: &[u8]) -> Vec<u8> {
    use calamine::Reader;
    let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("an .xlsx");
    let mut text = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name).expect("a sheet");
        for row in range.rows() {
            for cell in row {
                text.extend(cell.to_string().into_bytes());
                text.push(b'\t');
            }
            text.push(b'\n');
        }
    }
    text
}

/// The text of a PDF (pdftotext, from poppler-utils).
fn pdf_text(bytes: &[u8]) -> Vec<u8> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    let out = std::process::Command::new("pdftotext").arg(file.path()).arg("-").output().expect("pdftotext runs");
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resident_id_in_clear_in_logs_messages_dumps_or_files() {
    let test = TestStack::start_with(TestOptions { log_to_files: true, ..TestOptions::default() }).await;
    let system = test.clients("320000", "320000", Role::System);
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let linquan = test.clients("340000", "341221", Role::Caseworker);
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let planted: Vec<String> = (60..66).map(|sequence| resident_id("320102", sequence)).collect();

    // An import with a rejected row (a school that does not exist) that holds a valid number.
    let mut csv = String::from("学校代码,姓名,年级,身份证号,户籍地\n");
    csv.push_str(&format!("3201020001,张一,5,{},320102\n", planted[0]));
    csv.push_str(&format!("3201020001,张二,5,{},320102\n", planted[1]));
    csv.push_str(&format!("9999999999,张三,5,{},320102\n", planted[2]));
    let pupils = dir.path().join("pupils.csv");
    std::fs::write(&pupils, csv).unwrap();
    let job = common::import(&system, ImportTarget::Pupils, &pupils).await.unwrap();
    assert_eq!((job.rows_imported, job.rows_rejected), (2, 1), "{job:?}");
    files.push(common::import_errors(&system, &job.job_id).await.unwrap());

    // The household register and the cross-check: suspects on the stream, items to export.
    let mut household = String::from("姓名,身份证号,户籍地,现住地\n");
    for (name, id) in ["王一", "王二", "王三"].iter().zip(&planted[3..]) {
        household.push_str(&format!("{name},{id},320102,320102\n"));
    }
    let register = dir.path().join("hukou.csv");
    std::fs::write(&register, household).unwrap();
    common::import(&system, ImportTarget::HouseholdRegister, &register).await.unwrap();
    system
        .registry
        .clone()
        .run_cross_check(RunCrossCheckRequest { region_code: String::new(), as_of_date: "2026-09-01".into() })
        .await
        .unwrap();
    let items = system.registry.clone().export_check_items(ExportCheckItemsRequest::default()).await.unwrap();
    files.push(collect_file(items.into_inner(), |part| (part.data, part.file_name)).await.unwrap());

    // A migrant child's case handed over to Anhui, with its written notice.
    let case = handoffs::migrant_case(&xuanwu, "随迁子女", 66, "341221").await;
    let handoff = handoffs::request(&xuanwu, &case.case_id, "341221").await.expect("requested");
    handoffs::delivered(&xuanwu, &linquan, &handoff.handoff_id).await;
    handoffs::accept(&linquan, &handoff.handoff_id).await.expect("accepted");
    handoffs::until(&xuanwu, &handoff.handoff_id, HandoffDirection::Outgoing, HandoffState::Completed).await;
    let notice = xuanwu
        .transfer
        .clone()
        .get_handoff_notice(GetHandoffNoticeRequest { handoff_id: handoff.handoff_id.clone() })
        .await
        .unwrap()
        .into_inner();
    files.push(collect_file(notice, |part| (part.data, part.file_name)).await.unwrap());
    handoffs::migrant_case(&xuanwu, "本地学生", 67, "320102").await;
    let cases = xuanwu
        .cases
        .clone()
        .export_cases(ExportCasesRequest {
            region_code: "320102".into(),
            filter: Some(CaseFilter::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    files.push(collect_file(cases, |part| (part.data, part.file_name)).await.unwrap());
    handoffs::settled_without_dead_letters(&test).await;

    let mut leaks: Vec<String> = Vec::new();
    let mut report = |place: &str, bytes: &[u8]| {
        for id in resident_ids_in(bytes) {
            leaks.push(format!("{place}: {}…", &id[..10]));
        }
    };
    // Every file handed out, read as a person would.
    for (name, bytes) in &files {
        report(name, bytes);
        if name.ends_with(".xlsx") {
            report(name, &xlsx_text(bytes));
        } else if name.ends_with(".pdf") {
            report(name, &pdf_text(bytes));
        }
    }
    // Every message in every province's stream, headers included.
    for (index, province) in ["320000", "340000"].into_iter().enumerate() {
        let server = &test.stack().nats[index];
        let client = nol_backbone::connect_nats(&server.client_url(), "pii-scan", server.client_tls()).await.unwrap();
        let js = nol_backbone::jetstream_context(client, std::time::Duration::from_secs(5));
        let stream_name = format!("{}_{province}", test.subject_prefix.to_ascii_uppercase());
        let mut stream = js.get_stream(&stream_name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        assert!(state.messages > 0, "{province}'s stream holds the day's events");
        for sequence in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(sequence).await else { continue };
            report(&format!("{province} stream #{sequence} {}", message.subject), &message.payload);
            report(&format!("{province} stream #{sequence} headers"), format!("{:?}", message.headers).as_bytes());
        }
    }
    // A dump of every province's database, bytea columns decoded.
    for province in ["320000", "340000"] {
        let url = &test.stack().province(province).database_url;
        let dump = std::process::Command::new("pg_dump").arg("--data-only").arg(url).output().expect("pg_dump runs");
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        let text = String::from_utf8_lossy(&dump.stdout).into_owned();
        assert!(text.contains("COPY"), "the dump has data");
        report(&format!("pg_dump of {province}"), text.as_bytes());
        report(&format!("pg_dump of {province} (bytea)"), &bytea_in(&text));
    }
    // Every service's log, and the NATS servers'.
    let logs = test.log_dir().expect("logs in files");
    let mut read = 0;
    for entry in walk(&logs).into_iter().chain(walk(&test.data_dir().join("nats"))) {
        if entry.extension().is_some_and(|extension| extension == "log") {
            let mut bytes = Vec::new();
            std::fs::File::open(&entry).unwrap().read_to_end(&mut bytes).unwrap();
            read += 1;
            report(&entry.display().to_string(), &bytes);
        }
    }
    assert!(read >= 8, "the services' logs were read ({read})");
    assert!(leaks.is_empty(), "resident ID numbers in clear:\n{}", leaks.join("\n"));
    // The scan finds what it looks for: the numbers the test planted, in the file it wrote.
    assert_eq!(resident_ids_in(&std::fs::read(&pupils).unwrap()).len(), 3);
    test.finish().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { found.extend(walk(&path)) } else { found.push(path) }
    }
    found
}
