//! The case file's use cases: one function per RPC of `CaseService`. Each change is one
//! transaction: the case locked, the rules of `domain` checked against what the file shows, the
//! change written through the ledger (row, history, event), the audit entry. Reads are scoped to
//! the caller's region and audited.

pub mod assistance;
mod file;
pub mod handoff;
mod lifecycle;

use chrono::NaiveDate;
use nol_auth::{Caller, Role};
use nol_events::SubjectScheme;
use nol_messages::vocab::Action;
use nol_messages::{Case as Says, Common, Count};
use nol_pii::ResidentId;
use nol_proto::v1::{
    CaseFilter, CaseStatus, CaseView as View, ExportCasesRequest, GetCaseRequest, ListCasesRequest, OpenCaseRequest,
    PupilView,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::keys::DataKeys;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{Platform, ServiceError, Violations, audit};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::file::CaseCounts;
use super::domain::stored::from_wire;
use super::domain::{Case, Source, Status, check_causes};
use super::ledger;
use super::store::{self, CaseQuery, NewCase, file as file_store};
use crate::child::{CASE_RESIDENT_ID_CONTEXT, ChildRecord, reveal};
use crate::registry::RegistryClient;

/// The largest evidence file kept (10 MiB).
pub const MAX_EVIDENCE_FILE: usize = 10 * 1024 * 1024;

/// The most cases one export holds.
const EXPORT_LIMIT: i64 = 200_000;

/// A case as a read shows it: with its counts, and the number in clear on a full read.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub case: Case,
    pub counts: CaseCounts,
    pub revealed: Option<ResidentId>,
    pub today: NaiveDate,
}

/// A page of cases.
pub struct CasePage {
    pub cases: Vec<CaseView>,
    pub next_page_token: String,
}

pub struct CaseService {
    pub(crate) pool: PgPool,
    data_key: DataKeys,
    /// This province's sealing key pair: dossiers are sealed to it until the transfer service
    /// re-seals them to the destination.
    seal: nol_pii::SealKeyPair,
    pub(crate) scheme: SubjectScheme,
    pub(crate) wake: nol_backbone::outbox::RelayWake,
    pub(crate) province: RegionCode,
    registry: RegistryClient,
    pub(crate) clock: nol_runtime::clock::Clock,
    /// Cases an export reads, writes and audits at a time (`NOL_EXPORT_PAGE_ROWS`).
    export_page: i64,
}

impl CaseService {
    pub fn new(platform: &Platform, registry: RegistryClient) -> anyhow::Result<CaseService> {
        Ok(CaseService {
            pool: platform.pool.clone(),
            data_key: platform.keys.data()?,
            seal: platform.keys.seal()?,
            scheme: platform.scheme.clone(),
            wake: platform.wake.clone(),
            province: platform.config.province,
            registry,
            clock: platform.clock.clone(),
            export_page: platform.config.export_page_rows,
        })
    }

    /// Locks a case for a change by `caller`, who must see its region.
    async fn lock(&self, conn: &mut PgConnection, caller: &Caller, case_id: Uuid) -> Result<Case, ServiceError> {
        let case = store::get_for_update(conn, case_id).await?.ok_or_else(|| no_case(case_id))?;
        caller.require_scope(&case.region)?;
        Ok(case)
    }

    /// Reads a case `caller` may see.
    async fn readable(&self, caller: &Caller, case_id: Uuid) -> Result<Case, ServiceError> {
        let case = store::get(&self.pool, case_id).await?.ok_or_else(|| no_case(case_id))?;
        caller.require_scope(&case.region)?;
        Ok(case)
    }

    /// Audits the change and commits it; wakes the relay for its events.
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

    /// The case as it is now, with its counts.
    async fn current(&self, case_id: Uuid) -> Result<CaseView, ServiceError> {
        let case = store::get(&self.pool, case_id).await?.ok_or(sqlx::Error::RowNotFound)?;
        self.view(case, None).await
    }

    async fn view(&self, case: Case, revealed: Option<ResidentId>) -> Result<CaseView, ServiceError> {
        let counts = file_store::counts(&self.pool, &[case.id]).await?.pop().unwrap_or_default();
        Ok(CaseView { case, counts, revealed, today: self.clock.today() })
    }

