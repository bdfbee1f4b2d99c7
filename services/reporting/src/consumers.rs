//! Counting the province's events.

use nol_backbone::consumer::{EventHandler, HandlerError};
use nol_events::{
    CASE_HANDED_OVER, CASE_OPENED, CASE_STATUS_CHANGED, EventEnvelope, PERSUASION_RECORDED, PUPIL_REGISTERED,
    PUPILS_IMPORTED, SubjectScheme, decode_payload, occurred_at, region_field,
};
use nol_proto::v1::{
    CaseHandedOver, CaseOpened, CaseStatusChanged, PersuasionRecorded, PupilRegistered, PupilsImported,
};
use nol_region::RegionCode;
use sqlx::PgConnection;

use crate::metrics::{Metric, for_case_opened, for_persuasion, for_status_changed};
use crate::store;

pub fn filter_subjects(scheme: &SubjectScheme, province: &RegionCode) -> Vec<String> {
    [PUPIL_REGISTERED, PUPILS_IMPORTED, CASE_OPENED, CASE_HANDED_OVER, CASE_STATUS_CHANGED, PERSUASION_RECORDED]
        .into_iter()
        .map(|event_type| scheme.local_filter(province, event_type))
        .collect()
}

pub struct Counting;

impl EventHandler for Counting {
    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let (region, metrics, amount) = if PUPIL_REGISTERED.matches(&envelope.event_type) {
            let event: PupilRegistered = decode_payload(envelope, PUPIL_REGISTERED)?;
            let region = region_field(envelope, "enrollment_region_code", &event.enrollment_region_code)?;
            (region, vec![Metric::PupilsRegistered], 1)
        } else if PUPILS_IMPORTED.matches(&envelope.event_type) {
            let event: PupilsImported = decode_payload(envelope, PUPILS_IMPORTED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, vec![Metric::PupilsRegistered], event.count)
        } else if CASE_OPENED.matches(&envelope.event_type) {
            let event: CaseOpened = decode_payload(envelope, CASE_OPENED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, vec![for_case_opened(&event)], 1)
        } else if CASE_HANDED_OVER.matches(&envelope.event_type) {
            let event: CaseHandedOver = decode_payload(envelope, CASE_HANDED_OVER)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, vec![Metric::CasesHandedOut], 1)
        } else if CASE_STATUS_CHANGED.matches(&envelope.event_type) {
            let event: CaseStatusChanged = decode_payload(envelope, CASE_STATUS_CHANGED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, for_status_changed(&event).into_iter().collect(), 1)
        } else if PERSUASION_RECORDED.matches(&envelope.event_type) {
            let event: PersuasionRecorded = decode_payload(envelope, PERSUASION_RECORDED)?;
            let region = region_field(envelope, "region_code", &event.region_code)?;
            (region, for_persuasion(&event), 1)
        } else {
            return Err(HandlerError::Permanent(format!(
                "the reporting service does not count {}",
                envelope.event_type
            )));
        };
        Ok(store::add(conn, &region, &metrics, occurred_at(envelope), amount).await?)
    }
}
