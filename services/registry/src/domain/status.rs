//! Enrollment statuses (学籍状态) and which changes between them are allowed.

use chrono::NaiveDate;
use nol_messages::{Msg, Registry};
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
    /// The text stored in `pupil.enrollment_status` and the history. Never derived from the
    /// contract's names: renaming a proto value must not change what is stored.
    pub fn as_stored(self) -> &'static str {
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

    /// The status a stored text names; None for text no status is stored as.
    pub fn from_stored(text: &str) -> Option<Status> {
        match text {
            "enrolled" => Some(Status::Enrolled),
            "graduated" => Some(Status::Graduated),
            "transferred_out" => Some(Status::TransferredOut),
            "dropped_out" => Some(Status::DroppedOut),
            "deferred" => Some(Status::Deferred),
            "suspended" => Some(Status::Suspended),
            "home_taught" => Some(Status::HomeTaught),
            "exempt" => Some(Status::Exempt),
            "deceased" => Some(Status::Deceased),
            _ => None,
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

    /// From a file's cell: the stored name, or a bureau's word for it.
    pub fn parse(text: &str) -> Option<Status> {
        let text = text.trim();
        Status::from_stored(text).or_else(|| ALL.into_iter().find(|status| status.chinese() == text)).or(match text {
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

    /// Whether a pupil of this status may move school (a transfer keeps the status).
    pub fn may_move_school(self) -> bool {
        matches!(self, Status::Enrolled | Status::Suspended | Status::Deferred | Status::HomeTaught)
    }
}

/// Why a status change or a transfer is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusRefusal {
    Unchanged(Status),
    NotAllowed { from: Status, to: Status },
    FutureDate,
    BeforeBirth,
}

impl From<StatusRefusal> for Msg {
    fn from(refusal: StatusRefusal) -> Msg {
        match refusal {
            StatusRefusal::Unchanged(status) => Registry::StatusUnchanged { status: status.chinese().to_owned() },
            StatusRefusal::NotAllowed { from, to } => {
                Registry::StatusChangeNotAllowed { from: from.chinese().to_owned(), to: to.chinese().to_owned() }
            }
            StatusRefusal::FutureDate => Registry::EffectiveDateInFuture,
            StatusRefusal::BeforeBirth => Registry::EffectiveDateBeforeBirth,
        }
        .into()
    }
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

/// Why a transfer to another school is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferRefusal {
    /// The pupil's status does not let it move (change the status first).
    CannotMove(Status),
    /// The effective date is before the pupil's birth or after today.
    DateOutOfRange,
}

impl From<TransferRefusal> for Msg {
    fn from(refusal: TransferRefusal) -> Msg {
        match refusal {
            TransferRefusal::CannotMove(status) => Registry::CannotMoveSchool { status: status.chinese().to_owned() },
            TransferRefusal::DateOutOfRange => Registry::TransferDateOutOfRange,
        }
        .into()
    }
}

/// Checks a transfer of a pupil of `status` taking effect on `effective`.
pub fn check_transfer(
    status: Status,
    effective: NaiveDate,
    today: NaiveDate,
    birth_date: Option<NaiveDate>,
) -> Result<(), TransferRefusal> {
    if !status.may_move_school() {
        return Err(TransferRefusal::CannotMove(status));
    }
    if birth_date.is_some_and(|birth| effective < birth) || effective > today {
        return Err(TransferRefusal::DateOutOfRange);
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
    fn stored_values_are_pinned() {
        let stored = [
            (Status::Enrolled, "enrolled"),
            (Status::Graduated, "graduated"),
            (Status::TransferredOut, "transferred_out"),
            (Status::DroppedOut, "dropped_out"),
            (Status::Deferred, "deferred"),
            (Status::Suspended, "suspended"),
            (Status::HomeTaught, "home_taught"),
            (Status::Exempt, "exempt"),
            (Status::Deceased, "deceased"),
        ];
        assert_eq!(stored.len(), ALL.len());
        for (status, text) in stored {
            assert_eq!(status.as_stored(), text);
            assert_eq!(Status::from_stored(text), Some(status));
        }
        assert_eq!(Status::from_stored("Enrolled"), None);
        assert_eq!(Status::from_stored("在读"), None);
    }

    #[test]
    fn names_and_words_round_trip() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_stored()), Some(status));
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
        assert_eq!(
            Msg::from(StatusRefusal::NotAllowed { from: Status::Deceased, to: Status::Enrolled }).en(),
            "a pupil who is 死亡 cannot become 在读"
        );
    }

    #[test]
    fn only_pupils_at_school_move_and_never_into_the_future() {
        let today = day("2026-11-29");
        let birth = Some(day("2013-05-02"));
        assert_eq!(check_transfer(Status::Enrolled, day("2026-11-01"), today, birth), Ok(()));
        assert_eq!(check_transfer(Status::HomeTaught, today, today, birth), Ok(()));
        assert_eq!(
            check_transfer(Status::DroppedOut, today, today, birth),
            Err(TransferRefusal::CannotMove(Status::DroppedOut))
        );
        assert_eq!(
            check_transfer(Status::Enrolled, day("2026-11-30"), today, birth),
            Err(TransferRefusal::DateOutOfRange)
        );
        assert_eq!(
            check_transfer(Status::Enrolled, day("2013-05-01"), today, birth),
            Err(TransferRefusal::DateOutOfRange)
        );
        assert_eq!(
            Msg::from(TransferRefusal::CannotMove(Status::Graduated)).en(),
            "a pupil who is 毕业 cannot move school; change the status first"
        );
    }
}
