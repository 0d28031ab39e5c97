"""The async connection pool; every pooled connection speaks pgvector's binary format and scans HNSW iteratively.

Connections autocommit: a lone statement costs one round trip (no BEGIN/COMMIT around it), so anything that
needs several statements to be atomic says so with `conn.transaction()`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from app import json_codec


def _configure_for(ef_search: int) -> Callable[[AsyncConnection], Awaitable[None]]:
    async def configure(conn: AsyncConnection) -> None:
        await register_vector_async(conn)
        # jsonb read and written with orjson: every search and list decodes its rows' payloads.
        set_json_loads(json_codec.loads, conn)
        set_json_dumps(json_codec.dumps, conn)
        # pgvector filters after the HNSW scan; iterative scans keep a rare user's rows reachable.
        await conn.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', false)")
        await conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef_search),))

    return configure


async def open_pool(
    conninfo: str, *, min_size: int, max_size: int, timeout_s: float, ef_search: int
) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        configure=_configure_for(ef_search),
        kwargs={"autocommit": True},
        open=False,
        name="mem0-fixed",
    )
    await pool.open(wait=True, timeout=timeout_s)
    return pool
