"""The one builder of mem0's memory payloads, for direct writes (messages) and inferred writes (facts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.errors import InvalidInput
from app.memories.keywords import lemmatize_for_bm25
from app.memories.schemas import MemoryCreate


@dataclass(frozen=True)
class MemoryDraft:
    """A memory before it is embedded: its text, the payload mem0 stores, and who said it."""

    text: str
    payload: dict[str, Any]
    role: str
    actor_id: str | None


def memory_hash(text: str) -> str:
    """mem0's content hash (md5 of the text), kept so upstream deduplication reads our rows the same way."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def made_at(request: MemoryCreate) -> str:
    """The memories' created_at: the write's `timestamp` (mem0's, for importing older conversations), else now."""
    return request.timestamp.isoformat() if request.timestamp is not None else now_iso()


def _draft(
    request: MemoryCreate, text: str, created_at: str, role: str, actor_id: str | None, marks: dict[str, Any]
) -> MemoryDraft:
    payload: dict[str, Any] = {
        **(request.metadata or {}),
        **request.identifiers(),
        "data": text,
        "hash": memory_hash(text),
        # mem0's keyword search reads this key, so upstream mem0 finds rows this server wrote (and so does ours).
        "text_lemmatized": lemmatize_for_bm25(text),
        "created_at": created_at,
        "updated_at": created_at,
        **marks,
    }
    if actor_id is not None:
        payload["actor_id"] = actor_id
    if request.expiration_date is not None:
        payload["expiration_date"] = request.expiration_date.isoformat()
    if request.immutable:
        payload["immutable"] = True
    return MemoryDraft(text, payload, role, actor_id)


def drafts_from_messages(request: MemoryCreate, *, extraction: str | None = None) -> list[MemoryDraft]:
    """One memory per non-system message (infer: false, or an inferred write's raw fallback, marked so)."""
    created_at = made_at(request)
    drafts = [
        _draft(
            request,
            message.content,
            created_at,
            message.role,
            message.name,
            {"role": message.role} | ({"extraction": extraction} if extraction else {}),
        )
        for message in request.messages
        if message.role != "system"
    ]
    if not drafts:
        raise InvalidInput(
            "every message has role 'system', so there is nothing to store; send user or assistant messages"
        )
    return drafts


def drafts_from_facts(
    request: MemoryCreate, facts: list[str], categories: list[list[str]] | None = None
) -> list[MemoryDraft]:
    """One memory per distinct extracted fact, attributed to the user, with the categories the extraction gave it."""
    created_at = made_at(request)
    found: dict[str, list[str]] = {}
    for index, fact in enumerate(facts):
        found.setdefault(fact, categories[index] if categories and index < len(categories) else [])
    return [
        _draft(
            request, fact, created_at, "user", None, {"extraction": "llm"} | ({"categories": names} if names else {})
        )
        for fact, names in found.items()
    ]
