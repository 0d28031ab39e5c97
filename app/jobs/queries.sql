-- Named queries for the jobs table (migrations 0004 and 0007). Every statement that changes a claimed job
-- names its attempt: a worker whose lease ran out and was re-claimed changes nothing.

-- name: insert_job
INSERT INTO jobs (request, max_attempts) VALUES (%(request)s, %(max_attempts)s)
RETURNING id, public_id

-- name: notify_job
SELECT pg_notify('mem0_jobs', %(id)s::text)

-- Admissions take turns (across replicas, for the length of one short transaction), so two of them cannot both
-- count the queue one short of full and both insert.
-- name: lock_admission
SELECT pg_advisory_xact_lock(hashtext('mem0_jobs_admission'))

-- The waiting jobs, and those of one API key.
-- name: count_pending
SELECT count(*), count(*) FILTER (WHERE request ->> 'key' = %(key)s) FROM jobs WHERE status = 'PENDING'

-- name: claim_job
-- procrastinate's atomic claim: pick one runnable row (pending and due, or running with an expired lease: its
-- worker died or lost the database), skip rows other workers/replicas hold, and take the lease in the same
-- statement.
UPDATE jobs SET status = 'RUNNING', attempts = jobs.attempts + 1,
       lease_expiries = jobs.lease_expiries + (due.status = 'RUNNING')::int,
       locked_until = now() + make_interval(secs => %(lease_s)s), updated_at = now()
FROM (
    SELECT id, status FROM jobs
    WHERE (status = 'PENDING' AND run_after <= now()) OR (status = 'RUNNING' AND locked_until < now())
    ORDER BY id
    FOR UPDATE SKIP LOCKED
    LIMIT 1
) AS due
WHERE jobs.id = due.id
RETURNING jobs.id, jobs.public_id, jobs.request, jobs.attempts, jobs.max_attempts, jobs.extraction,
          jobs.lease_expiries

-- name: renew_lease
UPDATE jobs SET locked_until = now() + make_interval(secs => %(lease_s)s)
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: save_extraction
UPDATE jobs SET extraction = %(extraction)s, updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: lock_running_job
-- Taken in the completion transaction: only the worker whose lease still holds may complete the job.
SELECT id FROM jobs WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s FOR UPDATE

-- name: complete_job
UPDATE jobs SET status = 'SUCCEEDED', result = %(result)s, model = %(model)s, last_error = NULL,
       error_code = NULL, locked_until = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: retry_later
UPDATE jobs SET status = 'PENDING', last_error = %(error)s, error_code = %(code)s, locked_until = NULL,
       run_after = now() + make_interval(secs => %(delay_s)s), updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- A transient failure (Ollama or Postgres away): back to PENDING after the delay while the job's retry window lasts
-- (opened at its first such failure; SET reads the row's old values), FAILED once it has passed. The new status.
-- name: retry_within_window
UPDATE jobs SET retry_until = coalesce(retry_until, now() + make_interval(secs => %(window_s)s)),
       status = CASE WHEN coalesce(retry_until, now() + make_interval(secs => %(window_s)s)) > now()
                     THEN 'PENDING' ELSE 'FAILED' END,
       last_error = %(error)s, error_code = %(code)s, locked_until = NULL,
       run_after = now() + make_interval(secs => %(delay_s)s), updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s
RETURNING status

-- Ollama answers again: the jobs waiting out a backoff after an Ollama failure run now.
-- name: release_waiting_on_ollama
UPDATE jobs SET run_after = now(), updated_at = now()
WHERE status = 'PENDING' AND run_after > now() AND error_code = ANY(%(codes)s)

-- name: fail_job
UPDATE jobs SET status = 'FAILED', last_error = %(error)s, error_code = %(code)s, locked_until = NULL,
       updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- name: release_job
-- A graceful shutdown hands an unfinished job back at once instead of leaving it leased; the attempt it
-- started does not count, since it was interrupted, not failed.
UPDATE jobs SET status = 'PENDING', attempts = attempts - 1, locked_until = NULL, run_after = now(), updated_at = now()
WHERE id = %(id)s AND status = 'RUNNING' AND attempts = %(attempts)s

-- Jobs are found by their public id, and only within what the caller's key may touch ({where}).
-- name: get_job
SELECT public_id, status, request, attempts, max_attempts, last_error, error_code, model, result, created_at,
       updated_at
FROM jobs WHERE public_id = %(public_id)s AND {where}

-- name: retry_failed_job
UPDATE jobs SET status = 'PENDING', attempts = 0, lease_expiries = 0, run_after = now(), last_error = NULL,
       error_code = NULL, retry_until = NULL, updated_at = now()
WHERE public_id = %(public_id)s AND status = 'FAILED' AND {where}
RETURNING id

-- name: queue_stats
SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING')),
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status IN ('PENDING', 'RUNNING'))), 0)
FROM jobs

-- name: delete_scope_jobs
DELETE FROM jobs
WHERE (%(user_id)s::text IS NULL OR request #>> '{body,user_id}' = %(user_id)s)
  AND (%(agent_id)s::text IS NULL OR request #>> '{body,agent_id}' = %(agent_id)s)
  AND (%(run_id)s::text IS NULL OR request #>> '{body,run_id}' = %(run_id)s)

-- name: purge_finished_jobs
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE status IN ('SUCCEEDED', 'FAILED') AND updated_at < now() - make_interval(secs => %(retention_s)s)
    LIMIT %(batch)s
)
