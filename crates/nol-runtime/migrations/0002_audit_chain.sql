-- The audit log becomes a hash chain that cannot be rewritten (等保 2.0 安全审计, issue 12).
--
-- Each entry has a gapless `seq` and `hash` = SHA-256 over a canonical encoding of (seq,
-- prev_hash, time, actor, role, region, action, resource type, resource id, trace id), where
-- `prev_hash` is the previous entry's hash. Entries are appended only by `audit_append`, which
-- locks the one-row chain head (`audit_chain`) until its transaction ends: the replicas of a
-- service share the schema and the chain stays linear, and a rolled-back append leaves no gap.
-- Triggers refuse UPDATE, DELETE and TRUNCATE, except the deletion of the oldest entries by
-- `audit_prune` (kept at least six months); the last pruned entry becomes the anchor that
-- `nol audit verify` starts from. The encoding is written out again in Rust
-- (`nol_runtime::audit::entry_hash`), which checks the chain independently of these functions.

-- A field of the encoding: its UTF-8 length as 4 bytes big-endian, then the bytes; NULL is the
-- length 0xffffffff with no bytes, so NULL and '' differ.
CREATE FUNCTION audit_field(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN '\xffffffff'::bytea ELSE int4send(length(bytes)) || bytes END
      FROM (SELECT convert_to(value, 'UTF8') AS bytes) AS field
$$;

-- An entry's hash: domain tag 'nol-audit-v1', seq (8 bytes), prev_hash (32 bytes), time in
-- microseconds since 1970-01-01 UTC (8 bytes), then the text fields.
CREATE FUNCTION audit_entry_hash(
    entry_seq bigint, entry_prev_hash bytea, entry_at timestamptz, entry_actor text, entry_role text,
    entry_region text, entry_action text, entry_resource_type text, entry_resource_id text, entry_trace_id text
) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(
        convert_to('nol-audit-v1', 'UTF8') || int8send(entry_seq) || entry_prev_hash
        || int8send((extract(epoch FROM entry_at) * 1000000)::bigint)
        || audit_field(entry_actor) || audit_field(entry_role) || audit_field(entry_region)
        || audit_field(entry_action) || audit_field(entry_resource_type) || audit_field(entry_resource_id)
        || audit_field(entry_trace_id))
$$;

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

-- The chain's head (the last entry) and its anchor (the last pruned entry; seq 0 and 32 zero
-- bytes while nothing was pruned). One row.
CREATE TABLE audit_chain (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq         bigint NOT NULL,
    hash        bytea  NOT NULL,
    anchor_seq  bigint NOT NULL,
    anchor_hash bytea  NOT NULL
);

-- The entries written before the chain, chained in the order they were written.
DO $$
DECLARE
    entry record;
    head_seq bigint := 0;
    head_hash bytea := decode(repeat('00', 32), 'hex');
BEGIN
    FOR entry IN SELECT * FROM audit_log ORDER BY id LOOP
        head_seq := head_seq + 1;
        UPDATE audit_log
           SET seq = head_seq,
               prev_hash = head_hash,
               hash = audit_entry_hash(head_seq, head_hash, entry.at, entry.actor, entry.actor_role,
                                       entry.actor_region, entry.action, entry.resource_type,
                                       entry.resource_id, entry.trace_id)
         WHERE id = entry.id
        RETURNING hash INTO head_hash;
    END LOOP;
    INSERT INTO audit_chain (seq, hash, anchor_seq, anchor_hash)
    VALUES (head_seq, head_hash, 0, decode(repeat('00', 32), 'hex'));
END
$$;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
-- The retention finds the oldest entries by time.
CREATE INDEX audit_log_at ON audit_log (at);

