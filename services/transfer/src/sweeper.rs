//! The origin's watch over its outgoing hand-offs: re-send requests that have no answer, and
//! escalate those not accepted by the deadline (R12). Safe with several replicas (rows are locked
//! with SKIP LOCKED); logs once per change between working and failing.

use std::time::Duration;

use nol_events::SubjectScheme;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{handoffs, store};

pub struct Sweeper {
    pub pool: PgPool,
    pub scheme: SubjectScheme,
    pub wake: nol_backbone::outbox::RelayWake,
    pub resend_after: Duration,
    pub deadline: Duration,
}

impl Sweeper {
    pub async fn run(self, shutdown: CancellationToken) {
        let tick = (self.resend_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut healthy = true;
        loop {
            match self.sweep().await {
                Ok(()) if !healthy => {
                    tracing::info!("hand-off sweeper recovered");
                    healthy = true;
                }
                Ok(()) => {}
                Err(error) => {
                    if healthy {
                        tracing::warn!(error = %error, "hand-off sweeper cannot work; retrying");
                        healthy = false;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// One pass: re-sends, then escalations, in one transaction.
    pub async fn sweep(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for row in store::due_for_resend(&mut tx, self.resend_after.as_secs_f64(), 100).await? {
            handoffs::resend(&mut tx, &self.scheme, &row).await?;
        }
        for row in store::due_for_escalation(&mut tx, self.deadline.as_secs_f64(), 100).await? {
            handoffs::escalate(&mut tx, &self.scheme, &row).await?;
        }
        tx.commit().await?;
        self.wake.notify();
        Ok(())
    }
}
