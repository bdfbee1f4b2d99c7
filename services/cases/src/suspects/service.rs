//! The suspected-dropout ledger's use cases: one function per RPC of `SuspectService`, and the
//! cross-check events taken in by the consumer. Each change is one transaction with its event; a
//! confirmation opens the case through the case ledger in the same transaction.

use nol_auth::{Caller, Role};
use nol_backbone::consumer::HandlerError;
use nol_events::{
    EventEnvelope, EventHeader, PUPIL_SUSPECTED_OUT_OF_SCHOOL, RESIDENT_ID_EVENT_CONTEXT, SUSPECT_RECORDED,
    SUSPECT_RESOLVED, SubjectScheme, decode_payload, region_field, uuid_field,
};
use nol_messages::vocab::Action;
use nol_messages::{Common, Count, FieldViolation, Suspect as Says};
use nol_pii::ResidentId;
use nol_proto::v1::{
    CloseSuspectRequest, ConfirmSuspectRequest, GetSuspectRequest, ListSuspectsRequest, Pupil, PupilView,
    RecordSuspectRequest, ReportAbsenceRequest, Sex, SuspectOrigin, SuspectRecorded, SuspectResolved, SuspectState,
    SuspectView, SuspectedOutOfSchool, record_suspect_request,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::keys::{DataKeys, SharedKeyring};
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{self, Origin, Outcome, Proof, State, SuspectItem, SuspectRefusal, check_pending};
use super::store::{self, NewSuspect, Resolution};
use crate::case::domain::stored::Stored;
use crate::case::domain::{Source, check_causes};
use crate::case::ledger::{self, LedgerError};
use crate::case::store::NewCase;
use crate::child::{ChildRecord, SUSPECT_RESIDENT_ID_CONTEXT, reveal, seal, sex_number};
use crate::registry::RegistryClient;

/// A page of items.
pub struct SuspectPage {
    pub items: Vec<SuspectItem>,
    pub next_page_token: String,
}

pub struct SuspectService {
    pool: PgPool,
    data_key: DataKeys,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    pub(crate) province: RegionCode,
    registry: RegistryClient,
    clock: nol_runtime::clock::Clock,
}

/// Records an item with its `suspect_recorded` event, in the caller's transaction. `None` when
/// the child already has a pending item (nothing written).
async fn record(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    new: &NewSuspect,
) -> sqlx::Result<Option<SuspectItem>> {
    let Some(item) = store::insert(conn, new).await? else {
        return Ok(None);
    };
    let payload = SuspectRecorded {
        suspect_id: item.id.to_string(),
        region_code: item.region.to_string(),
        origin: item.origin.as_stored().to_owned(),
    };
    emit(conn, scheme, SUSPECT_RECORDED, &item, &item.recorded_by, &payload).await?;
    Ok(Some(item))
}

async fn emit<M: prost::Message>(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    event_type: nol_events::EventType,
    item: &SuspectItem,
    actor: &str,
    payload: &M,
) -> sqlx::Result<()> {
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(event_type, &item.region),
        EventHeader {
            event_type,
            source_region: item.region,
            aggregate_type: "suspect",
            aggregate_id: &item.id.to_string(),
            aggregate_sequence: item.version as u64,
            actor,
        },
        payload,
    )
    .await?;
    Ok(())
}

/// Resolves a pending item with its `suspect_resolved` event, in the caller's transaction (which
/// holds the item's lock and, for a confirmation, the case just opened).
async fn resolve(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    id: Uuid,
    resolution: &Resolution<'_>,
) -> sqlx::Result<SuspectItem> {
    let item = store::resolve(conn, id, resolution).await?;
    let payload = SuspectResolved {
        suspect_id: item.id.to_string(),
        region_code: item.region.to_string(),
        outcome: resolution.outcome.as_stored().to_owned(),
        case_id: item.case_id.map(|id| id.to_string()).unwrap_or_default(),
    };
    emit(conn, scheme, SUSPECT_RESOLVED, &item, resolution.resolved_by, &payload).await?;
    Ok(item)
}

