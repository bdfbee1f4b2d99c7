//! The reports' SQL: `report`, its frozen `report_figure`s, its `report_step`s, and due dates.

use chrono::{DateTime, NaiveDate, Utc};
use nol_region::RegionCode;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::figures::Figures;
use crate::periods::ReportPeriod;
use crate::reports::State;

/// A county's report as stored.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub id: Uuid,
    pub region: String,
    pub state: State,
    pub work_done: String,
    pub problems: String,
    pub next_steps: String,
    pub snapshot_at: DateTime<Utc>,
    pub warnings: Vec<String>,
    pub version: i32,
}

/// One step as stored.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub action: String,
    pub state: State,
    pub actor: String,
    pub actor_role: String,
    pub actor_region: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

fn state_of(region: &str, text: &str) -> sqlx::Result<State> {
    State::from_stored(text).ok_or_else(|| {
        sqlx::Error::Decode(Box::new(crate::store::Undecodable {
            table: "report",
            prefix: region.to_owned(),
            column: "state",
            value: text.to_owned(),
        }))
    })
}

/// Serialises the steps on one county's report for one period (the first draft included).
pub async fn lock(conn: &mut PgConnection, region: &RegionCode, period: ReportPeriod) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('report:' || $1 || ':' || $2, 0))",
        region.as_str(),
        period.code()
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn report(
    conn: &mut PgConnection,
    region: &RegionCode,
    period: ReportPeriod,
) -> sqlx::Result<Option<ReportRow>> {
    let row = sqlx::query!(
        "SELECT id, region, state, work_done, problems, next_steps, snapshot_at, warnings, version
           FROM report WHERE region = $1 AND period = $2",
        region.as_str(),
        period.code(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(ReportRow {
            state: state_of(&row.region, &row.state)?,
            id: row.id,
            region: row.region,
            work_done: row.work_done,
            problems: row.problems,
            next_steps: row.next_steps,
            snapshot_at: row.snapshot_at,
            warnings: row.warnings,
            version: row.version,
        })
    })
    .transpose()
}

/// Writes a draft: its notes, warnings and frozen figures (replacing an earlier draft's).
pub async fn save_draft(
    conn: &mut PgConnection,
    row: &ReportRow,
    period: ReportPeriod,
    figures: &Figures,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO report (id, region, period, state, work_done, problems, next_steps, snapshot_at, warnings, version,
                             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $8)
         ON CONFLICT (id) DO UPDATE
            SET state = excluded.state, work_done = excluded.work_done, problems = excluded.problems,
                next_steps = excluded.next_steps, snapshot_at = excluded.snapshot_at, warnings = excluded.warnings,
                version = excluded.version, updated_at = excluded.updated_at",
        row.id,
        row.region,
        period.code(),
        row.state.as_stored(),
        row.work_done,
        row.problems,
        row.next_steps,
        now,
        &row.warnings,
        row.version,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM report_figure WHERE report_id = $1", row.id).execute(&mut *conn).await?;
    let (metrics, values): (Vec<String>, Vec<i64>) =
        figures.0.iter().filter(|(_, value)| **value != 0).map(|(metric, value)| (metric.clone(), *value)).unzip();
    sqlx::query!(
        "INSERT INTO report_figure (report_id, metric, value) SELECT $1, * FROM unnest($2::text[], $3::int8[])",
        row.id,
        &metrics,
        &values,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a report to `state` (its version counts the steps).
pub async fn set_state(conn: &mut PgConnection, id: Uuid, state: State, now: DateTime<Utc>) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE report SET state = $2, version = version + 1, updated_at = $3 WHERE id = $1 RETURNING version",
        id,
        state.as_stored(),
        now,
    )
    .fetch_one(&mut *conn)
    .await
}

