-- A semester check's checklist: its references checked once per statement, not once per row
-- (issue 13, a province of 10,000,000 pupils).
--
-- With 200,000 children in monitoring, `StartSemesterCheck` took 3.4× the bare `INSERT … SELECT`
-- of the same items. EXPLAIN ANALYZE showed why: of its 12.9 s, the two foreign keys' row triggers
-- took 8.0 s (200,000 calls each: a lookup and a `FOR KEY SHARE` lock of the check, 3.0 s, and of
-- the case, 4.9 s), the insert itself 4.8 s (docs/BENCHMARKS.md).
--
-- The guarantee stays, checked differently:
-- - an insert of items fails, whole, when any of them names a check or a case that does not exist
--   (one anti-join per statement over the inserted rows, `foreign_key_violation` as before);
-- - an item's check and case never change (they never did: no code updates them);
-- - checks and cases are never deleted, so no reference can dangle later and no lock is needed to
--   keep the referenced row alive until commit. Nothing in the system deletes either: a case is a
--   record kept for good, and before this migration every case was already undeletable in practice
--   (its history rows reference it).

ALTER TABLE semester_check_item DROP CONSTRAINT semester_check_item_check_id_fkey;
ALTER TABLE semester_check_item DROP CONSTRAINT semester_check_item_case_id_fkey;

CREATE FUNCTION semester_check_item_references_exist() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_items i
                WHERE NOT EXISTS (SELECT 1 FROM semester_check c WHERE c.id = i.check_id)) THEN
        RAISE EXCEPTION 'a semester check item names a check that does not exist'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM inserted_items i
                WHERE NOT EXISTS (SELECT 1 FROM dropout_case c WHERE c.id = i.case_id)) THEN
        RAISE EXCEPTION 'a semester check item names a case that does not exist'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER semester_check_item_references_exist AFTER INSERT ON semester_check_item
    REFERENCING NEW TABLE AS inserted_items
    FOR EACH STATEMENT EXECUTE FUNCTION semester_check_item_references_exist();

CREATE FUNCTION semester_check_item_references_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.check_id IS DISTINCT FROM OLD.check_id OR NEW.case_id IS DISTINCT FROM OLD.case_id THEN
        RAISE EXCEPTION 'a semester check item''s check and case never change'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
-- Fires only for an UPDATE that names these columns; a mark or a follow-up does not.
CREATE TRIGGER semester_check_item_references_fixed BEFORE UPDATE OF check_id, case_id ON semester_check_item
    FOR EACH ROW EXECUTE FUNCTION semester_check_item_references_fixed();

CREATE FUNCTION refuse_deleting_records() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are records kept for good and are never deleted', TG_TABLE_NAME
          USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER semester_check_never_deleted BEFORE DELETE OR TRUNCATE ON semester_check
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_deleting_records();
CREATE TRIGGER dropout_case_never_deleted BEFORE DELETE OR TRUNCATE ON dropout_case
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_deleting_records();
