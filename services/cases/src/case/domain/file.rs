//! What a case file holds besides the case itself: responsible officers (包保责任人), the plan's
//! measures, evidence documents, persuasion attempts, home-teaching visits and deferral requests,
//! as the domain reads them.

use chrono::{DateTime, NaiveDate, Utc};
use nol_proto::v1::{
    DeferralKind, EvidenceType, LearningSupport, MeasureKind, OfficerRole, PersuasionDepartment, PersuasionMeans,
    PersuasionOutcome, PersuasionPlace,
};
use nol_region::RegionCode;
use uuid::Uuid;

use super::DeferralState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub id: Uuid,
    pub full_name: String,
    pub role: OfficerRole,
    pub phone: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    pub id: Uuid,
    pub kind: MeasureKind,
    pub description: String,
    /// The fund paying financial aid (R3).
    pub fund: String,
    /// The forms of learning support (R7).
    pub learning_support: Vec<LearningSupport>,
    pub due_on: NaiveDate,
    pub done_on: Option<NaiveDate>,
    pub done_by: Option<String>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

/// A measure to add to a plan.
#[derive(Debug, Clone)]
pub struct NewMeasure {
    pub kind: MeasureKind,
    pub description: String,
    pub fund: String,
    pub learning_support: Vec<LearningSupport>,
    pub due_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub id: Uuid,
    pub kind: EvidenceType,
    pub document_number: String,
    pub issuing_body: String,
    pub issued_on: NaiveDate,
    pub file_name: String,
    pub file_size: i64,
    pub file_sha256: Option<Vec<u8>>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

/// An evidence document to add, with its file.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub kind: EvidenceType,
    pub document_number: String,
    pub issuing_body: String,
    pub issued_on: NaiveDate,
    pub file_name: String,
    pub content: Vec<u8>,
    pub sha256: Option<Vec<u8>>,
}

/// A persuasion attempt (R5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: Uuid,
    pub attempt_on: NaiveDate,
    pub departments: Vec<PersuasionDepartment>,
    pub means: Vec<PersuasionMeans>,
    pub place: PersuasionPlace,
    /// The work place's county (R8).
    pub place_region: Option<RegionCode>,
    pub outcome: PersuasionOutcome,
    pub notes: String,
    /// A department besides education took part (联合劝返).
    pub joint: bool,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    /// Reported by another county helping with the case: that county.
    pub assisting_region: Option<RegionCode>,
    /// And its request for help.
    pub assistance_id: Option<Uuid>,
}

/// A persuasion attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub attempt_on: NaiveDate,
    pub departments: Vec<PersuasionDepartment>,
    pub means: Vec<PersuasionMeans>,
    pub place: PersuasionPlace,
    pub place_region: Option<RegionCode>,
    pub outcome: PersuasionOutcome,
    pub notes: String,
    pub joint: bool,
    /// Reported by another county helping with the case (协查): that county and its request.
    pub assisted: Option<(RegionCode, Uuid)>,
}

/// A home-teaching visit (送教上门, R4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub id: Uuid,
    pub visited_on: NaiveDate,
    pub teacher: String,
    pub duration_minutes: i32,
    pub content: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// A request for deferral or suspension (R6), decided by the county group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferralRequest {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: DeferralKind,
    pub reason: String,
    pub state: DeferralState,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: String,
}

/// Counts shown on a case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseCounts {
    pub case_id: Uuid,
    pub officers: i64,
    pub open_measures: i64,
    pub evidence: i64,
    pub attempts: i64,
    pub joint_attempts: i64,
    pub pending_deferral: Option<Uuid>,
}
