-- Counts per county and metric, kept by the consumer from the province's events; a region's
-- summary sums its subtree (codes starting with its prefix).
CREATE TABLE region_count (
    region        text        NOT NULL,
    metric        text        NOT NULL,
    value         bigint      NOT NULL DEFAULT 0,
    last_event_at timestamptz NOT NULL,
    PRIMARY KEY (region, metric)
);
CREATE INDEX region_count_by_prefix ON region_count (region text_pattern_ops);
