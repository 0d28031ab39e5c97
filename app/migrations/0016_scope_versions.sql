-- Each server process caches search results (app/memories/search_cache.py) and reuses one only while every scope
-- it read is unchanged. A scope's version lives here, per identifier (kind user_id / agent_id / run_id / app_id, and
-- its value), and triggers on the tables a search reads bump it in the writer's own transaction: so every writer
-- counts, this server's paths and mem0's own library writing the table directly alike, and a version read after a
-- commit always shows it. The ('*', '*') identifier is bumped by TRUNCATE (reset), which changes every scope and
-- fires no row triggers.
-- An identifier's version is the sum over its shards: a bump adds 1 to the shard of the writer's backend, so
-- writers sharing a value (every memory of one agent_id or app_id) mostly update different rows instead of all
-- queueing on one row lock until each commits (8 concurrent single-row writers of one agent_id, fsync on: about
-- 385 inserts/s with one row against 650-710 without the trigger; with 16 shards as many as without it). Rows are
-- never deleted: a sum that went back to a value it had would make an old cached result look current.
CREATE TABLE IF NOT EXISTS scope_versions (
    kind text NOT NULL,
    value text NOT NULL,
    shard smallint NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (kind, value, shard)
);

-- Statement-level, so a statement writing 5,000 rows bumps each of its scopes once. The identifier kinds are
-- app/params.py SCOPE_KEYS, read with ->> as the search's WHERE reads them (app/filters.py), so a value a search
-- compares is the value bumped; a payload that is no object yields NULLs here and is skipped, never an error in a
-- writer's transaction. Rows are bumped in (kind, value) order: two statements bumping the same scopes lock them in
-- the same order and cannot deadlock.
CREATE OR REPLACE FUNCTION bump_scope_versions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO scope_versions AS versions (kind, value, shard, version) VALUES ('*', '*', pg_backend_pid() % 16, 1)
        ON CONFLICT (kind, value, shard) DO UPDATE SET version = versions.version + 1;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        changed := ARRAY(SELECT payload FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        changed := ARRAY(SELECT payload FROM old_rows);
    ELSE
        -- An update can move a memory out of one scope into another: both change.
        changed := ARRAY(SELECT payload FROM old_rows UNION ALL SELECT payload FROM new_rows);
    END IF;
    INSERT INTO scope_versions AS versions (kind, value, shard, version)
    SELECT scope.kind, scope.value, pg_backend_pid() % 16, 1
    FROM unnest(changed) AS row (payload)
    CROSS JOIN LATERAL (VALUES ('user_id', row.payload ->> 'user_id'), ('agent_id', row.payload ->> 'agent_id'),
                               ('run_id', row.payload ->> 'run_id'), ('app_id', row.payload ->> 'app_id'))
        AS scope (kind, value)
    WHERE scope.value IS NOT NULL
    GROUP BY scope.kind, scope.value
    ORDER BY scope.kind, scope.value
    ON CONFLICT (kind, value, shard) DO UPDATE SET version = versions.version + 1;
    RETURN NULL;
END
$$;

-- A search reads the memories and, for entity boosts, the entity collection: a change to either changes results.
CREATE TRIGGER scope_versions_insert AFTER INSERT ON "{collection}"
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_update AFTER UPDATE ON "{collection}"
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_delete AFTER DELETE ON "{collection}"
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_truncate AFTER TRUNCATE ON "{collection}"
    FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();

CREATE TRIGGER scope_versions_insert AFTER INSERT ON "{collection}_entities"
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_update AFTER UPDATE ON "{collection}_entities"
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_delete AFTER DELETE ON "{collection}_entities"
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
CREATE TRIGGER scope_versions_truncate AFTER TRUNCATE ON "{collection}_entities"
    FOR EACH STATEMENT EXECUTE FUNCTION bump_scope_versions();
