//! Pupils: registration, reads and searches, status changes, transfers, provisional identities.

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_backbone::outbox::OutboxRow;
use nol_events::{EventHeader, PUPIL_REGISTERED, PUPIL_STATUS_CHANGED};
use nol_messages::{Common, Registry as Message};
use nol_pii::ResidentId;
use nol_proto::v1::{
    CreatePupilRequest, DisabilityGrade, EnrollmentStatus, GetPupilRequest, ListDataQualityIssuesRequest,
    ListDataQualityIssuesResponse, ListPupilStatusChangesRequest, ListPupilStatusChangesResponse, ListPupilsRequest,
    ListPupilsResponse, Pupil, PupilRegistered, PupilStatusChange, PupilStatusChanged, PupilView,
    SetPupilResidentIdRequest, Sex, TransferPupilRequest, UpdatePupilStatusRequest,
};
use nol_runtime::audit::CallerEntry;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{ServiceError, Violations, audit, database};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Registry;
use crate::RESIDENT_ID_CONTEXT;
use crate::domain::columns::*;
use crate::domain::pupil::{self, Identity, PupilText, parse_date};
use crate::domain::status::{Status, TransferRefusal, check_change, check_transfer};
use crate::group_commit::{Outcome, Registration};
use crate::store::pupils::{self, PupilFilter, PupilRecord, StatusChange};

const WRITERS: &[Role] = &[Role::Caseworker, Role::School, Role::System];

/// The request field of a validated column.
fn field_of(key: &str) -> String {
    let field = match key {
        RESIDENT_ID => "resident_id",
        SEX => "sex",
        BIRTH_DATE => "birth_date",
        HUKOU => "hukou_region_code",
        RESIDENCE => "residence_region_code",
        SCHOOL_CODE => "school_code",
        GRADE => "grade",
        STATUS => "enrollment_status",
        DISABILITY => "disability_grade",
        POOR => "registered_poor",
        HOUSEHOLD => "poor_household_id",
        _ => "full_name",
    };
    format!("pupil.{field}")
}

fn disability_text(grade: i32) -> &'static str {
    match DisabilityGrade::try_from(grade).unwrap_or_default() {
        DisabilityGrade::One => "1",
        DisabilityGrade::Two => "2",
        DisabilityGrade::Three => "3",
        DisabilityGrade::Four => "4",
        DisabilityGrade::None | DisabilityGrade::Unspecified => "",
    }
}

fn disability_proto(grade: i16) -> DisabilityGrade {
    match grade {
        1 => DisabilityGrade::One,
        2 => DisabilityGrade::Two,
        3 => DisabilityGrade::Three,
        4 => DisabilityGrade::Four,
        _ => DisabilityGrade::None,
    }
}

