-- The audit log as sixteen chains instead of one (issue 13, the write path).
--
-- With one chain every audited change of a schema waited for the one before it to commit: the
-- append locks the chain head until its transaction ends, and the commit (a WAL flush) is the
-- slowest part of a transaction, so the schema's audited changes committed one at a time
-- (profiled in docs/BENCHMARKS.md). Now each entry belongs to one of 16 chains (`chain`, 0–15),
-- and each chain is what the one chain was: gapless `seq`, each entry's hash over the previous
-- one's, its own head and anchor row in `audit_chain`. The entry hash is unchanged. Chain 0 holds
-- every entry written before this migration; chain k > 0 starts from its own genesis hash,
-- SHA-256 of 'nol-audit-v1 chain <k>', so an entry moved to another chain does not link.
--
-- `audit_append` takes the lowest-numbered chain that no other transaction holds, without waiting
-- (`FOR UPDATE SKIP LOCKED`); only when all sixteen are held does it wait, for the chain its
-- backend's pid names. The transaction keeps that chain for the rest of its appends
-- (`nol.audit_chain`, transaction-local), so it never holds two. A lone writer always gets
-- chain 0. `nol audit verify` checks every chain, `nol audit head` exports every chain's head, and
-- `audit_prune` prunes each chain and records each anchor in its own chain.
--
-- The append also got cheaper. A read of a page of 50 children appends 50 entries, and that took
-- about 10 ms: each entry's hash cost 0.15 ms. `audit_entry_hash` and `audit_field` were labelled
-- IMMUTABLE, but their bodies call `convert_to` and `extract(epoch FROM timestamptz)`, which are
-- STABLE; PostgreSQL does not inline a function less stable than its label, so every entry went
-- through the SQL-function executor eight times. Labelled STABLE (what they are), both are
-- inlined (500 hashes: 74 ms → 11 ms), and a call's entries are inserted in one statement. The
-- hash itself is unchanged.

-- Everything below is created in (and resolves names in) the audit schema; the migration's own
-- search_path comes back at the end, for the migrations table. (Set for the session, not the
-- transaction: a tool may apply the file outside one; a rolled-back migration undoes it anyway.)
SELECT set_config('nol.migration_search_path', current_setting('search_path'), false),
       set_config('search_path', format('%I, pg_temp', current_schema() || '_audit'), false);

-- The hash a chain starts from: 32 zero bytes for chain 0 (as before), its own for the others.
CREATE FUNCTION audit_genesis(chain_number smallint) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN chain_number = 0 THEN decode(repeat('00', 32), 'hex')
                ELSE sha256(convert_to('nol-audit-v1 chain ' || chain_number, 'UTF8')) END
$$;

ALTER FUNCTION audit_field(text) STABLE;
ALTER FUNCTION audit_entry_hash(bigint, bytea, timestamptz, text, text, text, text, text, text, text) STABLE;

ALTER TABLE audit_log ADD COLUMN chain smallint NOT NULL DEFAULT 0;
DROP INDEX audit_log_seq;
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, seq);

-- One head row per chain (dropping `only_row` drops its primary key).
ALTER TABLE audit_chain DROP COLUMN only_row;
ALTER TABLE audit_chain ADD COLUMN chain smallint NOT NULL DEFAULT 0;
ALTER TABLE audit_chain ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_chain ADD CONSTRAINT audit_chain_pkey PRIMARY KEY (chain);
ALTER TABLE audit_chain ADD CONSTRAINT audit_chain_number CHECK (chain BETWEEN 0 AND 15);
INSERT INTO audit_chain (chain, seq, hash, anchor_seq, anchor_hash)
SELECT k, 0, audit_genesis(k::smallint), 0, audit_genesis(k::smallint) FROM generate_series(1, 15) AS k;

