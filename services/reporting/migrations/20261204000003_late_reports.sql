-- Reports found late and sent to supervision, once per county and period.
CREATE TABLE report_late (
    region    text        NOT NULL,
    period    text        NOT NULL,
    due_on    date        NOT NULL,
    raised_at timestamptz NOT NULL,
    PRIMARY KEY (region, period)
);

-- The first period reports are due for: the one the deployment started in (rule time), set at the
-- first start; periods before the system was in use are not chased.
ALTER TABLE report_policy ADD COLUMN reports_from text;
