-- The daily counts rolled up per bi-month (YYYY-Bn, which sorts as time does): a period's figures
-- and a trend over periods read these tens of thousands of rows instead of a year's daily rows.
-- Kept by the consumer in the same statement pair as daily_count, so both always agree.
CREATE TABLE period_count (
    region text   NOT NULL,
    metric text   NOT NULL,
    period text   NOT NULL,
    value  bigint NOT NULL,
    PRIMARY KEY (region, metric, period)
);
CREATE INDEX period_count_by_prefix ON period_count (region text_pattern_ops, period);

INSERT INTO period_count (region, metric, period, value)
SELECT region, metric, extract(year FROM day)::int || '-B' || ((extract(month FROM day)::int - 1) / 2 + 1), sum(value)
  FROM daily_count
 GROUP BY 1, 2, 3;
