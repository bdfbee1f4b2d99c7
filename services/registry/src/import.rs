//! Bulk imports of the files bureaus exchange: pupils, schools, the household register and the
//! poverty registry.
//!
//! A job reads its file on a blocking thread (CSV in constant memory) and hands rows over in
//! batches; each batch is one transaction holding its records, its rejected rows, its events and
//! the job's progress (`last_row`), so a job resumed after a crash starts after the last committed
//! row and nothing is imported twice. Good rows land; bad rows are recorded with row, column and
//! reason for the error file; a row already imported unchanged counts as unchanged, so importing
//! the same file again changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use nol_auth::Caller;
use nol_backbone::outbox::RelayWake;
use nol_events::{EventHeader, PUPILS_IMPORTED, SubjectScheme};
use nol_messages::{Common, Msg, Registry};
use nol_proto::v1::{GradeCount, PupilsImported};
use nol_region::RegionCode;
use nol_runtime::ServiceError;
use nol_runtime::clock::Clock;
use nol_runtime::database;
use nol_tabular::{ColumnMap, Encoding, Format, RawRow, TableError, TableReader};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::columns::{self, *};
use crate::domain::import_job::{FileRead, JobState, ListKind};
use crate::domain::pupil::{self, Identity, PupilText, check_name, parse_date, parse_resident_id};
use crate::domain::{rejected_row, school};
use crate::store::agency::{self, HouseholdRecord, PovertyRecord};
use crate::store::imports::{self, BatchCounts, JobRecord, RowErrorRecord};
use crate::store::pupils::{self, ImportedPupil};
use crate::store::schools;
use crate::{AGENCY_ID_CONTEXT, RESIDENT_ID_CONTEXT};

/// Rows per transaction.
const BATCH_ROWS: usize = 5_000;

/// The file of one job, received.
pub struct ReceivedFile {
    pub job_id: Uuid,
    pub file_name: String,
    pub format: Format,
    pub encoding: Encoding,
    pub path: PathBuf,
}

/// Runs imports for one registry.
#[derive(Clone)]
pub struct Importer {
    pub pool: PgPool,
    pub data_key: nol_runtime::keys::DataKeys,
    pub scheme: SubjectScheme,
    pub province: RegionCode,
    pub wake: RelayWake,
    /// The rule clock: "today" for the resident ID numbers' birth dates.
    pub clock: Clock,
}

/// A batch's rows, as read.
struct Batch {
    rows: Vec<RawRow>,
}

/// A batch checked and protected, ready to write.
struct Prepared {
    read: i64,
    last_row: i64,
    errors: Vec<RowErrorRecord>,
    rows: PreparedRows,
    /// The cells of the good rows, for the rows writing turns out to reject.
    cells: HashMap<i64, Vec<String>>,
}

enum PreparedRows {
    Pupils(Vec<ImportedPupil>),
    Schools(Vec<(i64, school::ValidSchool)>),
    Household(Vec<HouseholdRecord>),
    Poverty(Vec<PovertyRecord>),
}

