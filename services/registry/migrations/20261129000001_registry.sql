-- The student registry of one province. Resident ID numbers are stored encrypted (AES-256-GCM,
-- key outside the database) and found by a keyed blind index (HMAC-SHA-256).

CREATE TABLE school (
    code        text PRIMARY KEY,
    name        text        NOT NULL,
    region      text        NOT NULL,              -- the county
    level       text        NOT NULL CHECK (level IN ('primary', 'junior_middle', 'nine_year')),
    ownership   text        NOT NULL CHECK (ownership IN ('public', 'private')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by  text        NOT NULL
);
CREATE INDEX school_by_region ON school (region text_pattern_ops, code);

CREATE TABLE pupil (
    id                  uuid PRIMARY KEY,
    full_name           text        NOT NULL,
    -- Null for a pupil registered without a number: the identity is provisional.
    resident_id_cipher  bytea,
    resident_id_index   bytea,
    resident_id_masked  text,
    -- For a provisional identity: HMAC of school, name and birth date, so a re-import of the same
    -- row finds the same pupil.
    provisional_key     bytea,
    sex                 smallint    NOT NULL,      -- 0 unknown, 1 male, 2 female
    birth_date          date,
    enrollment_region   text        NOT NULL,      -- the county of the student record (学籍)
    hukou_region        text        NOT NULL,
    residence_region    text        NOT NULL,
    school_code         text        NOT NULL REFERENCES school (code),
    grade               smallint    NOT NULL CHECK (grade BETWEEN 1 AND 9),
    migrant             boolean     NOT NULL,
    enrollment_status   text        NOT NULL,
    disability_grade    smallint    NOT NULL DEFAULT 0, -- 0 none/unknown, 1..4 certificate grade
    registered_poor     boolean     NOT NULL DEFAULT false,
    poor_household_id   text,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by          text        NOT NULL,
    import_job          uuid,                      -- the import that created it, and its row there
    import_row          bigint,
    version             bigint      NOT NULL DEFAULT 1,
    CONSTRAINT pupil_identity CHECK ((resident_id_index IS NULL) <> (provisional_key IS NULL))
);
-- One pupil per resident ID number in the province.
CREATE UNIQUE INDEX pupil_one_per_resident_id ON pupil (resident_id_index);
CREATE UNIQUE INDEX pupil_one_per_provisional_key ON pupil (provisional_key);
CREATE INDEX pupil_by_region ON pupil (enrollment_region text_pattern_ops, created_at DESC, id DESC);
CREATE INDEX pupil_by_school ON pupil (school_code);
CREATE INDEX pupil_provisional ON pupil (enrollment_region text_pattern_ops) WHERE provisional_key IS NOT NULL;
-- Registered-poor pupils, readable from the index alone (for the poverty cross-check).
CREATE INDEX pupil_registered_poor ON pupil (resident_id_index) INCLUDE (id) WHERE registered_poor;

-- Every status change and transfer, with its reason and effective date.
CREATE TABLE pupil_status_change (
    pupil_id        uuid        NOT NULL REFERENCES pupil (id),
    sequence        bigint      NOT NULL,
    from_status     text        NOT NULL,
    to_status       text        NOT NULL,
    from_school     text        NOT NULL,
    to_school       text        NOT NULL,
    reason          text        NOT NULL,
    effective_date  date        NOT NULL,
    recorded_by     text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (pupil_id, sequence)
);

-- Rows of an import that tried to enrol an ID already registered at another school
-- (人籍分离 candidates for the cross-check).
CREATE TABLE enrollment_conflict (
    resident_id_index   bytea       NOT NULL,
    resident_id_cipher  bytea       NOT NULL,
    resident_id_masked  text        NOT NULL,
    full_name           text        NOT NULL,
    school_code         text        NOT NULL,
    region              text        NOT NULL,
    import_job          uuid        NOT NULL,
    row_number          bigint      NOT NULL,
    found_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (resident_id_index, school_code)
);

-- The household register's school-age children (户籍), as imported. A number that fails its
-- check digit is kept (that is a finding), under a blind index of the text as given.
CREATE TABLE household_member (
    resident_id_index   bytea PRIMARY KEY,
    resident_id_cipher  bytea       NOT NULL,
    resident_id_masked  text        NOT NULL,
    id_problem          text,                      -- why the number is not valid, if it is not
    full_name           text        NOT NULL,
    birth_date          date,                      -- from the number when valid
    listed_birth_date   date,                      -- as the list gives it
    birth_mismatch      boolean     NOT NULL,      -- the list's birth date disagrees with the number's
    sex                 smallint    NOT NULL,
    hukou_region        text        NOT NULL,
    residence_region    text        NOT NULL,
    -- The county that must act: the residence when in the province, else the household registration.
    responsible_region  text        NOT NULL,
    import_job          uuid        NOT NULL,
    import_row          bigint      NOT NULL,
    imported_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX household_member_by_region ON household_member (responsible_region text_pattern_ops);
-- The cross-check's rarer findings, found without scanning the whole register.
CREATE INDEX household_member_bad_id ON household_member (resident_id_index) WHERE id_problem IS NOT NULL;
CREATE INDEX household_member_birth_mismatch ON household_member (resident_id_index) WHERE birth_mismatch;
-- Counting the school-age children of a region without reading the rows.
CREATE INDEX household_member_school_age ON household_member (responsible_region text_pattern_ops, birth_date)
    WHERE id_problem IS NULL;

-- The poverty registry's children (扶贫).
CREATE TABLE poverty_child (
    resident_id_index   bytea PRIMARY KEY,
    resident_id_cipher  bytea       NOT NULL,
    resident_id_masked  text        NOT NULL,
    id_problem          text,
    full_name           text        NOT NULL,
    household_id        text        NOT NULL,
    region              text        NOT NULL,
    import_job          uuid        NOT NULL,
    import_row          bigint      NOT NULL,
    imported_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX poverty_child_by_region ON poverty_child (region text_pattern_ops);

-- Import jobs: one file, its progress and summary; resumable (rows up to last_row committed).
CREATE TABLE import_job (
    id              uuid PRIMARY KEY,
    kind            text        NOT NULL,
    file_name       text        NOT NULL,
    file_format     text        NOT NULL,
    file_encoding   text        NOT NULL,
    state           text        NOT NULL,
    rows_read       bigint      NOT NULL DEFAULT 0,
    rows_imported   bigint      NOT NULL DEFAULT 0,
    rows_unchanged  bigint      NOT NULL DEFAULT 0,
    rows_rejected   bigint      NOT NULL DEFAULT 0,
    last_row        bigint      NOT NULL DEFAULT 0,
    message         text        NOT NULL DEFAULT '',
    header          text[]      NOT NULL DEFAULT '{}',
    caller          text        NOT NULL,
    caller_region   text        NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz
);

-- Rejected rows, with the row's cells so the error file can be written in the file's format.
CREATE TABLE import_row_error (
    job_id      uuid        NOT NULL REFERENCES import_job (id),
    row_number  bigint      NOT NULL,
    column_name text        NOT NULL,
    reason      text        NOT NULL,
    cells       text[]      NOT NULL,
    PRIMARY KEY (job_id, row_number, column_name)
);

-- Cross-check findings. One row per finding (kind + subject), kept across runs: a closed item
-- found again with the same data stays closed; with changed data it reopens.
CREATE TABLE check_item (
    id                  uuid PRIMARY KEY,
    kind                text        NOT NULL,
    subject             bytea       NOT NULL,      -- blind index (or pupil id) the finding is about
    region              text        NOT NULL,
    full_name           text        NOT NULL,
    resident_id_cipher  bytea,
    resident_id_masked  text        NOT NULL,
    reason              text        NOT NULL,
    fingerprint         bytea       NOT NULL,      -- hash of the data that produced it
    detail              jsonb       NOT NULL DEFAULT '{}',
    open                boolean     NOT NULL DEFAULT true,
    outcome             text,
    outcome_detail      text,
    closed_by           text,
    closed_at           timestamptz,
    first_found_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_found_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_run            uuid        NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX check_item_by_region ON check_item (region text_pattern_ops, first_found_at DESC, id DESC);

CREATE TABLE check_run (
    id              uuid PRIMARY KEY,
    region          text        NOT NULL,
    as_of_date      date        NOT NULL,
    children        bigint      NOT NULL,
    found           jsonb       NOT NULL,
    opened          bigint      NOT NULL,
    still_open      bigint      NOT NULL,
    kept_closed     bigint      NOT NULL,
    ran_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms     bigint      NOT NULL,
    caller          text        NOT NULL
);

-- A JSON array of strings as text[] (rejected rows' cells arrive that way, one array per row).
CREATE FUNCTION decode_cells(json text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(value ORDER BY ordinality), '{}') FROM json_array_elements_text(json::json) WITH ORDINALITY
$$;
