-- Durable queue of inferred writes: the raw request is stored first, workers claim rows with SKIP LOCKED.
CREATE TABLE IF NOT EXISTS jobs (
    id bigserial PRIMARY KEY,
    status text NOT NULL DEFAULT 'PENDING'
        CONSTRAINT jobs_status_check CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    request jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    run_after timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_error text,
    model text,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Claim scans only runnable rows: pending ones by run_after, running ones by lease expiry.
CREATE INDEX IF NOT EXISTS jobs_pending_idx ON jobs (run_after, id) WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS jobs_running_idx ON jobs (locked_until, id) WHERE status = 'RUNNING';
