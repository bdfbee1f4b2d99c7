//! The reporting service's SQL: the `region_count` table. Metrics are stored by an explicit name
//! (pinned by a test); a stored name that does not decode is an error naming the row.

use chrono::{DateTime, Utc};
use nol_region::RegionCode;
use sqlx::{PgConnection, PgPool};

use crate::metrics::Metric;

/// A metric's total over a region's subtree.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTotal {
    pub metric: Metric,
    pub value: i64,
    /// When the newest event counted in it happened.
    pub last_event_at: DateTime<Utc>,
}

/// A stored metric name that does not decode: the rows are corrupt (an internal error, never
/// skipped).
#[derive(Debug, thiserror::Error)]
#[error("region_count rows of metric {metric:?} under {prefix:?}: the metric does not decode")]
pub struct Undecodable {
    pub prefix: String,
    pub metric: String,
}

/// Adds `amount` to each metric of `region`, as of an event that happened at `at`.
pub async fn add(
    conn: &mut PgConnection,
    region: &RegionCode,
    metrics: &[Metric],
    at: DateTime<Utc>,
    amount: i64,
) -> sqlx::Result<()> {
    for metric in metrics {
        sqlx::query!(
            "INSERT INTO region_count (region, metric, value, last_event_at) VALUES ($1, $2, $4, $3)
             ON CONFLICT (region, metric) DO UPDATE
                SET value = region_count.value + excluded.value,
                    last_event_at = greatest(region_count.last_event_at, excluded.last_event_at)",
            region.as_str(),
            metric_as_stored(*metric),
            at,
            amount,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
            let metric = metric_from_stored(&row.metric).ok_or_else(|| {
                sqlx::Error::Decode(Box::new(Undecodable { prefix: prefix.to_owned(), metric: row.metric.clone() }))
            })?;
            Ok(MetricTotal { metric, value: row.value, last_event_at: row.last_event_at })
        })
        .collect()
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
}
