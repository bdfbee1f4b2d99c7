//! The case file and its life through gRPC: the file's contents, persuasion, and every status
//! transition. Each change is one transaction: the case row locked, the rules of `domain` checked
//! against the facts the file shows, the change with its history entry and its outbox event, the
//! audit entry.

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_events::{ASSISTANCE_REQUESTED, EventHeader, PERSUASION_RECORDED};
use nol_proto::v1::{
    AddEvidenceRequest, AddMeasureRequest, AddOfficerRequest, ApproveDeferralRequest, ApproveDeferralResponse,
    AssistanceRequested, CaseEvidence, CaseFile, CaseHistoryEntry, CaseMeasure, CaseOfficer, CloseCaseRequest,
    CloseReason, CompleteMeasureRequest, DeferralKind, DeferralRequest, DeferralState, DropoutCase, EvidenceType,
    ExemptCaseRequest, GetCaseFileRequest, GetCaseFileResponse, HomeTeachingVisit, LearningSupport,
    ListCaseHistoryRequest, ListCaseHistoryResponse, ListPersuasionAttemptsRequest, ListPersuasionAttemptsResponse,
    LogHomeTeachingVisitRequest, MeasureKind, OfficerRole, PersuasionAttempt, PersuasionDepartment, PersuasionMeans,
    PersuasionOutcome, PersuasionPlace, PersuasionRecorded, RecordPersuasionAttemptRequest,
    RecordPersuasionAttemptResponse, RecordRelapseRequest, RejectDeferralRequest, RequestDeferralRequest,
    ReturnToSchoolRequest, StartHomeTeachingRequest, StartMonitoringRequest, UpdateCausesRequest,
};
use nol_region::RegionCode;
use nol_runtime::error::{checked, parse_uuid};
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{ServiceError, Violations, audit};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Command, RuleViolation, Status, StoredName, cause_name, check_attempt, check_causes, check_file_change,
    check_not_future, check_phone, check_visit, decide, is_joint, wire_list,
};
use crate::file_store::{self, AttemptRow, DeferralRow, EvidenceRow, MeasureRow, NewAttempt, NewEvidence, NewMeasure};
use crate::grpc::Cases;
use crate::ledger;
use crate::store::{self, CaseRow, StatusChange};

/// The largest evidence file kept (10 MiB).
pub const MAX_EVIDENCE_FILE: usize = 10 * 1024 * 1024;

const CHANGE_ROLES: &[Role] = &[Role::Caseworker];

fn refused(rule: RuleViolation) -> ServiceError {
    ServiceError::precondition(rule.to_string())
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn parse_date(violations: &mut Violations, field: &str, text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        violations.add(field, "is required (YYYY-MM-DD)");
        return None;
    }
    let date = violations
        .check(field, NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| "is not a date (YYYY-MM-DD)"))?;
    violations.check(field, check_not_future(date, today))?;
    Some(date)
}

fn text_field(violations: &mut Violations, field: &str, text: &str, required: bool, max: usize) -> String {
    let text = text.trim();
    if required && text.is_empty() {
        violations.add(field, "is required");
    } else if text.chars().count() > max {
        violations.add(field, format!("is longer than {max} characters"));
    }
    text.to_owned()
}

fn stored_list<E: StoredName>(items: &[E]) -> Vec<String> {
    items.iter().map(|item| item.stored()).collect()
}

fn wire_of<E: StoredName + Into<i32>>(names: &[String]) -> Vec<i32> {
    names.iter().filter_map(|name| E::from_stored(name)).map(Into::into).collect()
}

fn wire_one<E: StoredName + Into<i32>>(name: &str) -> i32 {
    E::from_stored(name).map(Into::into).unwrap_or(0)
}

