//! The time business rules see (deadlines, overdue work, "dates in the future"). In production it
//! is the system clock; tests and drills point `NOL_CLOCK_FILE` at a file holding an RFC 3339
//! instant (e.g. `2027-03-01T08:00:00+08:00`) and move time by rewriting it. Only rule time comes
//! from here: timestamps of rows and events stay the database's and the system's.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

/// Where "now" comes from; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    file: Option<Arc<PathBuf>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { file: None }
    }

    /// Time read from `path` on every call (the system clock when the file is missing or empty).
    pub fn from_file(path: PathBuf) -> Clock {
        Clock { file: Some(Arc::new(path)) }
    }

    /// Now, by this clock. A file that does not hold a readable instant is logged and ignored.
    pub fn now(&self) -> DateTime<Utc> {
        if let Some(path) = &self.file {
            match std::fs::read_to_string(path.as_ref()) {
                Ok(text) if !text.trim().is_empty() => match DateTime::parse_from_rfc3339(text.trim()) {
                    Ok(time) => return time.with_timezone(&Utc),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "clock file unreadable; using the system clock")
                    }
                },
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "clock file unreadable; using the system clock")
                }
            }
        }
        Utc::now()
    }

    /// Today in China Standard Time (UTC+8), the calendar the bureaus work by.
    pub fn today(&self) -> NaiveDate {
        china_date(self.now())
    }
}

/// The calendar date of `time` in China Standard Time (UTC+8, no daylight saving).
pub fn china_date(time: DateTime<Utc>) -> NaiveDate {
    (time + chrono::Duration::hours(8)).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_file_moves_time_and_a_missing_one_falls_back() {
        let dir = std::env::temp_dir().join(format!("nol-clock-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("now");
        let clock = Clock::from_file(path.clone());
        let before = Utc::now();
        assert!(clock.now() >= before);
        std::fs::write(&path, "2027-03-01T08:00:00+08:00\n").unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2027-03-01T00:00:00+00:00");
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2027, 3, 1).unwrap());
        std::fs::write(&path, "2027-03-01T23:30:00+08:00").unwrap();
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2027, 3, 1).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