-- Appends to chain `chain_number`, which the transaction holds from here on (or waits for): the
-- hashes chained in a loop, the entries inserted in one statement.
CREATE FUNCTION audit_append_to(
    chain_number smallint, entry_actor text, entry_role text, entry_region text, entry_action text,
    entry_resource_type text, entry_resource_ids text[], entry_trace_id text, entry_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    head_seq bigint;
    first_seq bigint;
    head_hash bytea;
    one_id text;
    previous_hashes bytea[] := '{}';
    hashes bytea[] := '{}';
    at_time timestamptz := coalesce(entry_at, clock_timestamp());
BEGIN
    SELECT head.seq, head.hash INTO head_seq, head_hash
      FROM audit_chain AS head WHERE head.chain = chain_number FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain % has no head row', chain_number;
    END IF;
    first_seq := head_seq + 1;
    FOREACH one_id IN ARRAY coalesce(entry_resource_ids, '{}') LOOP
        previous_hashes := previous_hashes || head_hash;
        head_seq := head_seq + 1;
        head_hash := audit_entry_hash(head_seq, head_hash, at_time, entry_actor, entry_role, entry_region,
                                      entry_action, entry_resource_type, one_id, entry_trace_id);
        hashes := hashes || head_hash;
    END LOOP;
    IF head_seq >= first_seq THEN
        INSERT INTO audit_log (chain, seq, prev_hash, hash, at, actor, actor_role, actor_region, action,
                               resource_type, resource_id, trace_id)
        SELECT chain_number, first_seq + entry.position - 1, entry.previous_hash, entry.hash, at_time, entry_actor,
               entry_role, entry_region, entry_action, entry_resource_type, entry.resource_id, entry_trace_id
          FROM unnest(entry_resource_ids, previous_hashes, hashes)
               WITH ORDINALITY AS entry (resource_id, previous_hash, hash, position);
        UPDATE audit_chain SET seq = head_seq, hash = head_hash WHERE chain = chain_number;
    END IF;
    RETURN head_seq;
END
$$;
REVOKE ALL ON FUNCTION audit_append_to(smallint, text, text, text, text, text, text[], text, timestamptz) FROM PUBLIC;

-- The service's append (SECURITY DEFINER as before, its search_path pinned to the audit schema):
-- the chain the transaction holds, else the first free one, else waits for one.
CREATE OR REPLACE FUNCTION audit_append(
    entry_actor text, entry_role text, entry_region text, entry_action text, entry_resource_type text,
    entry_resource_ids text[], entry_trace_id text, entry_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    chosen smallint := nullif(current_setting('nol.audit_chain', true), '')::smallint;
BEGIN
    IF chosen IS NULL THEN
        SELECT head.chain INTO chosen FROM audit_chain AS head ORDER BY head.chain FOR UPDATE SKIP LOCKED LIMIT 1;
        IF NOT FOUND THEN
            chosen := pg_backend_pid() % 16;
        END IF;
        PERFORM set_config('nol.audit_chain', chosen::text, true);
    END IF;
    RETURN audit_append_to(chosen, entry_actor, entry_role, entry_region, entry_action, entry_resource_type,
                           entry_resource_ids, entry_trace_id, entry_at);
END
$$;

-- Deletion only by the retention, of the chain it is pruning.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.seq <= coalesce(nullif(current_setting('nol.audit_prune_through', true), '')::bigint, 0)
           AND OLD.chain::text = coalesce(nullif(current_setting('nol.audit_prune_chain', true), ''), '0')
           AND OLD.at < clock_timestamp() - interval '183 days' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '审计日志只能追加，不能修改或删除 (audit_log is insert-only: % refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The retention, chain by chain: each chain's oldest entries written before `older_than`, its
-- last removed entry kept as its anchor and recorded as an entry of the same chain
-- ('<seq>:<hash hex>'). Returns how many entries it removed in all.
CREATE OR REPLACE FUNCTION audit_prune(
    older_than timestamptz, entry_actor text, entry_role text, entry_region text, entry_trace_id text
) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    chain_number smallint;
    head_seq bigint;
    old_anchor bigint;
    through bigint;
    through_hash bytea;
    removed_here bigint;
    removed bigint := 0;
BEGIN
    IF older_than > clock_timestamp() - interval '183 days' THEN
        RAISE EXCEPTION '访问日志至少保存六个月 (audit entries are kept at least six months; % is too recent)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR chain_number IN SELECT head.chain FROM audit_chain AS head ORDER BY head.chain LOOP
        SELECT head.seq, head.anchor_seq INTO head_seq, old_anchor
          FROM audit_chain AS head WHERE head.chain = chain_number FOR UPDATE;
        -- The oldest entries up to the first one that is recent enough.
        SELECT coalesce(min(entry.seq) - 1, head_seq) INTO through
          FROM audit_log AS entry WHERE entry.chain = chain_number AND entry.at >= older_than;
        IF through > old_anchor THEN
            SELECT entry.hash INTO through_hash FROM audit_log AS entry
             WHERE entry.chain = chain_number AND entry.seq = through;
            PERFORM set_config('nol.audit_prune_through', through::text, true);
            PERFORM set_config('nol.audit_prune_chain', chain_number::text, true);
            DELETE FROM audit_log AS entry WHERE entry.chain = chain_number AND entry.seq <= through;
            GET DIAGNOSTICS removed_here = ROW_COUNT;
            removed := removed + removed_here;
            UPDATE audit_chain SET anchor_seq = through, anchor_hash = through_hash WHERE chain = chain_number;
            PERFORM set_config('nol.audit_prune_through', '', true);
            PERFORM set_config('nol.audit_prune_chain', '', true);
            PERFORM audit_append_to(chain_number, entry_actor, entry_role, entry_region, 'audit.prune', 'audit_log',
                                    ARRAY[through::text || ':' || encode(through_hash, 'hex')], entry_trace_id, NULL);
        END IF;
    END LOOP;
    RETURN removed;
END
$$;

SELECT set_config('search_path', current_setting('nol.migration_search_path'), false);
