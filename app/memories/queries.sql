-- Named queries for the memories table ("{collection}") and its history.
-- {where} is a filter clause the repository composes from identifiers and filters.

-- Rows and their ADD history in one statement: one round trip, atomic without an explicit transaction.
-- name: insert_memories_with_history
WITH new AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(vectors)b::vector[], %(payloads)b::jsonb[],
                         %(texts)b::text[], %(actor_ids)b::text[], %(roles)b::text[])
        AS new (id, vector, payload, text, actor_id, role)
), added AS (
    INSERT INTO "{collection}" (id, vector, payload, written_here) SELECT id, vector, payload, true FROM new
)
INSERT INTO memory_history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
SELECT gen_random_uuid(), id, NULL, text, 'ADD', now(), now(), false, actor_id, role FROM new

-- name: insert_history
INSERT INTO memory_history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
VALUES (gen_random_uuid(), %(memory_id)s, %(old_memory)s, %(new_memory)s, %(event)s, now(), now(), %(is_deleted)s, %(actor_id)s, %(role)s)

-- name: get_memory
SELECT id, payload FROM "{collection}" WHERE id = %(id)s AND {where}

-- name: lock_memory
SELECT id, payload FROM "{collection}" WHERE id = %(id)s AND {where} FOR UPDATE

-- name: list_memories
SELECT id, payload FROM "{collection}" WHERE {where}
ORDER BY payload ->> 'created_at' DESC, id
LIMIT %(limit)s

-- name: count_scope_capped
SELECT count(*) FROM (SELECT 1 FROM "{collection}" WHERE {where} LIMIT %(cap)s) AS scope

