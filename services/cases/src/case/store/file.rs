//! The SQL of a case file's contents: `case_officer`, `case_measure`, `case_evidence` (and its
//! file), `persuasion_attempt`, `home_teaching_visit`, `deferral_request`; and the facts the
//! lifecycle rules look at. Written by the case service in the transaction that holds the case's
//! lock (the ledger records the change on the case).

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::{
    DeferralKind, EvidenceType, LearningSupport, MeasureKind, OfficerRole, PersuasionDepartment, PersuasionMeans,
    PersuasionOutcome, PersuasionPlace,
};
use nol_runtime::paging::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{CorruptRow, decode, region};
use crate::case::domain::file::{
    Attempt, CaseCounts, DeferralRequest, Evidence, Measure, NewAttempt, NewEvidence, NewMeasure, Officer, Visit,
};
use crate::case::domain::stored::{Stored, decode_list, stored_list};
use crate::case::domain::{CaseFacts, DeferralState, Status, age_on};

fn all<R, T: TryFrom<R, Error = CorruptRow>>(rows: Vec<R>) -> sqlx::Result<Vec<T>> {
    rows.into_iter().map(|row| T::try_from(row).map_err(sqlx::Error::from)).collect()
}

fn one<R, T: TryFrom<R, Error = CorruptRow>>(row: R) -> sqlx::Result<T> {
    T::try_from(row).map_err(sqlx::Error::from)
}

/// What the lifecycle rules look at, for a locked case in `status`, by the rule clock's `today`.
pub async fn facts(
    conn: &mut PgConnection,
    case_id: Uuid,
    status: Status,
    disability_grade: i16,
    birth_date: NaiveDate,
    today: NaiveDate,
) -> sqlx::Result<CaseFacts> {
    let row = sqlx::query!(
        r#"SELECT
            (SELECT count(*) FROM persuasion_attempt WHERE case_id = $1 AND joint) AS "joint!",
            EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'judicial_ruling') AS "ruling!",
            EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'guardian_duty') AS "duty!",
            EXISTS (SELECT 1 FROM case_evidence WHERE case_id = $1 AND kind = 'medical') AS "medical!",
            coalesce((SELECT outcome = 'refused' FROM persuasion_attempt
                       WHERE case_id = $1 AND outcome IN ('refused', 'agreed_to_return')
                       ORDER BY attempt_on DESC, recorded_at DESC LIMIT 1), false) AS "refusal!",
            (SELECT kind FROM deferral_request WHERE case_id = $1 AND state = 'pending') AS "pending?""#,
        case_id
    )
    .fetch_one(conn)
    .await?;
    let pending_deferral =
        row.pending.map(|kind| decode::<DeferralKind>("deferral_request", case_id, "kind", &kind)).transpose()?;
    Ok(CaseFacts {
        status,
        disability_grade,
        joint_attempts: row.joint.try_into().unwrap_or(u32::MAX),
        judicial_ruling: row.ruling,
        guardian_duty: row.duty,
        refusal: row.refusal,
        medical_evidence: row.medical,
        pending_deferral,
        age_years: age_on(birth_date, today),
    })
}

