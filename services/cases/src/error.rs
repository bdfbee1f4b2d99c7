//! The case service's rule errors as service errors: one conversion per capability's rule-error
//! type, so every refusal reaches the caller with the same code wherever it is raised.

use nol_runtime::ServiceError;

use crate::case::domain::CaseRefusal;
use crate::case::ledger::LedgerError;
use crate::supervision::domain::SupervisionRefusal;
use crate::suspects::domain::SuspectRefusal;

impl From<CaseRefusal> for ServiceError {
    /// R2 (the child's one case exists) and a hand-off already under way are ALREADY_EXISTS; every
    /// other refusal is FAILED_PRECONDITION.
    fn from(refusal: CaseRefusal) -> ServiceError {
        if refusal.0.is_active_case_conflict() || matches!(refusal.0, nol_messages::Case::HandoffUnderWay { .. }) {
            ServiceError::already_exists(refusal.0)
        } else {
            ServiceError::precondition(refusal.0)
        }
    }
}

impl From<LedgerError> for ServiceError {
    fn from(error: LedgerError) -> ServiceError {
        match error {
            LedgerError::Refused(refusal) => refusal.into(),
            LedgerError::Database(error) => error.into(),
        }
    }
}

impl From<SuspectRefusal> for ServiceError {
    /// R2 stays ALREADY_EXISTS when it keeps an item pending; the rest are FAILED_PRECONDITION.
    fn from(refusal: SuspectRefusal) -> ServiceError {
        match &refusal.0 {
            nol_messages::Suspect::StaysPending { because } if because.is_active_case_conflict() => {
                ServiceError::already_exists(refusal.0)
            }
            nol_messages::Suspect::PendingItem { .. } | nol_messages::Suspect::PendingItemElsewhere => {
                ServiceError::already_exists(refusal.0)
            }
            _ => ServiceError::precondition(refusal.0),
        }
    }
}

impl From<SupervisionRefusal> for ServiceError {
    /// A second check over the same children is ALREADY_EXISTS; the rest are FAILED_PRECONDITION.
    fn from(refusal: SupervisionRefusal) -> ServiceError {
        match refusal.0 {
            nol_messages::Supervision::CheckOverlaps { .. } => ServiceError::already_exists(refusal.0),
            _ => ServiceError::precondition(refusal.0),
        }
    }
}
