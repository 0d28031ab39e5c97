-- name: insert_events
INSERT INTO telemetry_events (id, kind, occurred_at, attributes)
SELECT id, kind, occurred_at, attributes
FROM unnest(%(ids)s::uuid[], %(kinds)s::text[], %(times)s::timestamptz[], %(attributes)s::jsonb[])
    AS batch (id, kind, occurred_at, attributes)
ON CONFLICT (id) DO NOTHING
