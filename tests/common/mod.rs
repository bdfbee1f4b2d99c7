//! What the system tests share: a two-province stack of real processes on free ports, with its
//! own databases, NATS servers and subject prefix, torn down at the end.
#![allow(dead_code)]

pub mod assistance;
pub mod cases;
pub mod counts;
pub mod handoffs;
pub mod web;

use std::time::Duration;

use nol_auth::Role;
use nol_region::RegionCode;
use nol_stack::postgres;
use nol_stack::{Clients, ServicePorts, Stack, StackSettings};

/// What a test may change about its stack.
#[derive(Default, Clone)]
pub struct TestOptions {
    pub cuttable_link: bool,
    pub extra_env: std::collections::BTreeMap<String, String>,
    /// Another PostgreSQL server (a cluster the test owns), instead of the machine's.
    pub admin_database_url: Option<String>,
    /// Provinces after Jiangsu and Anhui (each a leaf of the exchange's hub), e.g. 河南省 410000.
    pub more_provinces: Vec<&'static str>,
    /// Processes per service (0 or 1: one).
    pub replicas: usize,
    /// Service logs in files under the stack's folder (`TestStack::log_dir`), not the test's output.
    pub log_to_files: bool,
    /// Each province's keys as a deployment of before kept them (one folder for its four
    /// services: `data.key`, `seal.key`, `sign.key`), which the stack splits per service.
    pub keys_of_before: bool,
}

fn settings_admin(options: &TestOptions) -> String {
    options.admin_database_url.clone().unwrap_or_else(postgres::default_admin_url)
}

pub struct TestStack {
    stack: Option<Stack>,
    pub subject_prefix: String,
    /// Every province of the stack, Jiangsu first.
    pub provinces: Vec<&'static str>,
    pub database_prefix: String,
    admin_url: String,
    log_to_files: bool,
    _dir: tempfile::TempDir,
}

impl TestStack {
    /// Jiangsu (320000) and Anhui (340000), four services each, linked through the exchange's hub.
    pub async fn start() -> TestStack {
        TestStack::start_with(TestOptions::default()).await
    }

    /// As [`TestStack::start`], with a cuttable link, more settings, or another PostgreSQL server.
    pub async fn start_with(options: TestOptions) -> TestStack {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let dir = tempfile::tempdir().expect("temp dir");
        let subject_prefix = format!("t{id}");
        let database_prefix = format!("nol_t{id}");
        let provinces: Vec<&'static str> =
            ["320000", "340000"].into_iter().chain(options.more_provinces.iter().copied()).collect();
        if options.keys_of_before {
            for province in &provinces {
                let folder = dir.path().join("keys").join(province);
                std::fs::create_dir_all(&folder).expect("key folder");
                std::fs::write(folder.join("data.key"), nol_pii::DataKey::generate_base64()).expect("data.key");
                std::fs::write(folder.join("seal.key"), nol_pii::SealKeyPair::generate().secret_base64())
                    .expect("seal.key");
                std::fs::write(folder.join("sign.key"), nol_pii::ExchangeSigningKey::generate().secret_base64())
                    .expect("sign.key");
            }
        }
        let settings = StackSettings {
            binary: env!("CARGO_BIN_EXE_nol").into(),
            data_dir: dir.path().to_path_buf(),
            provinces: provinces.iter().map(|province| (code(province), ServicePorts::default(), None)).collect(),
            admin_database_url: options.admin_database_url.clone().unwrap_or_else(postgres::default_admin_url),
            database_prefix: database_prefix.clone(),
            subject_prefix: subject_prefix.clone(),
            ack_wait: Duration::from_secs(5),
            log_to_files: options.log_to_files,
            hub_leaf_port: None,
            cuttable_link: options.cuttable_link,
            extra_env: small_pools(&options.extra_env, provinces.len() * 4 * options.replicas.max(1)),
            replicas: options.replicas.max(1),
        };
        // The roles of test databases a killed run left behind (they outlive their database).
        if let Err(error) = postgres::drop_orphan_roles(&settings.admin_database_url, "nol_t").await {
            eprintln!("orphan roles not dropped: {error:#}");
        }
        let stack = Stack::start(settings).await.expect("two-province stack starts");
        seed_schools(&stack).await;
        TestStack {
            stack: Some(stack),
            subject_prefix,
            provinces,
            database_prefix,
            admin_url: settings_admin(&options),
            log_to_files: options.log_to_files,
            _dir: dir,
        }
    }

