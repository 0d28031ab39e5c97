-- Named queries for the jobs table (migrations/0004_jobs.sql).

-- name: insert_job
INSERT INTO jobs (request, max_attempts) VALUES (%(request)s, %(max_attempts)s)
RETURNING id, status, attempts, created_at

-- name: notify_job
SELECT pg_notify('mem0_jobs', %(id)s::text)

-- name: count_pending
SELECT count(*) FROM jobs WHERE status = 'PENDING'

-- name: claim_job
-- procrastinate's atomic claim: pick one runnable row (pending and due, or running with an expired lease),
-- skip rows other workers/replicas hold, and take the lease in the same statement.
UPDATE jobs SET status = 'RUNNING', attempts = jobs.attempts + 1,
       locked_until = now() + make_interval(secs => %(lease_s)s), updated_at = now()
FROM (
    SELECT id FROM jobs
    WHERE (status = 'PENDING' AND run_after <= now()) OR (status = 'RUNNING' AND locked_until < now())
    ORDER BY id
    FOR UPDATE SKIP LOCKED
    LIMIT 1
) AS due
WHERE jobs.id = due.id
RETURNING jobs.id, jobs.request, jobs.attempts, jobs.max_attempts

-- name: lock_running_job
-- Taken in the completion transaction: only the worker whose lease still holds may complete the job.
SELECT id FROM jobs WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s FOR UPDATE

-- name: complete_job
UPDATE jobs SET status = 'SUCCEEDED', result = %(result)s, model = %(model)s, last_error = NULL,
       locked_until = NULL, updated_at = now()
WHERE id = %(id)s

-- name: retry_later
UPDATE jobs SET status = 'PENDING', last_error = %(error)s, locked_until = NULL,
       run_after = now() + make_interval(secs => %(delay_s)s), updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: fail_job
UPDATE jobs SET status = 'FAILED', last_error = %(error)s, locked_until = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: get_job
SELECT id, status, request, attempts, max_attempts, last_error, model, result, created_at, updated_at
FROM jobs WHERE id = %(id)s

-- name: retry_failed_job
UPDATE jobs SET status = 'PENDING', attempts = 0, run_after = now(), last_error = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'FAILED'
RETURNING id

-- name: queue_stats
SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING')),
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status IN ('PENDING', 'RUNNING'))), 0)
FROM jobs

-- name: release_job
-- A graceful shutdown hands an unfinished job back at once instead of leaving it leased; the attempt it
-- started does not count, since it was interrupted, not failed.
UPDATE jobs SET status = 'PENDING', attempts = attempts - 1, locked_until = NULL, run_after = now(), updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s