-- Appends one entry per resource id (a call's ids share its time) and returns the new head's
-- seq. `entry_at` is the time to record (NULL: now); only tests and imports of older logs give it.
CREATE FUNCTION audit_append(
    entry_actor text, entry_role text, entry_region text, entry_action text, entry_resource_type text,
    entry_resource_ids text[], entry_trace_id text, entry_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    previous bytea;
    one_id text;
    at_time timestamptz := coalesce(entry_at, clock_timestamp());
BEGIN
    -- Held until the transaction ends: appends of concurrent transactions take turns.
    SELECT chain.seq, chain.hash INTO head_seq, head_hash FROM audit_chain AS chain FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_chain has no head row';
    END IF;
    FOREACH one_id IN ARRAY coalesce(entry_resource_ids, '{}') LOOP
        previous := head_hash;
        head_seq := head_seq + 1;
        head_hash := audit_entry_hash(head_seq, previous, at_time, entry_actor, entry_role, entry_region,
                                      entry_action, entry_resource_type, one_id, entry_trace_id);
        INSERT INTO audit_log (seq, prev_hash, hash, at, actor, actor_role, actor_region, action,
                               resource_type, resource_id, trace_id)
        VALUES (head_seq, previous, head_hash, at_time, entry_actor, entry_role, entry_region, entry_action,
                entry_resource_type, one_id, entry_trace_id);
    END LOOP;
    UPDATE audit_chain SET seq = head_seq, hash = head_hash;
    RETURN head_seq;
END
$$;

-- Insert-only: UPDATE and DELETE are refused, but for the deletion of entries up to the seq
-- `audit_prune` names in the transaction's `nol.audit_prune_through`, and only entries older than
-- six months (access logs are kept at least that long).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.seq <= coalesce(nullif(current_setting('nol.audit_prune_through', true), '')::bigint, 0)
           AND OLD.at < clock_timestamp() - interval '183 days' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '审计日志只能追加，不能修改或删除 (audit_log is insert-only: % refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计日志不能清空 (% is insert-only: TRUNCATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_insert_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

-- The head only moves forward, and its anchor only with a prune.
CREATE FUNCTION audit_chain_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.anchor_seq >= OLD.anchor_seq
       AND (NEW.anchor_seq = OLD.anchor_seq AND NEW.anchor_hash = OLD.anchor_hash
            OR NEW.anchor_seq::text = current_setting('nol.audit_prune_through', true)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '审计链头只能前移 (audit_chain only moves forward: % refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_forward_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

-- The retention: removes the oldest entries, all written before `older_than` (at least six months
-- ago), keeps the last one removed as the anchor, and records itself as an entry naming the anchor
-- ('<seq>:<hash hex>'), so the anchor is itself in the chain. Returns how many entries it removed.
CREATE FUNCTION audit_prune(
    older_than timestamptz, entry_actor text, entry_role text, entry_region text, entry_trace_id text
) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    head_seq bigint;
    old_anchor bigint;
    through bigint;
    through_hash bytea;
    removed bigint := 0;
BEGIN
    IF older_than > clock_timestamp() - interval '183 days' THEN
        RAISE EXCEPTION '访问日志至少保存六个月 (audit entries are kept at least six months; % is too recent)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT chain.seq, chain.anchor_seq INTO head_seq, old_anchor FROM audit_chain AS chain FOR UPDATE;
    -- The oldest entries up to the first one that is recent enough.
    SELECT coalesce(min(entry.seq) - 1, head_seq) INTO through FROM audit_log AS entry WHERE entry.at >= older_than;
    IF through > old_anchor THEN
        SELECT entry.hash INTO through_hash FROM audit_log AS entry WHERE entry.seq = through;
        PERFORM set_config('nol.audit_prune_through', through::text, true);
        DELETE FROM audit_log AS entry WHERE entry.seq <= through;
        GET DIAGNOSTICS removed = ROW_COUNT;
        UPDATE audit_chain SET anchor_seq = through, anchor_hash = through_hash;
        PERFORM set_config('nol.audit_prune_through', '', true);
        PERFORM audit_append(entry_actor, entry_role, entry_region, 'audit.prune', 'audit_log',
                             ARRAY[through::text || ':' || encode(through_hash, 'hex')], entry_trace_id);
    END IF;
    RETURN removed;
END
$$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE DELETE, TRUNCATE ON audit_chain FROM PUBLIC;