impl Importer {
    /// Runs (or resumes) a job over a received file and returns it finished.
    pub async fn run(&self, caller: &Caller, kind: ListKind, file: ReceivedFile) -> Result<JobRecord, ServiceError> {
        let job =
            imports::begin(&self.pool, file.job_id, kind, &file.file_name, &caller.subject, caller.region).await?;
        if job.kind != kind {
            return Err(ServiceError::invalid(
                "header.job_id",
                Registry::JobKindMismatch {
                    job: job.id.to_string(),
                    kind: job.kind.as_stored().to_owned(),
                    requested: kind.as_stored().to_owned(),
                },
            ));
        }
        if job.state == JobState::Succeeded {
            return Ok(job);
        }
        let resume_after = job.last_row;
        let (reader, columns) = {
            let path = file.path.clone();
            let opened = tokio::task::spawn_blocking(move || {
                TableReader::open(&path, file.format, file.encoding, kind.columns()).map(|reader| {
                    let columns = reader.columns();
                    (reader, columns)
                })
            })
            .await
            .map_err(|error| ServiceError::Internal(error.into()))?;
            match opened {
                Ok(opened) => opened,
                Err(error) => {
                    let message = error.message().unwrap_or(Registry::JobStopped);
                    imports::finish(&self.pool, job.id, JobState::Failed, &message.en()).await?;
                    return Err(file_error(error));
                }
            }
        };
        imports::start_rows(&self.pool, job.id, FileRead::new(file.format, reader.encoding()), reader.header()).await?;
        let header = reader.header().to_vec();
        let (sender, mut batches) = tokio::sync::mpsc::channel::<Result<Batch, TableError>>(2);
        let reading = tokio::task::spawn_blocking(move || {
            let mut rows = Vec::with_capacity(BATCH_ROWS);
            for row in reader {
                match row {
                    Ok(row) if (row.number as i64) <= resume_after => continue,
                    Ok(row) => {
                        rows.push(row);
                        if rows.len() == BATCH_ROWS
                            && sender.blocking_send(Ok(Batch { rows: std::mem::take(&mut rows) })).is_err()
                        {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = sender.blocking_send(Err(error));
                        return;
                    }
                }
            }
            if !rows.is_empty() {
                let _ = sender.blocking_send(Ok(Batch { rows }));
            }
        });
        let context = Arc::new(JobContext {
            importer: self.clone(),
            caller: caller.clone(),
            job: job.id,
            id_column: columns.position(RESIDENT_ID),
            columns,
            header,
            kind,
            today: self.clock.today(),
            schools: if kind == ListKind::Pupils { schools::all(&self.pool).await? } else { HashMap::new() },
            copy_first: AtomicBool::new(true),
        });
        // A pipeline: batch N+1 is checked and encrypted on a blocking thread while batch N is
        // written; batches are still written, and committed, in file order.
        let mut failure = None;
        let mut pending: Option<tokio::task::JoinHandle<Prepared>> = None;
        loop {
            let next = match batches.recv().await {
                Some(Ok(batch)) => {
                    let context = context.clone();
                    Some(tokio::task::spawn_blocking(move || context.prepare(batch)))
                }
                Some(Err(error)) => {
                    failure = Some(file_error(error));
                    None
                }
                None => None,
            };
            if let Some(previous) = pending.take() {
                let written = match previous.await {
                    Ok(prepared) => context.write(prepared).await,
                    Err(error) => Err(ServiceError::Internal(error.into())),
                };
                if let Err(error) = written {
                    failure = Some(error);
                    break;
                }
            }
            match next {
                Some(handle) => pending = Some(handle),
                None => break,
            }
        }
        drop(batches);
        let _ = reading.await;
        if let Some(error) = failure {
            let message = match &error {
                ServiceError::Internal(_) => Registry::JobStopped.en(),
                other => other.to_string(),
            };
            imports::finish(&self.pool, job.id, JobState::Failed, &message).await?;
            return Err(error);
        }
        let finished = imports::get(&self.pool, job.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        let message = if finished.rows_read == 0 {
            Registry::JobHeaderOnly
        } else {
            Registry::JobSummary {
                read: finished.rows_read,
                imported: finished.rows_imported,
                unchanged: finished.rows_unchanged,
                rejected: finished.rows_rejected,
            }
        }
        .en();
        imports::finish(&self.pool, job.id, JobState::Succeeded, &message).await?;
        tracing::info!(job = %job.id, kind = kind.as_stored(), summary = %message, "import finished");
        if finished.rows_imported > 10_000 {
            self.refresh_statistics(kind);
        }
        Ok(imports::get(&self.pool, job.id).await?.ok_or(sqlx::Error::RowNotFound)?)
    }
}

impl Importer {
    /// After a large import, refreshes the planner's statistics and the visibility map in the
    /// background (the cross-check's plans and index-only scans depend on them).
    fn refresh_statistics(&self, kind: ListKind) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // One static statement per table (a table name cannot be bound).
            let refreshed = match kind {
                ListKind::Pupils => sqlx::query!("VACUUM (ANALYZE) pupil").execute(&pool).await,
                ListKind::Schools => sqlx::query!("VACUUM (ANALYZE) school").execute(&pool).await,
                // The counts kept beside the register first: the cross-check sums them.
                ListKind::HouseholdRegister => {
                    sqlx::query!("VACUUM (ANALYZE) household_birth_count, household_member").execute(&pool).await
                }
                ListKind::PovertyRegistry => sqlx::query!("VACUUM (ANALYZE) poverty_child").execute(&pool).await,
            };
            if let Err(error) = refreshed {
                tracing::debug!(error = %error, kind = kind.as_stored(), "refreshing statistics failed");
            }
        });
    }
}