pub struct NewStep<'a> {
    pub report_id: Uuid,
    pub action: &'a str,
    pub state: State,
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub actor_region: &'a str,
    pub comment: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn add_step(conn: &mut PgConnection, step: &NewStep<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO report_step (report_id, seq, action, state, actor, actor_role, actor_region, comment, at)
         SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM report_step WHERE report_id = $1",
        step.report_id,
        step.action,
        step.state.as_stored(),
        step.actor,
        step.actor_role,
        step.actor_region,
        step.comment,
        step.at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn steps(conn: &mut PgConnection, report_id: Uuid, region: &str) -> sqlx::Result<Vec<StepRow>> {
    let rows = sqlx::query!(
        "SELECT action, state, actor, actor_role, actor_region, comment, at FROM report_step
          WHERE report_id = $1 ORDER BY seq",
        report_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(StepRow {
                state: state_of(region, &row.state)?,
                action: row.action,
                actor: row.actor,
                actor_role: row.actor_role,
                actor_region: row.actor_region,
                comment: row.comment,
                at: row.at,
            })
        })
        .collect()
}

pub async fn figures(conn: &mut PgConnection, report_id: Uuid) -> sqlx::Result<Figures> {
    let rows = sqlx::query!("SELECT metric, value FROM report_figure WHERE report_id = $1", report_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(Figures(rows.into_iter().map(|row| (row.metric, row.value)).collect()))
}

/// The states of the period's reports under `region`, by county.
pub async fn states_under(
    conn: &mut PgConnection,
    region: &RegionCode,
    period: ReportPeriod,
) -> sqlx::Result<Vec<(String, State)>> {
    let rows = sqlx::query!(
        "SELECT region, state FROM report WHERE period = $1 AND region LIKE $2 || '%' ORDER BY region",
        period.code(),
        region.subtree_prefix(),
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| Ok((state_of(&row.region, &row.state)?, row.region)))
        .map(|pair| pair.map(|(state, region)| (region, state)))
        .collect()
}

/// The sum of the frozen figures of the period's approved and accepted reports under `region`.
pub async fn approved_sum(conn: &mut PgConnection, region: &RegionCode, period: ReportPeriod) -> sqlx::Result<Figures> {
    let rows = sqlx::query!(
        r#"SELECT figure.metric, sum(figure.value)::int8 AS "value!"
             FROM report JOIN report_figure figure ON figure.report_id = report.id
            WHERE report.period = $1 AND report.region LIKE $2 || '%' AND report.state IN ('approved', 'accepted')
            GROUP BY figure.metric"#,
        period.code(),
        region.subtree_prefix(),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Figures(rows.into_iter().map(|row| (row.metric, row.value)).collect()))
}

/// The day the period's reports are due: its own row, or the policy's days after a bi-month's
/// end, four weeks after a semester's.
pub async fn due_on(conn: &mut PgConnection, period: ReportPeriod) -> sqlx::Result<NaiveDate> {
    let set = sqlx::query_scalar!("SELECT due_on FROM report_deadline WHERE period = $1", period.code())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(day) = set {
        return Ok(day);
    }
    if period.is_semester() {
        // A semester report is due four weeks after the semester (the 28th of September in 2020).
        return Ok(period.end() + chrono::Duration::days(28));
    }
    let days = sqlx::query_scalar!("SELECT report_due_days FROM report_policy").fetch_one(&mut *conn).await?;
    Ok(period.end() + chrono::Duration::days(days.into()))
}

/// Records a county's report of a period as late; false when it was already.
pub async fn mark_late(
    conn: &mut PgConnection,
    region: &RegionCode,
    period: ReportPeriod,
    due_on: NaiveDate,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO report_late (region, period, due_on, raised_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (region, period) DO NOTHING",
        region.as_str(),
        period.code(),
        due_on,
    )
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// How many steps a report has (its event's aggregate sequence).
pub async fn step_count(conn: &mut PgConnection, report_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM report_step WHERE report_id = $1"#, report_id)
        .fetch_one(&mut *conn)
        .await
}
