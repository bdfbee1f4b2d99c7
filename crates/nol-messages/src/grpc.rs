//! Messages as gRPC statuses: the English text is the status message; the Chinese text travels
//! beside it as `google.rpc.LocalizedMessage` (locale zh-CN), and the reason as
//! `google.rpc.ErrorInfo`, so a client shows the case worker the Chinese and switches on the reason.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{LOCALE_ZH_CN, Msg};

/// The domain `google.rpc.ErrorInfo` names.
pub const ERROR_DOMAIN: &str = "nol.v1";

/// A status of `code` carrying `message` in both languages and its reason.
pub fn status(code: Code, message: &Msg) -> Status {
    let mut details = ErrorDetails::new();
    details.set_localized_message(LOCALE_ZH_CN, message.zh());
    details.set_error_info(message.reason(), ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message.en(), details)
}

/// One invalid field: its path and what is wrong, in both languages.
pub struct FieldError<'a> {
    pub field: &'a str,
    pub message: &'a Msg,
}

/// INVALID_ARGUMENT with `google.rpc.BadRequest` (each field's English description, reason and
/// Chinese text) and the whole request's summary in both languages.
pub fn invalid(fields: &[FieldError<'_>]) -> Status {
    let summary = crate::Common::InvalidRequest {
        fields_en: crate::join_en(fields.iter().map(|field| format!("{}: {}", field.field, field.message.en()))),
        fields_zh: crate::join_zh(fields.iter().map(|field| format!("{}：{}", field.field, field.message.zh()))),
    };
    let violations: Vec<tonic_types::FieldViolation> = fields
        .iter()
        .map(|field| tonic_types::FieldViolation {
            field: field.field.to_owned(),
            description: field.message.en(),
            reason: field.message.reason(),
            localized_message: Some(tonic_types::LocalizedMessage {
                locale: LOCALE_ZH_CN.to_owned(),
                message: field.message.zh(),
            }),
        })
        .collect();
    let mut details = ErrorDetails::with_bad_request(violations);
    details.set_localized_message(LOCALE_ZH_CN, summary.zh());
    Status::with_error_details(Code::InvalidArgument, summary.en(), details)
}

/// The message a status carries: its Chinese localized text when it has one (a status of another
/// service of the province, relayed to the caller as it came).
pub fn relayed(status: &Status) -> Msg {
    let zh = status
        .get_details_localized_message()
        .filter(|localized| localized.locale == LOCALE_ZH_CN)
        .map(|localized| localized.message)
        .unwrap_or_else(|| status.message().to_owned());
    Msg::relayed(status.message(), zh)
}
