//! Import jobs and their rejected rows.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub file_name: String,
    pub file_format: String,
    pub file_encoding: String,
    pub state: String,
    pub rows_read: i64,
    pub rows_imported: i64,
    pub rows_unchanged: i64,
    pub rows_rejected: i64,
    pub last_row: i64,
    pub message: String,
    pub header: Vec<String>,
    pub caller: String,
    pub caller_region: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, kind, file_name, file_format, file_encoding, state, rows_read, rows_imported, rows_unchanged,
    rows_rejected, last_row, message, header, caller, caller_region, started_at, finished_at";

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM import_job WHERE id = $1")))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Starts a job, or takes up a job of the same id that did not finish (a resume).
pub async fn begin(
    pool: &PgPool,
    id: Uuid,
    kind: &str,
    file_name: &str,
    caller: &str,
    caller_region: &str,
) -> sqlx::Result<JobRow> {
    sqlx::query(
        "INSERT INTO import_job (id, kind, file_name, file_format, file_encoding, state, caller, caller_region)
         VALUES ($1, $2, $3, '', '', 'uploading', $4, $5)
         ON CONFLICT (id) DO UPDATE SET state = 'uploading', message = '', finished_at = NULL
          WHERE import_job.state <> 'succeeded'",
    )
    .bind(id)
    .bind(kind)
    .bind(file_name)
    .bind(caller)
    .bind(caller_region)
    .execute(pool)
    .await?;
    get(pool, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// The file was received and its header read.
pub async fn start_rows(pool: &PgPool, id: Uuid, format: &str, encoding: &str, header: &[String]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE import_job SET state = 'running', file_format = $2, file_encoding = $3, header = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(format)
    .bind(encoding)
    .bind(header)
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
    sqlx::query(
        "UPDATE import_job SET rows_read = rows_read + $2, rows_imported = rows_imported + $3,
                rows_unchanged = rows_unchanged + $4, rows_rejected = rows_rejected + $5, last_row = $6
          WHERE id = $1",
    )
    .bind(id)
    .bind(counts.read)
    .bind(counts.imported)
    .bind(counts.unchanged)
    .bind(counts.rejected)
    .bind(counts.last_row)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish(pool: &PgPool, id: Uuid, state: &str, message: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE import_job SET state = $2, message = $3, finished_at = clock_timestamp() WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(message)
        .execute(pool)
        .await?;
    Ok(())
}

/// One rejected row: all its problems, and its cells for the error file.
#[derive(Debug, Clone)]
pub struct RowErrorRecord {
    pub row_number: i64,
    pub column: String,
    pub reason: String,
    pub cells: Vec<String>,
}

pub async fn insert_errors(conn: &mut PgConnection, job: Uuid, errors: &[RowErrorRecord]) -> sqlx::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    // One row per rejected row, its problems joined (the error file shows a row once).
    let rows: Vec<i64> = errors.iter().map(|error| error.row_number).collect();
    let columns: Vec<&str> = errors.iter().map(|error| error.column.as_str()).collect();
    let reasons: Vec<&str> = errors.iter().map(|error| error.reason.as_str()).collect();
    let cells: Vec<String> = errors.iter().map(|error| encode_cells(&error.cells)).collect();
    sqlx::query(
        "INSERT INTO import_row_error (job_id, row_number, column_name, reason, cells)
         SELECT $1, row_number, column_name, reason, decode_cells(cells)
           FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[]) AS t(row_number, column_name, reason, cells)
         ON CONFLICT DO NOTHING",
    )
    .bind(job)
    .bind(&rows)
    .bind(&columns)
    .bind(&reasons)
    .bind(&cells)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cells travel as one JSON array each (unnest cannot take an array of arrays of varying length).
fn encode_cells(cells: &[String]) -> String {
    serde_json::to_string(cells).unwrap_or_else(|_| "[]".to_owned())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErrorRow {
    pub row_number: i64,
    pub column_name: String,
    pub reason: String,
    pub cells: Vec<String>,
}

/// A job's rejected rows in row order (`limit` None for all).
pub async fn errors(pool: &PgPool, job: Uuid, limit: Option<i64>) -> sqlx::Result<Vec<ErrorRow>> {
    sqlx::query_as::<_, ErrorRow>(
        "SELECT row_number, column_name, reason, cells FROM import_row_error WHERE job_id = $1
          ORDER BY row_number, column_name LIMIT $2",
    )
    .bind(job)
    .bind(limit)
    .fetch_all(pool)
    .await
}
