-- The server's own telemetry: no vector column, so it can never have a dimension problem.
-- The primary key is the event's own id, so a batch replayed after an ambiguous failure lands once.
CREATE TABLE IF NOT EXISTS telemetry_events (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    occurred_at timestamptz NOT NULL,
    attributes jsonb NOT NULL
);

CREATE INDEX IF NOT EXISTS telemetry_events_kind_time_idx ON telemetry_events (kind, occurred_at);
