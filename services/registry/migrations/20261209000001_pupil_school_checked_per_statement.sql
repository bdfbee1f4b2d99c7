-- A pupil's school checked once per statement, not once per row (issue 13, the import of a
-- province of 10,000,000 pupils).
--
-- The import writes 5,000 pupils a statement. The foreign key's row trigger looked up and
-- key-share locked the school once for each of them. EXPLAIN ANALYZE of such a statement into a
-- table of 1,000,000 pupils: the row trigger 31–36 ms, the statement 140–240 ms without it; the
-- check below 8–10 ms (docs/BENCHMARKS.md).
--
-- The guarantee stays, checked differently:
-- - an insert of pupils fails, whole, when any of them names a school that is not registered
--   (one anti-join per statement over the inserted rows, `foreign_key_violation` as before);
-- - a change of a pupil's school (a transfer) is checked row by row, as before;
-- - a school is never deleted and its code never changes (nothing in the system does either:
--   schools are registered, never removed), so no reference can dangle later and no lock is
--   needed to keep the school alive until commit.

ALTER TABLE pupil DROP CONSTRAINT pupil_school_code_fkey;

CREATE FUNCTION pupil_schools_exist() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_pupils p
                WHERE NOT EXISTS (SELECT 1 FROM school s WHERE s.code = p.school_code)) THEN
        RAISE EXCEPTION 'a pupil names a school that is not registered'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER pupil_schools_exist AFTER INSERT ON pupil
    REFERENCING NEW TABLE AS inserted_pupils
    FOR EACH STATEMENT EXECUTE FUNCTION pupil_schools_exist();

CREATE FUNCTION pupil_new_school_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.school_code IS DISTINCT FROM OLD.school_code
       AND NOT EXISTS (SELECT 1 FROM school s WHERE s.code = NEW.school_code) THEN
        RAISE EXCEPTION 'a pupil names a school that is not registered'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
-- Fires only for an UPDATE that names the column: a transfer, not a status change.
CREATE TRIGGER pupil_new_school_exists BEFORE UPDATE OF school_code ON pupil
    FOR EACH ROW EXECUTE FUNCTION pupil_new_school_exists();

CREATE FUNCTION school_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'schools are never deleted and their codes never change'
          USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER school_never_deleted BEFORE DELETE OR TRUNCATE ON school
    FOR EACH STATEMENT EXECUTE FUNCTION school_kept();
CREATE TRIGGER school_code_fixed BEFORE UPDATE OF code ON school
    FOR EACH STATEMENT EXECUTE FUNCTION school_kept();
