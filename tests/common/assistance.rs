//! What the assistance tests share: a request's listing on either side, waited for until it
//! stands as expected.

use nol_proto::v1::*;
use nol_stack::Clients;

use super::eventually;

/// The requests `clients`' region sees in `direction`.
pub async fn listed(clients: &Clients, direction: HandoffDirection) -> Vec<Assistance> {
    clients
        .assistance
        .clone()
        .list_assistance(ListAssistanceRequest { direction: direction as i32, ..Default::default() })
        .await
        .expect("list assistance")
        .into_inner()
        .assistance
}

/// Waits until the request `id` on `clients`' side (`direction`) satisfies `done`.
pub async fn until_assistance(
    clients: &Clients,
    id: &str,
    direction: HandoffDirection,
    what: &str,
    done: impl Fn(&Assistance) -> bool,
) -> Assistance {
    eventually(what, || async {
        let found = clients
            .assistance
            .clone()
            .get_assistance(GetAssistanceRequest { assistance_id: id.into(), direction: direction as i32 })
            .await;
        Ok(match found {
            Ok(response) => response.into_inner().assistance.filter(|assistance| done(assistance)),
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(status) => return Err(status.into()),
        })
    })
    .await
}

/// Waits until `clients`' region has a request in `direction` satisfying `found`.
pub async fn until_listed(
    clients: &Clients,
    direction: HandoffDirection,
    what: &str,
    found: impl Fn(&Assistance) -> bool,
) -> Assistance {
    eventually(what, || async { Ok(listed(clients, direction).await.into_iter().find(|assistance| found(assistance))) })
        .await
}
