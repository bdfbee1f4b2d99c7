//! The event backbone between services and between provinces.
//!
//! PostgreSQL is the system of record; NATS JetStream carries the events. A service writes its
//! events to its [`outbox`] in the same transaction as its change. The [`relay`] publishes
//! them with `Nats-Msg-Id` = event id and marks them sent only after the stream's ack. A
//! [`consumer`] is a durable pull consumer that records each event id in its inbox in the same
//! transaction as its effect and acks after commit. Together: at-least-once delivery, exactly-once
//! effect, and no dual writes.
#![forbid(unsafe_code)]

pub mod consumer;
pub mod exchange;
pub mod outbox;
pub mod relay;
mod stats;

use std::time::Duration;

use async_nats::jetstream;
use nol_events::SubjectScheme;
use nol_region::RegionCode;
pub use stats::{BackboneStats, StatsSnapshot};

/// `BEGIN` of a consumer's batch, with its setting in the same round trip. The services'
/// connections plan every statement for its own parameters (`plan_cache_mode =
/// force_custom_plan`, for their subtree reads, `nol_runtime::database`); a batch's statements
/// look rows up by key and event id, where a prepared statement's generic plan is as good, so the
/// batch lets PostgreSQL choose (`auto`) rather than plan every statement again on every event.
/// The registry's group commit begins its groups the same way, and so do calls whose
/// transactions are a consumer's work done at once (the hand-off's accept and take-in).
pub const BEGIN_BATCH: &str = "BEGIN; SET LOCAL plan_cache_mode TO auto";

/// Creates the backbone tables (outbox, inbox, dead letters) in the pool's schema. They have
/// their own migrations table so they sit beside each service's own migrations.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("_backbone_migrations");
    migrator.run(pool).await
}

/// Stream settings of a deployment.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Replicas of each province stream (1 locally, 3 in production).
    pub replicas: usize,
    /// How long the stream keeps messages; consumers must catch up within it.
    pub max_age: Duration,
    /// The window in which the stream drops a re-published message with the same id.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            // Two school years: the reporting projections are rebuilt by replaying the stream.
            max_age: Duration::from_secs(730 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Connects to NATS over TLS with reconnection forever, naming the connection after the process.
/// The server is checked against the CA of `tls` and shown its certificate (the province's
/// servers require one); credentials may be given in the URL (`nats://user:password@host:port`).
pub async fn connect_nats(
    url: &str,
    connection_name: &str,
    tls: &nol_tls::TlsFiles,
) -> anyhow::Result<async_nats::Client> {
    nol_tls::install_crypto_provider();
    let (url, credentials) = split_credentials(url);
    let last_event: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let mut options = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(tls.ca.clone())
        .add_client_certificate(tls.cert.clone(), tls.key.clone());
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user, password);
    }
    let client = options
        .name(connection_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            // One log line per change of state, not one per reconnect attempt.
            let last = last_event.clone();
            async move {
                let text = event.to_string();
                let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if last.as_deref() == Some(text.as_str()) {
                    return;
                }
                match &event {
                    async_nats::Event::Connected => tracing::info!("nats connected"),
                    async_nats::Event::Disconnected => tracing::warn!("nats disconnected; reconnecting with backoff"),
                    async_nats::Event::ServerError(error) => tracing::warn!(error = %error, "nats server error"),
                    async_nats::Event::ClientError(error) => tracing::warn!(error = %error, "nats client error"),
                    other => tracing::debug!(event = %other, "nats event"),
                }
                *last = Some(text);
            }
        })
        .connect(url.as_str())
        .await?;
    Ok(client)
}

/// Splits `scheme://user:password@rest` into `scheme://rest` and the credentials.
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (format!("{scheme}://{host}"), Some((user.to_owned(), password.to_owned())))
        }
        None => (url.to_owned(), None),
    }
}

/// A JetStream context whose requests (publish acks, API calls) time out after `timeout`.
pub fn jetstream_context(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new().timeout(timeout).build(client)
}

/// Makes sure the province's stream exists: everything addressed to the province, on file storage.
pub async fn ensure_province_stream(
    js: &jetstream::Context,
    scheme: &SubjectScheme,
    province: &RegionCode,
    settings: &StreamSettings,
) -> anyhow::Result<jetstream::stream::Stream> {
    let config = jetstream::stream::Config {
        name: scheme.stream_name(province),
        subjects: scheme.stream_subjects(province),
        storage: jetstream::stream::StorageType::File,
        num_replicas: settings.replicas,
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        description: Some(format!("Not One Less events addressed to {}", province.name())),
        ..Default::default()
    };
    let mut stream = js.get_or_create_stream(config).await?;
    // A stream made under an older retention keeps it until told: the rebuild of projections
    // replays the province's history, so a changed max_age is applied to the running stream.
    let current = stream.info().await?.config.clone();
    if current.max_age != settings.max_age {
        tracing::info!(stream = %current.name, from = ?current.max_age, to = ?settings.max_age, "stream retention changed");
        js.update_stream(jetstream::stream::Config { max_age: settings.max_age, ..current }).await?;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(
            super::split_credentials("nats://svc:pw@127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), Some(("svc".to_owned(), "pw".to_owned())))
        );
        assert_eq!(super::split_credentials("nats://127.0.0.1:4222"), ("nats://127.0.0.1:4222".to_owned(), None));
    }
}
