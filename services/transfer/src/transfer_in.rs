//! Transfer-in (R11, the other way round): a region that found a child asks the region it believes
//! owns the child's case to hand it over. The number travels sealed to the owner's province; the
//! owner's case service matches it by the blind index in the owner county's subtree; the owner's
//! case worker approves (a normal hand-off to the asker starts) or declines. The asker learns
//! nothing but the answer.

use nol_events::{EventHeader, SubjectScheme, TRANSFER_IN_ANSWERED, TRANSFER_IN_REQUESTED};
use nol_proto::v1::{TransferInAnswered, TransferInMatched, TransferInRequested};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Direction, HandedChild, TransferIn, TransferInState};
use crate::handoffs::{StepError, Steps};
use crate::proto::{sex_from_proto, transfer_in_state_to_proto};
use crate::store::{self, NewTransferIn};

fn header<'a>(event_type: nol_events::EventType, source: RegionCode, id: &'a str, actor: &'a str) -> EventHeader<'a> {
    EventHeader {
        event_type,
        source_region: source,
        aggregate_type: "transfer_in",
        aggregate_id: id,
        aggregate_sequence: 1,
        actor,
    }
}

/// Sends a transfer-in request to the owner's province (first time or again).
pub async fn send_request(
    scheme: &SubjectScheme,
    conn: &mut PgConnection,
    request: &TransferIn,
    resident_id_sealed: &[u8],
) -> sqlx::Result<()> {
    let message = TransferInRequested {
        request_id: request.id.to_string(),
        asking_region_code: request.asking_region.to_string(),
        owner_region_code: request.owner_region.to_string(),
        reason: request.reason.clone(),
        requested_by: request.requested_by.clone(),
        resident_id_sealed: resident_id_sealed.to_vec(),
    };
    let id = request.id.to_string();
    nol_backbone::outbox::emit(
        conn,
        &scheme.cross(TRANSFER_IN_REQUESTED, &request.asking_region, &request.owner_region),
        header(TRANSFER_IN_REQUESTED, request.asking_region, &id, &request.requested_by),
        &message,
    )
    .await?;
    Ok(())
}

/// The asker records its request and sends it.
pub async fn request(
    steps: &Steps,
    conn: &mut PgConnection,
    new: &NewTransferIn<'_>,
    resident_id_sealed: &[u8],
) -> sqlx::Result<TransferIn> {
    let request = store::insert_transfer_in(conn, new).await?.ok_or(sqlx::Error::RowNotFound)?;
    send_request(&steps.scheme, conn, &request, resident_id_sealed).await?;
    Ok(request)
}

/// The owner receives a request: record it (once) and ask this province's case service to match
/// the child; a request already decided is answered again (the asker re-sent it).
pub async fn received(steps: &Steps, conn: &mut PgConnection, request: &TransferInRequested) -> Result<(), StepError> {
    let permanent = |what: &str| StepError::Permanent(format!("transfer-in {}: {what}", request.request_id));
    let id = Uuid::parse_str(&request.request_id).map_err(|_| permanent("request_id"))?;
    let asking = RegionCode::parse(&request.asking_region_code).map_err(|_| permanent("asking region"))?;
    let owner = RegionCode::parse(&request.owner_region_code).map_err(|_| permanent("owner region"))?;
    if owner.province() != steps.province {
        return Err(permanent("addressed outside this province"));
    }
    let new = NewTransferIn {
        id,
        direction: Direction::Incoming,
        asking_region: &asking,
        owner_region: &owner,
        reason: &request.reason,
        requested_by: &request.requested_by,
        resident_id_sealed: Some(&request.resident_id_sealed),
    };
    match store::insert_transfer_in(conn, &new).await? {
        Some(_) => {
            nol_backbone::outbox::emit(
                conn,
                &steps.scheme.local(TRANSFER_IN_REQUESTED, &owner),
                header(TRANSFER_IN_REQUESTED, owner, &request.request_id, "system"),
                request,
            )
            .await?;
            tracing::info!(request_id = %id, asking = %asking, owner = %owner, "transfer-in request received");
        }
        None => {
            if let Some(existing) = store::get_transfer_in(conn, id, Direction::Incoming, false).await?
                && matches!(existing.state, TransferInState::Approved | TransferInState::Declined)
            {
                answer(steps, conn, &existing).await?;
            }
        }
    }
    Ok(())
}

/// The owner's case service looked the child up: the request waits for a case worker, or — no
/// active case of the child there — is declined at once and the asker told.
pub async fn matched(steps: &Steps, conn: &mut PgConnection, matched: &TransferInMatched) -> Result<(), StepError> {
    let id = Uuid::parse_str(&matched.request_id)
        .map_err(|_| StepError::Permanent("transfer_in_matched: request_id".into()))?;
    let case_id = Uuid::parse_str(&matched.case_id).ok();
    let child = matched.child.as_ref().map(|child| HandedChild {
        full_name: child.full_name.clone(),
        resident_id_masked: child.resident_id_masked.clone(),
        sex: sex_from_proto(child.sex),
        // The owner sends a masked child: the year of birth only (views show no more of it).
        birth_date: chrono::NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d")
            .ok()
            .or_else(|| chrono::NaiveDate::from_ymd_opt(child.birth_year, 1, 1))
            .unwrap_or_default(),
        hukou_region: child.hukou_region_code.clone(),
    });
    if let Some(request) = store::set_transfer_in_match(conn, id, case_id, child.as_ref()).await?
        && request.state == TransferInState::Declined
    {
        answer(steps, conn, &request).await?;
        tracing::info!(request_id = %id, "transfer-in request declined: no case of the child there");
    }
    Ok(())
}

/// Tells the asker the owner's decision.
pub async fn answer(steps: &Steps, conn: &mut PgConnection, request: &TransferIn) -> sqlx::Result<()> {
    let message = TransferInAnswered {
        request_id: request.id.to_string(),
        state: transfer_in_state_to_proto(request.state) as i32,
        decline_reason: request.decline_reason.clone().unwrap_or_default(),
        handoff_id: request.handoff_id.map(|id| id.to_string()).unwrap_or_default(),
        decided_by: request.decided_by.clone().unwrap_or_default(),
    };
    let id = Uuid::now_v7().to_string();
    nol_backbone::outbox::emit(
        conn,
        &steps.scheme.cross(TRANSFER_IN_ANSWERED, &request.owner_region, &request.asking_region),
        header(TRANSFER_IN_ANSWERED, request.owner_region, &id, "system"),
        &message,
    )
    .await?;
    Ok(())
}

/// The asker learns the owner's decision.
pub async fn answered(conn: &mut PgConnection, answered: &TransferInAnswered) -> Result<(), StepError> {
    let id = Uuid::parse_str(&answered.request_id)
        .map_err(|_| StepError::Permanent("transfer_in_answered: request_id".into()))?;
    let state = match nol_proto::v1::TransferInState::try_from(answered.state) {
        Ok(nol_proto::v1::TransferInState::Approved) => TransferInState::Approved,
        Ok(nol_proto::v1::TransferInState::Declined) => TransferInState::Declined,
        _ => return Err(StepError::Permanent(format!("transfer_in_answered {id}: not a decision"))),
    };
    let handoff_id = Uuid::parse_str(&answered.handoff_id).ok();
    let reason = Some(answered.decline_reason.as_str()).filter(|reason| !reason.is_empty());
    store::set_transfer_in_decision(conn, id, Direction::Outgoing, state, handoff_id, reason, &answered.decided_by)
        .await?;
    Ok(())
}
