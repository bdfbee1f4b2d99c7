//! Cross-check findings (R15) and how they are closed (销号).

use chrono::{Months, NaiveDate};
use nol_messages::Registry;
use nol_proto::v1::{CheckItemKind, CheckOutcome};

/// What a cross-check found.
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
    /// The text stored in `check_item.kind` (and written by the cross-check's query). Never
    /// derived from the contract's names.
    pub fn as_stored(self) -> &'static str {
        match self {
            Kind::OutOfSchool => "out_of_school",
            Kind::PoorFlagUnconfirmed => "poor_flag_unconfirmed",
            Kind::PoorFlagMissing => "poor_flag_missing",
            Kind::InvalidResidentId => "invalid_resident_id",
            Kind::BirthDateMismatch => "birth_date_mismatch",
            Kind::EnrolledTwice => "enrolled_twice",
        }
    }

    pub fn from_stored(text: &str) -> Option<Kind> {
        match text {
            "out_of_school" => Some(Kind::OutOfSchool),
            "poor_flag_unconfirmed" => Some(Kind::PoorFlagUnconfirmed),
            "poor_flag_missing" => Some(Kind::PoorFlagMissing),
            "invalid_resident_id" => Some(Kind::InvalidResidentId),
            "birth_date_mismatch" => Some(Kind::BirthDateMismatch),
            "enrolled_twice" => Some(Kind::EnrolledTwice),
            _ => None,
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

/// How an item was closed (销号).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    EnrolledElsewhere,
    Deceased,
    Emigrated,
    Exempt,
    DataErrorCorrected,
    ReferredToCaseWork,
}

pub const OUTCOMES: [Outcome; 6] = [
    Outcome::EnrolledElsewhere,
    Outcome::Deceased,
    Outcome::Emigrated,
    Outcome::Exempt,
    Outcome::DataErrorCorrected,
    Outcome::ReferredToCaseWork,
];

impl Outcome {
    /// The text stored in `check_item.outcome`.
    pub fn as_stored(self) -> &'static str {
        match self {
            Outcome::EnrolledElsewhere => "enrolled_elsewhere",
            Outcome::Deceased => "deceased",
            Outcome::Emigrated => "emigrated",
            Outcome::Exempt => "exempt",
            Outcome::DataErrorCorrected => "data_error_corrected",
            Outcome::ReferredToCaseWork => "referred_to_case_work",
        }
    }

    pub fn from_stored(text: &str) -> Option<Outcome> {
        match text {
            "enrolled_elsewhere" => Some(Outcome::EnrolledElsewhere),
            "deceased" => Some(Outcome::Deceased),
            "emigrated" => Some(Outcome::Emigrated),
            "exempt" => Some(Outcome::Exempt),
            "data_error_corrected" => Some(Outcome::DataErrorCorrected),
            "referred_to_case_work" => Some(Outcome::ReferredToCaseWork),
            _ => None,
        }
    }

    pub fn to_proto(self) -> CheckOutcome {
        match self {
            Outcome::EnrolledElsewhere => CheckOutcome::EnrolledElsewhere,
            Outcome::Deceased => CheckOutcome::Deceased,
            Outcome::Emigrated => CheckOutcome::Emigrated,
            Outcome::Exempt => CheckOutcome::Exempt,
            Outcome::DataErrorCorrected => CheckOutcome::DataErrorCorrected,
            Outcome::ReferredToCaseWork => CheckOutcome::ReferredToCaseWork,
        }
    }

    /// None for `Unspecified`: no outcome was given.
    pub fn from_proto(outcome: CheckOutcome) -> Option<Outcome> {
        OUTCOMES.into_iter().find(|candidate| candidate.to_proto() == outcome)
    }
}

/// Checks a closing: an outcome is required, and where it must say more (which school, which
/// evidence, what was corrected), the detail says it.
pub fn check_close(outcome: Option<Outcome>, detail: &str) -> Result<Outcome, Registry> {
    let outcome = outcome.ok_or(Registry::OutcomeRequired)?;
    let needs_detail = match outcome {
        Outcome::EnrolledElsewhere => Some(Registry::OutcomeNeedsSchool),
        Outcome::Exempt => Some(Registry::OutcomeNeedsMedicalEvidence),
        Outcome::DataErrorCorrected => Some(Registry::OutcomeNeedsCorrection),
        Outcome::Deceased | Outcome::Emigrated | Outcome::ReferredToCaseWork => None,
    };
    if let Some(refusal) = needs_detail
        && detail.trim().is_empty()
    {
        return Err(refusal);
    }
    Ok(outcome)
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
        assert_eq!(check_close(None, ""), Err(Registry::OutcomeRequired));
        assert!(check_close(Some(Outcome::EnrolledElsewhere), " ").unwrap_err().en().contains("which school"));
        assert_eq!(check_close(Some(Outcome::EnrolledElsewhere), "3201020001"), Ok(Outcome::EnrolledElsewhere));
        assert_eq!(check_close(Some(Outcome::Deceased), ""), Ok(Outcome::Deceased));
        assert_eq!(
            check_close(Some(Outcome::Exempt), "").unwrap_err().en(),
            "this outcome needs a detail: the medical evidence (R1)"
        );
        assert_eq!(Outcome::from_proto(CheckOutcome::Unspecified), None);
    }

    #[test]
    fn stored_values_are_pinned() {
        let kinds = [
            (Kind::OutOfSchool, "out_of_school"),
            (Kind::PoorFlagUnconfirmed, "poor_flag_unconfirmed"),
            (Kind::PoorFlagMissing, "poor_flag_missing"),
            (Kind::InvalidResidentId, "invalid_resident_id"),
            (Kind::BirthDateMismatch, "birth_date_mismatch"),
            (Kind::EnrolledTwice, "enrolled_twice"),
        ];
        assert_eq!(kinds.len(), KINDS.len());
        for (kind, text) in kinds {
            assert_eq!(kind.as_stored(), text);
            assert_eq!(Kind::from_stored(text), Some(kind));
            assert_eq!(Kind::from_proto(kind.to_proto()), Some(kind));
        }
        let outcomes = [
            (Outcome::EnrolledElsewhere, "enrolled_elsewhere"),
            (Outcome::Deceased, "deceased"),
            (Outcome::Emigrated, "emigrated"),
            (Outcome::Exempt, "exempt"),
            (Outcome::DataErrorCorrected, "data_error_corrected"),
            (Outcome::ReferredToCaseWork, "referred_to_case_work"),
        ];
        assert_eq!(outcomes.len(), OUTCOMES.len());
        for (outcome, text) in outcomes {
            assert_eq!(outcome.as_stored(), text);
            assert_eq!(Outcome::from_stored(text), Some(outcome));
            assert_eq!(Outcome::from_proto(outcome.to_proto()), Some(outcome));
        }
        assert_eq!(Kind::from_stored("OUT_OF_SCHOOL"), None);
        assert_eq!(Outcome::from_stored(""), None);
    }

    #[test]
    fn school_age_is_six_to_fifteen() {
        let (oldest, youngest) = school_age_births(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap());
        assert_eq!(youngest, NaiveDate::from_ymd_opt(2020, 9, 1).unwrap());
        assert_eq!(oldest, NaiveDate::from_ymd_opt(2010, 9, 2).unwrap());
    }
}
