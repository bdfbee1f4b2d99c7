-- Pupils with a student record (学籍) in the province. The resident ID number is stored
-- encrypted (AES-256-GCM, key outside the database) and found by a keyed blind index.
CREATE TABLE pupil (
    id                  uuid PRIMARY KEY,
    full_name           text        NOT NULL,
    resident_id_cipher  bytea       NOT NULL,
    resident_id_index   bytea       NOT NULL,
    resident_id_masked  text        NOT NULL,
    sex                 smallint    NOT NULL,
    birth_date          date        NOT NULL,
    enrollment_region   text        NOT NULL,
    hukou_region        text        NOT NULL,
    residence_region    text        NOT NULL,
    school_name         text        NOT NULL,
    grade               smallint    NOT NULL CHECK (grade BETWEEN 1 AND 9),
    migrant             boolean     NOT NULL,
    enrollment_status   text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by          text        NOT NULL,
    CONSTRAINT pupil_one_per_resident_id UNIQUE (resident_id_index)
);
-- Region-subtree listing, newest first: enrollment_region LIKE '3201%'.
CREATE INDEX pupil_by_region ON pupil (enrollment_region text_pattern_ops, created_at DESC, id DESC);