    /// A province joins the running stack by configuration alone (`Stack::add_province`): its
    /// keys and the hub's user for it are added; nothing running restarts.
    pub async fn add_province(&mut self, province: &'static str) {
        // Listed first, so its database is dropped even if it fails to start.
        self.provinces.push(province);
        self.stack_mut().add_province(code(province), ServicePorts::default()).await.expect("the province joins");
    }

    /// The stack's folder: keys, NATS stores and, with `log_to_files`, logs.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().to_path_buf()
    }

    /// Where the services write their logs, when the test asked for files.
    pub fn log_dir(&self) -> Option<std::path::PathBuf> {
        self.log_to_files.then(|| self._dir.path().join("log"))
    }

    pub fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("stack running")
    }

    pub fn stack_mut(&mut self) -> &mut Stack {
        self.stack.as_mut().expect("stack running")
    }

    /// Clients of `province`'s services for a caller of `region` in `role`.
    pub fn clients(&self, province: &str, region: &str, role: Role) -> Clients {
        let token = self.token(region, role);
        Clients::for_province(self.stack().province(province), &token).expect("clients")
    }

    pub fn token(&self, region: &str, role: Role) -> String {
        self.stack()
            .keys
            .token(&format!("{role}@{region}"), code(region), role, Duration::from_secs(600))
            .expect("token")
    }

    /// Clients of `province`'s services for a school of `region`: role school, the token naming
    /// `school_code` (a school sees and changes its own pupils only).
    pub fn school_clients(&self, province: &str, region: &str, school_code: &str) -> Clients {
        Clients::for_province(self.stack().province(province), &self.school_token(region, school_code))
            .expect("clients")
    }

    pub fn school_token(&self, region: &str, school_code: &str) -> String {
        self.stack()
            .keys
            .school_token(&format!("school@{school_code}"), code(region), school_code, Duration::from_secs(600))
            .expect("token")
    }

    /// A connection to `province`'s database, in `schema` (and its audit schema), as the admin.
    pub async fn database(&self, province: &str, schema: &str) -> sqlx::PgPool {
        let url = &self.stack().province(province).database_url;
        nol_runtime::database::connect(url, schema, 2).await.expect("database")
    }

    /// Stops everything and drops the databases.
    pub async fn finish(mut self) {
        if let Some(stack) = self.stack.take() {
            stack.destroy().await.expect("stack stops cleanly");
        }
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if self.stack.is_none() {
            return;
        }
        // After a failed assertion `finish` never ran: drop the databases (and their roles) anyway.
        let prefix = self.database_prefix.clone();
        let provinces = self.provinces.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                for province in provinces {
                    let _ =
                        postgres::drop_database(&postgres::default_admin_url(), &format!("{prefix}_{province}")).await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

/// The test's settings, with each of its `services` processes holding at most 4 database
/// connections, or 3 in a stack of more than eight, unless the test says otherwise.
///
/// The tests must pass on a fresh machine, whose PostgreSQL takes 100 connections (97 for roles
/// that are not superusers), with nextest running two tests at once. Stacks of more than eight
/// processes run one at a time (the test group `stacks-of-many`, `.config/nextest.toml`), so the
/// most at once is one of those (16 × 3 = 48) and one of eight (8 × 4 = 32), plus each reporting
/// service's listener and the tests' own. Three is the floor: a consumer's transaction may take
/// a second connection (the notice number's own short transaction) while the relay holds a third.
fn small_pools(
    extra: &std::collections::BTreeMap<String, String>,
    services: usize,
) -> std::collections::BTreeMap<String, String> {
    let mut env = extra.clone();
    let pool = if services > 8 { "3" } else { "4" };
    env.entry("NOL_DATABASE_POOL_SIZE".to_owned()).or_insert_with(|| pool.to_owned());
    // Exports of a few rows still cross pages: the paging is what the tests see.
    env.entry("NOL_EXPORT_PAGE_ROWS".to_owned()).or_insert_with(|| "3".to_owned());
    env
}

pub fn code(text: &str) -> RegionCode {
    RegionCode::parse(text).expect("region code")
}

/// Waits for a condition through the API, failing the test after 30 s.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    nol_stack::eventually(what, Duration::from_secs(30), probe).await.unwrap_or_else(|error| panic!("{error:#}"))
}

/// A valid resident ID number born in `region` on 2013-05-02 with sequence `sequence`.
pub fn resident_id(region: &str, sequence: u16) -> String {
    nol_pii::ResidentId::from_parts(region, chrono::NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), sequence)
        .unwrap()
        .expose()
        .to_owned()
}

