-- Hand-offs that never lose a case (R11): the destination rejects or accepts (accepting while
-- its case service opens the case), the origin may withdraw before the accept, both sides end
-- completed; the written notice (书面通知) with its number and SHA-256; transfer-in requests.

ALTER TABLE handoff DROP CONSTRAINT handoff_state_check;
ALTER TABLE handoff ADD CONSTRAINT handoff_state_check
    CHECK (state IN ('requested', 'delivered', 'accepting', 'accepted', 'rejected', 'cancelled', 'completed'));

ALTER TABLE handoff
    ADD COLUMN reject_reason       text,
    ADD COLUMN reject_note         text,
    ADD COLUMN rejected_by         text,
    ADD COLUMN rejected_at         timestamptz,
    ADD COLUMN linked_case_id      uuid,           -- ALREADY_HAS_CASE: the destination's existing case
    ADD COLUMN cancel_requested_at timestamptz,    -- outgoing: asked to withdraw, waiting for the answer
    ADD COLUMN cancel_reason       text,
    ADD COLUMN cancelled_by        text,
    ADD COLUMN cancelled_at        timestamptz,
    ADD COLUMN completed_at        timestamptz,
    ADD COLUMN destination_case_id uuid,
    ADD COLUMN notice_number       text,
    ADD COLUMN notice_sha256       bytea,
    ADD COLUMN dossier_view        bytea;          -- incoming: HandoffDossierView (protobuf), no number in clear

-- The origin waits for an answer (and re-sends) while requested or delivered, or while a cancel
-- is unanswered; the destination re-sends its acceptance until the origin completes.
DROP INDEX handoff_outgoing_unanswered;
CREATE INDEX handoff_awaiting_answer ON handoff (last_sent_at)
    WHERE state IN ('requested', 'delivered', 'accepted') OR cancel_requested_at IS NOT NULL;

-- The written notice of a hand-off as a PDF, on both sides.
CREATE TABLE handoff_notice (
    handoff_id      uuid        PRIMARY KEY,
    number          text        NOT NULL,
    pdf             bytea       NOT NULL,
    sha256          bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Notice numbers run per issuing bureau (county) and year.
CREATE TABLE notice_counter (
    bureau_region   text        NOT NULL,
    year            integer     NOT NULL,
    last_number     integer     NOT NULL,
    PRIMARY KEY (bureau_region, year)
);

-- The number each hand-off's notice was given, claimed in a short transaction of its own (the
-- counter row is not held while the notice is drawn) and reused by a retry: no number is given
-- twice, and a hand-off keeps its number however often its request is recorded.
CREATE TABLE notice_number (
    handoff_id      uuid        PRIMARY KEY,
    bureau_region   text        NOT NULL,
    year            integer     NOT NULL,
    number          integer     NOT NULL,
    UNIQUE (bureau_region, year, number)
);

-- A cancel that reached the destination before its request: the request is answered "cancelled".
CREATE TABLE handoff_tombstone (
    id              uuid        PRIMARY KEY,
    cancelled_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Transfer-in requests (a region that found a child asks the owner for the case), both sides.
CREATE TABLE transfer_in (
    id                  uuid        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    state               text        NOT NULL CHECK (state IN ('requested', 'pending', 'approved', 'declined')),
    asking_region       text        NOT NULL,
    owner_region        text        NOT NULL,
    reason              text        NOT NULL,
    requested_by        text        NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    resident_id_sealed  bytea,                  -- incoming, until matched: the number sealed to this province
    case_id             uuid,                   -- incoming: the matched case
    child_name          text        NOT NULL DEFAULT '',
    resident_id_masked  text        NOT NULL DEFAULT '',
    sex                 smallint    NOT NULL DEFAULT 0,
    birth_date          date,
    hukou_region        text        NOT NULL DEFAULT '',
    handoff_id          uuid,
    decline_reason      text,
    decided_by          text,
    decided_at          timestamptz,
    last_sent_at        timestamptz,            -- outgoing: re-sent until answered
    PRIMARY KEY (id, direction)
);
CREATE INDEX transfer_in_outgoing ON transfer_in (asking_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'outgoing';
CREATE INDEX transfer_in_incoming ON transfer_in (owner_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'incoming';
