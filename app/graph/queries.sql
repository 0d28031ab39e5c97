-- Named queries for graph memory (migration 0014). {scope} is one exact scope (app.graph.repository.exact_scope):
-- each identifier equal to the one given, the others absent. {where} is a caller's scope and access
-- (app.filters.scope_where) over the relations' payload.

-- The valid relations of one scope that touch the given node names: what the extraction prompt shows.
-- name: known_relations
SELECT source, relationship, destination
FROM graph_relations
WHERE {scope} AND invalidated_at IS NULL AND (source = ANY(%(names)s) OR destination = ANY(%(names)s))
ORDER BY valid_from DESC, id DESC
LIMIT %(limit)s

-- A valid relation once per scope: inserted, or found (then `inserted` is false); either way it gains its sources.
-- name: add_relation
WITH relation AS (
    INSERT INTO graph_relations (payload, source, source_type, relationship, destination, destination_type)
    VALUES (%(scope)s, %(source)s, %(source_type)s, %(relationship)s, %(destination)s, %(destination_type)s)
    ON CONFLICT ((payload ->> 'user_id'), (payload ->> 'agent_id'), (payload ->> 'run_id'),
                 source, relationship, destination) WHERE invalidated_at IS NULL
    DO UPDATE SET source_type = EXCLUDED.source_type
    RETURNING id, xmax = 0 AS inserted
), linked AS (
    INSERT INTO graph_relation_sources (relation_id, memory_id)
    SELECT relation.id, memory_id FROM relation, unnest(%(memory_ids)s::uuid[]) AS memory_id
    ON CONFLICT DO NOTHING
)
SELECT inserted FROM relation

-- name: end_relation
UPDATE graph_relations SET invalidated_at = now()
WHERE {scope} AND source = %(source)s AND relationship = %(relationship)s AND destination = %(destination)s
  AND invalidated_at IS NULL
RETURNING source, relationship, destination

-- The scope's projection falls behind: Neo4j has to catch up to the new version. `changed_at` is the first change
-- Neo4j has not seen, so the projection's lag is now() - changed_at.
-- name: mark_changed
INSERT INTO graph_projection (scope_key, payload) VALUES (%(scope_key)s, %(scope)s)
ON CONFLICT (scope_key) DO UPDATE SET
    version = graph_projection.version + 1,
    changed_at = CASE WHEN graph_projection.version > graph_projection.projected_version
                      THEN graph_projection.changed_at ELSE now() END,
    attempts = 0,
    retry_at = NULL

-- Every relation of one scope, valid and ended, with how many memories state it: what Neo4j must show.
-- name: scope_relations
SELECT r.source, r.source_type, r.relationship, r.destination, r.destination_type, r.valid_from, r.invalidated_at,
       (SELECT count(*) FROM graph_relation_sources s WHERE s.relation_id = r.id) AS mentions
FROM graph_relations r
WHERE {scope}
ORDER BY r.id

-- The valid relations a caller may see that touch the given node names (a search's next hop).
-- name: related
SELECT source, relationship, destination
FROM graph_relations
WHERE {where} AND invalidated_at IS NULL AND (source = ANY(%(names)s) OR destination = ANY(%(names)s))
ORDER BY valid_from DESC, id DESC
LIMIT %(limit)s

-- name: valid_relations
SELECT source, relationship, destination
FROM graph_relations
WHERE {where} AND invalidated_at IS NULL
ORDER BY valid_from DESC, id DESC
LIMIT %(limit)s

-- A scope's graph: every relation (ended ones too) or, with an instant, those valid then.
-- name: graph_relations
SELECT source, source_type, relationship, destination, destination_type, valid_from, invalidated_at,
       payload ->> 'user_id', payload ->> 'agent_id', payload ->> 'run_id'
FROM graph_relations
WHERE {where}
  AND (%(as_of)s::timestamptz IS NULL
       OR (valid_from <= %(as_of)s AND (invalidated_at IS NULL OR invalidated_at > %(as_of)s)))
ORDER BY valid_from, id
LIMIT %(limit)s

-- Deleted memories stop being sources; a relation left with none is removed. The scopes that lost relations.
-- name: forget_memories
WITH gone AS (
    DELETE FROM graph_relation_sources WHERE memory_id = ANY(%(memory_ids)s) RETURNING relation_id
), orphaned AS (
    DELETE FROM graph_relations r
    WHERE r.id IN (SELECT relation_id FROM gone)
      AND NOT EXISTS (SELECT 1 FROM graph_relation_sources s
                      WHERE s.relation_id = r.id AND NOT (s.memory_id = ANY(%(memory_ids)s)))
    RETURNING r.payload
)
SELECT DISTINCT payload FROM orphaned

-- name: clear
WITH cleared AS (DELETE FROM graph_relations WHERE {where} RETURNING payload)
SELECT DISTINCT payload FROM cleared
