-- A county's bi-monthly report not submitted by its due date is supervised too (R12, R16): such an
-- item names the period instead of a case or a hand-off, one per county and period.
ALTER TABLE supervision_item ADD COLUMN report_period text;
ALTER TABLE supervision_item DROP CONSTRAINT supervision_item_names_its_work;
ALTER TABLE supervision_item
    ADD CONSTRAINT supervision_item_names_its_work
        CHECK (case_id IS NOT NULL OR handoff_id IS NOT NULL OR report_period IS NOT NULL);
CREATE UNIQUE INDEX supervision_item_one_per_late_report ON supervision_item (region, report_period)
    WHERE report_period IS NOT NULL;
