//! Schools.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::school::{ValidSchool, level_name, ownership_name};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SchoolRow {
    pub code: String,
    pub name: String,
    pub region: String,
    pub level: String,
    pub ownership: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts a school unless its code exists; returns whether it was inserted.
pub async fn insert(conn: &mut PgConnection, school: &ValidSchool, created_by: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO school (code, name, region, level, ownership, created_by) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(&school.code)
    .bind(&school.name)
    .bind(school.region.as_str())
    .bind(level_name(school.level))
    .bind(ownership_name(school.ownership))
    .bind(created_by)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get<'c>(executor: impl sqlx::PgExecutor<'c>, code: &str) -> sqlx::Result<Option<SchoolRow>> {
    sqlx::query_as::<_, SchoolRow>(
        "SELECT code, name, region, level, ownership, created_at FROM school WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(executor)
    .await
}

pub async fn list(pool: &PgPool, prefix: &str, after: Option<&str>, limit: i64) -> sqlx::Result<Vec<SchoolRow>> {
    sqlx::query_as::<_, SchoolRow>(
        "SELECT code, name, region, level, ownership, created_at FROM school
          WHERE region LIKE $1 || '%' AND ($2::text IS NULL OR code > $2)
          ORDER BY code LIMIT $3",
    )
    .bind(prefix)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every school of the province: code → (county, name). Five thousand schools fit in memory, and
/// an import checks every row against them.
pub async fn all(pool: &PgPool) -> sqlx::Result<HashMap<String, (String, String)>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, region, name FROM school").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(code, region, name)| (code, (region, name))).collect())
}

/// Inserts a batch of schools, skipping codes already registered; returns the codes inserted.
pub async fn insert_batch(
    conn: &mut PgConnection,
    created_by: &str,
    schools: &[ValidSchool],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "INSERT INTO school (code, name, region, level, ownership, created_by)
         SELECT code, name, region, level, ownership, $6
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(code, name, region, level, ownership)
         ON CONFLICT (code) DO NOTHING
         RETURNING code",
    )
    .bind(schools.iter().map(|school| school.code.as_str()).collect::<Vec<_>>())
    .bind(schools.iter().map(|school| school.name.as_str()).collect::<Vec<_>>())
    .bind(schools.iter().map(|school| school.region.as_str()).collect::<Vec<_>>())
    .bind(schools.iter().map(|school| level_name(school.level)).collect::<Vec<_>>())
    .bind(schools.iter().map(|school| ownership_name(school.ownership)).collect::<Vec<_>>())
    .bind(created_by)
    .fetch_all(conn)
    .await
}

pub async fn get_many(conn: &mut PgConnection, codes: &[String]) -> sqlx::Result<Vec<SchoolRow>> {
    sqlx::query_as::<_, SchoolRow>(
        "SELECT code, name, region, level, ownership, created_at FROM school WHERE code = ANY($1)",
    )
    .bind(codes)
    .fetch_all(conn)
    .await
}
