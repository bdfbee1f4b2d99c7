//! The reporting service's SQL: the `region_count` and `handoff_side` tables. Metrics, directions,
//! outcomes and reasons are stored by explicit names (pinned by a test); a stored name that does
//! not decode is an error naming the row.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use nol_region::RegionCode;
use sqlx::{PgConnection, PgPool};

use crate::figures::{self, Figures};
use crate::periods::Period;

use crate::handoffs::{Direction, Outcome, RejectReason, Side, SideFact, Tally};
use crate::metrics::Metric;

/// A metric's total over a region's subtree.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTotal {
    pub metric: Metric,
    pub value: i64,
    /// When the newest event counted in it happened.
    pub last_event_at: DateTime<Utc>,
}

/// A stored name that does not decode: the rows are corrupt (an internal error, never skipped).
#[derive(Debug, thiserror::Error)]
#[error("{table} rows under {prefix:?}: {column} {value:?} does not decode")]
pub struct Undecodable {
    pub table: &'static str,
    pub prefix: String,
    pub column: &'static str,
    pub value: String,
}

fn undecodable(table: &'static str, prefix: &str, column: &'static str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(Undecodable { table, prefix: prefix.to_owned(), column, value: value.to_owned() }))
}

/// Adds `delta` to `region`'s `metric` on `day` (China Standard Time), and to the day's bi-month.
pub async fn bump(
    conn: &mut PgConnection,
    region: &RegionCode,
    metric: &str,
    day: NaiveDate,
    delta: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH daily AS (
             INSERT INTO daily_count (region, metric, day, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (region, metric, day) DO UPDATE SET value = daily_count.value + excluded.value
         )
         INSERT INTO period_count (region, metric, period, value) VALUES ($1, $2, $5, $4)
         ON CONFLICT (region, metric, period) DO UPDATE SET value = period_count.value + excluded.value",
        region.as_str(),
        metric,
        day,
        delta,
        Period::containing(day).code(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The counts one event moves (all on the event's day), collected by `bump` and `add`.
#[derive(Debug)]
pub struct Deltas {
    day: NaiveDate,
    rows: BTreeMap<(String, String), i64>,
    /// `region_count`'s rows: the amount and the event's time, per county and metric.
    totals: BTreeMap<(String, String), (i64, DateTime<Utc>)>,
}

impl Deltas {
    pub fn new(day: NaiveDate) -> Deltas {
        Deltas { day, rows: BTreeMap::new(), totals: BTreeMap::new() }
    }

    pub fn bump(&mut self, region: &RegionCode, metric: &str, delta: i64) {
        *self.rows.entry((region.to_string(), metric.to_owned())).or_default() += delta;
    }

    /// Adds `amount` to each metric of `region`, as of an event that happened at `at`: to the
    /// running totals (`region_count`) and to the day's counts.
    pub fn add(&mut self, region: &RegionCode, metrics: &[Metric], at: DateTime<Utc>, amount: i64) {
        for metric in metrics {
            let stored = metric_as_stored(*metric);
            add_total(&mut self.totals, (region.to_string(), stored.to_owned()), amount, at);
            self.bump(region, stored, amount);
        }
    }
}

/// A running total's row: the amounts summed, the latest event's time kept.
fn add_total(
    totals: &mut BTreeMap<(String, String), (i64, DateTime<Utc>)>,
    key: (String, String),
    amount: i64,
    at: DateTime<Utc>,
) {
    let total = totals.entry(key).or_insert((0, at));
    total.0 += amount;
    total.1 = total.1.max(at);
}

/// The counts a batch of events moves, summed per county, metric and day (and per county and
/// metric for the running totals), and written in one statement to `daily_count`, `period_count`
/// and `region_count` before the batch commits. The totals were an upsert of their own for every
/// event, a round trip each on the write path's way (issue 13).
#[derive(Debug, Default)]
pub struct BatchCounts {
    rows: BTreeMap<(String, String, NaiveDate), i64>,
    totals: BTreeMap<(String, String), (i64, DateTime<Utc>)>,
}

impl BatchCounts {
    pub fn merge(&mut self, deltas: Deltas) {
        for ((region, metric), delta) in deltas.rows {
            *self.rows.entry((region, metric, deltas.day)).or_default() += delta;
        }
        for (key, (amount, at)) in deltas.totals {
            add_total(&mut self.totals, key, amount, at);
        }
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.totals.clear();
    }

    pub async fn write(self, conn: &mut PgConnection) -> sqlx::Result<()> {
        let (mut regions, mut metrics, mut days, mut periods, mut values) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((region, metric, day), value) in self.rows.into_iter().filter(|(_, value)| *value != 0) {
            regions.push(region);
            metrics.push(metric);
            days.push(day);
            periods.push(Period::containing(day).code());
            values.push(value);
        }
        // A total moved by nothing still takes its event's time, as each event's upsert did.
        let (mut total_regions, mut total_metrics, mut total_values, mut total_ats) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((region, metric), (value, at)) in self.totals {
            total_regions.push(region);
            total_metrics.push(metric);
            total_values.push(value);
            total_ats.push(at);
        }
        if regions.is_empty() && total_regions.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "WITH input AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::int8[])
                     AS t (region, metric, day, period, value)
             ),
             daily AS (
                 INSERT INTO daily_count (region, metric, day, value) SELECT region, metric, day, value FROM input
                 ON CONFLICT (region, metric, day) DO UPDATE SET value = daily_count.value + excluded.value
             ),
             totals AS (
                 INSERT INTO region_count (region, metric, value, last_event_at)
                 SELECT * FROM unnest($6::text[], $7::text[], $8::int8[], $9::timestamptz[])
                 ON CONFLICT (region, metric) DO UPDATE
                    SET value = region_count.value + excluded.value,
                        last_event_at = greatest(region_count.last_event_at, excluded.last_event_at)
             )
             INSERT INTO period_count (region, metric, period, value)
             SELECT region, metric, period, sum(value)::int8 FROM input GROUP BY region, metric, period
             ON CONFLICT (region, metric, period) DO UPDATE SET value = period_count.value + excluded.value",
            &regions,
            &metrics,
            &days,
            &periods,
            &values,
            &total_regions,
            &total_metrics,
            &total_values,
            &total_ats,
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// A case reached `status` in `region` on `day` (`causes` when it opens): the balances move from
/// the status and county the case was last seen in — by cause too, when it becomes or stops
/// being active. A case seen for the first time other than opening counts from nowhere.
pub async fn case_moved(
    conn: &mut PgConnection,
    deltas: &mut Deltas,
    case_id: uuid::Uuid,
    region: &RegionCode,
    causes: Option<&[&str]>,
    status: &str,
) -> sqlx::Result<()> {
    let seen = sqlx::query!("SELECT region, status, causes FROM case_seen WHERE case_id = $1 FOR UPDATE", case_id)
        .fetch_optional(&mut *conn)
        .await?;
    let causes: Vec<String> = match (causes, &seen) {
        (Some(causes), _) => causes.iter().map(|cause| (*cause).to_owned()).collect(),
        (None, Some(seen)) => seen.causes.clone(),
        (None, None) => Vec::new(),
    };
    if let Some(seen) = &seen {
        let old_region = RegionCode::parse(&seen.region)
            .map_err(|_| undecodable("case_seen", &seen.region, "region", &seen.region))?;
        if seen.status == status && old_region == *region {
            return Ok(());
        }
        if figures::is_active(&seen.status) {
            deltas.bump(&old_region, &figures::case_status_metric(&seen.status), -1);
            for cause in &seen.causes {
                deltas.bump(&old_region, &figures::cause_metric(cause), -1);
            }
        }
    }
    if figures::is_active(status) {
        deltas.bump(region, &figures::case_status_metric(status), 1);
        for cause in &causes {
            deltas.bump(region, &figures::cause_metric(cause), 1);
        }
    }
    sqlx::query!(
        "INSERT INTO case_seen (case_id, region, status, causes) VALUES ($1, $2, $3, $4)
         ON CONFLICT (case_id) DO UPDATE SET region = excluded.region, status = excluded.status, causes = excluded.causes",
        case_id,
        region.as_str(),
        status,
        &causes,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows of (county, metric, sum within the period, sum up to its end) as each county's resolved
/// figures and its cumulative ones.
fn by_county(rows: impl Iterator<Item = (String, String, i64, i64)>) -> BTreeMap<String, (Figures, Figures)> {
    let mut counties: BTreeMap<String, (Figures, Figures)> = BTreeMap::new();
    for (region, metric, in_period, to_end) in rows {
        let (resolved, cumulative) = counties.entry(region).or_default();
        resolved.add_row(&metric, in_period, to_end);
        cumulative.add_row(&metric, to_end, to_end);
    }
    counties
}

/// Each county-level region's counts under `region` for `period`, from the bi-monthly rollup:
/// flows of the period, balances up to its end; and everything summed up to its end (for the
/// reconciliation).
pub async fn period_figures(
    conn: &mut PgConnection,
    region: &RegionCode,
    period: Period,
) -> sqlx::Result<BTreeMap<String, (Figures, Figures)>> {
    let rows = sqlx::query!(
        r#"SELECT region, metric,
                  coalesce(sum(value) FILTER (WHERE period = $2), 0)::int8 AS "in_period!",
                  sum(value)::int8 AS "to_end!"
             FROM period_count
            WHERE region LIKE $1 || '%' AND period <= $2
            GROUP BY region, metric"#,
        region.subtree_prefix(),
        period.code(),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(by_county(rows.into_iter().map(|row| (row.region, row.metric, row.in_period, row.to_end))))
}

/// Each county-level region's daily counts under `region`, resolved for the days `start..=end`
/// (a semester, or any span that is not a bi-month): flows over those days, balances up to `end`;
/// and everything up to `end`.
pub async fn span_figures(
    conn: &mut PgConnection,
    region: &RegionCode,
    start: NaiveDate,
    end: NaiveDate,
) -> sqlx::Result<BTreeMap<String, (Figures, Figures)>> {
    let rows = sqlx::query!(
        r#"SELECT region, metric,
                  coalesce(sum(value) FILTER (WHERE day >= $2), 0)::int8 AS "in_period!",
                  sum(value)::int8 AS "to_end!"
             FROM daily_count
            WHERE region LIKE $1 || '%' AND day <= $3
            GROUP BY region, metric"#,
        region.subtree_prefix(),
        start,
        end,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(by_county(rows.into_iter().map(|row| (row.region, row.metric, row.in_period, row.to_end))))
}

/// `region`'s figures for each of the `count` periods ending with `last`, oldest first, in one
/// read of the rollup: flows per period, balances carried forward.
pub async fn period_trend(
    conn: &mut PgConnection,
    region: &RegionCode,
    last: Period,
    count: usize,
) -> sqlx::Result<Vec<(Period, Figures)>> {
    let rows = sqlx::query!(
        r#"SELECT period, metric, sum(value)::int8 AS "value!"
             FROM period_count
            WHERE region LIKE $1 || '%' AND period <= $2
            GROUP BY period, metric
            ORDER BY period"#,
        region.subtree_prefix(),
        last.code(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut wanted = vec![last];
    while wanted.len() < count {
        let previous = wanted.last().copied().unwrap_or(last).previous();
        wanted.push(previous);
    }
    wanted.reverse();
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let mut rows = rows.into_iter().peekable();
    let mut trend = Vec::with_capacity(count);
    for period in wanted {
        let mut flows: BTreeMap<String, i64> = BTreeMap::new();
        while let Some(row) = rows.next_if(|row| Period::parse(&row.period).is_ok_and(|seen| seen <= period)) {
            let is_this = Period::parse(&row.period).is_ok_and(|seen| seen == period);
            if figures::is_balance(&row.metric) {
                *balances.entry(row.metric).or_default() += row.value;
            } else if is_this {
                *flows.entry(row.metric).or_default() += row.value;
            }
        }
        let mut resolved = Figures::default();
        for (metric, value) in balances.iter().chain(flows.iter()) {
            resolved.add_row(metric, *value, *value);
        }
        trend.push((period, resolved));
    }
    Ok(trend)
}

/// Every metric counted in the subtree of `region`, summed.
pub async fn totals(pool: &PgPool, region: &RegionCode) -> sqlx::Result<Vec<MetricTotal>> {
    let prefix = region.subtree_prefix();
    let rows = sqlx::query!(
        r#"SELECT metric, sum(value)::int8 AS "value!", max(last_event_at) AS "last_event_at!" FROM region_count
            WHERE region LIKE $1 || '%' GROUP BY metric"#,
        prefix,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let metric = metric_from_stored(&row.metric)
                .ok_or_else(|| undecodable("region_count", prefix, "metric", &row.metric))?;
            Ok(MetricTotal { metric, value: row.value, last_event_at: row.last_event_at })
        })
        .collect()
}

/// Applies what an event that happened at `at` says about one side of a hand-off, under the
/// side's row lock (the rule is [`Side::apply`]).
pub async fn apply_side(conn: &mut PgConnection, fact: &SideFact, at: DateTime<Utc>) -> sqlx::Result<()> {
    let direction = direction_as_stored(fact.direction);
    sqlx::query!(
        "INSERT INTO handoff_side (handoff_id, direction, region, counted, last_event_at) VALUES ($1, $2, $3, false, $4)
         ON CONFLICT (handoff_id, direction) DO NOTHING",
        fact.handoff_id,
        direction,
        fact.region.as_str(),
        at,
    )
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query!(
        "SELECT counted, outcome, reject_reason, decision_due_on, due_announced_at, last_event_at FROM handoff_side
          WHERE handoff_id = $1 AND direction = $2
            FOR UPDATE",
        fact.handoff_id,
        direction,
    )
    .fetch_one(&mut *conn)
    .await?;
    let outcome = outcome_from_row(fact.region.as_str(), row.outcome.as_deref(), row.reject_reason.as_deref())?;
    let side = Side {
        counted: row.counted,
        outcome,
        due: row.decision_due_on.zip(row.due_announced_at),
        last_event_at: row.last_event_at,
    };
    if side.contradicts(fact.fact) {
        tracing::warn!(
            handoff_id = %fact.handoff_id, direction, kept = ?side.outcome, ignored = ?fact.fact,
            "a second, different outcome for one side of a hand-off ignored"
        );
    }
    let next = side.apply(fact.fact, at);
    if next == side {
        return Ok(());
    }
    if next.counted && !side.counted {
        let metric = match fact.direction {
            Direction::Outgoing => figures::HANDOFFS_OUT,
            Direction::Incoming => figures::HANDOFFS_IN,
        };
        bump(conn, &fact.region, metric, nol_runtime::clock::china_date(at), 1).await?;
    }
    let (decision_due_on, due_announced_at) = next.due.unzip();
    sqlx::query!(
        "UPDATE handoff_side
            SET counted = $3, outcome = $4, reject_reason = $5, decision_due_on = $6, due_announced_at = $7,
                last_event_at = $8
          WHERE handoff_id = $1 AND direction = $2",
        fact.handoff_id,
        direction,
        next.counted,
        next.outcome.map(outcome_as_stored),
        match next.outcome {
            Some(Outcome::Rejected(reason)) => Some(reason_as_stored(reason)),
            _ => None,
        },
        decision_due_on,
        due_announced_at,
        next.last_event_at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The hand-off sides of `region`'s subtree, outgoing and incoming, with overdue reckoned on
/// `today`; and when the newest event counted in them happened.
pub async fn handoff_tallies(
    pool: &PgPool,
    region: &RegionCode,
    today: NaiveDate,
) -> sqlx::Result<(Tally, Tally, Option<DateTime<Utc>>)> {
    let prefix = region.subtree_prefix();
    let rows = sqlx::query!(
        r#"SELECT direction, outcome, reject_reason, count(*) AS "sides!",
                  count(*) FILTER (WHERE outcome IS NULL AND decision_due_on < $2) AS "overdue!",
                  max(last_event_at) AS "last_event_at!"
             FROM handoff_side
            WHERE region LIKE $1 || '%' AND counted
            GROUP BY direction, outcome, reject_reason"#,
        prefix,
        today,
    )
    .fetch_all(pool)
    .await?;
    let (mut outgoing, mut incoming, mut newest) = (Tally::default(), Tally::default(), None);
    for row in rows {
        let direction = direction_from_stored(&row.direction)
            .ok_or_else(|| undecodable("handoff_side", prefix, "direction", &row.direction))?;
        let outcome = outcome_from_row(prefix, row.outcome.as_deref(), row.reject_reason.as_deref())?;
        let tally = match direction {
            Direction::Outgoing => &mut outgoing,
            Direction::Incoming => &mut incoming,
        };
        tally.add(outcome, row.sides, row.overdue);
        newest = newest.max(Some(row.last_event_at));
    }
    Ok((outgoing, incoming, newest))
}

fn direction_as_stored(direction: Direction) -> &'static str {
    match direction {
        Direction::Outgoing => "outgoing",
        Direction::Incoming => "incoming",
    }
}

fn direction_from_stored(text: &str) -> Option<Direction> {
    Some(match text {
        "outgoing" => Direction::Outgoing,
        "incoming" => Direction::Incoming,
        _ => return None,
    })
}

/// A stored side's outcome, from its outcome and reason columns.
fn outcome_from_row(prefix: &str, outcome: Option<&str>, reason: Option<&str>) -> sqlx::Result<Option<Outcome>> {
    Ok(match (outcome, reason) {
        (None, _) => None,
        (Some("rejected"), Some(reason)) => Some(Outcome::Rejected(
            reason_from_stored(reason).ok_or_else(|| undecodable("handoff_side", prefix, "reject_reason", reason))?,
        )),
        (Some(outcome), _) => {
            Some(outcome_from_stored(outcome).ok_or_else(|| undecodable("handoff_side", prefix, "outcome", outcome))?)
        }
    })
}

/// The stored outcome; a rejection's reason is stored beside it.
fn outcome_as_stored(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Accepted => "accepted",
        Outcome::Rejected(_) => "rejected",
        Outcome::Cancelled => "cancelled",
    }
}

/// An outcome other than a rejection (which is read with its reason).
fn outcome_from_stored(text: &str) -> Option<Outcome> {
    Some(match text {
        "accepted" => Outcome::Accepted,
        "cancelled" => Outcome::Cancelled,
        _ => return None,
    })
}

fn reason_as_stored(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::ChildNotFound => "child_not_found",
        RejectReason::HukouNotHere => "hukou_not_here",
        RejectReason::AlreadyHasCase => "already_has_case",
        RejectReason::DataWrong => "data_wrong",
        RejectReason::Other => "other",
    }
}

fn reason_from_stored(text: &str) -> Option<RejectReason> {
    RejectReason::ALL.into_iter().find(|reason| reason_as_stored(*reason) == text)
}

/// The stored name of each metric: an explicit mapping, never derived from the variant's name.
fn metric_as_stored(metric: Metric) -> &'static str {
    match metric {
        Metric::PupilsRegistered => "pupils_registered",
        Metric::CasesOpened => "cases_opened",
        Metric::CasesTakenIn => "cases_taken_in",
        Metric::CasesHandedOut => "cases_handed_out",
        Metric::CasesReturned => "cases_returned",
        Metric::CasesRelapsed => "cases_relapsed",
        Metric::CasesHomeTeaching => "cases_home_teaching",
        Metric::CasesDeferred => "cases_deferred",
        Metric::CasesSuspended => "cases_suspended",
        Metric::CasesExempt => "cases_exempt",
        Metric::CasesClosed => "cases_closed",
        Metric::PersuasionAttempts => "persuasion_attempts",
        Metric::JointPersuasionAttempts => "joint_persuasion_attempts",
    }
}

fn metric_from_stored(text: &str) -> Option<Metric> {
    Some(match text {
        "pupils_registered" => Metric::PupilsRegistered,
        "cases_opened" => Metric::CasesOpened,
        "cases_taken_in" => Metric::CasesTakenIn,
        "cases_handed_out" => Metric::CasesHandedOut,
        "cases_returned" => Metric::CasesReturned,
        "cases_relapsed" => Metric::CasesRelapsed,
        "cases_home_teaching" => Metric::CasesHomeTeaching,
        "cases_deferred" => Metric::CasesDeferred,
        "cases_suspended" => Metric::CasesSuspended,
        "cases_exempt" => Metric::CasesExempt,
        "cases_closed" => Metric::CasesClosed,
        "persuasion_attempts" => Metric::PersuasionAttempts,
        "joint_persuasion_attempts" => Metric::JointPersuasionAttempts,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_pinned() {
        let pinned = [
            (Metric::PupilsRegistered, "pupils_registered"),
            (Metric::CasesOpened, "cases_opened"),
            (Metric::CasesTakenIn, "cases_taken_in"),
            (Metric::CasesHandedOut, "cases_handed_out"),
            (Metric::CasesReturned, "cases_returned"),
            (Metric::CasesRelapsed, "cases_relapsed"),
            (Metric::CasesHomeTeaching, "cases_home_teaching"),
            (Metric::CasesDeferred, "cases_deferred"),
            (Metric::CasesSuspended, "cases_suspended"),
            (Metric::CasesExempt, "cases_exempt"),
            (Metric::CasesClosed, "cases_closed"),
            (Metric::PersuasionAttempts, "persuasion_attempts"),
            (Metric::JointPersuasionAttempts, "joint_persuasion_attempts"),
        ];
        assert_eq!(pinned.len(), Metric::ALL.len(), "every metric is pinned");
        for (metric, stored) in pinned {
            assert_eq!(metric_as_stored(metric), stored);
            assert_eq!(metric_from_stored(stored), Some(metric));
        }
        assert_eq!(metric_from_stored("CasesOpened"), None);
    }

    #[test]
    fn a_batch_sums_each_total_once_with_its_latest_event_time() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let at =
            |minute: u32| DateTime::parse_from_rfc3339(&format!("2026-11-02T01:{minute:02}:00Z")).unwrap().to_utc();
        let (xuanwu, qinhuai) = (RegionCode::parse("320102").unwrap(), RegionCode::parse("320104").unwrap());
        let mut batch = BatchCounts::default();
        for (region, minute, amount) in [(&xuanwu, 5, 1), (&xuanwu, 3, 2), (&qinhuai, 1, 1), (&xuanwu, 4, 0)] {
            let mut deltas = Deltas::new(day);
            deltas.add(region, &[Metric::PupilsRegistered], at(minute), amount);
            batch.merge(deltas);
        }
        let total = |region: &RegionCode| batch.totals[&(region.to_string(), "pupils_registered".to_owned())];
        // One upsert row a county and metric: the amounts summed, the latest event's time, even
        // from an event that moved nothing (as the per-event upserts kept it).
        assert_eq!(total(&xuanwu), (3, at(5)));
        assert_eq!(total(&qinhuai), (1, at(1)));
        assert_eq!(batch.totals.len(), 2);
        assert_eq!(batch.rows[&("320102".to_owned(), "pupils_registered".to_owned(), day)], 3);
        batch.clear();
        assert!(batch.totals.is_empty() && batch.rows.is_empty());
    }

    #[test]
    fn hand_off_names_are_pinned() {
        for (direction, stored) in [(Direction::Outgoing, "outgoing"), (Direction::Incoming, "incoming")] {
            assert_eq!(direction_as_stored(direction), stored);
            assert_eq!(direction_from_stored(stored), Some(direction));
        }
        for (outcome, stored) in [(Outcome::Accepted, "accepted"), (Outcome::Cancelled, "cancelled")] {
            assert_eq!(outcome_as_stored(outcome), stored);
            assert_eq!(outcome_from_stored(stored), Some(outcome));
        }
        assert_eq!(outcome_as_stored(Outcome::Rejected(RejectReason::Other)), "rejected");
        let reasons = RejectReason::ALL.map(reason_as_stored);
        assert_eq!(reasons, ["child_not_found", "hukou_not_here", "already_has_case", "data_wrong", "other"]);
        for reason in RejectReason::ALL {
            assert_eq!(reason_from_stored(reason_as_stored(reason)), Some(reason));
        }
    }
}
