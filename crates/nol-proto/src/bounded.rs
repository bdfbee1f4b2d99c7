//! One length check for every request, in the codec every service's server decodes with.
//!
//! Each handler still checks its own fields against the domain's rules (a note of 2,000
//! characters, a name of 100). This is the floor under all of them, so that no field is left
//! unchecked by a handler that forgot one: before a request reaches any handler, every `string`
//! in it — nested messages, lists and maps included — is at most [`MAX_TEXT_CHARS`] characters,
//! and every list or map at most [`MAX_ITEMS`] entries; otherwise the call is answered
//! `INVALID_ARGUMENT` with a `google.rpc.BadRequest` naming each field (`measure.description`,
//! `causes`) in English and Chinese, and nothing runs. With the contract's few texts per request
//! this also keeps every event well under the backbone's payload limit (the outbox's own size
//! check stays behind it).
//!
//! Only messages named `…Request` are checked (the server decoding a call); a client decoding an
//! answer is not held to it. `bytes` fields (uploaded files) are bounded by the server's message
//! size instead. The walk uses the contract's own descriptors (`prost-reflect`), so a field added
//! to the contract is covered without anyone remembering to.

use std::marker::PhantomData;
use std::sync::LazyLock;

use bytes::Buf;
use nol_messages::grpc::{FieldError, invalid};
use nol_messages::{Common, Count, Msg};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// The most characters any text field of a request may hold.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// The most entries any list or map of a request may hold.
pub const MAX_ITEMS: usize = 1_000;

/// At most this many violations are reported (a request of a million long texts gets a short answer).
const MAX_REPORTED: usize = 20;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).ok());

/// The contract's codec: prost on the wire, and [`check`] on every request decoded.
pub struct BoundedCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        BoundedCodec { inner: ProstCodec::default() }
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder { settings: BufferSettings::default(), _message: PhantomData }
    }
}

/// Decodes a message and, for a request, holds it to the limits.
pub struct BoundedDecoder<U> {
    settings: BufferSettings,
    _message: PhantomData<U>,
}

impl<U: Message + Name + Default> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        if U::NAME.ends_with("Request") {
            check(&U::full_name(), &bytes)?;
        }
        U::decode(bytes).map(Some).map_err(|error| Status::internal(error.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.settings
    }
}

/// Checks the encoded message `full_name` against the limits; the status names every field over.
pub fn check(full_name: &str, encoded: &[u8]) -> Result<(), Status> {
    // A message this short holds no text over the limit and no list that long (a list entry
    // takes at least a byte): most requests are, and are not decoded twice.
    if encoded.len() <= MAX_TEXT_CHARS.min(MAX_ITEMS) {
        return Ok(());
    }
    let Some(descriptor) = POOL.as_ref().and_then(|pool| pool.get_message_by_name(full_name)) else {
        return Ok(());
    };
    // A message that does not decode is refused by the typed decode right after.
    let Ok(message) = DynamicMessage::decode(descriptor, encoded) else {
        return Ok(());
    };
    let mut over = Vec::new();
    walk(&message, "", &mut over);
    if over.is_empty() {
        return Ok(());
    }
    let fields: Vec<FieldError<'_>> =
        over.iter().take(MAX_REPORTED).map(|(field, message)| FieldError { field, message }).collect();
    Err(invalid(&fields))
}

fn walk(message: &DynamicMessage, prefix: &str, over: &mut Vec<(String, Msg)>) {
    for (field, value) in message.fields() {
        let path = if prefix.is_empty() { field.name().to_owned() } else { format!("{prefix}.{}", field.name()) };
        match value {
            Value::List(items) => {
                if items.len() > MAX_ITEMS {
                    over.push((path.clone(), Common::TooManyItems { max: Count(MAX_ITEMS as u64) }.into()));
                }
                for (index, item) in items.iter().enumerate() {
                    value_over(item, &format!("{path}[{index}]"), over);
                }
            }
            Value::Map(entries) => {
                if entries.len() > MAX_ITEMS {
                    over.push((path.clone(), Common::TooManyItems { max: Count(MAX_ITEMS as u64) }.into()));
                }
                for (key, item) in entries {
                    if let MapKey::String(key) = key
                        && key.chars().count() > MAX_TEXT_CHARS
                    {
                        over.push((path.clone(), too_long()));
                    }
                    value_over(item, &path, over);
                }
            }
            other => value_over(other, &path, over),
        }
    }
}

