"""`mem0-fixed import` from an upstream mem0 deployment: a vector(1536) pgvector table in mem0's layout, its
mem0migrations side table and its SQLite history.db (mem0's schema), imported into this server's 768-dim tables
by the real CLI; killed half-way and stopped by a failing embedder it continues without duplicates, a last run
imports nothing, the invariants hold and a real server finds an imported memory by its text."""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import DIMS, repo_root, server_env
from tests.support.cli import run_cli
from tests.support.inprocess import InProcessServer
from tests.support.postgres import count_rows, create_database
from tests.support.server_process import clean_environment

MEMORIES = 147
UPSTREAM_DIMS = 1536
PARROT = 42  # the memory the server is asked to find
NO_HISTORY = {0, 20, 40}  # memories mem0 recorded no history for: the import gives them an ADD
UPDATED = {7, 14, 21}  # memories with an UPDATE after their ADD


def _text(index: int) -> str:
    return "My grandmother's parrot is called Pistachio" if index == PARROT else f"note {index}: likes color {index}"


def _history_db(path: Path, ids: list[str], started: datetime) -> int:
    """mem0's history table (mem0/memory/storage.py), one ADD per memory, UPDATEs, a deleted memory's rows."""
    rows = []
    for index, memory_id in enumerate(ids):
        at = started + timedelta(seconds=index)
        if index not in NO_HISTORY:
            rows.append(
                (str(uuid.uuid4()), memory_id, None, _text(index), "ADD", at.isoformat(), None, 0, None, "user")
            )
        if index in UPDATED:
            later = (at + timedelta(hours=1)).isoformat()
            rows.append((str(uuid.uuid4()), memory_id, "old", _text(index), "UPDATE", later, later, 0, None, None))
    gone = str(uuid.uuid4())  # a memory deleted upstream: its history is not imported
    rows.append((str(uuid.uuid4()), gone, None, "gone", "ADD", started.isoformat(), None, 0, None, "user"))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, "
            "event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, actor_id TEXT, role TEXT)"
        )
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return len(rows) - 1


@pytest.fixture
def upstream(pg_admin: str, tmp_path: Path) -> tuple[str, Path, list[str]]:
    """An upstream mem0 database (mem0_legacy at 1536 dims, mem0migrations) and its history.db."""
    source = create_database(pg_admin, "upstream")
    ids = [str(uuid.uuid4()) for _ in range(MEMORIES)]
    started = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    rng = random.Random(17)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for table in ("mem0_legacy", "mem0migrations"):
            conn.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, vector vector({UPSTREAM_DIMS}), payload jsonb)")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO mem0_legacy VALUES (%s, %s::vector, %s)",
                [
                    (
                        memory_id,
                        str([rng.random() for _ in range(UPSTREAM_DIMS)]),
                        Jsonb(
                            {
                                "data": _text(index),
                                "hash": hashlib.md5(_text(index).encode()).hexdigest(),
                                "user_id": "ada" if index % 2 else "bob",
                                "created_at": (started + timedelta(seconds=index)).isoformat(),
                                "updated_at": None,
                                "role": "user",
                                "upstream_only": index,
                            }
                        ),
                    )
                    for index, memory_id in enumerate(ids)
                ],
            )
        conn.execute(
            "INSERT INTO mem0migrations VALUES (%s, %s::vector, %s)",
            (str(uuid.uuid4()), str([0.0] * UPSTREAM_DIMS), Jsonb({"user_id": "x"})),
        )
    history = tmp_path / "history.db"
    _history_db(history, ids, started)
    return source, history, ids


def _import_args(source: str, history: Path) -> list[str]:
    return ["import", "--from-table", "mem0_legacy", "--from-database-url", source, "--history-db", str(history)]


