//! What the hand-off tests share: migrant children of 南京市玄武区 with open cases, requests and
//! decisions through the transfer API, waits for a state on either side, and the checks every
//! hand-off test ends with (no dead letter anywhere, ownership through the API).

use nol_auth::Role;
use nol_proto::v1::*;
use nol_stack::Clients;

use super::{TestStack, eventually, resident_id};

/// Registers a sixth-grader at 3201020001 (南京市玄武区) whose hukou is in `hukou`, and opens a
/// case for the child; returns the case.
pub async fn migrant_case(clients: &Clients, name: &str, sequence: u16, hukou: &str) -> DropoutCase {
    migrant_case_at(clients, "3201020001", name, sequence, hukou).await
}

/// Registers a sixth-grader at `school` whose hukou is in `hukou`, and opens a case for the child;
/// returns the case.
pub async fn migrant_case_at(clients: &Clients, school: &str, name: &str, sequence: u16, hukou: &str) -> DropoutCase {
    let pupil = clients
        .registry
        .clone()
        .create_pupil(CreatePupilRequest {
            pupil: Some(Pupil {
                full_name: name.into(),
                resident_id: resident_id(hukou, sequence),
                hukou_region_code: hukou.into(),
                school_code: school.into(),
                grade: 6,
                ..Default::default()
            }),
        })
        .await
        .expect("pupil registered")
        .into_inner()
        .pupil
        .unwrap();
    clients
        .cases
        .clone()
        .open_case(OpenCaseRequest {
            pupil_id: pupil.pupil_id,
            causes: vec![DropoutCause::FamilyPoverty as i32],
            notes: "随父母返回户籍地".into(),
        })
        .await
        .expect("case opened")
        .into_inner()
        .dropout_case
        .unwrap()
}

