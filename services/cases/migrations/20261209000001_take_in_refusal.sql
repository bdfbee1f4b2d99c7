-- An accepted incoming hand-off that R2 refused at take-in (the child already had an active case
-- here). The accept reaches the case service two ways, the transfer service's call
-- (TakeInHandoff) and its event (transfer.handoff_accepted); whichever comes second finds the
-- first's decision, a case taken in by its `handoff_id` or this refusal, and answers it again
-- instead of deciding anew.
CREATE TABLE take_in_refusal (
    handoff_id       uuid        PRIMARY KEY,
    existing_case_id uuid        NOT NULL,
    refused_at       timestamptz NOT NULL DEFAULT now()
);
