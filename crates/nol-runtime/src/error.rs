//! The small set of errors a service answers with, each mapped once to a gRPC status.
//!
//! Bad input is `INVALID_ARGUMENT` with `google.rpc.BadRequest` field violations. Internal errors
//! are logged with the trace id and answered with that id only: their text never reaches a client.

use nol_auth::Denied;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request: the field's path and what a case worker should fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.into(), description: description.into() }
    }
}

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}", invalid_summary(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn invalid_summary(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> =
        violations.iter().map(|violation| format!("{}: {}", violation.field, violation.description)).collect();
    format!("invalid request: {}", parts.join("; "))
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![FieldViolation::new(field, description)])
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %error, "database unavailable");
                ServiceError::Unavailable("the database is unavailable; try again shortly".to_owned())
            }
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        match error {
            ServiceError::Invalid(violations) => {
                let message = invalid_summary(&violations);
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|violation| tonic_types::FieldViolation::new(violation.field, violation.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ServiceError::NotFound(message) => Status::not_found(message),
            ServiceError::AlreadyExists(message) => Status::already_exists(message),
            ServiceError::FailedPrecondition(message) => Status::failed_precondition(message),
            ServiceError::Denied(denied) => Status::permission_denied(denied.to_string()),
            ServiceError::Unavailable(message) => Status::unavailable(message),
            ServiceError::Internal(error) => {
                let trace_id = nol_telemetry::current_trace_id().unwrap_or_default();
                tracing::error!(error = ?error, trace_id = %trace_id, "internal error");
                Status::internal(format!("internal error; quote trace {trace_id} to the operators"))
            }
        }
    }
}

/// Collects field violations of one request, so the caller hears of all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Keeps the value, or records the error against `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(FieldViolation::new(field, error.to_string()));
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub fn require(&mut self, field: &str, value: &str) -> bool {
        if value.trim().is_empty() {
            self.add(field, "is required");
            return false;
        }
        true
    }

    /// `Err(Invalid)` when any field was wrong.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.0.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(self.0)) }
    }
}

/// Unwraps a value that [`Violations::finish`] has already vouched for.
pub fn checked<T>(value: Option<T>) -> Result<T, ServiceError> {
    value.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("a checked field was missing")))
}

/// Parses a UUID field.
pub fn parse_uuid(field: &str, text: &str) -> Result<uuid::Uuid, ServiceError> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| ServiceError::invalid(field, "is not a valid identifier (UUID)"))
}

impl ServiceError {
    /// Maps the status of a call to another service of the province: the caller's own problems
    /// (not found, not allowed, invalid) pass through; anything else means that service failed.
    pub fn from_upstream(status: tonic::Status, service: &str) -> ServiceError {
        match status.code() {
            Code::NotFound => ServiceError::NotFound(status.message().to_owned()),
            Code::PermissionDenied => ServiceError::Denied(nol_auth::Denied::Upstream(status.message().to_owned())),
            Code::InvalidArgument => ServiceError::invalid("", status.message().to_owned()),
            Code::FailedPrecondition => ServiceError::FailedPrecondition(status.message().to_owned()),
            Code::Unavailable | Code::DeadlineExceeded => {
                ServiceError::Unavailable(format!("the {service} service is unavailable; try again shortly"))
            }
            _ => {
                ServiceError::Internal(anyhow::anyhow!("{service} answered {:?}: {}", status.code(), status.message()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_carries_bad_request_details() {
        let mut violations = Violations::default();
        violations.add("pupil.resident_id", "wrong check digit");
        violations.add("pupil.hukou_region_code", "unknown");
        let status = Status::from(violations.finish().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().unwrap();
        assert_eq!(bad_request.field_violations.len(), 2);
        assert_eq!(bad_request.field_violations[0].field, "pupil.resident_id");
    }

    #[test]
    fn internal_text_never_reaches_the_client() {
        let status = Status::from(ServiceError::Internal(anyhow::anyhow!("password=hunter2 at db01")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
