-- API keys: only a salted hash of each secret is kept. A key limited to identifier patterns (user_ids, agent_ids,
-- run_ids: globs where * matches any run of characters) touches only memories whose identifiers match them.
CREATE TABLE IF NOT EXISTS api_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    salt bytea NOT NULL,
    secret_hash bytea NOT NULL,
    admin boolean NOT NULL DEFAULT false,
    user_ids text[] NOT NULL DEFAULT '{}',
    agent_ids text[] NOT NULL DEFAULT '{}',
    run_ids text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

-- Jobs are addressed by an unguessable id; the sequential one stays internal (claim order).
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS public_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS jobs_public_id_idx ON jobs (public_id);
