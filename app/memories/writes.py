"""The one "add memories" use case behind `POST /memories` and mem0's hosted add: `infer: false` stores now;
`infer: true` is a job, waited for in sync mode unless the request is keyed or asks for async mode."""

from __future__ import annotations

from app.auth.access import Access
from app.idempotency.schemas import KeyedRequest, StoredResponse
from app.idempotency.service import Outcome
from app.jobs.repository import SUCCEEDED
from app.jobs.service import JobService
from app.memories.responses import json_bytes
from app.memories.schemas import MemoryCreate
from app.memories.service import MemoryService


async def write_memories(
    memories: MemoryService, jobs: JobService, request: MemoryCreate, access: Access, key: KeyedRequest | None
) -> Outcome:
    if not request.infer:
        return await memories.add(request, access, key)
    memories.check_limits(request, access)
    job_id, outcome = await jobs.submit(request, key)
    if job_id is None or key is not None or jobs.answers_at_once(request):
        return outcome  # 202 with the job id (a keyed request always answers, and replays, that)
    job = await jobs.wait(job_id)
    if job.status == SUCCEEDED:
        return Outcome(StoredResponse(200, json_bytes({**(job.result or {}), "job_id": str(job.id)})), replayed=False)
    return Outcome(StoredResponse(202, json_bytes({"job_id": str(job.id), "status": job.status})), replayed=False)
