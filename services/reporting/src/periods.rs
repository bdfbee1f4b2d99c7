//! Reporting periods: the six bi-months of the calendar year (双月, January–February …
//! November–December), named `YYYY-Bn`, and the two semesters (`YYYY-S1` spring, `YYYY-S2`
//! autumn) of the cities' semester reports. No I/O.

use chrono::{Datelike, NaiveDate};
use nol_messages::Reporting as Says;

/// One bi-month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    /// 1 (January–February) … 6 (November–December).
    bimonth: u32,
}

impl Period {
    /// A period from its code (`2026-B6`); surrounding blanks are ignored.
    pub fn parse(text: &str) -> Result<Period, Says> {
        let (year, bimonth) = text.trim().split_once("-B").ok_or(Says::Period)?;
        let year: i32 = year.parse().map_err(|_| Says::Period)?;
        let bimonth: u32 = bimonth.parse().map_err(|_| Says::Period)?;
        if !(1..=6).contains(&bimonth) {
            return Err(Says::Period);
        }
        if !(2000..=2100).contains(&year) {
            return Err(Says::PeriodYear);
        }
        Ok(Period { year, bimonth })
    }

    /// The period a day falls in.
    pub fn containing(day: NaiveDate) -> Period {
        Period { year: day.year(), bimonth: day.month0() / 2 + 1 }
    }

    pub fn code(self) -> String {
        format!("{}-B{}", self.year, self.bimonth)
    }

    /// Its first day.
    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.bimonth * 2 - 1, 1).expect("a bi-month starts on a real day")
    }

    /// Its last day.
    pub fn end(self) -> NaiveDate {
        self.next().start().pred_opt().expect("a bi-month ends on a real day")
    }

    /// The period after it.
    pub fn next(self) -> Period {
        if self.bimonth == 6 {
            Period { year: self.year + 1, bimonth: 1 }
        } else {
            Period { year: self.year, bimonth: self.bimonth + 1 }
        }
    }

    /// The period before it.
    pub fn previous(self) -> Period {
        if self.bimonth == 1 {
            Period { year: self.year - 1, bimonth: 6 }
        } else {
            Period { year: self.year, bimonth: self.bimonth - 1 }
        }
    }

    /// Its name as the bureaus write it: `2026年11—12月`.
    pub fn name_zh(self) -> String {
        format!("{}年{}—{}月", self.year, self.bimonth * 2 - 1, self.bimonth * 2)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}-B{}", self.year, self.bimonth)
    }
}

/// A semester (学期): spring `YYYY-S1` (February–August) or autumn `YYYY-S2` (September–January),
/// the period of a city's semester report to the province.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Semester {
    year: i32,
    /// 1 (spring) or 2 (autumn).
    half: u32,
}

impl Semester {
    pub fn parse(text: &str) -> Result<Semester, Says> {
        let (year, half) = text.trim().split_once("-S").ok_or(Says::Period)?;
        let year: i32 = year.parse().map_err(|_| Says::Period)?;
        let half: u32 = half.parse().map_err(|_| Says::Period)?;
        if !(1..=2).contains(&half) {
            return Err(Says::Period);
        }
        if !(2000..=2100).contains(&year) {
            return Err(Says::PeriodYear);
        }
        Ok(Semester { year, half })
    }

    pub fn code(self) -> String {
        format!("{}-S{}", self.year, self.half)
    }

    /// The semester a day falls in: February–August spring, September–January autumn.
    pub fn containing(day: NaiveDate) -> Semester {
        match day.month() {
            1 => Semester { year: day.year() - 1, half: 2 },
            2..=8 => Semester { year: day.year(), half: 1 },
            _ => Semester { year: day.year(), half: 2 },
        }
    }

    /// The semester after it.
    pub fn next(self) -> Semester {
        if self.half == 1 { Semester { year: self.year, half: 2 } } else { Semester { year: self.year + 1, half: 1 } }
    }

    pub fn start(self) -> NaiveDate {
        let month = if self.half == 1 { 2 } else { 9 };
        NaiveDate::from_ymd_opt(self.year, month, 1).expect("a semester starts on a real day")
    }

