-- The reason a row was rejected, in Chinese: what the error file a bureau downloads says (the
-- English reason stays the one the API answers). Rows rejected before this column have none.
ALTER TABLE import_row_error ADD COLUMN reason_zh text NOT NULL DEFAULT '';