impl Registry {
    pub(super) async fn create_pupil(
        &self,
        caller: &Caller,
        request: CreatePupilRequest,
    ) -> Result<Pupil, ServiceError> {
        caller.require_role(WRITERS, nol_messages::vocab::Action::RegisterPupils)?;
        let pupil = request.pupil.ok_or_else(|| ServiceError::invalid("pupil", Common::Required))?;
        let grade = pupil.grade.to_string();
        let status = EnrollmentStatus::try_from(pupil.enrollment_status)
            .ok()
            .and_then(Status::from_proto)
            .map(Status::as_stored)
            .unwrap_or("");
        let sex = match Sex::try_from(pupil.sex).unwrap_or_default() {
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::Unspecified => "",
        };
        let text = PupilText {
            full_name: &pupil.full_name,
            resident_id: &pupil.resident_id,
            sex,
            birth_date: &pupil.birth_date,
            hukou_region: &pupil.hukou_region_code,
            residence_region: &pupil.residence_region_code,
            school_code: &pupil.school_code,
            grade: &grade,
            status,
            disability: disability_text(pupil.disability_grade),
            registered_poor: if pupil.registered_poor { "是" } else { "" },
            household_id: &pupil.poor_household_id,
        };
        let valid = pupil::validate(&text, self.clock.today()).map_err(|problems| {
            ServiceError::Invalid(
                problems
                    .into_iter()
                    .map(|(key, reason)| nol_runtime::FieldViolation::new(field_of(key), reason))
                    .collect(),
            )
        })?;
        let school = self
            .schools
            .get(&self.pool, &valid.school_code)
            .await?
            .ok_or_else(|| ServiceError::invalid("pupil.school_code", Message::NotARegisteredSchool))?;
        let enrollment = school.region;
        caller.require_scope(&enrollment)?;
        caller.require_school(&school.code)?;
        let residence = valid.residence_region.unwrap_or(enrollment);
        let (cipher, index, masked, provisional_key) = match &valid.identity {
            Identity::Resident(id) => {
                let index = self.data_key.blind_index(id.expose());
                (
                    Some(self.data_key.encrypt(id.expose().as_bytes(), RESIDENT_ID_CONTEXT, &index)),
                    Some(index),
                    Some(id.masked()),
                    None,
                )
            }
            Identity::Provisional { .. } => {
                (None, None, None, Some(self.data_key.blind_index(&valid.provisional_key_text())))
            }
        };
        let id = Uuid::now_v7();
        let payload = PupilRegistered {
            pupil_id: id.to_string(),
            enrollment_region_code: enrollment.to_string(),
            hukou_region_code: valid.hukou_region.to_string(),
            migrant: valid.migrant(&enrollment),
            grade: valid.grade.into(),
            registered_poor: valid.registered_poor,
            disability_grade: valid.disability_grade.into(),
        };
        let envelope = nol_backbone::outbox::new_envelope(
            EventHeader {
                event_type: PUPIL_REGISTERED,
                source_region: enrollment,
                aggregate_type: "pupil",
                aggregate_id: &payload.pupil_id,
                aggregate_sequence: 1,
                actor: &caller.subject,
            },
            &payload,
        );
        let registration = Registration {
            id,
            migrant: valid.migrant(&enrollment),
            pupil: valid,
            enrollment_region: enrollment,
            residence_region: residence,
            resident_id_cipher: cipher,
            resident_id_index: index,
            resident_id_masked: masked,
            provisional_key,
            created_by: caller.subject.clone(),
            school_name: school.name,
            event: OutboxRow::of(&self.scheme.local(PUPIL_REGISTERED, &enrollment), &envelope)?,
            entry: CallerEntry::of(caller, id.to_string()),
        };
        // Committed with the other registrations under way (`group_commit`), each with its event
        // and audit entry.
        match self.registrations.register(registration).await? {
            Outcome::Registered(row) => {
                tracing::info!(pupil_id = %id, region = %enrollment, provisional = row.provisional, "pupil registered");
                Ok(self.to_proto(&row, false))
            }
            Outcome::AlreadyRegistered(registration) => match registration.resident_id_index {
                Some(index) => Err(self.already_registered(caller, &index).await),
                None => Err(ServiceError::already_exists(Message::ProvisionalPupilExists)),
            },
        }
    }

    /// ALREADY_EXISTS naming the existing record as far as the caller may see it.
    async fn already_registered(&self, caller: &Caller, index: &[u8]) -> ServiceError {
        match pupils::find_by_index(&self.pool, index).await {
            Ok(Some(existing)) => {
                let region = existing.enrollment_region;
                if caller.sees(&region) && caller.require_school(&existing.school_code).is_ok() {
                    ServiceError::already_exists(Message::ResidentIdRegisteredAt {
                        pupil: existing.id.to_string(),
                        school_name: existing.school_name,
                        school_code: existing.school_code.into(),
                        region_name: region.full_name(),
                        region: region.as_str().into(),
                    })
                } else {
                    ServiceError::already_exists(Message::ResidentIdRegisteredElsewhere {
                        region_name: region.full_name(),
                    })
                }
            }
            Ok(None) => ServiceError::already_exists(Message::ResidentIdRegistered),
            Err(error) => error.into(),
        }
    }

