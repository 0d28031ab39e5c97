"""MEM0_RATE_LIMIT per key across every replica on one database, without a round trip per request.

Each key has fixed windows of the rate's length (a minute for `1200/minute`), counted in Postgres (rate_windows).
A replica admits from what it last read of the window's total plus what it admitted since; far from the limit it
adds its count in the background (every SYNC_S), so a request costs no round trip. Once the local count reaches a
tenth of what the window has left, a request first adds itself and reads the total back, and is refused if that
passes the limit. Replicas can therefore admit at most a tenth of the remainder each beyond the limit, and none
once the remainder is under ten; a refused request counts as sent. If Postgres cannot be reached the request is
admitted (the limit is for fairness, the database's own outage answers the request).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem
from psycopg_pool import AsyncConnectionPool

from app.auth.repository import KeyRepository
from app.db.errors import storage_errors
from app.errors import StorageUnavailable

logger = logging.getLogger(__name__)

SYNC_S = 0.5
LOCAL_SHARE = 10  # a replica admits up to 1/LOCAL_SHARE of a window's remainder before it asks Postgres


@dataclass
class KeyWindow:
    start: int
    total: int = 0  # the window's count in Postgres when last read, this replica's part included
    unsent: int = 0  # admitted here and not yet added to Postgres
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedRateLimiter:
    def __init__(self, rate: RateLimitItem, pool: AsyncConnectionPool, repository: KeyRepository) -> None:
        self.limit = rate.amount
        self.length_s = rate.get_expiry()
        self.pool = pool
        self.repository = repository
        self._windows: dict[str, KeyWindow] = {}

    async def admit(self, key_id: str) -> float | None:
        """None when the request may go ahead, else the seconds until the key's window ends."""
        now = time.time()
        start = int(now // self.length_s) * self.length_s
        window = self._windows.get(key_id)
        if window is None or window.start != start:
            window = self._windows[key_id] = KeyWindow(start)
        if window.unsent < (self.limit - window.total) // LOCAL_SHARE:
            window.unsent += 1
            return None
        window.unsent += 1
        async with window.lock:
            await self._send(key_id, window)
        if window.total <= self.limit:
            return None
        return start + self.length_s - now

    async def sync(self) -> None:
        """Adds every window's unsent count to Postgres (and reads the totals back); forgets ended windows."""
        start = int(time.time() // self.length_s) * self.length_s
        for key_id, window in list(self._windows.items()):
            if window.start != start:
                del self._windows[key_id]
            elif window.unsent and not window.lock.locked():
                async with window.lock:
                    await self._send(key_id, window)

    async def drop_ended_windows(self) -> None:
        before = int(time.time() // self.length_s) * self.length_s
        async with storage_errors(), self.pool.connection() as conn:
            await self.repository.drop_rate_windows(conn, before)

    async def _send(self, key_id: str, window: KeyWindow) -> None:
        sending, window.unsent = window.unsent, 0
        try:
            async with storage_errors(), self.pool.connection() as conn:
                total = await self.repository.add_requests(conn, key_id, window.start, sending)
        except StorageUnavailable:
            window.unsent += sending
            logger.warning("rate limit counts not shared: the database is unavailable", extra={"key_id": key_id})
            return
        # Another replica may have added since; a total never goes down within a window.
        window.total = max(window.total, total)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
