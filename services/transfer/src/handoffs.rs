//! The hand-off steps, on both sides. Each runs in one transaction with the messages it sends: to
//! the other side (a cross-province subject, stored by the other province's stream) and to this
//! province's own services (a local subject: the case service, reporting).
//!
//! Neither side trusts the backbone to deliver: the origin re-sends its request (and a cancel)
//! until the destination answers, and the destination re-sends its acceptance until the origin
//! completes. Every message is answered with the answering side's current state, so a lost or
//! duplicated message, or one that arrives out of order, ends in the same state on both sides.

use chrono::Datelike;
use nol_backbone::consumer::HandlerError;
use nol_documents::CjkFont;
use nol_events::{
    EventHeader, EventType, HANDOFF_ACCEPTED, HANDOFF_ARRIVED, HANDOFF_CANCEL_REQUESTED, HANDOFF_CANCELLED,
    HANDOFF_COMPLETED, HANDOFF_OVERDUE, HANDOFF_RECEIVED, HANDOFF_REJECTED, HANDOFF_REQUESTED, SubjectScheme,
};
use nol_pii::{ResidentId, SealKeyPair, SealPublicKey};
use nol_proto::v1::{
    ChildSummary, HandoffAccepted, HandoffArrived, HandoffCancelled, HandoffCompleted, HandoffDossier,
    HandoffDossierView, HandoffOverdue, HandoffReceived, HandoffRejected, HandoffRequested,
};
use nol_region::RegionCode;
use nol_runtime::ProvinceKeys;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Answer, Direction, HandedChild, Handoff, NewHandoff, RejectReason, Rejection, State, cancel_wins};
use crate::notice::{self, NoticeFacts};
use crate::proto::{reject_reason_from_proto, reject_reason_to_proto, sex_from_proto};
use crate::store::{self, Notice};

/// How long the accept's event to this province's case service waits before it goes out: the
/// accept's call has the case taken in within milliseconds, and the event, its fallback, should
/// not race it (both would wait on one another in the case service's take-in).
pub const TAKE_IN_FALLBACK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the steps need besides the transaction.
#[derive(Clone)]
pub struct Steps {
    pub scheme: SubjectScheme,
    pub keys: ProvinceKeys,
    /// The province's sealing key pair (`seal.key`).
    pub seal: SealKeyPair,
    pub province: RegionCode,
    pub font: CjkFont,
    /// For the notice number's own short transaction.
    pub pool: PgPool,
    /// Told after each of the consumer's commits: an `AcceptHandoff` call waiting for the case
    /// service's decision looks again at once instead of at its next poll.
    pub committed: std::sync::Arc<tokio::sync::Notify>,
}

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

/// Why a step could not be applied: a store error (retry), or a message that can never be applied.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Permanent(String),
}

impl From<StepError> for HandlerError {
    fn from(error: StepError) -> HandlerError {
        match error {
            StepError::Database(error) => error.into(),
            StepError::Permanent(reason) => HandlerError::Permanent(reason),
        }
    }
}

impl From<nol_documents::DocumentError> for StepError {
    fn from(error: nol_documents::DocumentError) -> StepError {
        StepError::Database(sqlx::Error::Protocol(format!("the written notice: {error}")))
    }
}

/// A case the origin's case service reserved for a hand-off (from ReserveCase, or from its
/// `case_reserved` event when the caller failed before recording it).
pub struct Reserved {
    pub handoff_id: Uuid,
    pub case_id: Uuid,
    pub origin: RegionCode,
    pub destination: RegionCode,
    pub reason: String,
    pub requested_by: String,
    /// HandoffDossier sealed to this province's own key.
    pub sealed_dossier: Vec<u8>,
    pub trace_context: std::collections::HashMap<String, String>,
    pub today: chrono::NaiveDate,
}

impl Steps {
    fn seal(&self) -> &SealKeyPair {
        &self.seal
    }

    /// The key to seal for `destination`'s province (our own for a hand-off inside it).
    pub fn seal_key(&self, destination: &RegionCode) -> Option<SealPublicKey> {
        if destination.province() == self.province {
            return Some(self.seal.public_key());
        }
        self.keys.seal_key_of(destination)
    }