    /// Reads a pupil the caller may see: in its region, and a school's own pupil.
    async fn pupil_in_scope(&self, caller: &Caller, field: &str, text: &str) -> Result<PupilRecord, ServiceError> {
        let id = parse_uuid(field, text)?;
        let pupil = pupils::get(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Message::PupilUnknown { id: id.to_string() }))?;
        caller.require_scope(&pupil.enrollment_region)?;
        caller.require_school(&pupil.school_code)?;
        Ok(pupil)
    }

    pub(super) async fn get_pupil(&self, caller: &Caller, request: GetPupilRequest) -> Result<Pupil, ServiceError> {
        let full = PupilView::try_from(request.view) == Ok(PupilView::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], nol_messages::vocab::Action::SeeFullResidentIds)?;
        }
        let row = self.pupil_in_scope(caller, "pupil_id", &request.pupil_id).await?;
        let action = if full { "pupil.read_full" } else { "pupil.read" };
        audit::record_read(&self.pool, caller, action, "pupil", &[row.id.to_string()]).await?;
        Ok(self.to_proto(&row, full))
    }

    pub(super) async fn list_pupils(
        &self,
        caller: &Caller,
        request: ListPupilsRequest,
    ) -> Result<ListPupilsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let mut violations = Violations::default();
        let status = match EnrollmentStatus::try_from(request.enrollment_status) {
            Ok(EnrollmentStatus::Unspecified) => None,
            Ok(status) => Status::from_proto(status),
            Err(_) => {
                violations.add("enrollment_status", Message::NotAStatus);
                None
            }
        };
        let resident_id_index = if request.resident_id.trim().is_empty() {
            None
        } else {
            violations
                .check("resident_id", ResidentId::parse_on(&request.resident_id, self.clock.today()))
                .map(|id| self.data_key.blind_index(id.expose()))
        };
        violations.finish()?;
        let filter = PupilFilter {
            prefix: region.subtree_prefix(),
            school_code: school_filter(caller, &request.school_code)?,
            status,
            migrant: request.migrant,
            registered_poor: request.registered_poor,
            severe_disability_only: request.severe_disability_only,
            name_prefix: Some(request.name_prefix.trim()).filter(|name| !name.is_empty()),
            resident_id_index,
            provisional_only: false,
        };
        let (pupils, next_page_token) =
            self.page_of_pupils(caller, &filter, request.page_size, &request.page_token, "pupil.list").await?;
        Ok(ListPupilsResponse { pupils, next_page_token })
    }

    async fn page_of_pupils(
        &self,
        caller: &Caller,
        filter: &PupilFilter<'_>,
        page_size: i32,
        page_token: &str,
        action: &str,
    ) -> Result<(Vec<Pupil>, String), ServiceError> {
        let size = paging::page_size(page_size)?;
        let after = Cursor::decode(page_token)?;
        let mut rows = pupils::list(&self.pool, filter, after, size + 1).await?;
        let next = paging::next_page(&mut rows, size, |row| Cursor { time: row.created_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        audit::record_read(&self.pool, caller, action, "pupil", &ids).await?;
        Ok((rows.iter().map(|row| self.to_proto(row, false)).collect(), next))
    }

    pub(super) async fn update_status(
        &self,
        caller: &Caller,
        request: UpdatePupilStatusRequest,
    ) -> Result<Pupil, ServiceError> {
        caller.require_role(WRITERS, nol_messages::vocab::Action::ChangeEnrollmentStatus)?;
        let to = EnrollmentStatus::try_from(request.enrollment_status)
            .ok()
            .and_then(Status::from_proto)
            .ok_or_else(|| ServiceError::invalid("enrollment_status", Common::Required))?;
        let today = self.clock.today();
        let (reason, effective) = reason_and_date(&request.reason, &request.effective_date, today)?;
        let row = self.pupil_in_scope(caller, "pupil_id", &request.pupil_id).await?;
        let mut tx = self.pool.begin().await?;
        let row = pupils::get_for_update(&mut tx, row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        check_change(row.status, to, effective, today, row.birth_date).map_err(ServiceError::precondition)?;
        let change = StatusChange {
            to_status: to,
            to_school: &row.school_code,
            to_region: row.enrollment_region,
            grade: row.grade,
            migrant: row.migrant,
            reason: &reason,
            effective_date: effective,
            recorded_by: &caller.subject,
        };
        self.record_change(&mut tx, caller, &row, &change).await?;
        tx.commit().await?;
        self.wake.notify();
        let updated = pupils::get(&self.pool, row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(self.to_proto(&updated, false))
    }

    pub(super) async fn transfer(&self, caller: &Caller, request: TransferPupilRequest) -> Result<Pupil, ServiceError> {
        caller.require_role(WRITERS, nol_messages::vocab::Action::TransferPupils)?;
        let today = self.clock.today();
        let (reason, effective) = reason_and_date(&request.reason, &request.effective_date, today)?;
        let row = self.pupil_in_scope(caller, "pupil_id", &request.pupil_id).await?;
        let school = self
            .schools
            .get(&self.pool, request.to_school_code.trim())
            .await?
            .ok_or_else(|| ServiceError::invalid("to_school_code", Message::NotARegisteredSchool))?;
        if school.code == row.school_code {
            return Err(ServiceError::precondition(Message::AlreadyAtSchool { school: school.name }));
        }
        let grade = if request.grade == 0 {
            row.grade
        } else {
            pupil::parse_grade(&request.grade.to_string()).map_err(|reason| ServiceError::invalid("grade", reason))?
        };
        let mut tx = self.pool.begin().await?;
        let row = pupils::get_for_update(&mut tx, row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        check_transfer(row.status, effective, today, row.birth_date).map_err(|refusal| match refusal {
            TransferRefusal::CannotMove(_) => ServiceError::precondition(refusal),
            TransferRefusal::DateOutOfRange => ServiceError::invalid("effective_date", refusal),
        })?;
        let change = StatusChange {
            to_status: row.status,
            to_school: &school.code,
            to_region: school.region,
            grade,
            migrant: row.hukou_region != school.region,
            reason: &reason,
            effective_date: effective,
            recorded_by: &caller.subject,
        };
        self.record_change(&mut tx, caller, &row, &change).await?;
        tx.commit().await?;
        self.wake.notify();
        let updated = pupils::get(&self.pool, row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(self.to_proto(&updated, false))
    }

    /// A status change or transfer: the row, its history, its event, its audit entry.
    async fn record_change(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        row: &PupilRecord,
        change: &StatusChange<'_>,
    ) -> Result<(), ServiceError> {
        let version = pupils::change(conn, row, change).await?;
        let region = change.to_region;
        let payload = PupilStatusChanged {
            pupil_id: row.id.to_string(),
            region_code: region.to_string(),
            from_status: row.status.to_proto() as i32,
            to_status: change.to_status.to_proto() as i32,
            from_school_code: row.school_code.clone(),
            to_school_code: change.to_school.to_owned(),
            reason: change.reason.to_owned(),
            effective_date: change.effective_date.format("%Y-%m-%d").to_string(),
            from_region_code: row.enrollment_region.to_string(),
            grade: change.grade.into(),
            migrant: change.migrant,
            registered_poor: row.registered_poor,
            disability_grade: row.disability_grade.into(),
            from_grade: row.grade.into(),
            from_migrant: row.migrant,
        };
        nol_backbone::outbox::emit(
            conn,
            &self.scheme.local(PUPIL_STATUS_CHANGED, &region),
            EventHeader {
                event_type: PUPIL_STATUS_CHANGED,
                source_region: region,
                aggregate_type: "pupil",
                aggregate_id: &payload.pupil_id,
                aggregate_sequence: version as u64,
                actor: &caller.subject,
            },
            &payload,
        )
        .await?;
        audit::record(conn, caller, "pupil.change", "pupil", &[row.id.to_string()]).await?;
        Ok(())
    }

    pub(super) async fn history(
        &self,
        caller: &Caller,
        request: ListPupilStatusChangesRequest,
    ) -> Result<ListPupilStatusChangesResponse, ServiceError> {
        let row = self.pupil_in_scope(caller, "pupil_id", &request.pupil_id).await?;
        let changes = pupils::history(&self.pool, row.id).await?;
        audit::record_read(&self.pool, caller, "pupil.read_history", "pupil", &[row.id.to_string()]).await?;
        Ok(ListPupilStatusChangesResponse {
            changes: changes
                .into_iter()
                .map(|change| PupilStatusChange {
                    sequence: change.sequence,
                    from_status: change.from_status.to_proto() as i32,
                    to_status: change.to_status.to_proto() as i32,
                    from_school_code: change.from_school,
                    to_school_code: change.to_school,
                    reason: change.reason,
                    effective_date: change.effective_date.format("%Y-%m-%d").to_string(),
                    recorded_by: change.recorded_by,
                    record_time: Some(nol_runtime::time::timestamp(change.recorded_at)),
                })
                .collect(),
        })
    }

    pub(super) async fn data_quality(
        &self,
        caller: &Caller,
        request: ListDataQualityIssuesRequest,
    ) -> Result<ListDataQualityIssuesResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let filter = PupilFilter {
            prefix: region.subtree_prefix(),
            school_code: school_filter(caller, "")?,
            provisional_only: true,
            ..PupilFilter::default()
        };
        let (pupils, next_page_token) =
            self.page_of_pupils(caller, &filter, request.page_size, &request.page_token, "pupil.list").await?;
        Ok(ListDataQualityIssuesResponse { pupils, next_page_token })
    }

    pub(super) async fn set_resident_id(
        &self,
        caller: &Caller,
        request: SetPupilResidentIdRequest,
    ) -> Result<Pupil, ServiceError> {
        caller.require_role(WRITERS, nol_messages::vocab::Action::SetResidentIds)?;
        let id = ResidentId::parse_on(&request.resident_id, self.clock.today())
            .map_err(|error| ServiceError::invalid("resident_id", error))?;
        let row = self.pupil_in_scope(caller, "pupil_id", &request.pupil_id).await?;
        if !row.provisional {
            return Err(ServiceError::precondition(Message::ResidentIdAlreadySet));
        }
        let index = self.data_key.blind_index(id.expose());
        let mut tx = self.pool.begin().await?;
        let updated = pupils::set_resident_id(
            &mut tx,
            row.id,
            &self.data_key.encrypt(id.expose().as_bytes(), RESIDENT_ID_CONTEXT, &index),
            &index,
            &id.masked(),
            id.sex(),
            id.birth_date(),
        )
        .await;
        match updated {
            Ok(_) => {}
            Err(error) if database::is_unique_violation(&error, Some("pupil_one_per_resident_id")) => {
                drop(tx);
                return Err(self.already_registered(caller, &index).await);
            }
            Err(error) => return Err(error.into()),
        }
        audit::record(&mut tx, caller, "pupil.set_resident_id", "pupil", &[row.id.to_string()]).await?;
        tx.commit().await?;
        let updated = pupils::get(&self.pool, row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(self.to_proto(&updated, false))
    }

    pub(super) fn to_proto(&self, row: &PupilRecord, full: bool) -> Pupil {
        let resident_id = if full {
            row.resident_id_cipher
                .as_deref()
                .zip(row.resident_id_index.as_deref())
                .and_then(|(cipher, index)| match self.data_key.decrypt(cipher, RESIDENT_ID_CONTEXT, index) {
                    Ok(clear) => Some(clear),
                    Err(error) => {
                        tracing::warn!(pupil_id = %row.id, error = %error, "a pupil's resident ID does not decrypt");
                        None
                    }
                })
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| ResidentId::parse_on(&text, self.clock.today()).ok())
                .map(|id| id.expose().to_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Pupil {
            pupil_id: row.id.to_string(),
            full_name: row.full_name.clone(),
            resident_id,
            resident_id_masked: row.resident_id_masked.clone().unwrap_or_default(),
            sex: match row.sex {
                Some(nol_pii::Sex::Male) => Sex::Male,
                Some(nol_pii::Sex::Female) => Sex::Female,
                None => Sex::Unspecified,
            } as i32,
            // The date only in the full view: with the mask's last four characters it would
            // rebuild the number. Every view has the year.
            birth_date: row
                .birth_date
                .filter(|_| full)
                .map(|date| date.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            birth_year: row.birth_date.map(|date| chrono::Datelike::year(&date)).unwrap_or_default(),
            enrollment_region_code: row.enrollment_region.to_string(),
            hukou_region_code: row.hukou_region.to_string(),
            residence_region_code: row.residence_region.to_string(),
            school_name: row.school_name.clone(),
            grade: i32::from(row.grade),
            migrant: row.migrant,
            enrollment_status: row.status.to_proto() as i32,
            create_time: Some(nol_runtime::time::timestamp(row.created_at)),
            created_by: row.created_by.clone(),
            school_code: row.school_code.clone(),
            disability_grade: disability_proto(row.disability_grade) as i32,
            registered_poor: row.registered_poor,
            poor_household_id: row.poor_household_id.clone().unwrap_or_default(),
            identity_provisional: row.provisional,
        }
    }
}

/// The school a list is limited to: the one asked for, and a school caller's own (another school
/// refused).
fn school_filter<'a>(caller: &'a Caller, requested: &'a str) -> Result<Option<&'a str>, ServiceError> {
    let requested = Some(requested.trim()).filter(|code| !code.is_empty());
    match (caller.own_school()?, requested) {
        (Some(own), Some(requested)) if requested != own => {
            Err(nol_auth::Denied::OtherSchool { own: own.to_owned(), requested: requested.to_owned() }.into())
        }
        (Some(own), _) => Ok(Some(own)),
        (None, requested) => Ok(requested),
    }
}

/// A change's reason (required) and effective date (`today` when empty).
fn reason_and_date(reason: &str, date: &str, today: NaiveDate) -> Result<(String, NaiveDate), ServiceError> {
    let mut violations = Violations::default();
    violations.require("reason", reason);
    let effective = if date.trim().is_empty() {
        Some(today)
    } else {
        violations.check("effective_date", parse_date(date).ok_or(Common::NotADate))
    };
    violations.finish()?;
    Ok((reason.trim().to_owned(), nol_runtime::error::checked(effective)?))
}
