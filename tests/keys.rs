//! Keys at rest on the real stack: each service holds only its own key folder; a deployment of
//! before (one `data.key` for the province) is split and its v1 rows stay readable; `nol keys
//! rotate` and a reload make new writes use the new key, the services' re-encryption brings every
//! row to it, every read still works (a pupil's and a case's full view, the cross-check's suspect
//! through the event key), and the old key is then retired; a ciphertext copied into another
//! row does not decrypt.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::cases::Child;
use common::{TestOptions, TestStack, eventually, resident_id};
use nol_auth::Role;
use nol_import::ImportTarget;
use nol_pii::{DataKey, Keyring};
use nol_proto::v1::*;
use nol_stack::Clients;
use sqlx::{PgPool, Row};

/// `nol keys ARGS… --data DATA`, which must succeed; its output.
fn nol_keys(data: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nol"))
        .arg("keys")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("nol runs");
    assert!(output.status.success(), "nol keys {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every ciphertext of `table` by (version, key id): v1 is (1, 0).
async fn ciphertexts(database: &PgPool, table: &str) -> BTreeMap<(u8, u32), usize> {
    let query = format!("SELECT resident_id_cipher FROM {table} WHERE resident_id_cipher IS NOT NULL");
    let mut found = BTreeMap::new();
    for row in sqlx::query(sqlx::AssertSqlSafe(query)).fetch_all(database).await.unwrap() {
        let cipher: Vec<u8> = row.get(0);
        *found.entry((cipher[0], Keyring::key_id_of(&cipher).unwrap())).or_default() += 1;
    }
    found
}

const REGISTRY_TABLES: [&str; 3] = ["pupil", "household_member", "check_item"];
const CASES_TABLES: [&str; 2] = ["dropout_case", "suspect"];

/// Waits until every ciphertext of the tables is v2 under key `id`.
async fn all_under(registry: &PgPool, cases: &PgPool, id: u32) {
    eventually(&format!("every row under key {id}"), || async move {
        let mut all = Vec::new();
        for table in REGISTRY_TABLES {
            all.push((table, ciphertexts(registry, table).await));
        }
        for table in CASES_TABLES {
            all.push((table, ciphertexts(cases, table).await));
        }
        Ok(all.iter().all(|(_, found)| !found.is_empty() && found.keys().all(|key| *key == (2, id))).then_some(()))
    })
    .await
}

async fn import_household(system: &Clients, dir: &Path, name: &str, id: &str) {
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, format!("姓名,身份证号,户籍地,现住地\n{name},{id},320102,320102\n")).unwrap();
    let job = common::import(system, ImportTarget::HouseholdRegister, &path).await.unwrap();
    assert_eq!(job.rows_rejected, 0, "{:?}", job.errors);
    system
        .registry
        .clone()
        .run_cross_check(RunCrossCheckRequest { region_code: String::new(), as_of_date: "2026-09-01".into() })
        .await
        .unwrap();
}

/// The cross-check's suspect named `name` in the case service, read in full.
async fn suspect_in_full(clients: &Clients, name: &str) -> String {
    let name = name.to_owned();
    let suspect = eventually("the cross-check's suspect in the case service", || {
        let (clients, name) = (clients.clone(), name.clone());
        async move {
            let listed = clients
                .suspects
                .clone()
                .list_suspects(ListSuspectsRequest { page_size: 100, ..Default::default() })
                .await?
                .into_inner()
                .suspects;
            Ok(listed.into_iter().find(|item| item.child.as_ref().is_some_and(|child| child.full_name == name)))
        }
    })
    .await;
    let full = GetSuspectRequest { suspect_id: suspect.suspect_id, view: SuspectView::Full as i32 };
    clients.suspects.clone().get_suspect(full).await.unwrap().into_inner().suspect.unwrap().child.unwrap().resident_id
}

async fn pupil_in_full(clients: &Clients, pupil_id: &str) -> String {
    let full = GetPupilRequest { pupil_id: pupil_id.to_owned(), view: PupilView::Full as i32 };
    clients.registry.clone().get_pupil(full).await.unwrap().into_inner().pupil.unwrap().resident_id
}

async fn case_in_full(clients: &Clients, case_id: &str) -> String {
    let full = GetCaseRequest { case_id: case_id.to_owned(), view: CaseView::Full as i32 };
    clients.cases.clone().get_case(full).await.unwrap().into_inner().dropout_case.unwrap().child.unwrap().resident_id
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_and_every_row_follows_from_a_deployment_of_before() {
    let test = TestStack::start_with(TestOptions {
        keys_of_before: true,
        // Re-encryption at start and on a change of the keys only, so the v1 rows below stay
        // until the rotation.
        extra_env: BTreeMap::from([("NOL_REENCRYPT_SECS".to_owned(), "3600".to_owned())]),
        log_to_files: true,
        ..TestOptions::default()
    })
    .await;
    let data = test.data_dir();
    let province = data.join("keys").join("320000");
    let jiangsu = test.stack().province("320000");

    // Each service reads a folder of its own, with only the keys it uses.
    let token_files = ["auth.pub.pem"];
    assert_eq!(files(&province.join("registry")), ["auth.pub.pem", "data", "event", "index.key"]);
    assert_eq!(files(&province.join("cases")), ["auth.pub.pem", "data", "event", "index.key", "seal.key"]);
    assert_eq!(files(&province.join("transfer")), ["auth.pub.pem", "peers", "seal.key", "sign.key"]);
    assert_eq!(files(&province.join("reporting")), token_files);

    let xuanwu = test.clients("320000", "320102", Role::Caseworker);
    let system = test.clients("320000", "320000", Role::System);
    let dir = tempfile::tempdir().unwrap();
    let registry_db = test.database("320000", "registry").await;
    let cases_db = test.database("320000", "cases").await;

    // Rows as a deployment of before wrote them: v1 under the province's one data key, bound to
    // the column only.
    let first = Child::Xiaoyi.open_case(&xuanwu).await;
    let first_id = resident_id("320102", 11);
    let legacy = DataKey::from_base64(&std::fs::read_to_string(province.join("data.key")).unwrap()).unwrap();
    sqlx::query("UPDATE pupil SET resident_id_cipher = $1 WHERE id = $2::uuid")
        .bind(legacy.encrypt(first_id.as_bytes(), "registry.pupil.resident_id"))
        .bind(&first.pupil_id)
        .execute(&registry_db)
        .await
        .unwrap();
    sqlx::query("UPDATE dropout_case SET resident_id_cipher = $1 WHERE id = $2::uuid")
        .bind(legacy.encrypt(first_id.as_bytes(), "cases.dropout_case.resident_id"))
        .bind(&first.case_id)
        .execute(&cases_db)
        .await
        .unwrap();
    assert_eq!(ciphertexts(&registry_db, "pupil").await, BTreeMap::from([((1, 0), 1)]));
    assert_eq!(pupil_in_full(&xuanwu, &first.pupil_id).await, first_id, "a v1 row is read");
    assert_eq!(case_in_full(&xuanwu, &first.case_id).await, first_id);
    // The registry's number reaches the case service under the event key.
    let household_id = resident_id("320102", 301);
    import_household(&system, dir.path(), "赵一", &household_id).await;
    assert_eq!(suspect_in_full(&xuanwu, "赵一").await, household_id);
    assert_eq!(ciphertexts(&registry_db, "household_member").await, BTreeMap::from([((2, 0), 1)]));

    // Rotate: each of the registry and the case service gets a key of its own, and the event key
    // is rotated for both; the services read them on SIGHUP.
    let rotated = nol_keys(&data, &["rotate", "--province", "320000"]);
    assert!(rotated.contains("registry: data key 1 is current"), "{rotated}");
    assert!(rotated.contains("cases: data key 1 is current"), "{rotated}");
    nol_keys(&data, &["rotate", "--province", "320000", "--keys", "event"]);
    let registry_key = std::fs::read_to_string(province.join("registry/data/1.key")).unwrap();
    assert_ne!(registry_key, std::fs::read_to_string(province.join("cases/data/1.key")).unwrap());
    jiangsu.reload_peers();

    // The re-encryption brings every row — the v1 ones included — to the new key, and says so:
    // in the log and in the gauge `nol_rows_under_old_keys`.
    all_under(&registry_db, &cases_db, 1).await;
    for service in ["registry", "cases"] {
        let log = test.log_dir().unwrap().join(format!("320000-{service}.log"));
        eventually(&format!("the {service} logs that the old keys may be retired"), || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Ok(text
                    .lines()
                    .any(|line| line.contains("every row is under the current key") && line.contains("current_key=1"))
                    .then_some(()))
            }
        })
        .await;
        let process = match service {
            "registry" => &jiangsu.registry,
            _ => &jiangsu.cases,
        };
        nol_tls::install_crypto_provider();
        let metrics_url = format!("http://{}/metrics", process.metrics_addr);
        let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        let gauge = metrics.lines().find(|line| line.starts_with("nol_rows_under_old_keys{")).unwrap_or_default();
        assert!(gauge.ends_with(" 0"), "{service}: {gauge}");
    }
    // New writes use it, and every read still works.
    let second = Child::Xiaoer.open_case(&xuanwu).await;
    let second_id = resident_id("320102", 13);
    assert_eq!(pupil_in_full(&xuanwu, &first.pupil_id).await, first_id);
    assert_eq!(pupil_in_full(&xuanwu, &second.pupil_id).await, second_id);
    assert_eq!(case_in_full(&xuanwu, &first.case_id).await, first_id);
    assert_eq!(case_in_full(&xuanwu, &second.case_id).await, second_id);
    assert_eq!(suspect_in_full(&xuanwu, "赵一").await, household_id);
    let later_id = resident_id("320102", 303);
    import_household(&system, dir.path(), "赵二", &later_id).await;
    assert_eq!(suspect_in_full(&xuanwu, "赵二").await, later_id, "an event under the new event key");
    all_under(&registry_db, &cases_db, 1).await;

    // Key 0 retired: nothing needs it any more.
    nol_keys(&data, &["retire", "--province", "320000", "--service", "registry", "--id", "0"]);
    nol_keys(&data, &["retire", "--province", "320000", "--service", "cases", "--id", "0"]);
    let status = nol_keys(&data, &["status", "--province", "320000"]);
    assert!(status.contains("320000 registry data: keys [1], current 1"), "{status}");
    assert!(status.contains("320000 cases data: keys [1], current 1"), "{status}");
    assert!(status.contains("320000 cases event: keys [0, 1], current 1"), "{status}");
    jiangsu.reload_peers();
    eventually("key 0 no longer held", || async {
        Ok(std::fs::read_dir(province.join("registry/data")).unwrap().count().eq(&1).then_some(()))
    })
    .await;
    assert_eq!(pupil_in_full(&xuanwu, &first.pupil_id).await, first_id);
    assert_eq!(case_in_full(&xuanwu, &first.case_id).await, first_id);
    assert_eq!(suspect_in_full(&xuanwu, "赵二").await, later_id);

    // A ciphertext copied into another child's row does not decrypt there (the row is bound).
    sqlx::query(
        "UPDATE pupil SET resident_id_cipher = (SELECT resident_id_cipher FROM pupil WHERE id = $1::uuid)
          WHERE id = $2::uuid",
    )
    .bind(&first.pupil_id)
    .bind(&second.pupil_id)
    .execute(&registry_db)
    .await
    .unwrap();
    assert_eq!(pupil_in_full(&xuanwu, &second.pupil_id).await, "", "moved to another row, it does not open");
    assert_eq!(pupil_in_full(&xuanwu, &first.pupil_id).await, first_id);
    test.finish().await;
}
