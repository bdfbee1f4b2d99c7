//! Configuration from the environment. The README's configuration table lists every variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use nol_region::{RegionCode, RegionLevel};

/// Settings shared by the four services. Each reads the variables it needs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `registry`, `cases`, `transfer` or `reporting`; names the schema, the durable consumer,
    /// and the process in logs and traces.
    pub service: &'static str,
    /// `NOL_PROVINCE`: the province this deployment serves, e.g. 320000.
    pub province: RegionCode,
    /// `NOL_GRPC_ADDR`: where to listen (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// `NOL_DATABASE_URL`: the province's PostgreSQL database.
    pub database_url: String,
    /// `NOL_DATABASE_POOL_SIZE`: the most connections this service holds (default 16).
    pub database_pool_size: u32,
    /// `NOL_NATS_URL`: the province's NATS server.
    pub nats_url: String,
    /// `NOL_SUBJECT_PREFIX`: first token of every subject (tests use one per test).
    pub subject_prefix: String,
    /// `NOL_KEYS_DIR`: token verification key, data key, sealing keys (see `ProvinceKeys`).
    pub keys_dir: PathBuf,
    /// `NOL_TLS_CA`, `NOL_TLS_CERT`, `NOL_TLS_KEY`: the deployment's CA and this service's
    /// certificate and key. Required: gRPC, the dashboard and NATS are TLS only (`nol_tls`).
    pub tls: nol_tls::TlsFiles,
    /// `NOL_STREAM_REPLICAS`: replicas of the province stream (3 in production).
    pub stream_replicas: usize,
    /// `NOL_STREAM_MAX_AGE_DAYS`: how long the province stream keeps events (default 730, two
    /// school years): what a rebuild of the reporting projections can replay.
    pub stream_max_age: Duration,
    /// `NOL_CONSUMER_NAME`: the service's durable consumer (default: the service's name). A
    /// reporting process on an empty database with a new name rebuilds its projections from the
    /// stream's start.
    pub consumer_name: String,
    /// `NOL_ACK_WAIT_SECS`: how long NATS waits for a consumer's ack before redelivering.
    pub ack_wait: Duration,
    /// `NOL_REGISTRY_URL`: this province's registry, for services that read pupils.
    pub registry_url: Option<String>,
    /// `NOL_CASES_URL`: this province's case service, for services that read cases.
    pub cases_url: Option<String>,
    /// `NOL_TRANSFER_URL`: this province's transfer service (the dashboard's hand-off lists).
    pub transfer_url: Option<String>,
    /// `NOL_WEB_ADDR`: where the reporting service serves the dashboard (HTTP); none: no dashboard.
    pub web_addr: Option<SocketAddr>,
    /// `NOL_WEB_DIR`: the dashboard's files and their npm packages (`web/`, after `npm ci`).
    pub web_dir: PathBuf,
    /// `NOL_METRICS_ADDR`: where `/metrics` (Prometheus text format) is served; by default the
    /// gRPC port + 1000 on the same host (port 0 with a gRPC port 0).
    pub metrics_addr: SocketAddr,
    /// `NOL_PEERS_RELOAD_SECS`: how often the peer provinces' keys (`peers/`) are read again
    /// (also at once on SIGHUP); a province joins the exchange by configuration alone.
    pub peers_reload: Duration,
    /// `NOL_MAX_DELIVERIES`: a message that still fails after this many deliveries is parked as a
    /// dead letter with its last error (100).
    pub max_deliveries: u64,
    /// `NOL_OUTBOX_MAX_ATTEMPTS`: an event whose publish failed this many times is parked in the
    /// outbox with an alarm (1000, about three hours).
    pub outbox_max_attempts: i32,
    /// `NOL_CALLER_CONCURRENCY`: calls one caller (a token's subject in its region) may have in
    /// flight at once; more are refused with RESOURCE_EXHAUSTED (32).
    pub caller_concurrency: usize,
    /// `NOL_REQUEST_TIMEOUT_SECS`: the longest a call may run before it is stopped and answered
    /// DEADLINE_EXCEEDED (30); `NOL_LONG_REQUEST_TIMEOUT_SECS` for imports, exports, files and
    /// sweeps (900).
    pub request_timeouts: crate::access::Timeouts,
    /// `NOL_TOKEN_AUDIENCE`: the audience (`aud`) a caller's token must name (`not-one-less`).
    pub token_audience: String,
    /// `NOL_TOKEN_MAX_LIFETIME_SECS`: the longest a token may live from its issue (24 hours).
    pub token_max_lifetime: Duration,
    /// `NOL_HANDOFF_RESEND_SECS`: the origin re-sends an unanswered hand-off request after this
    /// long, then after twice as long, up to an hour between tries.
    pub handoff_resend: Duration,
    /// `NOL_HANDOFF_DEADLINE_SECS`: a hand-off not accepted within this long is escalated to the
    /// origin's parent bureau (R12).
    pub handoff_deadline: Duration,
    /// `NOL_FAULT_RELAY_CRASH_AFTER` / `NOL_FAULT_CONSUMER_CRASH_AFTER`: fault injection for the
    /// fault suite only (abort after N batches published / committed, before marking / acking).
    /// `NOL_SUPERVISION_SWEEP_SECS`: how often the case service raises and escalates overdue work.
    pub supervision_sweep: Duration,
    /// `NOL_IMPORT_ERRORS_RETENTION_DAYS`: how long the registry keeps an import's rejected rows
    /// (their cells masked) for the error file (30 days).
    pub import_errors_retention: Duration,
    /// `NOL_IMPORT_ERRORS_SWEEP_SECS`: how often the registry deletes rejected rows past it (3600).
    pub import_errors_sweep: Duration,
    /// `NOL_EXPORT_PAGE_ROWS`: rows an export reads and writes at a time, and names in one audit
    /// entry (2000); what an export holds in memory whatever its size.
    pub export_page_rows: i64,
    /// `NOL_CLOCK_FILE`: rule time read from this file (tests and drills); the system clock if unset.
    pub clock_file: Option<PathBuf>,
    pub fault_relay_crash_after: Option<u64>,
    pub fault_consumer_crash_after: Option<u64>,
}

