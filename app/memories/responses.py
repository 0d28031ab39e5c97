"""The bodies a write answers with, as exact bytes: an idempotency key stores them and replays them unchanged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from app.idempotency.schemas import StoredResponse
from app.memories.repository import NewMemory
from app.memories.schemas import AddResponse


def json_bytes(content: Any) -> bytes:
    """FastAPI's own JSON spelling, so a first answer and its replays are byte-for-byte equal."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def added_results(rows: Sequence[NewMemory]) -> list[dict[str, Any]]:
    return [
        {"id": str(row.id), "memory": row.text, "event": "ADD", "role": row.role, "actor_id": row.actor_id}
        for row in rows
    ]


def added_response(rows: Sequence[NewMemory]) -> StoredResponse:
    """200: every listed memory is committed."""
    body = AddResponse.model_validate({"results": added_results(rows)}).model_dump(mode="json")
    return StoredResponse(200, json_bytes(body))


def accepted_response(job_id: UUID) -> StoredResponse:
    """202: the inferred write is stored as a job; GET /jobs/{job_id} follows it."""
    return StoredResponse(202, json_bytes({"job_id": str(job_id), "status": "PENDING"}))
