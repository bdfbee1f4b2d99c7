//! The sweep that raises and escalates supervision items by itself, on a timer.

use super::service::SupervisionService;

/// Runs the sweep every `every` until shutdown.
pub fn spawn(
    supervision: SupervisionService,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    if let Err(error) = supervision.sweep().await {
                        tracing::warn!(%error, "supervision sweep failed; retrying at the next tick");
                    }
                }
            }
        }
    });
}