/// A whole-file problem, as the caller hears it.
fn file_error(error: TableError) -> ServiceError {
    let field = match error {
        TableError::NotUtf8 { .. } | TableError::NotGbk { .. } | TableError::UnknownEncoding => "header.encoding",
        _ => "data",
    };
    match error.message() {
        Some(message) => ServiceError::invalid(field, message),
        None => ServiceError::Internal(error.into()),
    }
}

struct JobContext {
    importer: Importer,
    caller: Caller,
    job: Uuid,
    columns: ColumnMap,
    /// Where the resident ID number is in a row: masked in the rejected rows kept.
    id_column: Option<usize>,
    header: Vec<String>,
    kind: ListKind,
    today: NaiveDate,
    /// Pupils: every school of the province, code → (county, name).
    schools: HashMap<String, (RegionCode, String)>,
    /// Pupils: whether the next batch is tried by `COPY` first. True while batches hold only
    /// children not registered yet (a first import); a batch where one is registered turns it off
    /// until a batch of only new children comes again.
    copy_first: AtomicBool,
}

/// Problems of one row, gathered into one error record: each under its column's header, in
/// English for the API and in Chinese for the error file bureaus download.
struct RowProblems {
    columns: Vec<String>,
    problems: Vec<Msg>,
}

impl RowProblems {
    fn new() -> RowProblems {
        RowProblems { columns: Vec::new(), problems: Vec::new() }
    }

    fn add(&mut self, column: String, problem: impl Into<Msg>) {
        self.problems.push(problem.into());
        self.columns.push(column);
    }

    fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The record of a row whose cells are filled in later.
    fn into_record_numbered(self, row_number: i64) -> RowErrorRecord {
        let reason =
            |text: fn(&Msg) -> String, separator: &str| {
                self.columns
                    .iter()
                    .zip(&self.problems)
                    .map(|(column, problem)| {
                        if column.is_empty() { text(problem) } else { format!("{column}{separator}{}", text(problem)) }
                    })
                    .collect::<Vec<_>>()
                    .join("；")
            };
        RowErrorRecord {
            row_number,
            reason: reason(Msg::en, ": "),
            reason_zh: reason(Msg::zh, "："),
            column: self.columns.join("；"),
            cells: Vec::new(),
        }
    }

    fn into_record(self, row: &RawRow) -> RowErrorRecord {
        RowErrorRecord { cells: row.cells.clone(), ..self.into_record_numbered(row.number as i64) }
    }
}

impl JobContext {
    fn header_of(&self, key: &str) -> String {
        // The file's own header for the column where it has it, else ours.
        self.kind
            .columns()
            .iter()
            .find(|column| column.key == key)
            .and_then(|column| {
                self.header.iter().find(|cell| {
                    let name: String = cell.chars().filter(|character| !character.is_whitespace()).collect();
                    column.headers.iter().any(|header| *header == name) || column.key == name
                })
            })
            .cloned()
            .unwrap_or_else(|| columns::header_of(self.kind.columns(), key))
    }

