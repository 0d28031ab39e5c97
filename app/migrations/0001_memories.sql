-- The memories table keeps mem0's pgvector layout (id, vector, payload) so upstream mem0 and this
-- server can share one database. IF NOT EXISTS adopts a table upstream mem0 created already.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS "{collection}" (
    id uuid PRIMARY KEY,
    vector vector({dims}),
    payload jsonb
);

-- Same name as mem0's own HNSW index, so a table it created keeps a single one.
CREATE INDEX IF NOT EXISTS "{collection}_hnsw_idx"
    ON "{collection}" USING hnsw (vector vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- Expression indexes on the identifiers every list, search and delete filters by.
CREATE INDEX IF NOT EXISTS "{collection}_user_id_idx" ON "{collection}" ((payload ->> 'user_id'));
CREATE INDEX IF NOT EXISTS "{collection}_agent_id_idx" ON "{collection}" ((payload ->> 'agent_id'));
CREATE INDEX IF NOT EXISTS "{collection}_run_id_idx" ON "{collection}" ((payload ->> 'run_id'));
