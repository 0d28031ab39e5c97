-- Named queries for api_keys (migration 0008).

-- name: insert_key
INSERT INTO api_keys (id, name, salt, secret_hash, admin, user_ids, agent_ids, run_ids)
VALUES (%(id)s, %(name)s, %(salt)s, %(secret_hash)s, %(admin)s, %(user_ids)s, %(agent_ids)s, %(run_ids)s)

-- The environment's admin key is re-hashed at every start: changing MEM0_ADMIN_API_KEY replaces the old one.
-- name: upsert_key
INSERT INTO api_keys (id, name, salt, secret_hash, admin)
VALUES (%(id)s, %(name)s, %(salt)s, %(secret_hash)s, true)
ON CONFLICT (id) DO UPDATE
SET salt = EXCLUDED.salt, secret_hash = EXCLUDED.secret_hash, admin = true, revoked_at = NULL

-- name: active_key
SELECT id, salt, secret_hash, admin, user_ids, agent_ids, run_ids
FROM api_keys WHERE id = %(id)s AND revoked_at IS NULL

-- name: count_active_keys
SELECT count(*) FROM api_keys WHERE revoked_at IS NULL

-- Held while a starting server looks for a key and, finding none, generates the admin key: replicas starting
-- together on an empty database generate one key, not one each.
-- name: lock_key_bootstrap
SELECT pg_advisory_xact_lock(hashtext('mem0_admin_key_bootstrap'))

-- name: list_keys
SELECT id, name, admin, user_ids, agent_ids, run_ids, created_at, last_used_at, revoked_at
FROM api_keys ORDER BY created_at, id

-- name: revoke_key
UPDATE api_keys SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL

-- name: touch_key
UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s

-- name: add_requests
INSERT INTO rate_windows (key_id, window_start, requests)
VALUES (%(key_id)s, %(window_start)s, %(requests)s)
ON CONFLICT (key_id, window_start) DO UPDATE SET requests = rate_windows.requests + EXCLUDED.requests
RETURNING requests

-- name: drop_rate_windows
DELETE FROM rate_windows WHERE window_start < %(before)s