def _import(target: str, standin, source: str, history: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(server_env(target, standin), *_import_args(source, history), *extra, timeout_s=180)


def _source_fingerprint(source: str) -> tuple[object, ...]:
    with psycopg.connect(source) as conn:
        row = conn.execute(
            "SELECT count(*), md5(string_agg(id::text || vector::text || payload::text, ',' ORDER BY id)), "
            "(SELECT count(*) FROM mem0migrations) FROM mem0_legacy"
        ).fetchone()
    assert row is not None
    return tuple(row)


def _kill_after_progress_lines(target: str, standin, source: str, history: Path, lines: int) -> list[str]:
    """Starts the import with small slow batches and SIGKILLs it after `lines` progress lines."""
    standin.control(embed_latency_ms=300)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", *_import_args(source, history), "--batch-size", "10"],
        cwd=repo_root(),
        env=clean_environment(**server_env(target, standin)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        while len([line for line in seen if "ETA" in line]) < lines:
            line = process.stdout.readline()
            assert line, f"the import ended before {lines} progress lines: {seen}"
            seen.append(line)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
        standin.control(embed_latency_ms=0)
    return seen


def test_dry_run_reports_dims_and_history_and_writes_nothing(upstream, fresh_db, standin):
    source, history, _ids = upstream
    before = _source_fingerprint(source)

    dry = _import(fresh_db, standin, source, history, "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"mem0_legacy, {MEMORIES} rows, vector({UPSTREAM_DIMS}); configured: vector({DIMS})" in dry.stdout
    history_rows = MEMORIES - len(NO_HISTORY) + len(UPDATED) + 1
    assert f"history: {history_rows} rows for {MEMORIES - len(NO_HISTORY) + 1} memories" in dry.stdout
    assert f"mem0migrations: vector({UPSTREAM_DIMS}) in the source database, left alone" in dry.stdout
    assert f"dry run: would import {MEMORIES} memories (0 already there" in dry.stdout
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('public.memories')").fetchone() == (None,)
    assert _source_fingerprint(source) == before
    assert standin.stats()["counts"].get("embed", 0) == 0


def test_import_survives_a_kill_and_a_failing_embedder_then_imports_nothing_more(upstream, fresh_db, standin):
    source, history, ids = upstream
    before = _source_fingerprint(source)

    progress = _kill_after_progress_lines(fresh_db, standin, source, history, lines=2)
    killed_at = count_rows(fresh_db, "memories")
    assert "/147 rows" in progress[-1] and "ETA" in progress[-1]
    assert 20 <= killed_at < MEMORIES

    # The embedder fails on the 3rd call of the next run: it stops with what it committed kept.
    standin.control(faults={"embed": {"kind": "status", "status": 500, "every": 3, "count": 1}})
    stopped = _import(fresh_db, standin, source, history, "--batch-size", "10")
    assert stopped.returncode == 1 and "import stopped" in stopped.stderr, stopped.stdout + stopped.stderr
    stopped_at = count_rows(fresh_db, "memories")
    assert stopped_at == killed_at + 20

    finished = _import(fresh_db, standin, source, history, "--batch-size", "10")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"imported {MEMORIES - stopped_at} memories" in finished.stdout
    assert f"{MEMORIES}/{MEMORIES} rows (100%)" in finished.stdout

    with psycopg.connect(fresh_db) as conn:
        dims = conn.execute("SELECT DISTINCT vector_dims(vector) FROM memories").fetchall()
        history_of = dict(conn.execute("SELECT memory_id::text, count(*) FROM memory_history GROUP BY 1").fetchall())
        payload = conn.execute("SELECT payload FROM memories WHERE id = %s", (ids[PARROT],)).fetchone()
        updated = conn.execute(
            "SELECT event, new_memory FROM memory_history WHERE memory_id = %s ORDER BY seq", (ids[7],)
        ).fetchall()
        made_add = conn.execute(
            "SELECT event, new_memory FROM memory_history WHERE memory_id = %s", (ids[20],)
        ).fetchall()
    assert count_rows(fresh_db, "memories") == MEMORIES and dims == [(DIMS,)]
    assert set(history_of) == set(ids)  # every memory, and no history of the memory deleted upstream
    assert sum(history_of.values()) == MEMORIES + len(UPDATED)  # one ADD each (mem0's or made), mem0's UPDATEs
    assert payload is not None and payload[0]["upstream_only"] == PARROT
    assert payload[0]["text_lemmatized"] == _text(PARROT) and payload[0]["user_id"] == "bob"
    assert updated == [("ADD", _text(7)), ("UPDATE", _text(7))]
    assert made_add == [("ADD", _text(20))]

    again = _import(fresh_db, standin, source, history)
    assert again.returncode == 0 and "imported 0 memories with 0 history rows" in again.stdout, again.stdout
    assert f"{MEMORIES} were there already" in again.stdout
    assert count_rows(fresh_db, "memories") == MEMORIES
    assert count_rows(fresh_db, "memory_history") == MEMORIES + len(UPDATED)
    assert _source_fingerprint(source) == before

    invariants = run_cli(server_env(fresh_db, standin), "invariants")
    assert invariants.returncode == 0, invariants.stdout + invariants.stderr

    with InProcessServer(server_env(fresh_db, standin)) as app, app.client() as client:
        found = client.post("/search", json={"query": "parrot called Pistachio", "user_id": "bob"})
        assert found.status_code == 200, found.text
        assert found.json()["results"][0]["id"] == ids[PARROT]
        events = client.get(f"/memories/{ids[7]}/history").json()
        assert [event["event"] for event in events] == ["ADD", "UPDATE"]
