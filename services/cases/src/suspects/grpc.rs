//! gRPC transport of the suspected-dropout ledger (`nol.v1.SuspectService`).

use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_pii::{DataKey, ResidentId};
use nol_proto::v1::suspect_service_server::SuspectService;
use nol_proto::v1::{
    CloseSuspectRequest, CloseSuspectResponse, ConfirmSuspectRequest, ConfirmSuspectResponse, GetSuspectRequest,
    GetSuspectResponse, ListSuspectsRequest, ListSuspectsResponse, Pupil, PupilView, RecordSuspectRequest,
    RecordSuspectResponse, ReportAbsenceRequest, ReportAbsenceResponse, Sex, Suspect, SuspectOrigin, SuspectState,
    SuspectView, record_suspect_request,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{FieldViolation, Platform, ServiceError, audit, database};
use sqlx::PgPool;
use tonic::{Request, Response, Status as GrpcStatus};
use uuid::Uuid;

use super::domain::{self, Origin, Proof, State};
use super::store::{self, NewSuspect, Resolution, SuspectRow};
use super::{RESIDENT_ID_CONTEXT, sex_number};
use crate::domain::{cause_name, check_causes};
use crate::grpc::child_record;
use crate::ledger;
use crate::store::NewCase;

use crate::registry::RegistryClient;

pub struct Suspects {
    pool: PgPool,
    data_key: DataKey,
    scheme: SubjectScheme,
    wake: nol_backbone::outbox::RelayWake,
    province: RegionCode,
    registry: RegistryClient,
    clock: nol_runtime::clock::Clock,
}

fn invalid(violations: Vec<FieldViolation>) -> ServiceError {
    ServiceError::Invalid(violations)
}

impl Suspects {
    pub fn new(platform: &Platform, registry_url: &str) -> anyhow::Result<Suspects> {
        Ok(Suspects {
            pool: platform.pool.clone(),
            data_key: platform.keys.data.clone(),
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            registry: crate::registry::client(registry_url)?,
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
        Ok(NewSuspect {
            id: Uuid::now_v7(),
            region: region.to_string(),
            origin,
            pupil_id: Some(pupil_id),
            check_item_id: None,
            child_name: pupil.full_name.trim().to_owned(),
            resident_id_cipher: resident_id
                .as_ref()
                .map(|id| self.data_key.encrypt(id.expose().as_bytes(), RESIDENT_ID_CONTEXT)),
            resident_id_index: resident_id.as_ref().map(|id| self.data_key.blind_index(id.expose())),
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
    async fn record(&self, caller: &Caller, item: NewSuspect) -> Result<Suspect, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = super::record(&mut tx, &self.scheme, &item).await? else {
            drop(tx);
            let existing = store::find_pending(&self.pool, &item).await?;
            return Err(match existing {
                Some(existing) if RegionCode::parse(&existing.region).is_ok_and(|region| caller.sees(&region)) => {
                    ServiceError::already_exists(format!(
                        "R14: this child already has a pending suspected-dropout item ({}, recorded by {})",
                        existing.id, existing.recorded_by
                    ))
                }
                _ => ServiceError::already_exists(
                    "R14: this child already has a pending suspected-dropout item in the province".to_owned(),
                ),
            });
        };
        audit::record(&mut tx, caller, "suspect.record", "suspect", &[row.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %row.id, region = %row.region, origin = %row.origin, "suspect recorded");
        Ok(to_proto(&row, None))
    }

    async fn report_absence(&self, caller: &Caller, request: ReportAbsenceRequest) -> Result<Suspect, ServiceError> {
        caller.require_role(&[Role::School], nol_messages::vocab::Action::ReportAbsentPupils)?;
        let mut violations = Vec::new();
        let pupil_id =
            parse_uuid("pupil_id", &request.pupil_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let since = domain::check_absence(request.days_missed, &request.absent_since, self.clock.today())
            .map_err(|found| violations.extend(found))
            .ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(pupil_id), Some(since), Some(notes)) = (pupil_id, since, notes) else {
            return Err(invalid(violations));
        };
        let pupil = self.pupil(caller, pupil_id, PupilView::Masked).await?;
        let mut item = self.pupil_item(caller, pupil_id, &pupil, Origin::SchoolReport)?;
        item.days_missed = Some(request.days_missed);
        item.absent_since = Some(since);
        item.school_code = Some(pupil.school_code.clone()).filter(|code| !code.is_empty());
        item.reason = format!("the school reports {} school days missed since {since}", request.days_missed);
        item.notes = notes;
        self.record(caller, item).await
    }

    async fn record_suspect(&self, caller: &Caller, request: RecordSuspectRequest) -> Result<Suspect, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::RecordSuspects)?;
        let reason = domain::check_notes("reason", &request.reason).map_err(|found| invalid(vec![found]))?;
        let mut item = match request.child {
            None => {
                return Err(ServiceError::invalid("child", "a pupil_id or an unregistered child is required"));
            }
            Some(record_suspect_request::Child::PupilId(text)) => {
                let pupil_id = parse_uuid("pupil_id", &text)?;
                let pupil = self.pupil(caller, pupil_id, PupilView::Full).await?;
                self.pupil_item(caller, pupil_id, &pupil, Origin::Caseworker)?
            }
            Some(record_suspect_request::Child::Unregistered(child)) => {
                let mut violations = Vec::new();
                let full_name = child.full_name.trim().to_owned();
                if full_name.is_empty() {
                    violations.push(FieldViolation::new("unregistered.full_name", "is required"));
                } else if full_name.chars().count() > 100 {
                    violations.push(FieldViolation::new("unregistered.full_name", "is longer than 100 characters"));
                }
                let resident_id = ResidentId::parse_on(&child.resident_id, self.clock.today())
                    .map_err(|error| {
                        violations.push(FieldViolation::new("unregistered.resident_id", error.to_string()))
                    })
                    .ok();
                let hukou = RegionCode::parse(&child.hukou_region_code)
                    .map_err(|error| {
                        violations.push(FieldViolation::new("unregistered.hukou_region_code", error.to_string()))
                    })
                    .ok();
                let requested = if request.region_code.trim().is_empty() {
                    caller.region.to_string()
                } else {
                    request.region_code.trim().to_owned()
                };
                let region = RegionCode::parse_county(&requested)
                    .map_err(|error| {
                        violations.push(FieldViolation::new("region_code", format!("the verifying county: {error}")))
                    })
                    .ok();
                let (Some(resident_id), Some(hukou), Some(region)) = (resident_id, hukou, region) else {
                    return Err(invalid(violations));
                };
                if !violations.is_empty() {
                    return Err(invalid(violations));
                }
                caller.require_scope(&region)?;
                NewSuspect {
                    id: Uuid::now_v7(),
                    region: region.to_string(),
                    origin: Origin::Caseworker,
                    pupil_id: None,
                    check_item_id: None,
                    child_name: full_name,
                    resident_id_cipher: Some(
                        self.data_key.encrypt(resident_id.expose().as_bytes(), RESIDENT_ID_CONTEXT),
                    ),
                    resident_id_index: Some(self.data_key.blind_index(resident_id.expose())),
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
        item.reason = reason;
        self.record(caller, item).await
    }

    /// An item the caller may see and change.
    async fn item_in_scope(&self, caller: &Caller, id: Uuid) -> Result<SuspectRow, ServiceError> {
        let row =
            store::get(&self.pool, id).await?.ok_or_else(|| ServiceError::not_found(format!("no suspect {id}")))?;
        caller.require_scope(&RegionCode::parse(&row.region).map_err(anyhow::Error::from)?)?;
        Ok(row)
    }

    async fn confirm(
        &self,
        caller: &Caller,
        request: ConfirmSuspectRequest,
    ) -> Result<ConfirmSuspectResponse, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::ConfirmSuspects)?;
        let mut violations = Vec::new();
        let id =
            parse_uuid("suspect_id", &request.suspect_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let causes = check_causes(&request.causes)
            .map_err(|rule| violations.push(FieldViolation::new("causes", rule.to_string())))
            .ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(id), Some(causes), Some(notes)) = (id, causes, notes) else {
            return Err(invalid(violations));
        };
        let item = self.item_in_scope(caller, id).await?;
        pending(&item)?;
        // The child as the case will hold them: a pupil's record fresh from the registry, or the
        // number the ledger holds.
        let (resident_id, full_name, hukou, flags) = match item.pupil_id {
            Some(pupil_id) => {
                let pupil = self.pupil(caller, pupil_id, PupilView::Full).await?;
                let resident_id = ResidentId::parse(&pupil.resident_id).map_err(|_| {
                    ServiceError::precondition(
                        "R2: the pupil's resident ID number is not known (a provisional identity); correct it in \
                         the registry first, or close the item as a data error"
                            .to_owned(),
                    )
                })?;
                let flags = (pupil.migrant, pupil.registered_poor, pupil.disability_grade as i16);
                (resident_id, pupil.full_name, pupil.hukou_region_code, flags)
            }
            None => {
                let cipher = item.resident_id_cipher.as_deref().unwrap_or_default();
                let resident_id = reveal(&self.data_key, cipher)?;
                let migrant = item.hukou_region.get(..6) != Some(item.region.as_str());
                (resident_id, item.child_name.clone(), item.hukou_region.clone(), (migrant, false, 0))
            }
        };
        let child = child_record(&self.data_key, &full_name, &resident_id, &hukou);
        let index = child.resident_id_index.clone();
        let today = self.clock.today();
        let case = NewCase {
            id: Uuid::now_v7(),
            pupil_id: item.pupil_id,
            child,
            region: item.region.clone(),
            causes: causes.iter().map(|cause| cause_name(*cause).to_owned()).collect(),
            notes: notes.clone(),
            source: "local",
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
        let locked = store::get_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no suspect {id}")))?;
        pending(&locked)?;
        if let Some((case_id, status, region)) = store::active_case(&mut tx, &index).await? {
            return Err(already_active(caller, case_id, &status, &region));
        }
        let opened = match ledger::open(&mut tx, &self.scheme, &case).await {
            Ok(row) => row,
            Err(error) if database::is_unique_violation(&error, Some("dropout_case_one_active_per_child")) => {
                return Err(ServiceError::precondition(
                    "R2: this child already has an active case; the item stays pending".to_owned(),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let resolution = Resolution {
            state: State::Confirmed,
            outcome: "confirmed",
            proof: None,
            case_id: Some(opened.id),
            resolved_by: &caller.subject,
            resolved_on: today,
            notes: &notes,
        };
        let row = super::resolve(&mut tx, &self.scheme, id, &resolution).await?;
        audit::record(&mut tx, caller, "suspect.confirm", "suspect", &[id.to_string()]).await?;
        audit::record(&mut tx, caller, "case.open", "dropout_case", &[opened.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %id, case_id = %opened.id, region = %row.region, "suspect confirmed; case opened");
        Ok(ConfirmSuspectResponse { suspect: Some(to_proto(&row, None)), case_id: opened.id.to_string() })
    }

    async fn close(&self, caller: &Caller, request: CloseSuspectRequest) -> Result<Suspect, ServiceError> {
        caller.require_role(&[Role::Caseworker], nol_messages::vocab::Action::CloseSuspects)?;
        let today = self.clock.today();
        let mut violations = Vec::new();
        let id =
            parse_uuid("suspect_id", &request.suspect_id).map_err(|error| violations_of(error, &mut violations)).ok();
        let proof = Proof::check(request.proof.as_ref(), today).map_err(|found| violations.extend(found)).ok();
        let notes = domain::check_notes("notes", &request.notes).map_err(|found| violations.push(found)).ok();
        let (Some(id), Some(proof), Some(notes)) = (id, proof, notes) else {
            return Err(invalid(violations));
        };
        self.item_in_scope(caller, id).await?;
        let mut tx = self.pool.begin().await?;
        let locked = store::get_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no suspect {id}")))?;
        pending(&locked)?;
        let resolution = Resolution {
            state: State::Closed,
            outcome: proof.outcome(),
            proof: Some(proof.to_json()),
            case_id: None,
            resolved_by: &caller.subject,
            resolved_on: today,
            notes: &notes,
        };
        let row = super::resolve(&mut tx, &self.scheme, id, &resolution).await?;
        audit::record(&mut tx, caller, "suspect.close", "suspect", &[id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(suspect_id = %id, outcome = proof.outcome(), region = %row.region, "suspect closed");
        Ok(to_proto(&row, None))
    }

    async fn get(&self, caller: &Caller, request: GetSuspectRequest) -> Result<Suspect, ServiceError> {
        let id = parse_uuid("suspect_id", &request.suspect_id)?;
        let full = SuspectView::try_from(request.view) == Ok(SuspectView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], nol_messages::vocab::Action::SeeFullResidentIds)?;
        }
        let row = self.item_in_scope(caller, id).await?;
        let mut conn = self.pool.acquire().await?;
        let action = if full { "suspect.read_full" } else { "suspect.read" };
        audit::record(&mut conn, caller, action, "suspect", &[id.to_string()]).await?;
        let revealed = match (&row.resident_id_cipher, full) {
            (Some(cipher), true) => Some(reveal(&self.data_key, cipher)?),
            _ => None,
        };
        Ok(to_proto(&row, revealed))
    }

    async fn list(&self, caller: &Caller, request: ListSuspectsRequest) -> Result<ListSuspectsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let mut violations = Vec::new();
        let state = SuspectState::try_from(request.state)
            .map(State::from_proto)
            .map_err(|_| violations.push(FieldViolation::new("state", "is not a known suspect state")))
            .ok();
        let origin = SuspectOrigin::try_from(request.origin)
            .map(Origin::from_proto)
            .map_err(|_| violations.push(FieldViolation::new("origin", "is not a known suspect origin")))
            .ok();
        let size = paging::page_size(request.page_size).map_err(|error| violations_of(error, &mut violations)).ok();
        let after = Cursor::decode(&request.page_token).map_err(|error| violations_of(error, &mut violations)).ok();
        let (Some(state), Some(origin), Some(size), Some(after)) = (state, origin, size, after) else {
            return Err(invalid(violations));
        };
        let mut rows = store::list(&self.pool, region.subtree_prefix(), state, origin, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.recorded_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "suspect.list", "suspect", &ids).await?;
        Ok(ListSuspectsResponse { suspects: rows.iter().map(|row| to_proto(row, None)).collect(), next_page_token })
    }
}

/// Moves the field violations of `error` into `violations` (other errors cannot occur here).
fn violations_of(error: ServiceError, violations: &mut Vec<FieldViolation>) {
    match error {
        ServiceError::Invalid(found) => violations.extend(found),
        other => violations.push(FieldViolation::new("", other.to_string())),
    }
}

fn pending(row: &SuspectRow) -> Result<(), ServiceError> {
    let state = State::parse(&row.state).ok_or_else(|| anyhow::anyhow!("stored suspect state unreadable"))?;
    domain::check_pending(
        state,
        row.outcome.as_deref().unwrap_or_default(),
        row.resolved_by.as_deref().unwrap_or_default(),
    )
    .map_err(|rule| ServiceError::precondition(rule.to_string()))
}

fn already_active(caller: &Caller, case_id: Uuid, status: &str, region: &str) -> ServiceError {
    let visible = RegionCode::parse(region).is_ok_and(|region| caller.sees(&region));
    ServiceError::FailedPrecondition(if visible {
        format!("R2: this child already has an active case ({case_id}, {status}); the item stays pending").into()
    } else {
        "R2: this child already has an active case in another region of the province; the item stays pending".into()
    })
}

/// Decrypts a resident ID number the ledger holds.
fn reveal(data_key: &DataKey, cipher: &[u8]) -> Result<ResidentId, ServiceError> {
    let bytes = data_key.decrypt(cipher, RESIDENT_ID_CONTEXT).map_err(|error| ServiceError::Internal(error.into()))?;
    let text = String::from_utf8(bytes).map_err(|error| ServiceError::Internal(error.into()))?;
    ResidentId::parse(&text).map_err(|error| ServiceError::Internal(error.into()))
}

fn to_proto(row: &SuspectRow, revealed: Option<ResidentId>) -> Suspect {
    let day =
        |date: Option<chrono::NaiveDate>| date.map(|date| date.format("%Y-%m-%d").to_string()).unwrap_or_default();
    Suspect {
        suspect_id: row.id.to_string(),
        region_code: row.region.clone(),
        origin: Origin::parse(&row.origin).map(Origin::to_proto).unwrap_or_default() as i32,
        state: State::parse(&row.state).map(State::to_proto).unwrap_or_default() as i32,
        child: Some(crate::grpc::child_summary(
            &row.child_name,
            &row.resident_id_masked,
            row.sex,
            row.birth_date,
            &row.hukou_region,
            revealed.as_ref(),
        )),
        pupil_id: row.pupil_id.map(|id| id.to_string()).unwrap_or_default(),
        check_item_id: row.check_item_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: row.reason.clone(),
        days_missed: row.days_missed.unwrap_or_default(),
        absent_since: day(row.absent_since),
        school_code: row.school_code.clone().unwrap_or_default(),
        recorded_by: row.recorded_by.clone(),
        record_time: Some(nol_runtime::time::timestamp(row.recorded_at)),
        outcome: domain::outcome_to_proto(row.outcome.as_deref()) as i32,
        proof: match (&row.outcome, &row.proof) {
            (Some(outcome), Some(proof)) => domain::proof_to_proto(outcome, proof),
            _ => None,
        },
        case_id: row.case_id.map(|id| id.to_string()).unwrap_or_default(),
        resolved_by: row.resolved_by.clone().unwrap_or_default(),
        resolve_time: row.resolved_at.map(nol_runtime::time::timestamp),
        notes: row.notes.clone(),
        residence_region_code: row.residence_region.clone(),
        recorded_on: day(Some(row.recorded_on)),
        resolved_on: day(row.resolved_on),
    }
}

#[tonic::async_trait]
impl SuspectService for Suspects {
    async fn report_absence(
        &self,
        request: Request<ReportAbsenceRequest>,
    ) -> Result<Response<ReportAbsenceResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let suspect = self.report_absence(&caller, request.into_inner()).await?;
        Ok(Response::new(ReportAbsenceResponse { suspect: Some(suspect) }))
    }

    async fn record_suspect(
        &self,
        request: Request<RecordSuspectRequest>,
    ) -> Result<Response<RecordSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let suspect = self.record_suspect(&caller, request.into_inner()).await?;
        Ok(Response::new(RecordSuspectResponse { suspect: Some(suspect) }))
    }

    async fn confirm_suspect(
        &self,
        request: Request<ConfirmSuspectRequest>,
    ) -> Result<Response<ConfirmSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.confirm(&caller, request.into_inner()).await?))
    }

    async fn close_suspect(
        &self,
        request: Request<CloseSuspectRequest>,
    ) -> Result<Response<CloseSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let suspect = self.close(&caller, request.into_inner()).await?;
        Ok(Response::new(CloseSuspectResponse { suspect: Some(suspect) }))
    }

    async fn get_suspect(
        &self,
        request: Request<GetSuspectRequest>,
    ) -> Result<Response<GetSuspectResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        let suspect = self.get(&caller, request.into_inner()).await?;
        Ok(Response::new(GetSuspectResponse { suspect: Some(suspect) }))
    }

    async fn list_suspects(
        &self,
        request: Request<ListSuspectsRequest>,
    ) -> Result<Response<ListSuspectsResponse>, GrpcStatus> {
        let caller = nol_runtime::caller_of(&request, &self.province)?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }
}
