//! The audit log: who read or changed which child's record, from which region, in which trace.

use nol_auth::Caller;
use sqlx::PgConnection;

/// Records one access. Call in the transaction of the change, or right after a read.
pub async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    resource_type: &str,
    resource_ids: &[String],
) -> sqlx::Result<()> {
    if resource_ids.is_empty() {
        return Ok(());
    }
    let trace_id = nol_telemetry::current_trace_id();
    sqlx::query!(
        "INSERT INTO audit_log (actor, actor_role, actor_region, action, resource_type, resource_id, trace_id)
         SELECT $1, $2, $3, $4, $5, id, $7 FROM unnest($6::text[]) AS id",
        &caller.subject,
        caller.role.as_str(),
        caller.region.as_str(),
        action,
        resource_type,
        resource_ids,
        trace_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}