    /// The origin records the outgoing hand-off of a reserved case, issues its numbered written
    /// notice, and sends the request across (the dossier, with the notice, sealed to the
    /// destination) — once: a second call for the same hand-off changes nothing.
    pub async fn request(&self, conn: &mut PgConnection, reserved: &Reserved) -> Result<Handoff, StepError> {
        // The RPC and the `case_reserved` consumer may record the same hand-off at once. Two
        // concurrent `INSERT … ON CONFLICT (id, direction)` of one row deadlock on the table's
        // other unique index (one under way per case): the second waits here for the first to
        // commit, then finds its row.
        store::lock_handoff(&mut *conn, reserved.handoff_id).await?;
        if let Some(existing) = store::get(&mut *conn, reserved.handoff_id, Direction::Outgoing).await? {
            return Ok(existing);
        }
        let opened = self.seal().open(&reserved.sealed_dossier).map_err(|error| {
            StepError::Permanent(format!("hand-off {}: reserved dossier: {error}", reserved.handoff_id))
        })?;
        let mut dossier = HandoffDossier::decode(opened.as_slice()).map_err(|error| {
            StepError::Permanent(format!("hand-off {}: reserved dossier: {error}", reserved.handoff_id))
        })?;
        let seal_key = self.seal_key(&reserved.destination).ok_or_else(|| {
            StepError::Permanent(format!(
                "hand-off {}: no link to {}",
                reserved.handoff_id,
                reserved.destination.province()
            ))
        })?;
        // The RPC claims the number before it opens its transaction; only the `case_reserved`
        // consumer (one connection) claims it here, when the RPC died before it could.
        let running = match store::claimed_notice_number(&mut *conn, reserved.handoff_id).await? {
            Some(running) => running,
            None => {
                store::claim_notice_number(&self.pool, reserved.handoff_id, &reserved.origin, reserved.today.year())
                    .await?
            }
        };
        let number = notice::number(&reserved.origin, reserved.today.year(), running);
        let handoff_id = reserved.handoff_id.to_string();
        let case_id = reserved.case_id.to_string();
        let facts = NoticeFacts {
            number: &number,
            handoff_id: &handoff_id,
            case_id: &case_id,
            origin: reserved.origin,
            destination: reserved.destination,
            reason: &reserved.reason,
            requested_by: &reserved.requested_by,
            date: reserved.today,
            dossier: &dossier,
        };
        let (pdf, sha256) = notice::render(&self.font, &facts)?;
        dossier.notice_pdf = pdf.clone();
        dossier.notice_number = number.clone();
        let child = dossier.child.clone().unwrap_or_default();
        let new = NewHandoff {
            id: reserved.handoff_id,
            direction: Direction::Outgoing,
            state: State::Requested,
            case_id: reserved.case_id,
            origin: reserved.origin,
            destination: reserved.destination,
            reason: reserved.reason.clone(),
            child: HandedChild {
                full_name: child.full_name.clone(),
                resident_id_masked: child.resident_id_masked.clone(),
                sex: sex_from_proto(child.sex),
                birth_date: chrono::NaiveDate::parse_from_str(&child.birth_date, "%Y-%m-%d").unwrap_or(reserved.today),
                hukou_region: child.hukou_region_code.clone(),
            },
            sealed_dossier: Some(seal_key.seal_from(&dossier.encode_to_vec(), self.province.as_str())),
            trace_context: reserved.trace_context.clone(),
            requested_by: reserved.requested_by.clone(),
            requested_at: chrono::Utc::now(),
            notice_number: Some(number.clone()),
            notice_sha256: Some(sha256.clone()),
            dossier_view: None,
        };
        let Some(handoff) = store::insert(conn, &new).await? else {
            return store::get(&mut *conn, reserved.handoff_id, Direction::Outgoing)
                .await?
                .ok_or_else(|| StepError::Database(sqlx::Error::RowNotFound));
        };
        store::insert_notice(conn, handoff.id, &Notice { number, pdf, sha256 }).await?;
        self.send_request(conn, &handoff, false).await?;
        let local = HandoffRequested {
            child_masked: Some(ChildSummary {
                full_name: handoff.child.full_name.clone(),
                resident_id_masked: handoff.child.resident_id_masked.clone(),
                ..Default::default()
            }),
            ..request_message(&handoff, Vec::new())
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(HANDOFF_REQUESTED, &handoff.origin),
            header(HANDOFF_REQUESTED, handoff.origin, &handoff_id, 1, &handoff.requested_by),
            &local,
        )
        .await?;
        tracing::info!(handoff_id = %handoff.id, origin = %handoff.origin, destination = %handoff.destination, "hand-off requested");
        Ok(handoff)
    }

