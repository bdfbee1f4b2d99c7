//! The small set of errors a service answers with, each mapped once to a gRPC status.
//!
//! Every message comes from the catalogue (`nol-messages`): the status message is its English
//! text, and its Chinese text travels as `google.rpc.LocalizedMessage` (zh-CN) with the reason as
//! `google.rpc.ErrorInfo`. Bad input is `INVALID_ARGUMENT` with `google.rpc.BadRequest` field
//! violations, each with its own Chinese text. Internal errors are logged with the trace id and
//! answered with that id only: their text never reaches a client.

use nol_auth::Denied;
use nol_messages::{Common, Count, Msg};
use tonic::{Code, Status};

pub use nol_messages::FieldViolation;

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}", invalid_summary(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(Msg),
    #[error("{0}")]
    AlreadyExists(Msg),
    #[error("{0}")]
    FailedPrecondition(Msg),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Unavailable(Msg),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn invalid_summary(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> =
        violations.iter().map(|violation| format!("{}: {}", violation.field, violation.message.en())).collect();
    format!("invalid request: {}", parts.join("; "))
}

impl ServiceError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<Msg>) -> ServiceError {
        ServiceError::Invalid(vec![FieldViolation::new(field, message)])
    }

    pub fn not_found(message: impl Into<Msg>) -> ServiceError {
        ServiceError::NotFound(message.into())
    }

    pub fn already_exists(message: impl Into<Msg>) -> ServiceError {
        ServiceError::AlreadyExists(message.into())
    }

    pub fn precondition(message: impl Into<Msg>) -> ServiceError {
        ServiceError::FailedPrecondition(message.into())
    }

    /// The catalogue message of a refusal (None for internal errors, whose text stays inside).
    pub fn message(&self) -> Option<Msg> {
        match self {
            ServiceError::NotFound(message)
            | ServiceError::AlreadyExists(message)
            | ServiceError::FailedPrecondition(message)
            | ServiceError::Unavailable(message) => Some(message.clone()),
            ServiceError::Denied(denied) => Some(denied.message()),
            ServiceError::Invalid(_) | ServiceError::Internal(_) => None,
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %error, "database unavailable");
                ServiceError::Unavailable(Common::DatabaseUnavailable.into())
            }
            sqlx::Error::Encode(ref encode)
                if let Some(too_large) = encode.downcast_ref::<nol_backbone::outbox::EventTooLarge>() =>
            {
                tracing::warn!(event_type = %too_large.event_type, bytes = too_large.bytes, "change refused: its event is over the limit");
                let kib = Count((too_large.max / 1024) as u64);
                ServiceError::invalid("request", Common::ChangeTooLarge { kib })
            }
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        use nol_messages::grpc::{FieldError, invalid, status};
        match error {
            ServiceError::Invalid(violations) => invalid(
                &violations
                    .iter()
                    .map(|violation| FieldError { field: &violation.field, message: &violation.message })
                    .collect::<Vec<_>>(),
            ),
            ServiceError::NotFound(message) => status(Code::NotFound, &message),
            ServiceError::AlreadyExists(message) => status(Code::AlreadyExists, &message),
            ServiceError::FailedPrecondition(message) => status(Code::FailedPrecondition, &message),
            ServiceError::Denied(denied) => denied.into(),
            ServiceError::Unavailable(message) => status(Code::Unavailable, &message),
            ServiceError::Internal(error) => {
                let trace_id = nol_telemetry::current_trace_id().unwrap_or_default();
                tracing::error!(error = ?error, trace_id = %trace_id, "internal error");
                status(Code::Internal, &Common::Internal { trace_id }.into())
            }
        }
    }
}

/// Collects field violations of one request, so the caller hears of all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Keeps the value, or records the error against `field`.
    pub fn check<T, E: Into<Msg>>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(FieldViolation::new(field, error));
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<Msg>) {
        self.0.push(FieldViolation::new(field, message));
    }

    /// Adds the violations another check found.
    pub fn extend(&mut self, found: impl IntoIterator<Item = FieldViolation>) {
        self.0.extend(found);
    }

    pub fn require(&mut self, field: &str, value: &str) -> bool {
        if value.trim().is_empty() {
            self.add(field, Common::Required);
            return false;
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
    uuid::Uuid::parse_str(text.trim()).map_err(|_| ServiceError::invalid(field, Common::NotAUuid))
}

impl ServiceError {
    /// Maps the status of a call to another service of the province: the caller's own problems
    /// (not found, not allowed, invalid) pass through with their Chinese text; anything else means
    /// that service failed.
    pub fn from_upstream(status: tonic::Status, service: &str) -> ServiceError {
        let relayed = || nol_messages::grpc::relayed(&status);
        match status.code() {
            Code::NotFound => ServiceError::NotFound(relayed()),
            Code::PermissionDenied => ServiceError::Denied(Denied::Refused(relayed())),
            Code::InvalidArgument => ServiceError::invalid("", relayed()),
            Code::FailedPrecondition => ServiceError::FailedPrecondition(relayed()),
            Code::AlreadyExists => ServiceError::AlreadyExists(relayed()),
            Code::Unavailable | Code::DeadlineExceeded => {
                ServiceError::Unavailable(Common::ServiceUnavailable { service: service.to_owned() }.into())
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
    fn a_change_whose_event_is_too_large_is_invalid_input_not_an_internal_error() {
        let too_large = nol_backbone::outbox::EventTooLarge { event_type: "x".into(), bytes: 2 << 20, max: 768 * 1024 };
        let error = ServiceError::from(sqlx::Error::Encode(Box::new(too_large)));
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = format!("{:?}", status.details());
        assert!(!details.is_empty());
    }
    use tonic_types::StatusExt;

    #[test]
    fn invalid_input_carries_bad_request_details_in_both_languages() {
        let mut violations = Violations::default();
        violations.add("pupil.resident_id", Common::ResidentIdCheckDigit);
        violations.add("pupil.hukou_region_code", Common::Required);
        let status = Status::from(violations.finish().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().unwrap();
        assert_eq!(bad_request.field_violations.len(), 2);
        assert_eq!(bad_request.field_violations[0].field, "pupil.resident_id");
        assert_eq!(bad_request.field_violations[1].reason, "REQUIRED");
        let field_zh = bad_request.field_violations[1].localized_message.as_ref().unwrap();
        assert_eq!((field_zh.locale.as_str(), field_zh.message.as_str()), ("zh-CN", "为必填项"));
        let summary = details.localized_message().unwrap();
        assert!(summary.message.starts_with("请求有误："), "{}", summary.message);
        assert!(status.message().starts_with("invalid request: pupil.resident_id: the check digit"));
    }

    #[test]
    fn refusals_carry_their_chinese_text_and_reason() {
        let status = Status::from(ServiceError::precondition(Common::TokenInvalid));
        let details = status.get_error_details();
        assert_eq!(details.localized_message().unwrap().message, "令牌无效或已过期");
        assert_eq!(details.error_info().unwrap().reason, "TOKEN_INVALID");
        let relayed = ServiceError::from_upstream(status, "registry");
        assert_eq!(relayed.message().unwrap().zh(), "令牌无效或已过期");
    }

    #[test]
    fn internal_text_never_reaches_the_client() {
        let status = Status::from(ServiceError::Internal(anyhow::anyhow!("password=hunter2 at db01")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
