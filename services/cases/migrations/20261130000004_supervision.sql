-- Supervision (督办, R12) and the semester-start check (R13).

-- Overdue work raised with a higher bureau. One item per slipped deadline of a case
-- (case_overdue: the case and the due date) or per unconfirmed child of a check.
CREATE TABLE supervision_item (
    id                  uuid        PRIMARY KEY,
    kind                text        NOT NULL,          -- first_contact, next_attempt, follow_up, semester_check
    case_id             uuid        NOT NULL REFERENCES dropout_case (id),
    check_item_id       uuid,
    region              text        NOT NULL,          -- the county whose work is overdue
    supervising_region  text        NOT NULL,          -- its parent, or higher after escalation
    escalations         integer     NOT NULL DEFAULT 0,
    reason              text        NOT NULL,
    due_on              date        NOT NULL,
    raised_on           date        NOT NULL,          -- rule clock; escalation runs from here
    raised_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    state               text        NOT NULL DEFAULT 'open',  -- open, answered, closed
    answer              text,
    answered_by         text,
    answered_at         timestamptz,
    closing_note        text,
    closed_by           text,
    closed_at           timestamptz
);
CREATE UNIQUE INDEX supervision_item_one_per_deadline ON supervision_item (case_id, kind, due_on)
    WHERE check_item_id IS NULL;
CREATE UNIQUE INDEX supervision_item_one_per_check_item ON supervision_item (check_item_id)
    WHERE check_item_id IS NOT NULL;
CREATE INDEX supervision_item_by_region ON supervision_item (region text_pattern_ops, raised_at DESC, id DESC);
CREATE INDEX supervision_item_by_supervisor ON supervision_item (supervising_region text_pattern_ops, raised_at DESC, id DESC);
CREATE INDEX supervision_item_open ON supervision_item (raised_on) WHERE state = 'open';

-- A semester-start check campaign over a region: one per region and semester.
CREATE TABLE semester_check (
    id          uuid        PRIMARY KEY,
    region      text        NOT NULL,
    region_prefix text      NOT NULL,                  -- the subtree's code prefix, for overlap checks
    semester    text        NOT NULL,
    deadline    date        NOT NULL,
    item_count  bigint      NOT NULL DEFAULT 0,
    started_by  text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (region, semester)
);

-- The checklist: every child in monitoring in the region when the check started.
CREATE TABLE semester_check_item (
    id           uuid        PRIMARY KEY,
    check_id     uuid        NOT NULL REFERENCES semester_check (id),
    case_id      uuid        NOT NULL REFERENCES dropout_case (id),
    region       text        NOT NULL,
    school_code  text        NOT NULL DEFAULT '',
    school_name  text        NOT NULL DEFAULT '',
    state        text        NOT NULL DEFAULT 'pending',   -- pending, present, absent, relapsed
    updated_by   text,
    updated_at   timestamptz,
    note         text        NOT NULL DEFAULT '',
    UNIQUE (check_id, case_id)
);
CREATE INDEX semester_check_item_by_school ON semester_check_item (check_id, school_code, id);
CREATE INDEX semester_check_item_open ON semester_check_item (check_id) WHERE state IN ('pending', 'absent');