/// The registry's cross-check found a school-age child enrolled nowhere (R15): the child enters
/// the ledger, once however often the check finds them while the item is pending.
pub async fn take_in_cross_check(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    data_key: &DataKeys,
    event_keys: &SharedKeyring,
    today: chrono::NaiveDate,
    envelope: &EventEnvelope,
) -> Result<(), HandlerError> {
    let event: SuspectedOutOfSchool = decode_payload(envelope, PUPIL_SUSPECTED_OUT_OF_SCHOOL)?;
    let check_item_id = uuid_field(envelope, "check_item_id", &event.check_item_id)?;
    let region = region_field(envelope, "region_code", &event.region_code)?;
    // Bound to the check item (an event published before keyrings: v1, bound to the context).
    let clear = event_keys
        .decrypt(&event.resident_id_sealed, RESIDENT_ID_EVENT_CONTEXT, event.check_item_id.as_bytes())
        .map_err(|error| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID: {error}")))?;
    let text = String::from_utf8(clear)
        .map_err(|_| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID is not text")))?;
    let resident_id = ResidentId::parse(&text)
        .map_err(|error| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID: {error}")))?;
    let (cipher, index) = seal(data_key, &resident_id, SUSPECT_RESIDENT_ID_CONTEXT);
    let new = NewSuspect {
        id: Uuid::now_v7(),
        region,
        origin: Origin::CrossCheck,
        pupil_id: None,
        check_item_id: Some(check_item_id),
        child_name: event.full_name.trim().to_owned(),
        resident_id_cipher: Some(cipher),
        resident_id_index: Some(index),
        resident_id_masked: resident_id.masked(),
        sex: sex_number(&resident_id),
        birth_date: Some(resident_id.birth_date()),
        hukou_region: event.hukou_region_code,
        residence_region: event.residence_region_code,
        reason: event.reason,
        days_missed: None,
        absent_since: None,
        school_code: None,
        notes: String::new(),
        recorded_by: envelope.actor.clone(),
        recorded_on: today,
    };
    match record(conn, scheme, &new).await? {
        Some(item) => {
            tracing::info!(suspect_id = %item.id, check_item_id = %check_item_id, region = %region, "suspect recorded from the cross-check")
        }
        None => tracing::info!(check_item_id = %check_item_id, region = %region, "cross-check suspect already pending"),
    }
    Ok(())
}

fn no_suspect(id: Uuid) -> ServiceError {
    ServiceError::not_found(Says::NoSuspect { suspect_id: id.to_string() })
}

/// Moves the field violations of `error` into `violations` (other errors cannot occur here).
fn violations_of(error: ServiceError, violations: &mut Vec<FieldViolation>) {
    match error {
        ServiceError::Invalid(found) => violations.extend(found),
        other => {
            violations.push(FieldViolation::new("", nol_messages::Msg::relayed(other.to_string(), other.to_string())))
        }
    }
}

impl SuspectService {
    pub fn new(platform: &Platform, registry: RegistryClient) -> anyhow::Result<SuspectService> {
        Ok(SuspectService {
            pool: platform.pool.clone(),
            data_key: platform.keys.data()?,
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            registry,
            clock: platform.clock.clone(),
        })
    }

    /// Reads a pupil from the registry as the caller: the registry checks the caller's scope over
    /// the pupil again, and audits the read.
    async fn pupil(&self, caller: &Caller, pupil_id: Uuid, view: PupilView) -> Result<Pupil, ServiceError> {
        crate::registry::pupil(&self.registry, caller, pupil_id, view).await
    }

    /// An item for a registered pupil, owned by the county of the pupil's student record.
    fn pupil_item(
        &self,
        caller: &Caller,
        pupil_id: Uuid,
        pupil: &Pupil,
        origin: Origin,
    ) -> Result<NewSuspect, ServiceError> {
        let region = RegionCode::parse_county(&pupil.enrollment_region_code).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        // A full read carries the number: keep it encrypted, with its blind index. A masked read
        // (a school's report) leaves it in the registry until a case worker confirms.
        let resident_id = ResidentId::parse(&pupil.resident_id).ok();
        let (resident_id_cipher, resident_id_index) =
            resident_id.as_ref().map(|id| seal(&self.data_key, id, SUSPECT_RESIDENT_ID_CONTEXT)).unzip();
        Ok(NewSuspect {
            id: Uuid::now_v7(),
            region,
            origin,
            pupil_id: Some(pupil_id),
            check_item_id: None,
            child_name: pupil.full_name.trim().to_owned(),
            resident_id_cipher,
            resident_id_index,
            resident_id_masked: pupil.resident_id_masked.clone(),
            sex: match Sex::try_from(pupil.sex) {
                Ok(Sex::Male) => 1,
                Ok(Sex::Female) => 2,
                _ => 0,
            },
            birth_date: chrono::NaiveDate::parse_from_str(&pupil.birth_date, "%Y-%m-%d").ok(),
            hukou_region: pupil.hukou_region_code.clone(),
            residence_region: pupil.residence_region_code.clone(),
            reason: String::new(),
            days_missed: None,
            absent_since: None,
            school_code: None,
            notes: String::new(),
            recorded_by: caller.subject.clone(),
            recorded_on: self.clock.today(),
        })
    }

    /// Records the item in one transaction with its event; ALREADY_EXISTS when the child already
    /// has a pending item.
    async fn record(&self, caller: &Caller, new: NewSuspect) -> Result<SuspectItem, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let Some(item) = record(&mut tx, &self.scheme, &new).await? else {
            drop(tx);
            let existing = store::find_pending(&self.pool, &new).await?;
            return Err(SuspectRefusal(match existing {
                Some(existing) if caller.sees(&existing.region) => {
                    Says::PendingItem { suspect_id: existing.id.to_string(), recorded_by: existing.recorded_by }
                }
                _ => Says::PendingItemElsewhere,
            })
            .into());
        };
        audit::record(&mut tx, caller, "suspect.record", "suspect", &[item.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %item.id, region = %item.region, origin = item.origin.as_stored(), "suspect recorded");
        Ok(item)
    }

    /// ReportAbsence: a school reports a pupil absent (days missed, since when).
    pub async fn report_absence(
        &self,
        caller: &Caller,
        request: ReportAbsenceRequest,
    ) -> Result<SuspectItem, ServiceError> {
        caller.require_role(&[Role::School], Action::ReportAbsentPupils)?;
        let mut violations = Vec::new();
        let pupil_id =
            parse_uuid("pupil_id", &request.pupil_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let since = domain::check_absence(request.days_missed, &request.absent_since, self.clock.today())
            .map_err(|found| violations.extend(found))
            .ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(pupil_id), Some(since), Some(notes)) = (pupil_id, since, notes) else {
            return Err(ServiceError::Invalid(violations));
        };
        let pupil = self.pupil(caller, pupil_id, PupilView::Masked).await?;
        let mut new = self.pupil_item(caller, pupil_id, &pupil, Origin::SchoolReport)?;
        new.days_missed = Some(request.days_missed);
        new.absent_since = Some(since);
        new.school_code = Some(pupil.school_code.clone()).filter(|code| !code.is_empty());
        new.reason = Says::SchoolReport { days: request.days_missed, since: since.to_string() }.en();
        new.notes = notes;
        self.record(caller, new).await
    }

    /// RecordSuspect: a case worker records a child, registered or not.
    pub async fn record_suspect(
        &self,
        caller: &Caller,
        request: RecordSuspectRequest,
    ) -> Result<SuspectItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::RecordSuspects)?;
        let reason =
            domain::check_notes("reason", &request.reason).map_err(|found| ServiceError::Invalid(vec![found]))?;
        let mut new = match request.child {
            None => return Err(ServiceError::invalid("child", Says::ChildRequired)),
            Some(record_suspect_request::Child::PupilId(text)) => {
                let pupil_id = parse_uuid("pupil_id", &text)?;
                let pupil = self.pupil(caller, pupil_id, PupilView::Full).await?;
                self.pupil_item(caller, pupil_id, &pupil, Origin::Caseworker)?
            }
            Some(record_suspect_request::Child::Unregistered(child)) => {
                let mut violations = Violations::default();
                let full_name = child.full_name.trim().to_owned();
                if full_name.is_empty() {
                    violations.add("unregistered.full_name", Common::Required);
                } else if full_name.chars().count() > 100 {
                    violations.add("unregistered.full_name", Common::TooLong { max: Count(100) });
                }
                let resident_id = violations
                    .check("unregistered.resident_id", ResidentId::parse_on(&child.resident_id, self.clock.today()));
                let hukou =
                    violations.check("unregistered.hukou_region_code", RegionCode::parse(&child.hukou_region_code));
                let requested = if request.region_code.trim().is_empty() {
                    caller.region.to_string()
                } else {
                    request.region_code.trim().to_owned()
                };
                let region = violations.check(
                    "region_code",
                    RegionCode::parse_county(&requested)
                        .map_err(|error| Says::VerifyingCounty { reason: Box::new(error.message()) }),
                );
                violations.finish()?;
                let (Some(resident_id), Some(hukou), Some(region)) = (resident_id, hukou, region) else {
                    return Err(ServiceError::Internal(anyhow::anyhow!("a checked field was missing")));
                };
                caller.require_scope(&region)?;
                let (cipher, index) = seal(&self.data_key, &resident_id, SUSPECT_RESIDENT_ID_CONTEXT);
                NewSuspect {
                    id: Uuid::now_v7(),
                    region,
                    origin: Origin::Caseworker,
                    pupil_id: None,
                    check_item_id: None,
                    child_name: full_name,
                    resident_id_cipher: Some(cipher),
                    resident_id_index: Some(index),
                    resident_id_masked: resident_id.masked(),
                    sex: sex_number(&resident_id),
                    birth_date: Some(resident_id.birth_date()),
                    hukou_region: hukou.to_string(),
                    residence_region: String::new(),
                    reason: String::new(),
                    days_missed: None,
                    absent_since: None,
                    school_code: None,
                    notes: String::new(),
                    recorded_by: caller.subject.clone(),
                    recorded_on: self.clock.today(),
                }
            }
        };
        new.reason = reason;
        self.record(caller, new).await
    }

    /// An item the caller may see and change.
    async fn item_in_scope(&self, caller: &Caller, id: Uuid) -> Result<SuspectItem, ServiceError> {
        let item = store::get(&self.pool, id).await?.ok_or_else(|| no_suspect(id))?;
        caller.require_scope(&item.region)?;
        Ok(item)
    }

    /// ConfirmSuspect: the child is a dropout; the case opens (R2) in the same transaction.
    pub async fn confirm(
        &self,
        caller: &Caller,
        request: ConfirmSuspectRequest,
    ) -> Result<(SuspectItem, Uuid), ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::ConfirmSuspects)?;
        let mut violations = Vec::new();
        let id =
            parse_uuid("suspect_id", &request.suspect_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let causes = check_causes(&request.causes)
            .map_err(|refusal| violations.push(FieldViolation::new("causes", refusal.0)))
            .ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(id), Some(causes), Some(notes)) = (id, causes, notes) else {
            return Err(ServiceError::Invalid(violations));
        };
        let item = self.item_in_scope(caller, id).await?;
        check_pending(&item)?;
        // The child as the case will hold them: a pupil's record fresh from the registry, or the
        // number the ledger holds.
        let (resident_id, full_name, hukou, flags) = match item.pupil_id {
            Some(pupil_id) => {
                let pupil = self.pupil(caller, pupil_id, PupilView::Full).await?;
                let resident_id =
                    ResidentId::parse(&pupil.resident_id).map_err(|_| SuspectRefusal(Says::ProvisionalIdentity))?;
                let flags = (pupil.migrant, pupil.registered_poor, pupil.disability_grade as i16);
                (resident_id, pupil.full_name, pupil.hukou_region_code, flags)
            }
            None => {
                let cipher = item.resident_id_cipher.as_deref().unwrap_or_default();
                let index = item.resident_id_index.as_deref().unwrap_or_default();
                let resident_id = reveal(&self.data_key, cipher, SUSPECT_RESIDENT_ID_CONTEXT, index)?;
                let migrant = item.region.is_migrant_here(&item.hukou_region);
                (resident_id, item.child_name.clone(), item.hukou_region.clone(), (migrant, false, 0))
            }
        };
        let today = self.clock.today();
        let new = NewCase {
            id: Uuid::now_v7(),
            pupil_id: item.pupil_id,
            child: ChildRecord::new(&self.data_key, &full_name, &resident_id, &hukou),
            region: item.region,
            causes,
            notes: notes.clone(),
            source: Source::Local,
            origin_region: None,
            origin_case_id: None,
            handoff_id: None,
            opened_by: caller.subject.clone(),
            confirmed_on: today,
            migrant: flags.0,
            registered_poor: flags.1,
            disability_grade: flags.2,
            suspect_id: Some(id),
        };
        let mut tx = self.pool.begin().await?;
        let locked = store::get_for_update(&mut tx, id).await?.ok_or_else(|| no_suspect(id))?;
        check_pending(&locked)?;
        let opened = match ledger::open(&mut tx, &self.scheme, &new, |region| caller.sees(region)).await {
            Ok(case) => case,
            Err(LedgerError::Refused(refusal)) => {
                return Err(SuspectRefusal(Says::StaysPending { because: refusal.0 }).into());
            }
            Err(LedgerError::Database(error)) => return Err(error.into()),
        };
        let resolution = Resolution {
            state: State::Confirmed,
            outcome: Outcome::Confirmed,
            proof: None,
            case_id: Some(opened.id),
            resolved_by: &caller.subject,
            resolved_on: today,
            notes: &notes,
        };
        let item = resolve(&mut tx, &self.scheme, id, &resolution).await?;
        audit::record(&mut tx, caller, "suspect.confirm", "suspect", &[id.to_string()]).await?;
        audit::record(&mut tx, caller, "case.open", "dropout_case", &[opened.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %id, case_id = %opened.id, region = %item.region, "suspect confirmed; case opened");
        Ok((item, opened.id))
    }

    /// CloseSuspect: the item leaves the ledger with its proof (销号).
    pub async fn close(&self, caller: &Caller, request: CloseSuspectRequest) -> Result<SuspectItem, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::CloseSuspects)?;
        let today = self.clock.today();
        let mut violations = Vec::new();
        let id =
            parse_uuid("suspect_id", &request.suspect_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let proof = Proof::check(request.proof.as_ref(), today).map_err(|found| violations.extend(found)).ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(id), Some(proof), Some(notes)) = (id, proof, notes) else {
            return Err(ServiceError::Invalid(violations));
        };
        self.item_in_scope(caller, id).await?;
        let mut tx = self.pool.begin().await?;
        let locked = store::get_for_update(&mut tx, id).await?.ok_or_else(|| no_suspect(id))?;
        check_pending(&locked)?;
        let resolution = Resolution {
            state: State::Closed,
            outcome: proof.outcome(),
            proof: Some(proof.to_json()),
            case_id: None,
            resolved_by: &caller.subject,
            resolved_on: today,
            notes: &notes,
        };
        let item = resolve(&mut tx, &self.scheme, id, &resolution).await?;
        audit::record(&mut tx, caller, "suspect.close", "suspect", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %id, outcome = proof.outcome().as_stored(), region = %item.region, "suspect closed");
        Ok(item)
    }

    /// GetSuspect: masked, or the full number for a case worker or a bureau system (audited apart).
    pub async fn get(
        &self,
        caller: &Caller,
        request: GetSuspectRequest,
    ) -> Result<(SuspectItem, Option<ResidentId>), ServiceError> {
        let id = parse_uuid("suspect_id", &request.suspect_id)?;
        let full = SuspectView::try_from(request.view) == Ok(SuspectView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], Action::SeeFullResidentIds)?;
        }
        let item = self.item_in_scope(caller, id).await?;
        let action = if full { "suspect.read_full" } else { "suspect.read" };
        audit::record_read(&self.pool, caller, action, "suspect", &[id.to_string()]).await?;
        let revealed = match (&item.resident_id_cipher, &item.resident_id_index, full) {
            (Some(cipher), Some(index), true) => {
                Some(reveal(&self.data_key, cipher, SUSPECT_RESIDENT_ID_CONTEXT, index)?)
            }
            _ => None,
        };
        Ok((item, revealed))
    }

    pub async fn list(&self, caller: &Caller, request: ListSuspectsRequest) -> Result<SuspectPage, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let mut violations = Vec::new();
        let state = SuspectState::try_from(request.state)
            .map(State::from_proto)
            .map_err(|_| violations.push(FieldViolation::new("state", Says::UnknownState)))
            .ok();
        let origin = SuspectOrigin::try_from(request.origin)
            .map(Origin::from_proto)
            .map_err(|_| violations.push(FieldViolation::new("origin", Says::UnknownOrigin)))
            .ok();
        let size = paging::page_size(request.page_size).map_err(|error| violations_of(error, &mut violations)).ok();
        let after = Cursor::decode(&request.page_token).map_err(|error| violations_of(error, &mut violations)).ok();
        let (Some(state), Some(origin), Some(size), Some(after)) = (state, origin, size, after) else {
            return Err(ServiceError::Invalid(violations));
        };
        let mut items = store::list(&self.pool, region.subtree_prefix(), state, origin, after, size + 1).await?;
        let next_page_token =
            paging::next_page(&mut items, size, |item| Cursor { time: item.recorded_at, id: item.id });
        let ids: Vec<String> = items.iter().map(|item| item.id.to_string()).collect();
        audit::record_read(&self.pool, caller, "suspect.list", "suspect", &ids).await?;
        Ok(SuspectPage { items, next_page_token })
    }
}
