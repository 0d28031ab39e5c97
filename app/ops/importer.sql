-- Named queries of `mem0-fixed import`. {collection} is this server's memories table; {source} is the upstream
-- mem0 table, bound as an identifier. The source is only ever read.

-- name: source_count
SELECT count(*) FROM {source}

-- Text order works for mem0's uuid and text id columns alike; the named cursor streams it in one scan.
-- name: source_rows
SELECT id::text, payload FROM {source} ORDER BY id::text

-- name: already_imported
SELECT id::text FROM "{collection}" WHERE id = ANY(%(ids)s::uuid[])

-- name: target_exists
SELECT to_regclass('public."{collection}"') IS NOT NULL

-- A rerun after an interruption finds the committed batches here and inserts nothing twice; RETURNING names the
-- rows this run added, the only ones whose history it writes.
-- name: insert_memories
INSERT INTO "{collection}" (id, vector, payload)
SELECT * FROM unnest(%(ids)s::uuid[], %(vectors)b::vector[], %(payloads)s::jsonb[])
ON CONFLICT (id) DO NOTHING
RETURNING id::text

-- name: insert_history
INSERT INTO memory_history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
VALUES (%(id)s, %(memory_id)s, %(old_memory)s, %(new_memory)s, %(event)s, %(created_at)s, %(updated_at)s,
        %(is_deleted)s, %(actor_id)s, %(role)s)
ON CONFLICT (id) DO NOTHING