/// The origin asks `destination` to take the case over.
pub async fn request(clients: &Clients, case_id: &str, destination: &str) -> Result<Handoff, tonic::Status> {
    clients
        .transfer
        .clone()
        .request_handoff(RequestHandoffRequest {
            case_id: case_id.into(),
            destination_region_code: destination.into(),
            reason: "家庭已返回户籍地".into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner().handoff.unwrap())
}

/// The hand-off as the caller's side keeps it.
pub async fn handoff(clients: &Clients, handoff_id: &str, direction: HandoffDirection) -> Handoff {
    clients
        .transfer
        .clone()
        .get_handoff(GetHandoffRequest { handoff_id: handoff_id.into(), direction: direction as i32 })
        .await
        .expect("hand-off read")
        .into_inner()
        .handoff
        .unwrap()
}

/// Waits until the caller's side of the hand-off is in `state`.
pub async fn until(clients: &Clients, handoff_id: &str, direction: HandoffDirection, state: HandoffState) -> Handoff {
    let what = format!("hand-off {handoff_id} ({}) to be {}", direction.as_str_name(), state.as_str_name());
    eventually(&what, || {
        let mut transfer = clients.transfer.clone();
        let handoff_id = handoff_id.to_owned();
        async move {
            let found = transfer.get_handoff(GetHandoffRequest { handoff_id, direction: direction as i32 }).await;
            match found {
                Ok(response) => Ok(response.into_inner().handoff.filter(|handoff| handoff.state == state as i32)),
                Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
                Err(status) => Err(status.into()),
            }
        }
    })
    .await
}

/// Waits until the destination received the request (and the origin recorded the receipt).
pub async fn delivered(origin: &Clients, destination: &Clients, handoff_id: &str) -> Handoff {
    let incoming = until(destination, handoff_id, HandoffDirection::Incoming, HandoffState::Delivered).await;
    until(origin, handoff_id, HandoffDirection::Outgoing, HandoffState::Delivered).await;
    incoming
}

/// The destination accepts the hand-off.
pub async fn accept(clients: &Clients, handoff_id: &str) -> Result<Handoff, tonic::Status> {
    clients
        .transfer
        .clone()
        .accept_handoff(AcceptHandoffRequest { handoff_id: handoff_id.into() })
        .await
        .map(|response| response.into_inner().handoff.unwrap_or_default())
}

pub fn reject(handoff_id: &str, reason: HandoffRejectReason, note: &str) -> RejectHandoffRequest {
    RejectHandoffRequest { handoff_id: handoff_id.into(), reason: reason as i32, note: note.into() }
}

pub fn cancel(handoff_id: &str) -> CancelHandoffRequest {
    CancelHandoffRequest { handoff_id: handoff_id.into(), reason: "家长表示暂不返回户籍地".into() }
}

/// The case as its owner sees it.
pub async fn case(clients: &Clients, case_id: &str) -> DropoutCase {
    clients
        .cases
        .clone()
        .get_case(GetCaseRequest { case_id: case_id.into(), ..Default::default() })
        .await
        .expect("case read")
        .into_inner()
        .dropout_case
        .unwrap()
}

/// Waits until the case is in `status`.
pub async fn until_case(clients: &Clients, case_id: &str, status: CaseStatus) -> DropoutCase {
    eventually(&format!("case {case_id} to be {}", status.as_str_name()), || {
        let mut cases = clients.cases.clone();
        let case_id = case_id.to_owned();
        async move {
            let case = cases.get_case(GetCaseRequest { case_id, ..Default::default() }).await?.into_inner();
            Ok(case.dropout_case.filter(|case| case.status == status as i32))
        }
    })
    .await
}

/// The case's history, oldest first.
pub async fn history(clients: &Clients, case_id: &str) -> Vec<CaseHistoryEntry> {
    clients
        .cases
        .clone()
        .list_case_history(ListCaseHistoryRequest {
            case_id: case_id.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("history listed")
        .into_inner()
        .entries
}

/// The caller's cases taken in from `origin_case_id`.
pub async fn taken_in(clients: &Clients, origin_case_id: &str) -> Vec<DropoutCase> {
    let listed = clients
        .cases
        .clone()
        .list_cases(ListCasesRequest { page_size: 500, ..Default::default() })
        .await
        .expect("cases listed")
        .into_inner();
    listed.dropout_cases.into_iter().filter(|case| case.origin_case_id == origin_case_id).collect()
}

/// Waits until the case the origin handed over is open at the destination; returns it.
pub async fn until_taken_in(clients: &Clients, origin_case_id: &str) -> DropoutCase {
    eventually(&format!("case {origin_case_id} to be taken in"), || async move {
        Ok(taken_in(clients, origin_case_id).await.into_iter().next())
    })
    .await
}

/// Waits until every outbox and consumer of every province is drained; returns each service's
/// dead letters (province, service URL, count).
pub async fn drained(test: &TestStack) -> Vec<(&'static str, String, i64)> {
    eventually("every outbox and consumer to be drained", || async move {
        let mut statuses = Vec::new();
        for &province in &test.provinces {
            let stack = test.stack().province(province);
            // One live process per service is enough: replicas share the outbox and consumers.
            let mut seen = std::collections::BTreeSet::new();
            for process in stack.running() {
                if !seen.insert(process.name.split(['@', '#']).next().unwrap_or_default().to_owned()) {
                    continue;
                }
                let token = test.token(province, Role::Operator);
                let mut admin = nol_stack::client::admin(&process.url(), &stack.client_tls, &token)?;
                let status = admin.get_backbone_status(GetBackboneStatusRequest {}).await?.into_inner().status.unwrap();
                if status.outbox_unsent + status.consumer_pending + status.consumer_ack_pending > 0 {
                    return Ok(None);
                }
                statuses.push((province, process.url(), status.dead_letters));
            }
        }
        Ok(Some(statuses))
    })
    .await
}

/// Waits until everything is drained, then asserts that no service parked a dead letter: on the
/// hand-off path a dead letter is an alarm, never an outcome.
pub async fn settled_without_dead_letters(test: &TestStack) {
    for (province, url, dead_letters) in drained(test).await {
        assert_eq!(dead_letters, 0, "dead letters in {province} at {url}");
    }
}

/// Every case of the caller's region, page by page.
pub async fn all_cases(clients: &Clients) -> anyhow::Result<Vec<DropoutCase>> {
    let mut cases = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .cases
            .clone()
            .list_cases(ListCasesRequest { page_size: 500, page_token, ..Default::default() })
            .await?
            .into_inner();
        cases.extend(page.dropout_cases);
        if page.next_page_token.is_empty() {
            return Ok(cases);
        }
        page_token = page.next_page_token;
    }
}

/// Every hand-off of the caller's region in `direction`, whatever its state, page by page.
pub async fn all_handoffs(clients: &Clients, direction: HandoffDirection) -> anyhow::Result<Vec<Handoff>> {
    let mut handoffs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .transfer
            .clone()
            .list_handoffs(ListHandoffsRequest {
                direction: direction as i32,
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        handoffs.extend(page.handoffs);
        if page.next_page_token.is_empty() {
            return Ok(handoffs);
        }
        page_token = page.next_page_token;
    }
}

/// Every transfer-in request of the caller's region in `direction`, page by page.
pub async fn all_transfer_ins(clients: &Clients, direction: HandoffDirection) -> anyhow::Result<Vec<TransferIn>> {
    let mut requests = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .transfer
            .clone()
            .list_transfer_ins(ListTransferInsRequest {
                direction: direction as i32,
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        requests.extend(page.transfer_ins);
        if page.next_page_token.is_empty() {
            return Ok(requests);
        }
        page_token = page.next_page_token;
    }
}

/// A status's Chinese message (google.rpc.LocalizedMessage, zh-CN).
pub fn zh(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let localized = status.get_details_localized_message().expect("a localized message");
    assert_eq!(localized.locale, "zh-CN");
    localized.message
}

/// The fields named in an INVALID_ARGUMENT's `google.rpc.BadRequest`.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status.get_details_bad_request().expect("BadRequest").field_violations.into_iter().map(|v| v.field).collect()
}
