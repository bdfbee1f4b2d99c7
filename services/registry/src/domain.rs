//! The registry's rules: what a valid pupil record is. No I/O.

use chrono::NaiveDate;
use nol_pii::{ResidentId, Sex};
use nol_proto::v1::{EnrollmentStatus, Pupil};
use nol_region::RegionCode;
use nol_runtime::Violations;
use nol_runtime::error::checked;

/// A pupil to register, validated.
#[derive(Debug, Clone)]
pub struct NewPupil {
    pub full_name: String,
    pub resident_id: ResidentId,
    pub enrollment_region: RegionCode,
    pub hukou_region: RegionCode,
    pub residence_region: RegionCode,
    pub school_name: String,
    pub grade: i16,
    pub status: EnrollmentStatus,
}

/// Validates a person's name as written in the household register.
pub fn check_full_name(violations: &mut Violations, field: &str, name: &str) {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        violations.add(field, "is required");
    } else if trimmed.chars().count() > 50 {
        violations.add(field, "is longer than 50 characters");
    } else if trimmed.chars().any(char::is_control) {
        violations.add(field, "contains control characters");
    }
}

impl NewPupil {
    /// Checks every field of a create request, reporting all problems at once.
    pub fn from_request(pupil: &Pupil, today: NaiveDate) -> Result<NewPupil, nol_runtime::ServiceError> {
        let mut violations = Violations::default();
        check_full_name(&mut violations, "pupil.full_name", &pupil.full_name);
        let resident_id = if violations.require("pupil.resident_id", &pupil.resident_id) {
            violations.check("pupil.resident_id", ResidentId::parse_on(&pupil.resident_id, today))
        } else {
            None
        };
        let enrollment_region =
            violations.check("pupil.enrollment_region_code", RegionCode::parse_county(&pupil.enrollment_region_code));
        let hukou_region =
            violations.check("pupil.hukou_region_code", RegionCode::parse_county(&pupil.hukou_region_code));
        let residence_region = if pupil.residence_region_code.trim().is_empty() {
            enrollment_region
        } else {
            violations.check("pupil.residence_region_code", RegionCode::parse_county(&pupil.residence_region_code))
        };
        violations.require("pupil.school_name", &pupil.school_name);
        if !(1..=9).contains(&pupil.grade) {
            violations.add("pupil.grade", "compulsory education has grades 1 to 9");
        }
        let status = match EnrollmentStatus::try_from(pupil.enrollment_status) {
            Ok(EnrollmentStatus::Unspecified) => Some(EnrollmentStatus::Enrolled),
            Ok(status) => Some(status),
            Err(_) => {
                violations.add("pupil.enrollment_status", "is not a known status");
                None
            }
        };
        violations.finish()?;
        Ok(NewPupil {
            full_name: pupil.full_name.trim().to_owned(),
            resident_id: checked(resident_id)?,
            enrollment_region: checked(enrollment_region)?,
            hukou_region: checked(hukou_region)?,
            residence_region: checked(residence_region)?,
            school_name: pupil.school_name.trim().to_owned(),
            grade: pupil.grade as i16,
            status: checked(status)?,
        })
    }

    /// A migrant child (随迁子女): the household registration is outside the enrollment county.
    pub fn migrant(&self) -> bool {
        self.hukou_region != self.enrollment_region
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.resident_id.birth_date()
    }

    pub fn sex(&self) -> Sex {
        self.resident_id.sex()
    }
}

/// How a status is stored.
pub fn status_name(status: EnrollmentStatus) -> &'static str {
    match status {
        EnrollmentStatus::Unspecified | EnrollmentStatus::Enrolled => "enrolled",
        EnrollmentStatus::Graduated => "graduated",
        EnrollmentStatus::TransferredOut => "transferred_out",
        EnrollmentStatus::DroppedOut => "dropped_out",
    }
}

pub fn status_from_name(name: &str) -> EnrollmentStatus {
    match name {
        "graduated" => EnrollmentStatus::Graduated,
        "transferred_out" => EnrollmentStatus::TransferredOut,
        "dropped_out" => EnrollmentStatus::DroppedOut,
        _ => EnrollmentStatus::Enrolled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    fn valid() -> Pupil {
        Pupil {
            full_name: "李明".into(),
            resident_id: ResidentId::from_parts("341221", NaiveDate::from_ymd_opt(2013, 5, 2).unwrap(), 31)
                .unwrap()
                .expose()
                .to_owned(),
            enrollment_region_code: "320102".into(),
            hukou_region_code: "341221".into(),
            school_name: "南京市玄武区第一中心小学".into(),
            grade: 5,
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_migrant_pupil() {
        let pupil = NewPupil::from_request(&valid(), today()).unwrap();
        assert!(pupil.migrant());
        assert_eq!(pupil.residence_region.as_str(), "320102");
        assert_eq!(pupil.sex(), Sex::Male);
        assert_eq!(pupil.status, EnrollmentStatus::Enrolled);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut request = valid();
        request.full_name = " ".into();
        request.resident_id.replace_range(17..18, if request.resident_id.ends_with('1') { "2" } else { "1" });
        request.enrollment_region_code = "320100".into();
        request.hukou_region_code = "999999".into();
        request.grade = 10;
        let nol_runtime::ServiceError::Invalid(violations) = NewPupil::from_request(&request, today()).unwrap_err()
        else {
            panic!("expected invalid argument");
        };
        let fields: Vec<&str> = violations.iter().map(|violation| violation.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "pupil.full_name",
                "pupil.resident_id",
                "pupil.enrollment_region_code",
                "pupil.hukou_region_code",
                "pupil.grade"
            ]
        );
        assert!(violations.iter().all(|violation| !violation.description.contains(&request.resident_id)));
    }
}
