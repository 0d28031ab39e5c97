-- Named queries for idempotency_keys. Every time comes from the database clock (now()), so server
-- processes with drifting clocks still agree on leases and expiry.

-- One statement decides who runs the write: a new key is inserted; an existing one is taken over only if its
-- holder's lease ran out (abandoned, e.g. the server was killed) or the key expired. Concurrent claimers
-- serialise on the row, and the loser sees the winner's row and gets no row back.
-- name: claim
INSERT INTO idempotency_keys AS k (scope, key, fingerprint, status, owner, locked_until, created_at, expires_at)
VALUES (
    %(scope)s, %(key)s, %(fingerprint)s, 'in_flight', %(owner)s,
    now() + make_interval(secs => %(lease_s)s), now(), now() + make_interval(secs => %(ttl_s)s)
)
ON CONFLICT (scope, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, status = 'in_flight', owner = EXCLUDED.owner,
    response_status = NULL, response_body = NULL, locked_until = EXCLUDED.locked_until,
    created_at = EXCLUDED.created_at, completed_at = NULL, expires_at = EXCLUDED.expires_at
WHERE (k.status = 'in_flight' AND k.locked_until <= now()) OR k.expires_at <= now()
RETURNING k.owner

-- name: lookup
SELECT status, fingerprint, response_status, response_body,
       greatest(extract(epoch FROM locked_until - now()), 0)::float8 AS lease_left_s
FROM idempotency_keys
WHERE scope = %(scope)s AND key = %(key)s

-- Runs inside the write's own transaction; no row updated means another request took the key over.
-- name: complete
UPDATE idempotency_keys
SET status = 'completed', response_status = %(status)s, response_body = %(body)s, completed_at = now()
WHERE scope = %(scope)s AND key = %(key)s AND owner = %(owner)s AND status = 'in_flight'

-- The holder renews its lease while its write runs, so only a dead holder's key lapses.
-- name: renew
UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => %(lease_s)s)
WHERE scope = %(scope)s AND key = %(key)s AND owner = %(owner)s AND status = 'in_flight'

-- A failed write gives its key back; a completed key (its transaction committed) is never released.
-- name: release
DELETE FROM idempotency_keys
WHERE scope = %(scope)s AND key = %(key)s AND owner = %(owner)s AND status = 'in_flight'

-- name: purge_expired
WITH doomed AS (
    SELECT scope, key FROM idempotency_keys
    WHERE expires_at <= now() AND (status = 'completed' OR locked_until <= now())
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_keys AS k USING doomed WHERE k.scope = doomed.scope AND k.key = doomed.key
