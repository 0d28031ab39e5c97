-- Named queries for the operations commands (invariants, backup manifests). {collection} is the memories table.

-- name: recorded_migrations
SELECT version, checksum FROM schema_migrations ORDER BY version

-- Memories without their ADD event: those this server wrote (a broken invariant), and those another client wrote
-- (mem0's own library keeps its history elsewhere). A row from before `written_here` (migration 0015) with no
-- history at all counts as another client's.
-- name: memories_without_add
SELECT count(*) FILTER (WHERE m.written_here OR EXISTS (SELECT 1 FROM memory_history AS h WHERE h.memory_id = m.id)),
       count(*) FILTER (WHERE NOT m.written_here
                          AND NOT EXISTS (SELECT 1 FROM memory_history AS h WHERE h.memory_id = m.id))
FROM "{collection}" AS m
WHERE NOT EXISTS (SELECT 1 FROM memory_history AS h WHERE h.memory_id = m.id AND h.event = 'ADD')

-- Deleting a memory unlinks it from its entities in the same transaction, so no link points at nothing.
-- name: dangling_entity_links
SELECT count(*) FROM "{collection}_entities" AS e
CROSS JOIN LATERAL jsonb_array_elements_text(e.payload -> 'linked_memory_ids') AS linked (memory_id)
WHERE NOT EXISTS (SELECT 1 FROM "{collection}" AS m WHERE m.id::text = linked.memory_id)

-- A lease renewed every third of its length runs out only when its worker is gone; a minute past it, no live
-- server has picked the job up again.
-- name: stuck_jobs
SELECT count(*) FROM jobs WHERE status = 'RUNNING' AND locked_until < now() - interval '1 minute'

-- name: row_counts
SELECT (SELECT count(*) FROM "{collection}"), (SELECT count(*) FROM memory_history), (SELECT count(*) FROM jobs),
       (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL)
