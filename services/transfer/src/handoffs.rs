//! The hand-off steps. Each runs in one transaction with the messages it sends: to the other side
//! (a cross-province subject, stored by the destination's stream) and to this province's own case
//! service (a local subject).
//!
//! The origin does not trust the backbone to deliver: until the destination's answer arrives it
//! re-sends its request (same event id, so a destination that has it drops the copy and just
//! answers again). An answer is a receipt, or the acceptance once a case worker has accepted.

use nol_events::{
    EventHeader, EventType, HANDOFF_ACCEPTED, HANDOFF_COMPLETED, HANDOFF_OVERDUE, HANDOFF_RECEIVED, HANDOFF_REQUESTED,
    SubjectScheme,
};
use nol_proto::v1::{
    ChildSummary, HandoffAccepted, HandoffCompleted, HandoffOverdue, HandoffReceived, HandoffRequested,
};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Direction, Handoff, NewHandoff, State};
use crate::store;

fn header<'a>(
    event_type: EventType,
    source: RegionCode,
    id: &'a str,
    sequence: u64,
    actor: &'a str,
) -> EventHeader<'a> {
    EventHeader {
        event_type,
        source_region: source,
        aggregate_type: "handoff",
        aggregate_id: id,
        aggregate_sequence: sequence,
        actor,
    }
}

/// The origin asks: record the outgoing hand-off, send the request (with the dossier sealed to
/// the destination) across, and tell our own case service the case is pending. A hand-off of the
/// case already under way makes the insert fail on `handoff_one_under_way_per_case`.
pub async fn request(conn: &mut PgConnection, scheme: &SubjectScheme, handoff: &NewHandoff) -> sqlx::Result<Handoff> {
    let row = store::insert(conn, handoff).await?.ok_or(sqlx::Error::RowNotFound)?;
    send_request(conn, scheme, &row, false).await?;
    let origin = row.origin;
    let id = row.id.to_string();
    let local = HandoffRequested {
        child_masked: Some(ChildSummary {
            full_name: row.child.full_name.clone(),
            resident_id_masked: row.child.resident_id_masked.clone(),
            ..Default::default()
        }),
        ..request_message(&row, Vec::new())
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_REQUESTED, &origin),
        header(HANDOFF_REQUESTED, origin, &id, 1, &row.requested_by),
        &local,
    )
    .await?;
    store::get(&mut *conn, row.id, Direction::Outgoing).await?.ok_or(sqlx::Error::RowNotFound)
}

fn request_message(row: &Handoff, sealed_dossier: Vec<u8>) -> HandoffRequested {
    HandoffRequested {
        handoff_id: row.id.to_string(),
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin.to_string(),
        destination_region_code: row.destination.to_string(),
        reason: row.reason.clone(),
        requested_by: row.requested_by.clone(),
        sealed_dossier,
        child_masked: None,
    }
}

/// Sends the request across as a new event and records its id.
async fn send_request(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    row: &Handoff,
    resend: bool,
) -> sqlx::Result<()> {
    let (origin, destination) = (row.origin, row.destination);
    let id = row.id.to_string();
    let message = request_message(row, row.sealed_dossier.clone().unwrap_or_default());
    let envelope = nol_backbone::outbox::emit(
        conn,
        &scheme.cross(HANDOFF_REQUESTED, &origin, &destination),
        header(HANDOFF_REQUESTED, origin, &id, 1, &row.requested_by),
        &message,
    )
    .await?;
    let event_id = Uuid::parse_str(&envelope.event_id).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    store::mark_sent(conn, row.id, event_id, resend).await
}

/// No answer yet: send the request again. The same event goes out again when its outbox row is
/// still there (so the destination's inbox recognises it); otherwise a new one with the same
/// content (the destination recognises the hand-off id). While the first send has not even been
/// acknowledged (the destination is unreachable), the relay is still retrying it: nothing to add.
pub async fn resend(conn: &mut PgConnection, scheme: &SubjectScheme, row: &Handoff) -> sqlx::Result<()> {
    let sent = match row.request_event_id {
        Some(event_id) => nol_backbone::outbox::sent(conn, event_id).await?,
        None => None,
    };
    match (sent, row.request_event_id) {
        (Some(false), Some(event_id)) => return store::touch_sent(conn, row.id, event_id).await,
        (Some(true), Some(event_id)) => {
            nol_backbone::outbox::resend(conn, event_id).await?;
            store::mark_sent(conn, row.id, event_id, true).await?;
        }
        _ => send_request(conn, scheme, row, true).await?,
    }
    tracing::info!(handoff_id = %row.id, resends = row.resend_count + 1, state = ?row.state, "hand-off request re-sent for want of an answer");
    Ok(())
}

