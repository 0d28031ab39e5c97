"""Reading mem0's history.db: an older schema without actor_id / role, ids that are not UUIDs, events
memory_history cannot hold, and the ADD made for a memory mem0 recorded no history for."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.ops.upstream_history import as_uuid, history_rows, read_history

MEMORY = "0b6c3f0e-5a43-4a8e-9d7e-2f8a7c1b9e10"


def _old_schema_db(path: Path) -> Path:
    """mem0 before actor_id / role (storage.py migrates such a file; the import only reads it)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, "
            "event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER)"
        )
        conn.executemany(
            "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("h2", MEMORY.upper(), "tea", "green tea", "UPDATE", "2025-01-02T00:00:00", None, 0),
                ("h1", MEMORY.upper(), None, "tea", "ADD", "2025-01-01T00:00:00+00:00", None, 0),
                ("h3", MEMORY, None, None, "NONE", "2025-01-03T00:00:00", None, 0),
            ],
        )
    conn.close()
    return path


def test_an_old_history_db_reads_in_order_under_the_canonical_id(tmp_path: Path) -> None:
    history = read_history(_old_schema_db(tmp_path / "history.db"))

    assert list(history) == [MEMORY]
    assert [row["event"] for row in history[MEMORY]] == ["ADD", "UPDATE"]
    assert history[MEMORY][0]["actor_id"] is None and history[MEMORY][0]["role"] is None

    rows = history_rows(MEMORY, history[MEMORY], {"data": "green tea"})
    assert [row["event"] for row in rows] == ["ADD", "UPDATE"]
    assert rows[0]["id"] == as_uuid("h1") == str(uuid.uuid5(uuid.UUID("6f1d2a58-4c1e-4b8e-9a57-0d7a1f0c2b33"), "h1"))
    assert rows[1]["created_at"] == datetime(2025, 1, 2, tzinfo=UTC)  # a naive time is read as UTC


def test_a_memory_without_history_gets_one_add_with_the_same_id_every_run() -> None:
    payload = {"data": "likes tea", "created_at": "2025-02-01T10:00:00-08:00", "actor_id": "ada", "role": "user"}

    first = history_rows(MEMORY, [], payload)
    again = history_rows(MEMORY, [], payload)

    assert first == again and len(first) == 1
    assert first[0]["event"] == "ADD" and first[0]["new_memory"] == "likes tea" and first[0]["actor_id"] == "ada"
    assert first[0]["created_at"] == datetime(2025, 2, 1, 18, 0, tzinfo=UTC)
