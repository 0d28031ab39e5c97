"""Upstream mem0's SQLite `history.db` (table `history`, mem0/memory/storage.py), read into memory_history rows."""

from __future__ import annotations

import sqlite3
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HISTORY_COLUMNS = (
    "id",
    "memory_id",
    "old_memory",
    "new_memory",
    "event",
    "created_at",
    "updated_at",
    "is_deleted",
    "actor_id",
    "role",
)
EVENTS = ("ADD", "UPDATE", "DELETE")  # memory_history's check constraint; mem0 writes no other event
# A history id that is not a UUID still maps to one id, the same on every run, so a rerun inserts nothing twice.
_ID_NAMESPACE = uuid.UUID("6f1d2a58-4c1e-4b8e-9a57-0d7a1f0c2b33")


def as_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, value))


def _canonical(memory_id: str) -> str:
    """The memories table's spelling of a UUID (mem0 writes the same one, but a hand-edited file may not)."""
    try:
        return str(uuid.UUID(memory_id))
    except ValueError:
        return memory_id


def parse_time(value: Any) -> datetime | None:
    """mem0 stores ISO strings (with or without an offset); a naive one is read as UTC."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_history(path: Path) -> dict[str, list[dict[str, Any]]]:
    """memory id -> its history rows in the order mem0 wrote them. Columns an older mem0 lacks read as NULL;
    rows with an event memory_history cannot hold are left out."""
    # Read only: the upstream deployment's file is never written.
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        present = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
        if not present:
            raise ValueError(f"{path} has no table 'history' (is it mem0's history.db?)")
        # Only HISTORY_COLUMNS' fixed names reach the SQL text, never anything read from the file.
        select = ", ".join(column if column in present else "NULL" for column in HISTORY_COLUMNS)
        order = "created_at, rowid" if "created_at" in present else "rowid"
        rows = conn.execute(f"SELECT {select} FROM history ORDER BY {order}").fetchall()
    by_memory: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in rows:
        row = dict(zip(HISTORY_COLUMNS, raw, strict=True))
        if row["memory_id"] is None or row["event"] not in EVENTS:
            continue
        by_memory[_canonical(str(row["memory_id"]))].append(row)
    return dict(by_memory)


def history_rows(memory_id: str, upstream: list[dict[str, Any]], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The memory_history rows of one imported memory: mem0's own, preceded by an ADD built from the payload when
    mem0 recorded none (every memory has its ADD: `mem0-fixed invariants`)."""
    rows = [
        {
            "id": as_uuid(str(row["id"])) if row["id"] else as_uuid(f"{memory_id}:{index}"),
            "memory_id": memory_id,
            "old_memory": row["old_memory"],
            "new_memory": row["new_memory"],
            "event": row["event"],
            "created_at": parse_time(row["created_at"]) or datetime.now(UTC),
            "updated_at": parse_time(row["updated_at"]),
            "is_deleted": bool(row["is_deleted"]),
            "actor_id": row["actor_id"],
            "role": row["role"],
        }
        for index, row in enumerate(upstream)
    ]
    if not any(row["event"] == "ADD" for row in rows):
        created = parse_time(payload.get("created_at")) or datetime.now(UTC)
        added = {
            "id": as_uuid(f"{memory_id}:import-add"),
            "memory_id": memory_id,
            "old_memory": None,
            "new_memory": payload.get("data"),
            "event": "ADD",
            "created_at": created,
            "updated_at": created,
            "is_deleted": False,
            "actor_id": payload.get("actor_id"),
            "role": payload.get("role"),
        }
        rows.insert(0, added)
    return rows
