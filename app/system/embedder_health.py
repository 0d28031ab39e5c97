"""Whether embeddings work now, for /ready: the latest embed call's outcome, or a probe when none is recent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from app.errors import AppError


class EmbedderHealth:
    """Every finished embed call is recorded (from the Ollama client's observer). /ready trusts the latest outcome
    for `max_age_s`; older, it probes once (concurrent readiness checks share the probe), so an idle server still
    notices a failing or hanging embedder, and a busy one costs no extra calls."""

    def __init__(self, *, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._recorded_at: float | None = None
        self._error: str | None = None
        self._probing = asyncio.Lock()

    def record(self, error: str | None) -> None:
        """The outcome of one embed call: None when it succeeded, else what failed."""
        self._recorded_at = time.monotonic()
        self._error = error

    async def problem(self, probe: Callable[[], Awaitable[object]]) -> str | None:
        """None while embeddings work, else a reason for /ready."""
        if self._is_stale():
            async with self._probing:
                if self._is_stale():
                    try:
                        await probe()
                    except AppError as error:
                        self.record(error.message)
                    else:
                        self.record(None)
        return None if self._error is None else f"embeddings are failing: {self._error}"

    def _is_stale(self) -> bool:
        return self._recorded_at is None or time.monotonic() - self._recorded_at > self.max_age_s
