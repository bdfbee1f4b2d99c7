//! The suspected-dropout ledger (疑似辍学台账, R14): items from the registry's cross-checks, from
//! schools and from case workers, each verified and resolved as a confirmed dropout (a case
//! opens) or closed with proof (销号). Each change is one transaction with its event.

pub mod domain;
pub mod grpc;
pub mod store;

use nol_backbone::consumer::HandlerError;
use nol_events::{
    EventEnvelope, EventHeader, PUPIL_SUSPECTED_OUT_OF_SCHOOL, RESIDENT_ID_EVENT_CONTEXT, SUSPECT_RECORDED,
    SUSPECT_RESOLVED, SubjectScheme, decode_payload, region_field, uuid_field,
};
use nol_pii::{DataKey, ResidentId};
use nol_proto::v1::{SuspectRecorded, SuspectResolved, SuspectedOutOfSchool};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use domain::Origin;
use store::{NewSuspect, SuspectRow};

/// Binds encrypted resident ID numbers to the ledger's column, so a value copied elsewhere won't
/// decrypt.
pub const RESIDENT_ID_CONTEXT: &str = "cases.suspect.resident_id";

/// Records an item with its `suspect_recorded` event, in the caller's transaction. `None` when
/// the child already has a pending item (nothing written).
pub async fn record(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    item: &NewSuspect,
) -> sqlx::Result<Option<SuspectRow>> {
    let Some(row) = store::insert(conn, item).await? else {
        return Ok(None);
    };
    let region = parse_stored_region(&row.region)?;
    let payload =
        SuspectRecorded { suspect_id: row.id.to_string(), region_code: row.region.clone(), origin: row.origin.clone() };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(SUSPECT_RECORDED, &region),
        EventHeader {
            event_type: SUSPECT_RECORDED,
            source_region: region,
            aggregate_type: "suspect",
            aggregate_id: &payload.suspect_id,
            aggregate_sequence: row.version as u64,
            actor: &row.recorded_by,
        },
        &payload,
    )
    .await?;
    Ok(Some(row))
}

/// Resolves a pending item with its `suspect_resolved` event, in the caller's transaction (which
/// holds the item's lock and, for a confirmation, the case just opened).
pub async fn resolve(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    id: Uuid,
    resolution: &store::Resolution<'_>,
) -> sqlx::Result<SuspectRow> {
    let row = store::resolve(conn, id, resolution).await?;
    let region = parse_stored_region(&row.region)?;
    let payload = SuspectResolved {
        suspect_id: row.id.to_string(),
        region_code: row.region.clone(),
        outcome: resolution.outcome.to_owned(),
        case_id: row.case_id.map(|id| id.to_string()).unwrap_or_default(),
    };
    nol_backbone::outbox::emit(
        conn,
        &scheme.local(SUSPECT_RESOLVED, &region),
        EventHeader {
            event_type: SUSPECT_RESOLVED,
            source_region: region,
            aggregate_type: "suspect",
            aggregate_id: &payload.suspect_id,
            aggregate_sequence: row.version as u64,
            actor: resolution.resolved_by,
        },
        &payload,
    )
    .await?;
    Ok(row)
}

/// The registry's cross-check found a school-age child enrolled nowhere (R15): the child enters
/// the ledger, once however often the check finds them while the item is pending.
pub async fn take_in_cross_check(
    conn: &mut PgConnection,
    scheme: &SubjectScheme,
    data_key: &DataKey,
    today: chrono::NaiveDate,
    envelope: &EventEnvelope,
) -> Result<(), HandlerError> {
    let event: SuspectedOutOfSchool = decode_payload(envelope, PUPIL_SUSPECTED_OUT_OF_SCHOOL)?;
    let check_item_id = uuid_field(envelope, "check_item_id", &event.check_item_id)?;
    let region = region_field(envelope, "region_code", &event.region_code)?;
    let clear = data_key
        .decrypt(&event.resident_id_sealed, RESIDENT_ID_EVENT_CONTEXT)
        .map_err(|error| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID: {error}")))?;
    let text = String::from_utf8(clear)
        .map_err(|_| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID is not text")))?;
    let resident_id = ResidentId::parse(&text)
        .map_err(|error| HandlerError::Permanent(format!("suspect {check_item_id}: resident ID: {error}")))?;
    let item = NewSuspect {
        id: Uuid::now_v7(),
        region: region.to_string(),
        origin: Origin::CrossCheck,
        pupil_id: None,
        check_item_id: Some(check_item_id),
        child_name: event.full_name.trim().to_owned(),
        resident_id_cipher: Some(data_key.encrypt(resident_id.expose().as_bytes(), RESIDENT_ID_CONTEXT)),
        resident_id_index: Some(data_key.blind_index(resident_id.expose())),
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
    match record(conn, scheme, &item).await? {
        Some(row) => {
            tracing::info!(suspect_id = %row.id, check_item_id = %check_item_id, region = %region, "suspect recorded from the cross-check")
        }
        None => tracing::info!(check_item_id = %check_item_id, region = %region, "cross-check suspect already pending"),
    }
    Ok(())
}

/// `Sex` as its number (1 male, 2 female), from the resident ID number.
pub fn sex_number(resident_id: &ResidentId) -> i16 {
    match resident_id.sex() {
        nol_pii::Sex::Male => 1,
        nol_pii::Sex::Female => 2,
    }
}

fn parse_stored_region(text: &str) -> sqlx::Result<RegionCode> {
    RegionCode::parse(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
