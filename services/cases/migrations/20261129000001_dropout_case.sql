-- Dropout cases (一人一案). The child's resident ID number is encrypted (key outside the
-- database) and found by a keyed blind index; a child has at most one active case here.
CREATE TABLE dropout_case (
    id                   uuid PRIMARY KEY,
    pupil_id             uuid,                       -- null for a case taken in from another province
    child_name           text        NOT NULL,
    resident_id_cipher   bytea       NOT NULL,
    resident_id_index    bytea       NOT NULL,
    resident_id_masked   text        NOT NULL,
    sex                  smallint    NOT NULL,
    birth_date           date        NOT NULL,
    hukou_region         text        NOT NULL,
    region               text        NOT NULL,       -- the owning county
    status               text        NOT NULL,
    causes               text[]      NOT NULL,
    notes                text        NOT NULL DEFAULT '',
    source               text        NOT NULL,       -- 'local' or 'handoff'
    origin_region        text,
    origin_case_id       uuid,
    handoff_id           uuid,
    handoff_destination  text,
    supervision_region   text,                       -- a higher bureau supervising the case (督办, R12)
    supervision_reason   text,
    supervision_at       timestamptz,
    opened_by            text        NOT NULL,
    opened_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    version              bigint      NOT NULL DEFAULT 1
);
-- One child, one active case (R2): a second open is refused by the database itself.
CREATE UNIQUE INDEX dropout_case_one_active_per_child ON dropout_case (resident_id_index)
    WHERE status IN ('open', 'handoff_pending');
-- A hand-off opens at most one case here, however often its acceptance is delivered.
CREATE UNIQUE INDEX dropout_case_one_per_incoming_handoff ON dropout_case (handoff_id)
    WHERE source = 'handoff';
CREATE INDEX dropout_case_by_region ON dropout_case (region text_pattern_ops, opened_at DESC, id DESC);

-- Every change of a case, who made it and why: the case's history stays, whatever its status.
CREATE TABLE case_history (
    case_id    uuid        NOT NULL REFERENCES dropout_case (id),
    version    bigint      NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    change     text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (case_id, version)
);
