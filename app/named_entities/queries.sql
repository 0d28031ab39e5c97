-- Named queries for the entity collection ("{collection}_entities", migration 0011) in mem0's layout: payload
-- {data, entity_type, linked_memory_ids, user_id / agent_id / run_id}. An entity belongs to one scope and is
-- found again by mem0's key for its text (lowercased, runs of whitespace as one space).
-- A text names an entity when its words hold the entity's words in order: to_tsvector('simple', text) @@
-- phraseto_tsquery('simple', name). Linking a new memory, keeping a rewritten memory's links and finding a
-- search query's entities (app/memories/queries.sql) all use this one test.

-- Link new memories to the entities their texts name: an entity the scope already has gains the ids, a new one
-- is inserted. Runs under the scope's advisory lock (taken by the insert before it), so two writers naming a new
-- entity create it once.
-- name: link_memories
WITH found AS (
    SELECT DISTINCT ON (key) name, type, vector, key
    FROM unnest(%(names)s::text[], %(types)s::text[], %(vectors)b::vector[]) WITH ORDINALITY AS found (name, type, vector, ord)
    CROSS JOIN LATERAL (SELECT regexp_replace(lower(btrim(found.name)), '\s+', ' ', 'g') AS key) AS normal
    ORDER BY key, ord
), links AS (
    SELECT found.key, found.name, found.type, found.vector, named.memory_ids
    FROM found
    CROSS JOIN LATERAL (
        SELECT jsonb_agg(memory.id ORDER BY memory.ord) AS memory_ids
        FROM unnest(%(memory_ids)s::text[], %(texts)s::text[]) WITH ORDINALITY AS memory (id, text, ord)
        WHERE to_tsvector('simple', memory.text) @@ phraseto_tsquery('simple', found.name)
    ) AS named
    WHERE named.memory_ids IS NOT NULL
), known AS (
    UPDATE "{collection}_entities" AS entity
    SET payload = entity.payload || jsonb_build_object(
        'linked_memory_ids', coalesce(entity.payload -> 'linked_memory_ids', '[]'::jsonb) || links.memory_ids)
    FROM links
    WHERE regexp_replace(lower(btrim(entity.payload ->> 'data')), '\s+', ' ', 'g') = links.key
      AND entity.payload ->> 'user_id' IS NOT DISTINCT FROM %(user_id)s::text
      AND entity.payload ->> 'agent_id' IS NOT DISTINCT FROM %(agent_id)s::text
      AND entity.payload ->> 'run_id' IS NOT DISTINCT FROM %(run_id)s::text
    RETURNING links.key
)
INSERT INTO "{collection}_entities" (id, vector, payload)
SELECT gen_random_uuid(), vector,
       jsonb_build_object('data', name, 'entity_type', type, 'linked_memory_ids', memory_ids) || %(scope)s::jsonb
FROM links
WHERE key NOT IN (SELECT key FROM known)

-- Take memories out of the entities linked to them; with `kept_text` (a memory's new text) the entities it still
-- names keep their link. An entity left linked to nothing is deleted, as mem0 does: that is this statement,
-- run before unlink_memories because one statement cannot both rewrite and delete a row.
-- name: delete_orphaned_entities
DELETE FROM "{collection}_entities"
WHERE payload -> 'linked_memory_ids' ?| %(memory_ids)s::text[]
  AND NOT EXISTS (
      SELECT 1 FROM jsonb_array_elements_text(payload -> 'linked_memory_ids') AS linked (id)
      WHERE linked.id <> ALL (%(memory_ids)s::text[]))
  AND (%(kept_text)s::text IS NULL
       OR NOT to_tsvector('simple', %(kept_text)s::text) @@ phraseto_tsquery('simple', payload ->> 'data'))

-- name: unlink_memories
UPDATE "{collection}_entities"
SET payload = payload || jsonb_build_object('linked_memory_ids', (
    SELECT coalesce(jsonb_agg(linked.id ORDER BY linked.ord), '[]'::jsonb)
    FROM jsonb_array_elements_text(payload -> 'linked_memory_ids') WITH ORDINALITY AS linked (id, ord)
    WHERE linked.id <> ALL (%(memory_ids)s::text[])))
WHERE payload -> 'linked_memory_ids' ?| %(memory_ids)s::text[]
  AND (%(kept_text)s::text IS NULL
       OR NOT to_tsvector('simple', %(kept_text)s::text) @@ phraseto_tsquery('simple', payload ->> 'data'))

-- name: list_entities
SELECT id, payload FROM "{collection}_entities" WHERE {where}
ORDER BY lower(payload ->> 'data'), id
LIMIT %(limit)s OFFSET %(offset)s

-- name: count_entities
SELECT count(*) FROM "{collection}_entities" WHERE {where}

-- Deleting an entity deletes its links with it: they live in its row.
-- name: delete_entity
DELETE FROM "{collection}_entities" WHERE id = %(id)s AND {where}
