"""Where the database is: the configured Postgres, or the embedded one started under MEM0_DATA_DIR."""

from __future__ import annotations

import asyncio

from app.config import Settings
from app.db.embedded import start_embedded_postgres
from app.errors import StartupError


async def resolve_conninfo(settings: Settings) -> str:
    if not settings.uses_embedded_postgres:
        return settings.conninfo()
    try:
        uri = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
    except Exception as error:  # any failure of the bundled server is fatal and must say why
        raise StartupError(f"embedded postgres failed to start under {settings.data_dir}: {error}") from error
    return settings.conninfo(uri)