-- Search is mem0 2.2.1's hybrid retrieval (Memory._search_vector_store + utils/scoring.score_and_rank) in one
-- round trip. Candidates: the scope's nearest rows (semantic) and its best full-text hits on
-- payload.text_lemmatized (keyword: what mem0's pgvector keyword_search runs), each cut to the candidate limit,
-- both under the same WHERE, so the caller key's restriction holds on each. Entity boosts: the scope's entities
-- the query names (app/named_entities/queries.sql) lift their linked memories by mem0's weight, 0.5, shrunk for
-- entities linked to many memories; mem0 finds a query's entities with spaCy and matches them by embedding
-- (similarity >= 0.5), here the query names them, similarity 1. Then mem0's formula: semantic score
-- max(0, 1 - distance), gated by the threshold; keyword rank squashed by mem0's sigmoid; their sum plus the boost
-- divided by the largest it could be (1, plus 1 when the scope had any keyword hit, plus 0.5 when the query named
-- any entity), capped at 1; ties keep the semantic order (mem0 sorts stably).
-- The rank goes through text to float8 because mem0 reads the `real` as text: both then use the same double.
-- Only the top_k rows come back, so the other candidates' payloads never leave Postgres. (mem0 drops expired rows
-- after cutting the candidates; here the scope's WHERE leaves them out before, unless show_expired.)

-- The semantic candidates, by scope size (the repository picks one and puts it in search's semantic part).
-- Small scopes: an exact scan of the scope's rows. Distances are computed in the scan and a top-N sort keeps
-- the best rows; OFFSET 0 keeps the planner from pulling the subquery up and ordering by the HNSW index.
-- name: semantic_exact
SELECT id, payload, distance FROM (
    SELECT id, payload, vector <=> %(vector)b AS distance FROM "{collection}" WHERE {where} OFFSET 0
) AS scope
ORDER BY distance, id
LIMIT %(limit)s

-- Large scopes: the HNSW index over the vectors' binary quantization (migration 0017), scanned iteratively
-- (hnsw.iterative_scan is set on every connection, so filters that drop most rows still fill the list), in
-- Hamming order for 6 times the candidate limit, re-ranked by the exact cosine distance of the full vectors; the
-- ORDER BY repeats the index's expression, bit({dims}) included, or the planner cannot use it. Then the keyword
-- CTE's hits (hence first in search) are added at their exact distance before the cut. The index misses some of
-- the nearest rows, and a missed keyword hit costs most: its keyword score would have lifted it into the results.
-- With the union, every keyword hit among the exact scan's candidates is one (it is nearer than the index's
-- worst), and a candidate the index found is only pushed out by nearer rows, true candidates as well.
-- name: semantic_index
SELECT id, payload, distance FROM (
    (SELECT id, payload, vector <=> %(vector)b AS distance FROM (
         SELECT id, payload, vector FROM "{collection}" WHERE {where}
         ORDER BY binary_quantize(vector)::bit({dims}) <~> binary_quantize(%(vector)b)
         LIMIT 6 * %(limit)s
     ) AS hamming
     ORDER BY distance
     LIMIT %(limit)s)
    UNION
    SELECT id, payload, vector <=> %(vector)b FROM "{collection}" WHERE id IN (SELECT id FROM keyword)
) AS candidates
ORDER BY distance, id
LIMIT %(limit)s

-- name: search
WITH keyword AS (
    SELECT id, ts_rank_cd(to_tsvector('simple', payload ->> 'text_lemmatized'), tsq) AS rank
    FROM "{collection}", plainto_tsquery('simple', %(keywords)s) AS tsq
    WHERE to_tsvector('simple', payload ->> 'text_lemmatized') @@ tsq AND {where}
    ORDER BY rank DESC, id
    LIMIT %(limit)s
), semantic AS (
    {semantic}
), entity AS (
    SELECT linked.memory_id, max(%(entity_weight)s / (1.0::float8 + 0.001::float8 * power(
               greatest(jsonb_array_length(payload -> 'linked_memory_ids'), 1) - 1, 2))) AS boost
    FROM "{collection}_entities"
    CROSS JOIN LATERAL jsonb_array_elements_text(payload -> 'linked_memory_ids') AS linked (memory_id)
    WHERE to_tsvector('simple', %(query)s) @@ phraseto_tsquery('simple', payload ->> 'data') AND {entity_where}
    GROUP BY linked.memory_id
), hit AS (
    SELECT EXISTS (SELECT 1 FROM keyword WHERE keyword.rank > 0) AS any_hit,
           EXISTS (SELECT 1 FROM entity) AS any_entity
), scored AS (
    SELECT semantic.id, semantic.payload, semantic.distance, hit.any_hit, hit.any_entity,
           greatest(0.0::float8, 1.0::float8 - semantic.distance) AS semantic_score,
           CASE WHEN keyword.rank > 0
                THEN 1.0::float8 / (1.0::float8 + exp(-%(steepness)s * (keyword.rank::text::float8 - %(midpoint)s)))
                ELSE 0.0::float8 END AS bm25_score,
           coalesce(entity.boost, 0.0::float8) AS entity_boost
    FROM semantic CROSS JOIN hit
    LEFT JOIN keyword ON keyword.id = semantic.id
    LEFT JOIN entity ON entity.memory_id = semantic.id::text
), ranked AS (
    SELECT id, payload, semantic_score, bm25_score, entity_boost, any_hit, any_entity,
           row_number() OVER (
               ORDER BY least((semantic_score + bm25_score + entity_boost)
                              / (1.0::float8 + CASE WHEN any_hit THEN 1.0::float8 ELSE 0.0::float8 END
                                 + CASE WHEN any_entity THEN %(entity_weight)s ELSE 0.0::float8 END),
                              1.0::float8) DESC,
                        distance, id
           ) AS place
    FROM scored
    WHERE semantic_score >= %(threshold)s
)
SELECT id, payload, semantic_score, bm25_score, entity_boost, any_hit, any_entity FROM ranked
WHERE place <= %(top_k)s
ORDER BY place

-- name: update_payload
UPDATE "{collection}" SET payload = %(payload)s WHERE id = %(id)s

-- name: update_vector_and_payload
UPDATE "{collection}" SET vector = %(vector)b, payload = %(payload)s WHERE id = %(id)s

-- name: delete_memory
WITH gone AS (DELETE FROM "{collection}" WHERE id = %(id)s AND {where} RETURNING id, payload)
INSERT INTO memory_history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
SELECT gen_random_uuid(), id, payload ->> 'data', NULL, 'DELETE', now(), now(), true, payload ->> 'actor_id', payload ->> 'role'
FROM gone
RETURNING memory_id

-- name: delete_scope
WITH gone AS (DELETE FROM "{collection}" WHERE {where} RETURNING id, payload)
INSERT INTO memory_history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
SELECT gen_random_uuid(), id, payload ->> 'data', NULL, 'DELETE', now(), now(), true, payload ->> 'actor_id', payload ->> 'role'
FROM gone
RETURNING memory_id

-- A memory another client (mem0's own library) wrote: it keeps that memory's history elsewhere.
-- name: written_elsewhere
SELECT id, payload FROM "{collection}" WHERE id = %(memory_id)s AND NOT written_here AND {where}

-- name: history
SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role
FROM memory_history WHERE memory_id = %(memory_id)s
ORDER BY seq

-- A limited key sees the history of a memory it can still see; history rows carry no identifiers of their own.
-- name: history_in_scope
SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role
FROM memory_history
WHERE memory_id = %(memory_id)s AND EXISTS (SELECT 1 FROM "{collection}" WHERE id = %(memory_id)s AND {where})
ORDER BY seq

-- name: reset_all
TRUNCATE "{collection}", "{collection}_entities", memory_history

-- One memory per hash the scope already holds.
-- name: existing_hashes
SELECT DISTINCT ON (payload ->> 'hash') payload ->> 'hash', id
FROM "{collection}" WHERE {where} AND payload ->> 'hash' = ANY(%(hashes)s)
ORDER BY payload ->> 'hash', id

-- name: lock_scope
SELECT pg_advisory_xact_lock(hashtextextended(%(scope)s, 0))

-- What a cached search result is valid under (app/memories/search_cache.py): the versions of the scopes it read
-- (migration 0016: the sum of an identifier's shards; one never written has none yet, 0), the day the expiry filter
-- compares with (the same expression as app/filters.py Where.exclude_expired: a memory's visibility changes only
-- when this day does), and the server's start time, so a database restored in place or failed over, whose versions
-- may repeat older ones, never matches an entry cached before.
-- name: scope_versions
SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), pg_postmaster_start_time(),
       ARRAY(SELECT coalesce(sum(versions.version), 0)::bigint
             FROM unnest(%(kinds)s::text[], %(values)s::text[]) WITH ORDINALITY AS scope (kind, value, place)
             LEFT JOIN scope_versions AS versions USING (kind, value)
             GROUP BY scope.place
             ORDER BY scope.place)
