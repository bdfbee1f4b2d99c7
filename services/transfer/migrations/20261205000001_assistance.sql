-- Regions working one case together (协查协办, R8, R11): a request for help on a case, kept on
-- both sides like a hand-off (direction outgoing at the owner, incoming at the helper; both rows
-- in one database when the two counties share a province).
CREATE TABLE assistance (
    id                uuid        NOT NULL,
    direction         text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    state             text        NOT NULL CHECK (state IN ('requested', 'delivered', 'accepted', 'declined', 'closed')),
    case_id           uuid        NOT NULL,
    owner_region      text        NOT NULL,
    assisting_region  text        NOT NULL CHECK (assisting_region <> owner_region),
    reason            text        NOT NULL,
    needs             text[]      NOT NULL CHECK (cardinality(needs) > 0),
    due_on            date        NOT NULL,
    note              text        NOT NULL DEFAULT '',
    attempt_id        uuid,                   -- R8: the work-place attempt that started it
    child             bytea       NOT NULL,   -- the child as the contract's ChildSummary, masked (sealed only on the wire)
    requested_by      text        NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    decline_reason    text,
    decided_by        text,
    decided_at        timestamptz,
    close_note        text,
    closed_by         text,
    closed_at         timestamptz,
    last_sent_at      timestamptz,            -- outgoing: re-sent until the helper's receipt comes
    PRIMARY KEY (id, direction),
    CHECK (state <> 'declined' OR decline_reason IS NOT NULL),
    CHECK (state <> 'closed' OR closed_at IS NOT NULL)
);
-- One open request per case and helping county, decided where it is asked: at the owner. The
-- helper's side takes whatever arrives (a close and the next request may cross on the way), and
-- an offer of the hukou region is checked at the offering side, so no step is ever refused on
-- arrival.
CREATE UNIQUE INDEX assistance_one_open ON assistance (case_id, assisting_region)
    WHERE direction = 'outgoing' AND reason <> 'hukou_region' AND state IN ('requested', 'delivered', 'accepted');
CREATE INDEX assistance_outgoing ON assistance (owner_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'outgoing';
CREATE INDEX assistance_incoming ON assistance (assisting_region text_pattern_ops, requested_at DESC, id DESC)
    WHERE direction = 'incoming';

-- The helping county's reports, on both sides (the body is the contract's AssistanceReport).
CREATE TABLE assistance_report (
    id             uuid        NOT NULL,
    direction      text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    assistance_id  uuid        NOT NULL,
    body           bytea       NOT NULL,
    reported_at    timestamptz NOT NULL,
    PRIMARY KEY (id, direction),
    FOREIGN KEY (assistance_id, direction) REFERENCES assistance (id, direction)
);
CREATE INDEX assistance_report_by_request ON assistance_report (assistance_id, direction, reported_at);
