-- name: insert_events
INSERT INTO telemetry_events (id, kind, occurred_at, attributes)
SELECT id, kind, occurred_at, attributes
FROM unnest(%(ids)s::uuid[], %(kinds)s::text[], %(times)s::timestamptz[], %(attributes)s::jsonb[])
    AS batch (id, kind, occurred_at, attributes)
ON CONFLICT (id) DO NOTHING

-- name: delete_expired_events
DELETE FROM telemetry_events
WHERE id IN (
    SELECT id FROM telemetry_events
    WHERE occurred_at < now() - make_interval(secs => %(retention_s)s)
    LIMIT %(batch)s
)
