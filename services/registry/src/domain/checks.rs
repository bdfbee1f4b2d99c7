//! Cross-check findings (R15) and how they are closed (销号).

use chrono::{Months, NaiveDate};
use nol_proto::v1::{CheckItemKind, CheckOutcome};

/// What a cross-check found; stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    OutOfSchool,
    PoorFlagUnconfirmed,
    PoorFlagMissing,
    InvalidResidentId,
    BirthDateMismatch,
    EnrolledTwice,
}

pub const KINDS: [Kind; 6] = [
    Kind::OutOfSchool,
    Kind::PoorFlagUnconfirmed,
    Kind::PoorFlagMissing,
    Kind::InvalidResidentId,
    Kind::BirthDateMismatch,
    Kind::EnrolledTwice,
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OutOfSchool => "out_of_school",
            Kind::PoorFlagUnconfirmed => "poor_flag_unconfirmed",
            Kind::PoorFlagMissing => "poor_flag_missing",
            Kind::InvalidResidentId => "invalid_resident_id",
            Kind::BirthDateMismatch => "birth_date_mismatch",
            Kind::EnrolledTwice => "enrolled_twice",
        }
    }

    /// The words a case worker reads (exports are in Chinese first).
    pub fn chinese(self) -> &'static str {
        match self {
            Kind::OutOfSchool => "疑似失学辍学",
            Kind::PoorFlagUnconfirmed => "建档立卡标识未获扶贫部门确认",
            Kind::PoorFlagMissing => "建档立卡子女未标识",
            Kind::InvalidResidentId => "身份证号无效",
            Kind::BirthDateMismatch => "出生日期与身份证号不符",
            Kind::EnrolledTwice => "同一身份证号在两校注册（人籍分离）",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        KINDS.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn to_proto(self) -> CheckItemKind {
        match self {
            Kind::OutOfSchool => CheckItemKind::OutOfSchool,
            Kind::PoorFlagUnconfirmed => CheckItemKind::PoorFlagUnconfirmed,
            Kind::PoorFlagMissing => CheckItemKind::PoorFlagMissing,
            Kind::InvalidResidentId => CheckItemKind::InvalidResidentId,
            Kind::BirthDateMismatch => CheckItemKind::BirthDateMismatch,
            Kind::EnrolledTwice => CheckItemKind::EnrolledTwice,
        }
    }

    pub fn from_proto(kind: CheckItemKind) -> Option<Kind> {
        KINDS.into_iter().find(|candidate| candidate.to_proto() == kind)
    }
}

/// How an item is closed; stored by name.
pub fn outcome_name(outcome: CheckOutcome) -> Option<&'static str> {
    match outcome {
        CheckOutcome::Unspecified => None,
        CheckOutcome::EnrolledElsewhere => Some("enrolled_elsewhere"),
        CheckOutcome::Deceased => Some("deceased"),
        CheckOutcome::Emigrated => Some("emigrated"),
        CheckOutcome::Exempt => Some("exempt"),
        CheckOutcome::DataErrorCorrected => Some("data_error_corrected"),
        CheckOutcome::ReferredToCaseWork => Some("referred_to_case_work"),
    }
}

pub fn outcome_from_name(text: &str) -> CheckOutcome {
    [
        CheckOutcome::EnrolledElsewhere,
        CheckOutcome::Deceased,
        CheckOutcome::Emigrated,
        CheckOutcome::Exempt,
        CheckOutcome::DataErrorCorrected,
        CheckOutcome::ReferredToCaseWork,
    ]
    .into_iter()
    .find(|outcome| outcome_name(*outcome) == Some(text))
    .unwrap_or(CheckOutcome::Unspecified)
}

/// Checks a closing: an outcome is required, and where it must say more (which school, which
/// evidence, what was corrected), the detail says it.
pub fn check_close(outcome: CheckOutcome, detail: &str) -> Result<&'static str, String> {
    let name = outcome_name(outcome).ok_or_else(|| "an outcome is required to close an item (销号)".to_owned())?;
    let needs_detail = match outcome {
        CheckOutcome::EnrolledElsewhere => Some("which school the child is enrolled at"),
        CheckOutcome::Exempt => Some("the medical evidence (R1)"),
        CheckOutcome::DataErrorCorrected => Some("how the data was corrected"),
        _ => None,
    };
    if let Some(what) = needs_detail
        && detail.trim().is_empty()
    {
        return Err(format!("this outcome needs a detail: {what}"));
    }
    Ok(name)
}

/// Compulsory-education age on `as_of`: from the 6th birthday to the day before the 16th.
/// Returns the inclusive range of birth dates.
pub fn school_age_births(as_of: NaiveDate) -> (NaiveDate, NaiveDate) {
    let youngest = as_of.checked_sub_months(Months::new(6 * 12)).unwrap_or(as_of);
    let oldest = as_of.checked_sub_months(Months::new(16 * 12)).and_then(|date| date.succ_opt()).unwrap_or(as_of);
    (oldest, youngest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_needs_an_outcome_and_its_detail() {
        assert!(check_close(CheckOutcome::Unspecified, "").is_err());
        assert!(check_close(CheckOutcome::EnrolledElsewhere, " ").unwrap_err().contains("which school"));
        assert_eq!(check_close(CheckOutcome::EnrolledElsewhere, "3201020001"), Ok("enrolled_elsewhere"));
        assert_eq!(check_close(CheckOutcome::Deceased, ""), Ok("deceased"));
        for kind in KINDS {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(Kind::from_proto(kind.to_proto()), Some(kind));
        }
    }

    #[test]
    fn school_age_is_six_to_fifteen() {
        let (oldest, youngest) = school_age_births(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap());
        assert_eq!(youngest, NaiveDate::from_ymd_opt(2020, 9, 1).unwrap());
        assert_eq!(oldest, NaiveDate::from_ymd_opt(2010, 9, 2).unwrap());
    }
}
