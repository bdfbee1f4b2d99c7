-- The case file's life (issue 5): the statuses past "open", the flags lists filter by, and the
-- dates deadlines run from. Rule dates come from the service's clock (NOL_CLOCK_FILE in tests),
-- so they are written by the service, not defaulted from the database's clock.
ALTER TABLE dropout_case
    ADD COLUMN migrant            boolean     NOT NULL DEFAULT false,  -- hukou outside the owning county (随迁)
    ADD COLUMN registered_poor    boolean     NOT NULL DEFAULT false,  -- 建档立卡 household (R3)
    ADD COLUMN disability_grade   smallint    NOT NULL DEFAULT 0,      -- DisabilityGrade number; ONE and TWO are severe (R4)
    ADD COLUMN confirmed_on       date,                                -- dropout confirmed (rule clock, CST)
    ADD COLUMN last_attempt_on    date,                                -- newest persuasion attempt
    ADD COLUMN follow_up_from     date,                                -- deferred/suspended: follow-ups run from here
    ADD COLUMN due_on             date,                                -- the next piece of work is due by then
    ADD COLUMN due_kind           text,                                -- first_contact, next_attempt, follow_up
    ADD COLUMN relapse_count      integer     NOT NULL DEFAULT 0,      -- times it reopened from monitoring (反弹)
    ADD COLUMN status_detail      jsonb       NOT NULL DEFAULT '{}',   -- e.g. returned: school, class, date
    ADD COLUMN suspect_id         uuid,                                -- the ledger item it was confirmed from
    ADD COLUMN ended_at           timestamptz;                         -- exempt or closed

UPDATE dropout_case SET confirmed_on = (opened_at AT TIME ZONE 'Asia/Shanghai')::date WHERE confirmed_on IS NULL;

-- R2 over the whole life of a case: every status but the three ends keeps the child's one case.
DROP INDEX dropout_case_one_active_per_child;
CREATE UNIQUE INDEX dropout_case_one_active_per_child ON dropout_case (resident_id_index)
    WHERE status NOT IN ('handed_over', 'exempt', 'closed');

-- Overdue work, per region: the cases with a due date, by region and date.
CREATE INDEX dropout_case_due ON dropout_case (region text_pattern_ops, due_on) WHERE due_on IS NOT NULL;

-- Deadlines are data (R12): one row per province database, defaults from the notice.
CREATE TABLE deadline_policy (
    singleton                boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    first_contact_days       integer NOT NULL DEFAULT 7  CHECK (first_contact_days > 0),
    attempt_interval_days    integer NOT NULL DEFAULT 14 CHECK (attempt_interval_days > 0),
    deferred_follow_up_days  integer NOT NULL DEFAULT 30 CHECK (deferred_follow_up_days > 0),
    supervision_after_days   integer NOT NULL DEFAULT 7  CHECK (supervision_after_days >= 0),
    updated_by               text    NOT NULL DEFAULT 'migration',
    updated_at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO deadline_policy DEFAULT VALUES;
