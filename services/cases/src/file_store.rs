//! The SQL of a case file's contents: officers, plan, evidence, persuasion attempts, home-teaching
//! visits, deferral requests, history, and the facts the lifecycle rules look at.

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::DeferralKind;
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{CaseFacts, Status, StoredName, age_on};
use crate::store::{CaseRow, append_history};

/// Bumps a case's version for a change of its file and records the change in its history, in the
/// caller's transaction (which holds the case's row lock).
pub async fn record_change(
    conn: &mut PgConnection,
    case_id: Uuid,
    actor: &str,
    change: &str,
    detail: serde_json::Value,
) -> sqlx::Result<i64> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE dropout_case SET updated_at = clock_timestamp(), version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(case_id)
    .fetch_one(&mut *conn)
    .await?;
    append_history(conn, case_id, version, actor, change, detail).await?;
    Ok(version)
}

/// What the lifecycle rules look at, for a locked case, by the rule clock's `today`.
pub async fn facts(conn: &mut PgConnection, row: &CaseRow, today: NaiveDate) -> sqlx::Result<CaseFacts> {
    let (joint, ruling, duty, medical, refusal, pending): (i64, bool, bool, bool, bool, Option<String>) =
        sqlx::query_as(
            "SELECT
                (SELECT count(*) FROM persuasion_attempt WHERE case_id = $1 AND joint),
                EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'judicial_ruling'),
                EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'guardian_duty'),
                EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'medical'),
                coalesce((SELECT outcome = 'refused' FROM persuasion_attempt
                           WHERE case_id = $1 AND outcome IN ('refused', 'agreed_to_return')
                           ORDER BY attempt_on DESC, recorded_at DESC LIMIT 1), false),
                (SELECT kind FROM deferral_request WHERE case_id = $1 AND state = 'pending')",
        )
        .bind(row.id)
        .fetch_one(conn)
        .await?;
    Ok(CaseFacts {
        status: Status::parse(&row.status)
            .ok_or_else(|| sqlx::Error::Decode("stored case status unreadable".into()))?,
        disability_grade: row.disability_grade,
        joint_attempts: joint.try_into().unwrap_or(u32::MAX),
        judicial_ruling: ruling,
        guardian_duty: duty,
        refusal,
        medical_evidence: medical,
        pending_deferral: pending.as_deref().and_then(DeferralKind::from_stored),
        age_years: age_on(row.birth_date, today),
    })
}

/// Counts shown on a case, per case.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct CaseCounts {
    pub case_id: Uuid,
    pub officers: i64,
    pub open_measures: i64,
    pub evidence: i64,
    pub attempts: i64,
    pub joint_attempts: i64,
    pub pending_deferral: Option<Uuid>,
}

