//! The registry's SQL, one module per table group. Every statement is checked against the schema
//! at build time (`sqlx::query!` and its kin, offline data in `.sqlx/`). Rows are read into row
//! structs of the stored types and decoded once, by `TryFrom`, into records of domain types; a
//! stored value that does not decode is an internal error naming its row.

pub mod agency;
pub mod binary_copy;
pub mod checks;
pub mod imports;
pub mod pupils;
pub mod schools;

use std::fmt::Display;

use nol_region::RegionCode;

/// A stored value that does not decode into its domain type.
#[derive(Debug, thiserror::Error)]
#[error("{table} {row}: the stored {column} {value:?} does not decode")]
pub struct Undecodable {
    pub table: &'static str,
    /// The row's id (primary key).
    pub row: String,
    pub column: &'static str,
    pub value: String,
}

impl Undecodable {
    pub fn new(table: &'static str, row: impl Display, column: &'static str, value: impl Display) -> Undecodable {
        let error = Undecodable { table, row: row.to_string(), column, value: value.to_string() };
        tracing::error!(table, row = %error.row, column, value = %error.value, "a stored value does not decode");
        error
    }
}

/// Reaches the caller as an internal error (the row is named in the log, not to the client).
impl From<Undecodable> for sqlx::Error {
    fn from(error: Undecodable) -> sqlx::Error {
        sqlx::Error::Decode(Box::new(error))
    }
}

/// Decodes a stored text by `decode`, or names the row it came from.
fn decode<T>(
    table: &'static str,
    row: impl Display,
    column: &'static str,
    text: &str,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Result<T, Undecodable> {
    decode(text).ok_or_else(|| Undecodable::new(table, row, column, text))
}

/// A stored region code.
fn region(table: &'static str, row: impl Display, column: &'static str, text: &str) -> Result<RegionCode, Undecodable> {
    decode(table, row, column, text, |text| RegionCode::parse(text).ok())
}
