//! Cross-checks: running them, their items, closing items, exporting them.

use nol_auth::{Caller, Role};
use nol_proto::v1::{
    CheckItem, CheckItemKind, CloseCheckItemRequest, CrossCheckRun, ExportCheckItemsRequest, ListCheckItemsRequest,
    ListCheckItemsResponse, RunCrossCheckRequest,
};
use nol_region::RegionCode;
use nol_runtime::error::parse_uuid;
use nol_runtime::paging::{self, Cursor};
use nol_runtime::{ServiceError, audit};

use super::Registry;
use crate::domain::checks::{Kind, check_close, outcome_from_name};
use crate::domain::pupil::parse_date;
use crate::store::checks::{self, ItemRow};

fn to_proto(row: &ItemRow) -> CheckItem {
    CheckItem {
        item_id: row.id.to_string(),
        kind: Kind::parse(&row.kind).map(Kind::to_proto).unwrap_or_default() as i32,
        region_code: row.region.clone(),
        full_name: row.full_name.clone(),
        resident_id_masked: row.resident_id_masked.clone(),
        reason: row.reason.clone(),
        open: row.open,
        outcome: row.outcome.as_deref().map(outcome_from_name).unwrap_or_default() as i32,
        outcome_detail: row.outcome_detail.clone().unwrap_or_default(),
        closed_by: row.closed_by.clone().unwrap_or_default(),
        first_found_time: Some(nol_runtime::time::timestamp(row.first_found_at)),
        last_found_time: Some(nol_runtime::time::timestamp(row.last_found_at)),
        close_time: nol_runtime::time::optional_timestamp(row.closed_at),
    }
}

fn kind_filter(kind: i32) -> Result<Option<&'static str>, ServiceError> {
    match CheckItemKind::try_from(kind) {
        Ok(CheckItemKind::Unspecified) => Ok(None),
        Ok(kind) => Ok(Kind::from_proto(kind).map(Kind::as_str)),
        Err(_) => Err(ServiceError::invalid("kind", "is not a known kind of finding")),
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
            chrono::Utc::now().date_naive()
        } else {
            parse_date(&request.as_of_date)
                .ok_or_else(|| ServiceError::invalid("as_of_date", "is not a date (YYYY-MM-DD)"))?
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
        let mut rows =
            checks::list(&self.pool, region.subtree_prefix(), kind, request.include_closed, after, size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, size, |row| Cursor { time: row.first_found_at, id: row.id });
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "check_item.list", "check_item", &ids).await?;
        Ok(ListCheckItemsResponse { items: rows.iter().map(to_proto).collect(), next_page_token })
    }

    pub(super) async fn close_item(
        &self,
        caller: &Caller,
        request: CloseCheckItemRequest,
    ) -> Result<CheckItem, ServiceError> {
        caller
            .require_role(&[Role::Caseworker, Role::Supervisor], nol_messages::vocab::Action::CloseCrossCheckItems)?;
        let id = parse_uuid("item_id", &request.item_id)?;
        let outcome = nol_proto::v1::CheckOutcome::try_from(request.outcome).unwrap_or_default();
        let outcome = check_close(outcome, &request.outcome_detail).map_err(|reason| {
            let field = if request.outcome == 0 { "outcome" } else { "outcome_detail" };
            ServiceError::invalid(field, reason)
        })?;
        let mut tx = self.pool.begin().await?;
        let item = checks::get(&mut *tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no cross-check item {id}")))?;
        caller.require_scope(&RegionCode::parse(&item.region).map_err(anyhow::Error::from)?)?;
        if !checks::close(&mut tx, id, outcome, request.outcome_detail.trim(), &caller.subject).await? {
            return Err(ServiceError::precondition(format!(
                "the item was already closed ({}) by {}",
                item.outcome.unwrap_or_default(),
                item.closed_by.unwrap_or_default()
            )));
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
    ) -> Result<(Vec<u8>, String), ServiceError> {
        let region = nol_runtime::region_in_scope(caller, &request.region_code)?;
        let kind = kind_filter(request.kind)?;
        let rows =
            checks::list(&self.pool, region.subtree_prefix(), kind, request.include_closed, None, i64::MAX).await?;
        let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, caller, "check_item.export", "check_item", &ids).await?;
        let bytes = crate::export::items_xlsx(&rows).map_err(|error| ServiceError::Internal(error.into()))?;
        Ok((bytes, format!("核查结果-{region}.xlsx")))
    }
}
