-- History lives next to the memories (mem0 keeps it in SQLite); columns follow mem0's history table.
CREATE TABLE IF NOT EXISTS memory_history (
    id uuid PRIMARY KEY,
    memory_id uuid NOT NULL,
    old_memory text,
    new_memory text,
    event text NOT NULL CONSTRAINT memory_history_event_check CHECK (event IN ('ADD', 'UPDATE', 'DELETE')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz,
    is_deleted boolean NOT NULL DEFAULT false,
    actor_id text,
    role text
);

CREATE INDEX IF NOT EXISTS memory_history_memory_id_idx ON memory_history (memory_id, created_at);
