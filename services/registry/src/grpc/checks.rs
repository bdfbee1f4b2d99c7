//! Cross-checks: running them, their items, closing items, exporting them.

use nol_auth::{Caller, Role};
use nol_messages::{Common, Registry as Message};

/// The most cross-check items one export file holds.
const EXPORT_LIMIT: i64 = 500_000;
use nol_proto::v1::{
    CheckItem, CheckItemKind, CheckOutcome, CloseCheckItemRequest, CrossCheckRun, ExportCheckItemsRequest,
    ListCheckItemsRequest, ListCheckItemsResponse, RunCrossCheckRequest,
};
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{ServiceError, audit};

use super::Registry;
use crate::domain::checks::{Kind, Outcome, check_close};
use crate::domain::pupil::parse_date;
use crate::store::checks::{self, ItemRecord};

fn to_proto(item: &ItemRecord) -> CheckItem {
    CheckItem {
        item_id: item.id.to_string(),
        kind: item.kind.to_proto() as i32,
        region_code: item.region.to_string(),
        full_name: item.full_name.clone(),
        resident_id_masked: item.resident_id_masked.clone(),
        reason: item.reason.clone(),
        open: item.open,
        outcome: item.outcome.map(Outcome::to_proto).unwrap_or_default() as i32,
        outcome_detail: item.outcome_detail.clone().unwrap_or_default(),
        closed_by: item.closed_by.clone().unwrap_or_default(),
        first_found_time: Some(nol_runtime::time::timestamp(item.first_found_at)),
        last_found_time: Some(nol_runtime::time::timestamp(item.last_found_at)),
        close_time: nol_runtime::time::optional_timestamp(item.closed_at),
    }
}

fn kind_filter(kind: i32) -> Result<Option<Kind>, ServiceError> {
    match CheckItemKind::try_from(kind) {
        Ok(CheckItemKind::Unspecified) => Ok(None),
        Ok(kind) => Ok(Kind::from_proto(kind)),
        Err(_) => Err(ServiceError::invalid("kind", Message::NotAFindingKind)),
    }
}

impl Registry {
    pub(super) async fn run_check(
        &self,
        caller: &Caller,
        request: RunCrossCheckRequest,
    ) -> Result<CrossCheckRun, ServiceError> {
        caller.require_role(
            &[Role::Caseworker, Role::Supervisor, Role::System],
            nol_messages::vocab::Action::RunCrossChecks,
        )?;
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let as_of = if request.as_of_date.trim().is_empty() {
            self.clock.today()
        } else {
            parse_date(&request.as_of_date).ok_or_else(|| ServiceError::invalid("as_of_date", Common::NotADate))?
        };
        self.crosscheck.run(caller, region, as_of).await
    }

    pub(super) async fn list_items(
        &self,
        caller: &Caller,
        request: ListCheckItemsRequest,
    ) -> Result<ListCheckItemsResponse, ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let kind = kind_filter(request.kind)?;
        let size = paging::page_size(request.page_size)?;
        let after = Cursor::decode(&request.page_token)?;
        let mut items =
            checks::list(&self.pool, region.subtree_prefix(), kind, request.include_closed, after, size + 1).await?;
        let next_page_token =
            paging::next_page(&mut items, size, |item| Cursor { time: item.first_found_at, id: item.id });
        let ids: Vec<String> = items.iter().map(|item| item.id.to_string()).collect();
        audit::record_read(&self.pool, caller, "check_item.list", "check_item", &ids).await?;
        Ok(ListCheckItemsResponse { items: items.iter().map(to_proto).collect(), next_page_token })
    }

    pub(super) async fn close_item(
        &self,
        caller: &Caller,
        request: CloseCheckItemRequest,
    ) -> Result<CheckItem, ServiceError> {
        caller
            .require_role(&[Role::Caseworker, Role::Supervisor], nol_messages::vocab::Action::CloseCrossCheckItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let outcome = Outcome::from_proto(CheckOutcome::try_from(request.outcome).unwrap_or_default());
        let outcome = check_close(outcome, &request.outcome_detail).map_err(|reason| {
            let field = if request.outcome == 0 { "outcome" } else { "outcome_detail" };
            ServiceError::invalid(field, reason)
        })?;
        let mut tx = self.pool.begin().await?;
        let item = checks::get(&mut *tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(Message::CheckItemUnknown { id: id.to_string() }))?;
        caller.require_scope(&item.region)?;
        if !checks::close(&mut tx, id, outcome, request.outcome_detail.trim(), &caller.subject).await? {
            return Err(ServiceError::precondition(Message::CheckItemClosed {
                outcome: item.outcome.map(Outcome::as_stored).unwrap_or_default().to_owned(),
                closed_by: item.closed_by.unwrap_or_default(),
            }));
        }
        audit::record(&mut tx, caller, "check_item.close", "check_item", &[id.to_string()]).await?;
        tx.commit().await?;
        let closed = checks::get(&self.pool, id).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(to_proto(&closed))
    }

    pub(super) async fn export_items(
        &self,
        caller: &Caller,
        request: ExportCheckItemsRequest,
    ) -> Result<(std::fs::File, String), ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let kind = kind_filter(request.kind)?;
        // Read a page at a time from one snapshot and written to a temporary file as read (the
        // case export's way): memory holds a page and the ids, never the whole list; capped.
        let internal = |error: nol_tabular::TableError| ServiceError::Internal(error.into());
        let mut file = crate::export::ItemsXlsx::new().map_err(internal)?;
        let mut ids: Vec<uuid::Uuid> = Vec::new();
        let mut snapshot = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *snapshot).await?;
        let mut after = None;
        loop {
            let page = checks::list(
                &mut *snapshot,
                region.subtree_prefix(),
                kind,
                request.include_closed,
                after,
                self.export_page,
            )
            .await?;
            if ids.len() as i64 + page.len() as i64 > EXPORT_LIMIT {
                return Err(ServiceError::precondition(Message::TooManyItemsToExport {
                    limit: nol_messages::Count(EXPORT_LIMIT as u64),
                }));
            }
            file.write(&page).map_err(internal)?;
            ids.extend(page.iter().map(|item| item.id));
            after = page.last().map(|item| Cursor { time: item.first_found_at, id: item.id });
            if (page.len() as i64) < self.export_page {
                break;
            }
        }
        snapshot.commit().await?;
        let mut conn = self.pool.acquire().await?;
        let audited = ("check_item.export", "check_item");
        let page = self.export_page as usize;
        let file =
            nol_runtime::files::finish_export(move || file.finish(), &mut conn, caller, audited, &ids, page).await?;
        Ok((file, format!("核查结果-{region}.xlsx")))
    }
}
