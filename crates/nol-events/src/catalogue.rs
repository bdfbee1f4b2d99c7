//! Every event type on the backbone, with the payload schema version this build produces.
//! Payload messages are in `proto/nol/v1/events.proto`; a change that is not backwards compatible
//! bumps the version, and consumers park versions newer than they know as dead letters.

use crate::EventType;

/// `PupilRegistered`: the registry recorded a new pupil.
pub const PUPIL_REGISTERED: EventType = EventType { service: "registry", name: "pupil_registered", version: 1 };

/// `CaseOpened`: a case became active in a region (opened there, or taken in by hand-off).
pub const CASE_OPENED: EventType = EventType { service: "cases", name: "case_opened", version: 1 };

/// `CaseHandoffPending`: a hand-off of the case was requested; the case is still owned here.
pub const CASE_HANDOFF_PENDING: EventType = EventType { service: "cases", name: "case_handoff_pending", version: 1 };

/// `CaseHandedOver`: the destination accepted; the case is no longer owned here.
pub const CASE_HANDED_OVER: EventType = EventType { service: "cases", name: "case_handed_over", version: 1 };

/// `HandoffRequested`: the origin asks a destination region to take over a case.
pub const HANDOFF_REQUESTED: EventType = EventType { service: "transfer", name: "handoff_requested", version: 1 };

/// `HandoffReceived`: the destination's receipt.
pub const HANDOFF_RECEIVED: EventType = EventType { service: "transfer", name: "handoff_received", version: 1 };

/// `HandoffAccepted`: the destination accepted; it owns the case now.
pub const HANDOFF_ACCEPTED: EventType = EventType { service: "transfer", name: "handoff_accepted", version: 1 };

/// `HandoffCompleted`: the origin learned of the accept.
pub const HANDOFF_COMPLETED: EventType = EventType { service: "transfer", name: "handoff_completed", version: 1 };

/// `HandoffOverdue`: not accepted by the deadline; escalated to the origin's parent bureau.
pub const HANDOFF_OVERDUE: EventType = EventType { service: "transfer", name: "handoff_overdue", version: 1 };

/// `SuspectedOutOfSchool`: a cross-check found a school-age child enrolled nowhere (R15).
pub const PUPIL_SUSPECTED_OUT_OF_SCHOOL: EventType =
    EventType { service: "registry", name: "pupil_suspected_out_of_school", version: 1 };

/// `PupilStatusChanged`: a pupil's enrollment status changed, or the pupil moved school.
pub const PUPIL_STATUS_CHANGED: EventType = EventType { service: "registry", name: "pupil_status_changed", version: 1 };

/// `PupilsImported`: a bulk import added pupils in one county.
pub const PUPILS_IMPORTED: EventType = EventType { service: "registry", name: "pupils_imported", version: 1 };

/// `CaseStatusChanged`: a case moved between statuses (returned, monitoring, relapse, ...).
pub const CASE_STATUS_CHANGED: EventType = EventType { service: "cases", name: "case_status_changed", version: 1 };

/// `PersuasionRecorded`: a persuasion attempt was recorded on a case (R5).
pub const PERSUASION_RECORDED: EventType = EventType { service: "cases", name: "persuasion_recorded", version: 1 };

/// `AssistanceRequested`: a child was found working in another region (R8).
pub const ASSISTANCE_REQUESTED: EventType = EventType { service: "cases", name: "assistance_requested", version: 1 };

/// `SuspectRecorded`: an item entered the suspected-dropout ledger (R14).
pub const SUSPECT_RECORDED: EventType = EventType { service: "cases", name: "suspect_recorded", version: 1 };

/// `SuspectResolved`: a suspected-dropout item left the ledger with its outcome.
pub const SUSPECT_RESOLVED: EventType = EventType { service: "cases", name: "suspect_resolved", version: 1 };

/// `SupervisionRaised`: overdue work escalated to the parent bureau (督办, R12).
pub const SUPERVISION_RAISED: EventType = EventType { service: "cases", name: "supervision_raised", version: 1 };

/// `SupervisionClosed`: the supervising bureau closed a supervision item.
pub const SUPERVISION_CLOSED: EventType = EventType { service: "cases", name: "supervision_closed", version: 1 };

/// `CaseReserved`: the origin's case service reserved a case for a hand-off (R11).
pub const CASE_RESERVED: EventType = EventType { service: "cases", name: "case_reserved", version: 1 };

/// `CaseTakeIn`: the destination's case service opened the case of an accepted hand-off.
pub const CASE_TAKEN_IN: EventType = EventType { service: "cases", name: "case_taken_in", version: 1 };

/// `CaseTakeIn`: the destination's case service refused an accepted hand-off (R2: the child already
/// has an active case here).
pub const CASE_TAKE_IN_REFUSED: EventType = EventType { service: "cases", name: "case_take_in_refused", version: 1 };

/// `TransferInMatched`: the owner's case service looked up the child of a transfer-in request.
pub const TRANSFER_IN_MATCHED: EventType = EventType { service: "cases", name: "transfer_in_matched", version: 1 };

/// `HandoffArrived`: a hand-off request was recorded at the destination (its own services watch it).
pub const HANDOFF_ARRIVED: EventType = EventType { service: "transfer", name: "handoff_arrived", version: 1 };

/// `HandoffRejected`: the destination refused a hand-off; the origin keeps the case.
pub const HANDOFF_REJECTED: EventType = EventType { service: "transfer", name: "handoff_rejected", version: 1 };