pub async fn counts(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<CaseCounts>> {
    sqlx::query_as::<_, CaseCounts>(
        "SELECT c.id AS case_id,
                (SELECT count(*) FROM case_officer o WHERE o.case_id = c.id) AS officers,
                (SELECT count(*) FROM case_measure m WHERE m.case_id = c.id AND m.done_on IS NULL) AS open_measures,
                (SELECT count(*) FROM case_evidence e WHERE e.case_id = c.id) AS evidence,
                (SELECT count(*) FROM persuasion_attempt p WHERE p.case_id = c.id) AS attempts,
                (SELECT count(*) FROM persuasion_attempt p WHERE p.case_id = c.id AND p.joint) AS joint_attempts,
                (SELECT d.id FROM deferral_request d WHERE d.case_id = c.id AND d.state = 'pending') AS pending_deferral
           FROM unnest($1::uuid[]) AS c (id)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

pub async fn set_causes(conn: &mut PgConnection, case_id: Uuid, causes: &[String]) -> sqlx::Result<()> {
    sqlx::query("UPDATE dropout_case SET causes = $2 WHERE id = $1").bind(case_id).bind(causes).execute(conn).await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OfficerRow {
    pub id: Uuid,
    pub full_name: String,
    pub role: String,
    pub phone: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

pub async fn insert_officer(
    conn: &mut PgConnection,
    case_id: Uuid,
    full_name: &str,
    role: &str,
    phone: &str,
    actor: &str,
) -> sqlx::Result<OfficerRow> {
    sqlx::query_as(
        "INSERT INTO case_officer (id, case_id, full_name, role, phone, added_by) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, full_name, role, phone, added_by, added_at",
    )
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(full_name)
    .bind(role)
    .bind(phone)
    .bind(actor)
    .fetch_one(conn)
    .await
}

pub async fn officers(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<OfficerRow>> {
    sqlx::query_as(
        "SELECT id, full_name, role, phone, added_by, added_at FROM case_officer WHERE case_id = $1 ORDER BY added_at",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MeasureRow {
    pub id: Uuid,
    pub kind: String,
    pub description: String,
    pub fund: String,
    pub learning_support: Vec<String>,
    pub due_on: NaiveDate,
    pub done_on: Option<NaiveDate>,
    pub done_by: Option<String>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

const MEASURE_COLUMNS: &str =
    "id, kind, description, fund, learning_support, due_on, done_on, done_by, added_by, added_at";

/// A measure to add to a plan.
#[derive(Debug, Clone)]
pub struct NewMeasure {
    pub kind: String,
    pub description: String,
    pub fund: String,
    pub learning_support: Vec<String>,
    pub due_on: NaiveDate,
}

pub async fn insert_measure(
    conn: &mut PgConnection,
    case_id: Uuid,
    measure: &NewMeasure,
    actor: &str,
) -> sqlx::Result<MeasureRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO case_measure (id, case_id, kind, description, fund, learning_support, due_on, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {MEASURE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(&measure.kind)
    .bind(&measure.description)
    .bind(&measure.fund)
    .bind(&measure.learning_support)
    .bind(measure.due_on)
    .bind(actor)
    .fetch_one(conn)
    .await
}

/// The measure of this case, locked.
pub async fn measure_for_update(
    conn: &mut PgConnection,
    case_id: Uuid,
    measure_id: Uuid,
) -> sqlx::Result<Option<MeasureRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEASURE_COLUMNS} FROM case_measure WHERE id = $1 AND case_id = $2 FOR UPDATE"
    )))
    .bind(measure_id)
    .bind(case_id)
    .fetch_optional(conn)
    .await
}

pub async fn complete_measure(
    conn: &mut PgConnection,
    measure_id: Uuid,
    done_on: NaiveDate,
    actor: &str,
) -> sqlx::Result<MeasureRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE case_measure SET done_on = $2, done_by = $3 WHERE id = $1 RETURNING {MEASURE_COLUMNS}"
    )))
    .bind(measure_id)
    .bind(done_on)
    .bind(actor)
    .fetch_one(conn)
    .await
}

pub async fn measures(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<MeasureRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEASURE_COLUMNS} FROM case_measure WHERE case_id = $1 ORDER BY due_on, added_at"
    )))
    .bind(case_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: Uuid,
    pub kind: String,
    pub document_number: String,
    pub issuing_body: String,
    pub issued_on: NaiveDate,
    pub file_name: String,
    pub file_size: i64,
    pub file_sha256: Option<Vec<u8>>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

const EVIDENCE_COLUMNS: &str =
    "id, kind, document_number, issuing_body, issued_on, file_name, file_size, file_sha256, added_by, added_at";

/// An evidence document to add, with its file.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub kind: String,
    pub document_number: String,
    pub issuing_body: String,
    pub issued_on: NaiveDate,
    pub file_name: String,
    pub content: Vec<u8>,
    pub sha256: Option<Vec<u8>>,
}

pub async fn insert_evidence(
    conn: &mut PgConnection,
    case_id: Uuid,
    evidence: &NewEvidence,
    actor: &str,
) -> sqlx::Result<EvidenceRow> {
    let row: EvidenceRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO case_evidence (id, case_id, kind, document_number, issuing_body, issued_on, file_name,
                                    file_size, file_sha256, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {EVIDENCE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(&evidence.kind)
    .bind(&evidence.document_number)
    .bind(&evidence.issuing_body)
    .bind(evidence.issued_on)
    .bind(&evidence.file_name)
    .bind(evidence.content.len() as i64)
    .bind(&evidence.sha256)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    if evidence.sha256.is_some() {
        sqlx::query("INSERT INTO case_evidence_file (evidence_id, content) VALUES ($1, $2)")
            .bind(row.id)
            .bind(&evidence.content)
            .execute(&mut *conn)
            .await?;
    }
    Ok(row)
}

pub async fn evidence(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<EvidenceRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVIDENCE_COLUMNS} FROM case_evidence WHERE case_id = $1 ORDER BY added_at"
    )))
    .bind(case_id)
    .fetch_all(pool)
    .await
}

/// An evidence document of a case and its file's bytes (None when it has no file).
pub async fn evidence_file(
    pool: &PgPool,
    case_id: Uuid,
    evidence_id: Uuid,
) -> sqlx::Result<Option<(EvidenceRow, Option<Vec<u8>>)>> {
    let row: Option<EvidenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVIDENCE_COLUMNS} FROM case_evidence WHERE id = $1 AND case_id = $2"
    )))
    .bind(evidence_id)
    .bind(case_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let content: Option<Vec<u8>> = sqlx::query_scalar("SELECT content FROM case_evidence_file WHERE evidence_id = $1")
        .bind(evidence_id)
        .fetch_optional(pool)
        .await?;
    Ok(Some((row, content)))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: Uuid,
    pub attempt_on: NaiveDate,
    pub departments: Vec<String>,
    pub means: Vec<String>,
    pub place: String,
    pub place_region: Option<String>,
    pub outcome: String,
    pub notes: String,
    pub joint: bool,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

const ATTEMPT_COLUMNS: &str =
    "id, attempt_on, departments, means, place, place_region, outcome, notes, joint, recorded_by, recorded_at";

/// A persuasion attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub attempt_on: NaiveDate,
    pub departments: Vec<String>,
    pub means: Vec<String>,
    pub place: String,
    pub place_region: Option<String>,
    pub outcome: String,
    pub notes: String,
    pub joint: bool,
}

