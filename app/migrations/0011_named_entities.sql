-- mem0 2.x keeps the people, places, organisations and products its memories name in a second collection,
-- "<collection>_entities", in the memories' own layout: payload {data, entity_type, linked_memory_ids, user_id /
-- agent_id / run_id}, the vector being the embedding of `data`. The same table here, so upstream mem0 pointed at
-- this database reads (and boosts with) the entities this server found, and a table mem0 created is adopted.
CREATE TABLE IF NOT EXISTS "{collection}_entities" (
    id uuid PRIMARY KEY,
    vector vector({dims}),
    payload jsonb
);

-- mem0's own index on the entity collection, under the name it gives it.
CREATE INDEX IF NOT EXISTS "{collection}_entities_hnsw_idx"
    ON "{collection}_entities" USING hnsw (vector vector_cosine_ops);
-- Deleting or rewriting a memory finds the entities linked to it (`linked_memory_ids ?| ids`) through this index.
CREATE INDEX IF NOT EXISTS "{collection}_entities_links_idx"
    ON "{collection}_entities" USING gin ((payload -> 'linked_memory_ids'));
CREATE INDEX IF NOT EXISTS "{collection}_entities_user_id_idx" ON "{collection}_entities" ((payload ->> 'user_id'));
CREATE INDEX IF NOT EXISTS "{collection}_entities_agent_id_idx" ON "{collection}_entities" ((payload ->> 'agent_id'));
CREATE INDEX IF NOT EXISTS "{collection}_entities_run_id_idx" ON "{collection}_entities" ((payload ->> 'run_id'));
