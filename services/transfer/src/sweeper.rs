//! The watch over hand-offs waiting for the other side: re-send what has no answer (the origin's
//! requests and cancels, the destination's acceptances, the asker's transfer-in requests, requests
//! for help and R10 notices not yet received), and
//! escalate outgoing hand-offs not decided by the deadline (R12). Safe with several replicas (rows
//! are locked with SKIP LOCKED); logs once per change between working and failing.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::handoffs::Steps;
use crate::{store, transfer_in};

pub struct Sweeper {
    pub pool: PgPool,
    pub steps: Steps,
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
        for handoff in store::due_for_resend(&mut tx, self.resend_after.as_secs_f64(), 100).await? {
            self.steps.resend(&mut tx, &handoff).await?;
        }
        for handoff in store::due_for_escalation(&mut tx, self.deadline.as_secs_f64(), 100).await? {
            self.steps.escalate(&mut tx, &handoff).await?;
        }
        for request in store::transfer_ins_due_for_resend(&mut tx, self.resend_after.as_secs_f64(), 100).await? {
            if let Some(sealed) = &request.resident_id_sealed {
                transfer_in::send_request(&self.steps.scheme, &mut tx, &request, sealed).await?;
            }
            store::touch_transfer_in(&mut tx, request.id).await?;
        }
        for request in crate::assistance::due_for_resend(&mut tx, self.resend_after.as_secs_f64(), 100).await? {
            self.steps.resend_help_request(&mut tx, &request).await?;
        }
        for notice in crate::assistance::notice::due_for_resend(&mut tx, self.resend_after.as_secs_f64(), 100).await? {
            self.steps.send_notice(&mut tx, &notice).await?;
        }
        tx.commit().await?;
        self.wake.notify();
        Ok(())
    }
}
