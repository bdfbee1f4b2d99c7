-- Rejected import rows keep no resident ID number in clear (issue 12), and are kept only
-- NOL_IMPORT_ERRORS_RETENTION_DAYS (the registry's sweep deletes them by `rejected_at`).
-- New rows arrive masked (`domain::rejected_row`); the rows kept so far are masked here the same
-- way: the ID column whole but its last four characters, and in every other cell any run of 15 or
-- more digits (with a check character at its end) but its last four.

ALTER TABLE import_row_error ADD COLUMN rejected_at timestamptz;
UPDATE import_row_error AS error SET rejected_at = job.started_at FROM import_job AS job WHERE job.id = error.job_id;
ALTER TABLE import_row_error
    ALTER COLUMN rejected_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN rejected_at SET NOT NULL;
CREATE INDEX import_row_error_rejected_at ON import_row_error (rejected_at);

CREATE FUNCTION pg_temp.mask_whole(cell text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(btrim(cell)) <= 4 THEN repeat('*', length(btrim(cell)))
                ELSE repeat('*', length(btrim(cell)) - 4) || right(btrim(cell), 4) END
$$;

CREATE FUNCTION pg_temp.mask_runs(cell text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    run text;
    masked text := cell;
BEGIN
    FOR run IN SELECT match[1] FROM regexp_matches(cell, '([0-9０-９]{15,}[XxＸｘ]?)', 'g') AS match LOOP
        masked := replace(masked, run, repeat('*', length(run) - 4) || right(run, 4));
    END LOOP;
    RETURN masked;
END
$$;

-- The ID column of each job: the first header cell that is one of the ID column's names.
UPDATE import_row_error AS error
   SET cells = ARRAY(
           SELECT CASE WHEN cell.position = id_column.position THEN pg_temp.mask_whole(cell.value)
                       ELSE pg_temp.mask_runs(cell.value) END
             FROM unnest(error.cells) WITH ORDINALITY AS cell (value, position)
            ORDER BY cell.position)
  FROM import_job AS job
  LEFT JOIN LATERAL (
       SELECT min(header.position) AS position
         FROM unnest(job.header) WITH ORDINALITY AS header (name, position)
        WHERE regexp_replace(header.name, '\s', '', 'g') IN
              ('身份证号', '居民身份证号', '身份证号码', '身份证件号', '公民身份号码', '证件号码', 'resident_id')
  ) AS id_column ON true
 WHERE job.id = error.job_id;
