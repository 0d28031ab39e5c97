-- Named queries of the Neo4j projection (graph_projection, migration 0014; rows are added and bumped by
-- app.graph.repository's mark_changed). A scope is projected inside one Postgres transaction that holds a
-- transaction-level advisory lock on it: replicas never project one scope at once (a slower one could otherwise
-- write an older state over a newer one), the lock goes with the transaction whatever happens to the projector,
-- and, unlike a row lock, it never makes a write's mark_changed wait for Neo4j. The user_id filters are for
-- `graph rebuild --user-id`; the server passes null.

-- The oldest change first among the scopes behind and due, skipping those another projector holds. The candidates
-- are materialized in order first so the lock is tried lazily, row by row, and only the returned scope is locked.
-- name: claim_scope
WITH due AS MATERIALIZED (
    SELECT scope_key, payload
    FROM graph_projection
    WHERE version > projected_version AND (retry_at IS NULL OR retry_at <= now())
      AND (%(user_id)s::text IS NULL OR payload ->> 'user_id' = %(user_id)s)
    ORDER BY changed_at
    LIMIT 100
)
SELECT scope_key, payload
FROM due
WHERE pg_try_advisory_xact_lock(hashtext('mem0_graph_projection'), hashtext(scope_key))
LIMIT 1

-- The claimed scope read again once locked: the claim's snapshot may predate another projector completing it just
-- before the lock was free. No row: it is no longer behind.
-- name: locked_version
SELECT version FROM graph_projection WHERE scope_key = %(scope_key)s AND version > projected_version

-- Neo4j shows the version read once the scope was locked. A change that arrived meanwhile keeps the scope behind; its lag then
-- counts from the claim (now() is the transaction's start), as nothing after it can have been projected.
-- name: complete_scope
UPDATE graph_projection
SET projected_version = greatest(projected_version, %(version)s),
    changed_at = CASE WHEN version > %(version)s THEN greatest(changed_at, now()) ELSE changed_at END,
    attempts = 0, retry_at = NULL, last_error = NULL
WHERE scope_key = %(scope_key)s

-- Capped exponential backoff: base * 2^attempts (the count before this failure), at most the cap.
-- name: fail_scope
UPDATE graph_projection
SET attempts = attempts + 1,
    retry_at = now() + make_interval(secs => least(%(backoff_s)s * power(2, least(attempts, 30)), %(backoff_max_s)s)),
    last_error = %(error)s
WHERE scope_key = %(scope_key)s

-- Neo4j answers again (or a rebuild starts): the scopes waiting out a backoff are due now.
-- name: release_waiting
UPDATE graph_projection SET retry_at = NULL
WHERE version > projected_version AND retry_at > now()
  AND (%(user_id)s::text IS NULL OR payload ->> 'user_id' = %(user_id)s)

-- Scopes behind, the age of the oldest change Neo4j has not seen yet (the projection's lag), and the scopes behind
-- whose latest projection failed.
-- name: backlog
SELECT count(*), coalesce(extract(epoch FROM now() - min(changed_at)), 0)::float8, count(*) FILTER (WHERE attempts > 0)
FROM graph_projection
WHERE version > projected_version

-- name: count_behind
SELECT count(*)
FROM graph_projection
WHERE version > projected_version AND (%(user_id)s::text IS NULL OR payload ->> 'user_id' = %(user_id)s)

-- A rebuild: every matching scope is behind again (as mark_changed does for one), due at once.
-- name: mark_behind
WITH marked AS (
    UPDATE graph_projection
    SET version = version + 1,
        changed_at = CASE WHEN version > projected_version THEN changed_at ELSE now() END,
        attempts = 0, retry_at = NULL
    WHERE %(user_id)s::text IS NULL OR payload ->> 'user_id' = %(user_id)s
    RETURNING 1
)
SELECT count(*) FROM marked
