//! Which role may call which RPC: one table for every service of the province, checked in one
//! place (the access layer every service's gRPC server runs, `nol_runtime::access`) before any
//! handler sees the request. A method the table does not name is refused to everyone, so a new
//! RPC is closed until someone decides who may call it.
//!
//! Roles gate calls here; regions, schools and ownership (a case's county, a report's approving
//! city, an R6 approver of the owning county) depend on the data and stay with the handlers.
//!
//! The reasons, by role:
//! - **caseworker** (county bureau): does the county's work — pupils, cases, suspects, semester
//!   checks, hand-offs, help between regions, its bi-monthly report — and reads what its county holds.
//! - **school**: registers and keeps its own pupils, reports them absent, marks their attendance at
//!   the semester check and logs home-teaching visits to them; it lists no case, suspect or
//!   cross-check item of the county.
//! - **supervisor** (city or province): reads, exports and supervises its subtree; runs
//!   cross-checks and imports of other agencies' lists; approves reports up the tree.
//! - **approver** (county poverty-alleviation group, R6): decides deferrals and reads the cases it
//!   decides on, their files, history, attempts and evidence; nothing else.
//! - **operator**: the backbone (backlogs, dead letters) and the sweeps; no child's record.
//! - **system** (bureau systems): imports and registry upkeep, reads of what its region holds; it
//!   does not change cases.

use crate::{Caller, Denied, Role};

use Role::{Approver, Caseworker, Operator, School, Supervisor, System};

/// One RPC and the roles that may call it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The gRPC path: `/nol.v1.CaseService/OpenCase`.
    pub method: &'static str,
    pub roles: &'static [Role],
}

const fn rule(method: &'static str, roles: &'static [Role]) -> Rule {
    Rule { method, roles }
}

/// Calls that carry no token: health and reflection (the path's service part).
pub const PUBLIC_SERVICES: &[&str] = &["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"];

