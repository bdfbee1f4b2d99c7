use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Sex as encoded in the 17th digit of a resident ID (odd = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// An 18-character resident ID number whose structure and check digit are valid.
///
/// `Debug` and `Display` print the masked form (`320102********1234`); the clear value is only
/// available through [`ResidentId::expose`], which names the act at each call site.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

/// Why a string is not a valid resident ID number. Messages never repeat the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("a resident ID number has 18 characters, this one has {0}")]
    WrongLength(usize),
    #[error("a resident ID number is 17 digits followed by a digit or X")]
    NotDigits,
    #[error("the region part of the resident ID number names no province")]
    UnknownProvince,
    #[error("the birth date in the resident ID number is not a real date")]
    BadBirthDate,
    #[error("the birth date in the resident ID number is in the future")]
    FutureBirthDate,
    #[error("the check digit of the resident ID number is wrong (ISO 7064 MOD 11-2)")]
    WrongCheckDigit,
}

impl From<ResidentIdError> for nol_messages::Msg {
    fn from(error: ResidentIdError) -> nol_messages::Msg {
        error.message()
    }
}

impl ResidentIdError {
    /// What a person reads, from the catalogue.
    pub fn message(&self) -> nol_messages::Msg {
        use nol_messages::Common;
        match self {
            ResidentIdError::WrongLength(length) => Common::ResidentIdLength { length: *length },
            ResidentIdError::NotDigits => Common::ResidentIdNotDigits,
            ResidentIdError::UnknownProvince => Common::ResidentIdUnknownProvince,
            ResidentIdError::BadBirthDate => Common::ResidentIdBadBirthDate,
            ResidentIdError::FutureBirthDate => Common::ResidentIdFutureBirthDate,
            ResidentIdError::WrongCheckDigit => Common::ResidentIdCheckDigit,
        }
        .into()
    }
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// GB/T 2260 province prefixes. Older IDs carry county codes that no longer exist, so only the
/// province part is checked against the standard.
const PROVINCE_PREFIXES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    // Taiwan, Hong Kong and Macao residents' numbers issued on the mainland.
    "71", "81", "82",
];

impl ResidentId {
    /// Validates length, digits, province, birth date and the ISO 7064 MOD 11-2 check digit; a
    /// birth date is "in the future" after today in China Standard Time.
    pub fn parse(text: &str) -> Result<Self, ResidentIdError> {
        Self::parse_on(text, china_date(Utc::now()))
    }

    /// As [`ResidentId::parse`], judging "future" against `today`.
    pub fn parse_on(text: &str, today: NaiveDate) -> Result<Self, ResidentIdError> {
        let normalized = text.trim().to_ascii_uppercase();
        let length = normalized.chars().count();
        if length != 18 {
            return Err(ResidentIdError::WrongLength(length));
        }
        let bytes = normalized.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit) || !(bytes[17].is_ascii_digit() || bytes[17] == b'X') {
            return Err(ResidentIdError::NotDigits);
        }
        if !PROVINCE_PREFIXES.contains(&&normalized[..2]) {
            return Err(ResidentIdError::UnknownProvince);
        }
        let birth_date =
            NaiveDate::parse_from_str(&normalized[6..14], "%Y%m%d").map_err(|_| ResidentIdError::BadBirthDate)?;
        if birth_date.year() < 1900 {
            return Err(ResidentIdError::BadBirthDate);
        }
        if birth_date > today {
            return Err(ResidentIdError::FutureBirthDate);
        }
        if check_char(&bytes[..17]) != char::from(bytes[17]) {
            return Err(ResidentIdError::WrongCheckDigit);
        }
        Ok(ResidentId(normalized))
    }

    /// Builds a valid number from its parts, computing the check digit (test data, generators).
    pub fn from_parts(region: &str, birth_date: NaiveDate, sequence: u16) -> Result<Self, ResidentIdError> {
        let body = format!("{region}{}{:03}", birth_date.format("%Y%m%d"), sequence % 1000);
        if body.len() != 17 || !body.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ResidentIdError::NotDigits);
        }
        let check = check_char(body.as_bytes());
        ResidentId::parse(&format!("{body}{check}"))
    }

    /// The clear number. Call only to encrypt, seal or show it to a caller entitled to see it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first six digits: the region where the number was issued.
    pub fn issuing_region(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Checked in parse.
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").unwrap_or_default()
    }

    pub fn sex(&self) -> Sex {
        let digit = self.0.as_bytes()[16] - b'0';
        if digit % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// `**************1234`: the form shown to anyone who does not need the full number — the
    /// last four characters, with which (and the name, region and birth year shown beside it) a
    /// case worker recognises the child. It keeps neither the issuing region nor the birth date:
    /// with the birth date, which views used to show, `320102********1234` was the whole number.
    pub fn masked(&self) -> String {
        mask_last_four(&self.0)
    }

    /// The year of birth: what masked views show instead of the birth date.
    pub fn birth_year(&self) -> i32 {
        self.birth_date().year()
    }
}

