//! Schools.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nol_region::RegionCode;
use sqlx::{PgConnection, PgPool};

use super::{Undecodable, decode, region};
use crate::domain::school::{Level, Ownership, ValidSchool};

/// A school as stored.
struct SchoolRow {
    code: String,
    name: String,
    region: String,
    level: String,
    ownership: String,
    created_at: DateTime<Utc>,
}

/// A registered school.
#[derive(Debug, Clone)]
pub struct SchoolRecord {
    pub code: String,
    pub name: String,
    /// The county.
    pub region: RegionCode,
    pub level: Level,
    pub ownership: Ownership,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<SchoolRow> for SchoolRecord {
    type Error = Undecodable;

    fn try_from(row: SchoolRow) -> Result<SchoolRecord, Undecodable> {
        Ok(SchoolRecord {
            region: region("school", &row.code, "region", &row.region)?,
            level: decode("school", &row.code, "level", &row.level, Level::from_stored)?,
            ownership: decode("school", &row.code, "ownership", &row.ownership, Ownership::from_stored)?,
            code: row.code,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

/// Inserts a school unless its code exists; returns whether it was inserted.
pub async fn insert(conn: &mut PgConnection, school: &ValidSchool, created_by: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO school (code, name, region, level, ownership, created_by) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (code) DO NOTHING",
        &school.code,
        &school.name,
        school.region.as_str(),
        school.level.as_stored(),
        school.ownership.as_stored(),
        created_by,
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, code: &str) -> sqlx::Result<Option<SchoolRecord>> {
    let row = sqlx::query_as!(
        SchoolRow,
        "SELECT code, name, region, level, ownership, created_at FROM school WHERE code = $1",
        code
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(SchoolRecord::try_from).transpose()?)
}

pub async fn list(pool: &PgPool, prefix: &str, after: Option<&str>, limit: i64) -> sqlx::Result<Vec<SchoolRecord>> {
    let rows = sqlx::query_as!(
        SchoolRow,
        "SELECT code, name, region, level, ownership, created_at FROM school
          WHERE region LIKE $1 || '%' AND ($2::text IS NULL OR code > $2)
          ORDER BY code LIMIT $3",
        prefix,
        after,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(SchoolRecord::try_from).collect::<Result<_, _>>()?)
}

/// Every school of the province: code → (county, name). Five thousand schools fit in memory, and
/// an import checks every row against them.
pub async fn all(pool: &PgPool) -> sqlx::Result<HashMap<String, (RegionCode, String)>> {
    let rows = sqlx::query!("SELECT code, region, name FROM school").fetch_all(pool).await?;
    let mut schools = HashMap::with_capacity(rows.len());
    for row in rows {
        let county = region("school", &row.code, "region", &row.region)?;
        schools.insert(row.code, (county, row.name));
    }
    Ok(schools)
}

/// Inserts a batch of schools, skipping codes already registered; returns the codes inserted.
pub async fn insert_batch(
    conn: &mut PgConnection,
    created_by: &str,
    schools: &[ValidSchool],
) -> sqlx::Result<Vec<String>> {
    let codes: Vec<&str> = schools.iter().map(|school| school.code.as_str()).collect();
    let names: Vec<&str> = schools.iter().map(|school| school.name.as_str()).collect();
    let regions: Vec<&str> = schools.iter().map(|school| school.region.as_str()).collect();
    let levels: Vec<&str> = schools.iter().map(|school| school.level.as_stored()).collect();
    let ownerships: Vec<&str> = schools.iter().map(|school| school.ownership.as_stored()).collect();
    sqlx::query_scalar!(
        r#"INSERT INTO school (code, name, region, level, ownership, created_by)
           SELECT code, name, region, level, ownership, $6
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(code, name, region, level, ownership)
           ON CONFLICT (code) DO NOTHING
           RETURNING code AS "code!""#,
        &codes as _,
        &names as _,
        &regions as _,
        &levels as _,
        &ownerships as _,
        created_by,
    )
    .fetch_all(conn)
    .await
}

pub async fn get_many(conn: &mut PgConnection, codes: &[String]) -> sqlx::Result<Vec<SchoolRecord>> {
    let rows = sqlx::query_as!(
        SchoolRow,
        "SELECT code, name, region, level, ownership, created_at FROM school WHERE code = ANY($1)",
        codes
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(SchoolRecord::try_from).collect::<Result<_, _>>()?)
}

/// Registered schools as the calls that name one look them up (`CreatePupil`, `TransferPupil`),
/// kept in memory: the school's county is what scopes the call, and it was a round trip and a
/// freshly planned statement on every registration (issue 13).
///
/// Safe to keep because a school is registered once and then never deleted nor renumbered (the
/// database refuses both) and nothing in the system changes it; a row changed by hand is seen at
/// most [`SCHOOL_KEPT_FOR`] later, by every replica. A code not found is not kept, so a school
/// registered a moment ago is found on the next call.
#[derive(Clone)]
pub struct SchoolCache {
    known: Arc<quick_cache::sync::Cache<String, (SchoolRecord, Instant)>>,
}

/// How long a school looked up is believed without asking the database again.
pub const SCHOOL_KEPT_FOR: Duration = Duration::from_secs(60);

/// How many schools are kept: a province of 50,000 schools fits (about 200 bytes a school).
const SCHOOLS_KEPT: usize = 60_000;

impl Default for SchoolCache {
    fn default() -> SchoolCache {
        SchoolCache { known: Arc::new(quick_cache::sync::Cache::new(SCHOOLS_KEPT)) }
    }
}

impl SchoolCache {
    /// The school with this code, from memory when looked up less than [`SCHOOL_KEPT_FOR`] ago.
    pub async fn get(&self, pool: &PgPool, code: &str) -> sqlx::Result<Option<SchoolRecord>> {
        if let Some(school) = self.kept(code, Instant::now()) {
            return Ok(Some(school));
        }
        let found = get(pool, code).await?;
        if let Some(school) = &found {
            self.keep(school, Instant::now());
        }
        Ok(found)
    }

    fn kept(&self, code: &str, now: Instant) -> Option<SchoolRecord> {
        let (school, at) = self.known.get(code)?;
        (now.saturating_duration_since(at) < SCHOOL_KEPT_FOR).then_some(school)
    }

    fn keep(&self, school: &SchoolRecord, now: Instant) {
        self.known.insert(school.code.clone(), (school.clone(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn school(code: &str, name: &str) -> SchoolRecord {
        SchoolRecord {
            code: code.into(),
            name: name.into(),
            region: RegionCode::parse("320102").unwrap(),
            level: Level::Primary,
            ownership: Ownership::Public,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_school_is_kept_for_a_minute_then_asked_for_again() {
        let cache = SchoolCache::default();
        let start = Instant::now();
        assert!(cache.kept("3201020001", start).is_none(), "nothing is kept before it is looked up");
        cache.keep(&school("3201020001", "南京市玄武区示范小学"), start);
        let kept = cache.kept("3201020001", start + SCHOOL_KEPT_FOR - Duration::from_millis(1)).unwrap();
        assert_eq!((kept.name.as_str(), kept.region.as_str()), ("南京市玄武区示范小学", "320102"));
        assert!(cache.kept("3201020001", start + SCHOOL_KEPT_FOR).is_none(), "a minute on, the database is asked");
        assert!(cache.kept("3201020002", start).is_none(), "another code is another school");
        // Looked up again: kept again from then, and shared by the clones.
        cache.keep(&school("3201020001", "南京市玄武区实验小学"), start + SCHOOL_KEPT_FOR);
        let clone = cache.clone();
        assert_eq!(clone.kept("3201020001", start + SCHOOL_KEPT_FOR).unwrap().name, "南京市玄武区实验小学");
    }
}
