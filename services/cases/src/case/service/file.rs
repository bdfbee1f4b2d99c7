//! The case file's contents: causes, officers (包保责任人), the plan, evidence, persuasion attempts
//! (R5, R8) and home-teaching visits (R4), and the reads of the file and its history.

use nol_auth::{Caller, Role};
use nol_messages::vocab::Action;
use nol_messages::{Case as Says, Common};
use nol_proto::v1::{
    AddEvidenceRequest, AddMeasureRequest, AddOfficerRequest, CompleteMeasureRequest, EvidenceType, GetCaseFileRequest,
    LearningSupport, ListCaseHistoryRequest, ListPersuasionAttemptsRequest, LogHomeTeachingVisitRequest, MeasureKind,
    OfficerRole, PersuasionDepartment, PersuasionMeans, PersuasionOutcome, PersuasionPlace, PupilView,
    RecordPersuasionAttemptRequest, UpdateCausesRequest,
};
use nol_runtime::error::{checked, parse_uuid};
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{ServiceError, Violations, audit};
use sha2::{Digest, Sha256};

use super::{CaseService, CaseView, MAX_EVIDENCE_FILE, date_text, hex, past_date, text_field};
use crate::case::domain::file::{
    Attempt, DeferralRequest, Evidence, Measure, NewAttempt, NewEvidence, NewMeasure, Officer, Visit,
};
use crate::case::domain::stored::{Stored, from_wire, wire_list};
use crate::case::domain::{
    check_attempt, check_causes, check_file_change, check_measure, check_persuasion, check_phone, check_place_region,
    check_visit, is_joint,
};
use crate::case::ledger;
use crate::case::store::{self, HistoryRow, file as file_store};

const CHANGE_ROLES: &[Role] = &[Role::Caseworker];

/// Everything in a case file.
pub struct CaseFileView {
    pub case: CaseView,
    pub officers: Vec<Officer>,
    pub measures: Vec<Measure>,
    pub evidence: Vec<Evidence>,
    pub deferral_requests: Vec<DeferralRequest>,
    pub visits: Vec<Visit>,
    /// For a case taken in (R11): what the origin knew.
    pub origin_dossier: Option<nol_proto::v1::OriginDossier>,
}

/// A page of a case's history.
pub struct HistoryPage {
    pub entries: Vec<HistoryRow>,
    pub next_page_token: String,
}

/// A page of a case's persuasion attempts.
pub struct AttemptPage {
    pub attempts: Vec<Attempt>,
    pub next_page_token: String,
}

/// An evidence document's file.
pub struct EvidenceFile {
    pub file_name: String,
    pub sha256_hex: String,
    pub content: Vec<u8>,
}

/// A list of enum values from the wire, each known, into `field`'s violations.
fn listed<E: Stored + TryFrom<i32>>(violations: &mut Violations, field: &str, values: &[i32]) -> Vec<E> {
    wire_list::<E>(values).unwrap_or_else(|unknown| {
        violations.add(field, Common::UnknownValues { values: format!("{unknown:?}") });
        Vec::new()
    })
}

