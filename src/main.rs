//! `nol`: the Not One Less command line.
//!
//! ```text
//! nol up [--demo] [--province CODE]…   the provinces on this machine (the README's first command;
//!                                       default 江苏 320000 and 安徽 340000)
//! nol token --region 320102 --role caseworker
//! nol token --region 320102 --role school --school 3201020001
//! nol revoke TOKEN                     a token refused from now on, in every province
//! nol keys --province 320000 --province 340000   a deployment's keys, a folder per service
//! nol keys rotate|retire|status|split    data-at-rest keys: a new key, an old one removed, the
//!                                       keys held, a province folder of before split per service
//! nol import pupils|schools|hukou|poverty FILE   a bureau's file into the registry
//! nol gen --out DIR                     a synthetic province for benchmarks
//! nol serve registry|cases|transfer|reporting   one service, configured from the environment
//! nol audit verify|head|prune           the audit chains of a province database
//! nol db provision                      a role per service, the audit log out of their reach
//! ```
#![forbid(unsafe_code)]

mod audit;
mod backup;
mod db;
mod demo;
mod demo_slice;
mod import;
mod synthetic;
mod up;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nol_auth::Role;
use nol_region::RegionCode;

#[derive(Parser)]
#[command(
    name = "nol",
    version,
    about = "Not One Less (一个都不能少): find every out-of-school child, bring each one back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build-and-run target: starts Jiangsu (320000) and Anhui (340000) with their NATS servers,
    /// databases and eight services; Ctrl-C stops everything.
    Up {
        /// Seed the walking-skeleton scenario: a migrant child's case handed from 320102 to 341221.
        #[arg(long)]
        demo: bool,
        /// Where keys, NATS stores, logs (and a private PostgreSQL, if needed) are kept.
        #[arg(long, default_value = "var")]
        data: PathBuf,
        /// A province to start (a GB/T 2260 province code), repeated; each links to the national
        /// exchange's hub (a nats-server of its own). Default: 江苏 320000 and 安徽 340000.
        #[arg(long = "province")]
        provinces: Vec<String>,
    },
    /// Prints a signed token for the local stack.
    Token {
        /// The caller's region code (GB/T 2260), e.g. 320102.
        #[arg(long)]
        region: String,
        /// caseworker, school, supervisor, approver, operator or system.
        #[arg(long, default_value = "caseworker")]
        role: String,
        /// The school's code, for role school (a school sees and changes its own pupils only).
        #[arg(long)]
        school: Option<String>,
        /// Who the caller is (shown in audit logs and case histories).
        #[arg(long)]
        subject: Option<String>,
        /// Hours the token stays valid.
        #[arg(long, default_value_t = 12)]
        hours: u64,
        #[arg(long, default_value = "var")]
        data: PathBuf,
    },
    /// Revokes a token (by its id, `jti`) in every province of the local stack: services refuse it
    /// once they read their keys again (SIGHUP, or within NOL_PEERS_RELOAD_SECS).
    Revoke {
        /// The token itself (its id is read from it) or its id.
        token: String,
        #[arg(long, default_value = "var")]
        data: PathBuf,
    },
    /// Creates the keys of a deployment (token signing key; for each province a folder per
    /// service holding only what it uses: data keyrings, index keys, the event key, sealing and
    /// exchange keys, every peer's public keys) under DATA/keys, keeping any that exist; a
    /// province folder of before (one `data.key` for all four services) is split. Run again with
    /// one more province to add it: the others' `peers/` folders learn its keys, and their
    /// running services pick them up (SIGHUP, or within NOL_PEERS_RELOAD_SECS).
    Keys {
        /// Provinces of the deployment, e.g. --province 320000 --province 340000.
        #[arg(long = "province")]
        provinces: Vec<String>,
        #[arg(long, default_value = "var", global = true)]
        data: PathBuf,
        #[command(subcommand)]
        action: Option<KeysAction>,
    },
    /// Imports a bureau's file (CSV in UTF-8 or GBK, or .xlsx) into the registry; rejected rows
    /// go to an error file of the same format next to it.
    Import {
        /// pupils, schools, hukou (the household register) or poverty (the poverty registry).
        list: nol_import::ImportTarget,
        file: PathBuf,
        /// The registry's address.
        #[arg(long, default_value = "https://127.0.0.1:50051")]
        server: String,
        /// The deployment's CA certificate, which the registry's certificate must chain to
        /// (the local stack's: var/keys/tls/ca.pem).
        #[arg(long, env = "NOL_TLS_CA", default_value = "var/keys/tls/ca.pem")]
        ca: PathBuf,
        /// A token (see `nol token`); defaults to $NOL_TOKEN.
        #[arg(long, env = "NOL_TOKEN", hide_env_values = true)]
        token: String,
        /// auto, utf8 or gbk (CSV only).
        #[arg(long, default_value = "auto")]
        encoding: String,
        /// Resume a job that failed part-way (rows already committed are skipped).
        #[arg(long)]
        resume: Option<uuid::Uuid>,
    },
    /// Writes a synthetic province's files (schools, pupils, household register, poverty
    /// registry) with known findings planted: 1,000,000 pupils unless --divide-by or --times.
    Gen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "320000")]
        province: String,
        /// Make it this many times smaller.
        #[arg(long, default_value_t = 1)]
        divide_by: usize,
        /// Make it this many times larger (10: 10,000,000 pupils in 50,000 schools).
        #[arg(long, default_value_t = 1, conflicts_with = "divide_by")]
        times: usize,
    },
    /// The audit chains of a province database: verify them, export their heads, prune entries
    /// past the retention.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// A province database's base backup, and the restore drill to a point in time.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// The province database's roles: one per service owning only its schema, the audit log
    /// owned by none of them, read-only roles for reporting and audit checks.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Runs one service, configured from the environment (see the README's table).
    Serve {
        #[arg(value_parser = ["registry", "cases", "transfer", "reporting"])]
        service: String,
    },
}

