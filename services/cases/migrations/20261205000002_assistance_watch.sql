-- Requests for help between regions (AssistanceService) as supervision watches them (R12): each
-- side — the owner whose case waits, the helper that owes the work — from the request until it is
-- declined or closed; open past its due date it is overdue work of that side's county.
CREATE TABLE assistance_watch (
    id                  uuid        PRIMARY KEY,
    assistance_id       uuid        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    region              text        NOT NULL,   -- this side's county: the owner's, or the helper's
    other_region        text        NOT NULL,
    case_id             uuid        NOT NULL,   -- the owner's case (in the owner's province)
    child_name          text        NOT NULL,
    resident_id_masked  text        NOT NULL,
    sex                 smallint    NOT NULL,
    birth_date          date,
    hukou_region        text        NOT NULL,
    due_on              date        NOT NULL,
    ended_at            timestamptz,            -- declined or closed
    UNIQUE (assistance_id, direction)
);
CREATE INDEX assistance_watch_open ON assistance_watch (region text_pattern_ops, due_on) WHERE ended_at IS NULL;

-- A supervision item for an overdue request names the request and the side's county.
ALTER TABLE supervision_item ADD COLUMN assistance_id uuid;
ALTER TABLE supervision_item DROP CONSTRAINT supervision_item_names_its_work;
ALTER TABLE supervision_item
    ADD CONSTRAINT supervision_item_names_its_work
        CHECK (case_id IS NOT NULL OR handoff_id IS NOT NULL OR report_period IS NOT NULL OR assistance_id IS NOT NULL);
CREATE UNIQUE INDEX supervision_item_one_per_assistance ON supervision_item (assistance_id, region, due_on)
    WHERE assistance_id IS NOT NULL;
