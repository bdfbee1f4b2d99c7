//! Rows for PostgreSQL's binary `COPY … FROM STDIN (FORMAT binary)`: the file header, then per
//! row a field count and each field as a length (−1 for NULL) and its value in the type's binary
//! send format, then the trailer. Only the types the registry copies are here; the column list of
//! the `COPY` statement fixes which type each field must be.

use chrono::NaiveDate;
use uuid::Uuid;

/// A buffer of binary `COPY` rows.
pub struct BinaryCopy {
    buffer: Vec<u8>,
}

/// 2000-01-01, day 0 of PostgreSQL's `date`.
fn postgres_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date")
}

impl BinaryCopy {
    /// A buffer holding the header, sized for about `bytes`.
    pub fn with_capacity(bytes: usize) -> BinaryCopy {
        let mut buffer = Vec::with_capacity(bytes + 21);
        buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buffer.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buffer.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        BinaryCopy { buffer }
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn field(&mut self, value: &[u8]) -> &mut Self {
        let length = i32::try_from(value.len()).expect("a field under 2 GiB");
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.extend_from_slice(value);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buffer.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn uuid(&mut self, value: Uuid) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// `text`: the database is UTF-8.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// `bytea`, or NULL.
    pub fn optional_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(value) => self.field(value),
            None => self.null(),
        }
    }

    pub fn optional_text(&mut self, value: Option<&str>) -> &mut Self {
        self.optional_bytes(value.map(str::as_bytes))
    }

    pub fn int2(&mut self, value: i16) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.field(&[u8::from(value)])
    }

    pub fn date(&mut self, value: NaiveDate) -> &mut Self {
        let days = i32::try_from((value - postgres_epoch()).num_days()).expect("a date PostgreSQL can hold");
        self.field(&days.to_be_bytes())
    }

    /// The rows with the trailer, ready to send.
    pub fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_encoded_in_the_binary_copy_format() {
        let mut copy = BinaryCopy::with_capacity(64);
        copy.row(4).text("李").null().date(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap()).bool(true);
        let bytes = copy.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0, 4]);
        expected.extend_from_slice(&[0, 0, 0, 3, 0xe6, 0x9d, 0x8e]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 0, 0, 1, 1]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }
}