impl CaseService {
    pub async fn update_causes(&self, caller: &Caller, request: UpdateCausesRequest) -> Result<CaseView, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let causes = check_causes(&request.causes).map_err(|refusal| ServiceError::invalid("causes", refusal.0))?;
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_file_change(case.status)?;
        ledger::update_causes(&mut tx, &case, &causes, &caller.subject).await?;
        self.committed(tx, caller, "case.update_causes", id).await?;
        self.current(id).await
    }

    pub async fn add_officer(&self, caller: &Caller, request: AddOfficerRequest) -> Result<Officer, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let officer = request.officer.unwrap_or_default();
        let mut violations = Violations::default();
        let name = text_field(&mut violations, "officer.full_name", &officer.full_name, true, 50);
        let role = violations.check("officer.role", from_wire::<OfficerRole>(officer.role).ok_or(Common::Required));
        let phone = officer.phone.trim().to_owned();
        violations.check("officer.phone", check_phone(&phone));
        violations.finish()?;
        let role = checked(role)?;
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_file_change(case.status)?;
        let added = file_store::insert_officer(&mut tx, id, &name, role, &phone, &caller.subject).await?;
        let detail = serde_json::json!({ "officer_id": added.id, "full_name": name, "role": role.as_stored() });
        ledger::record_file_change(&mut tx, id, &caller.subject, "officer_added", detail).await?;
        self.committed(tx, caller, "case.add_officer", id).await?;
        Ok(added)
    }

    /// AddMeasure: a measure of the plan, with R3 (aid names its fund) and R7 (support names its forms).
    pub async fn add_measure(&self, caller: &Caller, request: AddMeasureRequest) -> Result<Measure, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let measure = request.measure.unwrap_or_default();
        let mut violations = Violations::default();
        let kind = violations.check("measure.kind", from_wire::<MeasureKind>(measure.kind).ok_or(Common::Required));
        let description = text_field(&mut violations, "measure.description", &measure.description, true, 2000);
        let fund = text_field(&mut violations, "measure.fund", &measure.fund, false, 100);
        let support = listed::<LearningSupport>(&mut violations, "measure.learning_support", &measure.learning_support);
        let due_on = if measure.due_on.trim().is_empty() {
            violations.add("measure.due_on", Common::RequiredDate);
            None
        } else {
            violations.check(
                "measure.due_on",
                chrono::NaiveDate::parse_from_str(measure.due_on.trim(), "%Y-%m-%d").map_err(|_| Common::NotADate),
            )
        };
        violations.extend(check_measure(kind, &fund, &support));
        violations.finish()?;
        let new =
            NewMeasure { kind: checked(kind)?, description, fund, learning_support: support, due_on: checked(due_on)? };
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_file_change(case.status)?;
        let added = file_store::insert_measure(&mut tx, id, &new, &caller.subject).await?;
        let detail = serde_json::json!({
            "measure_id": added.id, "kind": new.kind.as_stored(), "due_on": date_text(new.due_on), "fund": new.fund,
        });
        ledger::record_file_change(&mut tx, id, &caller.subject, "measure_added", detail).await?;
        self.committed(tx, caller, "case.add_measure", id).await?;
        Ok(added)
    }

    pub async fn complete_measure(
        &self,
        caller: &Caller,
        request: CompleteMeasureRequest,
    ) -> Result<Measure, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let measure_id = parse_uuid("measure_id", &request.measure_id)?;
        let today = self.clock.today();
        let done_on = if request.done_on.trim().is_empty() {
            today
        } else {
            let mut violations = Violations::default();
            let done_on = past_date(&mut violations, "done_on", &request.done_on, today);
            violations.finish()?;
            checked(done_on)?
        };
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_file_change(case.status)?;
        let measure = file_store::measure_for_update(&mut tx, id, measure_id).await?.ok_or_else(|| {
            ServiceError::not_found(Says::NoMeasure { measure_id: measure_id.to_string(), case_id: id.to_string() })
        })?;
        if let Some(done) = measure.done_on {
            return Err(ServiceError::precondition(Says::MeasureAlreadyDone {
                done_on: done.to_string(),
                by: measure.done_by.unwrap_or_default(),
            }));
        }
        let done = file_store::complete_measure(&mut tx, measure_id, done_on, &caller.subject).await?;
        let detail = serde_json::json!({ "measure_id": measure_id, "done_on": date_text(done_on) });
        ledger::record_file_change(&mut tx, id, &caller.subject, "measure_done", detail).await?;
        self.committed(tx, caller, "case.complete_measure", id).await?;
        Ok(done)
    }

    pub async fn add_evidence(&self, caller: &Caller, request: AddEvidenceRequest) -> Result<Evidence, ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::ChangeCaseFiles)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let evidence = request.evidence.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let kind =
            violations.check("evidence.type", from_wire::<EvidenceType>(evidence.r#type).ok_or(Common::Required));
        let number = text_field(&mut violations, "evidence.document_number", &evidence.document_number, false, 100);
        let issuing_body = text_field(&mut violations, "evidence.issuing_body", &evidence.issuing_body, true, 200);
        let issued_on = past_date(&mut violations, "evidence.issued_on", &evidence.issued_on, today);
        let file_name = text_field(&mut violations, "evidence.file_name", &evidence.file_name, false, 200);
        if file_name.contains(['/', '\\']) {
            violations.add("evidence.file_name", Common::NotAName);
        }
        let content = request.file_content;
        if content.len() > MAX_EVIDENCE_FILE {
            violations.add(
                "file_content",
                Says::EvidenceTooLarge {
                    size: nol_messages::Count(content.len() as u64),
                    max: nol_messages::Count(MAX_EVIDENCE_FILE as u64),
                },
            );
        }
        if content.is_empty() != file_name.is_empty() {
            violations.add("evidence.file_name", Says::FileAndNameTogether);
        }
        violations.finish()?;
        let sha256 = (!content.is_empty()).then(|| Sha256::digest(&content).to_vec());
        let new = NewEvidence {
            kind: checked(kind)?,
            document_number: number,
            issuing_body,
            issued_on: checked(issued_on)?,
            file_name,
            content,
            sha256,
        };
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_file_change(case.status)?;
        let added = file_store::insert_evidence(&mut tx, id, &new, &caller.subject).await?;
        let detail = serde_json::json!({
            "evidence_id": added.id, "type": new.kind.as_stored(), "document_number": new.document_number,
            "issuing_body": new.issuing_body, "issued_on": date_text(new.issued_on),
            "file_sha256": added.file_sha256.as_deref().map(hex).unwrap_or_default(),
        });
        ledger::record_file_change(&mut tx, id, &caller.subject, "evidence_added", detail).await?;
        self.committed(tx, caller, "case.add_evidence", id).await?;
        Ok(added)
    }

    /// GetEvidenceFile: the file of an evidence document, audited.
    pub async fn evidence_file(
        &self,
        caller: &Caller,
        case_id: &str,
        evidence_id: &str,
    ) -> Result<EvidenceFile, ServiceError> {
        let id = parse_uuid("case_id", case_id)?;
        let evidence_id = parse_uuid("evidence_id", evidence_id)?;
        self.readable(caller, id).await?;
        let (evidence, content) = file_store::evidence_file(&self.pool, id, evidence_id).await?.ok_or_else(|| {
            ServiceError::not_found(Says::NoEvidence { evidence_id: evidence_id.to_string(), case_id: id.to_string() })
        })?;
        let content = content.ok_or_else(|| {
            ServiceError::not_found(Says::EvidenceWithoutFile { evidence_id: evidence_id.to_string() })
        })?;
        audit::record_read(&self.pool, caller, "case.read_evidence_file", "case_evidence", &[evidence_id.to_string()])
            .await?;
        Ok(EvidenceFile {
            file_name: evidence.file_name,
            sha256_hex: evidence.file_sha256.as_deref().map(hex).unwrap_or_default(),
            content,
        })
    }

    pub async fn case_file(&self, caller: &Caller, request: GetCaseFileRequest) -> Result<CaseFileView, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        let case = self.readable(caller, id).await?;
        let officers = file_store::officers(&self.pool, id).await?;
        let measures = file_store::measures(&self.pool, id).await?;
        let evidence = file_store::evidence(&self.pool, id).await?;
        let deferral_requests = file_store::deferrals(&self.pool, id).await?;
        let visits = file_store::visits(&self.pool, id, 200).await?;
        let origin_dossier = match store::origin_dossier(&self.pool, id).await? {
            Some(bytes) => {
                Some(<nol_proto::v1::OriginDossier as prost::Message>::decode(bytes.as_slice()).map_err(|error| {
                    ServiceError::Internal(anyhow::anyhow!("case {id}: stored origin dossier: {error}"))
                })?)
            }
            None => None,
        };
        audit::record_read(&self.pool, caller, "case.read_file", "dropout_case", &[id.to_string()]).await?;
        Ok(CaseFileView {
            case: self.view(case, None).await?,
            officers,
            measures,
            evidence,
            deferral_requests,
            visits,
            origin_dossier,
        })
    }

    pub async fn history(&self, caller: &Caller, request: ListCaseHistoryRequest) -> Result<HistoryPage, ServiceError> {
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
                .ok_or_else(|| ServiceError::invalid("page_token", Common::NotAPageToken))?
        };
        let mut entries = store::history(&self.pool, id, after, size + 1).await?;
        let next_page_token = if entries.len() as i64 > size {
            entries.truncate(size as usize);
            entries.last().map(|entry| format!("v{}", entry.version)).unwrap_or_default()
        } else {
            String::new()
        };
        audit::record_read(&self.pool, caller, "case.read_history", "dropout_case", &[id.to_string()]).await?;
        Ok(HistoryPage { entries, next_page_token })
    }

    /// RecordPersuasionAttempt (R5; R8 at a work place in another county asks that county for help).
    pub async fn record_attempt(
        &self,
        caller: &Caller,
        request: RecordPersuasionAttemptRequest,
    ) -> Result<(Attempt, CaseView), ServiceError> {
        caller.require_role(CHANGE_ROLES, Action::RecordPersuasion)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let attempt = request.attempt.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let attempt_on = past_date(&mut violations, "attempt.attempt_date", &attempt.attempt_date, today);
        let departments = wire_list::<PersuasionDepartment>(&attempt.departments);
        let means = wire_list::<PersuasionMeans>(&attempt.means);
        let r5 = check_persuasion(departments.as_deref().ok(), means.as_deref().ok());
        for (field, unknown) in
            [("attempt.departments", departments.as_ref().err()), ("attempt.means", means.as_ref().err())]
        {
            violations.extend(r5.iter().filter(|violation| violation.field == field).cloned());
            if let Some(unknown) = unknown {
                violations.add(field, Common::UnknownValues { values: format!("{unknown:?}") });
            }
        }
        let (departments, means) = (departments.unwrap_or_default(), means.unwrap_or_default());
        let place =
            violations.check("attempt.place", from_wire::<PersuasionPlace>(attempt.place).ok_or(Common::Required));
        let outcome = violations
            .check("attempt.outcome", from_wire::<PersuasionOutcome>(attempt.outcome).ok_or(Common::Required));
        let notes = text_field(&mut violations, "attempt.notes", &attempt.notes, false, 4000);
        let place_region =
            check_place_region(place, &attempt.place_region_code).map_err(|found| violations.extend([found])).ok();
        violations.finish()?;
        let joint = is_joint(&departments);
        let new = NewAttempt {
            attempt_on: checked(attempt_on)?,
            departments,
            means,
            place: checked(place)?,
            place_region: place_region.flatten(),
            outcome: checked(outcome)?,
            notes,
            joint,
            assisted: None,
        };
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_attempt(case.status)?;
        let added = ledger::record_attempt(&mut tx, &self.scheme, &case, &new, &caller.subject).await?;
        self.committed(tx, caller, "case.record_attempt", id).await?;
        Ok((added, self.current(id).await?))
    }

    pub async fn attempts(
        &self,
        caller: &Caller,
        request: ListPersuasionAttemptsRequest,
    ) -> Result<AttemptPage, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        self.readable(caller, id).await?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut attempts = file_store::attempts(&self.pool, id, after, size + 1).await?;
        let next_page_token =
            paging::next_page(&mut attempts, size, |attempt| Cursor { time: attempt.recorded_at, id: attempt.id });
        audit::record_read(&self.pool, caller, "case.read_attempts", "dropout_case", &[id.to_string()]).await?;
        Ok(AttemptPage { attempts, next_page_token })
    }

    /// LogHomeTeachingVisit (R4): while the case is in home teaching.
    pub async fn log_visit(
        &self,
        caller: &Caller,
        request: LogHomeTeachingVisitRequest,
    ) -> Result<Visit, ServiceError> {
        caller.require_role(&[Role::Caseworker, Role::School], Action::LogHomeTeachingVisits)?;
        let id = parse_uuid("case_id", &request.case_id)?;
        let visit = request.visit.unwrap_or_default();
        let today = self.clock.today();
        let mut violations = Violations::default();
        let visited_on = past_date(&mut violations, "visit.visit_date", &visit.visit_date, today);
        let teacher = text_field(&mut violations, "visit.teacher", &visit.teacher, true, 50);
        let content = text_field(&mut violations, "visit.content", &visit.content, true, 4000);
        if !(1..=600).contains(&visit.duration_minutes) {
            violations.add("visit.duration_minutes", Says::VisitMinutes);
        }
        violations.finish()?;
        let visited_on = checked(visited_on)?;
        if caller.own_school()?.is_some() {
            // A school logs visits to its own pupils only: the registry answers whether the
            // case's child is one (reading it with the school's token).
            let case = self.readable(caller, id).await?;
            let pupil_id = case.pupil_id.ok_or(nol_auth::Denied::Refused(Says::NotYourPupil.into()))?;
            crate::registry::pupil(&self.registry, caller, pupil_id, PupilView::Masked).await?;
        }
        let mut tx = self.pool.begin().await?;
        let case = self.lock(&mut tx, caller, id).await?;
        check_visit(case.status)?;
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
        let detail = serde_json::json!({
            "visit_id": added.id, "visit_date": date_text(visited_on), "teacher": teacher,
            "duration_minutes": visit.duration_minutes,
        });
        ledger::record_file_change(&mut tx, id, &caller.subject, "home_teaching_visit", detail).await?;
        self.committed(tx, caller, "case.log_visit", id).await?;
        Ok(added)
    }
}
