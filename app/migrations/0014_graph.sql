-- Graph memory: relations between the named entities of a scope, with the memories they came from. Postgres is
-- the source of truth; Neo4j is a projection of it (graph_projection says which scopes it still has to catch up).
-- `payload` holds the scope's identifiers ({user_id, agent_id, run_id}, as given), in the memories' layout, so
-- the same scope and access conditions apply to both.
CREATE TABLE IF NOT EXISTS graph_relations (
    id bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    source text NOT NULL,
    source_type text NOT NULL,
    relationship text NOT NULL,
    destination text NOT NULL,
    destination_type text NOT NULL,
    valid_from timestamptz NOT NULL DEFAULT now(),
    invalidated_at timestamptz  -- set when a later write ends the relation; ended relations stay as history
);
-- One valid relation per (scope, source, relationship, destination); a restated one gains a source memory.
CREATE UNIQUE INDEX IF NOT EXISTS graph_relations_valid_idx ON graph_relations (
    (payload ->> 'user_id'), (payload ->> 'agent_id'), (payload ->> 'run_id'), source, relationship, destination
) NULLS NOT DISTINCT WHERE invalidated_at IS NULL;
CREATE INDEX IF NOT EXISTS graph_relations_user_source_idx ON graph_relations ((payload ->> 'user_id'), source);
CREATE INDEX IF NOT EXISTS graph_relations_user_destination_idx
    ON graph_relations ((payload ->> 'user_id'), destination);
CREATE INDEX IF NOT EXISTS graph_relations_agent_id_idx ON graph_relations ((payload ->> 'agent_id'));
CREATE INDEX IF NOT EXISTS graph_relations_run_id_idx ON graph_relations ((payload ->> 'run_id'));

-- The memories a relation was extracted from: deleting the last of them removes the relation.
CREATE TABLE IF NOT EXISTS graph_relation_sources (
    relation_id bigint NOT NULL REFERENCES graph_relations (id) ON DELETE CASCADE,
    memory_id uuid NOT NULL,
    PRIMARY KEY (relation_id, memory_id)
);
CREATE INDEX IF NOT EXISTS graph_relation_sources_memory_idx ON graph_relation_sources (memory_id);

-- One row per scope the graph holds: `version` is bumped in the transaction that changes the scope's relations,
-- `projected_version` once Neo4j shows that version. The projector takes scopes behind, oldest change first.
CREATE TABLE IF NOT EXISTS graph_projection (
    scope_key text PRIMARY KEY,
    payload jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    projected_version bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    retry_at timestamptz,
    last_error text
);
CREATE INDEX IF NOT EXISTS graph_projection_behind_idx ON graph_projection (changed_at)
    WHERE version > projected_version;
