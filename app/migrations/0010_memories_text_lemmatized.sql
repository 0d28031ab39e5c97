-- mem0 2.x keeps `text_lemmatized` in every payload and its keyword search (and ours) reads only that key, so rows
-- written before this server stored it were invisible to the keyword signal. Without spaCy (this server loads no
-- model) mem0's lemmatize_for_bm25 returns the text unchanged, so the key is the memory's text (`data`).
-- Batches of 5,000 rows by id keep each UPDATE (and its index maintenance) bounded; the migrator runs a file in
-- one transaction, so the batches bound statements, not the transaction: all rows commit together or none do.
DO $$
DECLARE
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    batch_end uuid;
BEGIN
    LOOP
        -- The batch's last id (no rows: NULL, and the loop ends).
        SELECT id INTO batch_end FROM (
            SELECT id FROM "{collection}" WHERE id > last_id ORDER BY id LIMIT 5000
        ) AS batch ORDER BY id DESC LIMIT 1;
        EXIT WHEN batch_end IS NULL;
        UPDATE "{collection}"
        SET payload = payload || jsonb_build_object('text_lemmatized', payload -> 'data')
        WHERE id > last_id AND id <= batch_end
          AND jsonb_typeof(payload -> 'data') = 'string' AND NOT payload ? 'text_lemmatized';
        last_id := batch_end;
    END LOOP;
END
$$;

-- The index mem0's pgvector store creates (same name and expression, so a table mem0 created keeps one), built
-- after the backfill so it is filled in one pass; a search's full-text half intersects it with the scope's rows.
CREATE INDEX IF NOT EXISTS "{collection}_text_lemmatized_idx"
    ON "{collection}" USING gin (to_tsvector('simple', payload ->> 'text_lemmatized'));
-- GIN queues new rows in a pending list that every search scans whole, once per query word, until it is merged
-- (at 4 MB by default, or by VACUUM): 10,000 queued rows cost about 0.7 ms per query word. 64 kB keeps that
-- scan short; a write that fills the list merges it (that write pays a few ms).
ALTER INDEX "{collection}_text_lemmatized_idx" SET (gin_pending_list_limit = 64);
