"""Ten processes migrating one empty database at once: each migration is applied once and every process succeeds."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from app.db.migrator import load_migrations
from tests.support.server_process import REPO_ROOT, clean_environment


def test_ten_processes_migrating_one_empty_database_at_once_all_succeed_once(fresh_db):
    env = clean_environment(DATABASE_URL=fresh_db)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "migrate"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(10)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]

    assert [p.returncode for p in processes] == [0] * 10, outputs
    assert sum("applied" in out for out in outputs) == 1
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version"
        ).fetchall()
    assert rows == [(m.version, 1) for m in load_migrations()]