fn value_over(value: &Value, path: &str, over: &mut Vec<(String, Msg)>) {
    match value {
        Value::String(text) if text.chars().count() > MAX_TEXT_CHARS => over.push((path.to_owned(), too_long())),
        Value::Message(message) => walk(message, path, over),
        _ => {}
    }
}

fn too_long() -> Msg {
    Common::TooLong { max: Count(MAX_TEXT_CHARS as u64) }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{AddMeasureRequest, CaseMeasure, ListCasesResponse, OpenCaseRequest};
    use tonic_types::StatusExt;

    fn checked<M: Message + Name>(message: &M) -> Result<(), Status> {
        check(&M::full_name(), &message.encode_to_vec())
    }

    #[test]
    fn a_text_over_the_limit_anywhere_in_a_request_is_refused_naming_its_field() {
        let request = AddMeasureRequest {
            case_id: "x".repeat(MAX_TEXT_CHARS + 1),
            measure: Some(CaseMeasure { description: "劝".repeat(MAX_TEXT_CHARS + 1), ..Default::default() }),
        };
        let status = checked(&request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = details.bad_request().expect("field violations").field_violations.clone();
        let fields: Vec<&str> = violations.iter().map(|violation| violation.field.as_str()).collect();
        assert_eq!(fields, ["case_id", "measure.description"]);
        assert_eq!(violations[1].reason, "TOO_LONG");
        let zh = violations[1].localized_message.as_ref().map(|message| message.message.clone()).unwrap_or_default();
        assert_eq!(zh, "超过 4000 个字符");
    }

    #[test]
    fn texts_at_the_limit_pass_counted_in_characters_not_bytes() {
        let request = AddMeasureRequest {
            case_id: String::new(),
            measure: Some(CaseMeasure { description: "劝".repeat(MAX_TEXT_CHARS), ..Default::default() }),
        };
        assert!(request.encoded_len() > MAX_TEXT_CHARS * 3, "three bytes a character");
        checked(&request).unwrap();
    }

    #[test]
    fn a_list_over_the_limit_is_refused() {
        let request = OpenCaseRequest { pupil_id: String::new(), causes: vec![1; MAX_ITEMS + 1], notes: String::new() };
        let status = checked(&request).unwrap_err();
        let details = status.get_error_details();
        let violation = &details.bad_request().expect("field violations").field_violations[0];
        assert_eq!((violation.field.as_str(), violation.reason.as_str()), ("causes", "TOO_MANY_ITEMS"));
        let fine = OpenCaseRequest { pupil_id: String::new(), causes: vec![1; MAX_ITEMS], notes: "备注".repeat(100) };
        checked(&fine).unwrap();
    }

    #[test]
    fn answers_are_not_held_to_the_request_limits() {
        let answer = ListCasesResponse { dropout_cases: Vec::new(), next_page_token: "t".repeat(MAX_TEXT_CHARS * 2) };
        checked(&answer).unwrap_err();
        // The decoder checks only messages named …Request: an answer this long decodes.
        assert!(!ListCasesResponse::NAME.ends_with("Request"));
    }

    #[test]
    fn every_request_of_the_contract_has_a_descriptor_to_check_against() {
        let pool = POOL.as_ref().expect("the contract's descriptors decode");
        let requests: Vec<_> = pool.all_messages().filter(|message| message.name().ends_with("Request")).collect();
        assert!(requests.len() > 90, "{} requests", requests.len());
    }
}