/// What `nol keys` does besides creating keys.
#[derive(Subcommand)]
enum KeysAction {
    /// Adds a new current key to a keyring: `data` (a service's own at-rest keys; the registry
    /// and cases by default) or `event` (the registry → cases event key, written to both). The
    /// services use it once they read their keys again (SIGHUP, or within
    /// NOL_PEERS_RELOAD_SECS) and re-encrypt their rows under it in the background; they log
    /// `re-encryption: every row is under the current key` (and `nol_rows_under_old_keys` is
    /// 0) when the older keys may be retired.
    Rotate {
        /// Provinces (default: every province of DATA/keys).
        #[arg(long = "province")]
        provinces: Vec<String>,
        /// registry or cases (default: both).
        #[arg(long = "service")]
        services: Vec<String>,
        /// data or event.
        #[arg(long, default_value = "data")]
        keys: String,
    },
    /// Removes an old key of a keyring (never the current one) once no row is under it; for the
    /// event key, once no event older than its rotation will be replayed (streams keep two years).
    Retire {
        #[arg(long)]
        province: String,
        /// registry or cases (ignored for --keys event: both).
        #[arg(long, default_value = "registry")]
        service: String,
        #[arg(long, default_value = "data")]
        keys: String,
        /// The key's id (`nol keys status` lists them).
        #[arg(long)]
        id: u32,
    },
    /// Lists each service's keyrings: key ids and the current one.
    Status {
        #[arg(long = "province")]
        provinces: Vec<String>,
    },
    /// Splits a province's key folder of before (one folder for all four services: data.key,
    /// seal.key, sign.key, peers/) into a folder per service holding only what it uses, keeping
    /// every row, event and blind index readable (data.key becomes key 0 of the registry's and
    /// the case service's keyrings). Point each service's NOL_KEYS_DIR at DIR/<service>, then
    /// rotate, and remove the old files.
    Split { dir: PathBuf },
}

