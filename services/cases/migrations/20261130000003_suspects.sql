-- The suspected-dropout ledger (疑似辍学台账, R14). An item is pending until the county verifies
-- it; it leaves the ledger only with an outcome and the person who recorded it: confirmed (a case
-- opened, dropout_case.suspect_id points back here) or closed with proof (销号).
CREATE TABLE suspect (
    id                   uuid PRIMARY KEY,
    region               text        NOT NULL,       -- the county that verifies it
    origin               text        NOT NULL CHECK (origin IN ('cross_check', 'school_report', 'caseworker')),
    state                text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'closed')),
    pupil_id             uuid,                       -- a registered pupil
    check_item_id        uuid,                       -- the registry's cross-check item
    child_name           text        NOT NULL,
    -- The resident ID number encrypted (key outside the database) with its keyed blind index;
    -- null for a school's report, whose number stays in the registry until confirmation.
    resident_id_cipher   bytea,
    resident_id_index    bytea,
    resident_id_masked   text        NOT NULL,
    sex                  smallint    NOT NULL DEFAULT 0,
    birth_date           date,
    hukou_region         text        NOT NULL DEFAULT '',
    residence_region     text        NOT NULL DEFAULT '',
    reason               text        NOT NULL DEFAULT '',
    days_missed          integer,                    -- a school's report
    absent_since         date,
    school_code          text,
    notes                text        NOT NULL DEFAULT '',
    recorded_by          text        NOT NULL,
    recorded_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_on          date        NOT NULL,       -- by the rule clock (CST)
    outcome              text,
    proof                jsonb,
    case_id              uuid,
    resolved_by          text,
    resolved_at          timestamptz,
    resolved_on          date,
    version              bigint      NOT NULL DEFAULT 1,
    CONSTRAINT suspect_names_the_child CHECK (pupil_id IS NOT NULL OR resident_id_index IS NOT NULL),
    -- Nothing leaves the ledger without an outcome and the person who recorded it.
    CONSTRAINT suspect_resolution_recorded CHECK (
        (state = 'pending' AND outcome IS NULL AND resolved_by IS NULL)
        OR (state = 'confirmed' AND outcome = 'confirmed' AND case_id IS NOT NULL
            AND resolved_by IS NOT NULL AND resolved_at IS NOT NULL)
        OR (state = 'closed' AND outcome IN ('enrolled_elsewhere', 'deceased', 'emigrated', 'exempt', 'data_error')
            AND proof IS NOT NULL AND resolved_by IS NOT NULL AND resolved_at IS NOT NULL)
    )
);

-- One pending item per child: a re-run of the cross-check, a second report or a redelivered
-- event finds the item already there.
CREATE UNIQUE INDEX suspect_one_pending_per_check_item ON suspect (check_item_id)
    WHERE state = 'pending' AND check_item_id IS NOT NULL;
CREATE UNIQUE INDEX suspect_one_pending_per_pupil ON suspect (pupil_id)
    WHERE state = 'pending' AND pupil_id IS NOT NULL;
CREATE UNIQUE INDEX suspect_one_pending_per_child ON suspect (resident_id_index)
    WHERE state = 'pending' AND resident_id_index IS NOT NULL;

CREATE INDEX suspect_by_region ON suspect (region text_pattern_ops, recorded_at DESC, id DESC);
