-- The case file's contents (一人一案, R2) and the work recorded on it. Every row is written in the
-- transaction that bumps the case's version and appends its history entry.

-- Responsible officers (包保责任人).
CREATE TABLE case_officer (
    id         uuid PRIMARY KEY,
    case_id    uuid        NOT NULL REFERENCES dropout_case (id),
    full_name  text        NOT NULL,
    role       text        NOT NULL,          -- bureau_official, school_staff, village_cadre
    phone      text        NOT NULL,
    added_by   text        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX case_officer_by_case ON case_officer (case_id);

-- The plan: measures with a due date each (R3 financial aid and its fund, R7 learning support,
-- R4 home teaching, legal steps).
CREATE TABLE case_measure (
    id                uuid PRIMARY KEY,
    case_id           uuid        NOT NULL REFERENCES dropout_case (id),
    kind              text        NOT NULL,
    description       text        NOT NULL,
    fund              text        NOT NULL DEFAULT '',
    learning_support  text[]      NOT NULL DEFAULT '{}',
    due_on            date        NOT NULL,
    done_on           date,
    done_by           text,
    added_by          text        NOT NULL,
    added_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX case_measure_by_case ON case_measure (case_id, due_on);

-- Evidence documents; the file, if any, in its own table so listings never read it.
CREATE TABLE case_evidence (
    id               uuid PRIMARY KEY,
    case_id          uuid        NOT NULL REFERENCES dropout_case (id),
    kind             text        NOT NULL,     -- medical, judicial_ruling, guardian_duty, ...
    document_number  text        NOT NULL DEFAULT '',
    issuing_body     text        NOT NULL,
    issued_on        date        NOT NULL,
    file_name        text        NOT NULL DEFAULT '',
    file_size        bigint      NOT NULL DEFAULT 0,
    file_sha256      bytea,
    added_by         text        NOT NULL,
    added_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX case_evidence_by_case ON case_evidence (case_id, kind);

CREATE TABLE case_evidence_file (
    evidence_id  uuid PRIMARY KEY REFERENCES case_evidence (id),
    content      bytea NOT NULL CHECK (octet_length(content) <= 10485760)
);

-- Persuasion attempts (劝返, R5, R8, R9).
CREATE TABLE persuasion_attempt (
    id            uuid PRIMARY KEY,
    case_id       uuid        NOT NULL REFERENCES dropout_case (id),
    attempt_on    date        NOT NULL,
    departments   text[]      NOT NULL CHECK (cardinality(departments) > 0),
    means         text[]      NOT NULL,
    place         text        NOT NULL,         -- home, work_place, other
    place_region  text,                         -- for a work place (R8)
    outcome       text        NOT NULL,         -- agreed_to_return, refused, guardian_unreachable, child_not_found
    notes         text        NOT NULL DEFAULT '',
    joint         boolean     NOT NULL,         -- a department besides education took part
    recorded_by   text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX persuasion_attempt_by_case ON persuasion_attempt (case_id, recorded_at DESC, id DESC);

-- Home-teaching visits (送教上门, R4).
CREATE TABLE home_teaching_visit (
    id                uuid PRIMARY KEY,
    case_id           uuid        NOT NULL REFERENCES dropout_case (id),
    visited_on        date        NOT NULL,
    teacher           text        NOT NULL,
    duration_minutes  integer     NOT NULL CHECK (duration_minutes BETWEEN 1 AND 600),
    content           text        NOT NULL,
    recorded_by       text        NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX home_teaching_visit_by_case ON home_teaching_visit (case_id, visited_on DESC);

-- Deferral and suspension requests (R6), decided by the county poverty-alleviation group.
CREATE TABLE deferral_request (
    id             uuid PRIMARY KEY,
    case_id        uuid        NOT NULL REFERENCES dropout_case (id),
    kind           text        NOT NULL,        -- deferred, suspended
    reason         text        NOT NULL,
    state          text        NOT NULL DEFAULT 'pending',  -- pending, approved, rejected
    requested_by   text        NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_by     text,
    decided_at     timestamptz,
    decision_note  text        NOT NULL DEFAULT ''
);
-- One pending request per case.
CREATE UNIQUE INDEX deferral_request_one_pending ON deferral_request (case_id) WHERE state = 'pending';

-- Case lists filter by cause and status.
CREATE INDEX dropout_case_causes ON dropout_case USING gin (causes);
