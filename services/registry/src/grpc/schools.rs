//! Schools.

use nol_auth::{Caller, Role};
use nol_proto::v1::{CreateSchoolRequest, GetSchoolRequest, ListSchoolsRequest, ListSchoolsResponse, School};
use nol_region::RegionCode;
use nol_runtime::{ServiceError, audit, paging};

use super::Registry;
use crate::domain::columns::*;
use crate::domain::school::{self, level_from_name, ownership_from_name};
use crate::store::schools::{self as store, SchoolRow};

fn to_proto(row: &SchoolRow) -> School {
    School {
        school_code: row.code.clone(),
        name: row.name.clone(),
        region_code: row.region.clone(),
        level: level_from_name(&row.level).unwrap_or_default() as i32,
        ownership: ownership_from_name(&row.ownership).unwrap_or_default() as i32,
        create_time: Some(nol_runtime::time::timestamp(row.created_at)),
    }
}

impl Registry {
    pub(super) async fn create_school(
        &self,
        caller: &Caller,
        request: CreateSchoolRequest,
    ) -> Result<School, ServiceError> {
        caller.require_role(
            &[Role::Caseworker, Role::Supervisor, Role::System],
            nol_messages::vocab::Action::RegisterSchools,
        )?;
        let school = request.school.ok_or_else(|| ServiceError::invalid("school", "is required"))?;
        let level = school::level_name(nol_proto::v1::SchoolLevel::try_from(school.level).unwrap_or_default());
        let ownership =
            school::ownership_name(nol_proto::v1::SchoolOwnership::try_from(school.ownership).unwrap_or_default());
        let valid = school::validate(&school.school_code, &school.name, &school.region_code, level, ownership)
            .map_err(|problems| {
                ServiceError::Invalid(
                    problems
                        .into_iter()
                        .map(|(key, reason)| {
                            let field = match key {
                                SCHOOL_CODE => "school.school_code",
                                SCHOOL_NAME => "school.name",
                                REGION => "school.region_code",
                                LEVEL => "school.level",
                                _ => "school.ownership",
                            };
                            nol_runtime::FieldViolation::new(field, reason)
                        })
                        .collect(),
                )
            })?;
        if valid.region.province() != self.province {
            return Err(ServiceError::invalid("school.region_code", format!("is not in {}", self.province.name())));
        }
        caller.require_scope(&valid.region)?;
        let mut tx = self.pool.begin().await?;
        if !store::insert(&mut tx, &valid, &caller.subject).await? {
            let existing = store::get(&mut *tx, &valid.code).await?.ok_or(sqlx::Error::RowNotFound)?;
            return Err(ServiceError::already_exists(format!(
                "school {} is already registered as {} in {}",
                existing.code, existing.name, existing.region
            )));
        }
        audit::record(&mut tx, caller, "school.create", "school", std::slice::from_ref(&valid.code)).await?;
        tx.commit().await?;
        let row = store::get(&self.pool, &valid.code).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(to_proto(&row))
    }

    pub(super) async fn get_school(&self, caller: &Caller, request: GetSchoolRequest) -> Result<School, ServiceError> {
        let row = store::get(&self.pool, request.school_code.trim())
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no school {}", request.school_code.trim())))?;
        caller.require_scope(&RegionCode::parse(&row.region).map_err(anyhow::Error::from)?)?;
        Ok(to_proto(&row))
    }

    pub(super) async fn list_schools(
        &self,
        caller: &Caller,
        request: ListSchoolsRequest,
    ) -> Result<ListSchoolsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let size = paging::page_size(request.page_size)?;
        let after = Some(request.page_token.as_str()).filter(|token| !token.is_empty());
        let mut rows = store::list(&self.pool, region.subtree_prefix(), after, size + 1).await?;
        let next_page_token = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last().map(|row| row.code.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListSchoolsResponse { schools: rows.iter().map(to_proto).collect(), next_page_token })
    }
}
