-- The backbone's tables, created in each service's own schema (search_path).

-- Events leave through the outbox: written in the same transaction as the change they report,
-- published by the relay, marked sent only after the stream's ack.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,            -- the event id (UUIDv7), also Nats-Msg-Id
    subject         text        NOT NULL,
    event_type      text        NOT NULL,
    envelope        bytea       NOT NULL,        -- the encoded EventEnvelope
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error      text,
    sent_at         timestamptz,
    stream_sequence bigint,
    -- Bumped by a deliberate re-send (outbox::resend): the message goes out again under
    -- Nats-Msg-Id '<id>.<generation>', past the stream's duplicate window; the event id inside is
    -- unchanged, so a consumer that already applied it drops the copy in its inbox.
    generation      integer     NOT NULL DEFAULT 0
);
-- The relay's work queue: only unsent rows, in the order they became due.
CREATE INDEX outbox_unsent ON outbox (next_attempt_at, created_at) WHERE sent_at IS NULL;

-- Consumers record each event id with its effect, in one transaction, and ack after commit.
CREATE TABLE inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    outcome     text        NOT NULL,            -- 'applied' or 'dead_letter'
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);

-- Messages a consumer cannot process, with the reason; the stream keeps flowing past them.
CREATE TABLE dead_letter (
    id              bigserial PRIMARY KEY,
    consumer        text        NOT NULL,
    subject         text        NOT NULL,
    stream_sequence bigint      NOT NULL,
    event_id        text,
    event_type      text,
    reason          text        NOT NULL,
    body            bytea       NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