/// The default gRPC port of each service (Jiangsu's in the local stack; Anhui's add 10).
pub fn default_port(service: &str) -> u16 {
    match service {
        "registry" => 50051,
        "cases" => 50052,
        "transfer" => 50053,
        "reporting" => 50054,
        _ => 0,
    }
}

impl ServiceConfig {
    pub fn from_env(service: &'static str) -> anyhow::Result<ServiceConfig> {
        Self::from_lookup(service, |name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(
        service: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ServiceConfig> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let province_text = get("NOL_PROVINCE").context("NOL_PROVINCE is required (a province code, e.g. 320000)")?;
        let province = RegionCode::parse(&province_text).with_context(|| format!("NOL_PROVINCE={province_text}"))?;
        anyhow::ensure!(
            province.level() == RegionLevel::Province,
            "NOL_PROVINCE={province_text} is not a province code"
        );
        let grpc_addr: SocketAddr = get("NOL_GRPC_ADDR")
            .unwrap_or_else(|| format!("127.0.0.1:{}", default_port(service)))
            .parse()
            .context("NOL_GRPC_ADDR must be host:port")?;
        let database_url =
            get("NOL_DATABASE_URL").unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:5432/nol_{province}"));
        let nats_url = get("NOL_NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
        let subject_prefix = get("NOL_SUBJECT_PREFIX").unwrap_or_else(|| "nol".to_owned());
        let keys_dir = PathBuf::from(get("NOL_KEYS_DIR").context("NOL_KEYS_DIR is required (see `nol keys`)")?);
        let tls = nol_tls::TlsFiles::from_lookup(get)?;
        let stream_replicas = get("NOL_STREAM_REPLICAS")
            .map(|text| text.parse())
            .transpose()
            .context("NOL_STREAM_REPLICAS must be a number")?
            .unwrap_or(1);
        let ack_wait = get("NOL_ACK_WAIT_SECS")
            .map(|text| text.parse::<f64>())
            .transpose()
            .context("NOL_ACK_WAIT_SECS must be a number")?
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(30));
        let seconds = |name: &str, default: f64| -> anyhow::Result<Duration> {
            let value = get(name)
                .map(|text| text.parse::<f64>())
                .transpose()
                .with_context(|| format!("{name} must be a number"))?;
            Ok(Duration::from_secs_f64(value.unwrap_or(default)))
        };
        let count = |name: &str| -> anyhow::Result<Option<u64>> {
            get(name)
                .map(|text| text.parse::<u64>())
                .transpose()
                .with_context(|| format!("{name} must be a whole number"))
        };
        let metrics_addr = match get("NOL_METRICS_ADDR") {
            Some(text) => text.parse().context("NOL_METRICS_ADDR must be host:port")?,
            None => {
                let port = if grpc_addr.port() == 0 { 0 } else { grpc_addr.port().saturating_add(1000) };
                SocketAddr::new(grpc_addr.ip(), port)
            }
        };
        Ok(ServiceConfig {
            service,
            province,
            grpc_addr,
            database_url,
            database_pool_size: count("NOL_DATABASE_POOL_SIZE")?
                .map(|size| u32::try_from(size.clamp(1, 1000)).unwrap_or(16))
                .unwrap_or(16),
            nats_url,
            subject_prefix,
            keys_dir,
            tls,
            stream_replicas,
            stream_max_age: Duration::from_secs(
                count("NOL_STREAM_MAX_AGE_DAYS")?.unwrap_or(730).clamp(1, 36_500) * 24 * 3600,
            ),
            consumer_name: get("NOL_CONSUMER_NAME").unwrap_or_else(|| service.to_owned()),
            ack_wait,
            registry_url: get("NOL_REGISTRY_URL"),
            cases_url: get("NOL_CASES_URL"),
            transfer_url: get("NOL_TRANSFER_URL"),
            web_addr: get("NOL_WEB_ADDR")
                .map(|text| text.parse())
                .transpose()
                .context("NOL_WEB_ADDR must be host:port")?,
            web_dir: get("NOL_WEB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("web")),
            metrics_addr,
            peers_reload: seconds("NOL_PEERS_RELOAD_SECS", 30.0)?,
            max_deliveries: count("NOL_MAX_DELIVERIES")?.unwrap_or(100).max(2),
            outbox_max_attempts: i32::try_from(count("NOL_OUTBOX_MAX_ATTEMPTS")?.unwrap_or(1000).max(1))
                .unwrap_or(1000),
            caller_concurrency: usize::try_from(
                count("NOL_CALLER_CONCURRENCY")?
                    .unwrap_or(crate::access::DEFAULT_CALLS_IN_FLIGHT as u64)
                    .clamp(1, 100_000),
            )
            .unwrap_or(crate::access::DEFAULT_CALLS_IN_FLIGHT),
            request_timeouts: crate::access::Timeouts {
                call: seconds("NOL_REQUEST_TIMEOUT_SECS", 30.0)?,
                long_call: seconds("NOL_LONG_REQUEST_TIMEOUT_SECS", 900.0)?,
            },
            token_audience: get("NOL_TOKEN_AUDIENCE").unwrap_or_else(|| nol_auth::DEFAULT_AUDIENCE.to_owned()),
            token_max_lifetime: seconds("NOL_TOKEN_MAX_LIFETIME_SECS", 24.0 * 3600.0)?,
            handoff_resend: seconds("NOL_HANDOFF_RESEND_SECS", 30.0)?,
            handoff_deadline: seconds("NOL_HANDOFF_DEADLINE_SECS", 7.0 * 24.0 * 3600.0)?,
            supervision_sweep: seconds("NOL_SUPERVISION_SWEEP_SECS", 3600.0)?,
            import_errors_retention: Duration::from_secs(
                count("NOL_IMPORT_ERRORS_RETENTION_DAYS")?.unwrap_or(30).clamp(1, 36_500) * 24 * 3600,
            ),
            import_errors_sweep: seconds("NOL_IMPORT_ERRORS_SWEEP_SECS", 3600.0)?,
            export_page_rows: i64::try_from(count("NOL_EXPORT_PAGE_ROWS")?.unwrap_or(2000).clamp(1, 100_000))
                .unwrap_or(2000),
            clock_file: get("NOL_CLOCK_FILE").map(PathBuf::from),
            fault_relay_crash_after: count("NOL_FAULT_RELAY_CRASH_AFTER")?,
            fault_consumer_crash_after: count("NOL_FAULT_CONSUMER_CRASH_AFTER")?,
        })
    }

    /// A URL another service needs; a clear error when it is missing.
    pub fn require_url(&self, value: &Option<String>, variable: &str) -> anyhow::Result<String> {
        value.clone().with_context(|| format!("{variable} is required by the {} service", self.service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const TLS: [(&str, &str); 3] = [("NOL_TLS_CA", "/ca.pem"), ("NOL_TLS_CERT", "/c.pem"), ("NOL_TLS_KEY", "/c.key")];

    #[test]
    fn defaults_follow_the_province() {
        let config = ServiceConfig::from_lookup(
            "cases",
            lookup(&[("NOL_PROVINCE", "340000"), ("NOL_KEYS_DIR", "/k"), TLS[0], TLS[1], TLS[2]]),
        )
        .unwrap();
        assert_eq!(config.database_url, "postgres://postgres@127.0.0.1:5432/nol_340000");
        assert_eq!(config.grpc_addr.port(), 50052);
        assert_eq!(config.ack_wait, Duration::from_secs(30));
        assert_eq!(config.metrics_addr.port(), 51052);
        assert_eq!(config.fault_relay_crash_after, None);
    }

    #[test]
    fn a_county_is_not_a_deployment() {
        let error = ServiceConfig::from_lookup("cases", lookup(&[("NOL_PROVINCE", "320102"), ("NOL_KEYS_DIR", "/k")]))
            .unwrap_err();
        assert!(error.to_string().contains("not a province"));
    }

    #[test]
    fn there_is_no_plaintext_mode() {
        let error = ServiceConfig::from_lookup(
            "cases",
            lookup(&[("NOL_PROVINCE", "340000"), ("NOL_KEYS_DIR", "/k"), TLS[0], TLS[1]]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("NOL_TLS_KEY is required"), "{error}");
    }
}