/// The last four characters of a resident ID number — or of an old-form mask, or of whatever a
/// bureau's file had in the ID cell — with every character before them an asterisk
/// (`**************1234` for a number); four characters or fewer are masked whole.
pub fn mask_last_four(text: &str) -> String {
    let chars: Vec<char> = text.trim().chars().collect();
    let hidden = if chars.len() <= 4 { chars.len() } else { chars.len() - 4 };
    chars.iter().enumerate().map(|(index, &character)| if index < hidden { '*' } else { character }).collect()
}

/// The calendar date of `time` in China Standard Time (UTC+8, no daylight saving): a child born
/// just after midnight in Beijing is born "today" there while it is still yesterday in UTC.
fn china_date(time: DateTime<Utc>) -> NaiveDate {
    (time + chrono::Duration::hours(8)).date_naive()
}

fn check_char(first_seventeen: &[u8]) -> char {
    let sum: u32 = first_seventeen.iter().zip(WEIGHTS).map(|(digit, weight)| u32::from(digit - b'0') * weight).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    #[test]
    fn accepts_the_standard_example_and_derives_birth_date_and_sex() {
        // The worked example of GB 11643-1999.
        let id = ResidentId::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.masked(), "**************002X");
        assert_eq!(id.birth_year(), 1949);
        assert_eq!(format!("{id:?}"), "ResidentId(**************002X)");
        assert!(!format!("{id}").contains("19491231") && !format!("{id}").contains("110105"));
        assert_eq!(mask_last_four("110105********002X"), "**************002X", "an old-form mask is cut too");
        assert_eq!(mask_last_four("12"), "**");
    }

    #[test]
    fn today_is_the_date_in_china() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        assert_eq!(china_date(at("2026-11-28T15:59:59Z")), NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        assert_eq!(china_date(at("2026-11-28T16:00:00Z")), NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(china_date(at("2026-11-29T00:30:00+08:00")), NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
    }

    #[test]
    fn lowercase_x_is_normalized() {
        let id = ResidentId::parse_on("11010519491231002x", today()).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn rejects_each_kind_of_bad_number() {
        let cases = [
            ("1101051949123100", ResidentIdError::WrongLength(16)),
            ("11010519491231002Y", ResidentIdError::NotDigits),
            ("99010519491231002X", ResidentIdError::UnknownProvince),
            ("110105194902300028", ResidentIdError::BadBirthDate),
            ("110105203001010021", ResidentIdError::FutureBirthDate),
            ("110105194912310021", ResidentIdError::WrongCheckDigit),
        ];
        for (text, expected) in cases {
            let error = ResidentId::parse_on(text, today()).unwrap_err();
            assert_eq!(error, expected, "{text}");
            assert!(!error.to_string().contains(text));
        }
    }

    #[test]
    fn from_parts_computes_a_valid_check_digit() {
        let birth = NaiveDate::from_ymd_opt(2014, 3, 9).unwrap();
        for sequence in 0..200 {
            let id = ResidentId::from_parts("341221", birth, sequence).unwrap();
            assert_eq!(ResidentId::parse_on(id.expose(), today()).unwrap(), id);
            assert_eq!(id.sex() == Sex::Male, sequence % 2 == 1);
        }
    }
}
