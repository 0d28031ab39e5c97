"""Runs a keyed write at most once: claim the key, complete it inside the write's transaction, or release it.

The write's owner runs its work inside `run_once(key)` and calls `Once.complete` in its own transaction just
before commit."""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import AsyncIterator

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.background import PeriodicTask
from app.db.errors import storage_errors
from app.errors import AppError, IdempotencyKeyInUse, IdempotencyKeyReused
from app.idempotency.repository import COMPLETED, Claim, IdempotencyRepository
from app.idempotency.schemas import HEADER, KeyedRequest, StoredResult

logger = logging.getLogger(__name__)

PURGE_BATCH = 5000
# A key freed between our failed claim and our look-up is claimed again; more churn than this answers 409.
CLAIM_ATTEMPTS = 3


class Once:
    """One run of a keyed write. `replay` is what a completed earlier run stored (nothing more runs); otherwise the
    write goes ahead and calls `complete` inside its own transaction, just before commit."""

    def __init__(self, service: IdempotencyService, claim: Claim | None, replay: StoredResult | None) -> None:
        self._service = service
        self._claim = claim
        self.replay = replay

    @property
    def keyed(self) -> bool:
        """Whether completing this run writes anything (a key to complete)."""
        return self._claim is not None

    async def complete(self, conn: AsyncConnection, result: StoredResult) -> None:
        """The key now answers `result`. If a retry took the key over while this request stalled, the write must
        roll back: this raises. Without a key, nothing to do."""
        if self._claim is not None and not await self._service.repository.complete(conn, self._claim, result):
            raise IdempotencyKeyInUse(
                f"this request stalled past its {HEADER} lease (MEM0_IDEMPOTENCY_LEASE_S) and a retry took the key "
                "over; nothing was stored by this request; retry to get the result",
                headers=_retry_after(1),
            )


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class IdempotencyService:
    def __init__(
        self, pool: AsyncConnectionPool, repository: IdempotencyRepository, *, lease_s: float, ttl_s: float
    ) -> None:
        self.pool = pool
        self.repository = repository
        self.lease_s = lease_s
        self.ttl_s = ttl_s

    @contextlib.asynccontextmanager
    async def run_once(self, request: KeyedRequest | None) -> AsyncIterator[Once]:
        """Claims the key (or finds the stored result to replay: 422 for another request's key, 409 while it is in
        flight) and holds it while the block runs, renewing its lease every third of it, so only a dead holder's
        key lapses. If the block fails, the key is given back so a retry runs again. No key: a plain block."""
        if request is None:
            yield Once(self, None, None)
            return
        claimed = await self._claim(request)
        if isinstance(claimed, StoredResult):
            yield Once(self, None, claimed)
            return
        renewer = PeriodicTask(
            "idempotency-lease-renewer", self.lease_s / 3, lambda: self._renew(claimed), wait_first=True
        )
        async with renewer:
            try:
                yield Once(self, claimed, None)
            except BaseException:
                await self._release(claimed)
                raise

    async def _claim(self, request: KeyedRequest) -> Claim | StoredResult:
        scope, key, fingerprint = request.scope, request.key, request.fingerprint
        for _ in range(CLAIM_ATTEMPTS):
            claim = Claim(scope, key, fingerprint, uuid.uuid4())
            async with storage_errors(), self.pool.connection() as conn:
                if await self.repository.claim(conn, claim, lease_s=self.lease_s, ttl_s=self.ttl_s):
                    return claim
                record = await self.repository.lookup(conn, scope, key)
            if record is None:
                continue
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    f"this {HEADER} was already used for a different request (method, path or body differ); "
                    "use a new key for a new write"
                )
            if record.status == COMPLETED and record.result is not None:
                return record.result
            raise IdempotencyKeyInUse(
                f"a request with this {HEADER} is still in flight; retry after it finishes",
                headers=_retry_after(record.lease_left_s),
            )
        raise IdempotencyKeyInUse(f"this {HEADER} keeps changing hands; retry shortly", headers=_retry_after(1))

    async def _renew(self, claim: Claim) -> None:
        try:
            async with storage_errors(), self.pool.connection() as conn:
                await self.repository.renew(conn, claim, lease_s=self.lease_s)
        except AppError as error:
            logger.warning("could not renew an idempotency key's lease: %s", error.message)

    async def _release(self, claim: Claim) -> None:
        """Give a failed write's key back so a retry runs again; if this fails, the lease frees it later."""
        try:
            async with storage_errors(), self.pool.connection() as conn:
                await self.repository.release(conn, claim)
        except AppError as error:
            logger.warning(
                "could not release an idempotency key; it is retakeable once its lease runs out: %s",
                error.message,
                extra={"lease_s": self.lease_s},
            )

    async def purge_expired(self) -> int:
        """Delete every expired key (in batches); returns how many."""
        total = 0
        while True:
            async with storage_errors(), self.pool.connection() as conn:
                deleted = await self.repository.purge_expired(conn, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                if total:
                    logger.info("expired idempotency keys purged", extra={"deleted": total})
                return total