    /// Sends the request across as a new event and records its id.
    async fn send_request(&self, conn: &mut PgConnection, handoff: &Handoff, resend: bool) -> sqlx::Result<()> {
        let id = handoff.id.to_string();
        let message = request_message(handoff, handoff.sealed_dossier.clone().unwrap_or_default());
        let envelope = nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(HANDOFF_REQUESTED, &handoff.origin, &handoff.destination),
            header(HANDOFF_REQUESTED, handoff.origin, &id, 1, &handoff.requested_by),
            &message,
        )
        .await?;
        let event_id = Uuid::parse_str(&envelope.event_id).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        store::mark_sent(conn, handoff.id, event_id, resend).await
    }

    /// No answer yet: the origin sends its request (or its cancel) again; the destination sends
    /// its acceptance again until the origin completes. The same request event goes out again
    /// while its outbox row is there (so the destination's inbox recognises it); while the first
    /// send has not even been acknowledged (the other side is unreachable), the relay is still
    /// retrying it: nothing to add.
    pub async fn resend(&self, conn: &mut PgConnection, handoff: &Handoff) -> sqlx::Result<()> {
        match (handoff.direction, handoff.state, &handoff.cancellation) {
            (Direction::Incoming, State::Accepted, _) => {
                self.answer(conn, handoff).await?;
                store::touch_sent(conn, handoff.id, Direction::Incoming, true).await?;
                tracing::info!(handoff_id = %handoff.id, "acceptance re-sent: the origin has not completed");
                return Ok(());
            }
            (Direction::Outgoing, _, Some(cancellation)) if cancellation.at.is_none() => {
                self.send_cancel_request(conn, handoff, &cancellation.reason, &cancellation.by).await?;
                store::touch_sent(conn, handoff.id, Direction::Outgoing, true).await?;
                tracing::info!(handoff_id = %handoff.id, "cancel re-sent for want of an answer");
                return Ok(());
            }
            _ => {}
        }
        let sent = match handoff.request_event_id {
            Some(event_id) => nol_backbone::outbox::sent(conn, event_id).await?,
            None => None,
        };
        match (sent, handoff.request_event_id) {
            (Some(false), Some(_)) => return store::touch_sent(conn, handoff.id, Direction::Outgoing, false).await,
            (Some(true), Some(event_id)) => {
                nol_backbone::outbox::resend(conn, event_id).await?;
                store::mark_sent(conn, handoff.id, event_id, true).await?;
            }
            _ => self.send_request(conn, handoff, true).await?,
        }
        tracing::info!(handoff_id = %handoff.id, resends = handoff.resend_count + 1, state = ?handoff.state, "hand-off request re-sent for want of an answer");
        Ok(())
    }

    /// Not decided by the deadline: escalate to the origin's parent bureau (R12). The case stays
    /// owned by the origin; the re-sends go on.
    pub async fn escalate(&self, conn: &mut PgConnection, handoff: &Handoff) -> sqlx::Result<()> {
        let parent = handoff.escalation_target();
        store::mark_escalated(conn, handoff.id, &parent).await?;
        let overdue = HandoffOverdue {
            handoff_id: handoff.id.to_string(),
            case_id: handoff.case_id.to_string(),
            origin_region_code: handoff.origin.to_string(),
            destination_region_code: handoff.destination.to_string(),
            escalated_to_region_code: parent.to_string(),
            request_time: Some(nol_runtime::time::timestamp(handoff.requested_at)),
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(HANDOFF_OVERDUE, &handoff.origin),
            header(HANDOFF_OVERDUE, handoff.origin, &overdue.handoff_id, 5, "system"),
            &overdue,
        )
        .await?;
        tracing::warn!(handoff_id = %handoff.id, escalated_to = %parent, "hand-off not decided by its deadline; escalated");
        Ok(())
    }

    /// The destination received a request: record it (once) with the dossier as its case worker
    /// will read it and the notice (verified against its announced SHA-256), tell its own services
    /// it arrived, and answer. A request whose cancel came first is answered "cancelled"; one whose
    /// notice does not match is rejected as wrong data — never left unanswered.
    pub async fn receive(
        &self,
        conn: &mut PgConnection,
        request: &HandoffRequested,
        envelope: &nol_events::EventEnvelope,
    ) -> Result<(), StepError> {
        let permanent = |what: String| StepError::Permanent(format!("hand-off {}: {what}", request.handoff_id));
        let id = Uuid::parse_str(&request.handoff_id).map_err(|_| permanent("handoff_id".into()))?;
        let case_id = Uuid::parse_str(&request.case_id).map_err(|_| permanent("case_id".into()))?;
        let origin = RegionCode::parse(&request.origin_region_code).map_err(|_| permanent("origin".into()))?;
        let destination =
            RegionCode::parse(&request.destination_region_code).map_err(|_| permanent("destination".into()))?;
        if destination.province() != self.province {
            return Err(permanent(format!("addressed to {destination}, outside this province")));
        }
        if store::is_tombstoned(conn, id).await? {
            let cancelled = HandoffCancelled {
                handoff_id: id.to_string(),
                case_id: case_id.to_string(),
                origin_region_code: origin.to_string(),
                destination_region_code: destination.to_string(),
                reason: String::new(),
                cancelled_by: String::new(),
            };
            self.send(conn, HANDOFF_CANCELLED, destination, origin, "system", &cancelled).await?;
            return Ok(());
        }
        let opened = self
            .seal()
            .open_from(&request.sealed_dossier, origin.province().as_str())
            .map_err(|error| permanent(format!("dossier: {error}")))?;
        let dossier = HandoffDossier::decode(opened.as_slice())
            .map_err(|error| permanent(format!("dossier does not decode: {error}")))?;
        let child = dossier.child.clone().unwrap_or_default();
        let resident_id =
            ResidentId::parse(&child.resident_id).map_err(|error| permanent(format!("dossier: {error}")))?;
        let notice_sha256 = hex_bytes(&request.notice_sha256);
        let notice_ok = {
            use sha2::Digest;
            dossier.notice_pdf.is_empty()
                || notice_sha256.as_deref() == Some(sha2::Sha256::digest(&dossier.notice_pdf).as_slice())
        };
        let view = HandoffDossierView {
            child: Some(ChildSummary {
                resident_id: String::new(),
                resident_id_masked: resident_id.masked(),
                birth_date: String::new(),
                birth_year: resident_id.birth_year(),
                ..child.clone()
            }),
            causes: dossier.causes.clone(),
            notes: dossier.notes.clone(),
            registered_poor: dossier.registered_poor,
            disability_grade: dossier.disability_grade,
            attempt_count: dossier.attempts.len() as i32,
            joint_attempt_count: dossier.attempts.iter().filter(|attempt| attempt.joint).count() as i32,
            contacts: dossier
                .officers
                .iter()
                .map(|officer| format!("{}，{}", officer.full_name, officer.phone))
                .collect(),
            new_inflow_region_code: dossier.new_inflow_region_code.clone(),
        };
        let new = NewHandoff {
            id,
            direction: Direction::Incoming,
            state: State::Delivered,
            case_id,
            origin,
            destination,
            reason: request.reason.clone(),
            child: HandedChild {
                full_name: child.full_name.clone(),
                resident_id_masked: resident_id.masked(),
                sex: sex_from_proto(child.sex),
                birth_date: resident_id.birth_date(),
                hukou_region: child.hukou_region_code.clone(),
            },
            sealed_dossier: Some(request.sealed_dossier.clone()),
            trace_context: envelope.trace_context.clone(),
            requested_by: request.requested_by.clone(),
            requested_at: nol_events::occurred_at(envelope),
            notice_number: Some(request.notice_number.clone()).filter(|number| !number.is_empty()),
            notice_sha256,
            dossier_view: Some(view.encode_to_vec()),
        };
        if let Some(handoff) = store::insert(conn, &new).await? {
            tracing::info!(handoff_id = %id, origin = %origin, destination = %destination, "hand-off received");
            if !dossier.notice_pdf.is_empty() && notice_ok {
                let notice = Notice {
                    number: dossier.notice_number.clone(),
                    sha256: handoff.notice_sha256.clone().unwrap_or_default(),
                    pdf: dossier.notice_pdf.clone(),
                };
                store::insert_notice(conn, id, &notice).await?;
            }
            let arrived = HandoffArrived {
                handoff_id: id.to_string(),
                case_id: case_id.to_string(),
                origin_region_code: origin.to_string(),
                destination_region_code: destination.to_string(),
                child: Some(ChildSummary { resident_id: String::new(), ..view.child.clone().unwrap_or_default() }),
                receive_time: Some(nol_runtime::time::timestamp(chrono::Utc::now())),
            };
            nol_backbone::outbox::emit(
                conn,
                &self.scheme.local(HANDOFF_ARRIVED, &destination),
                header(HANDOFF_ARRIVED, destination, &arrived.handoff_id, 2, "system"),
                &arrived,
            )
            .await?;
            if !notice_ok {
                let rejection = Rejection {
                    reason: RejectReason::DataWrong,
                    note: nol_messages::Transfer::NoticeMismatch.zh(),
                    by: "system".to_owned(),
                    at: None,
                    linked_case_id: None,
                };
                self.reject(conn, &handoff, &rejection).await?;
                return Ok(());
            }
        }
        let handoff = store::get(&mut *conn, id, Direction::Incoming).await?.ok_or(sqlx::Error::RowNotFound)?;
        self.answer(conn, &handoff).await?;
        Ok(())
    }

    /// Sends `payload` from this side to the other province's (or this province's) transfer service.
    async fn send<M: Message>(
        &self,
        conn: &mut PgConnection,
        event_type: EventType,
        from: RegionCode,
        to: RegionCode,
        actor: &str,
        payload: &M,
    ) -> sqlx::Result<()> {
        let id = Uuid::now_v7().to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.cross(event_type, &from, &to),
            header(event_type, from, &id, 2, actor),
            payload,
        )
        .await?;
        Ok(())
    }

    /// Tells this province's own services (the case service, reporting) about a step.
    async fn tell_own<M: Message>(
        &self,
        conn: &mut PgConnection,
        event_type: EventType,
        region: RegionCode,
        handoff: &Handoff,
        actor: &str,
        payload: &M,
    ) -> sqlx::Result<()> {
        let id = handoff.id.to_string();
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(event_type, &region),
            header(event_type, region, &id, 3, actor),
            payload,
        )
        .await?;
        Ok(())
    }

    /// Tells the origin where its request stands here: a receipt, the acceptance, the refusal or
    /// the withdrawal. Sent on every request (and cancel) that arrives, since the last answer may
    /// have been lost.
    pub async fn answer(&self, conn: &mut PgConnection, handoff: &Handoff) -> sqlx::Result<()> {
        let (origin, destination) = (handoff.origin, handoff.destination);
        match handoff.answer() {
            Answer::Receipt | Answer::Nothing => {
                let receipt = HandoffReceived {
                    handoff_id: handoff.id.to_string(),
                    origin_region_code: origin.to_string(),
                    destination_region_code: destination.to_string(),
                };
                self.send(conn, HANDOFF_RECEIVED, destination, origin, "system", &receipt).await
            }
            Answer::Acceptance => {
                let accepted = acceptance_message(handoff, Vec::new());
                let actor = accepted.accepted_by.clone();
                self.send(conn, HANDOFF_ACCEPTED, destination, origin, &actor, &accepted).await
            }
            Answer::Rejection => {
                let rejected = rejection_message(handoff);
                self.send(conn, HANDOFF_REJECTED, destination, origin, "system", &rejected).await
            }
            Answer::Cancellation => {
                let cancelled = cancellation_message(handoff);
                self.send(conn, HANDOFF_CANCELLED, destination, origin, "system", &cancelled).await
            }
        }
    }

    /// The origin got the receipt: the request is delivered.
    pub async fn record_receipt(&self, conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
        let Some(handoff) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
            tracing::warn!(handoff_id = %id, "receipt for an unknown hand-off ignored");
            return Ok(());
        };
        if let Some(next) = handoff.state.advance_to(State::Delivered) {
            store::set_state(conn, id, Direction::Outgoing, next, None).await?;
        }
        Ok(())
    }

    /// A destination case worker accepts: the hand-off is accepting while this province's case
    /// service opens the case (R2 checked in that commit, which moves responsibility here). A
    /// cancel that arrives from now on loses.
    ///
    /// The accept's event to this province's case service is the take-in's fallback: `AcceptHandoff`
    /// has the case service take the case in at once, so the event goes out only after
    /// [`TAKE_IN_FALLBACK_AFTER`] and then finds the take-in decided. When the call failed or its
    /// process died after this commit, the event decides.
    pub async fn accept(&self, conn: &mut PgConnection, handoff: &Handoff, accepted_by: &str) -> sqlx::Result<Handoff> {
        let updated =
            store::set_state(conn, handoff.id, Direction::Incoming, State::Accepting, Some(accepted_by)).await?;
        let local = acceptance_message(&updated, handoff.sealed_dossier.clone().unwrap_or_default());
        let id = handoff.id.to_string();
        let envelope = nol_backbone::outbox::new_envelope(
            header(HANDOFF_ACCEPTED, handoff.destination, &id, 3, accepted_by),
            &local,
        );
        let subject = self.scheme.local(HANDOFF_ACCEPTED, &handoff.destination);
        nol_backbone::outbox::enqueue_after(conn, &subject, &envelope, TAKE_IN_FALLBACK_AFTER).await?;
        Ok(updated)
    }

    /// This province's case service opened the case: accepted, and the origin is told. Returns the
    /// hand-off as it stands after (`None` when there is no such incoming hand-off).
    pub async fn taken_in(&self, conn: &mut PgConnection, id: Uuid, case_id: Uuid) -> sqlx::Result<Option<Handoff>> {
        let Some(mut handoff) = store::get_for_update(conn, id, Direction::Incoming).await? else {
            return Ok(None);
        };
        if handoff.state.advance_to(State::Accepted).is_none() {
            // Recorded already (the accept's call and the case service's event both tell it).
            if handoff.destination_case_id != Some(case_id) {
                store::set_destination_case(conn, id, Direction::Incoming, case_id).await?;
                handoff.destination_case_id = Some(case_id);
            }
            return Ok(Some(handoff));
        }
        let updated = store::set_taken_in(conn, id, case_id).await?;
        self.answer(conn, &updated).await?;
        tracing::info!(handoff_id = %id, case_id = %case_id, "hand-off accepted; responsibility moved here");
        Ok(Some(updated))
    }

    /// This province's case service refused the accept (R2: the child already has an active case
    /// here): the hand-off is rejected as "already has a case here", linked to that case. Returns
    /// the hand-off as it stands after (as it was, when it was no longer accepting).
    pub async fn take_in_refused(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        existing: Uuid,
    ) -> sqlx::Result<Option<Handoff>> {
        let Some(handoff) = store::get_for_update(conn, id, Direction::Incoming).await? else {
            return Ok(None);
        };
        if handoff.state != State::Accepting {
            return Ok(Some(handoff));
        }
        let rejection = Rejection {
            reason: RejectReason::AlreadyHasCase,
            note: nol_messages::Transfer::AcceptRefusedByR2 { case_id: existing.to_string() }.zh(),
            by: "system".to_owned(),
            at: None,
            linked_case_id: Some(existing),
        };
        Ok(Some(self.reject(conn, &handoff, &rejection).await?))
    }

    /// The destination refuses: rejected on this side, its own services told, the origin answered.
    pub async fn reject(
        &self,
        conn: &mut PgConnection,
        handoff: &Handoff,
        rejection: &Rejection,
    ) -> sqlx::Result<Handoff> {
        let updated = store::set_rejected(conn, handoff.id, Direction::Incoming, rejection).await?;
        let message = rejection_message(&updated);
        self.tell_own(conn, HANDOFF_REJECTED, handoff.destination, handoff, &rejection.by, &message).await?;
        self.answer(conn, &updated).await?;
        tracing::info!(handoff_id = %handoff.id, reason = ?rejection.reason, "hand-off rejected");
        Ok(updated)
    }

    /// The origin asks to withdraw: it waits for the destination's answer (which may be the
    /// acceptance, if the accept came first).
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        handoff: &Handoff,
        reason: &str,
        by: &str,
    ) -> sqlx::Result<Handoff> {
        let updated = store::set_cancellation(conn, handoff.id, Direction::Outgoing, reason, by, false).await?;
        self.send_cancel_request(conn, &updated, reason, by).await?;
        Ok(updated)
    }

    async fn send_cancel_request(
        &self,
        conn: &mut PgConnection,
        handoff: &Handoff,
        reason: &str,
        by: &str,
    ) -> sqlx::Result<()> {
        let message = HandoffCancelled {
            handoff_id: handoff.id.to_string(),
            case_id: handoff.case_id.to_string(),
            origin_region_code: handoff.origin.to_string(),
            destination_region_code: handoff.destination.to_string(),
            reason: reason.to_owned(),
            cancelled_by: by.to_owned(),
        };
        self.send(conn, HANDOFF_CANCEL_REQUESTED, handoff.origin, handoff.destination, by, &message).await
    }

    /// The destination decides on a cancel request: not yet accepted → cancelled (its own
    /// services told); accepted (or accepting) → the acceptance stands. Either way the origin is
    /// answered. A cancel that overtook its request is remembered, and answered.
    pub async fn cancel_requested(&self, conn: &mut PgConnection, event: &HandoffCancelled) -> Result<(), StepError> {
        let id = Uuid::parse_str(&event.handoff_id).map_err(|_| StepError::Permanent("cancel: handoff_id".into()))?;
        let Some(handoff) = store::get_for_update(conn, id, Direction::Incoming).await? else {
            store::insert_tombstone(conn, id).await?;
            let origin = RegionCode::parse(&event.origin_region_code)
                .map_err(|_| StepError::Permanent("cancel: origin".into()))?;
            let destination = RegionCode::parse(&event.destination_region_code)
                .map_err(|_| StepError::Permanent("cancel: destination".into()))?;
            self.send(conn, HANDOFF_CANCELLED, destination, origin, "system", event).await?;
            return Ok(());
        };
        let handoff = if cancel_wins(handoff.state) {
            let updated =
                store::set_cancellation(conn, id, Direction::Incoming, &event.reason, &event.cancelled_by, true)
                    .await?;
            let message = cancellation_message(&updated);
            self.tell_own(conn, HANDOFF_CANCELLED, updated.destination, &updated, &event.cancelled_by, &message)
                .await?;
            tracing::info!(handoff_id = %id, "hand-off withdrawn by the origin");
            updated
        } else {
            handoff
        };
        self.answer(conn, &handoff).await?;
        Ok(())
    }

    /// The origin learned of the accept: accepted here, and this province's case service marks the
    /// case handed over (then `case_handed_over` completes it). A repeated acceptance of a
    /// completed hand-off is answered with the completion again.
    pub async fn record_acceptance(&self, conn: &mut PgConnection, id: Uuid, accepted_by: &str) -> sqlx::Result<()> {
        let Some(handoff) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
            tracing::warn!(handoff_id = %id, "acceptance of an unknown hand-off ignored");
            return Ok(());
        };
        if handoff.state == State::Completed {
            return self.send_completion(conn, &handoff).await;
        }
        if handoff.state.advance_to(State::Accepted).is_none() {
            return Ok(());
        }
        let updated = store::set_state(conn, id, Direction::Outgoing, State::Accepted, Some(accepted_by)).await?;
        let completed = HandoffCompleted {
            handoff_id: id.to_string(),
            case_id: handoff.case_id.to_string(),
            origin_region_code: handoff.origin.to_string(),
            destination_region_code: handoff.destination.to_string(),
        };
        self.tell_own(conn, HANDOFF_COMPLETED, handoff.origin, &updated, "system", &completed).await?;
        tracing::info!(handoff_id = %id, destination = %handoff.destination, "hand-off accepted by the destination");
        Ok(())
    }

    /// This province's case service marked the case handed over: completed here, and the
    /// destination is told.
    pub async fn handed_over(&self, conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
        let Some(handoff) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
            return Ok(());
        };
        let Some(next) = handoff.state.advance_to(State::Completed) else { return Ok(()) };
        let updated = store::set_state(conn, id, Direction::Outgoing, next, None).await?;
        self.send_completion(conn, &updated).await?;
        tracing::info!(handoff_id = %id, "hand-off completed");
        Ok(())
    }

    async fn send_completion(&self, conn: &mut PgConnection, handoff: &Handoff) -> sqlx::Result<()> {
        let completed = HandoffCompleted {
            handoff_id: handoff.id.to_string(),
            case_id: handoff.case_id.to_string(),
            origin_region_code: handoff.origin.to_string(),
            destination_region_code: handoff.destination.to_string(),
        };
        self.send(conn, HANDOFF_COMPLETED, handoff.origin, handoff.destination, "system", &completed).await
    }

    /// The destination learned the origin completed: completed here too.
    pub async fn record_completion(&self, conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
        let Some(handoff) = store::get_for_update(conn, id, Direction::Incoming).await? else {
            return Ok(());
        };
        if let Some(next) = handoff.state.advance_to(State::Completed) {
            store::set_state(conn, id, Direction::Incoming, next, None).await?;
        }
        Ok(())
    }

    /// The origin learned of a refusal: rejected here, and this province's case service opens the
    /// case again (the origin keeps it and may send it elsewhere).
    pub async fn record_rejection(&self, conn: &mut PgConnection, event: &HandoffRejected) -> Result<(), StepError> {
        let id =
            Uuid::parse_str(&event.handoff_id).map_err(|_| StepError::Permanent("rejection: handoff_id".into()))?;
        let Some(handoff) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
            tracing::warn!(handoff_id = %id, "rejection of an unknown hand-off ignored");
            return Ok(());
        };
        if handoff.state.advance_to(State::Rejected).is_none() {
            return Ok(());
        }
        let rejection = Rejection {
            reason: reject_reason_from_proto(event.reason).unwrap_or(RejectReason::Other),
            note: event.note.clone(),
            by: event.rejected_by.clone(),
            at: None,
            linked_case_id: Uuid::parse_str(&event.linked_case_id).ok(),
        };
        let updated = store::set_rejected(conn, id, Direction::Outgoing, &rejection).await?;
        self.tell_own(conn, HANDOFF_REJECTED, handoff.origin, &updated, &event.rejected_by, event).await?;
        tracing::info!(handoff_id = %id, reason = ?rejection.reason, "hand-off rejected by the destination; the case stays here");
        Ok(())
    }

    /// The origin learned its withdrawal was confirmed: cancelled here, and this province's case
    /// service opens the case again.
    pub async fn record_cancellation(
        &self,
        conn: &mut PgConnection,
        event: &HandoffCancelled,
    ) -> Result<(), StepError> {
        let id =
            Uuid::parse_str(&event.handoff_id).map_err(|_| StepError::Permanent("cancelled: handoff_id".into()))?;
        let Some(handoff) = store::get_for_update(conn, id, Direction::Outgoing).await? else {
            return Ok(());
        };
        if handoff.state.advance_to(State::Cancelled).is_none() {
            return Ok(());
        }
        let cancellation = handoff.cancellation.clone();
        let (reason, by) = cancellation.map(|cancel| (cancel.reason, cancel.by)).unwrap_or_default();
        let updated = store::set_cancellation(conn, id, Direction::Outgoing, &reason, &by, true).await?;
        let message = cancellation_message(&updated);
        self.tell_own(conn, HANDOFF_CANCELLED, handoff.origin, &updated, &by, &message).await?;
        tracing::info!(handoff_id = %id, "hand-off withdrawn; the case stays here");
        Ok(())
    }
}

