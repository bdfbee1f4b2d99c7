-- A persuasion attempt reported by another county that helped with the case (协查, R8/R11): it
-- counts as the case's attempt (joint where it is joint, so R6 can rest on it), attributed to
-- the helping county and its request.
ALTER TABLE persuasion_attempt
    ADD COLUMN assisting_region text,
    ADD COLUMN assistance_id    uuid;
