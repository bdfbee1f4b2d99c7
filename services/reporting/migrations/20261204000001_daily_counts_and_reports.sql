-- What happened per day (China Standard Time) and county: a period's flows are the sums over its
-- days; a balance at a day is the sum of its deltas up to that day (metrics named `case.<status>`,
-- `cause.<cause>`, `pupil.<status>`, `suspects_pending`, `supervision_open` are such balances).
CREATE TABLE daily_count (
    region text   NOT NULL,
    metric text   NOT NULL,
    day    date   NOT NULL,
    value  bigint NOT NULL,
    PRIMARY KEY (region, metric, day)
);
CREATE INDEX daily_count_by_prefix ON daily_count (region text_pattern_ops, day);

-- The counts kept before this table existed carry no days: they are placed on the day of the
-- newest event counted in them, so totals stay exact and older periods read what was known.
INSERT INTO daily_count (region, metric, day, value)
SELECT region, metric, (last_event_at AT TIME ZONE 'Asia/Shanghai')::date, value FROM region_count;

-- Each case as the events told it last: its county, status and causes, so a status change moves
-- the balances from the status it really left (an event's own "from" is not needed).
CREATE TABLE case_seen (
    case_id uuid   NOT NULL PRIMARY KEY,
    region  text   NOT NULL,
    status  text   NOT NULL,
    causes  text[] NOT NULL
);

-- A county's bi-monthly report (双月报): one per county and period, its figures frozen when drafted.
CREATE TABLE report (
    id            uuid        NOT NULL PRIMARY KEY,
    region        text        NOT NULL,
    period        text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('draft', 'submitted', 'returned', 'approved', 'accepted')),
    work_done     text        NOT NULL,
    problems      text        NOT NULL,
    next_steps    text        NOT NULL,
    snapshot_at   timestamptz NOT NULL,
    warnings      text[]      NOT NULL DEFAULT '{}',
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (region, period)
);
CREATE INDEX report_by_prefix ON report (period, region text_pattern_ops);

-- The frozen figures of a report: metric → value (flows of the period, balances at its end).
CREATE TABLE report_figure (
    report_id uuid   NOT NULL REFERENCES report (id),
    metric    text   NOT NULL,
    value     bigint NOT NULL,
    PRIMARY KEY (report_id, metric)
);

-- Every step of a report's workflow, with who and when (also an event and an audit entry).
CREATE TABLE report_step (
    report_id    uuid        NOT NULL REFERENCES report (id),
    seq          integer     NOT NULL,
    action       text        NOT NULL,
    state        text        NOT NULL,
    actor        text        NOT NULL,
    actor_role   text        NOT NULL,
    actor_region text        NOT NULL,
    comment      text        NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (report_id, seq)
);

-- Due dates are data: a period without a row is due `report_due_days` after it ends.
CREATE TABLE report_deadline (
    period text NOT NULL PRIMARY KEY,
    due_on date NOT NULL
);
CREATE TABLE report_policy (
    singleton       boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
    report_due_days integer NOT NULL CHECK (report_due_days BETWEEN 0 AND 90)
);
INSERT INTO report_policy (report_due_days) VALUES (10);
