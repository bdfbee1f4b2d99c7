-- Grade-1 entrants per county and entry year (the autumn the cohort started school), from the
-- bureaus' file: the denominators of the consolidation rate (巩固率). Graduates come from the
-- registry's events (`pupils_graduated` in daily_count).
CREATE TABLE cohort_entrants (
    region      text        NOT NULL,
    entry_year  integer     NOT NULL CHECK (entry_year BETWEEN 2000 AND 2100),
    entrants    bigint      NOT NULL CHECK (entrants > 0),
    imported_at timestamptz NOT NULL,
    imported_by text        NOT NULL,
    PRIMARY KEY (region, entry_year)
);
CREATE INDEX cohort_entrants_by_prefix ON cohort_entrants (region text_pattern_ops);
