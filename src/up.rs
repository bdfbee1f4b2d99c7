//! `nol up`: both provinces on this machine, kept under the data folder across restarts.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use nol_auth::Role;
use nol_region::RegionCode;
use nol_stack::postgres::{self, PgCluster};
use nol_stack::{ServicePorts, Stack, StackSettings};

/// NATS client ports of the local stack (4222 is left to a system nats-server).
const JIANGSU_NATS_PORT: u16 = 14222;
const ANHUI_NATS_PORT: u16 = 14232;
/// Jiangsu's server accepts Anhui's leaf-node link here.
const HUB_LEAF_PORT: u16 = 17422;
/// A private PostgreSQL, started only when none answers on 127.0.0.1:5432.
const PRIVATE_PG_PORT: u16 = 55432;

pub async fn run(data: &Path, demo: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let data = data.canonicalize()?;
    let jiangsu = RegionCode::parse("320000")?;
    let anhui = RegionCode::parse("340000")?;

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
    eprintln!("starting 江苏 (320000) and 安徽 (340000): 2 nats-servers, 2 databases, 8 services …");
    let settings = StackSettings {
        binary: std::env::current_exe()?,
        data_dir: data.clone(),
        provinces: vec![
            (jiangsu, ServicePorts::standard(0), Some(JIANGSU_NATS_PORT)),
            (anhui, ServicePorts::standard(10), Some(ANHUI_NATS_PORT)),
        ],
        admin_database_url: admin_url.clone(),
        database_prefix: "nol".to_owned(),
        subject_prefix: "nol".to_owned(),
        ack_wait: Duration::from_secs(30),
        log_to_files: true,
        hub_leaf_port: Some(HUB_LEAF_PORT),
        cuttable_link: false,
        extra_env: Default::default(),
    };
    let mut stack = Stack::start(settings)
        .await
        .with_context(|| format!("starting the stack; logs are under {}", data.join("log").display()))?;

    if demo {
        crate::demo::seed(&stack).await.context("seeding the demo")?;
    }

    let hour = Duration::from_secs(12 * 3600);
    let xuanwu = stack.keys.token("demo.xuanwu", RegionCode::parse("320102")?, Role::Caseworker, hour)?;
    let linquan = stack.keys.token("demo.linquan", RegionCode::parse("341221")?, Role::Caseworker, hour)?;
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
    for server in &stack.nats {
        println!("  nats {}  (leaf link {})", server.address(), server.leaf_url().unwrap_or_else(|| "→ hub".into()));
    }
    println!("  databases: {} (nol_320000, nol_340000); logs: {}", admin_url, data.join("log").display());
    println!();
    println!("Token, 南京市玄武区 (320102) case worker:");
    println!("  export TOKEN={xuanwu}");
    println!("Token, 阜阳市临泉县 (341221) case worker:");
    println!("  export ANHUI_TOKEN={linquan}");
    println!();
    println!(
        "Try:  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" 127.0.0.1:50052 nol.v1.CaseService/ListCases"
    );
    println!(
        "      grpcurl -plaintext -H \"authorization: Bearer $ANHUI_TOKEN\" -d '{{\"direction\":\"HANDOFF_DIRECTION_INCOMING\"}}' 127.0.0.1:50063 nol.v1.TransferService/ListHandoffs"
    );
    println!("More tokens: nol token --region <code> --role <role>.  Ctrl-C stops everything.");
    println!();
    let sign_in = |subject: &str, region: &str, role: Role| -> anyhow::Result<String> {
        stack.keys.token(subject, RegionCode::parse(region)?, role, hour)
    };
    for province in &stack.provinces {
        let Some(web) = province.reporting.web_addr else { continue };
        println!("Dashboard (看板), {}: http://{web}/", province.province.name());
        let users: &[(&str, &str, &str, Role)] = if province.province == jiangsu {
            &[
                ("demo.jiangsu", "320000", "江苏省教育厅 督导", Role::Supervisor),
                ("demo.nanjing", "320100", "南京市教育局 督导", Role::Supervisor),
                ("demo.xuanwu", "320102", "玄武区教育局 经办人员", Role::Caseworker),
                ("demo.ops", "320000", "运维人员", Role::Operator),
            ]
        } else {
            &[
                ("demo.anhui", "340000", "安徽省教育厅 督导", Role::Supervisor),
                ("demo.linquan", "341221", "临泉县教育局 经办人员", Role::Caseworker),
            ]
        };
        for (subject, region, label, role) in users {
            println!("  {label}: http://{web}/#signin={}", sign_in(subject, region, *role)?);
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
