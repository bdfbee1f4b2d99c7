//! Cross-region hand-off of dropout cases (R11): the origin asks, the destination records and
//! acknowledges receipt, a destination case worker accepts, and ownership moves on that accept.
#![forbid(unsafe_code)]

mod assistance;
mod consumers;
pub mod domain;
mod grpc;
mod handoffs;
mod notice;
mod proto;
mod store;
mod sweeper;
mod transfer_in;

use std::future::Future;
use std::pin::Pin;

use nol_proto::v1::assistance_service_server::AssistanceServiceServer;
use nol_proto::v1::transfer_service_server::TransferServiceServer;
use nol_runtime::admin::Gauges;
use nol_runtime::{Platform, RunningService, ServiceConfig};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Admin gauges: outgoing hand-offs not yet accepted, and of those the escalated ones.
struct UnansweredHandoffs;

impl Gauges for UnansweredHandoffs {
    fn read<'a>(
        &'a self,
        pool: &'a PgPool,
    ) -> Pin<Box<dyn Future<Output = sqlx::Result<Vec<(&'static str, i64)>>> + Send + 'a>> {
        Box::pin(async move {
            let (pending, escalated) = store::unanswered_counts(pool).await?;
            Ok(vec![("handoffs_pending", pending), ("handoffs_escalated", escalated)])
        })
    }
}

/// Starts the transfer service of one province and serves it until `shutdown`.
pub async fn start(config: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<RunningService> {
    let cases_url = config.require_url(&config.cases_url, "NOL_CASES_URL")?;
    let mut platform = Platform::start(config, sqlx::migrate!("./migrations"), shutdown).await?;
    let font = nol_documents::CjkFont::find()?;
    let steps = handoffs::Steps {
        scheme: platform.scheme.clone(),
        keys: platform.keys.clone(),
        seal: platform.keys.seal()?,
        province: platform.config.province,
        font,
        pool: platform.pool.clone(),
        committed: Default::default(),
    };
    let handler = consumers::TransferEvents { steps: steps.clone(), clock: platform.clock.clone() };
    let filters = consumers::filter_subjects(&platform.scheme, &platform.config.province);
    platform.spawn_consumer(filters, handler);
    let sweeper = sweeper::Sweeper {
        pool: platform.pool.clone(),
        steps: steps.clone(),
        wake: platform.wake.clone(),
        resend_after: platform.config.handoff_resend,
        deadline: platform.config.handoff_deadline,
    };
    platform.spawn_task(sweeper.run(platform.shutdown.clone()));
    platform.set_gauges(UnansweredHandoffs);
    let assistance = assistance::grpc::Assistance::new(&platform, &cases_url, steps.clone())?;
    let service = grpc::Transfer::new(&platform, &cases_url, steps)?;
    let routes = Routes::new(TransferServiceServer::new(service)).add_service(AssistanceServiceServer::new(assistance));
    platform.serve(routes, &["nol.v1.TransferService", "nol.v1.AssistanceService"]).await
}