/// Records an attempt and moves the case's newest attempt date (the caller refreshes the due
/// date with `store::refresh_due`).
pub async fn insert_attempt(
    conn: &mut PgConnection,
    case_id: Uuid,
    attempt: &NewAttempt,
    actor: &str,
) -> sqlx::Result<AttemptRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO persuasion_attempt (id, case_id, attempt_on, departments, means, place, place_region, outcome,
                                         notes, joint, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {ATTEMPT_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(attempt.attempt_on)
    .bind(&attempt.departments)
    .bind(&attempt.means)
    .bind(&attempt.place)
    .bind(&attempt.place_region)
    .bind(&attempt.outcome)
    .bind(&attempt.notes)
    .bind(attempt.joint)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE dropout_case SET last_attempt_on = greatest(last_attempt_on, $2) WHERE id = $1")
        .bind(case_id)
        .bind(attempt.attempt_on)
        .execute(conn)
        .await?;
    Ok(row)
}

/// A case's attempts, newest recorded first, a page at a time.
pub async fn attempts(
    pool: &PgPool,
    case_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM persuasion_attempt
          WHERE case_id = $1 AND ($2::timestamptz IS NULL OR (recorded_at, id) < ($2, $3))
          ORDER BY recorded_at DESC, id DESC LIMIT $4"
    )))
    .bind(case_id)
    .bind(after.map(|cursor| cursor.time))
    .bind(after.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VisitRow {
    pub id: Uuid,
    pub visited_on: NaiveDate,
    pub teacher: String,
    pub duration_minutes: i32,
    pub content: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_visit(
    conn: &mut PgConnection,
    case_id: Uuid,
    visited_on: NaiveDate,
    teacher: &str,
    duration_minutes: i32,
    content: &str,
    actor: &str,
) -> sqlx::Result<VisitRow> {
    sqlx::query_as(
        "INSERT INTO home_teaching_visit (id, case_id, visited_on, teacher, duration_minutes, content, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, visited_on, teacher, duration_minutes, content, recorded_by, recorded_at",
    )
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(visited_on)
    .bind(teacher)
    .bind(duration_minutes)
    .bind(content)
    .bind(actor)
    .fetch_one(conn)
    .await
}

pub async fn visits(pool: &PgPool, case_id: Uuid, limit: i64) -> sqlx::Result<Vec<VisitRow>> {
    sqlx::query_as(
        "SELECT id, visited_on, teacher, duration_minutes, content, recorded_by, recorded_at
           FROM home_teaching_visit WHERE case_id = $1 ORDER BY visited_on DESC, recorded_at DESC LIMIT $2",
    )
    .bind(case_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeferralRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub reason: String,
    pub state: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: String,
}

const DEFERRAL_COLUMNS: &str =
    "id, case_id, kind, reason, state, requested_by, requested_at, decided_by, decided_at, decision_note";

pub async fn insert_deferral(
    conn: &mut PgConnection,
    case_id: Uuid,
    kind: &str,
    reason: &str,
    actor: &str,
) -> sqlx::Result<DeferralRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO deferral_request (id, case_id, kind, reason, requested_by) VALUES ($1, $2, $3, $4, $5)
         RETURNING {DEFERRAL_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(kind)
    .bind(reason)
    .bind(actor)
    .fetch_one(conn)
    .await
}

pub async fn deferral(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<DeferralRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {DEFERRAL_COLUMNS} FROM deferral_request WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Decides a pending request; None when it is no longer pending.
pub async fn decide_deferral(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    note: &str,
    actor: &str,
) -> sqlx::Result<Option<DeferralRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE deferral_request SET state = $2, decision_note = $3, decided_by = $4, decided_at = clock_timestamp()
          WHERE id = $1 AND state = 'pending' RETURNING {DEFERRAL_COLUMNS}"
    )))
    .bind(id)
    .bind(state)
    .bind(note)
    .bind(actor)
    .fetch_optional(conn)
    .await
}

pub async fn deferrals(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<DeferralRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DEFERRAL_COLUMNS} FROM deferral_request WHERE case_id = $1 ORDER BY requested_at DESC"
    )))
    .bind(case_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub version: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub detail: serde_json::Value,
}

/// A case's history, oldest first, after version `after`.
pub async fn history(pool: &PgPool, case_id: Uuid, after: i64, limit: i64) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as(
        "SELECT version, at, actor, change, detail FROM case_history
          WHERE case_id = $1 AND version > $2 ORDER BY version LIMIT $3",
    )
    .bind(case_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
