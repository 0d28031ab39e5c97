"""Migrations: applied once each, safely from many processes at once, and never over an edited file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources

import psycopg
import pytest

from app.db.migrator import MigrationError, migrate
from tests.support.server_process import REPO_ROOT, clean_environment, free_port

MIGRATIONS_SOURCE = resources.files("app.migrations")


async def test_an_edited_applied_migration_is_refused(fresh_db, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_SOURCE, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    await migrate(fresh_db, collection="memories", dims=8, directory=directory)
    first = sorted(directory.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")

    with pytest.raises(MigrationError, match="was edited after it was applied"):
        await migrate(fresh_db, collection="memories", dims=8, directory=directory)


async def test_a_new_migration_file_is_applied_on_the_next_run(fresh_db, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_SOURCE, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    await migrate(fresh_db, collection="memories", dims=8, directory=directory)
    (directory / "9999_extra.sql").write_text("CREATE TABLE extra_table (id int);")

    applied = await migrate(fresh_db, collection="memories", dims=8, directory=directory)

    assert applied == [9999]
    assert await migrate(fresh_db, collection="memories", dims=8, directory=directory) == []


async def test_a_failing_migration_leaves_nothing_behind(fresh_db, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")

    with pytest.raises(MigrationError, match=r"0001_broken\.sql failed and was rolled back"):
        await migrate(fresh_db, collection="memories", dims=8, directory=directory)

    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_migrate_against_an_unreachable_database_says_so_in_one_line():
    env = clean_environment(DATABASE_URL=f"postgresql://postgres:x@127.0.0.1:{free_port()}/postgres")

    result = subprocess.run(
        [sys.executable, "-m", "app", "migrate"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stderr.startswith("migrations: connection failed") and "Traceback" not in result.stderr
