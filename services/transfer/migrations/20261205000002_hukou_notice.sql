-- R10: a migrant child's case opened where the school record is; the household-registration
-- region (户籍所在地) is told, on both sides (outgoing at the owner, incoming at the hukou region).
CREATE TABLE hukou_notice (
    id                 uuid        NOT NULL,
    direction          text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    state              text        NOT NULL CHECK (state IN ('sent', 'delivered', 'acknowledged', 'undeliverable')),
    case_id            uuid        NOT NULL,
    owner_region       text        NOT NULL,
    hukou_region       text        NOT NULL,
    child              bytea       NOT NULL,   -- the contract's ChildSummary, masked
    causes             integer[]   NOT NULL,
    message            text        NOT NULL,
    contact            text        NOT NULL,
    sent_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at       timestamptz,
    acknowledged_by    text,
    acknowledged_at    timestamptz,
    acknowledge_note   text,
    last_sent_at       timestamptz,            -- outgoing: re-sent until delivered
    PRIMARY KEY (id, direction)
);
CREATE INDEX hukou_notice_outgoing ON hukou_notice (owner_region text_pattern_ops, sent_at DESC, id DESC)
    WHERE direction = 'outgoing';
CREATE INDEX hukou_notice_incoming ON hukou_notice (hukou_region text_pattern_ops, sent_at DESC, id DESC)
    WHERE direction = 'incoming';
