//! Opaque page tokens for lists ordered newest first by (time, id).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ServiceError;

/// Default and maximum page sizes.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// Where the next page starts: strictly after (`time`, `id`) in descending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.time.timestamp_micros(), self.id))
    }

    pub fn decode(token: &str) -> Result<Option<Cursor>, ServiceError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || ServiceError::invalid("page_token", nol_messages::Common::NotAPageToken);
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Some(Cursor {
            time: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        }))
    }
}

/// Clamps a requested page size: 0 means the default.
pub fn page_size(requested: i32) -> Result<i64, ServiceError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size if size < 0 => Err(ServiceError::invalid("page_size", nol_messages::Common::NegativePageSize)),
        size => Ok(i64::from(size).min(MAX_PAGE_SIZE)),
    }
}

/// Given rows fetched with `LIMIT size + 1`, keeps `size` of them and returns the next token.
pub fn next_page<T>(rows: &mut Vec<T>, size: i64, cursor_of: impl Fn(&T) -> Cursor) -> String {
    if rows.len() as i64 > size {
        rows.truncate(size as usize);
        rows.last().map(|row| cursor_of(row).encode()).unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let cursor =
            Cursor { time: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(), id: Uuid::now_v7() };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), Some(cursor));
        assert_eq!(Cursor::decode("").unwrap(), None);
        assert!(Cursor::decode("not a token").is_err());
    }

    #[test]
    fn next_page_only_when_more_rows_exist() {
        let time = Utc::now();
        let mut rows: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        assert!(next_page(&mut rows.clone(), 3, |id| Cursor { time, id: *id }).is_empty());
        let token = next_page(&mut rows, 2, |id| Cursor { time, id: *id });
        assert_eq!(rows.len(), 2);
        assert_eq!(Cursor::decode(&token).unwrap().unwrap().id, rows[1]);
    }
}
