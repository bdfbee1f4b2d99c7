-- Each side of a hand-off (R11) as the province's events tell it: the origin county's (outgoing)
-- or the destination county's (incoming), one row per side however often or in whatever order
-- its events arrive. A subtree's summary counts its rows by outcome; those still undecided after
-- their decision's due date (announced by the case service) are overdue.
CREATE TABLE handoff_side (
    handoff_id       uuid        NOT NULL,
    direction        text        NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    region           text        NOT NULL,
    -- A step of the hand-off on this side was seen (not only its due date): the side counts.
    counted          boolean     NOT NULL,
    outcome          text        CHECK (outcome IN ('accepted', 'rejected', 'cancelled')),
    reject_reason    text        CHECK (reject_reason IN
                                        ('child_not_found', 'hukou_not_here', 'already_has_case', 'data_wrong', 'other')),
    decision_due_on  date,
    -- When the due date kept was announced: a later announcement (a new deadline policy) wins.
    due_announced_at timestamptz,
    last_event_at    timestamptz NOT NULL,
    PRIMARY KEY (handoff_id, direction),
    CONSTRAINT handoff_side_rejected_with_reason CHECK ((outcome = 'rejected') = (reject_reason IS NOT NULL))
);
CREATE INDEX handoff_side_by_prefix ON handoff_side (region text_pattern_ops);
