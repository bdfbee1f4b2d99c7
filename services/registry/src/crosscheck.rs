//! The cross-check (R15): the household register and the poverty registry against the pupils.
//! One transaction records every finding as an item (closed items stay closed unless their data
//! changed) and publishes each newly found or reopened out-of-school child as an event for the
//! case service's suspected-dropout ledger.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use nol_auth::Caller;
use nol_backbone::outbox::RelayWake;
use nol_events::{EventEnvelope, EventHeader, PUPIL_SUSPECTED_OUT_OF_SCHOOL, RESIDENT_ID_EVENT_CONTEXT, SubjectScheme};
use nol_pii::{ResidentId, Sex};
use nol_proto::v1::{CrossCheckRun, SuspectedOutOfSchool};
use nol_region::RegionCode;
use nol_runtime::clock::Clock;
use nol_runtime::keys::{DataKeys, SharedKeyring};
use nol_runtime::{ServiceError, audit};
use sqlx::PgPool;
use uuid::Uuid;

use crate::AGENCY_ID_CONTEXT;
use crate::domain::checks::{Kind, school_age_births};
use crate::store::checks::{self, RunFinding};

pub struct CrossCheck {
    pub pool: PgPool,
    pub data_key: DataKeys,
    /// The registry → cases event keyring (see `nol_runtime::keys`).
    pub event_keys: SharedKeyring,
    pub scheme: SubjectScheme,
    pub wake: RelayWake,
    /// The rule clock: "today" for the numbers the events carry.
    pub clock: Clock,
    /// Checks under way at once in this process ([`CONCURRENT_CHECKS`]); the others wait their
    /// turn holding no connection.
    pub turns: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Checks run at once by one process: one. A check holds two connections (its transaction, and
/// the count beside it) and takes the second while holding the first, so as many checks at once
/// as the pool holds would wait on one another until the pool's timeout; two checks of the same
/// region would also write the same items at once. A province-wide check keeps both cores busy by
/// itself, so running two at once would not finish them sooner; a county's check is small beside
/// it.
pub const CONCURRENT_CHECKS: usize = 1;

impl CrossCheck {
    pub async fn run(
        &self,
        caller: &Caller,
        region: RegionCode,
        as_of: NaiveDate,
    ) -> Result<CrossCheckRun, ServiceError> {
        let _turn = self.turns.acquire().await.map_err(anyhow::Error::from)?;
        let started = Instant::now();
        let run = Uuid::now_v7();
        let school_age = school_age_births(as_of);
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let findings = checks::find(&mut tx, region.subtree_prefix(), school_age).await?;
        // The count of children checked runs beside the recording of the findings, on another
        // connection: the findings query alone keeps both cores busy (PostgreSQL reads it in
        // parallel), the recording does not (one backend writing, the registry encrypting).
        let recorded = async {
            let findings = checks::record_items(&mut tx, run, findings).await?;
            let mut tally = Tally::default();
            let mut suspects = Vec::new();
            for finding in &findings {
                if tally.count(finding) && finding.kind == Kind::OutOfSchool {
                    suspects.push(self.suspect_event(caller, run, finding, today)?);
                }
            }
            nol_backbone::outbox::enqueue_many(&mut tx, &suspects).await?;
            Ok::<_, ServiceError>(tally)
        };
        let (children, tally) =
            tokio::join!(checks::children_checked(&self.pool, region.subtree_prefix(), school_age), recorded);
        let (children, Tally { found, opened, still_open, kept_closed }) = (children?, tally?);
        let duration_ms = started.elapsed().as_millis() as i64;
        let found_json = serde_json::to_value(&found).map_err(anyhow::Error::from)?;
        let ran_at = checks::record_run(
            &mut tx,
            run,
            region,
            as_of,
            children,
            &found_json,
            (opened, still_open, kept_closed),
            duration_ms,
            &caller.subject,
        )
        .await?;
        audit::record(&mut tx, caller, "crosscheck.run", "check_run", &[run.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(run = %run, region = %region, children, opened, still_open, kept_closed, duration_ms, "cross-check ran");
        Ok(CrossCheckRun {
            run_id: run.to_string(),
            region_code: region.to_string(),
            children_checked: children,
            found: found.into_iter().collect(),
            opened,
            still_open,
            kept_closed,
            run_time: Some(nol_runtime::time::timestamp(ran_at)),
            duration_ms,
        })
    }
}

/// A run's findings, counted by kind and by what became of their items.
#[derive(Default)]
struct Tally {
    found: BTreeMap<String, i64>,
    opened: i64,
    still_open: i64,
    kept_closed: i64,
}

impl Tally {
    /// Counts a finding; true when its item is newly open (new, or reopened because its data
    /// changed).
    fn count(&mut self, finding: &RunFinding) -> bool {
        *self.found.entry(finding.kind.as_stored().to_owned()).or_default() += 1;
        let newly_open = match finding.was_open {
            None => true,
            Some(true) => {
                self.still_open += 1;
                false
            }
            Some(false) if finding.open => true,
            Some(false) => {
                self.kept_closed += 1;
                false
            }
        };
        self.opened += i64::from(newly_open);
        newly_open
    }
}

impl CrossCheck {
    /// The case service learns of the child: the number travels encrypted under the event key
    /// only the registry and the case service hold (never in clear), with what a case worker
    /// needs to find the family.
    fn suspect_event(
        &self,
        caller: &Caller,
        run: Uuid,
        finding: &RunFinding,
        today: NaiveDate,
    ) -> Result<(String, EventEnvelope), ServiceError> {
        let cipher = finding.resident_id_cipher.as_deref().unwrap_or_default();
        let clear =
            // An out-of-school item is a household member's: its ciphertext, bound to the index.
            self.data_key
                .decrypt(cipher, AGENCY_ID_CONTEXT, &finding.subject)
                .map_err(|error| ServiceError::Internal(error.into()))?;
        let text = String::from_utf8(clear).map_err(|error| ServiceError::Internal(error.into()))?;
        let id = ResidentId::parse_on(&text, today).map_err(|error| ServiceError::Internal(error.into()))?;
        let region = finding.region;
        let detail =
            |key: &str| finding.detail.get(key).and_then(|value| value.as_str()).unwrap_or_default().to_owned();
        let payload = SuspectedOutOfSchool {
            check_item_id: finding.id.to_string(),
            check_run_id: run.to_string(),
            region_code: region.to_string(),
            full_name: finding.full_name.clone(),
            // Bound to the check item: the case service opens it only as this item's number.
            resident_id_sealed: self.event_keys.encrypt(
                id.expose().as_bytes(),
                RESIDENT_ID_EVENT_CONTEXT,
                finding.id.to_string().as_bytes(),
            ),
            resident_id_masked: id.masked(),
            sex: match id.sex() {
                Sex::Male => nol_proto::v1::Sex::Male,
                Sex::Female => nol_proto::v1::Sex::Female,
            } as i32,
            // Not the date: with the mask it is the number (consumers open resident_id_sealed).
            birth_date: String::new(),
            birth_year: id.birth_year(),
            hukou_region_code: detail("hukou_region"),
            residence_region_code: detail("residence_region"),
            reason: finding.reason.clone(),
        };
        let envelope = nol_events::envelope(
            EventHeader {
                event_type: PUPIL_SUSPECTED_OUT_OF_SCHOOL,
                source_region: region,
                aggregate_type: "check_item",
                aggregate_id: &payload.check_item_id,
                aggregate_sequence: 1,
                actor: &caller.subject,
            },
            &payload,
            chrono::Utc::now(),
            nol_telemetry::current_trace_context(),
        );
        Ok((self.scheme.local(PUPIL_SUSPECTED_OUT_OF_SCHOOL, &region), envelope))
    }
}
