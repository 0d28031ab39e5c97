-- Idempotency keys for POST /memories: one row per (scope, key). A row is 'in_flight' while its holder runs
-- the write (owner = the holder's claim token, locked_until = its lease) and 'completed' once the write's
-- transaction committed, carrying the exact status and body bytes a replay answers with.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status text NOT NULL CONSTRAINT idempotency_keys_status_check CHECK (status IN ('in_flight', 'completed')),
    owner uuid NOT NULL,
    response_status integer,
    response_body bytea,
    locked_until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_response_check
        CHECK (status = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- The purge task deletes by expiry.
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
