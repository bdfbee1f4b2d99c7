-- Hand-offs (R11) as this province sees them. A hand-off inside the province has both rows here.
CREATE TABLE handoff (
    id                  uuid        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    state               text        NOT NULL CHECK (state IN ('requested', 'delivered', 'accepted')),
    case_id             uuid        NOT NULL,   -- the case in the origin region
    origin_region       text        NOT NULL,
    destination_region  text        NOT NULL,
    reason              text        NOT NULL,
    child_name          text        NOT NULL,
    resident_id_masked  text        NOT NULL,
    sex                 smallint    NOT NULL,
    birth_date          date        NOT NULL,
    hukou_region        text        NOT NULL,
    sealed_dossier      bytea,                  -- incoming: the dossier sealed to this province
    trace_context       jsonb       NOT NULL DEFAULT '{}',  -- the request's trace, continued by the accept
    requested_by        text        NOT NULL,
    requested_at        timestamptz NOT NULL,
    delivered_at        timestamptz,
    accepted_by         text,
    accepted_at         timestamptz,
    -- Outgoing: the request's event id (re-sent under it until the destination answers), when
    -- it was last sent and how often; the escalation to the parent bureau past the deadline (R12).
    request_event_id    uuid,
    last_sent_at        timestamptz,
    resend_count        integer     NOT NULL DEFAULT 0,
    escalated_at        timestamptz,
    escalated_to        text,
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (id, direction)
);
-- At most one hand-off of a case under way at a time.
CREATE UNIQUE INDEX handoff_one_under_way_per_case ON handoff (case_id)
    WHERE direction = 'outgoing' AND state IN ('requested', 'delivered');
-- The sweeper's work: outgoing hand-offs not yet accepted.
CREATE INDEX handoff_outgoing_unanswered ON handoff (last_sent_at)
    WHERE direction = 'outgoing' AND state <> 'accepted';
CREATE INDEX handoff_outgoing_by_region ON handoff (origin_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'outgoing';
CREATE INDEX handoff_incoming_by_region ON handoff (destination_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'incoming';
