//! `nol up`: the provinces on this machine (江苏 and 安徽 unless told otherwise), kept under the
//! data folder across restarts.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use nol_auth::Role;
use nol_region::RegionCode;
use nol_stack::postgres::{self, PgCluster};
use nol_stack::{ServicePorts, Stack, StackSettings};

/// NATS client port of the first province of the local stack (4222 is left to a system
/// nats-server); each next province's is 10 higher, as are its services' ports.
const FIRST_NATS_PORT: u16 = 14222;
/// The national exchange's hub (a nats-server of its own) accepts the provinces' leaf-node links here.
const HUB_LEAF_PORT: u16 = 17422;
/// A private PostgreSQL, started only when none answers on 127.0.0.1:5432.
const PRIVATE_PG_PORT: u16 = 55432;

/// The provinces to start: province-level codes, each once; the demo needs 江苏 and 安徽.
pub fn provinces(given: &[String], demo: bool) -> anyhow::Result<Vec<RegionCode>> {
    let given: Vec<&str> =
        if given.is_empty() { vec!["320000", "340000"] } else { given.iter().map(String::as_str).collect() };
    let mut provinces: Vec<RegionCode> = Vec::new();
    for code in given {
        let region = RegionCode::parse(code.trim()).with_context(|| format!("--province {code}"))?;
        anyhow::ensure!(
            region.level() == nol_region::RegionLevel::Province,
            "--province {code}: {} is not a province (省级行政区)",
            region.full_name()
        );
        anyhow::ensure!(!provinces.contains(&region), "--province {code} is given twice");
        provinces.push(region);
    }
    if demo {
        for needed in ["320000", "340000"] {
            anyhow::ensure!(
                provinces.iter().any(|province| province.as_str() == needed),
                "--demo hands a case from 江苏 to 安徽 and back: start 320000 and 340000 too"
            );
        }
    }
    Ok(provinces)
}

