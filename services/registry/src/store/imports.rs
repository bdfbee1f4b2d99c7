//! Import jobs and their rejected rows.

use chrono::{DateTime, Utc};
use nol_region::RegionCode;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Undecodable, decode, region};
use crate::domain::import_job::{FileRead, JobState, ListKind};

/// An import job as stored.
struct JobRow {
    id: Uuid,
    kind: String,
    file_name: String,
    file_format: String,
    file_encoding: String,
    state: String,
    rows_read: i64,
    rows_imported: i64,
    rows_unchanged: i64,
    rows_rejected: i64,
    last_row: i64,
    message: String,
    header: Vec<String>,
    caller: String,
    caller_region: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// An import job: one file, its progress and summary.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: Uuid,
    pub kind: ListKind,
    pub file_name: String,
    /// How the file was read; None until it has arrived.
    pub file: Option<FileRead>,
    pub state: JobState,
    pub rows_read: i64,
    pub rows_imported: i64,
    pub rows_unchanged: i64,
    pub rows_rejected: i64,
    /// Rows up to this one are committed: a resume starts after it.
    pub last_row: i64,
    pub message: String,
    pub header: Vec<String>,
    pub caller: String,
    pub caller_region: RegionCode,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = Undecodable;

    fn try_from(row: JobRow) -> Result<JobRecord, Undecodable> {
        let file = FileRead::from_stored(&row.file_format, &row.file_encoding).ok_or_else(|| {
            Undecodable::new(
                "import_job",
                row.id,
                "file_format, file_encoding",
                format!("{:?}, {:?}", row.file_format, row.file_encoding),
            )
        })?;
        Ok(JobRecord {
            kind: decode("import_job", row.id, "kind", &row.kind, ListKind::from_stored)?,
            state: decode("import_job", row.id, "state", &row.state, JobState::from_stored)?,
            caller_region: region("import_job", row.id, "caller_region", &row.caller_region)?,
            file,
            id: row.id,
            file_name: row.file_name,
            rows_read: row.rows_read,
            rows_imported: row.rows_imported,
            rows_unchanged: row.rows_unchanged,
            rows_rejected: row.rows_rejected,
            last_row: row.last_row,
            message: row.message,
            header: row.header,
            caller: row.caller,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<JobRecord>> {
    let row = sqlx::query_as!(
        JobRow,
        "SELECT id, kind, file_name, file_format, file_encoding, state, rows_read, rows_imported, rows_unchanged,
                rows_rejected, last_row, message, header, caller, caller_region, started_at, finished_at
           FROM import_job WHERE id = $1",
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(JobRecord::try_from).transpose()?)
}

/// Starts a job, or takes up a job of the same id that did not finish (a resume).
pub async fn begin(
    pool: &PgPool,
    id: Uuid,
    kind: ListKind,
    file_name: &str,
    caller: &str,
    caller_region: RegionCode,
) -> sqlx::Result<JobRecord> {
    sqlx::query!(
        "INSERT INTO import_job (id, kind, file_name, file_format, file_encoding, state, caller, caller_region)
         VALUES ($1, $2, $3, '', '', $6, $4, $5)
         ON CONFLICT (id) DO UPDATE SET state = $6, message = '', finished_at = NULL
          WHERE import_job.state <> $7",
        id,
        kind.as_stored(),
        file_name,
        caller,
        caller_region.as_str(),
        JobState::Uploading.as_stored(),
        JobState::Succeeded.as_stored(),
    )
    .execute(pool)
    .await?;
    get(pool, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// The file was received and its header read.
pub async fn start_rows(pool: &PgPool, id: Uuid, file: FileRead, header: &[String]) -> sqlx::Result<()> {
    let (format, encoding) = file.as_stored();
    sqlx::query!(
        "UPDATE import_job SET state = $5, file_format = $2, file_encoding = $3, header = $4 WHERE id = $1",
        id,
        format,
        encoding,
        header,
        JobState::Running.as_stored(),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts of one committed batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchCounts {
    pub read: i64,
    pub imported: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub last_row: i64,
}

/// Records a batch's progress in the batch's own transaction: a resume starts after `last_row`.
pub async fn record_batch(conn: &mut PgConnection, id: Uuid, counts: &BatchCounts) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE import_job SET rows_read = rows_read + $2, rows_imported = rows_imported + $3,
                rows_unchanged = rows_unchanged + $4, rows_rejected = rows_rejected + $5, last_row = $6
          WHERE id = $1",
        id,
        counts.read,
        counts.imported,
        counts.unchanged,
        counts.rejected,
        counts.last_row,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a job as `state` (succeeded or failed) with what it says of itself.
pub async fn finish(pool: &PgPool, id: Uuid, state: JobState, message: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE import_job SET state = $2, message = $3, finished_at = clock_timestamp() WHERE id = $1",
        id,
        state.as_stored(),
        message,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// One rejected row: all its problems (in English for the API, in Chinese for the error file),
/// and its cells for the error file.
#[derive(Debug, Clone)]
pub struct RowErrorRecord {
    pub row_number: i64,
    pub column: String,
    pub reason: String,
    pub reason_zh: String,
    pub cells: Vec<String>,
}

/// Keeps a batch's rejected rows (their cells masked by the caller), stamped `rejected_at` (rule
/// time) for the retention.
pub async fn insert_errors(
    conn: &mut PgConnection,
    job: Uuid,
    errors: &[RowErrorRecord],
    rejected_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    // One row per rejected row, its problems joined (the error file shows a row once).
    let rows: Vec<i64> = errors.iter().map(|error| error.row_number).collect();
    let columns: Vec<&str> = errors.iter().map(|error| error.column.as_str()).collect();
    let reasons: Vec<&str> = errors.iter().map(|error| error.reason.as_str()).collect();
    let reasons_zh: Vec<&str> = errors.iter().map(|error| error.reason_zh.as_str()).collect();
    let cells: Vec<String> = errors.iter().map(|error| encode_cells(&error.cells)).collect();
    sqlx::query!(
        "INSERT INTO import_row_error (job_id, row_number, column_name, reason, reason_zh, cells, rejected_at)
         SELECT $1, row_number, column_name, reason, reason_zh, decode_cells(cells), $7
           FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[])
                AS t(row_number, column_name, reason, reason_zh, cells)
         ON CONFLICT DO NOTHING",
        job,
        &rows,
        &columns as _,
        &reasons as _,
        &reasons_zh as _,
        &cells,
        rejected_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the rejected rows kept since before `before` (the retention), a slice at a time so no
/// transaction grows with the backlog; returns how many went.
pub async fn sweep_errors(pool: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let mut removed = 0;
    loop {
        let slice = sqlx::query!(
            "DELETE FROM import_row_error WHERE ctid IN
               (SELECT ctid FROM import_row_error WHERE rejected_at < $1 LIMIT 5000)",
            before,
        )
        .execute(pool)
        .await?
        .rows_affected();
        removed += slice;
        if slice == 0 {
            return Ok(removed);
        }
    }
}

/// Cells travel as one JSON array each (unnest cannot take an array of arrays of varying length).
fn encode_cells(cells: &[String]) -> String {
    serde_json::to_string(cells).unwrap_or_else(|_| "[]".to_owned())
}

/// A rejected row as stored.
#[derive(Debug, Clone)]
pub struct ErrorRow {
    pub row_number: i64,
    pub column_name: String,
    pub reason: String,
    /// Empty for rows rejected before the Chinese reason was kept.
    pub reason_zh: String,
    pub cells: Vec<String>,
}

/// A job's rejected rows in row order (`limit` None for all).
/// A page of a job's rejected rows after `after` (row number, column), in file order.
pub async fn errors_after(
    pool: &PgPool,
    job: Uuid,
    after: Option<(i64, &str)>,
    limit: i64,
) -> sqlx::Result<Vec<ErrorRow>> {
    sqlx::query_as!(
        ErrorRow,
        "SELECT row_number, column_name, reason, reason_zh, cells FROM import_row_error
          WHERE job_id = $1 AND ($2::bigint IS NULL OR (row_number, column_name) > ($2, $3::text))
          ORDER BY row_number, column_name LIMIT $4",
        job,
        after.map(|(row, _)| row),
        after.map(|(_, column)| column),
        limit,
    )
    .fetch_all(pool)
    .await
}

pub async fn errors(pool: &PgPool, job: Uuid, limit: Option<i64>) -> sqlx::Result<Vec<ErrorRow>> {
    sqlx::query_as!(
        ErrorRow,
        "SELECT row_number, column_name, reason, reason_zh, cells FROM import_row_error WHERE job_id = $1
          ORDER BY row_number, column_name LIMIT $2",
        job,
        limit,
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, state: &str, format: &str, encoding: &str) -> JobRow {
        JobRow {
            id: Uuid::nil(),
            kind: kind.to_owned(),
            file_name: "pupils.csv".to_owned(),
            file_format: format.to_owned(),
            file_encoding: encoding.to_owned(),
            state: state.to_owned(),
            rows_read: 0,
            rows_imported: 0,
            rows_unchanged: 0,
            rows_rejected: 0,
            last_row: 0,
            message: String::new(),
            header: Vec::new(),
            caller: "test".to_owned(),
            caller_region: "320102".to_owned(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            finished_at: None,
        }
    }

    #[test]
    fn a_job_decodes_once_and_never_into_a_default() {
        let job = JobRecord::try_from(row("pupils", "running", "csv", "gbk")).unwrap();
        assert_eq!((job.kind, job.state), (ListKind::Pupils, JobState::Running));
        assert_eq!(job.file.and_then(|file| file.encoding), Some(nol_tabular::Encoding::Gbk));
        assert!(JobRecord::try_from(row("pupils", "uploading", "", "")).unwrap().file.is_none());
        assert_eq!(JobRecord::try_from(row("pupils", "exploded", "", "")).unwrap_err().column, "state");
        assert_eq!(JobRecord::try_from(row("teachers", "running", "", "")).unwrap_err().column, "kind");
    }
}
