-- The audit log leaves the service's schema (issue 12, least privilege in PostgreSQL).
--
-- Each service connects as a role of its own that owns its schema, and the owner of a schema may
-- drop anything in it: a log the service cannot rewrite cannot stay there. Its tables and
-- functions move, entries and all (the chain does not depend on the schema), to `<schema>_audit`,
-- which `nol db provision` gives to the database's audit role; the service keeps only USAGE on
-- that schema and EXECUTE on `audit_append`, which runs as its owner (SECURITY DEFINER, with its
-- search_path pinned to the audit schema so that nothing of the caller's is resolved inside it).
-- The service's connections put `<schema>_audit` after their own schema in the search_path
-- (`nol_runtime::database::connect`), so `audit_log`, `audit_chain` and `audit_append` are
-- found by the same names as before.
--
-- This migration needs more rights than a service has (CREATE on the database): it is applied by
-- `nol db provision`, run with the database's admin URL, which then hands the audit schema and
-- everything in it to the audit role.
DO $$
DECLARE
    audit_schema text := current_schema() || '_audit';
BEGIN
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', audit_schema);
    EXECUTE format('ALTER TABLE audit_log SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER TABLE audit_chain SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER FUNCTION audit_field(text) SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER FUNCTION audit_entry_hash(bigint, bytea, timestamptz, text, text, text, text, text, text, text) SET SCHEMA %I',
                   audit_schema);
    EXECUTE format('ALTER FUNCTION audit_append(text, text, text, text, text, text[], text, timestamptz) SET SCHEMA %I',
                   audit_schema);
    EXECUTE format('ALTER FUNCTION audit_prune(timestamptz, text, text, text, text) SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER FUNCTION audit_log_refuse_change() SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER FUNCTION audit_refuse_truncate() SET SCHEMA %I', audit_schema);
    EXECUTE format('ALTER FUNCTION audit_chain_forward_only() SET SCHEMA %I', audit_schema);

    -- The append runs as the audit schema's owner, resolving names in that schema only.
    EXECUTE format('ALTER FUNCTION %I.audit_append(text, text, text, text, text, text[], text, timestamptz)
                        SECURITY DEFINER SET search_path = %I, pg_temp', audit_schema, audit_schema);
    -- The retention is the operator's (the owner's or an admin's), never the service's.
    EXECUTE format('ALTER FUNCTION %I.audit_prune(timestamptz, text, text, text, text)
                        SET search_path = %I, pg_temp', audit_schema, audit_schema);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.audit_append(text, text, text, text, text, text[], text, timestamptz) FROM PUBLIC',
                   audit_schema);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.audit_prune(timestamptz, text, text, text, text) FROM PUBLIC', audit_schema);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', audit_schema);
END
$$;