pub async fn run(data: &Path, demo: bool, provinces: &[RegionCode]) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let data = data.canonicalize()?;
    let jiangsu = RegionCode::parse("320000")?;

    let mut private_cluster = None;
    let mut admin_url = std::env::var("NOL_DATABASE_ADMIN_URL").unwrap_or_else(|_| postgres::default_admin_url());
    if !postgres::reachable(&admin_url).await {
        eprintln!("no PostgreSQL at {admin_url}; starting one under {}", data.join("pg").display());
        let cluster = PgCluster::init(&data.join("pg"), PRIVATE_PG_PORT)?;
        cluster.start().await?;
        admin_url = cluster.admin_url();
        private_cluster = Some(cluster);
    }

    // The dashboard's scripts, styles and font come from npm, installed here — never from a CDN.
    if let Err(error) = nol_stack::tools::web_packages() {
        eprintln!("the dashboard's packages could not be installed ({error:#}); the dashboard will lack its charts");
    }
    let names: Vec<String> = provinces.iter().map(|code| format!("{} ({code})", code.name())).collect();
    let count = provinces.len();
    eprintln!(
        "starting {}: the exchange's hub and {count} nats-servers, {count} databases, {} services …",
        names.join("、"),
        count * 4
    );
    let settings = StackSettings {
        binary: std::env::current_exe()?,
        data_dir: data.clone(),
        provinces: provinces
            .iter()
            .enumerate()
            .map(|(index, code)| {
                let offset = 10 * index as u16;
                (*code, ServicePorts::standard(offset), Some(FIRST_NATS_PORT + offset))
            })
            .collect(),
        admin_database_url: admin_url.clone(),
        database_prefix: "nol".to_owned(),
        subject_prefix: "nol".to_owned(),
        ack_wait: Duration::from_secs(30),
        log_to_files: true,
        hub_leaf_port: Some(HUB_LEAF_PORT),
        cuttable_link: false,
        extra_env: local_pools(count),
        replicas: 1,
    };
    let mut stack = Stack::start(settings)
        .await
        .with_context(|| format!("starting the stack; logs are under {}", data.join("log").display()))?;

    if demo {
        crate::demo::seed(&stack).await.context("seeding the demo")?;
    }

    let hour = Duration::from_secs(12 * 3600);
    println!();
    println!("Not One Less is up (一个都不能少).");
    for province in &stack.provinces {
        println!(
            "  {} ({}): registry {}  cases {}  transfer {}  reporting {}",
            province.province.name(),
            province.province,
            province.registry.addr,
            province.cases.addr,
            province.transfer.addr,
            province.reporting.addr
        );
    }
    println!(
        "  exchange hub {}  (leaf links to {})",
        stack.hub.address(),
        stack.hub.leaf_url().unwrap_or_else(|| "-".into())
    );
    for (server, province) in stack.nats.iter().zip(&stack.provinces) {
        println!("  nats {} ({})  leaf → exchange hub", server.address(), province.province);
    }
    let databases: Vec<String> = provinces.iter().map(|code| format!("nol_{code}")).collect();
    println!("  databases: {} ({}); logs: {}", admin_url, databases.join(", "), data.join("log").display());
    if let Some(province) = stack.provinces.first() {
        let roles = &province.roles;
        println!(
            "  each service connects as its own role ({}, …); read-only: {} (BI), {} (nol audit verify)",
            roles.service("registry"),
            roles.reporting_reader(),
            roles.audit_reader()
        );
    }
    println!();
    if provinces.contains(&jiangsu) {
        let xuanwu = stack.keys.token("demo.xuanwu", RegionCode::parse("320102")?, Role::Caseworker, hour)?;
        println!("Token, 南京市玄武区 (320102) case worker:");
        println!("  export TOKEN={xuanwu}");
    }
    if provinces.iter().any(|code| code.as_str() == "340000") {
        let linquan = stack.keys.token("demo.linquan", RegionCode::parse("341221")?, Role::Caseworker, hour)?;
        println!("Token, 阜阳市临泉县 (341221) case worker:");
        println!("  export ANHUI_TOKEN={linquan}");
    }
    println!();
    // Every hop is TLS: callers check the services' certificates against the deployment's CA.
    let ca = stack.keys.ca_path().display().to_string();
    println!("Every connection is TLS; the deployment's CA (for grpcurl, or to import into a browser): {ca}");
    println!(
        "Try:  grpcurl -cacert {ca} -H \"authorization: Bearer $TOKEN\" 127.0.0.1:50052 nol.v1.CaseService/ListCases"
    );
    println!(
        "      grpcurl -cacert {ca} -H \"authorization: Bearer $ANHUI_TOKEN\" -d '{{\"direction\":\"HANDOFF_DIRECTION_INCOMING\"}}' 127.0.0.1:50063 nol.v1.TransferService/ListHandoffs"
    );
    println!("More tokens: nol token --region <code> --role <role>.  Ctrl-C stops everything.");
    println!();
    let sign_in = |subject: &str, region: &str, role: Role| -> anyhow::Result<String> {
        stack.keys.token(subject, RegionCode::parse(region)?, role, hour)
    };
    for province in &stack.provinces {
        let Some(web) = province.reporting.web_addr else { continue };
        println!("Dashboard (看板), {}: https://{web}/", province.province.name());
        let users: &[(&str, &str, &str, Role)] = match province.province.as_str() {
            "320000" => &[
                ("demo.jiangsu", "320000", "江苏省教育厅 督导", Role::Supervisor),
                ("demo.nanjing", "320100", "南京市教育局 督导", Role::Supervisor),
                ("demo.xuanwu", "320102", "玄武区教育局 经办人员", Role::Caseworker),
                ("demo.ops", "320000", "运维人员", Role::Operator),
            ],
            "340000" => &[
                ("demo.anhui", "340000", "安徽省教育厅 督导", Role::Supervisor),
                ("demo.linquan", "341221", "临泉县教育局 经办人员", Role::Caseworker),
            ],
            _ => &[],
        };
        for (subject, region, label, role) in users {
            println!("  {label}: https://{web}/#signin={}", sign_in(subject, region, *role)?);
        }
        if users.is_empty() {
            let code = province.province.to_string();
            let label = format!("{}教育厅 督导", province.province.name());
            println!("  {label}: https://{web}/#signin={}", sign_in(&format!("demo.{code}"), &code, Role::Supervisor)?);
        }
    }

    nol_runtime::shutdown::on_signal().cancelled().await;
    eprintln!("stopping …");
    stack.stop().await?;
    if let Some(cluster) = private_cluster {
        cluster.stop("fast")?;
    }
    eprintln!("stopped; data kept under {}", data.display());
    Ok(())
}

/// Each service's database pool on this machine: the services of every province share its
/// PostgreSQL, which takes 100 connections on a fresh machine (97 for roles that are not
/// superusers), so together they hold at most 80 — 10 each for two provinces — unless
/// `NOL_DATABASE_POOL_SIZE` says otherwise.
fn local_pools(provinces: usize) -> std::collections::BTreeMap<String, String> {
    if std::env::var_os("NOL_DATABASE_POOL_SIZE").is_some() {
        return Default::default();
    }
    let per_service = (80 / (provinces * 4).max(1)).clamp(3, 16);
    std::collections::BTreeMap::from([("NOL_DATABASE_POOL_SIZE".to_owned(), per_service.to_string())])
}
