-- Entries of several callers appended in one call (issue 13, the write path's group commit).
--
-- `audit_append` records one caller's access to one or more records: the entries share the actor,
-- role, region and trace. A group commit writes several callers' changes in one transaction (the
-- registry's `CreatePupil`), and each change keeps its own audit entry, with its own caller and
-- trace. `audit_append_each` appends such entries, the i-th of each array making the i-th entry,
-- to one chain in one call: one head lock, one insert, one head update, the same hashes and the
-- same chain rules as `audit_append` (the chain the transaction holds, else the first free one,
-- else the one its backend's pid names; held until the transaction ends).
--
-- It runs as the audit schema's owner like `audit_append` (SECURITY DEFINER, search_path pinned);
-- `nol db provision` grants EXECUTE on it to the service, as on `audit_append`.

SELECT set_config('nol.migration_search_path', current_setting('search_path'), false),
       set_config('search_path', format('%I, pg_temp', current_schema() || '_audit'), false);

CREATE FUNCTION audit_append_each(
    entry_actors text[], entry_roles text[], entry_regions text[], entry_action text, entry_resource_type text,
    entry_resource_ids text[], entry_trace_ids text[]
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    chosen smallint := nullif(current_setting('nol.audit_chain', true), '')::smallint;
    entries integer := coalesce(cardinality(entry_resource_ids), 0);
    head_seq bigint;
    first_seq bigint;
    head_hash bytea;
    previous_hashes bytea[] := '{}';
    hashes bytea[] := '{}';
    at_time timestamptz := clock_timestamp();
BEGIN
    IF coalesce(cardinality(entry_actors), 0) <> entries OR coalesce(cardinality(entry_roles), 0) <> entries
       OR coalesce(cardinality(entry_regions), 0) <> entries OR coalesce(cardinality(entry_trace_ids), 0) <> entries THEN
        RAISE EXCEPTION 'audit_append_each: every array needs one element per entry (% resource ids)', entries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF entries = 0 THEN
        RETURN NULL;
    END IF;
    IF chosen IS NULL THEN
        SELECT head.chain INTO chosen FROM audit_chain AS head ORDER BY head.chain FOR UPDATE SKIP LOCKED LIMIT 1;
        IF NOT FOUND THEN
            chosen := pg_backend_pid() % 16;
        END IF;
        PERFORM set_config('nol.audit_chain', chosen::text, true);
    END IF;
    SELECT head.seq, head.hash INTO head_seq, head_hash
      FROM audit_chain AS head WHERE head.chain = chosen FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain % has no head row', chosen;
    END IF;
    first_seq := head_seq + 1;
    FOR i IN 1 .. entries LOOP
        previous_hashes := previous_hashes || head_hash;
        head_seq := head_seq + 1;
        head_hash := audit_entry_hash(head_seq, head_hash, at_time, entry_actors[i], entry_roles[i],
                                      entry_regions[i], entry_action, entry_resource_type,
                                      entry_resource_ids[i], entry_trace_ids[i]);
        hashes := hashes || head_hash;
    END LOOP;
    INSERT INTO audit_log (chain, seq, prev_hash, hash, at, actor, actor_role, actor_region, action,
                           resource_type, resource_id, trace_id)
    SELECT chosen, first_seq + entry.position - 1, entry.previous_hash, entry.hash, at_time, entry.actor,
           entry.actor_role, entry.actor_region, entry_action, entry_resource_type, entry.resource_id, entry.trace_id
      FROM unnest(entry_actors, entry_roles, entry_regions, entry_resource_ids, entry_trace_ids, previous_hashes, hashes)
           WITH ORDINALITY AS entry (actor, actor_role, actor_region, resource_id, trace_id, previous_hash, hash, position);
    UPDATE audit_chain SET seq = head_seq, hash = head_hash WHERE chain = chosen;
    RETURN head_seq;
END
$$;
REVOKE ALL ON FUNCTION audit_append_each(text[], text[], text[], text, text, text[], text[]) FROM PUBLIC;

SELECT set_config('search_path', current_setting('nol.migration_search_path'), false);
