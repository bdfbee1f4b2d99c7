-- The mask shows the last four digits only (**************1234). The old one (320102********1234)
-- hid just the birth date, which every masked view also showed: together they were the whole
-- number. Masks written before are cut to the new form (issue 12).
UPDATE dropout_case SET resident_id_masked = repeat('*', 14) || right(resident_id_masked, 4)
    WHERE resident_id_masked IS NOT NULL AND length(resident_id_masked) = 18 AND left(resident_id_masked, 14) <> repeat('*', 14);
UPDATE suspect SET resident_id_masked = repeat('*', 14) || right(resident_id_masked, 4)
    WHERE resident_id_masked IS NOT NULL AND length(resident_id_masked) = 18 AND left(resident_id_masked, 14) <> repeat('*', 14);
UPDATE incoming_handoff SET resident_id_masked = repeat('*', 14) || right(resident_id_masked, 4)
    WHERE resident_id_masked IS NOT NULL AND length(resident_id_masked) = 18 AND left(resident_id_masked, 14) <> repeat('*', 14);
UPDATE assistance_watch SET resident_id_masked = repeat('*', 14) || right(resident_id_masked, 4)
    WHERE resident_id_masked IS NOT NULL AND length(resident_id_masked) = 18 AND left(resident_id_masked, 14) <> repeat('*', 14);
