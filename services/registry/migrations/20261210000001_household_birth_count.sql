-- The household register's children with a valid number, counted per responsible county and day
-- of birth (issue 13, the cross-check of a province of 10,000,000 pupils).
--
-- Every cross-check reports how many school-age children it checked. Counted from the register,
-- that read ~10,000,000 index entries at province scale (0.1–0.2 of the whole check's bare
-- anti-join, and it shared the two cores with the check). Counted from here it sums at most one
-- row per county and day: ~400,000 rows whatever the register's size (the registry vacuums and
-- analyses it after each large import of the register, with the register).
--
-- The counts are kept by the database itself, in the statement that changes the register: a
-- statement trigger over the changed rows (transition tables) adds what was inserted, takes away
-- what was deleted and moves what an update changed. Any writer is covered: the imports' upsert,
-- the re-encryption pass (which changes no counted column, so nothing is written), a change by
-- hand. Writers take a transaction lock first, so two imports never update the same counts in
-- opposite orders (an upsert fires the insert and the update trigger one after the other).

CREATE TABLE household_birth_count (
    responsible_region  text    NOT NULL,
    birth_date          date    NOT NULL,
    members             bigint  NOT NULL
-- An import changes each count once a batch: room on the page keeps those updates HOT.
) WITH (fillfactor = 50);
CREATE UNIQUE INDEX household_birth_count_key
    ON household_birth_count (responsible_region text_pattern_ops, birth_date);

INSERT INTO household_birth_count (responsible_region, birth_date, members)
SELECT responsible_region, birth_date, count(*)
  FROM household_member
 WHERE id_problem IS NULL AND birth_date IS NOT NULL
 GROUP BY responsible_region, birth_date;

-- Adds the counts of `added` less those of `removed` (either may be empty), by county and day.
CREATE FUNCTION household_birth_count_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('registry.household_birth_count'));
    IF TG_OP = 'INSERT' THEN
        INSERT INTO household_birth_count AS c (responsible_region, birth_date, members)
        SELECT responsible_region, birth_date, count(*) FROM added_members
         WHERE id_problem IS NULL AND birth_date IS NOT NULL
         GROUP BY responsible_region, birth_date
         ORDER BY responsible_region, birth_date
        ON CONFLICT (responsible_region, birth_date) DO UPDATE SET members = c.members + EXCLUDED.members;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE household_birth_count c SET members = c.members - d.members
          FROM (SELECT responsible_region, birth_date, count(*) AS members FROM removed_members
                 WHERE id_problem IS NULL AND birth_date IS NOT NULL
                 GROUP BY responsible_region, birth_date) d
         WHERE c.responsible_region = d.responsible_region AND c.birth_date = d.birth_date;
    ELSE
        INSERT INTO household_birth_count AS c (responsible_region, birth_date, members)
        SELECT responsible_region, birth_date, sum(members) FROM (
            SELECT responsible_region, birth_date, 1 AS members FROM added_members
             WHERE id_problem IS NULL AND birth_date IS NOT NULL
            UNION ALL
            SELECT responsible_region, birth_date, -1 FROM removed_members
             WHERE id_problem IS NULL AND birth_date IS NOT NULL) moved
         GROUP BY responsible_region, birth_date
        HAVING sum(members) <> 0
         ORDER BY responsible_region, birth_date
        ON CONFLICT (responsible_region, birth_date) DO UPDATE SET members = c.members + EXCLUDED.members;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER household_birth_count_inserted AFTER INSERT ON household_member
    REFERENCING NEW TABLE AS added_members
    FOR EACH STATEMENT EXECUTE FUNCTION household_birth_count_apply();
CREATE TRIGGER household_birth_count_updated AFTER UPDATE ON household_member
    REFERENCING OLD TABLE AS removed_members NEW TABLE AS added_members
    FOR EACH STATEMENT EXECUTE FUNCTION household_birth_count_apply();
CREATE TRIGGER household_birth_count_deleted AFTER DELETE ON household_member
    REFERENCING OLD TABLE AS removed_members
    FOR EACH STATEMENT EXECUTE FUNCTION household_birth_count_apply();

CREATE FUNCTION household_birth_count_cleared() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE household_birth_count;
    RETURN NULL;
END
$$;
CREATE TRIGGER household_birth_count_truncated AFTER TRUNCATE ON household_member
    FOR EACH STATEMENT EXECUTE FUNCTION household_birth_count_cleared();
