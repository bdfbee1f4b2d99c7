//! What the transfer service does with messages: from the other side of a hand-off (requests,
//! receipts, answers, cancels, completions; transfer-in requests and answers), and from this
//! province's own case service (a case reserved, taken in or refused, handed over; a transfer-in
//! request matched).

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    ASSISTANCE_ANSWERED, ASSISTANCE_ASKED, ASSISTANCE_CLOSED, ASSISTANCE_OFFERED, ASSISTANCE_REPORTED,
    ASSISTANCE_REQUESTED, CASE_HANDED_OVER, CASE_RESERVED, CASE_TAKE_IN_REFUSED, CASE_TAKEN_IN, EventEnvelope,
    HANDOFF_ACCEPTED, HANDOFF_CANCEL_REQUESTED, HANDOFF_CANCELLED, HANDOFF_COMPLETED, HANDOFF_RECEIVED,
    HANDOFF_REJECTED, HANDOFF_REQUESTED, HUKOU_NOTICE, HUKOU_NOTICE_ANSWERED, HUKOU_NOTICE_DUE, SubjectScheme,
    TRANSFER_IN_ANSWERED, TRANSFER_IN_MATCHED, TRANSFER_IN_REQUESTED, decode_payload, region_field, uuid_field,
};
use nol_proto::v1::{
    AssistanceAnswered, AssistanceAsked, AssistanceClosed, AssistanceReported, AssistanceRequested, CaseHandedOver,
    CaseReserved, CaseTakeIn, HandoffAccepted, HandoffCancelled, HandoffCompleted, HandoffReceived, HandoffRejected,
    HandoffRequested, HukouNoticeAnswered, HukouNoticeDue, HukouNoticeSent, TransferInAnswered, TransferInMatched,
    TransferInRequested,
};
use nol_region::RegionCode;
use sqlx::PgConnection;

use crate::handoffs::{Reserved, Steps};
use crate::transfer_in;

/// The subjects the transfer service consumes in `province`: what other regions send it, and
/// what its own case service tells it.
pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    let cross = [
        HANDOFF_REQUESTED,
        HANDOFF_RECEIVED,
        HANDOFF_ACCEPTED,
        HANDOFF_REJECTED,
        HANDOFF_CANCEL_REQUESTED,
        HANDOFF_CANCELLED,
        HANDOFF_COMPLETED,
        TRANSFER_IN_REQUESTED,
        TRANSFER_IN_ANSWERED,
        ASSISTANCE_ASKED,
        ASSISTANCE_ANSWERED,
        ASSISTANCE_REPORTED,
        ASSISTANCE_CLOSED,
        HUKOU_NOTICE,
        HUKOU_NOTICE_ANSWERED,
        ASSISTANCE_OFFERED,
    ]
    .into_iter()
    .map(|event_type| scheme.cross_filter(province, event_type));
    let local = [
        CASE_RESERVED,
        CASE_TAKEN_IN,
        CASE_TAKE_IN_REFUSED,
        CASE_HANDED_OVER,
        TRANSFER_IN_MATCHED,
        ASSISTANCE_REQUESTED,
        HUKOU_NOTICE_DUE,
    ]
    .into_iter()
    .map(|event_type| scheme.local_filter(province, event_type));
    cross.chain(local).collect()
}

/// A message that starts something across regions names its sender (the origin of a hand-off,
/// the owner asking for help …); that must be the region the envelope comes from, whose province
/// signed the message (checked by the backbone before any handler runs). So a province cannot
/// start a hand-off, a request or a notice in another province's name.
fn sent_by(envelope: &EventEnvelope, claimed: &str, what: &str) -> Result<(), HandlerError> {
    let province = |code: &str| RegionCode::parse(code).ok().map(|code| code.province());
    match (province(&envelope.source_region_code), province(claimed)) {
        (Some(source), Some(named)) if source == named => Ok(()),
        _ => Err(HandlerError::Permanent(format!(
            "{}: the {what} {claimed:?} is not in the sending province (the envelope comes from {:?})",
            envelope.event_type, envelope.source_region_code
        ))),
    }
}