/// `HandoffCancelled`: the origin asks to withdraw a hand-off.
pub const HANDOFF_CANCEL_REQUESTED: EventType =
    EventType { service: "transfer", name: "handoff_cancel_requested", version: 1 };

/// `HandoffCancelled`: the destination confirmed the withdrawal of a hand-off.
pub const HANDOFF_CANCELLED: EventType = EventType { service: "transfer", name: "handoff_cancelled", version: 1 };

/// `TransferInRequested`: a region asks another for a child's case.
pub const TRANSFER_IN_REQUESTED: EventType =
    EventType { service: "transfer", name: "transfer_in_requested", version: 1 };

/// `TransferInAnswered`: the owner's answer to a transfer-in request.
pub const TRANSFER_IN_ANSWERED: EventType = EventType { service: "transfer", name: "transfer_in_answered", version: 1 };

/// `HandoffDecisionDue`: the case service set or moved the day a hand-off's decision is due, on the
/// origin's or the destination's side (R11, R12).
pub const HANDOFF_DECISION_DUE: EventType = EventType { service: "cases", name: "handoff_decision_due", version: 1 };

/// `ReportStepTaken`: a step of a county's bi-monthly report's workflow (R16).
pub const REPORT_STEP: EventType = EventType { service: "reporting", name: "report_step", version: 1 };

/// `ReportOverdue`: a county's report not submitted by its due date (R12, R16).
pub const REPORT_OVERDUE: EventType = EventType { service: "reporting", name: "report_overdue", version: 1 };

/// `SemesterCheckListed`: a semester-start check listed a county's monitored children (R13).
pub const SEMESTER_CHECK_LISTED: EventType = EventType { service: "cases", name: "semester_check_listed", version: 1 };

/// `CheckItemMarked`: a child of a semester-start check was marked or followed up (R13).
pub const CHECK_ITEM_MARKED: EventType = EventType { service: "cases", name: "check_item_marked", version: 1 };

/// `AssistanceAsked`: the owner of a case asks another county for help (cross-region; and told to
/// the owner's own case service).
pub const ASSISTANCE_ASKED: EventType = EventType { service: "transfer", name: "assistance_requested", version: 1 };

/// `AssistanceAsked` with `offered_by`: the hukou region offered help on a case it was told of
/// (R10), so the request starts accepted (cross-region, to the owner).
pub const ASSISTANCE_OFFERED: EventType = EventType { service: "transfer", name: "assistance_offered", version: 1 };

/// `AssistanceAnswered`: the helping county received, accepted or declined a request.
pub const ASSISTANCE_ANSWERED: EventType = EventType { service: "transfer", name: "assistance_answered", version: 1 };

/// `AssistanceReported`: the helping county reports attempts, findings and evidence.
pub const ASSISTANCE_REPORTED: EventType = EventType { service: "transfer", name: "assistance_reported", version: 1 };

/// `AssistanceClosed`: the owner closed a request.
pub const ASSISTANCE_CLOSED: EventType = EventType { service: "transfer", name: "assistance_closed", version: 1 };

/// `HukouNoticeDue`: a case opened for a migrant child; the hukou region is to be told (R10).
pub const HUKOU_NOTICE_DUE: EventType = EventType { service: "cases", name: "hukou_notice_due", version: 1 };

/// `HukouNoticeSent`: the owner tells the hukou region (cross-region).
pub const HUKOU_NOTICE: EventType = EventType { service: "transfer", name: "hukou_notice", version: 1 };

/// `HukouNoticeAnswered`: the hukou region's receipt or acknowledgment (cross-region).
pub const HUKOU_NOTICE_ANSWERED: EventType =
    EventType { service: "transfer", name: "hukou_notice_answered", version: 1 };

/// All of them, for documentation and tests.
pub const ALL: [EventType; 42] = [
    ASSISTANCE_OFFERED,
    HUKOU_NOTICE_DUE,
    HUKOU_NOTICE,
    HUKOU_NOTICE_ANSWERED,
    ASSISTANCE_ASKED,
    ASSISTANCE_ANSWERED,
    ASSISTANCE_REPORTED,
    ASSISTANCE_CLOSED,
    SEMESTER_CHECK_LISTED,
    CHECK_ITEM_MARKED,
    REPORT_OVERDUE,
    REPORT_STEP,
    HANDOFF_DECISION_DUE,
    CASE_RESERVED,
    CASE_TAKEN_IN,
    CASE_TAKE_IN_REFUSED,
    TRANSFER_IN_MATCHED,
    HANDOFF_ARRIVED,
    HANDOFF_REJECTED,
    HANDOFF_CANCEL_REQUESTED,
    HANDOFF_CANCELLED,
    TRANSFER_IN_REQUESTED,
    TRANSFER_IN_ANSWERED,
    CASE_STATUS_CHANGED,
    PERSUASION_RECORDED,
    ASSISTANCE_REQUESTED,
    SUSPECT_RECORDED,
    SUSPECT_RESOLVED,
    SUPERVISION_RAISED,
    SUPERVISION_CLOSED,
    PUPIL_REGISTERED,
    CASE_OPENED,
    CASE_HANDOFF_PENDING,
    CASE_HANDED_OVER,
    HANDOFF_REQUESTED,
    HANDOFF_RECEIVED,
    HANDOFF_ACCEPTED,
    HANDOFF_COMPLETED,
    HANDOFF_OVERDUE,
    PUPIL_SUSPECTED_OUT_OF_SCHOOL,
    PUPIL_STATUS_CHANGED,
    PUPILS_IMPORTED,
];