/// Schools every test may enrol pupils at: 3201020001 in 南京市玄武区 (320102) and 3201040001 in
/// 秦淮区 (320104).
pub async fn seed_schools(stack: &Stack) {
    let token = stack.keys.token("seed", code("320000"), Role::System, Duration::from_secs(600)).expect("token");
    let clients = Clients::for_province(stack.province("320000"), &token).expect("clients");
    for (school_code, name, region) in
        [("3201020001", "南京市玄武区示范小学", "320102"), ("3201040001", "南京市秦淮区实验小学", "320104")]
    {
        clients.ensure_school(school_code, name, region).await.expect("school registered");
    }
}

/// A rule clock the services read through `NOL_CLOCK_FILE`: the test moves time by rewriting it.
pub struct RuleClock {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl RuleClock {
    /// A clock at `start`, an RFC 3339 instant such as `2027-03-01T09:00:00+08:00`.
    pub fn at(start: &str) -> RuleClock {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("now");
        std::fs::write(&path, start).expect("clock file");
        RuleClock { _dir: dir, path }
    }

    /// Moves the services' rule time to `instant`.
    pub fn set(&self, instant: &str) {
        std::fs::write(&self.path, instant).expect("clock file");
    }

    /// The stack settings that make the services read this clock.
    pub fn options(&self) -> TestOptions {
        let mut options = TestOptions::default();
        options.extra_env.insert("NOL_CLOCK_FILE".into(), self.path.display().to_string());
        options
    }
}

/// Registers a pupil of 南京市玄武区 (school 3201020001) as a case worker of 320102; returns its id.
pub async fn register_pupil(clients: &Clients, name: &str, resident_id: &str) -> String {
    clients
        .registry
        .clone()
        .create_pupil(nol_proto::v1::CreatePupilRequest {
            pupil: Some(nol_proto::v1::Pupil {
                full_name: name.into(),
                resident_id: resident_id.into(),
                hukou_region_code: "320102".into(),
                school_code: "3201020001".into(),
                grade: 5,
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .expect("pupil")
        .pupil_id
}

/// Opens a case for a pupil; returns the case id.
pub async fn open_case(clients: &Clients, pupil_id: &str) -> String {
    clients
        .cases
        .clone()
        .open_case(nol_proto::v1::OpenCaseRequest {
            pupil_id: pupil_id.into(),
            causes: vec![nol_proto::v1::DropoutCause::FamilyPoverty as i32],
            notes: String::new(),
        })
        .await
        .expect("case opened")
        .into_inner()
        .dropout_case
        .expect("case")
        .case_id
}

/// Every valid resident ID number in `bytes`, wherever it sits (a log line, a protobuf field, a
/// cell): each 18-character window whose region is in the GB/T 2260 tree and whose date and check
/// digit are right.
pub fn resident_ids_in(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for window in bytes.windows(18) {
        if !window[..17].iter().all(u8::is_ascii_digit) || !(window[17].is_ascii_digit() || window[17] == b'X') {
            continue;
        }
        let text = std::str::from_utf8(window).unwrap_or_default();
        if nol_pii::ResidentId::parse(text).is_ok() && nol_region::RegionCode::parse(&text[..6]).is_ok() {
            found.push(text.to_owned());
        }
    }
    found
}

/// Imports the file at `path` as `target` through the registry's gRPC stream, the way a bureau's
/// upload does (a new job id, the encoding detected), and returns the finished job.
pub async fn import(
    clients: &Clients,
    target: nol_import::ImportTarget,
    path: &std::path::Path,
) -> Result<nol_proto::v1::ImportJob, tonic::Status> {
    let encoding = nol_proto::v1::TextEncoding::Unspecified;
    nol_import::import_file(clients, target, path, uuid::Uuid::now_v7(), encoding, |_| {}).await
}

/// The error file of an import job as the bureau downloads it: its name and bytes.
pub async fn import_errors(clients: &Clients, job_id: &str) -> Result<(String, Vec<u8>), tonic::Status> {
    let request = nol_proto::v1::DownloadImportErrorsRequest { job_id: job_id.to_owned() };
    let stream = clients.registry.clone().download_import_errors(request).await?.into_inner();
    nol_import::collect_file(stream, |part| (part.data, part.file_name)).await
}
