-- Named queries for scopes: the distinct user, agent and run ids of the memories table ("{collection}").
-- {where} is the caller's access restriction (app.filters.access_where).

-- One row per (type, id) the caller can see, with its memories' count and first / last write.
-- name: list_scopes
SELECT scope.type, scope.name, count(*) AS total_memories,
       min(payload ->> 'created_at') AS created_at,
       max(coalesce(payload ->> 'updated_at', payload ->> 'created_at')) AS updated_at
FROM "{collection}"
CROSS JOIN LATERAL (VALUES ('user', payload ->> 'user_id'), ('agent', payload ->> 'agent_id'),
                           ('run', payload ->> 'run_id')) AS scope (type, name)
WHERE scope.name IS NOT NULL AND {where}
GROUP BY scope.type, scope.name
ORDER BY scope.type, scope.name
LIMIT %(limit)s OFFSET %(offset)s

-- name: count_scopes
SELECT count(*) FROM (
    SELECT DISTINCT scope.type, scope.name
    FROM "{collection}"
    CROSS JOIN LATERAL (VALUES ('user', payload ->> 'user_id'), ('agent', payload ->> 'agent_id'),
                               ('run', payload ->> 'run_id')) AS scope (type, name)
    WHERE scope.name IS NOT NULL AND {where}
) AS scopes
