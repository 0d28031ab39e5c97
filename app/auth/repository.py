"""SQL access for api_keys; every statement comes from queries.sql."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from app.db.queries import Queries


@dataclass(frozen=True)
class StoredKey:
    id: str
    salt: bytes
    secret_hash: bytes
    admin: bool
    patterns: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class KeyListing:
    id: str
    name: str
    admin: bool
    patterns: dict[str, tuple[str, ...]]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _patterns(user_ids: list[str], agent_ids: list[str], run_ids: list[str]) -> dict[str, tuple[str, ...]]:
    named = {"user_id": user_ids, "agent_id": agent_ids, "run_id": run_ids}
    return {kind: tuple(globs) for kind, globs in named.items() if globs}


class KeyRepository:
    def __init__(self) -> None:
        self.q = Queries.load("app.auth")

    async def insert(self, conn: AsyncConnection[Any], key: StoredKey, name: str) -> None:
        await conn.execute(
            self.q["insert_key"],
            {
                "id": key.id,
                "name": name,
                "salt": key.salt,
                "secret_hash": key.secret_hash,
                "admin": key.admin,
                **{f"{kind}s": list(key.patterns.get(kind, ())) for kind in ("user_id", "agent_id", "run_id")},
            },
        )

    async def upsert_admin(self, conn: AsyncConnection[Any], key: StoredKey, name: str) -> None:
        params = {"id": key.id, "name": name, "salt": key.salt, "secret_hash": key.secret_hash}
        await conn.execute(self.q["upsert_key"], params)

    async def active(self, conn: AsyncConnection[Any], key_id: str) -> StoredKey | None:
        cursor = await conn.execute(self.q["active_key"], {"id": key_id})
        row = await cursor.fetchone()
        if row is None:
            return None
        return StoredKey(row[0], bytes(row[1]), bytes(row[2]), bool(row[3]), _patterns(row[4], row[5], row[6]))

    async def lock_bootstrap(self, conn: AsyncConnection[Any]) -> None:
        """Until the transaction ends (Postgres releases the lock when it does)."""
        await conn.execute(self.q["lock_key_bootstrap"])

    async def count_active(self, conn: AsyncConnection[Any]) -> int:
        cursor = await conn.execute(self.q["count_active_keys"])
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def listing(self, conn: AsyncConnection[Any]) -> list[KeyListing]:
        cursor = await conn.execute(self.q["list_keys"])
        return [
            KeyListing(row[0], row[1], bool(row[2]), _patterns(row[3], row[4], row[5]), row[6], row[7], row[8])
            for row in await cursor.fetchall()
        ]

    async def revoke(self, conn: AsyncConnection[Any], key_id: str) -> bool:
        cursor = await conn.execute(self.q["revoke_key"], {"id": key_id})
        return cursor.rowcount == 1

    async def touch(self, conn: AsyncConnection[Any], key_id: str) -> None:
        await conn.execute(self.q["touch_key"], {"id": key_id})

    async def add_requests(self, conn: AsyncConnection[Any], key_id: str, window_start: int, requests: int) -> int:
        """Adds `requests` to the key's window; the window's total over every replica."""
        params = {"key_id": key_id, "window_start": window_start, "requests": requests}
        cursor = await conn.execute(self.q["add_requests"], params)
        row = await cursor.fetchone()
        return int(row[0]) if row else requests

    async def drop_rate_windows(self, conn: AsyncConnection[Any], before: int) -> None:
        await conn.execute(self.q["drop_rate_windows"], {"before": before})