/// Not accepted by the deadline: escalate to the origin's parent bureau (R12). The case stays
/// owned by the origin; the re-sends go on.
pub async fn escalate(conn: &mut PgConnection, scheme: &SubjectScheme, row: &Handoff) -> sqlx::Result<()> {
    let origin = row.origin;
    let parent = row.escalation_target();
    store::mark_escalated(conn, row.id, &parent).await?;
    let overdue = HandoffOverdue {
        handoff_id: row.id.to_string(),
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin.to_string(),
        destination_region_code: row.destination.to_string(),
        escalated_to_region_code: parent.to_string(),
        request_time: Some(nol_runtime::time::timestamp(row.requested_at)),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_OVERDUE, &origin),
        header(HANDOFF_OVERDUE, origin, &overdue.handoff_id, 5, "system"),
        &overdue,
    )
    .await?;
    tracing::warn!(handoff_id = %row.id, escalated_to = %parent, "hand-off not accepted by its deadline; escalated");
    Ok(())
}

/// The destination received a request: record it (once) and answer.
pub async fn receive(conn: &mut PgConnection, scheme: &SubjectScheme, handoff: &NewHandoff) -> sqlx::Result<()> {
    if store::insert(conn, handoff).await?.is_some() {
        tracing::info!(handoff_id = %handoff.id, origin = %handoff.origin, destination = %handoff.destination, "hand-off received");
    }
    answer(conn, scheme, handoff.id).await
}

/// Tells the origin where its request stands here: a receipt, or the acceptance once accepted.
/// Sent on every request that arrives, first or re-sent, since the last answer may have been lost.
pub async fn answer(conn: &mut PgConnection, scheme: &SubjectScheme, id: Uuid) -> sqlx::Result<()> {
    let Some(row) = store::get(&mut *conn, id, Direction::Incoming).await? else {
        return Ok(());
    };
    let (origin, destination) = (row.origin, row.destination);
    let handoff_id = row.id.to_string();
    if row.state == State::Accepted {
        let accepted = acceptance_message(&row, Vec::new());
        let actor = accepted.accepted_by.clone();
        nol_backbone::outbox::emit(
            conn,
            &scheme.cross(HANDOFF_ACCEPTED, &destination, &origin),
            header(HANDOFF_ACCEPTED, destination, &handoff_id, 3, &actor),
            &accepted,
        )
        .await?;
    } else {
        let receipt = HandoffReceived {
            handoff_id: handoff_id.clone(),
            origin_region_code: origin.to_string(),
            destination_region_code: destination.to_string(),
        };
        nol_backbone::outbox::emit(
            conn,
            &scheme.cross(HANDOFF_RECEIVED, &destination, &origin),
            header(HANDOFF_RECEIVED, destination, &handoff_id, 2, "system"),
            &receipt,
        )
        .await?;
    }
    Ok(())
}

fn acceptance_message(row: &Handoff, sealed_dossier: Vec<u8>) -> HandoffAccepted {
    HandoffAccepted {
        handoff_id: row.id.to_string(),
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin.to_string(),
        destination_region_code: row.destination.to_string(),
        accepted_by: row.accepted_by.clone().unwrap_or_default(),
        sealed_dossier,
    }
}

/// The origin got the receipt: the request is delivered.
pub async fn record_receipt(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    let Some(row) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
        tracing::warn!(handoff_id = %id, "receipt for an unknown hand-off ignored");
        return Ok(());
    };
    if let Some(next) = row.state.advance_to(State::Delivered) {
        store::set_state(conn, id, Direction::Outgoing, next, None).await?;
    }
    Ok(())
}

/// A destination case worker accepts: ownership moves here with this commit. Tell the origin,
/// and our own case service (with the sealed dossier) to open the case.
pub async fn accept(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    row: &Handoff,
    accepted_by: &str,
) -> sqlx::Result<Handoff> {
    let destination = row.destination;
    let updated = store::set_state(conn, row.id, Direction::Incoming, State::Accepted, Some(accepted_by)).await?;
    answer(conn, scheme, row.id).await?;
    let id = row.id.to_string();
    let local = acceptance_message(&updated, row.sealed_dossier.clone().unwrap_or_default());
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_ACCEPTED, &destination),
        header(HANDOFF_ACCEPTED, destination, &id, 3, accepted_by),
        &local,
    )
    .await?;
    Ok(updated)
}

/// The origin learned of the accept: record it and tell our case service to mark the case handed
/// over. Only the first acceptance counts.
pub async fn record_acceptance(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    id: Uuid,
    accepted_by: &str,
) -> sqlx::Result<()> {
    let Some(row) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
        tracing::warn!(handoff_id = %id, "acceptance of an unknown hand-off ignored");
        return Ok(());
    };
    if row.state.advance_to(State::Accepted).is_none() {
        return Ok(());
    }
    store::set_state(conn, id, Direction::Outgoing, State::Accepted, Some(accepted_by)).await?;
    let origin = row.origin;
    let completed = HandoffCompleted {
        handoff_id: id.to_string(),
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin.to_string(),
        destination_region_code: row.destination.to_string(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_COMPLETED, &origin),
        header(HANDOFF_COMPLETED, origin, &completed.handoff_id, 4, "system"),
        &completed,
    )
    .await?;
    tracing::info!(handoff_id = %id, destination = %row.destination, "hand-off completed");
    Ok(())
}
