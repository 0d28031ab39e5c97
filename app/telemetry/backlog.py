"""Events waiting to be stored, oldest first: a bounded spill file (older) in front of a bounded memory queue."""

from __future__ import annotations

import json
import os
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
        self.spill_path = spill_path if spill_max > 0 else None
        self.spill_max = spill_max
        self.on_drop = on_drop
        self.spilled = self._count_spilled()

    def __len__(self) -> int:
        return self.spilled + len(self.memory)

    def append(self, event: Event) -> None:
        self.memory.append(event)
        hard_cap = self.memory_max * (2 if self.spill_path is not None else 1)
        if len(self.memory) > hard_cap:
            self.memory.popleft()
            self.on_drop(1)

    def needs_spill(self) -> bool:
        return self.spill_path is not None and len(self.memory) > self.memory_max

    def take_overflow(self) -> list[Event]:
        """The oldest in-memory events beyond memory_max, removed from memory, to be written to the file."""
        return [self.memory.popleft() for _ in range(max(0, len(self.memory) - self.memory_max))]

    def write_spill(self, events: list[Event]) -> None:
        """Blocking: append to the file, then drop its oldest lines past spill_max."""
        assert self.spill_path is not None
        with self.spill_path.open("a", encoding="utf-8") as file:
            file.writelines(json.dumps(asdict(event)) + "\n" for event in events)
        self.spilled += len(events)
        excess = self.spilled - self.spill_max
        if excess > 0:
            self._rewrite_without_first(excess)
            self.on_drop(excess)

    def read_spilled(self, limit: int) -> list[Event]:
        """Blocking: the oldest `limit` events of the file."""
        if self.spilled == 0 or self.spill_path is None:
            return []
        events = []
        with self.spill_path.open(encoding="utf-8") as file:
            for line in file:
                events.append(Event(**json.loads(line)))
                if len(events) == limit:
                    break
        return events

    def remove_spilled(self, count: int) -> None:
        """Blocking: forget the first `count` events of the file (they are stored now)."""
        self._rewrite_without_first(count)

    def memory_batch(self, limit: int) -> list[Event]:
        return [self.memory[i] for i in range(min(limit, len(self.memory)))]

    def remove_memory(self, count: int) -> None:
        for _ in range(count):
            self.memory.popleft()

    def _rewrite_without_first(self, count: int) -> None:
        assert self.spill_path is not None
        with self.spill_path.open(encoding="utf-8") as file:
            kept = file.readlines()[count:]
        temporary = self.spill_path.with_suffix(".tmp")
        temporary.write_text("".join(kept), encoding="utf-8")
        os.replace(temporary, self.spill_path)
        self.spilled = len(kept)

    def _count_spilled(self) -> int:
        if self.spill_path is None or not self.spill_path.exists():
            return 0
        with self.spill_path.open(encoding="utf-8") as file:
            return sum(1 for _ in file)