fn request_message(handoff: &Handoff, sealed_dossier: Vec<u8>) -> HandoffRequested {
    HandoffRequested {
        handoff_id: handoff.id.to_string(),
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        reason: handoff.reason.clone(),
        requested_by: handoff.requested_by.clone(),
        sealed_dossier,
        child_masked: None,
        notice_number: handoff.notice_number.clone().unwrap_or_default(),
        notice_sha256: handoff.notice_sha256.as_deref().map(notice::hex).unwrap_or_default(),
    }
}

fn acceptance_message(handoff: &Handoff, sealed_dossier: Vec<u8>) -> HandoffAccepted {
    HandoffAccepted {
        handoff_id: handoff.id.to_string(),
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        accepted_by: handoff.accepted_by.clone().unwrap_or_default(),
        sealed_dossier,
    }
}

fn rejection_message(handoff: &Handoff) -> HandoffRejected {
    let rejection = handoff.rejection.clone();
    HandoffRejected {
        handoff_id: handoff.id.to_string(),
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        reason: rejection.as_ref().map(|rejection| reject_reason_to_proto(rejection.reason) as i32).unwrap_or(0),
        note: rejection.as_ref().map(|rejection| rejection.note.clone()).unwrap_or_default(),
        rejected_by: rejection.as_ref().map(|rejection| rejection.by.clone()).unwrap_or_default(),
        linked_case_id: rejection
            .as_ref()
            .and_then(|rejection| rejection.linked_case_id)
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

fn cancellation_message(handoff: &Handoff) -> HandoffCancelled {
    let cancellation = handoff.cancellation.clone();
    HandoffCancelled {
        handoff_id: handoff.id.to_string(),
        case_id: handoff.case_id.to_string(),
        origin_region_code: handoff.origin.to_string(),
        destination_region_code: handoff.destination.to_string(),
        reason: cancellation.as_ref().map(|cancel| cancel.reason.clone()).unwrap_or_default(),
        cancelled_by: cancellation.as_ref().map(|cancel| cancel.by.clone()).unwrap_or_default(),
    }
}

/// The bytes of a hex digest; `None` when it is empty or not hex.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|bytes| !bytes.is_empty())
}