pub async fn counts(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<CaseCounts>> {
    sqlx::query_as!(
        CaseCounts,
        r#"SELECT c.id AS "case_id!",
                (SELECT count(*) FROM case_officer o WHERE o.case_id = c.id) AS "officers!",
                (SELECT count(*) FROM case_measure m WHERE m.case_id = c.id AND m.done_on IS NULL) AS "open_measures!",
                (SELECT count(*) FROM case_evidence e WHERE e.case_id = c.id) AS "evidence!",
                (SELECT count(*) FROM persuasion_attempt p WHERE p.case_id = c.id) AS "attempts!",
                (SELECT count(*) FROM persuasion_attempt p WHERE p.case_id = c.id AND p.joint) AS "joint_attempts!",
                (SELECT d.id FROM deferral_request d WHERE d.case_id = c.id AND d.state = 'pending') AS "pending_deferral?"
           FROM unnest($1::uuid[]) AS c (id)"#,
        ids
    )
    .fetch_all(pool)
    .await
}

struct OfficerRow {
    id: Uuid,
    full_name: String,
    role: String,
    phone: String,
    added_by: String,
    added_at: DateTime<Utc>,
}

impl TryFrom<OfficerRow> for Officer {
    type Error = CorruptRow;
    fn try_from(row: OfficerRow) -> Result<Officer, CorruptRow> {
        Ok(Officer {
            role: decode::<OfficerRole>("case_officer", row.id, "role", &row.role)?,
            id: row.id,
            full_name: row.full_name,
            phone: row.phone,
            added_by: row.added_by,
            added_at: row.added_at,
        })
    }
}

pub async fn insert_officer(
    conn: &mut PgConnection,
    case_id: Uuid,
    full_name: &str,
    role: OfficerRole,
    phone: &str,
    actor: &str,
) -> sqlx::Result<Officer> {
    one(sqlx::query_as!(
        OfficerRow,
        "INSERT INTO case_officer (id, case_id, full_name, role, phone, added_by) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, full_name, role, phone, added_by, added_at",
        Uuid::now_v7(),
        case_id,
        full_name,
        role.as_stored(),
        phone,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

pub async fn officers<'c>(db: impl sqlx::PgExecutor<'c>, case_id: Uuid) -> sqlx::Result<Vec<Officer>> {
    all(sqlx::query_as!(
        OfficerRow,
        "SELECT id, full_name, role, phone, added_by, added_at FROM case_officer WHERE case_id = $1 ORDER BY added_at",
        case_id
    )
    .fetch_all(db)
    .await?)
}

struct MeasureRow {
    id: Uuid,
    kind: String,
    description: String,
    fund: String,
    learning_support: Vec<String>,
    due_on: NaiveDate,
    done_on: Option<NaiveDate>,
    done_by: Option<String>,
    added_by: String,
    added_at: DateTime<Utc>,
}

impl TryFrom<MeasureRow> for Measure {
    type Error = CorruptRow;
    fn try_from(row: MeasureRow) -> Result<Measure, CorruptRow> {
        Ok(Measure {
            kind: decode::<MeasureKind>("case_measure", row.id, "kind", &row.kind)?,
            learning_support: decode_list::<LearningSupport>(&row.learning_support)
                .map_err(|name| CorruptRow::new("case_measure", row.id, "learning_support", name))?,
            id: row.id,
            description: row.description,
            fund: row.fund,
            due_on: row.due_on,
            done_on: row.done_on,
            done_by: row.done_by,
            added_by: row.added_by,
            added_at: row.added_at,
        })
    }
}

pub async fn insert_measure(
    conn: &mut PgConnection,
    case_id: Uuid,
    measure: &NewMeasure,
    actor: &str,
) -> sqlx::Result<Measure> {
    one(sqlx::query_as!(
        MeasureRow,
        "INSERT INTO case_measure (id, case_id, kind, description, fund, learning_support, due_on, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, kind, description, fund, learning_support, due_on, done_on, done_by, added_by, added_at",
        Uuid::now_v7(),
        case_id,
        measure.kind.as_stored(),
        measure.description,
        measure.fund,
        &stored_list(&measure.learning_support),
        measure.due_on,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

/// The measure of this case, locked.
pub async fn measure_for_update(
    conn: &mut PgConnection,
    case_id: Uuid,
    measure_id: Uuid,
) -> sqlx::Result<Option<Measure>> {
    sqlx::query_as!(
        MeasureRow,
        "SELECT id, kind, description, fund, learning_support, due_on, done_on, done_by, added_by, added_at
           FROM case_measure WHERE id = $1 AND case_id = $2 FOR UPDATE",
        measure_id,
        case_id,
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

pub async fn complete_measure(
    conn: &mut PgConnection,
    measure_id: Uuid,
    done_on: NaiveDate,
    actor: &str,
) -> sqlx::Result<Measure> {
    one(sqlx::query_as!(
        MeasureRow,
        "UPDATE case_measure SET done_on = $2, done_by = $3 WHERE id = $1
         RETURNING id, kind, description, fund, learning_support, due_on, done_on, done_by, added_by, added_at",
        measure_id,
        done_on,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

pub async fn measures<'c>(db: impl sqlx::PgExecutor<'c>, case_id: Uuid) -> sqlx::Result<Vec<Measure>> {
    all(sqlx::query_as!(
        MeasureRow,
        "SELECT id, kind, description, fund, learning_support, due_on, done_on, done_by, added_by, added_at
           FROM case_measure WHERE case_id = $1 ORDER BY due_on, added_at",
        case_id
    )
    .fetch_all(db)
    .await?)
}

struct EvidenceRow {
    id: Uuid,
    kind: String,
    document_number: String,
    issuing_body: String,
    issued_on: NaiveDate,
    file_name: String,
    file_size: i64,
    file_sha256: Option<Vec<u8>>,
    added_by: String,
    added_at: DateTime<Utc>,
}

impl TryFrom<EvidenceRow> for Evidence {
    type Error = CorruptRow;
    fn try_from(row: EvidenceRow) -> Result<Evidence, CorruptRow> {
        Ok(Evidence {
            kind: decode::<EvidenceType>("case_evidence", row.id, "kind", &row.kind)?,
            id: row.id,
            document_number: row.document_number,
            issuing_body: row.issuing_body,
            issued_on: row.issued_on,
            file_name: row.file_name,
            file_size: row.file_size,
            file_sha256: row.file_sha256,
            added_by: row.added_by,
            added_at: row.added_at,
        })
    }
}

pub async fn insert_evidence(
    conn: &mut PgConnection,
    case_id: Uuid,
    evidence: &NewEvidence,
    actor: &str,
) -> sqlx::Result<Evidence> {
    let row = sqlx::query_as!(
        EvidenceRow,
        "INSERT INTO case_evidence (id, case_id, kind, document_number, issuing_body, issued_on, file_name,
                                    file_size, file_sha256, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id, kind, document_number, issuing_body, issued_on, file_name, file_size, file_sha256, added_by,
                   added_at",
        Uuid::now_v7(),
        case_id,
        evidence.kind.as_stored(),
        evidence.document_number,
        evidence.issuing_body,
        evidence.issued_on,
        evidence.file_name,
        evidence.content.len() as i64,
        evidence.sha256,
        actor,
    )
    .fetch_one(&mut *conn)
    .await?;
    if evidence.sha256.is_some() {
        sqlx::query!("INSERT INTO case_evidence_file (evidence_id, content) VALUES ($1, $2)", row.id, evidence.content)
            .execute(&mut *conn)
            .await?;
    }
    one(row)
}

pub async fn evidence<'c>(db: impl sqlx::PgExecutor<'c>, case_id: Uuid) -> sqlx::Result<Vec<Evidence>> {
    all(sqlx::query_as!(
        EvidenceRow,
        "SELECT id, kind, document_number, issuing_body, issued_on, file_name, file_size, file_sha256, added_by,
                added_at
           FROM case_evidence WHERE case_id = $1 ORDER BY added_at",
        case_id
    )
    .fetch_all(db)
    .await?)
}

/// An evidence document of a case and its file's bytes (None when it has no file).
pub async fn evidence_file(
    pool: &PgPool,
    case_id: Uuid,
    evidence_id: Uuid,
) -> sqlx::Result<Option<(Evidence, Option<Vec<u8>>)>> {
    let row = sqlx::query_as!(
        EvidenceRow,
        "SELECT id, kind, document_number, issuing_body, issued_on, file_name, file_size, file_sha256, added_by,
                added_at
           FROM case_evidence WHERE id = $1 AND case_id = $2",
        evidence_id,
        case_id,
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let content = sqlx::query_scalar!("SELECT content FROM case_evidence_file WHERE evidence_id = $1", evidence_id)
        .fetch_optional(pool)
        .await?;
    Ok(Some((one(row)?, content)))
}

struct AttemptRow {
    id: Uuid,
    attempt_on: NaiveDate,
    departments: Vec<String>,
    means: Vec<String>,
    place: String,
    place_region: Option<String>,
    outcome: String,
    notes: String,
    joint: bool,
    recorded_by: String,
    recorded_at: DateTime<Utc>,
    assisting_region: Option<String>,
    assistance_id: Option<Uuid>,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = CorruptRow;
    fn try_from(row: AttemptRow) -> Result<Attempt, CorruptRow> {
        let id = row.id;
        let table = "persuasion_attempt";
        Ok(Attempt {
            departments: decode_list::<PersuasionDepartment>(&row.departments)
                .map_err(|name| CorruptRow::new(table, id, "departments", name))?,
            means: decode_list::<PersuasionMeans>(&row.means)
                .map_err(|name| CorruptRow::new(table, id, "means", name))?,
            place: decode::<PersuasionPlace>(table, id, "place", &row.place)?,
            place_region: row.place_region.map(|code| region(table, id, "place_region", &code)).transpose()?,
            assisting_region: row
                .assisting_region
                .map(|code| region(table, id, "assisting_region", &code))
                .transpose()?,
            assistance_id: row.assistance_id,
            outcome: decode::<PersuasionOutcome>(table, id, "outcome", &row.outcome)?,
            id,
            attempt_on: row.attempt_on,
            notes: row.notes,
            joint: row.joint,
            recorded_by: row.recorded_by,
            recorded_at: row.recorded_at,
        })
    }
}

/// Records an attempt (the ledger then moves the case's newest attempt date and due date).
pub async fn insert_attempt(
    conn: &mut PgConnection,
    case_id: Uuid,
    attempt: &NewAttempt,
    actor: &str,
) -> sqlx::Result<Attempt> {
    one(sqlx::query_as!(
        AttemptRow,
        "INSERT INTO persuasion_attempt (id, case_id, attempt_on, departments, means, place, place_region, outcome,
                                         notes, joint, recorded_by, assisting_region, assistance_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id, attempt_on, departments, means, place, place_region, outcome, notes, joint, recorded_by,
                   recorded_at, assisting_region, assistance_id",
        Uuid::now_v7(),
        case_id,
        attempt.attempt_on,
        &stored_list(&attempt.departments),
        &stored_list(&attempt.means),
        attempt.place.as_stored(),
        attempt.place_region.map(|region| region.to_string()),
        attempt.outcome.as_stored(),
        attempt.notes,
        attempt.joint,
        actor,
        attempt.assisted.map(|(region, _)| region.to_string()),
        attempt.assisted.map(|(_, id)| id),
    )
    .fetch_one(conn)
    .await?)
}

/// A case's attempts, newest recorded first, a page at a time.
pub async fn attempts<'c>(
    db: impl sqlx::PgExecutor<'c>,
    case_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Attempt>> {
    all(sqlx::query_as!(
        AttemptRow,
        "SELECT id, attempt_on, departments, means, place, place_region, outcome, notes, joint, recorded_by,
                recorded_at, assisting_region, assistance_id
           FROM persuasion_attempt
          WHERE case_id = $1 AND ($2::timestamptz IS NULL OR (recorded_at, id) < ($2, $3))
          ORDER BY recorded_at DESC, id DESC LIMIT $4",
        case_id,
        after.map(|cursor| cursor.time),
        after.map(|cursor| cursor.id),
        limit,
    )
    .fetch_all(db)
    .await?)
}

pub async fn insert_visit(
    conn: &mut PgConnection,
    case_id: Uuid,
    visited_on: NaiveDate,
    teacher: &str,
    duration_minutes: i32,
    content: &str,
    actor: &str,
) -> sqlx::Result<Visit> {
    sqlx::query_as!(
        Visit,
        "INSERT INTO home_teaching_visit (id, case_id, visited_on, teacher, duration_minutes, content, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, visited_on, teacher, duration_minutes, content, recorded_by, recorded_at",
        Uuid::now_v7(),
        case_id,
        visited_on,
        teacher,
        duration_minutes,
        content,
        actor,
    )
    .fetch_one(conn)
    .await
}

pub async fn visits(pool: &PgPool, case_id: Uuid, limit: i64) -> sqlx::Result<Vec<Visit>> {
    sqlx::query_as!(
        Visit,
        "SELECT id, visited_on, teacher, duration_minutes, content, recorded_by, recorded_at
           FROM home_teaching_visit WHERE case_id = $1 ORDER BY visited_on DESC, recorded_at DESC LIMIT $2",
        case_id,
        limit,
    )
    .fetch_all(pool)
    .await
}

struct DeferralRow {
    id: Uuid,
    case_id: Uuid,
    kind: String,
    reason: String,
    state: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    decision_note: String,
}

impl TryFrom<DeferralRow> for DeferralRequest {
    type Error = CorruptRow;
    fn try_from(row: DeferralRow) -> Result<DeferralRequest, CorruptRow> {
        Ok(DeferralRequest {
            kind: decode::<DeferralKind>("deferral_request", row.id, "kind", &row.kind)?,
            state: decode::<DeferralState>("deferral_request", row.id, "state", &row.state)?,
            id: row.id,
            case_id: row.case_id,
            reason: row.reason,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            decision_note: row.decision_note,
        })
    }
}

pub async fn insert_deferral(
    conn: &mut PgConnection,
    case_id: Uuid,
    kind: DeferralKind,
    reason: &str,
    actor: &str,
) -> sqlx::Result<DeferralRequest> {
    one(sqlx::query_as!(
        DeferralRow,
        "INSERT INTO deferral_request (id, case_id, kind, reason, requested_by) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, case_id, kind, reason, state, requested_by, requested_at, decided_by, decided_at, decision_note",
        Uuid::now_v7(),
        case_id,
        kind.as_stored(),
        reason,
        actor,
    )
    .fetch_one(conn)
    .await?)
}

pub async fn deferral(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<DeferralRequest>> {
    sqlx::query_as!(
        DeferralRow,
        "SELECT id, case_id, kind, reason, state, requested_by, requested_at, decided_by, decided_at, decision_note
           FROM deferral_request WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .map(one)
    .transpose()
}

/// Decides a pending request; None when it is no longer pending.
pub async fn decide_deferral(
    conn: &mut PgConnection,
    id: Uuid,
    state: DeferralState,
    note: &str,
    actor: &str,
) -> sqlx::Result<Option<DeferralRequest>> {
    sqlx::query_as!(
        DeferralRow,
        "UPDATE deferral_request SET state = $2, decision_note = $3, decided_by = $4, decided_at = clock_timestamp()
          WHERE id = $1 AND state = 'pending'
         RETURNING id, case_id, kind, reason, state, requested_by, requested_at, decided_by, decided_at, decision_note",
        id,
        state.as_stored(),
        note,
        actor,
    )
    .fetch_optional(conn)
    .await?
    .map(one)
    .transpose()
}

pub async fn deferrals(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<DeferralRequest>> {
    all(sqlx::query_as!(
        DeferralRow,
        "SELECT id, case_id, kind, reason, state, requested_by, requested_at, decided_by, decided_at, decision_note
           FROM deferral_request WHERE case_id = $1 ORDER BY requested_at DESC",
        case_id
    )
    .fetch_all(pool)
    .await?)
}
