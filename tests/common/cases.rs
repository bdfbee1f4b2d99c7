//! What the case-file tests share: children of 南京市玄武区 with the flags the rules look at, cases
//! opened for them, persuasion attempts, evidence, a refusal's code and text, and the reporting
//! service's figures for a region.

use futures::StreamExt;
use nol_proto::v1::*;
use nol_stack::Clients;
use tonic::Code;

use super::resident_id;

/// The first day of the case tests, 09:00 China time on the rule clock.
pub const FIRST_DAY: &str = "2027-03-01";

/// The rule-clock instant of 09:00 China time on `day` (YYYY-MM-DD).
pub fn nine_am(day: &str) -> String {
    format!("{day}T09:00:00+08:00")
}

/// Registers a sixth-grader at 3201020001 (南京市玄武区) born 2013-05-02 with hukou in `hukou`;
/// returns the pupil's id.
async fn pupil(
    clients: &Clients,
    name: &str,
    sequence: u16,
    hukou: &str,
    disability: DisabilityGrade,
    poor: bool,
) -> String {
    clients
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: name.into(),
                resident_id: resident_id(hukou, sequence),
                hukou_region_code: hukou.into(),
                school_code: "3201020001".into(),
                grade: 6,
                disability_grade: disability as i32,
                registered_poor: poor,
                poor_household_id: if poor { "320102-H-0001".into() } else { String::new() },
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .unwrap()
        .pupil_id
}

async fn open(clients: &Clients, pupil_id: String, causes: &[DropoutCause]) -> DropoutCase {
    clients
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id,
            causes: causes.iter().map(|cause| *cause as i32).collect(),
            notes: String::new(),
        })
        .await
        .expect("case opened")
        .into_inner()
        .dropout_case
        .unwrap()
}

/// The children the case tests follow, all of 南京市玄武区 and 13 years old on the first day.
#[derive(Debug, Clone, Copy)]
pub enum Child {
    /// 王小一: no disability, not poor, hukou here; left for learning difficulties.
    Xiaoyi,
    /// 王小二: a severe disability (grade one).
    Xiaoer,
    /// 王小三: left for religious reasons.
    Xiaosan,
    /// 王小四: a migrant child (hukou in 临泉县, Anhui) of a registered-poor household, disability
    /// grade three (not severe); left for the family's poverty.
    Xiaosi,
    /// 王小五: left for another reason.
    Xiaowu,
}

impl Child {
    /// Registers the child and opens a case for it.
    pub async fn open_case(self, clients: &Clients) -> DropoutCase {
        use DisabilityGrade::{None, One, Three};
        let (name, sequence, hukou, disability, poor, cause) = match self {
            Child::Xiaoyi => ("王小一", 11, "320102", None, false, DropoutCause::LearningDifficulty),
            Child::Xiaoer => ("王小二", 13, "320102", One, false, DropoutCause::Disability),
            Child::Xiaosan => ("王小三", 15, "320102", None, false, DropoutCause::Religion),
            Child::Xiaosi => ("王小四", 17, "341221", Three, true, DropoutCause::FamilyPoverty),
            Child::Xiaowu => ("王小五", 19, "320102", None, false, DropoutCause::Other),
        };
        open(clients, pupil(clients, name, sequence, hukou, disability, poor).await, &[cause]).await
    }
}

/// A home visit on `day` by `departments`, with emotional and legal means.
pub fn attempt(day: &str, departments: &[PersuasionDepartment], outcome: PersuasionOutcome) -> PersuasionAttempt {
    PersuasionAttempt {
        attempt_date: day.into(),
        departments: departments.iter().map(|department| *department as i32).collect(),
        means: vec![PersuasionMeans::Emotional as i32, PersuasionMeans::Legal as i32],
        place: PersuasionPlace::Home as i32,
        outcome: outcome as i32,
        notes: "上门劝返".into(),
        ..Default::default()
    }
}

