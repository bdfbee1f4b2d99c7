-- The audit appends plan their statements as PostgreSQL chooses (issue 13, sixth part).
--
-- The services' connections plan every statement for its own values (`plan_cache_mode =
-- force_custom_plan`, `nol_runtime::database::connect`), for their subtree reads. A PL/pgSQL
-- function's statements are prepared statements of the caller's session, so under that setting
-- `audit_append` planned its chain-head lock, its insert and its head update again on every call.
-- They look rows up by key, where the generic plan is as good. With the setting made `auto` for the
-- duration of each call (a function's own SET, restored when it returns, as its search_path is),
-- pgbench measured an append at 0.18–0.21 ms before and 0.115–0.127 ms after, from a session with
-- `force_custom_plan`. The append is in every audited write and every read of a child's record.
-- The hashes and the chain rules do not change.

SELECT set_config('nol.migration_search_path', current_setting('search_path'), false),
       set_config('search_path', format('%I, pg_temp', current_schema() || '_audit'), false);

ALTER FUNCTION audit_append(text, text, text, text, text, text[], text, timestamptz) SET plan_cache_mode = auto;
ALTER FUNCTION audit_append_each(text[], text[], text[], text, text, text[], text[]) SET plan_cache_mode = auto;

SELECT set_config('search_path', current_setting('nol.migration_search_path'), false);
