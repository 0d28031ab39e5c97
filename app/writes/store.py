"""The one function that stores a write's drafts: embed, then one transaction that de-duplicates under the scope's
lock, inserts the memories with their history, links named entities and completes the job or the idempotency key.
A direct write and a queued inferred write both end here; either everything commits or nothing does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from app.auth.access import EVERYTHING
from app.config import Settings
from app.db.errors import storage_errors
from app.db.statement_groups import StatementGroups
from app.filters import scope_where
from app.graph.repository import GraphRepository
from app.graph.service import GraphChanges, GraphDrafts, record_relations
from app.idempotency.service import Once
from app.jobs.repository import ClaimedJob, JobRepository
from app.llm.client import OllamaClient
from app.llm.embedding import Embedding
from app.llm.extraction import ExtractedEntity
from app.memories.payloads import MemoryDraft
from app.memories.repository import MemoryRepository, NewMemory
from app.memories.schemas import AddResult
from app.named_entities.repository import NamedEntityRepository, NewEntity
from app.writes.results import Inference, WriteResult

# Statements in flight at once: a few keep Postgres busy; more only contend for the HNSW index's pages.
INSERT_GROUPS_IN_FLIGHT = 4
INSERT_GROUP_MAX_ROWS = 256


@dataclass(frozen=True)
class Drafts:
    """What a write stores. `deduplicate`: skip facts the scope already holds (an inferred write's facts), with
    the named entities they mention. `extraction` says how an inferred write's drafts were found."""

    identifiers: dict[str, str]
    drafts: list[MemoryDraft]
    deduplicate: bool = False
    named_entities: Sequence[ExtractedEntity] = ()
    extracted: int = 0
    extraction: str | None = None
    graph: GraphDrafts | None = None  # None: this write does not use graph memory

    @property
    def plain(self) -> bool:
        """Only memories to insert: nothing to de-duplicate against, no named entities, no graph."""
        return bool(self.drafts) and not self.deduplicate and not self.named_entities and self.graph is None


@dataclass(frozen=True)
class JobCompletion:
    """The queued job whose drafts these are, and the model that extracted them."""

    job: ClaimedJob
    model: str


class DraftStore:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        ollama: OllamaClient,
        memories: MemoryRepository,
        named_entities: NamedEntityRepository,
        graph: GraphRepository,
        jobs: JobRepository,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.ollama = ollama
        self.memories = memories
        self.named_entities = named_entities
        self.graph = graph
        self.jobs = jobs
        self.plain_inserts: StatementGroups[NewMemory, uuid.UUID] = StatementGroups(
            self._insert_plain, max_in_flight=INSERT_GROUPS_IN_FLIGHT, max_items=INSERT_GROUP_MAX_ROWS
        )

    async def store(
        self, write: Drafts, *, key: Once | None = None, job: JobCompletion | None = None
    ) -> WriteResult | None:
        """Stores the drafts and completes the key or the job in the same transaction. None (nothing stored) when
        the job lost its lease to another worker meanwhile."""
        rows = await self._embed_memories(write.drafts)
        entities = await self._embed_named_entities(write.named_entities)
        if job is None and (key is None or not key.keyed) and write.plain:
            # The memories and their ADD events are one statement, atomic on its own: no BEGIN and COMMIT round
            # trips around it, and concurrent writes share it (the most common write, `infer: false` unkeyed).
            await self.plain_inserts.submit(rows)
            return _result(write, rows, rows, entities, job, None)
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            if job is not None and not await self.jobs.lock_running(conn, job.job):
                return None
            held: dict[str, uuid.UUID] = {}
            if write.deduplicate and rows:
                await self.memories.lock_scope(conn, write.identifiers)
                where = scope_where(EVERYTHING, write.identifiers)
                held = await self.memories.existing_hashes(conn, where, [row.payload["hash"] for row in rows])
                stored = [row for row in rows if row.payload["hash"] not in held]
            else:
                stored = rows
            if stored:
                await self.memories.insert_with_history(conn, stored)
            # Under the scope's lock taken above: two writers naming one entity create it once.
            await self.named_entities.link(conn, write.identifiers, {row.id: row.text for row in stored}, entities)
            relations = None
            if write.graph is not None:
                # A relation's sources are the write's memories: the new ones, and those it restated.
                sources = [row.id for row in stored] + list(held.values())
                relations = await record_relations(conn, self.graph, write.identifiers, write.graph, sources)
            result = _result(write, rows, stored, entities, job, relations)
            if key is not None:
                await key.complete(conn, result.record())
            if job is not None:
                await self.jobs.complete(conn, job.job, result.job_result(), job.model)
        return result

    async def _insert_plain(self, rows: list[NewMemory]) -> list[uuid.UUID]:
        """The ids stored, once committed."""
        async with storage_errors(), self.pool.connection() as conn:
            await self.memories.insert_with_history(conn, rows)
        return [row.id for row in rows]

    async def _embed_memories(self, drafts: Sequence[MemoryDraft]) -> list[NewMemory]:
        """The rows to insert: every draft's text embedded in one call, ids chosen here."""
        vectors = await self._embed([d.text for d in drafts])
        return [
            NewMemory(uuid.uuid4(), vector, d.payload, d.text, d.actor_id, d.role)
            for d, vector in zip(drafts, vectors, strict=True)
        ]

    async def _embed_named_entities(self, entities: Sequence[ExtractedEntity]) -> list[NewEntity]:
        """Each name embedded, in one call: mem0's entity collection keeps a vector per named entity."""
        vectors = await self._embed([e.name for e in entities])
        return [NewEntity(e.name, e.type, vector) for e, vector in zip(entities, vectors, strict=True)]

    async def _embed(self, texts: list[str]) -> list[Embedding]:
        """One embedding call (none for no texts)."""
        return await self.ollama.embed(self.settings.embedder_model, texts, dims=self.settings.embedding_dims)


def _result(
    write: Drafts,
    rows: Sequence[NewMemory],
    stored: Sequence[NewMemory],
    entities: Sequence[NewEntity],
    job: JobCompletion | None,
    relations: GraphChanges | None,
) -> WriteResult:
    results = [
        AddResult(id=str(row.id), memory=row.text, event="ADD", role=row.role, actor_id=row.actor_id) for row in stored
    ]
    shown = relations.body() if relations is not None else None
    if write.extraction is None:
        return WriteResult(results, relations=shown)
    named = [{"name": entity.name, "type": entity.type} for entity in entities]
    inference = Inference(write.extracted, len(rows) - len(stored), write.extraction, named)
    return WriteResult(results, job.job.public_id if job is not None else None, inference=inference, relations=shown)