    pub fn end(self) -> NaiveDate {
        let next = if self.half == 1 {
            NaiveDate::from_ymd_opt(self.year, 9, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year + 1, 2, 1)
        };
        next.and_then(|day| day.pred_opt()).expect("a semester ends on a real day")
    }

    pub fn name_zh(self) -> String {
        format!("{}年{}", self.year, if self.half == 1 { "春季学期" } else { "秋季学期" })
    }
}

/// What a report covers: a bi-month (a county's report to its city) or a semester (a city's
/// report to the province).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPeriod {
    Bimonth(Period),
    Semester(Semester),
}

impl From<Period> for ReportPeriod {
    fn from(period: Period) -> ReportPeriod {
        ReportPeriod::Bimonth(period)
    }
}

impl ReportPeriod {
    /// `YYYY-Bn` or `YYYY-Sn`.
    pub fn parse(text: &str) -> Result<ReportPeriod, Says> {
        if text.trim().contains("-S") {
            Semester::parse(text).map(ReportPeriod::Semester)
        } else {
            Period::parse(text).map(ReportPeriod::Bimonth)
        }
    }

    pub fn is_semester(self) -> bool {
        matches!(self, ReportPeriod::Semester(_))
    }

    pub fn code(self) -> String {
        match self {
            ReportPeriod::Bimonth(period) => period.code(),
            ReportPeriod::Semester(semester) => semester.code(),
        }
    }

    pub fn start(self) -> NaiveDate {
        match self {
            ReportPeriod::Bimonth(period) => period.start(),
            ReportPeriod::Semester(semester) => semester.start(),
        }
    }

    pub fn end(self) -> NaiveDate {
        match self {
            ReportPeriod::Bimonth(period) => period.end(),
            ReportPeriod::Semester(semester) => semester.end(),
        }
    }

    pub fn name_zh(self) -> String {
        match self {
            ReportPeriod::Bimonth(period) => period.name_zh(),
            ReportPeriod::Semester(semester) => semester.name_zh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn six_bi_months_cover_the_year() {
        let first = Period::parse("2028-B1").unwrap();
        assert_eq!((first.start(), first.end()), (day("2028-01-01"), day("2028-02-29")));
        let last = Period::parse(" 2026-B6 ").unwrap();
        assert_eq!((last.start(), last.end()), (day("2026-11-01"), day("2026-12-31")));
        assert_eq!(last.name_zh(), "2026年11—12月");
        assert_eq!(last.next().code(), "2027-B1");
        assert_eq!(last.next().previous(), last);
        let mut period = first;
        for _ in 0..6 {
            assert_eq!(period.next().start(), period.end().succ_opt().unwrap());
            period = period.next();
        }
        assert_eq!(Period::containing(day("2026-12-02")), last);
        assert_eq!(Period::containing(day("2026-03-01")).code(), "2026-B2");
    }

    #[test]
    fn semesters_are_spring_and_autumn() {
        let spring = ReportPeriod::parse("2026-S1").unwrap();
        assert_eq!((spring.start(), spring.end()), (day("2026-02-01"), day("2026-08-31")));
        let autumn = ReportPeriod::parse("2026-S2").unwrap();
        assert_eq!((autumn.start(), autumn.end()), (day("2026-09-01"), day("2027-01-31")));
        assert_eq!(autumn.name_zh(), "2026年秋季学期");
        assert!(autumn.is_semester() && !ReportPeriod::parse("2026-B6").unwrap().is_semester());
        assert_eq!(ReportPeriod::parse("2026-S3"), Err(Says::Period));
        assert_eq!(Semester::containing(day("2027-01-31")).code(), "2026-S2");
        assert_eq!(Semester::containing(day("2027-02-01")).code(), "2027-S1");
        assert_eq!(Semester::containing(day("2026-09-01")).next().code(), "2027-S1");
        assert_eq!(Semester::containing(day("2026-08-31")).next().start(), day("2026-09-01"));
    }

    #[test]
    fn periods_that_do_not_exist_are_refused() {
        for text in ["2026-B0", "2026-B7", "2026-6", "B3", "2026-Bx", ""] {
            assert_eq!(Period::parse(text), Err(Says::Period), "{text}");
        }
        assert_eq!(Period::parse("1999-B1"), Err(Says::PeriodYear));
    }
}