    fn cell<'row>(&self, row: &'row RawRow, key: &str) -> &'row str {
        self.columns.cell(row, key)
    }

    /// Rows too long to read are rejected before anything else.
    fn too_long(row: &RawRow) -> Option<RowErrorRecord> {
        row.too_long.then(|| {
            let mut problems = RowProblems::new();
            problems.add(String::new(), Registry::RowTooLong { kib: nol_tabular::MAX_ROW_BYTES / 1024 });
            problems.into_record_numbered(row.number as i64)
        })
    }

    /// Checks and protects a batch (CPU only).
    fn prepare(&self, batch: Batch) -> Prepared {
        let last_row = batch.rows.last().map(|row| row.number as i64).unwrap_or(0);
        let read = batch.rows.len() as i64;
        let (errors, rows) = match self.kind {
            ListKind::Pupils => self.prepare_pupils(&batch.rows),
            ListKind::Schools => self.prepare_schools(&batch.rows),
            ListKind::HouseholdRegister | ListKind::PovertyRegistry => self.prepare_agency(&batch.rows),
        };
        let rejected: std::collections::HashSet<i64> = errors.iter().map(|error| error.row_number).collect();
        let cells = batch
            .rows
            .into_iter()
            .filter(|row| !rejected.contains(&(row.number as i64)))
            .map(|row| (row.number as i64, row.cells))
            .collect();
        Prepared { read, last_row, errors, rows, cells }
    }

    /// Writes a prepared batch in one transaction with its rejected rows, events and progress.
    async fn write(&self, prepared: Prepared) -> Result<(), ServiceError> {
        let Prepared { read, last_row, mut errors, rows, cells } = prepared;
        let mut counts = BatchCounts { read, last_row, ..BatchCounts::default() };
        let mut tx = self.importer.pool.begin().await?;
        let rejected_on_write = match rows {
            PreparedRows::Pupils(pupils) => self.write_pupils(&mut tx, pupils, &mut counts).await?,
            PreparedRows::Schools(schools) => self.write_schools(&mut tx, schools, &mut counts).await?,
            PreparedRows::Household(records) => {
                let outcome = agency::upsert_household(&mut tx, self.job, &records).await?;
                self.agency_outcome(outcome, &mut counts)
            }
            PreparedRows::Poverty(records) => {
                let outcome = agency::upsert_poverty(&mut tx, self.job, &records).await?;
                self.agency_outcome(outcome, &mut counts)
            }
        };
        for (row_number, mut problems) in rejected_on_write {
            problems.cells = cells.get(&row_number).cloned().unwrap_or_default();
            errors.push(problems);
        }
        errors.sort_by_key(|error| error.row_number);
        counts.rejected = errors.len() as i64;
        for error in &mut errors {
            rejected_row::mask_cells(&mut error.cells, self.id_column);
        }
        imports::insert_errors(&mut tx, self.job, &errors, self.importer.clock.now()).await?;
        imports::record_batch(&mut tx, self.job, &counts).await?;
        tx.commit().await?;
        self.importer.wake.notify();
        Ok(())
    }

    fn agency_outcome(&self, outcome: agency::UpsertOutcome, counts: &mut BatchCounts) -> Vec<(i64, RowErrorRecord)> {
        counts.imported += outcome.imported;
        counts.unchanged += outcome.unchanged;
        outcome.duplicates.into_iter().map(|(row, first)| (row, duplicate_record(row, first))).collect()
    }

    /// The region a row must be in: inside the province and the caller's subtree.
    fn check_scope(&self, region: &RegionCode) -> Option<Registry> {
        if region.province() != self.importer.province {
            Some(Registry::RegionNotInProvince {
                region_name: region.full_name(),
                province: self.importer.province.name().to_owned(),
            })
        } else if !self.caller.sees(region) {
            Some(Registry::RegionOutsideCaller { region_name: region.full_name(), own: self.caller.region.to_string() })
        } else {
            None
        }
    }

    fn prepare_pupils(&self, rows: &[RawRow]) -> (Vec<RowErrorRecord>, PreparedRows) {
        let key = &self.importer.data_key;
        let mut errors = Vec::new();
        let mut good: Vec<ImportedPupil> = Vec::with_capacity(rows.len());
        let mut first_seen: HashMap<Vec<u8>, i64> = HashMap::new();
        for row in rows {
            if let Some(error) = Self::too_long(row) {
                errors.push(error);
                continue;
            }
            let text = PupilText {
                full_name: self.cell(row, FULL_NAME),
                resident_id: self.cell(row, RESIDENT_ID),
                sex: self.cell(row, SEX),
                birth_date: self.cell(row, BIRTH_DATE),
                hukou_region: self.cell(row, HUKOU),
                residence_region: self.cell(row, RESIDENCE),
                school_code: self.cell(row, SCHOOL_CODE),
                grade: self.cell(row, GRADE),
                status: self.cell(row, STATUS),
                disability: self.cell(row, DISABILITY),
                registered_poor: self.cell(row, POOR),
                household_id: self.cell(row, HOUSEHOLD),
            };
            let mut problems = RowProblems::new();
            let valid = match pupil::validate(&text, self.today) {
                Ok(valid) => Some(valid),
                Err(found) => {
                    for (column, reason) in found {
                        problems.add(self.header_of(column), reason);
                    }
                    None
                }
            };
            let school = self.schools.get(text.school_code.trim());
            if school.is_none() && !text.school_code.trim().is_empty() {
                problems.add(self.header_of(SCHOOL_CODE), Registry::NotARegisteredSchool);
            }
            let enrollment = school.map(|(region, _)| *region);
            if let Some(region) = &enrollment
                && let Some(reason) = self.check_scope(region)
            {
                problems.add(self.header_of(SCHOOL_CODE), reason);
            }
            let (Some(valid), Some(enrollment), true) = (valid, enrollment, problems.is_empty()) else {
                errors.push(problems.into_record(row));
                continue;
            };
            let (pupil_key, provisional, cipher, masked) = match &valid.identity {
                Identity::Resident(id) => {
                    let index = key.blind_index(id.expose());
                    let cipher = key.encrypt(id.expose().as_bytes(), RESIDENT_ID_CONTEXT, &index);
                    (index, false, Some(cipher), Some(id.masked()))
                }
                Identity::Provisional { .. } => (key.blind_index(&valid.provisional_key_text()), true, None, None),
            };
            if let Some(first) = first_seen.get(&pupil_key) {
                errors.push(RowErrorRecord { cells: row.cells.clone(), ..duplicate_record(row.number as i64, *first) });
                continue;
            }
            first_seen.insert(pupil_key.clone(), row.number as i64);
            let residence = valid.residence_region.unwrap_or(enrollment);
            good.push(ImportedPupil {
                row_number: row.number as i64,
                id: Uuid::now_v7(),
                migrant: valid.migrant(&enrollment),
                enrollment_region: enrollment,
                residence_region: residence,
                pupil: valid,
                key: pupil_key,
                provisional,
                resident_id_cipher: cipher,
                resident_id_masked: masked,
            });
        }
        (errors, PreparedRows::Pupils(good))
    }

    /// Tries the batch as children none of whom is registered yet: one binary `COPY` in a
    /// savepoint, several times cheaper for PostgreSQL than the insert that looks up each row's
    /// keys (docs/BENCHMARKS.md). True if it held; false, with nothing of it left, if a child is
    /// registered already (or was not tried), and the batch is then written by `insert_batch`.
    async fn copy_new_pupils(&self, conn: &mut PgConnection, good: &[ImportedPupil]) -> Result<bool, ServiceError> {
        if !self.copy_first.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let mut savepoint = conn.begin().await?;
        match pupils::copy_batch(&mut savepoint, self.job, &self.caller.subject, good).await {
            Ok(_) => {
                savepoint.commit().await?;
                Ok(true)
            }
            Err(error) if database::is_unique_violation(&error, None) => {
                savepoint.rollback().await?;
                self.copy_first.store(false, Ordering::Relaxed);
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Inserts the batch's pupils; rows whose child is already registered are unchanged (same
    /// school), duplicates of an earlier row, or conflicts (人籍分离 candidates).
    async fn write_pupils(
        &self,
        conn: &mut PgConnection,
        good: Vec<ImportedPupil>,
        counts: &mut BatchCounts,
    ) -> Result<Vec<(i64, RowErrorRecord)>, ServiceError> {
        let mut rejected = Vec::new();
        if good.is_empty() {
            return Ok(rejected);
        }
        let inserted: std::collections::HashSet<Vec<u8>> = match self.copy_new_pupils(conn, &good).await? {
            true => good.iter().map(|row| row.key.clone()).collect(),
            false => {
                let inserted: std::collections::HashSet<Vec<u8>> =
                    pupils::insert_batch(conn, self.job, &self.caller.subject, &good).await?.into_iter().collect();
                self.copy_first.store(inserted.len() == good.len(), Ordering::Relaxed);
                inserted
            }
        };
        let others: Vec<Vec<u8>> =
            good.iter().filter(|row| !inserted.contains(&row.key)).map(|row| row.key.clone()).collect();
        let holders: HashMap<Vec<u8>, pupils::KeyHolder> = if others.is_empty() {
            HashMap::new()
        } else {
            pupils::key_holders(conn, &others).await?.into_iter().map(|holder| (holder.key.clone(), holder)).collect()
        };
        let mut conflicts = Vec::new();
        let mut per_county: BTreeMap<RegionCode, PupilsImported> = BTreeMap::new();
        for row in &good {
            if inserted.contains(&row.key) {
                counts.imported += 1;
                let entry = per_county.entry(row.enrollment_region).or_default();
                entry.count += 1;
                entry.migrant_count += i64::from(row.migrant);
                entry.registered_poor_count += i64::from(row.pupil.registered_poor);
                entry.disability_count += i64::from(row.pupil.disability_grade > 0);
                let grade = i32::from(row.pupil.grade);
                match entry.grades.iter_mut().find(|count| count.grade == grade) {
                    Some(count) => count.count += 1,
                    None => entry.grades.push(GradeCount { grade, count: 1 }),
                }
                continue;
            }
            let Some(holder) = holders.get(&row.key) else {
                counts.unchanged += 1;
                continue;
            };
            if holder.import_job == Some(self.job) && holder.import_row != Some(row.row_number) {
                rejected
                    .push((row.row_number, duplicate_record(row.row_number, holder.import_row.unwrap_or_default())));
            } else if holder.school_code == row.pupil.school_code {
                counts.unchanged += 1;
            } else {
                let registered = if self.caller.sees(&holder.enrollment_region) {
                    Registry::EnrolledAtSchool {
                        school_name: holder.school_name.clone(),
                        school_code: holder.school_code.clone(),
                        region_name: holder.enrollment_region.full_name(),
                    }
                } else {
                    Registry::EnrolledInOtherRegion
                };
                let mut problems = RowProblems::new();
                problems.add(self.header_of(RESIDENT_ID), registered);
                rejected.push((row.row_number, problems.into_record_numbered(row.row_number)));
                if !row.provisional {
                    conflicts.push((row.row_number, row));
                }
            }
        }
        pupils::record_conflicts(conn, self.job, &conflicts).await?;
        let mut events = Vec::with_capacity(per_county.len());
        for (region, mut payload) in per_county {
            payload.job_id = self.job.to_string();
            payload.region_code = region.to_string();
            payload.grades.sort_by_key(|count| count.grade);
            let envelope = nol_events::envelope(
                EventHeader {
                    event_type: PUPILS_IMPORTED,
                    source_region: region,
                    aggregate_type: "import_job",
                    aggregate_id: &payload.job_id,
                    aggregate_sequence: 1,
                    actor: &self.caller.subject,
                },
                &payload,
                chrono::Utc::now(),
                nol_telemetry::current_trace_context(),
            );
            events.push((self.importer.scheme.local(PUPILS_IMPORTED, &region), envelope));
        }
        nol_backbone::outbox::enqueue_many(conn, &events).await?;
        Ok(rejected)
    }

    fn prepare_schools(&self, rows: &[RawRow]) -> (Vec<RowErrorRecord>, PreparedRows) {
        let mut errors = Vec::new();
        let mut good = Vec::new();
        let mut first_seen: HashMap<String, i64> = HashMap::new();
        for row in rows {
            if let Some(error) = Self::too_long(row) {
                errors.push(error);
                continue;
            }
            let mut problems = RowProblems::new();
            match school::validate(
                self.cell(row, SCHOOL_CODE),
                self.cell(row, SCHOOL_NAME),
                self.cell(row, REGION),
                self.cell(row, LEVEL),
                self.cell(row, OWNERSHIP),
            ) {
                Ok(valid) => {
                    if let Some(reason) = self.check_scope(&valid.region) {
                        problems.add(self.header_of(REGION), reason);
                    } else if let Some(first) = first_seen.get(&valid.code) {
                        problems.add(String::new(), Registry::DuplicateOfRow { row: *first });
                    } else {
                        first_seen.insert(valid.code.clone(), row.number as i64);
                        good.push((row.number as i64, valid));
                        continue;
                    }
                }
                Err(found) => {
                    for (column, reason) in found {
                        problems.add(self.header_of(column), reason);
                    }
                }
            }
            errors.push(problems.into_record(row));
        }
        (errors, PreparedRows::Schools(good))
    }

    async fn write_schools(
        &self,
        conn: &mut PgConnection,
        good: Vec<(i64, school::ValidSchool)>,
        counts: &mut BatchCounts,
    ) -> Result<Vec<(i64, RowErrorRecord)>, ServiceError> {
        let mut rejected = Vec::new();
        if good.is_empty() {
            return Ok(rejected);
        }
        let valid: Vec<school::ValidSchool> = good.iter().map(|(_, school)| school.clone()).collect();
        let inserted: std::collections::HashSet<String> =
            schools::insert_batch(conn, &self.caller.subject, &valid).await?.into_iter().collect();
        counts.imported += inserted.len() as i64;
        let others: Vec<String> =
            valid.iter().filter(|school| !inserted.contains(&school.code)).map(|school| school.code.clone()).collect();
        let existing: HashMap<String, schools::SchoolRecord> = if others.is_empty() {
            HashMap::new()
        } else {
            schools::get_many(conn, &others).await?.into_iter().map(|row| (row.code.clone(), row)).collect()
        };
        for (row_number, school) in good.iter().filter(|(_, school)| !inserted.contains(&school.code)) {
            match existing.get(&school.code) {
                Some(row) if row.name != school.name || row.region != school.region => {
                    let mut problems = RowProblems::new();
                    problems.add(
                        self.header_of(SCHOOL_CODE),
                        Registry::SchoolRegisteredAs { name: row.name.clone(), region: row.region.to_string() },
                    );
                    rejected.push((*row_number, problems.into_record_numbered(*row_number)));
                }
                _ => counts.unchanged += 1,
            }
        }
        Ok(rejected)
    }

    /// The household register or the poverty registry. A number that fails its check is kept
    /// (finding it is the point of the cross-check), under the blind index of the text given.
    fn prepare_agency(&self, rows: &[RawRow]) -> (Vec<RowErrorRecord>, PreparedRows) {
        let key = &self.importer.data_key;
        let mut errors = Vec::new();
        let mut households = Vec::new();
        let mut poverty = Vec::new();
        let mut first_seen: HashMap<Vec<u8>, i64> = HashMap::new();
        for row in rows {
            if let Some(error) = Self::too_long(row) {
                errors.push(error);
                continue;
            }
            let mut problems = RowProblems::new();
            let name = self.cell(row, FULL_NAME);
            if let Err(reason) = check_name(name) {
                problems.add(self.header_of(FULL_NAME), reason);
            }
            let raw_id = self.cell(row, RESIDENT_ID).to_ascii_uppercase();
            if raw_id.is_empty() {
                problems.add(self.header_of(RESIDENT_ID), Common::Required);
            }
            let parsed = parse_resident_id(&raw_id, self.today);
            let responsible = match self.kind {
                ListKind::HouseholdRegister => {
                    let hukou = RegionCode::parse_county(self.cell(row, HUKOU));
                    let residence_text = self.cell(row, RESIDENCE);
                    let residence = if residence_text.is_empty() {
                        hukou.clone()
                    } else {
                        RegionCode::parse_county(residence_text)
                    };
                    if let Err(error) = &hukou {
                        problems.add(self.header_of(HUKOU), error.message());
                    }
                    if let Err(error) = &residence {
                        problems.add(self.header_of(RESIDENCE), error.message());
                    }
                    match (hukou, residence) {
                        (Ok(hukou), Ok(residence)) => Some((hukou, residence)),
                        _ => None,
                    }
                }
                _ => {
                    let region = RegionCode::parse_county(self.cell(row, REGION));
                    if let Err(error) = &region {
                        problems.add(self.header_of(REGION), error.message());
                    }
                    if self.cell(row, HOUSEHOLD).is_empty() {
                        problems.add(self.header_of(HOUSEHOLD), Common::Required);
                    }
                    region.ok().map(|region| (region, region))
                }
            };
            let listed_birth = {
                let text = self.cell(row, BIRTH_DATE);
                if text.is_empty() {
                    None
                } else {
                    let parsed_date = parse_date(text);
                    if parsed_date.is_none() {
                        problems.add(self.header_of(BIRTH_DATE), Common::NotADate);
                    }
                    parsed_date
                }
            };
            let acting = responsible.as_ref().map(|(hukou, residence)| {
                if residence.province() == self.importer.province { *residence } else { *hukou }
            });
            if let Some(acting) = &acting
                && let Some(reason) = self.check_scope(acting)
            {
                problems
                    .add(self.header_of(if self.kind == ListKind::PovertyRegistry { REGION } else { HUKOU }), reason);
            }
            let (Some((hukou, residence)), Some(acting)) = (responsible.filter(|_| problems.is_empty()), acting) else {
                errors.push(problems.into_record(row));
                continue;
            };
            // The number's problem is kept as data (the cross-check's item names it), in English.
            let (index, masked, problem, birth_date, sex) = match &parsed {
                Ok(id) => (key.blind_index(id.expose()), id.masked(), None, Some(id.birth_date()), Some(id.sex())),
                Err(reason) => (key.blind_index(&raw_id), mask_raw(&raw_id), Some(reason.en()), None, None),
            };
            if let Some(first) = first_seen.get(&index) {
                errors.push(RowErrorRecord { cells: row.cells.clone(), ..duplicate_record(row.number as i64, *first) });
                continue;
            }
            first_seen.insert(index.clone(), row.number as i64);
            let cipher = key.encrypt(raw_id.as_bytes(), AGENCY_ID_CONTEXT, &index);
            match self.kind {
                ListKind::HouseholdRegister => households.push(HouseholdRecord {
                    row_number: row.number as i64,
                    resident_id_index: index,
                    resident_id_cipher: cipher,
                    resident_id_masked: masked,
                    id_problem: problem,
                    full_name: pupil::normalize_name(name),
                    birth_date,
                    listed_birth_date: listed_birth,
                    birth_mismatch: matches!((listed_birth, birth_date), (Some(listed), Some(birth)) if listed != birth),
                    sex,
                    hukou_region: hukou,
                    residence_region: residence,
                    responsible_region: acting,
                }),
                _ => poverty.push(PovertyRecord {
                    row_number: row.number as i64,
                    resident_id_index: index,
                    resident_id_cipher: cipher,
                    resident_id_masked: masked,
                    id_problem: problem,
                    full_name: pupil::normalize_name(name),
                    household_id: self.cell(row, HOUSEHOLD).to_owned(),
                    region: hukou,
                }),
            }
        }
        let rows = if self.kind == ListKind::HouseholdRegister {
            PreparedRows::Household(households)
        } else {
            PreparedRows::Poverty(poverty)
        };
        (errors, rows)
    }
}

/// A row rejected as a repeat of an earlier row of the same file.
fn duplicate_record(row: i64, first: i64) -> RowErrorRecord {
    let mut problems = RowProblems::new();
    problems.add(String::new(), Registry::DuplicateOfRow { row: first });
    problems.into_record_numbered(row)
}

/// Masks a number that is not a valid resident ID the way valid ones are (or wholly, if short).
fn mask_raw(raw: &str) -> String {
    let characters: Vec<char> = raw.chars().collect();
    if characters.len() >= 10 {
        let head: String = characters[..6].iter().collect();
        let tail: String = characters[characters.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(characters.len() - 10))
    } else {
        "*".repeat(characters.len())
    }
}

/// Deletes rejected rows older than `NOL_IMPORT_ERRORS_RETENTION_DAYS` (rule time) every
/// `NOL_IMPORT_ERRORS_SWEEP_SECS`, first at start, until shutdown. Replicas may sweep at once: a
/// row deleted twice is deleted once.
pub fn spawn_error_sweep(platform: &mut nol_runtime::Platform) {
    let (pool, clock, shutdown) = (platform.pool.clone(), platform.clock.clone(), platform.shutdown.clone());
    let retention =
        chrono::Duration::from_std(platform.config.import_errors_retention).unwrap_or(chrono::Duration::days(30));
    let every = platform.config.import_errors_sweep.max(std::time::Duration::from_millis(10));
    platform.spawn_task(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => match imports::sweep_errors(&pool, clock.now() - retention).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "rejected import rows past their retention deleted"),
                    Err(error) => tracing::warn!(%error, "rejected-rows sweep failed; retrying at the next tick"),
                },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_file_problems_say_what_the_reader_says() {
        let errors = [
            TableError::Empty,
            TableError::NoHeader,
            TableError::NotUtf8 { byte_offset: 17, looks_like_gbk: true },
            TableError::NotUtf8 { byte_offset: 3, looks_like_gbk: false },
            TableError::NotGbk { byte_offset: 9 },
            TableError::UnknownEncoding,
            TableError::BadXlsx("no sheet".to_owned()),
            TableError::MissingColumns(vec!["身份证号".to_owned(), "年级".to_owned()]),
            TableError::DuplicateColumn("姓名".to_owned()),
            TableError::Csv("unequal lengths".to_owned()),
        ];
        for error in errors {
            let message = error.message().unwrap();
            assert_eq!(message.en(), error.to_string());
            assert!(!message.zh().is_empty());
        }
        assert!(TableError::Io(std::io::Error::other("disk")).message().is_none());
    }

    #[test]
    fn a_rows_problems_in_english_for_the_api_and_in_chinese_for_the_file() {
        let mut problems = RowProblems::new();
        problems.add("身份证号".to_owned(), Common::Required);
        problems.add("年级".to_owned(), Registry::NotAGrade);
        let record = problems.into_record_numbered(7);
        assert_eq!(record.column, "身份证号；年级");
        assert_eq!(record.reason, "身份证号: is required；年级: is not a grade of compulsory education (1 to 9)");
        assert_eq!(record.reason_zh, "身份证号：为必填项；年级：不是义务教育阶段的年级（1 至 9 年级）");
        let duplicate = duplicate_record(9, 2);
        assert_eq!((duplicate.column.as_str(), duplicate.reason.as_str()), ("", "duplicate of row 2"));
        assert_eq!(duplicate.reason_zh, "与第 2 行重复");
    }
}
