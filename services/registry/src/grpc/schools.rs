//! Schools.

use nol_auth::{Caller, Role};
use nol_messages::{Common, Registry as Message};
use nol_proto::v1::{
    CreateSchoolRequest, GetSchoolRequest, ListSchoolsRequest, ListSchoolsResponse, School, SchoolLevel,
    SchoolOwnership,
};
use nol_runtime::{ServiceError, audit, paging};

use super::Registry;
use crate::domain::columns::*;
use crate::domain::school::{self, Level, Ownership};
use crate::store::schools::{self as store, SchoolRecord};

fn to_proto(school: &SchoolRecord) -> School {
    School {
        school_code: school.code.clone(),
        name: school.name.clone(),
        region_code: school.region.to_string(),
        level: school.level.to_proto() as i32,
        ownership: school.ownership.to_proto() as i32,
        create_time: Some(nol_runtime::time::timestamp(school.created_at)),
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
        let school = request.school.ok_or_else(|| ServiceError::invalid("school", Common::Required))?;
        let level = Level::from_proto(SchoolLevel::try_from(school.level).unwrap_or_default());
        let ownership = Ownership::from_proto(SchoolOwnership::try_from(school.ownership).unwrap_or_default());
        let valid = school::validate(
            &school.school_code,
            &school.name,
            &school.region_code,
            level.as_stored(),
            ownership.as_stored(),
        )
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
            return Err(ServiceError::invalid(
                "school.region_code",
                Message::NotInProvince { province: self.province.name().to_owned() },
            ));
        }
        caller.require_scope(&valid.region)?;
        let mut tx = self.pool.begin().await?;
        if !store::insert(&mut tx, &valid, &caller.subject).await? {
            let existing = store::get(&mut *tx, &valid.code).await?.ok_or(sqlx::Error::RowNotFound)?;
            return Err(ServiceError::already_exists(Message::SchoolExists {
                code: existing.code,
                name: existing.name,
                region: existing.region.to_string(),
            }));
        }
        audit::record(&mut tx, caller, "school.create", "school", std::slice::from_ref(&valid.code)).await?;
        tx.commit().await?;
        let created = store::get(&self.pool, &valid.code).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(to_proto(&created))
    }

    pub(super) async fn get_school(&self, caller: &Caller, request: GetSchoolRequest) -> Result<School, ServiceError> {
        let code = request.school_code.trim();
        let school = store::get(&self.pool, code)
            .await?
            .ok_or_else(|| ServiceError::not_found(Message::SchoolUnknown { code: code.to_owned() }))?;
        caller.require_scope(&school.region)?;
        Ok(to_proto(&school))
    }

    pub(super) async fn list_schools(
        &self,
        caller: &Caller,
        request: ListSchoolsRequest,
    ) -> Result<ListSchoolsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let size = paging::page_size(request.page_size)?;
        let after = Some(request.page_token.as_str()).filter(|token| !token.is_empty());
        let mut schools = store::list(&self.pool, region.subtree_prefix(), after, size + 1).await?;
        let next_page_token = if schools.len() as i64 > size {
            schools.truncate(size as usize);
            schools.last().map(|school| school.code.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListSchoolsResponse { schools: schools.iter().map(to_proto).collect(), next_page_token })
    }
}