    /// OpenCase: a case worker confirms a registered pupil's dropout (R2: one active case per child).
    pub async fn open(&self, caller: &Caller, request: OpenCaseRequest) -> Result<CaseView, ServiceError> {
        caller.require_role(&[Role::Caseworker], Action::OpenCases)?;
        let pupil_id = parse_uuid("pupil_id", &request.pupil_id)?;
        let causes = check_causes(&request.causes).map_err(|refusal| ServiceError::invalid("causes", refusal.0))?;
        if request.notes.chars().count() > 4000 {
            return Err(ServiceError::invalid("notes", Common::TooLong { max: Count(4000) }));
        }
        let pupil = crate::registry::pupil(&self.registry, caller, pupil_id, PupilView::Full).await?;
        let region = RegionCode::parse_county(&pupil.enrollment_region_code).map_err(anyhow::Error::from)?;
        caller.require_scope(&region)?;
        let resident_id = ResidentId::parse(&pupil.resident_id).map_err(anyhow::Error::from)?;
        let new = NewCase {
            id: Uuid::now_v7(),
            pupil_id: Some(pupil_id),
            child: ChildRecord::new(&self.data_key, &pupil.full_name, &resident_id, &pupil.hukou_region_code),
            region,
            causes,
            notes: request.notes.trim().to_owned(),
            source: Source::Local,
            origin_region: None,
            origin_case_id: None,
            handoff_id: None,
            opened_by: caller.subject.clone(),
            confirmed_on: self.clock.today(),
            migrant: pupil.migrant,
            registered_poor: pupil.registered_poor,
            disability_grade: pupil.disability_grade as i16,
            suspect_id: None,
        };
        let mut tx = self.pool.begin().await?;
        let case = ledger::open(&mut tx, &self.scheme, &new, |region| caller.sees(region)).await?;
        audit::record(&mut tx, caller, "case.open", "dropout_case", &[case.id.to_string()]).await?;
        tx.commit().await?;
        self.wake.notify();
        tracing::info!(case_id = %case.id, region = %case.region, "case opened");
        Ok(CaseView { case, counts: CaseCounts::default(), revealed: None, today: self.clock.today() })
    }

    /// GetCase: masked, or the full number for a case worker or a bureau system (audited apart).
    pub async fn get(&self, caller: &Caller, request: GetCaseRequest) -> Result<CaseView, ServiceError> {
        let id = parse_uuid("case_id", &request.case_id)?;
        let full = View::try_from(request.view) == Ok(View::Full);
        if full {
            caller.require_role(&[Role::Caseworker, Role::System], Action::SeeFullResidentIds)?;
        }
        let case = self.readable(caller, id).await?;
        let action = if full { "case.read_full" } else { "case.read" };
        audit::record_read(&self.pool, caller, action, "dropout_case", &[id.to_string()]).await?;
        let revealed = if full {
            Some(reveal(
                &self.data_key,
                &case.child.resident_id_cipher,
                CASE_RESIDENT_ID_CONTEXT,
                &case.child.resident_id_index,
            )?)
        } else {
            None
        };
        self.view(case, revealed).await
    }

    /// The region subtree and the query a listing or export asks for.
    fn query(
        &self,
        caller: &Caller,
        region_code: &str,
        status: i32,
        filter: Option<CaseFilter>,
    ) -> Result<(RegionCode, CaseQuery), ServiceError> {
        let region = nol_runtime::region_in_scope(caller, region_code)?;
        let filter = filter.unwrap_or_default();
        let mut violations = Violations::default();
        let mut statuses = Vec::new();
        for (field, value) in std::iter::once(("status", status))
            .filter(|(_, value)| *value != 0)
            .chain(filter.statuses.iter().map(|value| ("filter.statuses", *value)))
        {
            match CaseStatus::try_from(value).ok().and_then(Status::from_proto) {
                Some(status) if !statuses.contains(&status) => statuses.push(status),
                Some(_) => {}
                None => violations.add(field, Says::UnknownStatus { value }),
            }
        }
        let mut causes = Vec::new();
        for value in &filter.causes {
            match from_wire(*value) {
                Some(cause) => causes.push(cause),
                None => violations.add("filter.causes", Says::UnknownCause { value: *value }),
            }
        }
        violations.finish()?;
        let query = CaseQuery {
            statuses,
            causes,
            overdue: filter.overdue,
            migrant: filter.migrant,
            registered_poor: filter.registered_poor,
            disability: filter.disability,
            today: Some(self.clock.today()),
        };
        Ok((region, query))
    }

