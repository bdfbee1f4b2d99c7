-- Hand-offs that never lose a case (R11, R12): the decision's deadline on both sides, the
-- origin's dossier kept with a case taken in, and supervision of a destination's undecided
-- hand-off (which has no case here yet).

-- A destination decides within this many days of receiving a hand-off; the origin waits as long.
ALTER TABLE deadline_policy
    ADD COLUMN handoff_decision_days integer NOT NULL DEFAULT 7 CHECK (handoff_decision_days > 0);

-- The day a pending case's hand-off was requested: the origin's wait runs from it.
ALTER TABLE dropout_case ADD COLUMN handoff_requested_on date;

-- What the origin knew about a case taken in (OriginDossier, as protobuf): measures, evidence
-- metadata, contacts, a summary of the history. One per case.
CREATE TABLE case_origin_dossier (
    case_id         uuid        PRIMARY KEY REFERENCES dropout_case (id),
    handoff_id      uuid        NOT NULL UNIQUE,
    origin_region   text        NOT NULL,
    origin_case_id  uuid        NOT NULL,
    dossier         bytea       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- An incoming hand-off awaiting this province's decision, as supervision watches it: from its
-- arrival until it is accepted, rejected or cancelled.
CREATE TABLE incoming_handoff (
    handoff_id          uuid        PRIMARY KEY,
    region              text        NOT NULL,   -- the destination county, which owes the decision
    origin_region       text        NOT NULL,
    origin_case_id      uuid        NOT NULL,
    child_name          text        NOT NULL,
    resident_id_masked  text        NOT NULL,
    sex                 smallint    NOT NULL,
    birth_date          date,
    hukou_region        text        NOT NULL,
    arrived_on          date        NOT NULL,   -- rule clock
    due_on              date        NOT NULL,
    outcome             text,                   -- accepted, rejected, cancelled; NULL while undecided
    decided_at          timestamptz
);
CREATE INDEX incoming_handoff_undecided ON incoming_handoff (region text_pattern_ops, due_on)
    WHERE outcome IS NULL;

-- A supervision item for a destination's undecided hand-off names the hand-off, not a case.
ALTER TABLE supervision_item ALTER COLUMN case_id DROP NOT NULL;
ALTER TABLE supervision_item ADD COLUMN handoff_id uuid;
ALTER TABLE supervision_item
    ADD CONSTRAINT supervision_item_names_its_work CHECK (case_id IS NOT NULL OR handoff_id IS NOT NULL);
CREATE UNIQUE INDEX supervision_item_one_per_incoming_handoff ON supervision_item (handoff_id, due_on)
    WHERE case_id IS NULL;