pub struct TransferEvents {
    pub steps: Steps,
    pub clock: nol_runtime::clock::Clock,
}

/// The id every answer carries first (field 1 of each answer message).
#[derive(Clone, PartialEq, prost::Message)]
struct AnswerId {
    #[prost(string, tag = "1")]
    id: String,
}

/// An answer about a hand-off, a request for help or a notice must come from the other party of
/// the row it names (the province that signed it, checked by the backbone): a province, even a
/// configured one, cannot receive, accept, reject, cancel, complete, report or close an exchange
/// it is not part of. A row not (yet) here is the step's own business (a tombstone, a late copy).
async fn answered_by_the_other_party(conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
    use crate::domain::Direction::{Incoming, Outgoing};
    use prost::Message;
    let kind = envelope.event_type.as_str();
    let about = |event_types: &[nol_events::EventType]| event_types.iter().any(|event_type| event_type.matches(kind));
    let answers_to_origin = about(&[HANDOFF_RECEIVED, HANDOFF_ACCEPTED, HANDOFF_REJECTED, HANDOFF_CANCELLED]);
    let answers_to_destination = about(&[HANDOFF_CANCEL_REQUESTED, HANDOFF_COMPLETED]);
    let answers_to_owner = about(&[ASSISTANCE_ANSWERED, ASSISTANCE_REPORTED]);
    let answers_to_helper = about(&[ASSISTANCE_CLOSED]);
    let answers_to_notifier = about(&[HUKOU_NOTICE_ANSWERED]);
    if !(answers_to_origin || answers_to_destination || answers_to_owner || answers_to_helper || answers_to_notifier) {
        return Ok(());
    }
    let Ok(answer) = AnswerId::decode(envelope.payload.as_slice()) else {
        return Ok(()); // the step's own decoding names what is wrong
    };
    let Ok(id) = uuid::Uuid::parse_str(&answer.id) else { return Ok(()) };
    let counterpart = if answers_to_origin {
        crate::store::get(&mut *conn, id, Outgoing).await?.map(|handoff| handoff.destination)
    } else if answers_to_destination {
        crate::store::get(&mut *conn, id, Incoming).await?.map(|handoff| handoff.origin)
    } else if answers_to_owner {
        crate::assistance::get(&mut *conn, id, Outgoing).await?.map(|request| request.assisting_region)
    } else if answers_to_helper {
        crate::assistance::get(&mut *conn, id, Incoming).await?.map(|request| request.owner_region)
    } else {
        crate::assistance::notice::get(&mut *conn, id, Outgoing).await?.map(|notice| notice.hukou_region)
    };
    let sender = RegionCode::parse(&envelope.source_region_code).ok().map(|code| code.province());
    match counterpart {
        Some(counterpart) if Some(counterpart.province()) != sender => Err(HandlerError::Permanent(format!(
            "{kind} {id}: sent from {:?}, which is not the other party ({counterpart})",
            envelope.source_region_code
        ))),
        _ => Ok(()),
    }
}

