"""SQL access for idempotency keys; every statement comes from queries.sql."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg import AsyncConnection

from app.db.queries import Queries
from app.idempotency.schemas import StoredResult

COMPLETED = "completed"


@dataclass(frozen=True)
class Claim:
    """A key this request holds: `owner` is the token that proves it when completing or releasing."""

    scope: str
    key: str
    fingerprint: str
    owner: UUID

    def params(self) -> dict[str, object]:
        return {"scope": self.scope, "key": self.key, "owner": self.owner}


@dataclass(frozen=True)
class KeyRecord:
    status: str
    fingerprint: str
    result: StoredResult | None
    lease_left_s: float


class IdempotencyRepository:
    def __init__(self) -> None:
        self.q = Queries.load("app.idempotency")

    async def claim(self, conn: AsyncConnection, claim: Claim, *, lease_s: float, ttl_s: float) -> bool:
        params = {**claim.params(), "fingerprint": claim.fingerprint, "lease_s": lease_s, "ttl_s": ttl_s}
        cursor = await conn.execute(self.q["claim"], params)
        return await cursor.fetchone() is not None

    async def lookup(self, conn: AsyncConnection, scope: str, key: str) -> KeyRecord | None:
        cursor = await conn.execute(self.q["lookup"], {"scope": scope, "key": key})
        row = await cursor.fetchone()
        if row is None:
            return None
        status, fingerprint, response_status, response_body, lease_left_s = row
        result = None if status != COMPLETED else StoredResult(int(response_status), bytes(response_body))
        return KeyRecord(str(status), str(fingerprint), result, float(lease_left_s))

    async def complete(self, conn: AsyncConnection, claim: Claim, result: StoredResult) -> bool:
        params = {**claim.params(), "status": result.status, "body": result.body}
        cursor = await conn.execute(self.q["complete"], params)
        return cursor.rowcount == 1

    async def renew(self, conn: AsyncConnection, claim: Claim, *, lease_s: float) -> bool:
        cursor = await conn.execute(self.q["renew"], {**claim.params(), "lease_s": lease_s})
        return cursor.rowcount == 1

    async def release(self, conn: AsyncConnection, claim: Claim) -> int:
        cursor = await conn.execute(self.q["release"], claim.params())
        return cursor.rowcount

    async def purge_expired(self, conn: AsyncConnection, batch: int) -> int:
        cursor = await conn.execute(self.q["purge_expired"], {"batch": batch})
        return cursor.rowcount
