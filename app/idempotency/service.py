"""Runs a keyed write at most once: claim the key, complete it inside the write's transaction, or release it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.db.errors import storage_errors
from app.errors import AppError, IdempotencyKeyInUse, IdempotencyKeyReused
from app.idempotency.repository import COMPLETED, Claim, IdempotencyRepository
from app.idempotency.schemas import HEADER, StoredResponse

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Called by the write inside its own transaction, just before commit, with the write's result.
BeforeCommit = Callable[[AsyncConnection, T], Awaitable[None]]
PURGE_BATCH = 5000
# A key freed between our failed claim and our look-up is claimed again; more churn than this answers 409.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    response: StoredResponse
    replayed: bool


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

    async def run(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        write: Callable[[BeforeCommit[T]], Awaitable[object]],
        render: Callable[[T], StoredResponse],
    ) -> Outcome:
        """Replay a completed key, or run `write` once; `write` must call the hook it is given in its transaction."""
        claimed = await self.claim(scope, key, fingerprint)
        if isinstance(claimed, StoredResponse):
            return Outcome(claimed, replayed=True)
        completed: list[StoredResponse] = []

        async def complete(conn: AsyncConnection, result: T) -> None:
            response = render(result)
            if not await self.repository.complete(conn, claimed, response):
                raise IdempotencyKeyInUse(
                    f"this request stalled past its {HEADER} lease (MEM0_IDEMPOTENCY_LEASE_S) and a retry took the key "
                    "over; nothing was stored by this request; retry to get the result",
                    headers=_retry_after(1),
                )
            completed.append(response)

        try:
            async with self._leased(claimed):
                await write(complete)
        except BaseException:
            await self.release(claimed)
            raise
        if not completed:
            await self.release(claimed)
            raise RuntimeError("the write returned without completing its idempotency key")
        return Outcome(completed[-1], replayed=False)

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim | StoredResponse:
        """Hold the key (a Claim), or the stored response to replay; 422 for another request's key, 409 in flight."""
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
            if record.status == COMPLETED and record.response is not None:
                return record.response
            raise IdempotencyKeyInUse(
                f"a request with this {HEADER} is still in flight; retry after it finishes",
                headers=_retry_after(record.lease_left_s),
            )
        raise IdempotencyKeyInUse(f"this {HEADER} keeps changing hands; retry shortly", headers=_retry_after(1))

    @contextlib.asynccontextmanager
    async def _leased(self, claim: Claim) -> AsyncIterator[None]:
        """Renew the claim's lease every third of it while the body runs."""
        renewer = asyncio.create_task(self._keep_renewing(claim), name="idempotency-lease-renewer")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _keep_renewing(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                async with storage_errors(), self.pool.connection() as conn:
                    if not await self.repository.renew(conn, claim, lease_s=self.lease_s):
                        return  # completed, or taken over: complete() notices the latter
            except AppError as error:
                logger.warning("could not renew an idempotency key's lease: %s", error.message)

    async def release(self, claim: Claim) -> None:
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
