-- Named queries for entities: the distinct identifiers of the memories table ("{collection}").
-- {where} is the caller's access restriction (app.memories.repository.access_where).

-- One row per (type, name) the caller can see, with its memories' count and first / last write.
-- name: list_entities
SELECT entity.type, entity.name, count(*) AS total_memories,
       min(payload ->> 'created_at') AS created_at,
       max(coalesce(payload ->> 'updated_at', payload ->> 'created_at')) AS updated_at
FROM "{collection}"
CROSS JOIN LATERAL (VALUES ('user', payload ->> 'user_id'), ('agent', payload ->> 'agent_id'),
                           ('run', payload ->> 'run_id')) AS entity (type, name)
WHERE entity.name IS NOT NULL AND {where}
GROUP BY entity.type, entity.name
ORDER BY entity.type, entity.name
LIMIT %(limit)s OFFSET %(offset)s

-- name: count_entities
SELECT count(*) FROM (
    SELECT DISTINCT entity.type, entity.name
    FROM "{collection}"
    CROSS JOIN LATERAL (VALUES ('user', payload ->> 'user_id'), ('agent', payload ->> 'agent_id'),
                               ('run', payload ->> 'run_id')) AS entity (type, name)
    WHERE entity.name IS NOT NULL AND {where}
) AS entities