impl EventHandler for TransferEvents {
    fn batch_committed(&self) {
        self.steps.committed.notify_waiters();
    }

    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        answered_by_the_other_party(conn, envelope).await?;
        let steps = &self.steps;
        let kind = envelope.event_type.as_str();
        if HANDOFF_REQUESTED.matches(kind) {
            let request: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
            sent_by(envelope, &request.origin_region_code, "origin")?;
            Ok(steps.receive(conn, &request, envelope).await?)
        } else if HANDOFF_RECEIVED.matches(kind) {
            let receipt: HandoffReceived = decode_payload(envelope, HANDOFF_RECEIVED)?;
            let id = uuid_field(envelope, "handoff_id", &receipt.handoff_id)?;
            Ok(steps.record_receipt(conn, id).await?)
        } else if HANDOFF_ACCEPTED.matches(kind) {
            let accepted: HandoffAccepted = decode_payload(envelope, HANDOFF_ACCEPTED)?;
            let id = uuid_field(envelope, "handoff_id", &accepted.handoff_id)?;
            Ok(steps.record_acceptance(conn, id, &accepted.accepted_by).await?)
        } else if HANDOFF_REJECTED.matches(kind) {
            let rejected: HandoffRejected = decode_payload(envelope, HANDOFF_REJECTED)?;
            Ok(steps.record_rejection(conn, &rejected).await?)
        } else if HANDOFF_CANCEL_REQUESTED.matches(kind) {
            let cancel: HandoffCancelled = decode_payload(envelope, HANDOFF_CANCEL_REQUESTED)?;
            Ok(steps.cancel_requested(conn, &cancel).await?)
        } else if HANDOFF_CANCELLED.matches(kind) {
            let cancelled: HandoffCancelled = decode_payload(envelope, HANDOFF_CANCELLED)?;
            Ok(steps.record_cancellation(conn, &cancelled).await?)
        } else if HANDOFF_COMPLETED.matches(kind) {
            let completed: HandoffCompleted = decode_payload(envelope, HANDOFF_COMPLETED)?;
            let id = uuid_field(envelope, "handoff_id", &completed.handoff_id)?;
            Ok(steps.record_completion(conn, id).await?)
        } else if CASE_RESERVED.matches(kind) {
            let reserved: CaseReserved = decode_payload(envelope, CASE_RESERVED)?;
            let reserved = Reserved {
                handoff_id: uuid_field(envelope, "handoff_id", &reserved.handoff_id)?,
                case_id: uuid_field(envelope, "case_id", &reserved.case_id)?,
                origin: region_field(envelope, "region_code", &reserved.region_code)?,
                destination: region_field(envelope, "destination_region_code", &reserved.destination_region_code)?,
                reason: reserved.reason,
                requested_by: reserved.requested_by,
                sealed_dossier: reserved.sealed_dossier,
                trace_context: envelope.trace_context.clone(),
                today: self.clock.today(),
            };
            steps.request(conn, &reserved).await?;
            Ok(())
        } else if CASE_TAKEN_IN.matches(kind) {
            let taken: CaseTakeIn = decode_payload(envelope, CASE_TAKEN_IN)?;
            let id = uuid_field(envelope, "handoff_id", &taken.handoff_id)?;
            let case_id = uuid_field(envelope, "case_id", &taken.case_id)?;
            steps.taken_in(conn, id, case_id).await?;
            Ok(())
        } else if CASE_TAKE_IN_REFUSED.matches(kind) {
            let refused: CaseTakeIn = decode_payload(envelope, CASE_TAKE_IN_REFUSED)?;
            let id = uuid_field(envelope, "handoff_id", &refused.handoff_id)?;
            let existing = uuid_field(envelope, "existing_case_id", &refused.existing_case_id)?;
            steps.take_in_refused(conn, id, existing).await?;
            Ok(())
        } else if CASE_HANDED_OVER.matches(kind) {
            let handed: CaseHandedOver = decode_payload(envelope, CASE_HANDED_OVER)?;
            let id = uuid_field(envelope, "handoff_id", &handed.handoff_id)?;
            Ok(steps.handed_over(conn, id).await?)
        } else if TRANSFER_IN_REQUESTED.matches(kind) {
            let request: TransferInRequested = decode_payload(envelope, TRANSFER_IN_REQUESTED)?;
            sent_by(envelope, &request.asking_region_code, "asking region")?;
            Ok(transfer_in::received(steps, conn, &request).await?)
        } else if TRANSFER_IN_MATCHED.matches(kind) {
            let matched: TransferInMatched = decode_payload(envelope, TRANSFER_IN_MATCHED)?;
            Ok(transfer_in::matched(steps, conn, &matched).await?)
        } else if TRANSFER_IN_ANSWERED.matches(kind) {
            let answered: TransferInAnswered = decode_payload(envelope, TRANSFER_IN_ANSWERED)?;
            Ok(transfer_in::answered(conn, &answered).await?)
        } else if ASSISTANCE_ASKED.matches(kind) {
            let asked: AssistanceAsked = decode_payload(envelope, ASSISTANCE_ASKED)?;
            sent_by(envelope, &asked.owner_region_code, "owner")?;
            Ok(steps.receive_help_request(conn, &asked).await?)
        } else if ASSISTANCE_ANSWERED.matches(kind) {
            let answered: AssistanceAnswered = decode_payload(envelope, ASSISTANCE_ANSWERED)?;
            Ok(steps.record_help_answer(conn, &answered).await?)
        } else if ASSISTANCE_REPORTED.matches(kind) {
            let reported: AssistanceReported = decode_payload(envelope, ASSISTANCE_REPORTED)?;
            Ok(steps.record_help_report(conn, &reported).await?)
        } else if ASSISTANCE_CLOSED.matches(kind) {
            let closed: AssistanceClosed = decode_payload(envelope, ASSISTANCE_CLOSED)?;
            Ok(steps.record_help_close(conn, &closed).await?)
        } else if ASSISTANCE_OFFERED.matches(kind) {
            let offered: AssistanceAsked = decode_payload(envelope, ASSISTANCE_OFFERED)?;
            sent_by(envelope, &offered.assisting_region_code, "offering region")?;
            Ok(steps.record_offer(conn, &offered).await?)
        } else if HUKOU_NOTICE_DUE.matches(kind) {
            let due: HukouNoticeDue = decode_payload(envelope, HUKOU_NOTICE_DUE)?;
            let event_id = uuid_field(envelope, "event_id", &envelope.event_id)?;
            Ok(steps.send_hukou_notice(conn, event_id, &due).await?)
        } else if HUKOU_NOTICE.matches(kind) {
            let sent: HukouNoticeSent = decode_payload(envelope, HUKOU_NOTICE)?;
            sent_by(envelope, &sent.owner_region_code, "owner")?;
            Ok(steps.receive_hukou_notice(conn, &sent).await?)
        } else if HUKOU_NOTICE_ANSWERED.matches(kind) {
            let answered: HukouNoticeAnswered = decode_payload(envelope, HUKOU_NOTICE_ANSWERED)?;
            Ok(steps.record_notice_answer(conn, &answered).await?)
        } else if ASSISTANCE_REQUESTED.matches(kind) {
            let requested: AssistanceRequested = decode_payload(envelope, ASSISTANCE_REQUESTED)?;
            let event_id = uuid_field(envelope, "event_id", &envelope.event_id)?;
            Ok(steps.ask_for_work_place(conn, event_id, &requested, self.clock.today()).await?)
        } else {
            Err(HandlerError::Permanent(format!("the transfer service does not handle {}", envelope.event_type)))
        }
    }

    async fn handle_duplicate(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        // A request for help seen before (re-sent for want of a receipt): answer again.
        if ASSISTANCE_ASKED.matches(&envelope.event_type) {
            let asked: AssistanceAsked = decode_payload(envelope, ASSISTANCE_ASKED)?;
            return Ok(self.steps.receive_help_request(conn, &asked).await?);
        }
        // A request seen before (the origin re-sent it for want of an answer): answer again.
        if !HANDOFF_REQUESTED.matches(&envelope.event_type) {
            return Ok(());
        }
        let request: HandoffRequested = decode_payload(envelope, HANDOFF_REQUESTED)?;
        let id = uuid_field(envelope, "handoff_id", &request.handoff_id)?;
        if let Some(handoff) = crate::store::get(&mut *conn, id, crate::domain::Direction::Incoming).await? {
            self.steps.answer(conn, &handoff).await?;
        } else {
            self.steps.receive(conn, &request, envelope).await?;
        }
        Ok(())
    }
}