/// Every RPC of every service, and who may call it.
pub const TABLE: &[Rule] = &[
    // AdminService: every process serves it; backlogs and dead letters carry no child's record.
    rule("/nol.v1.AdminService/GetBackboneStatus", &[Supervisor, Operator]),
    rule("/nol.v1.AdminService/ListDeadLetters", &[Supervisor, Operator]),
    // RegistryService: pupils (a school only its own), schools, imports, cross-checks (R15).
    rule("/nol.v1.RegistryService/CreatePupil", &[Caseworker, School, System]),
    rule("/nol.v1.RegistryService/GetPupil", &[Caseworker, School, Supervisor, System]),
    rule("/nol.v1.RegistryService/ListPupils", &[Caseworker, School, Supervisor, System]),
    rule("/nol.v1.RegistryService/UpdatePupilStatus", &[Caseworker, School, System]),
    rule("/nol.v1.RegistryService/TransferPupil", &[Caseworker, School, System]),
    rule("/nol.v1.RegistryService/ListPupilStatusChanges", &[Caseworker, School, Supervisor, System]),
    rule("/nol.v1.RegistryService/ListDataQualityIssues", &[Caseworker, School, Supervisor, System]),
    rule("/nol.v1.RegistryService/SetPupilResidentId", &[Caseworker, School, System]),
    rule("/nol.v1.RegistryService/CreateSchool", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/GetSchool", &[Caseworker, School, Supervisor, System]),
    rule("/nol.v1.RegistryService/ListSchools", &[Caseworker, School, Supervisor, System]),
    // A file of pupils names any school of the county: bureaus and their systems import, a school
    // registers its pupils one by one.
    rule("/nol.v1.RegistryService/ImportPupils", &[Caseworker, System]),
    rule("/nol.v1.RegistryService/ImportSchools", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/ImportHouseholdRegister", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/ImportPovertyRegistry", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/GetImportJob", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/DownloadImportErrors", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/RunCrossCheck", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/ListCheckItems", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.RegistryService/CloseCheckItem", &[Caseworker, Supervisor]),
    rule("/nol.v1.RegistryService/ExportCheckItems", &[Caseworker, Supervisor, System]),
    // CaseService: the county works its cases; supervisors and systems read; approvers read what
    // they decide on.
    rule("/nol.v1.CaseService/OpenCase", &[Caseworker]),
    rule("/nol.v1.CaseService/GetCase", &[Caseworker, Supervisor, Approver, System]),
    rule("/nol.v1.CaseService/ListCases", &[Caseworker, Supervisor, Approver, System]),
    rule("/nol.v1.CaseService/ExportCases", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.CaseService/GetCaseFile", &[Caseworker, Supervisor, Approver, System]),
    rule("/nol.v1.CaseService/ListCaseHistory", &[Caseworker, Supervisor, Approver, System]),
    rule("/nol.v1.CaseService/UpdateCauses", &[Caseworker]),
    rule("/nol.v1.CaseService/AddOfficer", &[Caseworker]),
    rule("/nol.v1.CaseService/AddMeasure", &[Caseworker]),
    rule("/nol.v1.CaseService/CompleteMeasure", &[Caseworker]),
    rule("/nol.v1.CaseService/AddEvidence", &[Caseworker]),
    // Evidence files (medical certificates, court rulings) are for the people who decide.
    rule("/nol.v1.CaseService/GetEvidenceFile", &[Caseworker, Supervisor, Approver]),
    rule("/nol.v1.CaseService/RecordPersuasionAttempt", &[Caseworker]),
    rule("/nol.v1.CaseService/ListPersuasionAttempts", &[Caseworker, Supervisor, Approver, System]),
    rule("/nol.v1.CaseService/ReturnToSchool", &[Caseworker]),
    rule("/nol.v1.CaseService/StartMonitoring", &[Caseworker]),
    rule("/nol.v1.CaseService/CloseCase", &[Caseworker]),
    rule("/nol.v1.CaseService/StartHomeTeaching", &[Caseworker]),
    // R4: the school's teachers teach at home; a school logs visits to its own pupils only.
    rule("/nol.v1.CaseService/LogHomeTeachingVisit", &[Caseworker, School]),
    rule("/nol.v1.CaseService/RequestDeferral", &[Caseworker]),
    rule("/nol.v1.CaseService/ApproveDeferral", &[Approver]),
    rule("/nol.v1.CaseService/RejectDeferral", &[Approver]),
    rule("/nol.v1.CaseService/ExemptCase", &[Caseworker]),
    rule("/nol.v1.CaseService/RecordRelapse", &[Caseworker]),
    // Called by the transfer service with the case worker's own token (RequestHandoff).
    rule("/nol.v1.CaseHandoffService/ReserveCase", &[Caseworker]),
    // Called by the transfer service with the case worker's own token (AcceptHandoff); the case
    // service also checks that the caller's certificate is the transfer service's.
    rule("/nol.v1.CaseHandoffService/TakeInHandoff", &[Caseworker]),
    // SuspectService: schools report, case workers decide.
    rule("/nol.v1.SuspectService/ReportAbsence", &[School]),
    rule("/nol.v1.SuspectService/RecordSuspect", &[Caseworker]),
    rule("/nol.v1.SuspectService/ConfirmSuspect", &[Caseworker]),
    rule("/nol.v1.SuspectService/CloseSuspect", &[Caseworker]),
    rule("/nol.v1.SuspectService/GetSuspect", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.SuspectService/ListSuspects", &[Caseworker, Supervisor, System]),
    // SupervisionService: deadlines and supervision (R12), semester checks (R13).
    rule("/nol.v1.SupervisionService/GetDeadlinePolicy", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.SupervisionService/UpdateDeadlinePolicy", &[Supervisor, System]),
    rule("/nol.v1.SupervisionService/ListOverdueWork", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.SupervisionService/SweepOverdueWork", &[Operator, System]),
    rule("/nol.v1.SupervisionService/ListSupervisionItems", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.SupervisionService/AnswerSupervisionItem", &[Caseworker]),
    rule("/nol.v1.SupervisionService/CloseSupervisionItem", &[Supervisor]),
    rule("/nol.v1.SupervisionService/StartSemesterCheck", &[Caseworker, Supervisor]),
    rule("/nol.v1.SupervisionService/ListSemesterChecks", &[Caseworker, School, Supervisor, System]),
    // A school lists and marks the items of its own pupils only.
    rule("/nol.v1.SupervisionService/ListSemesterCheckItems", &[Caseworker, School, Supervisor]),
    rule("/nol.v1.SupervisionService/MarkSemesterAttendance", &[Caseworker, School]),
    rule("/nol.v1.SupervisionService/RecordAbsenceFollowUp", &[Caseworker]),
    rule("/nol.v1.SupervisionService/GetSemesterCheckProgress", &[Caseworker, Supervisor, System]),
    // TransferService: hand-offs (R11) and transfer-in requests are the county's work.
    rule("/nol.v1.TransferService/RequestHandoff", &[Caseworker]),
    rule("/nol.v1.TransferService/GetHandoff", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.TransferService/ListHandoffs", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.TransferService/AcceptHandoff", &[Caseworker]),
    rule("/nol.v1.TransferService/RejectHandoff", &[Caseworker]),
    rule("/nol.v1.TransferService/CancelHandoff", &[Caseworker]),
    rule("/nol.v1.TransferService/GetHandoffNotice", &[Caseworker, Supervisor]),
    rule("/nol.v1.TransferService/RequestTransferIn", &[Caseworker]),
    rule("/nol.v1.TransferService/ListTransferIns", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.TransferService/ApproveTransferIn", &[Caseworker]),
    rule("/nol.v1.TransferService/DeclineTransferIn", &[Caseworker]),
    // AssistanceService: help between regions (协查, R8, R10).
    rule("/nol.v1.AssistanceService/RequestAssistance", &[Caseworker]),
    rule("/nol.v1.AssistanceService/GetAssistance", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.AssistanceService/ListAssistance", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.AssistanceService/AcceptAssistance", &[Caseworker]),
    rule("/nol.v1.AssistanceService/DeclineAssistance", &[Caseworker]),
    rule("/nol.v1.AssistanceService/ReportAssistance", &[Caseworker]),
    rule("/nol.v1.AssistanceService/CloseAssistance", &[Caseworker]),
    rule("/nol.v1.AssistanceService/ListHukouNotices", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.AssistanceService/AcknowledgeHukouNotice", &[Caseworker]),
    rule("/nol.v1.AssistanceService/OfferAssistance", &[Caseworker]),
    // ReportingService: counts, not children; reports go up the tree (R16).
    rule("/nol.v1.ReportingService/GetRegionSummary", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.ReportingService/GetPeriodFigures", &[Caseworker, Supervisor, System]),
    // A county drafts its bi-monthly report, a city its semester report.
    rule("/nol.v1.ReportingService/DraftReport", &[Caseworker, Supervisor]),
    rule("/nol.v1.ReportingService/SubmitReport", &[Caseworker, Supervisor]),
    rule("/nol.v1.ReportingService/ApproveReport", &[Supervisor]),
    rule("/nol.v1.ReportingService/ReturnReport", &[Supervisor]),
    rule("/nol.v1.ReportingService/AcceptReport", &[Supervisor]),
    rule("/nol.v1.ReportingService/ReopenReport", &[Supervisor]),
    rule("/nol.v1.ReportingService/GetReport", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.ReportingService/ExportPeriodFigures", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.ReportingService/GetReportPdf", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.ReportingService/ImportCohortEntrants", &[Supervisor, System]),
    rule("/nol.v1.ReportingService/GetConsolidationRate", &[Caseworker, Supervisor, System]),
    rule("/nol.v1.ReportingService/SweepLateReports", &[Supervisor, Operator, System]),
];

/// The roles that may call `method` (a gRPC path), or `None` when the table does not name it.
pub fn roles_for(method: &str) -> Option<&'static [Role]> {
    TABLE.iter().find(|rule| rule.method == method).map(|rule| rule.roles)
}

/// True for a call that carries no token (health, reflection).
pub fn is_public(method: &str) -> bool {
    let service = method.trim_start_matches('/').split('/').next().unwrap_or_default();
    PUBLIC_SERVICES.contains(&service)
}

/// Refuses a caller whose role the table does not allow for `method`, and everyone for a method
/// the table does not name.
pub fn authorize(caller: &Caller, method: &str) -> Result<(), Denied> {
    match roles_for(method) {
        Some(roles) if roles.contains(&caller.role) => Ok(()),
        Some(_) => Err(Denied::Call { role: caller.role, method: method.to_owned() }),
        None => Err(Denied::NotListed { method: method.to_owned() }),
    }
}

/// The table as Markdown, one row per RPC and a column per role, as `docs/SECURITY.md` shows it.
pub fn markdown() -> String {
    let mut text = String::from("| RPC |");
    for role in Role::ALL {
        text.push_str(&format!(" {role} |"));
    }
    text.push_str("\n|---|");
    text.push_str(&":-:|".repeat(Role::ALL.len()));
    text.push('\n');
    for rule in TABLE {
        let name = rule.method.trim_start_matches("/nol.v1.");
        text.push_str(&format!("| `{name}` |"));
        for role in Role::ALL {
            text.push_str(if rule.roles.contains(&role) { " ✓ |" } else { " |" });
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use nol_region::RegionCode;

    #[test]
    fn every_method_is_listed_once_and_allows_someone() {
        let mut seen = std::collections::HashSet::new();
        for rule in TABLE {
            assert!(seen.insert(rule.method), "{} is listed twice", rule.method);
            assert!(!rule.roles.is_empty(), "{} allows no one", rule.method);
            assert!(rule.method.starts_with("/nol.v1.") && rule.method.matches('/').count() == 2, "{}", rule.method);
        }
    }

    #[test]
    fn the_table_decides_and_an_unlisted_method_is_refused() {
        let xuanwu = RegionCode::parse("320102").unwrap();
        let school = Caller::for_tests(xuanwu, Role::School);
        let caseworker = Caller::for_tests(xuanwu, Role::Caseworker);
        assert!(authorize(&caseworker, "/nol.v1.CaseService/ListCases").is_ok());
        let refused = authorize(&school, "/nol.v1.CaseService/ListCases").unwrap_err();
        assert_eq!(refused.message().zh(), "学校角色无权调用案件服务的 ListCases（/nol.v1.CaseService/ListCases）");
        let unknown = authorize(&caseworker, "/nol.v1.CaseService/DeleteEverything").unwrap_err();
        assert!(matches!(unknown, Denied::NotListed { .. }));
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(!is_public("/nol.v1.CaseService/GetCase"));
        assert!(!is_public("/grpc.health.v1.Healthy/Check"));
    }

    #[test]
    fn operators_read_no_childs_record() {
        let children = ["RegistryService", "CaseService", "SuspectService", "TransferService", "AssistanceService"];
        for rule in TABLE {
            if children.iter().any(|service| rule.method.contains(&format!(".{service}/"))) {
                assert!(!rule.roles.contains(&Operator), "{}", rule.method);
            }
        }
    }

    /// `docs/SECURITY.md` shows the table the code enforces: regenerate it with
    /// `NOL_WRITE_DOCS=1 cargo test -p nol-auth policy` when the table changes.
    #[test]
    fn security_md_shows_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/SECURITY.md");
        let document = std::fs::read_to_string(path).expect("docs/SECURITY.md");
        let (begin, end) = ("<!-- rpc-role-table:begin -->\n", "<!-- rpc-role-table:end -->");
        let start = document.find(begin).expect("the table's begin marker") + begin.len();
        let stop = document.find(end).expect("the table's end marker");
        let table = markdown();
        if document[start..stop] != table {
            if std::env::var_os("NOL_WRITE_DOCS").is_some() {
                std::fs::write(path, format!("{}{table}{}", &document[..start], &document[stop..])).unwrap();
            } else {
                panic!(
                    "docs/SECURITY.md's RPC × role table differs from nol_auth::policy::TABLE; \
                     run NOL_WRITE_DOCS=1 cargo test -p nol-auth policy"
                );
            }
        }
    }
}