fn keys_action(data: &std::path::Path, action: KeysAction) -> anyhow::Result<()> {
    use nol_runtime::keys::{DATA_KEYS, EVENT_KEYS};
    let parse = |codes: &[String], keys: &nol_stack::StackKeys| -> anyhow::Result<Vec<RegionCode>> {
        if codes.is_empty() {
            return keys.provinces();
        }
        Ok(codes.iter().map(|code| RegionCode::parse(code)).collect::<Result<Vec<_>, _>>()?)
    };
    match action {
        KeysAction::Rotate { provinces, services, keys: keyring } => {
            let keys = nol_stack::StackKeys::load(&data.join("keys"))?;
            for province in parse(&provinces, &keys)? {
                let services = match (keyring.as_str(), services.is_empty()) {
                    (EVENT_KEYS, _) => vec!["registry".to_owned()],
                    (_, true) => vec!["registry".to_owned(), "cases".to_owned()],
                    (_, false) => services.clone(),
                };
                for service in &services {
                    let id = keys.rotate(&province, service, &keyring)?;
                    let (holder, then) = if keyring == EVENT_KEYS {
                        ("registry, cases", "; the registry encrypts new events with it")
                    } else {
                        (service.as_str(), " and re-encrypt their rows under it in the background")
                    };
                    println!(
                        "{} ({province}) {holder}: {keyring} key {id} is current; services use it within \
                         NOL_PEERS_RELOAD_SECS (or at once on SIGHUP){then}",
                        province.name()
                    );
                }
            }
            Ok(())
        }
        KeysAction::Retire { province, service, keys: keyring, id } => {
            let keys = nol_stack::StackKeys::load(&data.join("keys"))?;
            let province = RegionCode::parse(&province)?;
            keys.retire(&province, &service, &keyring, id)?;
            println!("{} ({province}) {service}: {keyring} key {id} removed", province.name());
            Ok(())
        }
        KeysAction::Status { provinces } => {
            let keys = nol_stack::StackKeys::load(&data.join("keys"))?;
            for province in parse(&provinces, &keys)? {
                for service in nol_stack::SERVICES {
                    let dir = keys.service_dir(&province, service);
                    for keyring in [DATA_KEYS, EVENT_KEYS] {
                        if let Some((ids, current)) = nol_runtime::keys::key_ids(&dir, keyring)? {
                            println!("{province} {service} {keyring}: keys {ids:?}, current {current}");
                        }
                    }
                }
            }
            Ok(())
        }
        KeysAction::Split { dir } => {
            for made in nol_runtime::keys::split(&dir)? {
                println!("NOL_KEYS_DIR={}", made.display());
            }
            Ok(())
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Up { demo, data, provinces } => {
            let provinces = up::provinces(&provinces, demo)?;
            runtime.block_on(up::run(&data, demo, &provinces))
        }
        Command::Token { region, role, school, subject, hours, data } => {
            let region = RegionCode::parse(&region)?;
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let keys = nol_stack::StackKeys::load(&data.join("keys"))?;
            let lifetime = Duration::from_secs(hours * 3600);
            let token = match (role, school) {
                (Role::School, Some(school)) => {
                    let subject = subject.unwrap_or_else(|| format!("{role}@{school}"));
                    keys.school_token(&subject, region, &school, lifetime)?
                }
                (Role::School, None) => anyhow::bail!("a school's token names its school: --school CODE"),
                (_, Some(_)) => anyhow::bail!("--school is for role school only"),
                (_, None) => {
                    keys.token(&subject.unwrap_or_else(|| format!("{role}@{region}")), region, role, lifetime)?
                }
            };
            println!("{token}");
            Ok(())
        }
        Command::Revoke { token, data } => {
            let id = nol_auth::token_id(&token).unwrap_or(token);
            let keys = nol_stack::StackKeys::load(&data.join("keys"))?;
            let provinces = keys.revoke(&id)?;
            let names: Vec<String> = provinces.iter().map(|code| format!("{} ({code})", code.name())).collect();
            println!(
                "token {id} revoked in {}; services refuse it within NOL_PEERS_RELOAD_SECS (or at once on SIGHUP)",
                names.join("、")
            );
            Ok(())
        }
        Command::Keys { provinces, data, action: Some(action) } => {
            anyhow::ensure!(provinces.is_empty(), "--province goes after the action (nol keys rotate --province …)");
            keys_action(&data, action)
        }
        Command::Keys { provinces, data, action: None } => {
            anyhow::ensure!(!provinces.is_empty(), "name the provinces: nol keys --province 320000 …");
            let codes = provinces.iter().map(|code| RegionCode::parse(code)).collect::<Result<Vec<_>, _>>()?;
            let keys = nol_stack::StackKeys::ensure(&data.join("keys"), &codes)?;
            for code in &codes {
                for service in nol_stack::SERVICES {
                    println!("{} {service}: NOL_KEYS_DIR={}", code.name(), keys.service_dir(code, service).display());
                }
            }
            Ok(())
        }
        Command::Import { list, file, server, ca, token, encoding, resume } => {
            let encoding = match encoding.as_str() {
                "utf8" | "utf-8" => nol_proto::v1::TextEncoding::Utf8,
                "gbk" => nol_proto::v1::TextEncoding::Gbk,
                _ => nol_proto::v1::TextEncoding::Unspecified,
            };
            runtime.block_on(import::run(import::ImportArgs {
                target: list,
                file,
                server,
                ca,
                token,
                encoding,
                resume,
            }))
        }
        Command::Gen { out, province, divide_by, times } => synthetic::run(&out, &province, divide_by, times),
        Command::Audit(command) => {
            if !runtime.block_on(audit::run(command))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Backup(command) => {
            if !runtime.block_on(backup::run(command))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Db(command) => runtime.block_on(db::run(command)),
        Command::Serve { service } => runtime.block_on(async move {
            use nol_runtime::platform::run_main;
            match service.as_str() {
                "registry" => run_main("registry", nol_registry::start).await,
                "cases" => run_main("cases", nol_cases::start).await,
                "transfer" => run_main("transfer", nol_transfer::start).await,
                _ => run_main("reporting", nol_reporting::start).await,
            }
        }),
    }
}