impl Cases {
    /// Locks a case for a change by `caller`, who must see its region.
    async fn lock(&self, conn: &mut PgConnection, caller: &Caller, case_id: Uuid) -> Result<CaseRow, ServiceError> {
        let row = store::get_for_update(conn, case_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no case {case_id}")))?;
        caller.require_scope(&RegionCode::parse(&row.region).map_err(anyhow::Error::from)?)?;
        Ok(row)
    }

    /// Reads a case `caller` may see, for a read of its file.
    async fn readable(&self, caller: &Caller, case_id: Uuid) -> Result<CaseRow, ServiceError> {
        let row = store::get(&self.pool, case_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no case {case_id}")))?;
        caller.require_scope(&RegionCode::parse(&row.region).map_err(anyhow::Error::from)?)?;
        Ok(row)
    }

    async fn committed(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        caller: &Caller,
        action: &str,
        case_id: Uuid,
    ) -> Result<(), ServiceError> {
        audit::record(&mut tx, caller, action, "dropout_case", &[case_id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        Ok(())
    }

    async fn current(&self, case_id: Uuid) -> Result<DropoutCase, ServiceError> {
        let row = store::get(&self.pool, case_id).await?.ok_or(sqlx::Error::RowNotFound)?;
        self.view(&row, None).await
    }

    pub(crate) async fn update_causes(
        &self,
        caller: &Caller,
        request: UpdateCausesRequest,
    ) -> Result<DropoutCase, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let causes = check_causes(&request.causes).map_err(|rule| ServiceError::invalid("causes", rule.to_string()))?;
        let names: Vec<String> = causes.iter().map(|cause| cause_name(*cause).to_owned()).collect();
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_file_change(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        file_store::set_causes(&mut tx, id, &names).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "causes_updated",
            serde_json::json!({ "from": row.causes, "to": names }),
        )
        .await?;
        self.committed(tx, caller, "case.update_causes", id).await?;
        self.current(id).await
    }

    pub(crate) async fn add_officer(
        &self,
        caller: &Caller,
        request: AddOfficerRequest,
    ) -> Result<CaseOfficer, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let officer = request.officer.unwrap_or_default();
        let mut violations = Violations::default();
        let name = text_field(&mut violations, "officer.full_name", &officer.full_name, true, 50);
        let role = violations.check("officer.role", OfficerRole::from_wire(officer.role).ok_or("is required"));
        let phone = officer.phone.trim().to_owned();
        violations.check("officer.phone", check_phone(&phone));
        violations.finish()?;
        let role = checked(role)?;
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_file_change(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let added = file_store::insert_officer(&mut tx, id, &name, &role.stored(), &phone, &caller.subject).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "officer_added",
            serde_json::json!({ "officer_id": added.id, "full_name": name, "role": role.stored() }),
        )
        .await?;
        self.committed(tx, caller, "case.add_officer", id).await?;
        Ok(officer_proto(&added))
    }

    pub(crate) async fn add_measure(
        &self,
        caller: &Caller,
        request: AddMeasureRequest,
    ) -> Result<CaseMeasure, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let measure = request.measure.unwrap_or_default();
        let mut violations = Violations::default();
        let kind = violations.check("measure.kind", MeasureKind::from_wire(measure.kind).ok_or("is required"));
        let description = text_field(&mut violations, "measure.description", &measure.description, true, 2000);
        let fund = text_field(&mut violations, "measure.fund", &measure.fund, false, 100);
        let support = match wire_list::<LearningSupport>(&measure.learning_support) {
            Ok(support) => support,
            Err(unknown) => {
                violations.add("measure.learning_support", format!("has unknown values {unknown:?}"));
                Vec::new()
            }
        };
        let due_on = if measure.due_on.trim().is_empty() {
            violations.add("measure.due_on", "is required (YYYY-MM-DD)");
            None
        } else {
            violations.check(
                "measure.due_on",
                NaiveDate::parse_from_str(measure.due_on.trim(), "%Y-%m-%d").map_err(|_| "is not a date (YYYY-MM-DD)"),
            )
        };
        match kind {
            Some(MeasureKind::FinancialAid) if fund.is_empty() => {
                violations.add("measure.fund", "R3: financial aid names the fund paying it")
            }
            Some(MeasureKind::FinancialAid) => {}
            _ if !fund.is_empty() => violations.add("measure.fund", "is only for financial aid"),
            _ => {}
        }
        match kind {
            Some(MeasureKind::LearningSupport) if support.is_empty() => {
                violations.add("measure.learning_support", "R7: learning support names at least one form")
            }
            Some(MeasureKind::LearningSupport) => {}
            _ if !support.is_empty() => violations.add("measure.learning_support", "is only for learning support"),
            _ => {}
        }
        violations.finish()?;
        let new = NewMeasure {
            kind: checked(kind)?.stored(),
            description,
            fund,
            learning_support: stored_list(&support),
            due_on: checked(due_on)?,
        };
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_file_change(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let added = file_store::insert_measure(&mut tx, id, &new, &caller.subject).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "measure_added",
            serde_json::json!({ "measure_id": added.id, "kind": new.kind, "due_on": date_text(new.due_on), "fund": new.fund }),
        )
        .await?;
        self.committed(tx, caller, "case.add_measure", id).await?;
        Ok(measure_proto(&added))
    }

    pub(crate) async fn complete_measure(
        &self,
        caller: &Caller,
        request: CompleteMeasureRequest,
    ) -> Result<CaseMeasure, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let measure_id = parse_uuid("measure_id", &request.measure_id)?;
        let today = self.clock.today();
        let done_on = if request.done_on.trim().is_empty() {
            today
        } else {
            let mut violations = Violations::default();
            let done_on = parse_date(&mut violations, "done_on", &request.done_on, today);
            violations.finish()?;
            checked(done_on)?
        };
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_file_change(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let measure = file_store::measure_for_update(&mut tx, id, measure_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no measure {measure_id} on case {id}")))?;
        if let Some(done) = measure.done_on {
            return Err(ServiceError::precondition(format!(
                "the measure was already marked done on {done} by {}",
                measure.done_by.unwrap_or_default()
            )));
        }
        let done = file_store::complete_measure(&mut tx, measure_id, done_on, &caller.subject).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "measure_done",
            serde_json::json!({ "measure_id": measure_id, "done_on": date_text(done_on) }),
        )
        .await?;
        self.committed(tx, caller, "case.complete_measure", id).await?;
        Ok(measure_proto(&done))
    }

    pub(crate) async fn add_evidence(
        &self,
        caller: &Caller,
        request: AddEvidenceRequest,
    ) -> Result<CaseEvidence, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let evidence = request.evidence.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let kind = violations.check("evidence.type", EvidenceType::from_wire(evidence.r#type).ok_or("is required"));
        let number = text_field(&mut violations, "evidence.document_number", &evidence.document_number, false, 100);
        let issuing_body = text_field(&mut violations, "evidence.issuing_body", &evidence.issuing_body, true, 200);
        let issued_on = parse_date(&mut violations, "evidence.issued_on", &evidence.issued_on, today);
        let file_name = text_field(&mut violations, "evidence.file_name", &evidence.file_name, false, 200);
        if file_name.contains(['/', '\\']) {
            violations.add("evidence.file_name", "is a name, not a path");
        }
        let content = request.file_content;
        if content.len() > MAX_EVIDENCE_FILE {
            violations
                .add("file_content", format!("is {} bytes; at most 10 MiB ({MAX_EVIDENCE_FILE} bytes)", content.len()));
        }
        if content.is_empty() != file_name.is_empty() {
            violations.add("evidence.file_name", "a file needs its name, and a name needs its file");
        }
        violations.finish()?;
        let sha256 = (!content.is_empty()).then(|| Sha256::digest(&content).to_vec());
        let new = NewEvidence {
            kind: checked(kind)?.stored(),
            document_number: number,
            issuing_body,
            issued_on: checked(issued_on)?,
            file_name,
            content,
            sha256,
        };
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_file_change(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let added = file_store::insert_evidence(&mut tx, id, &new, &caller.subject).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "evidence_added",
            serde_json::json!({
                "evidence_id": added.id, "type": new.kind, "document_number": new.document_number,
                "issuing_body": new.issuing_body, "issued_on": date_text(new.issued_on),
                "file_sha256": added.file_sha256.as_deref().map(hex).unwrap_or_default(),
            }),
        )
        .await?;
        self.committed(tx, caller, "case.add_evidence", id).await?;
        Ok(evidence_proto(&added))
    }

    /// The file of an evidence document: (name, sha256 hex, bytes).
    pub(crate) async fn evidence_file(
        &self,
        caller: &Caller,
        case_id: &str,
        evidence_id: &str,
    ) -> Result<(String, String, Vec<u8>), ServiceError> {
        let id = parse_uuid("case_id", case_id)?;
        let evidence_id = parse_uuid("evidence_id", evidence_id)?;
        self.readable(caller, id).await?;
        let (row, content) = file_store::evidence_file(&self.pool, id, evidence_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no evidence {evidence_id} on case {id}")))?;
        let content = content.ok_or_else(|| ServiceError::not_found(format!("evidence {evidence_id} has no file")))?;
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.read_evidence_file", "case_evidence", &[evidence_id.to_string()])
            .await?;
        Ok((row.file_name, row.file_sha256.as_deref().map(hex).unwrap_or_default(), content))
    }

    pub(crate) async fn case_file(
        &self,
        caller: &Caller,
        request: GetCaseFileRequest,
    ) -> Result<GetCaseFileResponse, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        let row = self.readable(caller, id).await?;
        let file = CaseFile {
            officers: file_store::officers(&self.pool, id).await?.iter().map(officer_proto).collect(),
            measures: file_store::measures(&self.pool, id).await?.iter().map(measure_proto).collect(),
            evidence: file_store::evidence(&self.pool, id).await?.iter().map(evidence_proto).collect(),
            deferral_requests: file_store::deferrals(&self.pool, id).await?.iter().map(deferral_proto).collect(),
            home_teaching_visits: file_store::visits(&self.pool, id, 200).await?.iter().map(visit_proto).collect(),
        };
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.read_file", "dropout_case", &[id.to_string()]).await?;
        Ok(GetCaseFileResponse { dropout_case: Some(self.view(&row, None).await?), file: Some(file) })
    }

    pub(crate) async fn history(
        &self,
        caller: &Caller,
        request: ListCaseHistoryRequest,
    ) -> Result<ListCaseHistoryResponse, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        self.readable(caller, id).await?;
        let size = paging::page_size(request.page_size)?;
        let after = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .strip_prefix('v')
                .and_then(|version| version.parse::<i64>().ok())
                .ok_or_else(|| ServiceError::invalid("page_token", "is not a token this service issued"))?
        };
        let mut rows = file_store::history(&self.pool, id, after, size + 1).await?;
        let next_page_token = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last().map(|row| format!("v{}", row.version)).unwrap_or_default()
        } else {
            String::new()
        };
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.read_history", "dropout_case", &[id.to_string()]).await?;
        Ok(ListCaseHistoryResponse {
            entries: rows
                .into_iter()
                .map(|row| CaseHistoryEntry {
                    version: row.version,
                    change_time: Some(nol_runtime::time::timestamp(row.at)),
                    actor: row.actor,
                    change: row.change,
                    detail_json: row.detail.to_string(),
                })
                .collect(),
            next_page_token,
        })
    }

    pub(crate) async fn record_attempt(
        &self,
        caller: &Caller,
        request: RecordPersuasionAttemptRequest,
    ) -> Result<RecordPersuasionAttemptResponse, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::RecordPersuasion)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let attempt = request.attempt.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let attempt_on = parse_date(&mut violations, "attempt.attempt_date", &attempt.attempt_date, today);
        let departments = match wire_list::<PersuasionDepartment>(&attempt.departments) {
            Ok(list) if list.is_empty() => {
                violations.add("attempt.departments", "R5: at least one department took part");
                list
            }
            Ok(list) => list,
            Err(unknown) => {
                violations.add("attempt.departments", format!("has unknown values {unknown:?}"));
                Vec::new()
            }
        };
        let means = match wire_list::<PersuasionMeans>(&attempt.means) {
            Ok(list) if list.is_empty() => {
                violations.add("attempt.means", "R5: at least one means (emotional, economic, administrative, legal)");
                list
            }
            Ok(list) => list,
            Err(unknown) => {
                violations.add("attempt.means", format!("has unknown values {unknown:?}"));
                Vec::new()
            }
        };
        let place = violations.check("attempt.place", PersuasionPlace::from_wire(attempt.place).ok_or("is required"));
        let outcome =
            violations.check("attempt.outcome", PersuasionOutcome::from_wire(attempt.outcome).ok_or("is required"));
        let notes = text_field(&mut violations, "attempt.notes", &attempt.notes, false, 4000);
        let place_region = match (place, attempt.place_region_code.trim()) {
            (Some(PersuasionPlace::WorkPlace), "") => {
                violations.add("attempt.place_region_code", "R8: a work place names its county-level region");
                None
            }
            (Some(PersuasionPlace::WorkPlace), code) => {
                violations.check("attempt.place_region_code", RegionCode::parse_county(code))
            }
            (_, "") => None,
            (_, _) => {
                violations.add("attempt.place_region_code", "is only for a work place");
                None
            }
        };
        violations.finish()?;
        let (place, outcome) = (checked(place)?, checked(outcome)?);
        let joint = is_joint(&departments);
        let new = NewAttempt {
            attempt_on: checked(attempt_on)?,
            departments: stored_list(&departments),
            means: stored_list(&means),
            place: place.stored(),
            place_region: place_region.map(|region| region.to_string()),
            outcome: outcome.stored(),
            notes,
            joint,
        };
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        let region = RegionCode::parse(&row.region).map_err(anyhow::Error::from)?;
        check_attempt(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let added = file_store::insert_attempt(&mut tx, id, &new, &caller.subject).await?;
        // R8: a child found working outside the owning county: that region's bureau is asked to help.
        let assisting = place_region.filter(|assisting| *assisting != region);
        let version = file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "persuasion_recorded",
            serde_json::json!({
                "attempt_id": added.id, "attempt_date": date_text(new.attempt_on), "joint": joint,
                "departments": new.departments, "means": new.means, "place": new.place,
                "place_region_code": new.place_region, "outcome": new.outcome,
                "assistance_requested_from": assisting.map(|region| region.to_string()),
            }),
        )
        .await?;
        store::refresh_due(&mut tx, id).await?;
        let aggregate_id = id.to_string();
        let payload = PersuasionRecorded {
            case_id: aggregate_id.clone(),
            region_code: row.region.clone(),
            attempt_id: added.id.to_string(),
            attempt_date: date_text(new.attempt_on),
            joint,
            outcome: outcome as i32,
        };
        let header = |event_type| EventHeader {
            event_type,
            source_region: region,
            aggregate_type: "dropout_case",
            aggregate_id: &aggregate_id,
            aggregate_sequence: version as u64,
            actor: &caller.subject,
        };
        nol_backbone::outbox::emit(
            &mut tx,
            &self.scheme.local(PERSUASION_RECORDED, &region),
            header(PERSUASION_RECORDED),
            &payload,
        )
        .await?;
        if let Some(assisting) = assisting {
            let request = AssistanceRequested {
                case_id: aggregate_id.clone(),
                region_code: row.region.clone(),
                assisting_region_code: assisting.to_string(),
                full_name: row.child_name.clone(),
                resident_id_masked: row.resident_id_masked.clone(),
                request: format!(
                    "R8: the child was found working in {} on {}; please persuade together with {}",
                    assisting.full_name(),
                    date_text(new.attempt_on),
                    region.full_name()
                ),
            };
            let subject = if assisting.province() == region.province() {
                self.scheme.local(ASSISTANCE_REQUESTED, &assisting)
            } else {
                self.scheme.cross(ASSISTANCE_REQUESTED, &region, &assisting)
            };
            nol_backbone::outbox::emit(&mut tx, &subject, header(ASSISTANCE_REQUESTED), &request).await?;
        }
        self.committed(tx, caller, "case.record_attempt", id).await?;
        Ok(RecordPersuasionAttemptResponse {
            attempt: Some(attempt_proto(&added)),
            dropout_case: Some(self.current(id).await?),
        })
    }

    pub(crate) async fn attempts(
        &self,
        caller: &Caller,
        request: ListPersuasionAttemptsRequest,
    ) -> Result<ListPersuasionAttemptsResponse, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        self.readable(caller, id).await?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut rows = file_store::attempts(&self.pool, id, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.recorded_at, id: row.id });
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "case.read_attempts", "dropout_case", &[id.to_string()]).await?;
        Ok(ListPersuasionAttemptsResponse { attempts: rows.iter().map(attempt_proto).collect(), next_page_token })
    }

    pub(crate) async fn log_visit(
        &self,
        caller: &Caller,
        request: LogHomeTeachingVisitRequest,
    ) -> Result<HomeTeachingVisit, ServiceError> {
        caller.require_role(&[Role::Caseworker, Role::School], nol_messages::vocab::Action::LogHomeTeachingVisits)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let visit = request.visit.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let visited_on = parse_date(&mut violations, "visit.visit_date", &visit.visit_date, today);
        let teacher = text_field(&mut violations, "visit.teacher", &visit.teacher, true, 50);
        let content = text_field(&mut violations, "visit.content", &visit.content, true, 4000);
        if !(1..=600).contains(&visit.duration_minutes) {
            violations.add("visit.duration_minutes", "is 1 to 600 minutes");
        }
        violations.finish()?;
        let visited_on = checked(visited_on)?;
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        check_visit(Status::parse(&row.status).unwrap_or(Status::Closed)).map_err(refused)?;
        let added = file_store::insert_visit(
            &mut tx,
            id,
            visited_on,
            &teacher,
            visit.duration_minutes,
            &content,
            &caller.subject,
        )
        .await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "home_teaching_visit",
            serde_json::json!({
                "visit_id": added.id, "visit_date": date_text(visited_on), "teacher": teacher,
                "duration_minutes": visit.duration_minutes,
            }),
        )
        .await?;
        self.committed(tx, caller, "case.log_visit", id).await?;
        Ok(visit_proto(&added))
    }

    /// A status transition: the rules decide over the facts the locked case shows; the change,
    /// its history entry and its `case_status_changed` event are written in one transaction.
    async fn transition(
        &self,
        caller: &Caller,
        case_id: &str,
        command: Command,
        note: &str,
        detail: Detail,
    ) -> Result<DropoutCase, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::MoveCaseStatus)?;
        let id = parse_uuid("case_id", case_id)?;
        if note.chars().count() > 2000 {
            return Err(ServiceError::invalid("note", "is longer than 2,000 characters"));
        }
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        let facts = file_store::facts(&mut tx, &row, today).await?;
        let to = decide(&facts, command).map_err(refused)?;
        let (change, mut fields) = match detail {
            Detail::Fresh(change, fields) => (change, fields),
            Detail::Keep(change, fields) => {
                let mut kept = row.status_detail.as_object().cloned().unwrap_or_default();
                kept.extend(fields);
                (change, kept)
            }
        };
        if !note.trim().is_empty() {
            fields.insert("note".to_owned(), note.trim().into());
        }
        let relapse = command == Command::RecordRelapse;
        let status_change = StatusChange {
            to,
            change,
            actor: &caller.subject,
            detail: serde_json::Value::Object(fields),
            relapse,
            follow_up_from: None,
            confirmed_on: relapse.then_some(today),
        };
        let reason = if note.trim().is_empty() { change.to_owned() } else { note.trim().to_owned() };
        ledger::change_status(&mut tx, &self.scheme, &row, &status_change, &reason).await?;
        self.committed(tx, caller, &format!("case.{change}"), id).await?;
        tracing::info!(case_id = %id, from = %row.status, to = to.as_str(), "case status changed");
        self.current(id).await
    }

    pub(crate) async fn return_to_school(
        &self,
        caller: &Caller,
        request: ReturnToSchoolRequest,
    ) -> Result<DropoutCase, ServiceError> {
        let returned = request.returned.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let school_name = text_field(&mut violations, "returned.school_name", &returned.school_name, true, 100);
        let school_code = text_field(&mut violations, "returned.school_code", &returned.school_code, false, 20);
        let class_name = text_field(&mut violations, "returned.class_name", &returned.class_name, true, 50);
        let returned_on = if returned.returned_on.trim().is_empty() {
            Some(today)
        } else {
            parse_date(&mut violations, "returned.returned_on", &returned.returned_on, today)
        };
        violations.finish()?;
        let mut fields = serde_json::Map::new();
        fields.insert("school_name".into(), school_name.into());
        fields.insert("school_code".into(), school_code.into());
        fields.insert("class_name".into(), class_name.into());
        fields.insert("returned_on".into(), date_text(checked(returned_on)?).into());
        self.transition(caller, &request.case_id, Command::ReturnToSchool, "", Detail::Fresh("returned", fields)).await
    }

    pub(crate) async fn start_monitoring(
        &self,
        caller: &Caller,
        request: StartMonitoringRequest,
    ) -> Result<DropoutCase, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(caller, &request.case_id, Command::StartMonitoring, "", Detail::Keep("monitoring", fields))
            .await
    }

    pub(crate) async fn close(&self, caller: &Caller, request: CloseCaseRequest) -> Result<DropoutCase, ServiceError> {
        let reason = CloseReason::from_wire(request.reason)
            .ok_or_else(|| ServiceError::invalid("reason", "is required: completed or aged out"))?;
        let mut fields = serde_json::Map::new();
        fields.insert("close_reason".into(), reason.stored().into());
        self.transition(caller, &request.case_id, Command::Close(reason), &request.note, Detail::Keep("closed", fields))
            .await
    }

    pub(crate) async fn start_home_teaching(
        &self,
        caller: &Caller,
        request: StartHomeTeachingRequest,
    ) -> Result<DropoutCase, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(
            caller,
            &request.case_id,
            Command::StartHomeTeaching,
            &request.note,
            Detail::Fresh("home_teaching", fields),
        )
        .await
    }

    pub(crate) async fn exempt(
        &self,
        caller: &Caller,
        request: ExemptCaseRequest,
    ) -> Result<DropoutCase, ServiceError> {
        let fields = serde_json::Map::new();
        self.transition(caller, &request.case_id, Command::Exempt, &request.note, Detail::Fresh("exempt", fields)).await
    }

    pub(crate) async fn relapse(
        &self,
        caller: &Caller,
        request: RecordRelapseRequest,
    ) -> Result<DropoutCase, ServiceError> {
        if request.note.trim().is_empty() {
            return Err(ServiceError::invalid("note", "is required: what happened"));
        }
        let fields = serde_json::Map::new();
        self.transition(
            caller,
            &request.case_id,
            Command::RecordRelapse,
            &request.note,
            Detail::Fresh("relapsed", fields),
        )
        .await
    }

    pub(crate) async fn request_deferral(
        &self,
        caller: &Caller,
        request: RequestDeferralRequest,
    ) -> Result<DeferralRequest, ServiceError> {
        caller.require_role(CHANGE_ROLES, nol_messages::vocab::Action::RequestDeferrals)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let mut violations = Violations::default();
        let kind =
            violations.check("kind", DeferralKind::from_wire(request.kind).ok_or("is required: deferred or suspended"));
        let reason = text_field(&mut violations, "reason", &request.reason, true, 2000);
        violations.finish()?;
        let kind = checked(kind)?;
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let row = self.lock(&mut tx, caller, id).await?;
        let facts = file_store::facts(&mut tx, &row, today).await?;
        decide(&facts, Command::RequestDeferral(kind)).map_err(refused)?;
        let added = file_store::insert_deferral(&mut tx, id, &kind.stored(), &reason, &caller.subject).await?;
        file_store::record_change(
            &mut tx,
            id,
            &caller.subject,
            "deferral_requested",
            serde_json::json!({ "request_id": added.id, "kind": kind.stored(), "reason": reason }),
        )
        .await?;
        self.committed(tx, caller, "case.request_deferral", id).await?;
        Ok(deferral_proto(&added))
    }

    /// The pending request and its case, locked, for a decision by an approver of the owning
    /// county (the county poverty-alleviation group, R6 d).
    async fn deciding(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        request_id: &str,
    ) -> Result<(DeferralRow, CaseRow), ServiceError> {
        caller.require_role(&[Role::Approver], nol_messages::vocab::Action::DecideDeferrals)?;
        let id = parse_uuid("request_id", request_id)?;
        let request = file_store::deferral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no deferral request {id}")))?;
        let row = self.lock(conn, caller, request.case_id).await?;
        if caller.region.as_str() != row.region {
            return Err(ServiceError::Denied(nol_auth::Denied::Refused(nol_messages::Msg::from(format!(
                "R6: deferral requests of {} are decided by an approver of that county, not of {}",
                row.region, caller.region
            )))));
        }
        if request.state != "pending" {
            return Err(ServiceError::precondition(format!(
                "R6: the request was already {} by {}",
                request.state,
                request.decided_by.unwrap_or_default()
            )));
        }
        Ok((request, row))
    }

    pub(crate) async fn approve_deferral(
        &self,
        caller: &Caller,
        request: ApproveDeferralRequest,
    ) -> Result<ApproveDeferralResponse, ServiceError> {
        let note = request.note.trim();
        if note.chars().count() > 2000 {
            return Err(ServiceError::invalid("note", "is longer than 2,000 characters"));
        }
        let today = self.clock.today();
        let mut tx = self.pool.begin().await?;
        let (pending, row) = self.deciding(&mut tx, caller, &request.request_id).await?;
        let facts = file_store::facts(&mut tx, &row, today).await?;
        let to = decide(&facts, Command::ApproveDeferral).map_err(refused)?;
        let decided = file_store::decide_deferral(&mut tx, pending.id, "approved", note, &caller.subject)
            .await?
            .ok_or_else(|| ServiceError::precondition("R6: the request is no longer pending".to_owned()))?;
        let change = to.as_str();
        let status_change = StatusChange {
            to,
            change,
            actor: &caller.subject,
            detail: serde_json::json!({
                "request_id": pending.id, "kind": pending.kind, "reason": pending.reason,
                "requested_by": pending.requested_by, "approved_by": caller.subject, "note": note,
            }),
            relapse: false,
            follow_up_from: Some(today),
            confirmed_on: None,
        };
        let reason = format!("R6: {} approved by the county poverty-alleviation group", pending.kind);
        ledger::change_status(&mut tx, &self.scheme, &row, &status_change, &reason).await?;
        self.committed(tx, caller, "case.approve_deferral", row.id).await?;
        Ok(ApproveDeferralResponse {
            request: Some(deferral_proto(&decided)),
            dropout_case: Some(self.current(row.id).await?),
        })
    }

    pub(crate) async fn reject_deferral(
        &self,
        caller: &Caller,
        request: RejectDeferralRequest,
    ) -> Result<DeferralRequest, ServiceError> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(ServiceError::invalid("reason", "is required, at most 2,000 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let (pending, row) = self.deciding(&mut tx, caller, &request.request_id).await?;
        let decided = file_store::decide_deferral(&mut tx, pending.id, "rejected", reason, &caller.subject)
            .await?
            .ok_or_else(|| ServiceError::precondition("R6: the request is no longer pending".to_owned()))?;
        file_store::record_change(
            &mut tx,
            row.id,
            &caller.subject,
            "deferral_rejected",
            serde_json::json!({ "request_id": pending.id, "reason": reason }),
        )
        .await?;
        self.committed(tx, caller, "case.reject_deferral", row.id).await?;
        Ok(deferral_proto(&decided))
    }
}

