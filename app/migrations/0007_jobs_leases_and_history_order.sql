-- Jobs keep their extraction (a retry after a storage failure does not call the LLM again), a typed error
-- code instead of a message prefix, and how many leases ran out on them (a job that keeps killing its
-- worker is failed as poison). History gets an insertion sequence so one memory's events list in order.
ALTER TABLE jobs
    ADD COLUMN IF NOT EXISTS extraction jsonb,
    ADD COLUMN IF NOT EXISTS error_code text,
    ADD COLUMN IF NOT EXISTS lease_expiries integer NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS jobs_finished_idx ON jobs (updated_at) WHERE status IN ('SUCCEEDED', 'FAILED');

ALTER TABLE memory_history ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY;
DROP INDEX IF EXISTS memory_history_memory_id_idx;
CREATE INDEX IF NOT EXISTS memory_history_memory_id_seq_idx ON memory_history (memory_id, seq);
