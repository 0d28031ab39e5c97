"""Events waiting to be stored, oldest first: a bounded spill file (older) in front of a bounded memory queue."""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    id: str
    kind: str
    occurred_at: str
    attributes: dict[str, Any]


class SpillFile:
    """Events in an SQLite file, in arrival order: appending, reading the oldest and forgetting them each touch
    only those rows (a flat file would be rewritten whole to drop its first lines), and a crash mid-write
    leaves the last committed state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        # Opened on first use, so a server that never spills leaves no file behind.
        if self._db is None:
            # The flusher calls in from worker threads, one call at a time.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Write-ahead log without a sync per commit: a power cut may lose the last batches, never corrupt the file.
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT)")
        return self._db

    def count(self) -> int:
        if not self.path.exists():
            return 0
        row = self._connection().execute("SELECT count(*) FROM events").fetchone()
        return int(row[0])

    def append(self, events: list[Event]) -> None:
        db = self._connection()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT INTO events (event) VALUES (?)", [(json.dumps(asdict(e)),) for e in events])

    def oldest(self, limit: int) -> list[Event]:
        rows = self._connection().execute("SELECT event FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Event(**json.loads(row[0])) for row in rows]

    def forget_oldest(self, count: int) -> None:
        self._connection().execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (count,)
        )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Backlog:
    """`append` never does I/O (request handlers call it); the flusher moves overflow to the file and back.

    Memory holds up to `memory_max` events before the flusher spills the oldest to the file, and twice that
    before `append` itself drops the oldest. The file holds `spill_max` events; past that its oldest are dropped.
    Every drop is counted through `on_drop`.
    """

    def __init__(
        self, memory_max: int, spill_path: Path | None, spill_max: int, on_drop: Callable[[int], None]
    ) -> None:
        self.memory: deque[Event] = deque()
        self.memory_max = memory_max
        self.spill = SpillFile(spill_path) if spill_path is not None and spill_max > 0 else None
        self.spill_max = spill_max
        self.on_drop = on_drop
        self.spilled = 0 if self.spill is None else self.spill.count()

    def __len__(self) -> int:
        return self.spilled + len(self.memory)

    def append(self, event: Event) -> None:
        self.memory.append(event)
        hard_cap = self.memory_max * (2 if self.spill is not None else 1)
        if len(self.memory) > hard_cap:
            self.memory.popleft()
            self.on_drop(1)

    def needs_spill(self) -> bool:
        return self.spill is not None and len(self.memory) > self.memory_max

    def take_overflow(self) -> list[Event]:
        """The oldest in-memory events beyond memory_max, removed from memory, to be written to the file."""
        return [self.memory.popleft() for _ in range(max(0, len(self.memory) - self.memory_max))]

    def write_spill(self, events: list[Event]) -> None:
        """Blocking: append to the file, then drop its oldest events past spill_max."""
        assert self.spill is not None
        self.spill.append(events)
        self.spilled += len(events)
        excess = self.spilled - self.spill_max
        if excess > 0:
            self.remove_spilled(excess)
            self.on_drop(excess)

    def read_spilled(self, limit: int) -> list[Event]:
        """Blocking: the oldest `limit` events of the file."""
        return [] if self.spill is None or self.spilled == 0 else self.spill.oldest(limit)

    def remove_spilled(self, count: int) -> None:
        """Blocking: forget the oldest `count` events of the file (stored now, or dropped)."""
        assert self.spill is not None
        self.spill.forget_oldest(count)
        self.spilled = max(0, self.spilled - count)

    def memory_batch(self, limit: int) -> list[Event]:
        return [self.memory[i] for i in range(min(limit, len(self.memory)))]

    def remove_memory(self, count: int) -> None:
        for _ in range(count):
            self.memory.popleft()

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