pub async fn record(
    clients: &Clients,
    case_id: &str,
    attempt: PersuasionAttempt,
) -> Result<DropoutCase, tonic::Status> {
    clients
        .cases
        .clone()
        .record_persuasion_attempt(RecordPersuasionAttemptRequest { case_id: case_id.into(), attempt: Some(attempt) })
        .await
        .map(|response| response.into_inner().dropout_case.unwrap())
}

/// Adds evidence of `kind` issued on 2027-02-20, with a file if given.
pub async fn evidence(
    clients: &Clients,
    case_id: &str,
    kind: EvidenceType,
    file: Option<(&str, Vec<u8>)>,
) -> Result<CaseEvidence, tonic::Status> {
    let (file_name, file_content) = file.map(|(name, bytes)| (name.to_owned(), bytes)).unwrap_or_default();
    clients
        .cases
        .clone()
        .add_evidence(AddEvidenceRequest {
            case_id: case_id.into(),
            evidence: Some(CaseEvidence {
                r#type: kind as i32,
                document_number: "苏2027-001".into(),
                issuing_body: "玄武区人民医院".into(),
                issued_on: "2027-02-20".into(),
                file_name,
                ..Default::default()
            }),
            file_content,
        })
        .await
        .map(|response| response.into_inner().evidence.unwrap())
}

/// The child went back to 南京市玄武区示范小学, 六年级二班, on `day` (empty: today).
pub fn return_to(case_id: &str, day: &str) -> ReturnToSchoolRequest {
    ReturnToSchoolRequest {
        case_id: case_id.into(),
        returned: Some(ReturnDetails {
            school_name: "南京市玄武区示范小学".into(),
            school_code: "3201020001".into(),
            class_name: "六年级二班".into(),
            returned_on: day.into(),
        }),
    }
}

/// Asserts that a call was refused with `code` and a message containing `text`.
#[track_caller]
pub fn refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, text: &str) {
    match result {
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert!(status.message().contains(text), "expected {text:?} in {:?}", status.message());
        }
        Ok(value) => panic!("expected {code:?} ({text}), got {value:?}"),
    }
}

/// The file a server stream sends in chunks: its name (from the first chunk) and its bytes.
pub async fn collect<T>(mut stream: tonic::Streaming<T>, part: impl Fn(T) -> (Vec<u8>, String)) -> (String, Vec<u8>) {
    let (mut name, mut bytes) = (String::new(), Vec::new());
    while let Some(message) = stream.next().await {
        let (data, file_name) = part(message.expect("chunk"));
        if name.is_empty() {
            name = file_name;
        }
        bytes.extend(data);
    }
    (name, bytes)
}

async fn summary(clients: &Clients, region: &str) -> RegionSummary {
    clients
        .reporting
        .clone()
        .get_region_summary(GetRegionSummaryRequest { region_code: region.into() })
        .await
        .expect("summary")
        .into_inner()
        .summary
        .unwrap()
}

/// Waits until the reporting service's summary of `region` satisfies `counted`, and returns it.
pub async fn reported(clients: &Clients, region: &str, counted: impl Fn(&RegionSummary) -> bool) -> RegionSummary {
    super::eventually("reporting to count the case changes", || {
        let clients = clients.clone();
        let counted = &counted;
        async move {
            let summary = summary(&clients, region).await;
            Ok(counted(&summary).then_some(summary))
        }
    })
    .await
}

/// Returns a case's child to school 3201020001 and puts the case in monitoring.
pub async fn into_monitoring(clients: &Clients, case_id: &str) {
    clients
        .cases
        .clone()
        .return_to_school(ReturnToSchoolRequest {
            case_id: case_id.into(),
            returned: Some(ReturnDetails {
                school_name: "南京市玄武区示范小学".into(),
                school_code: "3201020001".into(),
                class_name: "五年级二班".into(),
                returned_on: String::new(),
            }),
        })
        .await
        .expect("returned");
    clients
        .cases
        .clone()
        .start_monitoring(StartMonitoringRequest { case_id: case_id.into() })
        .await
        .expect("monitoring");
}
