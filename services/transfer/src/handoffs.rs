//! The hand-off steps. Each runs in one transaction with the messages it sends: to the other side
//! (a cross-province subject, stored by the destination's stream) and to this province's own case
//! service (a local subject).

use nol_events::{
    EventHeader, HANDOFF_ACCEPTED, HANDOFF_COMPLETED, HANDOFF_RECEIVED, HANDOFF_REQUESTED, SubjectScheme,
};
use nol_proto::v1::{ChildSummary, HandoffAccepted, HandoffCompleted, HandoffReceived, HandoffRequested};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Direction, State};
use crate::store::{self, HandoffRow, NewHandoff};

fn header<'a>(
    event_type: nol_events::EventType,
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
/// the destination) across, and tell our own case service the case is pending.
/// Returns `None` when a hand-off of the case is already under way.
pub async fn request(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    handoff: &NewHandoff,
    origin: RegionCode,
    destination: RegionCode,
    sealed_dossier: Vec<u8>,
) -> sqlx::Result<HandoffRow> {
    let row = store::insert(conn, handoff).await?.ok_or_else(|| sqlx::Error::RowNotFound)?;
    let id = handoff.id.to_string();
    let mut message = HandoffRequested {
        handoff_id: id.clone(),
        case_id: handoff.case_id.to_string(),
        origin_region_code: origin.to_string(),
        destination_region_code: destination.to_string(),
        reason: handoff.reason.clone(),
        requested_by: handoff.requested_by.clone(),
        sealed_dossier,
        child_masked: None,
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.cross(HANDOFF_REQUESTED, &origin, &destination),
        header(HANDOFF_REQUESTED, origin, &id, 1, &handoff.requested_by),
        &message,
    )
    .await?;
    message.sealed_dossier = Vec::new();
    message.child_masked = Some(ChildSummary {
        full_name: handoff.child_name.clone(),
        resident_id_masked: handoff.resident_id_masked.clone(),
        ..Default::default()
    });
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_REQUESTED, &origin),
        header(HANDOFF_REQUESTED, origin, &id, 1, &handoff.requested_by),
        &message,
    )
    .await?;
    Ok(row)
}

/// The destination received a request: record it (once) and send the receipt back. A request
/// seen before is answered with a receipt again, since the first receipt may be what was lost.
pub async fn receive(conn: &mut PgConnection, scheme: &SubjectScheme, handoff: &NewHandoff) -> sqlx::Result<()> {
    let origin = stored_region(&handoff.origin_region)?;
    let destination = stored_region(&handoff.destination_region)?;
    if store::insert(conn, handoff).await?.is_some() {
        tracing::info!(handoff_id = %handoff.id, origin = %origin, destination = %destination, "hand-off received");
    }
    let id = handoff.id.to_string();
    let receipt = HandoffReceived {
        handoff_id: id.clone(),
        origin_region_code: origin.to_string(),
        destination_region_code: destination.to_string(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.cross(HANDOFF_RECEIVED, &destination, &origin),
        header(HANDOFF_RECEIVED, destination, &id, 2, "system"),
        &receipt,
    )
    .await?;
    Ok(())
}

/// The origin got the receipt: the request is delivered.
pub async fn record_receipt(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    let Some(row) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
        tracing::warn!(handoff_id = %id, "receipt for an unknown hand-off ignored");
        return Ok(());
    };
    let current = State::parse(&row.state).unwrap_or(State::Requested);
    if let Some(next) = current.advance_to(State::Delivered) {
        store::set_state(conn, id, Direction::Outgoing, next, None).await?;
    }
    Ok(())
}

/// A destination case worker accepts: ownership moves here with this commit. Tell the origin,
/// and our own case service (with the sealed dossier) to open the case.
pub async fn accept(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    row: &HandoffRow,
    accepted_by: &str,
) -> sqlx::Result<HandoffRow> {
    let origin = stored_region(&row.origin_region)?;
    let destination = stored_region(&row.destination_region)?;
    let updated = store::set_state(conn, row.id, Direction::Incoming, State::Accepted, Some(accepted_by)).await?;
    let id = row.id.to_string();
    let mut message = HandoffAccepted {
        handoff_id: id.clone(),
        case_id: row.case_id.to_string(),
        origin_region_code: origin.to_string(),
        destination_region_code: destination.to_string(),
        accepted_by: accepted_by.to_owned(),
        sealed_dossier: Vec::new(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.cross(HANDOFF_ACCEPTED, &destination, &origin),
        header(HANDOFF_ACCEPTED, destination, &id, 3, accepted_by),
        &message,
    )
    .await?;
    message.sealed_dossier = row.sealed_dossier.clone().unwrap_or_default();
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_ACCEPTED, &destination),
        header(HANDOFF_ACCEPTED, destination, &id, 3, accepted_by),
        &message,
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
    let current = State::parse(&row.state).unwrap_or(State::Requested);
    if current.advance_to(State::Accepted).is_none() {
        return Ok(());
    }
    store::set_state(conn, id, Direction::Outgoing, State::Accepted, Some(accepted_by)).await?;
    let origin = stored_region(&row.origin_region)?;
    let completed = HandoffCompleted {
        handoff_id: id.to_string(),
        case_id: row.case_id.to_string(),
        origin_region_code: row.origin_region.clone(),
        destination_region_code: row.destination_region.clone(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(HANDOFF_COMPLETED, &origin),
        header(HANDOFF_COMPLETED, origin, &completed.handoff_id, 4, "system"),
        &completed,
    )
    .await?;
    tracing::info!(handoff_id = %id, destination = %row.destination_region, "hand-off completed");
    Ok(())
}

fn stored_region(text: &str) -> sqlx::Result<RegionCode> {
    RegionCode::parse(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
