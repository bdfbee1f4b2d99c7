//! What is counted, and what each event adds. No I/O.

use nol_proto::v1::{CaseOpened, CaseSource};

/// A counted quantity; stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    PupilsRegistered,
    CasesOpened,
    CasesTakenIn,
    CasesHandedOut,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::PupilsRegistered => "pupils_registered",
            Metric::CasesOpened => "cases_opened",
            Metric::CasesTakenIn => "cases_taken_in",
            Metric::CasesHandedOut => "cases_handed_out",
        }
    }
}

/// A case becoming active counts as opened here or as taken in from another region.
pub fn for_case_opened(event: &CaseOpened) -> Metric {
    if event.source == CaseSource::Handoff as i32 { Metric::CasesTakenIn } else { Metric::CasesOpened }
}

/// Cases owned and not handed over: every case that became active here, less those handed out.
pub fn cases_active(opened: i64, taken_in: i64, handed_out: i64) -> i64 {
    opened + taken_in - handed_out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_taken_in_is_not_counted_as_opened_here() {
        let mut event = CaseOpened { source: CaseSource::Local as i32, ..Default::default() };
        assert_eq!(for_case_opened(&event), Metric::CasesOpened);
        event.source = CaseSource::Handoff as i32;
        assert_eq!(for_case_opened(&event), Metric::CasesTakenIn);
        assert_eq!(cases_active(3, 1, 2), 2);
    }
}
