-- name: insert_events
INSERT INTO telemetry_events (id, kind, occurred_at, attributes)
SELECT (event ->> 'id')::uuid, event ->> 'kind', (event ->> 'occurred_at')::timestamptz, event -> 'attributes'
FROM jsonb_array_elements(%(events)s::jsonb) AS event
ON CONFLICT (id) DO NOTHING

-- name: delete_expired_events
DELETE FROM telemetry_events
WHERE id IN (
    SELECT id FROM telemetry_events
    WHERE occurred_at < now() - make_interval(secs => %(retention_s)s)
    LIMIT %(batch)s
)
