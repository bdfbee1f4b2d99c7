//! What operators see of a service process: `nol.v1.AdminService` over gRPC and the same figures
//! as Prometheus metrics on `/metrics`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_nats::jetstream;
use nol_auth::Role;
use nol_backbone::BackboneStats;
use nol_proto::v1::admin_service_server::AdminService;
use nol_proto::v1::{
    BackboneStatus, DeadLetter, GetBackboneStatusRequest, GetBackboneStatusResponse, ListDeadLettersRequest,
    ListDeadLettersResponse,
};
use nol_region::RegionCode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::ServiceError;

/// Service-specific gauges (e.g. pending hand-offs), read on demand.
pub trait Gauges: Send + Sync + 'static {
    #[allow(clippy::type_complexity)]
    fn read<'a>(
        &'a self,
        pool: &'a PgPool,
    ) -> Pin<Box<dyn Future<Output = sqlx::Result<Vec<(&'static str, i64)>>> + Send + 'a>>;
}

/// A service without gauges of its own.
pub struct NoGauges;

impl Gauges for NoGauges {
    fn read<'a>(
        &'a self,
        _pool: &'a PgPool,
    ) -> Pin<Box<dyn Future<Output = sqlx::Result<Vec<(&'static str, i64)>>> + Send + 'a>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Reads one process's backbone state.
#[derive(Clone)]
pub struct Observer {
    pub service: &'static str,
    pub province: RegionCode,
    pub pool: PgPool,
    pub stream: jetstream::stream::Stream,
    pub stats: BackboneStats,
    pub consumer: Option<String>,
    pub gauges: Arc<dyn Gauges>,
    /// Rows the re-encryption has yet to bring to the current data key (-1: none counted).
    pub old_key_rows: crate::reencrypt::OldKeyRows,
}

impl Observer {
    pub async fn status(&self) -> anyhow::Result<BackboneStatus> {
        let backlog = nol_backbone::outbox::backlog(&self.pool).await?;
        let dead_letters = nol_backbone::consumer::dead_letter_count(&self.pool).await?;
        let (pending, ack_pending) = match &self.consumer {
            Some(name) => nol_backbone::consumer::lag(&self.stream, name).await.unwrap_or((0, 0)),
            None => (0, 0),
        };
        let stats = self.stats.snapshot();
        let gauges: HashMap<String, i64> =
            self.gauges.read(&self.pool).await?.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
        Ok(BackboneStatus {
            service: self.service.to_owned(),
            province_code: self.province.to_string(),
            outbox_unsent: backlog.unsent,
            outbox_retrying: backlog.retrying,
            outbox_oldest_unsent_seconds: backlog.oldest_unsent_seconds,
            consumer_pending: pending as i64,
            consumer_ack_pending: ack_pending as i64,
            dead_letters,
            events_published: stats.published,
            events_applied: stats.applied,
            duplicates_dropped: stats.duplicates,
            publish_failures: stats.publish_failures,
            gauges,
        })
    }

    /// The status in Prometheus text format.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let status = self.status().await?;
        let mut registry = Registry::with_labels(
            [("service".into(), self.service.into()), ("province".into(), self.province.to_string().into())]
                .into_iter(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
            let metric = Gauge::<i64>::default();
            metric.set(value);
            registry.register(name, help, metric);
        };
        let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
            let metric = Counter::<u64>::default();
            metric.inc_by(value);
            registry.register(name, help, metric);
        };
        gauge(&mut registry, "nol_outbox_unsent", "Outbox rows not yet acknowledged by a stream", status.outbox_unsent);
        gauge(
            &mut registry,
            "nol_outbox_retrying",
            "Unsent outbox rows whose publish failed at least once",
            status.outbox_retrying,
        );
        let oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        oldest.set(status.outbox_oldest_unsent_seconds);
        registry.register("nol_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox row", oldest);
        gauge(
            &mut registry,
            "nol_consumer_pending",
            "Messages not yet delivered to the consumer",
            status.consumer_pending,
        );
        gauge(
            &mut registry,
            "nol_consumer_ack_pending",
            "Messages delivered and not yet acked",
            status.consumer_ack_pending,
        );
        gauge(&mut registry, "nol_dead_letters", "Dead letters held by the service", status.dead_letters);
        let parked = nol_backbone::outbox::backlog(&self.pool).await?.parked;
        gauge(&mut registry, "nol_outbox_parked", "Outbox rows parked after too many failed publishes (alarm)", parked);
        counter(&mut registry, "nol_events_published", "Events acknowledged by a stream", status.events_published);
        counter(
            &mut registry,
            "nol_events_applied",
            "Events whose effect the consumer committed",
            status.events_applied,
        );
        counter(&mut registry, "nol_inbox_duplicates", "Deliveries dropped by the inbox", status.duplicates_dropped);
        counter(&mut registry, "nol_publish_failures", "Failed publish attempts", status.publish_failures);
        counter(
            &mut registry,
            "nol_exchange_refused",
            "Cross-province messages refused by the signature check (alarm)",
            self.stats.snapshot().exchange_refused,
        );
        gauge(
            &mut registry,
            "nol_rows_under_old_keys",
            "Rows encrypted under another data key than the current one, left to re-encrypt (-1: no keyring)",
            self.old_key_rows.0.load(std::sync::atomic::Ordering::Relaxed),
        );
        let stages = self.stats.stages();
        registry.register(
            "nol_relay_stage_seconds",
            "Time of each stage of the outbox relay's passes (woken, claim, publish, mark)",
            stages.relay().clone(),
        );
        registry.register(
            "nol_consumer_stage_seconds",
            "Time of each stage of the consumer's batches (waited, begin, apply, commit, ack)",
            stages.consumer().clone(),
        );
        let mut names: Vec<&String> = status.gauges.keys().collect();
        names.sort();
        for name in names {
            gauge(&mut registry, &format!("nol_{name}"), "Service-specific gauge", status.gauges[name]);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// `nol.v1.AdminService` of one process.
pub struct Admin {
    observer: Observer,
}

impl Admin {
    pub fn new(observer: Observer) -> Admin {
        Admin { observer }
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), ServiceError> {
        let caller = crate::caller_of(request, &self.observer.province)?;
        caller.require_role(&[Role::Operator, Role::Supervisor], nol_messages::vocab::Action::ReadBackbone)?;
        caller.require_scope(&self.observer.province)?;
        Ok(())
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn get_backbone_status(
        &self,
        request: Request<GetBackboneStatusRequest>,
    ) -> Result<Response<GetBackboneStatusResponse>, Status> {
        self.authorize(&request)?;
        let status = self.observer.status().await.map_err(ServiceError::Internal)?;
        Ok(Response::new(GetBackboneStatusResponse { status: Some(status) }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.authorize(&request)?;
        let size = crate::paging::page_size(request.get_ref().page_size)?;
        let letters =
            nol_backbone::consumer::dead_letters(&self.observer.pool, size).await.map_err(ServiceError::from)?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters
                .into_iter()
                .map(|letter| DeadLetter {
                    id: letter.id,
                    consumer: letter.consumer,
                    subject: letter.subject,
                    stream_sequence: letter.stream_sequence as u64,
                    event_id: letter.event_id.unwrap_or_default(),
                    event_type: letter.event_type.unwrap_or_default(),
                    reason: letter.reason,
                    park_time: Some(crate::time::timestamp(letter.parked_at)),
                })
                .collect(),
        }))
    }
}

/// Serves `GET /metrics` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    observer: Observer,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::http::{StatusCode, header};
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let observer = observer.clone();
            async move {
                match observer.metrics().await {
                    Ok(text) => (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        text,
                    ),
                    Err(error) => {
                        tracing::warn!(error = %error, "metrics unavailable");
                        (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain")], error.to_string())
                    }
                }
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
