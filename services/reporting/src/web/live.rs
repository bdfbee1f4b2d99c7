//! Live updates: the reporting consumer sends `NOTIFY nol_reporting, '<region> <event>'` in the
//! transaction that applies an event, so PostgreSQL delivers it only once the new figures are
//! committed; one listener per process fans it out to the open dashboards whose scope holds the
//! region, as server-sent events. A dashboard re-reads what it shows when one arrives.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use nol_region::RegionCode;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

use super::WebState;
use super::session::Session;

/// The channel the consumer notifies.
pub const CHANNEL: &str = "nol_reporting";

/// An event applied to the figures of a county.
#[derive(Debug, Clone)]
pub struct Update {
    pub region: RegionCode,
    pub kind: String,
}

fn parse(payload: &str) -> Option<Update> {
    let (region, kind) = payload.split_once(' ')?;
    Some(Update { region: RegionCode::parse(region).ok()?, kind: kind.to_owned() })
}

/// Listens until `shutdown`, reconnecting after a lost connection.
pub async fn listen(pool: PgPool, updates: broadcast::Sender<Update>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "live updates: cannot listen; retrying");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "live updates: LISTEN failed; retrying");
            continue;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.recv() => match received {
                    Ok(notification) => {
                        if let Some(update) = parse(notification.payload()) {
                            // No dashboard open is not an error.
                            let _ = updates.send(update);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "live updates: connection lost; listening again");
                        break;
                    }
                }
            }
        }
    }
}

/// GET /api/events: the updates in the session's scope, until the session ends.
pub async fn events(
    State(state): State<WebState>,
    session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let caller = session.caller;
    let left = session.expires_at.saturating_sub(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
    );
    let stream = BroadcastStream::new(state.live.subscribe())
        .filter_map(move |received| {
            let event = match received {
                Ok(update) if caller.sees(&update.region) => {
                    Some(serde_json::json!({"region_code": update.region.as_str(), "kind": update.kind}).to_string())
                }
                Ok(_) => None,
                // Missed some: tell the page to re-read everything.
                Err(_) => Some(serde_json::json!({"region_code": null, "kind": "lagged"}).to_string()),
            };
            std::future::ready(event.map(|data| Ok(Event::default().data(data))))
        })
        .take_until(tokio::time::sleep(Duration::from_secs(left)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_a_county_and_an_event() {
        let update = parse("320102 case_opened").unwrap();
        assert_eq!((update.region.as_str(), update.kind.as_str()), ("320102", "case_opened"));
        assert!(parse("garbage").is_none());
        assert!(parse("999999 x").is_none());
    }
}
