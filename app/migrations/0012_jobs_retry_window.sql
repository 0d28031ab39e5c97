-- A job that fails because Ollama or Postgres is away is retried while its retry window lasts
-- (MEM0_INFER_RETRY_WINDOW_S, opened at its first such failure), not for a count of attempts spent in seconds.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS retry_until timestamptz;
