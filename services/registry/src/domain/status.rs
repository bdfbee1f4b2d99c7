//! Enrollment statuses (学籍状态) and which changes between them are allowed.

use chrono::NaiveDate;
use nol_proto::v1::EnrollmentStatus;

/// A pupil's enrollment status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Enrolled,
    Graduated,
    TransferredOut,
    DroppedOut,
    Deferred,
    Suspended,
    HomeTaught,
    Exempt,
    Deceased,
}

const ALL: [Status; 9] = [
    Status::Enrolled,
    Status::Graduated,
    Status::TransferredOut,
    Status::DroppedOut,
    Status::Deferred,
    Status::Suspended,
    Status::HomeTaught,
    Status::Exempt,
    Status::Deceased,
];

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enrolled => "enrolled",
            Status::Graduated => "graduated",
            Status::TransferredOut => "transferred_out",
            Status::DroppedOut => "dropped_out",
            Status::Deferred => "deferred",
            Status::Suspended => "suspended",
            Status::HomeTaught => "home_taught",
            Status::Exempt => "exempt",
            Status::Deceased => "deceased",
        }
    }

    /// The word a bureau's file uses.
    pub fn chinese(self) -> &'static str {
        match self {
            Status::Enrolled => "在读",
            Status::Graduated => "毕业",
            Status::TransferredOut => "转出",
            Status::DroppedOut => "辍学",
            Status::Deferred => "延缓入学",
            Status::Suspended => "休学",
            Status::HomeTaught => "送教上门",
            Status::Exempt => "免学",
            Status::Deceased => "死亡",
        }
    }

    /// From the stored name, or a bureau's word for it.
    pub fn parse(text: &str) -> Option<Status> {
        let text = text.trim();
        ALL.into_iter().find(|status| status.as_str() == text || status.chinese() == text).or(match text {
            "在校" | "在籍" => Some(Status::Enrolled),
            "已毕业" => Some(Status::Graduated),
            "转学" | "已转出" => Some(Status::TransferredOut),
            "失学" => Some(Status::DroppedOut),
            "缓学" => Some(Status::Deferred),
            "送教" => Some(Status::HomeTaught),
            "免于入学" => Some(Status::Exempt),
            "已故" => Some(Status::Deceased),
            _ => None,
        })
    }

    pub fn to_proto(self) -> EnrollmentStatus {
        match self {
            Status::Enrolled => EnrollmentStatus::Enrolled,
            Status::Graduated => EnrollmentStatus::Graduated,
            Status::TransferredOut => EnrollmentStatus::TransferredOut,
            Status::DroppedOut => EnrollmentStatus::DroppedOut,
            Status::Deferred => EnrollmentStatus::Deferred,
            Status::Suspended => EnrollmentStatus::Suspended,
            Status::HomeTaught => EnrollmentStatus::HomeTaught,
            Status::Exempt => EnrollmentStatus::Exempt,
            Status::Deceased => EnrollmentStatus::Deceased,
        }
    }

    pub fn from_proto(status: EnrollmentStatus) -> Option<Status> {
        ALL.into_iter().find(|candidate| candidate.to_proto() == status)
    }

    /// Counted as attending compulsory education somewhere (not a suspect for the cross-check):
    /// every status but "transferred out of the province".
    pub fn accounts_for_the_child(self) -> bool {
        self != Status::TransferredOut
    }
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefusal {
    #[error("the pupil is already {}", .0.chinese())]
    Unchanged(Status),
    #[error("a pupil who is {} cannot become {}", .from.chinese(), .to.chinese())]
    NotAllowed { from: Status, to: Status },
    #[error("the effective date is in the future")]
    FutureDate,
    #[error("the effective date is before the pupil's birth")]
    BeforeBirth,
}

/// Checks a change of status taking effect on `effective`.
pub fn check_change(
    from: Status,
    to: Status,
    effective: NaiveDate,
    today: NaiveDate,
    birth_date: Option<NaiveDate>,
) -> Result<(), StatusRefusal> {
    use Status::*;
    if from == to {
        return Err(StatusRefusal::Unchanged(from));
    }
    let allowed = match from {
        Enrolled => true,
        DroppedOut => !matches!(to, Graduated),
        Deferred | Suspended => matches!(to, Enrolled | DroppedOut | Exempt | Deceased | TransferredOut | HomeTaught),
        HomeTaught => matches!(to, Enrolled | Exempt | Deceased | Graduated | TransferredOut | DroppedOut),
        Exempt => matches!(to, Enrolled | Deceased | HomeTaught),
        TransferredOut => matches!(to, Enrolled),
        Graduated | Deceased => false,
    };
    if !allowed {
        return Err(StatusRefusal::NotAllowed { from, to });
    }
    if effective > today {
        return Err(StatusRefusal::FutureDate);
    }
    if birth_date.is_some_and(|birth| effective < birth) {
        return Err(StatusRefusal::BeforeBirth);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn names_and_words_round_trip() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(Status::parse(status.chinese()), Some(status));
            assert_eq!(Status::from_proto(status.to_proto()), Some(status));
        }
        assert_eq!(Status::parse("在校"), Some(Status::Enrolled));
        assert_eq!(Status::parse("旅游"), None);
    }

    #[test]
    fn changes_follow_the_life_of_a_pupil() {
        let today = day("2026-11-29");
        let birth = Some(day("2013-05-02"));
        assert!(check_change(Status::Enrolled, Status::DroppedOut, day("2026-11-01"), today, birth).is_ok());
        assert!(check_change(Status::DroppedOut, Status::Enrolled, day("2026-11-20"), today, birth).is_ok());
        assert_eq!(
            check_change(Status::Enrolled, Status::Enrolled, today, today, birth),
            Err(StatusRefusal::Unchanged(Status::Enrolled))
        );
        assert!(matches!(
            check_change(Status::Deceased, Status::Enrolled, today, today, birth),
            Err(StatusRefusal::NotAllowed { .. })
        ));
        assert!(matches!(
            check_change(Status::Graduated, Status::DroppedOut, today, today, birth),
            Err(StatusRefusal::NotAllowed { .. })
        ));
        assert_eq!(
            check_change(Status::Enrolled, Status::Suspended, day("2027-01-01"), today, birth),
            Err(StatusRefusal::FutureDate)
        );
        assert_eq!(
            check_change(Status::Enrolled, Status::Suspended, day("2012-01-01"), today, birth),
            Err(StatusRefusal::BeforeBirth)
        );
    }
}
