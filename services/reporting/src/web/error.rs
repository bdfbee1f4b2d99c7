//! Errors as the dashboard answers them: an HTTP status and `{"error": "<中文>", "field": …}`,
//! from the same catalogue messages the gRPC API sends (a gRPC status from another service is
//! relayed with its Chinese text).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nol_runtime::ServiceError;
use tonic::{Code, Status};
use tonic_types::StatusExt;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into(), field: None }
    }

    pub fn unauthenticated() -> WebError {
        WebError::new(StatusCode::UNAUTHORIZED, "未登录或登录已过期，请重新登录")
    }

    pub fn csrf() -> WebError {
        WebError::new(StatusCode::FORBIDDEN, "请求缺少有效的防跨站令牌（CSRF），请刷新页面后重试")
    }

    pub fn bad(field: &str, message: &str) -> WebError {
        WebError { status: StatusCode::BAD_REQUEST, message: message.to_owned(), field: Some(field.to_owned()) }
    }
}

fn http_code(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => StatusCode::CONFLICT,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Status> for WebError {
    fn from(status: Status) -> WebError {
        let field =
            status.get_details_bad_request().and_then(|bad| bad.field_violations.first().map(|v| v.field.clone()));
        WebError { status: http_code(status.code()), message: nol_messages::grpc::relayed(&status).zh(), field }
    }
}

impl From<ServiceError> for WebError {
    fn from(error: ServiceError) -> WebError {
        WebError::from(Status::from(error))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "field": self.field });
        (self.status, Json(body)).into_response()
    }
}
