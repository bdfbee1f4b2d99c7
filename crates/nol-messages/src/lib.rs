//! The catalogue of the messages people read: every refusal, validation error and notice a
//! service answers with, in 简体中文 (what a case worker reads) and English (what the gRPC status
//! message and the logs carry). Handlers and rules name a message by its variant and its
//! parameters; the words live here and nowhere else.
//!
//! Each area of the system has its own enum in its own file ([`Common`], [`Case`], [`Suspect`],
//! [`Supervision`], [`Registry`], [`Transfer`], [`Reporting`]); [`Msg`] is any of them. A variant's
//! name, in SCREAMING_SNAKE_CASE, is the machine-readable reason a client can switch on
//! (`google.rpc.ErrorInfo.reason`, `FieldViolation.reason`).
#![forbid(unsafe_code)]

mod cases;
mod common;
#[cfg(feature = "grpc")]
pub mod grpc;
mod registry;
mod reporting;
mod supervision;
mod suspects;
mod transfer;
pub mod vocab;

pub use cases::Case;
pub use common::Common;
pub use registry::Registry;
pub use reporting::{ReportStateWord, Reporting};
pub use supervision::{OverdueWhat, Supervision};
pub use suspects::Suspect;
pub use transfer::{AssistanceStanding, CaseStanding, HandoffStanding, RejectReasonWord, Transfer};

/// One invalid field of a request: the field's path and what a case worker should fix. Rules
/// return these for bad input; services answer them as `google.rpc.BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub message: Msg,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, message: impl Into<Msg>) -> FieldViolation {
        FieldViolation { field: field.into(), message: message.into() }
    }
}

/// The locale of the localized text (`google.rpc.LocalizedMessage.locale`).
pub const LOCALE_ZH_CN: &str = "zh-CN";

/// Renders a catalogue entry: a string literal is a format string over the variant's fields, a
/// block computes the text.
macro_rules! text {
    ($literal:literal) => {
        format!($literal)
    };
    ($block:block) => {
        $block
    };
}

/// Declares one area's messages: each variant with its fields, its English and its Chinese text.
/// `words!` declares words that messages are made of, which are not messages themselves.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident $({ $($field:ident : $type:ty),* $(,)? })? => $en:tt, $zh:tt;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant $({ $($field: $type),* })?, )*
        }

        impl $name {
            /// The English text.
            #[allow(unused_variables)]
            pub fn en(&self) -> String {
                match self { $( $name::$variant $({ $($field),* })? => crate::text!($en), )* }
            }

            /// The Chinese (简体中文) text.
            #[allow(unused_variables)]
            pub fn zh(&self) -> String {
                match self { $( $name::$variant $({ $($field),* })? => crate::text!($zh), )* }
            }

            /// The variant's name: the reason code, before case conversion.
            pub fn name(&self) -> &'static str {
                match self { $( $name::$variant { .. } => stringify!($variant), )* }
            }
        }
    };
}

macro_rules! catalogue {
    ($(#[$meta:meta])* pub enum $name:ident $body:tt) => {
        crate::words! { $(#[$meta])* pub enum $name $body }

        impl From<$name> for crate::Msg {
            fn from(message: $name) -> crate::Msg {
                crate::Msg::$name(Box::new(message))
            }
        }
    };
}

pub(crate) use catalogue;
pub(crate) use text;
pub(crate) use words;

/// Any message of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Common(Box<Common>),
    Case(Box<Case>),
    Suspect(Box<Suspect>),
    Supervision(Box<Supervision>),
    Registry(Box<Registry>),
    Transfer(Box<Transfer>),
    Reporting(Box<Reporting>),
    /// A message another service of the province answered with, passed on as it came.
    /// A message another service of the province answered with, passed on as it came
    /// (English, Chinese).
    Relayed(Box<(String, String)>),
}

impl Msg {
    /// A message of another service, passed on in both its languages.
    pub fn relayed(en: impl Into<String>, zh: impl Into<String>) -> Msg {
        Msg::Relayed(Box::new((en.into(), zh.into())))
    }

    pub fn en(&self) -> String {
        match self {
            Msg::Common(message) => message.en(),
            Msg::Case(message) => message.en(),
            Msg::Suspect(message) => message.en(),
            Msg::Supervision(message) => message.en(),
            Msg::Registry(message) => message.en(),
            Msg::Transfer(message) => message.en(),
            Msg::Reporting(message) => message.en(),
            Msg::Relayed(texts) => texts.0.clone(),
        }
    }

    pub fn zh(&self) -> String {
        match self {
            Msg::Common(message) => message.zh(),
            Msg::Case(message) => message.zh(),
            Msg::Suspect(message) => message.zh(),
            Msg::Supervision(message) => message.zh(),
            Msg::Registry(message) => message.zh(),
            Msg::Transfer(message) => message.zh(),
            Msg::Reporting(message) => message.zh(),
            Msg::Relayed(texts) => texts.1.clone(),
        }
    }

    /// The machine-readable reason: the variant's name in SCREAMING_SNAKE_CASE
    /// (`Case::AgedOutTooYoung` → `AGED_OUT_TOO_YOUNG`).
    pub fn reason(&self) -> String {
        let name = match self {
            Msg::Common(message) => message.name(),
            Msg::Case(message) => message.name(),
            Msg::Suspect(message) => message.name(),
            Msg::Supervision(message) => message.name(),
            Msg::Registry(message) => message.name(),
            Msg::Transfer(message) => message.name(),
            Msg::Reporting(message) => message.name(),
            Msg::Relayed(_) => "RELAYED",
        };
        screaming_snake(name)
    }
}

impl std::fmt::Display for Msg {
    /// The English text (logs and the gRPC status message).
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.en())
    }
}

fn screaming_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_uppercase());
    }
    out
}

/// A count as people write it: `2,000` in English, `2000` in Chinese (no grouping under 10,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

impl Count {
    pub fn en(self) -> String {
        let digits = self.0.to_string();
        let mut out = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    }
}

/// Joins Chinese clauses with the enumeration comma's big sister, the semicolon (；).
pub(crate) fn join_zh(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().collect::<Vec<_>>().join("；")
}

pub(crate) fn join_en(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_screaming_snake_case() {
        assert_eq!(Msg::from(Common::Required).reason(), "REQUIRED");
        assert_eq!(Msg::from(Common::TooLong { max: Count(2000) }).reason(), "TOO_LONG");
    }

    #[test]
    fn counts_are_grouped_in_english() {
        assert_eq!(Count(2000).en(), "2,000");
        assert_eq!(Count(200_000).en(), "200,000");
        assert_eq!(Count(50).en(), "50");
    }
}
