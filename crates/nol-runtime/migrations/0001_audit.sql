-- Every read of a child's record, and every change, is audited with the caller and its scope.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text        NOT NULL,
    actor_role    text        NOT NULL,
    actor_region  text        NOT NULL,
    action        text        NOT NULL,   -- e.g. 'pupil.read', 'pupil.read_full', 'case.open'
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    trace_id      text
);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, at);