    /// ListCases: the cases of a region subtree, filtered, newest first, a page at a time.
    pub async fn list(&self, caller: &Caller, request: ListCasesRequest) -> Result<CasePage, ServiceError> {
        let (region, query) = self.query(caller, &request.region_code, request.status, request.filter)?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut cases = store::list(&self.pool, region.subtree_prefix(), &query, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut cases, size, |case| Cursor { time: case.opened_at, id: case.id });
        let ids: Vec<Uuid> = cases.iter().map(|case| case.id).collect();
        let mut counts = file_store::counts(&self.pool, &ids).await?;
        let mut conn = self.pool.acquire().await?;
        let audited: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        audit::record(&mut conn, caller, "case.list", "dropout_case", &audited).await?;
        let today = self.clock.today();
        let cases = cases
            .into_iter()
            .map(|case| {
                let counts = counts
                    .iter()
                    .position(|count| count.case_id == case.id)
                    .map(|index| counts.swap_remove(index))
                    .unwrap_or_default();
                CaseView { case, counts, revealed: None, today }
            })
            .collect();
        Ok(CasePage { cases, next_page_token })
    }

    /// ExportCases: the ledger of a region subtree as an .xlsx file (numbers masked), audited.
    ///
    /// Read a page at a time from one snapshot (a read-only repeatable-read transaction, so the
    /// file is the ledger at one moment) and written to a temporary file as it is read: memory
    /// holds a page and the cases' ids, never the ledger. The cap holds (FAILED_PRECONDITION past
    /// it, nothing handed out); the audit names every case handed out, a page per entry.
    pub async fn export(
        &self,
        caller: &Caller,
        request: ExportCasesRequest,
    ) -> Result<(std::fs::File, String), ServiceError> {
        let (region, query) = self.query(caller, &request.region_code, request.status, request.filter)?;
        let internal = |error: nol_tabular::TableError| ServiceError::Internal(error.into());
        let mut file = super::export::CasesXlsx::new(self.clock.today()).map_err(internal)?;
        let mut ids: Vec<Uuid> = Vec::new();
        let mut snapshot = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *snapshot).await?;
        let mut after = None;
        loop {
            let page = store::list(&mut *snapshot, region.subtree_prefix(), &query, after, self.export_page).await?;
            if ids.len() as i64 + page.len() as i64 > EXPORT_LIMIT {
                return Err(ServiceError::precondition(Says::TooManyToExport { limit: Count(EXPORT_LIMIT as u64) }));
            }
            file.write(&page).map_err(internal)?;
            ids.extend(page.iter().map(|case| case.id));
            after = page.last().map(|case| Cursor { time: case.opened_at, id: case.id });
            if (page.len() as i64) < self.export_page {
                break;
            }
        }
        snapshot.commit().await?;
        let mut conn = self.pool.acquire().await?;
        let audited = ("case.export", "dropout_case");
        let page = self.export_page as usize;
        let file =
            nol_runtime::files::finish_export(move || file.finish(), &mut conn, caller, audited, &ids, page).await?;
        Ok((file, format!("辍学台账-{region}.xlsx")))
    }
}

fn no_case(case_id: Uuid) -> ServiceError {
    ServiceError::not_found(Says::NoCase { case_id: case_id.to_string() })
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A required date that is not after `today`.
fn past_date(violations: &mut Violations, field: &str, text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        violations.add(field, Common::RequiredDate);
        return None;
    }
    let date =
        violations.check(field, NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| Common::NotADate))?;
    violations.check(field, super::domain::check_not_future(date, today))
}

/// A trimmed text field, required or not, of at most `max` characters.
fn text_field(violations: &mut Violations, field: &str, text: &str, required: bool, max: u64) -> String {
    let text = text.trim();
    if required && text.is_empty() {
        violations.add(field, Common::Required);
    } else if text.chars().count() as u64 > max {
        violations.add(field, Common::TooLong { max: Count(max) });
    }
    text.to_owned()
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