/// The detail a transition records: fresh, or the case's current detail with these fields added
/// (monitoring and closing keep where the child returned to).
enum Detail {
    Fresh(&'static str, serde_json::Map<String, serde_json::Value>),
    Keep(&'static str, serde_json::Map<String, serde_json::Value>),
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn officer_proto(row: &file_store::OfficerRow) -> CaseOfficer {
    CaseOfficer {
        officer_id: row.id.to_string(),
        full_name: row.full_name.clone(),
        role: wire_one::<OfficerRole>(&row.role),
        phone: row.phone.clone(),
        added_by: row.added_by.clone(),
        add_time: Some(nol_runtime::time::timestamp(row.added_at)),
    }
}

fn measure_proto(row: &MeasureRow) -> CaseMeasure {
    CaseMeasure {
        measure_id: row.id.to_string(),
        kind: wire_one::<MeasureKind>(&row.kind),
        description: row.description.clone(),
        fund: row.fund.clone(),
        learning_support: wire_of::<LearningSupport>(&row.learning_support),
        due_on: date_text(row.due_on),
        done_on: row.done_on.map(date_text).unwrap_or_default(),
        done_by: row.done_by.clone().unwrap_or_default(),
        added_by: row.added_by.clone(),
        add_time: Some(nol_runtime::time::timestamp(row.added_at)),
    }
}

fn evidence_proto(row: &EvidenceRow) -> CaseEvidence {
    CaseEvidence {
        evidence_id: row.id.to_string(),
        r#type: wire_one::<EvidenceType>(&row.kind),
        document_number: row.document_number.clone(),
        issuing_body: row.issuing_body.clone(),
        issued_on: date_text(row.issued_on),
        file_name: row.file_name.clone(),
        file_size: row.file_size,
        file_sha256: row.file_sha256.as_deref().map(hex).unwrap_or_default(),
        added_by: row.added_by.clone(),
        add_time: Some(nol_runtime::time::timestamp(row.added_at)),
    }
}

fn attempt_proto(row: &AttemptRow) -> PersuasionAttempt {
    PersuasionAttempt {
        attempt_id: row.id.to_string(),
        attempt_date: date_text(row.attempt_on),
        departments: wire_of::<PersuasionDepartment>(&row.departments),
        means: wire_of::<PersuasionMeans>(&row.means),
        place: wire_one::<PersuasionPlace>(&row.place),
        place_region_code: row.place_region.clone().unwrap_or_default(),
        outcome: wire_one::<PersuasionOutcome>(&row.outcome),
        notes: row.notes.clone(),
        joint: row.joint,
        recorded_by: row.recorded_by.clone(),
        record_time: Some(nol_runtime::time::timestamp(row.recorded_at)),
    }
}

fn visit_proto(row: &file_store::VisitRow) -> HomeTeachingVisit {
    HomeTeachingVisit {
        visit_id: row.id.to_string(),
        visit_date: date_text(row.visited_on),
        teacher: row.teacher.clone(),
        duration_minutes: row.duration_minutes,
        content: row.content.clone(),
        recorded_by: row.recorded_by.clone(),
        record_time: Some(nol_runtime::time::timestamp(row.recorded_at)),
    }
}

fn deferral_proto(row: &DeferralRow) -> DeferralRequest {
    DeferralRequest {
        request_id: row.id.to_string(),
        case_id: row.case_id.to_string(),
        kind: wire_one::<DeferralKind>(&row.kind),
        reason: row.reason.clone(),
        state: match row.state.as_str() {
            "pending" => DeferralState::Pending,
            "approved" => DeferralState::Approved,
            "rejected" => DeferralState::Rejected,
            _ => DeferralState::Unspecified,
        } as i32,
        requested_by: row.requested_by.clone(),
        request_time: Some(nol_runtime::time::timestamp(row.requested_at)),
        decided_by: row.decided_by.clone().unwrap_or_default(),
        decide_time: row.decided_at.map(nol_runtime::time::timestamp),
        decision_note: row.decision_note.clone(),
    }
}
