"""What a write returns: one typed result, rendered by REST, the hosted API and MCP, and serialised only for an
idempotency key to replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from app.idempotency.schemas import StoredResult
from app.jobs.repository import JobRecord
from app.memories.schemas import AddResult

QUEUED_STATUS = 202
STORED_STATUS = 200


@dataclass(frozen=True)
class Inference:
    """What the extraction of an inferred write found: facts, how many were already stored, how the memories were
    found (`llm`, `raw_fallback` or `none`) and the named entities."""

    extracted: int
    already_stored: int
    extraction: str
    named_entities: list[dict[str, str]]


@dataclass(frozen=True)
class WriteResult:
    """Stored: `results` are committed. Queued: `job_status` is the status of the job that will store them."""

    results: list[AddResult]
    job_id: UUID | None = None
    job_status: str | None = None
    inference: Inference | None = None
    replayed: bool = False
    relations: dict[str, Any] | None = None  # mem0's {added_entities, deleted_entities}, with graph memory

    @property
    def queued(self) -> bool:
        return self.job_status is not None

    def body(self) -> dict[str, Any]:
        """mem0's answer to an add: `{results}` (an inferred write adds its extraction and job), or, queued,
        `{job_id, status}`."""
        if self.queued:
            return {"job_id": str(self.job_id), "status": self.job_status}
        body: dict[str, Any] = {"results": [item.model_dump(mode="json") for item in self.results]}
        if self.inference is not None:
            body |= self.job_result() | {"job_id": str(self.job_id)}
        elif self.relations is not None:
            body["relations"] = self.relations
        return body

    def job_result(self) -> dict[str, Any]:
        """What a finished job keeps (GET /jobs/{id} shows it)."""
        inference = self.inference or Inference(0, 0, "none", [])
        result = {
            "results": [item.model_dump(mode="json") for item in self.results],
            "extracted": inference.extracted,
            "already_stored": inference.already_stored,
            "extraction": inference.extraction,
            "entities": inference.named_entities,
        }
        return result if self.relations is None else result | {"relations": self.relations}

    def record(self) -> StoredResult:
        """The key's copy: the status and body bytes of mem0's REST answer, as every version of this server stored
        them, so a key written before an upgrade (or after a rollback) still replays."""
        status = QUEUED_STATUS if self.queued else STORED_STATUS
        return StoredResult(status, json_bytes(self.body()))

    @classmethod
    def from_record(cls, stored: StoredResult) -> WriteResult:
        body = _RecordBody.model_validate_json(stored.body)
        if stored.status == QUEUED_STATUS:
            return cls([], body.job_id, body.status or "PENDING", replayed=True)
        return cls(body.results, replayed=True)

    @classmethod
    def from_job(cls, job: JobRecord) -> WriteResult:
        """A finished job's result; a job that has not finished is still queued."""
        if job.result is None:
            return cls([], job.id, job.status)
        kept = _JobResult.model_validate(job.result)
        inference = Inference(kept.extracted, kept.already_stored, kept.extraction, kept.entities)
        return cls(kept.results, job.id, inference=inference, relations=kept.relations)


class _RecordBody(BaseModel):
    results: list[AddResult] = []
    job_id: UUID | None = None
    status: str | None = None


class _JobResult(BaseModel):
    results: list[AddResult]
    extracted: int = 0
    already_stored: int = 0
    extraction: str = "llm"
    entities: list[dict[str, str]] = []
    relations: dict[str, Any] | None = None


def json_bytes(content: Any) -> bytes:
    """FastAPI's own JSON spelling, so a first answer and its replays are byte-for-byte equal."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
