"""Applies app/migrations/NNNN_name.sql in order, once, under an advisory lock; refuses edited files."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg
from psycopg import AsyncConnection

logger = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "app.migrations"
# A session-level advisory lock: Postgres releases it by itself when the holder's connection dies.
ADVISORY_LOCK_KEY = 0x6D656D30_66697864
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations on disk and the ones recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, *, collection: str, dims: int) -> str:
        # Both values are validated by Settings (identifier pattern, integer), and files quote the name.
        return self.text.replace("{collection}", collection).replace("{dims}", str(int(dims)))


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """The package's migrations (read as package data, so an installed copy has them), or `directory`'s."""
    source = resources.files(MIGRATIONS_PACKAGE) if directory is None else directory
    migrations: dict[int, Migration] = {}
    for path in sorted((entry for entry in source.iterdir() if entry.name.endswith(".sql")), key=lambda e: e.name):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} is used by two files")
        migrations[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [migrations[v] for v in sorted(migrations)]


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conninfo: str, *, collection: str, dims: int, directory: Traversable | None = None) -> list[int]:
    """Apply every pending migration; return the versions this call applied."""
    migrations = load_migrations(directory)
    applied_now: list[int] = []
    async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            await conn.execute(_CREATE_LEDGER)
            cursor = await conn.execute("SELECT version, checksum FROM schema_migrations")
            recorded = {int(version): str(checksum) for version, checksum in await cursor.fetchall()}
            for migration in migrations:
                if migration.version in recorded:
                    _refuse_if_edited(migration, recorded[migration.version])
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(migration.render(collection=collection, dims=dims).encode("utf-8"))
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as error:
                    raise MigrationError(f"{migration.file_name} failed and was rolled back: {error}") from error
                applied_now.append(migration.version)
                logger.info("migration applied", extra={"version": migration.version, "migration": migration.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def _refuse_if_edited(migration: Migration, recorded_checksum: str) -> None:
    if migration.checksum != recorded_checksum:
        raise MigrationError(
            f"migration {migration.file_name} was edited after it was applied "
            f"(recorded sha256 {recorded_checksum[:12]}, file now {migration.checksum[:12]}); "
            "restore the file and put the change in a new migration"
        )
