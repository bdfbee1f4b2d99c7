//! The student registry through gRPC on the real stack: pupils and schools, statuses and
//! transfers, provisional identities, bulk imports of the files bureaus send (including files
//! written by other tools), and the cross-checks that find the children no one counted.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestStack, counts, eventually, resident_id};
use futures::StreamExt;
use nol_auth::Role;
use nol_import::{ImportTarget, collect_file, import_file};
use nol_proto::v1::*;
use nol_stack::Clients;
use nol_stack::synth::{SynthSpec, generate};
use nol_tabular::{Column, Encoding, Format, TableReader};
use tonic::Code;
use tonic_types::StatusExt;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/nol-tabular/tests/fixtures").join(name)
}

async fn import(clients: &Clients, target: ImportTarget, path: &Path) -> Result<ImportJob, tonic::Status> {
    common::import(clients, target, path).await
}

async fn import_with(clients: &Clients, path: &Path, encoding: TextEncoding) -> Result<ImportJob, tonic::Status> {
    import_file(clients, ImportTarget::Pupils, path, uuid::Uuid::now_v7(), encoding, |_| {}).await
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn pupil_count(test: &TestStack) -> i64 {
    counts::pupils(&test.database("320000", "registry").await).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pupils_schools_statuses_transfers_and_provisional_identities() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let registry = || xuanwu.registry.clone();
    let id = resident_id("341221", 41);
    let created = registry()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "陈晨".into(),
                resident_id: id.clone(),
                hukou_region_code: "341221".into(),
                school_code: "3201020001".into(),
                grade: 6,
                disability_grade: DisabilityGrade::Two as i32,
                registered_poor: true,
                poor_household_id: "340000-H-0007".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .pupil
        .unwrap();
    assert_eq!(created.school_name, "南京市玄武区示范小学");
    assert_eq!(created.enrollment_region_code, "320102", "the school's county");
    assert!(created.migrant && created.registered_poor && !created.identity_provisional);

    // Searches: by status, flags, severe disability, name and resident ID (blind index).
    let search = |request: ListPupilsRequest| {
        let mut registry = registry();
        async move { registry.list_pupils(request).await.unwrap().into_inner().pupils }
    };
    assert_eq!(search(ListPupilsRequest { severe_disability_only: true, ..Default::default() }).await.len(), 1);
    assert_eq!(search(ListPupilsRequest { registered_poor: Some(false), ..Default::default() }).await.len(), 0);
    assert_eq!(search(ListPupilsRequest { name_prefix: "陈".into(), ..Default::default() }).await.len(), 1);
    assert_eq!(search(ListPupilsRequest { resident_id: id.clone(), ..Default::default() }).await.len(), 1);
    assert_eq!(search(ListPupilsRequest { school_code: "3201040001".into(), ..Default::default() }).await.len(), 0);

    // A status change with its reason and date; a change the rules forbid is refused.
    let change = |status: EnrollmentStatus, reason: &str, date: &str| UpdatePupilStatusRequest {
        pupil_id: created.pupil_id.clone(),
        enrollment_status: status as i32,
        reason: reason.into(),
        effective_date: date.into(),
    };
    let dropped = registry()
        .update_pupil_status(change(EnrollmentStatus::DroppedOut, "连续两周未到校", "2026-11-02"))
        .await
        .unwrap();
    assert_eq!(dropped.into_inner().pupil.unwrap().enrollment_status, EnrollmentStatus::DroppedOut as i32);
    let same =
        registry().update_pupil_status(change(EnrollmentStatus::DroppedOut, "再次", "2026-11-03")).await.unwrap_err();
    assert_eq!(same.code(), Code::FailedPrecondition);
    let future =
        registry().update_pupil_status(change(EnrollmentStatus::Enrolled, "复学", "2099-01-01")).await.unwrap_err();
    assert_eq!(future.code(), Code::FailedPrecondition);
    assert!(future.message().contains("future"));
    let no_reason = registry().update_pupil_status(change(EnrollmentStatus::Enrolled, " ", "")).await.unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    registry().update_pupil_status(change(EnrollmentStatus::Enrolled, "劝返复学", "2026-11-20")).await.unwrap();

    // A transfer to a school in another county of the province.
    let moved = registry()
        .transfer_pupil(TransferPupilRequest {
            pupil_id: created.pupil_id.clone(),
            to_school_code: "3201040001".into(),
            reason: "随父母搬家".into(),
            effective_date: "2026-11-25".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .pupil
        .unwrap();
    assert_eq!((moved.school_code.as_str(), moved.enrollment_region_code.as_str()), ("3201040001", "320104"));
    let history = test
        .clients("320000", "320100", Role::Supervisor)
        .registry
        .clone()
        .list_pupil_status_changes(ListPupilStatusChangesRequest { pupil_id: created.pupil_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let steps: Vec<(i32, String)> =
        history.iter().map(|change| (change.to_status, change.to_school_code.clone())).collect();
    assert_eq!(
        steps,
        [
            (EnrollmentStatus::DroppedOut as i32, "3201020001".into()),
            (EnrollmentStatus::Enrolled as i32, "3201020001".into()),
            (EnrollmentStatus::Enrolled as i32, "3201040001".into()),
        ]
    );
    // 玄武区 no longer sees the pupil; 秦淮区 does.
    let gone = registry()
        .get_pupil(GetPupilRequest { pupil_id: created.pupil_id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::PermissionDenied);

    // A pupil without a resident ID number: provisional, listed until the number is set.
    let provisional = registry()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: "无证儿童".into(),
                birth_date: "2015-03-04".into(),
                sex: Sex::Female as i32,
                hukou_region_code: "320102".into(),
                school_code: "3201020001".into(),
                grade: 4,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .pupil
        .unwrap();
    assert!(provisional.identity_provisional);
    let issues =
        registry().list_data_quality_issues(ListDataQualityIssuesRequest::default()).await.unwrap().into_inner();
    assert_eq!(issues.pupils.len(), 1);
    let taken = registry()
        .set_pupil_resident_id(SetPupilResidentIdRequest {
            pupil_id: provisional.pupil_id.clone(),
            resident_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "that number belongs to another pupil");
    let own =
        nol_pii::ResidentId::from_parts("320102", chrono::NaiveDate::from_ymd_opt(2015, 3, 4).unwrap(), 42).unwrap();
    let fixed = registry()
        .set_pupil_resident_id(SetPupilResidentIdRequest {
            pupil_id: provisional.pupil_id.clone(),
            resident_id: own.expose().to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .pupil
        .unwrap();
    assert!(!fixed.identity_provisional);
    assert!(
        registry()
            .list_data_quality_issues(ListDataQualityIssuesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .pupils
            .is_empty()
    );

    // Schools: a second registration of a code is a conflict; an unknown school is named.
    let again = xuanwu.ensure_school("3201020001", "另一所学校", "320102").await;
    assert!(again.is_ok(), "ensure_school tolerates an existing code");
    let duplicate = registry()
        .create_school(CreateSchoolRequest {
            school: Some(School {
                school_code: "3201020001".into(),
                name: "另一所学校".into(),
                region_code: "320102".into(),
                level: SchoolLevel::Primary as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    // 王五 at a school not registered yet.
    let wang_wu = || CreatePupilRequest {
        pupil: Some(Pupil {
            full_name: "王五".into(),
            resident_id: resident_id("320102", 43),
            hukou_region_code: "320102".into(),
            school_code: "9999999999".into(),
            grade: 3,
            ..Default::default()
        }),
    };
    let unknown = registry().create_pupil(wang_wu()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(unknown.get_details_bad_request().unwrap().field_violations[0].field, "pupil.school_code");
    // The registry keeps the schools it looked up, not the codes it did not find: a school
    // registered a moment after a refusal is found on the next call.
    xuanwu.ensure_school("9999999999", "南京市玄武区新建小学", "320102").await.unwrap();
    let registered = registry().create_pupil(wang_wu()).await.unwrap().into_inner().pupil.unwrap();
    assert_eq!(
        (registered.school_name.as_str(), registered.enrollment_region_code.as_str()),
        ("南京市玄武区新建小学", "320102")
    );
    test.finish().await;
}

/// `CreatePupil`'s group commit: 30 registrations at once from two callers — ten children, each
/// sent three times (twice by a county's case worker, once by a school of another county, which
/// may not see the first county's record), and a child without a resident ID number sent twice.
/// Each child is registered exactly once; every other call is told it is registered already; each
/// pupil has exactly one event and one audit entry, the entry its own caller's; the audit chains
/// verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_at_once_register_each_child_once_with_its_event_and_its_callers_entry() {
    let test = TestStack::start().await;
    let county = test.clients("320000", "320102", Role::Caseworker);
    let school = test.school_clients("320000", "320104", "3201040001");
    let mut calls = Vec::new();
    for child in 0..10u16 {
        let number = resident_id("320102", 500 + child);
        for (clients, school_code) in [(&county, "3201020001"), (&school, "3201040001"), (&county, "3201020001")] {
            let pupil = Pupil {
                full_name: format!("同时登记{child}"),
                resident_id: number.clone(),
                hukou_region_code: "320102".into(),
                school_code: school_code.into(),
                grade: 2,
                ..Default::default()
            };
            calls.push((clients.registry.clone(), pupil));
        }
    }
    for _ in 0..2 {
        let pupil = Pupil {
            full_name: "同时登记无证".into(),
            birth_date: "2016-05-06".into(),
            sex: Sex::Male as i32,
            hukou_region_code: "320102".into(),
            school_code: "3201020001".into(),
            grade: 3,
            ..Default::default()
        };
        calls.push((county.registry.clone(), pupil));
    }
    let answers = futures::future::join_all(calls.into_iter().map(|(mut registry, pupil)| async move {
        let school_code = pupil.school_code.clone();
        let name = pupil.full_name.clone();
        let answer = registry.create_pupil(CreatePupilRequest { pupil: Some(pupil) }).await;
        (name, school_code, answer.map(|response| response.into_inner().pupil.unwrap()))
    }))
    .await;
    let mut registered = std::collections::BTreeMap::new();
    for (name, school_code, answer) in answers {
        match answer {
            Ok(pupil) => {
                assert_eq!(
                    (pupil.full_name.as_str(), pupil.school_code.as_str()),
                    (name.as_str(), school_code.as_str())
                );
                assert!(
                    registered.insert(name.clone(), (pupil.pupil_id, school_code)).is_none(),
                    "{name} registered twice"
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{name}: {status:?}");
                assert!(!status.message().is_empty());
            }
        }
    }
    assert_eq!(registered.len(), 11, "each child once: {registered:?}");
    assert_eq!(pupil_count(&test).await, 11);

    let database = test.database("320000", "registry").await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = $1")
        .bind(nol_events::PUPIL_REGISTERED.qualified())
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(events, 11, "one event a pupil");
    let entries: Vec<(String, String, String)> =
        sqlx::query_as("SELECT resource_id, actor, actor_role FROM audit_log WHERE action = 'pupil.create'")
            .fetch_all(&database)
            .await
            .unwrap();
    assert_eq!(entries.len(), 11, "one audit entry a pupil");
    for (name, (pupil_id, school_code)) in &registered {
        let entry =
            entries.iter().find(|(resource, _, _)| resource == pupil_id).unwrap_or_else(|| panic!("{name}'s entry"));
        let expected = if school_code == "3201040001" {
            ("school@3201040001", "school")
        } else {
            ("caseworker@320102", "caseworker")
        };
        assert_eq!((entry.1.as_str(), entry.2.as_str()), expected, "{name}: the entry names the caller who registered");
    }
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM pupil").fetch_one(&database).await.unwrap();
    println!("11 pupils committed in {transactions} transactions");
    database.close().await;

    let verified = tokio::process::Command::new(env!("CARGO_BIN_EXE_nol"))
        .args(["audit", "verify", "--schema", "registry", "--database-url"])
        .arg(&test.stack().province("320000").database_url)
        .env_remove("NOL_DATABASE_URL")
        .output()
        .await
        .expect("nol runs");
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}{}", String::from_utf8_lossy(&verified.stderr));
    test.finish().await;
}

const ERROR_COLUMNS: &[Column] = &[
    Column { key: "row", headers: &["错误行号"], required: true },
    Column { key: "column", headers: &["错误列"], required: true },
    Column { key: "reason", headers: &["错误原因"], required: true },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_read_the_files_bureaus_send_and_report_every_bad_row() {
    let test = TestStack::start().await;
    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    xuanwu.ensure_school("3201020002", "南京市玄武区第二小学", "320102").await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // An .xlsx written by openpyxl (columns in another order, a date cell, an ID typed as a number).
    let job = import(&xuanwu, ImportTarget::Pupils, &fixture("pupils-openpyxl.xlsx")).await.unwrap();
    assert_eq!((job.rows_read, job.rows_imported, job.rows_rejected), (4, 3, 1), "{job:?}");
    assert_eq!(job.errors[0].row, 5);
    assert!(job.errors[0].reason.contains("stored by Excel as a number"), "{:?}", job.errors);
    // The error file comes back as .xlsx, with the row, the column and the reason.
    let (name, bytes) = common::import_errors(&xuanwu, &job.job_id).await.unwrap();
    assert_eq!(name, "pupils-openpyxl.errors.xlsx");
    let errors_path = write(dir.path(), &name, &bytes);
    let mut reader = TableReader::open(&errors_path, Format::Xlsx, Encoding::Auto, ERROR_COLUMNS).unwrap();
    let columns = reader.columns();
    let row = reader.next().unwrap().unwrap();
    assert_eq!(columns.cell(&row, "row"), "5");
    assert_eq!(columns.cell(&row, "column"), "身份证号");
    assert_eq!(row.cells[1], "赵六", "the original cells come back too");

    // The same pupils as Excel saves CSV (GBK) and CSV UTF-8: nothing changes, twice.
    for name in ["pupils-excel-gbk.csv", "pupils-excel-utf8.csv"] {
        let job = import(&xuanwu, ImportTarget::Pupils, &fixture(name)).await.unwrap();
        assert_eq!((job.rows_read, job.rows_imported, job.rows_unchanged, job.rows_rejected), (3, 0, 3, 0), "{name}");
    }
    assert_eq!(pupil_count(&test).await, 3);

    // A GBK file sent as UTF-8 is refused with the reason; an empty file, a header-only file and
    // missing columns are told apart.
    let refused = import_with(&xuanwu, &fixture("pupils-excel-gbk.csv"), TextEncoding::Utf8).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("looks like GBK"), "{}", refused.message());
    assert_eq!(refused.get_details_bad_request().unwrap().field_violations[0].field, "header.encoding");
    let empty = import(&xuanwu, ImportTarget::Pupils, &write(dir.path(), "empty.csv", "")).await.unwrap_err();
    assert!(empty.message().contains("the file is empty"));
    let header_only = write(dir.path(), "header.csv", "姓名,身份证号,户籍地,学校代码,年级\n");
    let job = import(&xuanwu, ImportTarget::Pupils, &header_only).await.unwrap();
    assert_eq!((job.rows_read, job.message.as_str()), (0, "the file has a header and no rows"));
    let missing = import(&xuanwu, ImportTarget::Pupils, &write(dir.path(), "missing.csv", "姓名,年级\n张三,3\n"))
        .await
        .unwrap_err();
    assert!(missing.message().contains("身份证号"), "{}", missing.message());

    // A file with every kind of bad row, columns in yet another order: good rows land, each bad
    // row is named with its column and reason, nothing half-written.
    let good = resident_id("320102", 61);
    let also_good = resident_id("320102", 63);
    let mut wrong_check = resident_id("320102", 65);
    let last = wrong_check.pop().unwrap();
    wrong_check.push(if last == '1' { '2' } else { '1' });
    let mut csv = String::from("年级,学校代码,身份证号,姓名,户籍地\n");
    csv += &format!("3,3201020001,{good},好学生,320102\n");
    csv += &format!("3,3201020001,{wrong_check},错号,320102\n");
    csv += "3,3201020001,320102201302300017,日期,320102\n";
    csv += &format!("3,9999999999,{also_good},无校,320102\n");
    csv += &format!("3,3201020001,{also_good},无地,329999\n");
    csv += &format!("4,3201020001,{good},重复,320102\n");
    csv += &format!("3,3201040001,{also_good},外区,320104\n");
    csv += &format!("3,3201020001,{},{},320102\n", resident_id("320102", 67), "长".repeat(30_000));
    csv += &format!("5,3201020001,{also_good},也好,320102\n");
    let job = import(&xuanwu, ImportTarget::Pupils, &write(dir.path(), "mixed.csv", csv.as_bytes())).await.unwrap();
    let reasons: Vec<(i64, &str, &str)> =
        job.errors.iter().map(|error| (error.row, error.column.as_str(), error.reason.as_str())).collect();
    assert_eq!((job.rows_read, job.rows_imported, job.rows_rejected), (9, 2, 7), "{reasons:#?}");
    let expect = |row: i64, column: &str, fragment: &str| {
        assert!(
            reasons.iter().any(|(r, c, reason)| *r == row && *c == column && reason.contains(fragment)),
            "row {row} {column} {fragment}: {reasons:#?}"
        );
    };
    expect(3, "身份证号", "check digit");
    expect(4, "身份证号", "not a real date");
    expect(5, "学校代码", "not a registered school");
    expect(6, "户籍地", "not a code of the GB/T 2260");
    expect(7, "", "duplicate of row 2");
    expect(8, "学校代码", "outside your region");
    expect(9, "", "longer than 64 KiB");
    assert!(reasons.iter().all(|(_, _, reason)| !reason.contains(&good) && !reason.contains(&wrong_check)));
    assert_eq!(pupil_count(&test).await, 5);

    // A batch of new children is written by one COPY; one already registered fails it, and the
    // batch is written by the insert instead: the new child lands, the same school is unchanged,
    // another school is refused (人籍分离) and kept as a conflict, nothing of the failed COPY stays.
    let new_child = resident_id("320102", 69);
    let mut csv = String::from("姓名,身份证号,户籍地,学校代码,年级\n");
    csv += &format!("新生,{new_child},320102,3201020001,2\n");
    csv += &format!("好学生,{good},320102,3201020001,3\n");
    csv += &format!("也好,{also_good},320102,3201020002,5\n");
    let job = import(&xuanwu, ImportTarget::Pupils, &write(dir.path(), "again.csv", csv.as_bytes())).await.unwrap();
    assert_eq!((job.rows_read, job.rows_imported, job.rows_unchanged, job.rows_rejected), (3, 1, 1, 1), "{job:?}");
    assert_eq!((job.errors[0].row, job.errors[0].column.as_str()), (4, "身份证号"));
    assert!(job.errors[0].reason.contains("already registered at") && job.errors[0].reason.contains("3201020001"));
    assert_eq!(pupil_count(&test).await, 6);
    let registry = test.database("320000", "registry").await;
    let conflicts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM enrollment_conflict WHERE school_code = '3201020002'")
            .fetch_one(&registry)
            .await
            .unwrap();
    assert_eq!(conflicts, 1);

    // The pupil's school holds without a per-row foreign key (checked per statement): an insert
    // naming an unregistered school is refused whole, so is a change to one, and a school is never
    // deleted nor renumbered. Statements the service never runs, sent as any client could.
    let sqlstate = |error: sqlx::Error| error.as_database_error().and_then(|error| error.code()).unwrap().into_owned();
    let unregistered = sqlx::query(
        "INSERT INTO pupil (id, full_name, provisional_key, sex, enrollment_region, hukou_region, residence_region,
                            school_code, grade, migrant, enrollment_status, created_by)
         SELECT gen_random_uuid(), '无校', decode(md5(school), 'hex'), 1, '320102', '320102', '320102', school, 3, false,
                'enrolled', 'test'
           FROM unnest(ARRAY['3201020001', '3201029999']) AS school",
    )
    .execute(&registry)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(unregistered), "23503", "a pupil naming no school is a foreign key violation");
    let moved = sqlx::query("UPDATE pupil SET school_code = '3201029999' WHERE full_name = '新生'")
        .execute(&registry)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(moved), "23503");
    for statement in [
        "DELETE FROM school WHERE code = '3201020002'",
        "UPDATE school SET code = '3201020003' WHERE code = '3201020002'",
    ] {
        let refused = sqlx::query(statement).execute(&registry).await.unwrap_err();
        assert_eq!(sqlstate(refused), "23001", "{statement}");
    }
    assert_eq!(pupil_count(&test).await, 6, "nothing of the refused statements stayed");
    // GBK in, GBK out: the error file of a GBK file is GBK.
    let gbk_bad = encoding_rs::GBK
        .encode(&format!("姓名,身份证号,户籍地,学校代码,年级\n坏,{wrong_check},320102,3201020001,3\n"))
        .0
        .into_owned();
    let job = import(&xuanwu, ImportTarget::Pupils, &write(dir.path(), "bad-gbk.csv", gbk_bad)).await.unwrap();
    let (_, bytes) = common::import_errors(&xuanwu, &job.job_id).await.unwrap();
    let (text, _, malformed) = encoding_rs::GBK.decode(&bytes);
    assert!(!malformed && text.contains("错误原因") && text.contains("坏"));

    // Other provinces' callers and read-only roles may not import.
    let supervisor = test.clients("320000", "320000", Role::Supervisor);
    let denied = import(&supervisor, ImportTarget::Pupils, &fixture("pupils-excel-utf8.csv")).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    test.finish().await;
}

/// Three imports of the same file at once (a bureau's system retrying while its first upload
/// still runs): their batches meet on the same keys, and every child is registered once, every
/// row counted once, nothing refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_of_the_same_children_register_each_once() {
    let test = TestStack::start().await;
    let system = test.clients("320000", "320000", Role::System);
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec::scaled(nol_region::RegionCode::parse("320000").unwrap(), 100);
    let synthetic = generate(&spec, dir.path()).unwrap();
    import(&system, ImportTarget::Schools, &synthetic.schools_csv).await.unwrap();
    let jobs = futures::future::join_all((0..3).map(|_| {
        let (system, path) = (system.clone(), synthetic.pupils_csv.clone());
        async move { import(&system, ImportTarget::Pupils, &path).await }
    }))
    .await;
    let mut imported = 0;
    for job in jobs {
        let job = job.expect("every import finishes");
        assert_eq!(job.state, ImportState::Succeeded as i32, "{}", job.message);
        assert_eq!(job.rows_rejected, 0, "{:?}", job.errors);
        assert_eq!(job.rows_imported + job.rows_unchanged, spec.pupils as i64);
        imported += job.rows_imported;
    }
    assert_eq!(imported, spec.pupils as i64, "each child imported by exactly one of the three");
    assert_eq!(pupil_count(&test).await, spec.pupils as i64);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_interrupted_by_a_crash_resumes_without_duplicates() {
    let mut test = TestStack::start().await;
    let system = test.clients("320000", "320000", Role::System);
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec::scaled(nol_region::RegionCode::parse("320000").unwrap(), 25);
    let synthetic = generate(&spec, dir.path()).unwrap();
    import(&system, ImportTarget::Schools, &synthetic.schools_csv).await.unwrap();
    let job_id = uuid::Uuid::now_v7();
    let first = {
        let system = system.clone();
        let path = synthetic.pupils_csv.clone();
        tokio::spawn(async move {
            import_file(&system, ImportTarget::Pupils, &path, job_id, TextEncoding::Unspecified, |_| {}).await
        })
    };
    eventually("the first batches to commit", || {
        let mut registry = system.registry.clone();
        async move {
            let job = registry
                .get_import_job(GetImportJobRequest { job_id: job_id.to_string() })
                .await?
                .into_inner()
                .job
                .unwrap();
            Ok((job.rows_read >= 5_000).then_some(()))
        }
    })
    .await;
    // The registry dies mid-import.
    test.stack_mut().province_mut("320000").registry.kill().await.unwrap();
    assert!(first.await.unwrap().is_err(), "the import broke off");
    test.stack_mut().province_mut("320000").registry.restart().await.unwrap();
    let committed_before = pupil_count(&test).await;
    assert!(committed_before > 0 && committed_before < spec.pupils as i64, "{committed_before}");
    // The same job again: it resumes after the last committed row.
    let job =
        import_file(&system, ImportTarget::Pupils, &synthetic.pupils_csv, job_id, TextEncoding::Unspecified, |_| {})
            .await
            .unwrap();
    assert_eq!(job.state, ImportState::Succeeded as i32);
    assert_eq!(
        (job.rows_read, job.rows_imported, job.rows_rejected),
        (spec.pupils as i64, spec.pupils as i64, 0),
        "{job:?}"
    );
    assert_eq!(pupil_count(&test).await, spec.pupils as i64, "every pupil once");
    println!(
        "resumed import: {committed_before} rows committed before the crash, {} after",
        spec.pupils as i64 - committed_before
    );
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_check_finds_the_children_no_one_counted() {
    let test = TestStack::start().await;
    let system = test.clients("320000", "320000", Role::System);
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec::scaled(nol_region::RegionCode::parse("320000").unwrap(), 200);
    let synthetic = generate(&spec, dir.path()).unwrap();
    for (target, path) in [
        (ImportTarget::Schools, &synthetic.schools_csv),
        (ImportTarget::Pupils, &synthetic.pupils_csv),
        (ImportTarget::HouseholdRegister, &synthetic.household_csv),
        (ImportTarget::PovertyRegistry, &synthetic.poverty_csv),
    ] {
        let job = import(&system, target, path).await.unwrap();
        assert_eq!(job.rows_rejected, 0, "{target:?}: {:?}", job.errors);
    }
    let run = || {
        let mut registry = system.registry.clone();
        async move {
            registry
                .run_cross_check(RunCrossCheckRequest { region_code: String::new(), as_of_date: "2026-09-01".into() })
                .await
                .unwrap()
                .into_inner()
                .run
                .unwrap()
        }
    };
    let first = run().await;
    // The children checked, as the register holds them (the run reads the counts kept beside it).
    let registry = test.database("320000", "registry").await;
    let school_age = |region: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM household_member WHERE id_problem IS NULL
                AND birth_date BETWEEN '2010-09-02' AND '2020-09-01' AND responsible_region LIKE $1 || '%'",
        )
        .bind(region)
        .fetch_one(&registry)
    };
    assert_eq!(first.children_checked, school_age("32").await.unwrap());
    let found = |kind: &str| first.found.get(kind).copied().unwrap_or(0);
    assert_eq!(found("out_of_school"), spec.out_of_school as i64, "{:?}", first.found);
    assert_eq!(found("invalid_resident_id"), spec.bad_ids as i64);
    assert_eq!(
        found("poor_flag_unconfirmed") + found("poor_flag_missing"),
        (synthetic.planted_flag_missing.len() + synthetic.planted_flag_unconfirmed.len()) as i64
    );
    assert_eq!(first.opened, first.found.values().sum::<i64>());
    // More checks at once than the registry's pool holds connections (each takes two): they take
    // turns, and each finds what the first found.
    let again = futures::future::join_all((0..5).map(|_| run())).await;
    for rerun in &again {
        assert_eq!(rerun.found, first.found);
        assert_eq!(rerun.opened, 0, "nothing new to open");
    }

    // Every planted child is among the suspects, and nobody else (recall and precision 100 %).
    let items = system
        .registry
        .clone()
        .list_check_items(ListCheckItemsRequest {
            kind: CheckItemKind::OutOfSchool as i32,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let mut masked: Vec<String> = items.iter().map(|item| item.resident_id_masked.clone()).collect();
    let mut planted: Vec<String> =
        synthetic.planted_out_of_school.iter().map(|id| nol_pii::ResidentId::parse(id).unwrap().masked()).collect();
    masked.sort();
    planted.sort();
    assert_eq!(masked, planted);

    // Each suspect went to the case service's ledger as an event; the number never in clear.
    let scheme = nol_events::SubjectScheme::new(&test.subject_prefix).unwrap();
    let subject = format!("{}.320000.evt.registry.pupil_suspected_out_of_school.*", scheme.prefix());
    let events = suspects_published(&test, &subject).await;
    assert_eq!(events.len(), spec.out_of_school);
    for body in &events {
        for planted_id in &synthetic.planted_out_of_school {
            assert!(!body.windows(planted_id.len()).any(|window| window == planted_id.as_bytes()));
        }
    }

    // Closing needs an outcome and, for "enrolled elsewhere", which school.
    let item = items[0].clone();
    let close = |outcome: CheckOutcome, detail: &str| CloseCheckItemRequest {
        item_id: item.item_id.clone(),
        outcome: outcome as i32,
        outcome_detail: detail.into(),
    };
    let caseworker = test.clients("320000", &item.region_code, Role::Caseworker);
    let vague =
        caseworker.registry.clone().close_check_item(close(CheckOutcome::EnrolledElsewhere, "")).await.unwrap_err();
    assert_eq!(vague.get_details_bad_request().unwrap().field_violations[0].field, "outcome_detail");
    let other_county = if item.region_code == "320102" { "320104" } else { "320102" };
    let outsider = test.clients("320000", other_county, Role::Caseworker);
    let denied = outsider.registry.clone().close_check_item(close(CheckOutcome::Deceased, "")).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let closed = caseworker
        .registry
        .clone()
        .close_check_item(close(CheckOutcome::EnrolledElsewhere, "上海市某小学, 2026年9月入学"))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    assert!(!closed.open);

    // A re-run keeps the closed item closed and publishes nothing new.
    let second = run().await;
    assert_eq!((second.opened, second.kept_closed), (0, 1));
    assert_eq!(second.still_open, first.opened - 1);
    assert_eq!(suspects_published(&test, &subject).await.len(), spec.out_of_school);

    // Changed data reopens it: the family moved (a new household register entry).
    let moved_id = nol_pii::ResidentId::parse(
        synthetic
            .planted_out_of_school
            .iter()
            .find(|id| nol_pii::ResidentId::parse(id).unwrap().masked() == item.resident_id_masked)
            .unwrap(),
    )
    .unwrap();
    let moved = format!(
        "姓名,身份证号,户籍地,现住地\n{},{},{},{}\n",
        item.full_name,
        moved_id.expose(),
        item.region_code,
        other_county
    );
    import(&system, ImportTarget::HouseholdRegister, &write(dir.path(), "moved.csv", moved)).await.unwrap();
    let third = run().await;
    assert_eq!(third.opened, 1, "{third:?}");
    assert_eq!(third.children_checked, school_age("32").await.unwrap());
    // One county's run counts its own children: the moved child now among other_county's.
    let county = system
        .registry
        .clone()
        .run_cross_check(RunCrossCheckRequest { region_code: other_county.into(), as_of_date: "2026-09-01".into() })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let in_county = school_age(other_county).await.unwrap();
    assert_eq!(county.children_checked, in_county);
    assert!(in_county > 0);
    assert_eq!(suspects_published(&test, &subject).await.len(), spec.out_of_school + 1);

    // The list exports as .xlsx for the bureau.
    let stream =
        system.registry.clone().export_check_items(ExportCheckItemsRequest::default()).await.unwrap().into_inner();
    let (name, bytes) = collect_file(stream, |part| (part.data, part.file_name)).await.unwrap();
    assert!(name.ends_with(".xlsx"));
    let path = write(dir.path(), &name, bytes);
    let columns = [Column { key: "kind", headers: &["类型kind"], required: true }];
    let rows = TableReader::open(&path, Format::Xlsx, Encoding::Auto, &columns).unwrap().count();
    assert_eq!(rows as i64, third.found.values().sum::<i64>(), "every item is open again");
    println!(
        "cross-check of {} school-age children: {:?}; re-run kept 1 closed; changed data reopened it",
        first.children_checked, first.found
    );
    test.finish().await;
}

/// The bodies of the suspected-out-of-school events in Jiangsu's stream.
async fn suspects_published(test: &TestStack, filter: &str) -> Vec<Vec<u8>> {
    let client =
        nol_backbone::connect_nats(&test.stack().nats[0].client_url(), "test", test.stack().nats[0].client_tls())
            .await
            .unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(format!("{}_320000", test.subject_prefix.to_uppercase())).await.unwrap();
    nol_stack::eventually("the relay to publish", Duration::from_secs(30), || async {
        let unsent = counts::registry_unsent(&test.database("320000", "registry").await).await?;
        Ok((unsent == 0).then_some(()))
    })
    .await
    .unwrap();
    let mut info = stream.info_with_subjects(filter).await.unwrap();
    let mut count = 0usize;
    while let Some(subject) = info.next().await {
        count += subject.unwrap().1;
    }
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap().take(count);
    let mut bodies = Vec::new();
    while let Some(message) = messages.next().await {
        bodies.push(message.unwrap().payload.to_vec());
    }
    bodies
}
