//! The consolidation rate (巩固率, R1's 100% target): grade-9 graduates of a year ÷ the cohort's
//! grade-1 entrants nine years before. Entrants come from the bureaus' file, per county and entry
//! year; graduates from the registry's status changes. A rate is shown only over the counties
//! whose entrants are known — never invented.

use std::collections::BTreeMap;

use chrono::Datelike;
use nol_auth::{Caller, Role};
use nol_messages::vocab::Action;
use nol_messages::{FieldViolation, Reporting as Says};
use nol_region::RegionCode;
use nol_runtime::ServiceError;
use nol_tabular::{Column, Encoding, Format, TableReader};
use sqlx::PgPool;

/// The most bytes a cohort file may hold.
const MAX_FILE: usize = 5 * 1024 * 1024;
/// Years of compulsory education: a cohort entering in year Y graduates in Y + 9.
pub const YEARS: i32 = 9;
/// The bad rows named in one refusal.
const MAX_VIOLATIONS: usize = 50;

const COLUMNS: [Column; 3] = [
    Column { key: "region", headers: &["地区代码", "行政区划代码", "region_code"], required: true },
    Column { key: "year", headers: &["入学年份", "entry_year"], required: true },
    Column { key: "entrants", headers: &["一年级入学人数", "入学人数", "entrants"], required: true },
];

/// One checked row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrants {
    pub region: RegionCode,
    pub entry_year: i32,
    pub entrants: i64,
}

/// Reads and checks a whole file: every row, or the bad rows named.
pub fn read(caller: &Caller, file_name: &str, content: &[u8], this_year: i32) -> Result<Vec<Entrants>, ServiceError> {
    let format =
        Format::from_file_name(file_name).ok_or_else(|| ServiceError::invalid("file_name", Says::CohortFormat))?;
    if content.len() > MAX_FILE {
        return Err(ServiceError::invalid("content", Says::CohortTooLarge));
    }
    let mut file = tempfile::NamedTempFile::new().map_err(|error| ServiceError::Internal(error.into()))?;
    std::io::Write::write_all(&mut file, content).map_err(|error| ServiceError::Internal(error.into()))?;
    let file_error = |error: nol_tabular::TableError| match error.message() {
        Some(message) => ServiceError::invalid("content", message),
        None => ServiceError::Internal(error.into()),
    };
    let reader = TableReader::open(file.path(), format, Encoding::Auto, &COLUMNS).map_err(file_error)?;
    let columns = reader.columns();
    let mut rows = Vec::new();
    let mut violations = Vec::new();
    let mut seen = BTreeMap::new();
    for row in reader {
        let row = row.map_err(file_error)?;
        let field = |column: &str| format!("rows[{}].{column}", row.number);
        let (region, year, entrants) =
            (columns.cell(&row, "region"), columns.cell(&row, "year"), columns.cell(&row, "entrants"));
        if region.is_empty() && year.is_empty() && entrants.is_empty() {
            continue;
        }
        let parsed_region = RegionCode::parse(region).ok().filter(|code| code.node().county_level && caller.sees(code));
        let parsed_year = year.parse::<i32>().ok().filter(|year| (2000..=this_year).contains(year));
        let parsed_entrants =
            entrants.replace([',', '，'], "").parse::<i64>().ok().filter(|count| (1..=10_000_000).contains(count));
        if parsed_region.is_none() {
            violations.push(FieldViolation::new(field("地区代码"), Says::CohortRegion { value: region.to_owned() }));
        }
        if parsed_year.is_none() {
            violations.push(FieldViolation::new(field("入学年份"), Says::CohortYear { value: year.to_owned() }));
        }
        if parsed_entrants.is_none() {
            violations.push(FieldViolation::new(
                field("一年级入学人数"),
                Says::CohortEntrants { value: entrants.to_owned() },
            ));
        }
        if let (Some(region), Some(entry_year), Some(entrants)) = (parsed_region, parsed_year, parsed_entrants) {
            if seen.insert((region, entry_year), row.number).is_some() {
                violations.push(FieldViolation::new(
                    field("地区代码"),
                    Says::CohortDuplicate { region: region.full_name(), year: entry_year.to_string() },
                ));
            }
            rows.push(Entrants { region, entry_year, entrants });
        }
        if violations.len() >= MAX_VIOLATIONS {
            break;
        }
    }
    if !violations.is_empty() {
        return Err(ServiceError::Invalid(violations));
    }
    if rows.is_empty() {
        return Err(ServiceError::invalid("content", Says::CohortEmpty));
    }
    Ok(rows)
}

