"""The log lines an in-process app writes, as a server process writes them to its output.

A server process logs one JSON object per line to stderr (app/log.py's JsonFormatter on the root logger, at
MEM0_LOG_LEVEL); `captured_logs` puts the same formatter on the root logger of the test process for the duration
of a block, so a test of the in-process app can read the lines a test of a process reads from `output()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from app.log import JsonFormatter


class LogLines(logging.Handler):
    """Keeps every record, formatted as the server formats it."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@contextlib.contextmanager
def captured_logs(level: str = "INFO") -> Iterator[LogLines]:
    """Everything logged in this process at `level` or above while the block runs (the in-process apps included)."""
    root = logging.getLogger()
    handler = LogLines(logging.getLevelName(level))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, handler.level))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