/// ImportCohortEntrants: a city's or the province's bureau (or a bureau system) replaces the
/// entrants it sends, in one transaction, audited.
pub async fn import(
    pool: &PgPool,
    caller: &Caller,
    file_name: &str,
    content: &[u8],
    today: chrono::NaiveDate,
) -> Result<i32, ServiceError> {
    caller.require_role(&[Role::Supervisor, Role::System], Action::ImportCohortFiles)?;
    let rows = read(caller, file_name, content, today.year())?;
    let mut tx = pool.begin().await?;
    let regions: Vec<String> = rows.iter().map(|row| row.region.to_string()).collect();
    let years: Vec<i32> = rows.iter().map(|row| row.entry_year).collect();
    let entrants: Vec<i64> = rows.iter().map(|row| row.entrants).collect();
    sqlx::query!(
        "INSERT INTO cohort_entrants (region, entry_year, entrants, imported_at, imported_by)
         SELECT region, entry_year, entrants, now(), $4 FROM unnest($1::text[], $2::int4[], $3::int8[])
             AS t (region, entry_year, entrants)
         ON CONFLICT (region, entry_year) DO UPDATE
            SET entrants = excluded.entrants, imported_at = excluded.imported_at, imported_by = excluded.imported_by",
        &regions,
        &years,
        &entrants,
        &caller.subject,
    )
    .execute(&mut *tx)
    .await?;
    nol_runtime::audit::record(&mut tx, caller, "cohort_entrants.import", "cohort_file", &[file_name.to_owned()])
        .await?;
    tx.commit().await?;
    Ok(rows.len() as i32)
}

/// One graduation year of a region.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub graduation_year: i32,
    pub entrants: i64,
    pub graduates: i64,
    pub counties: i32,
}

impl Rate {
    pub fn rate(&self) -> f64 {
        self.graduates as f64 / self.entrants as f64
    }
}

/// The rates of `region` by graduation year, newest first, over the counties whose entrants are
/// known for each cohort.
pub async fn rates(pool: &PgPool, region: &RegionCode) -> Result<Vec<Rate>, ServiceError> {
    let rows = sqlx::query!(
        r#"SELECT cohort.entry_year + 9 AS "graduation_year!", sum(cohort.entrants)::int8 AS "entrants!",
                  coalesce(sum(graduated.value), 0)::int8 AS "graduates!", count(*)::int4 AS "counties!"
             FROM cohort_entrants cohort
             LEFT JOIN LATERAL (
                 SELECT sum(value) AS value FROM daily_count
                  WHERE daily_count.region = cohort.region AND metric = 'pupils_graduated'
                    AND extract(year FROM day) = cohort.entry_year + 9
             ) graduated ON true
            WHERE cohort.region LIKE $1 || '%'
            GROUP BY cohort.entry_year
            ORDER BY cohort.entry_year DESC"#,
        region.subtree_prefix(),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Rate {
            graduation_year: row.graduation_year,
            entrants: row.entrants,
            graduates: row.graduates,
            counties: row.counties,
        })
        .collect())
}

/// The headline: the newest year that has graduates over known entrants.
pub fn headline(rates: &[Rate]) -> Option<&Rate> {
    rates.iter().find(|rate| rate.graduates > 0 && rate.entrants > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(region: &str) -> Caller {
        Caller::for_tests(RegionCode::parse(region).unwrap(), Role::Supervisor)
    }

    #[test]
    fn a_good_file_is_read_whole() {
        let csv = "地区代码,入学年份,一年级入学人数\n320102,2017,\"1,204\"\n320104,2017,980\n\n";
        let rows = read(&caller("320100"), "入学人数.csv", csv.as_bytes(), 2026).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].entrants, 1204);
    }

    #[test]
    fn bad_rows_are_named_and_nothing_is_read() {
        let csv = "地区代码,入学年份,一年级入学人数\n320102,2017,1204\n320500,1999,abc\n320102,2017,5\n";
        let Err(ServiceError::Invalid(violations)) = read(&caller("320100"), "x.csv", csv.as_bytes(), 2026) else {
            panic!("refused")
        };
        let fields: Vec<&str> = violations.iter().map(|violation| violation.field.as_str()).collect();
        assert_eq!(fields, ["rows[3].地区代码", "rows[3].入学年份", "rows[3].一年级入学人数", "rows[4].地区代码"]);
        assert!(violations[0].message.zh().contains("管辖范围"));
        assert!(matches!(read(&caller("320100"), "x.pdf", b"", 2026), Err(ServiceError::Invalid(_))));
    }

    #[test]
    fn the_headline_is_the_newest_year_with_graduates() {
        let rate = |year, graduates| Rate { graduation_year: year, entrants: 100, graduates, counties: 1 };
        let rates = [rate(2027, 0), rate(2026, 99)];
        assert_eq!(headline(&rates).map(|rate| rate.graduation_year), Some(2026));
        assert!((rates[1].rate() - 0.99).abs() < 1e-9);
        assert_eq!(headline(&[]), None);
    }
}
