"""Request schemas reject what Postgres or mem0 cannot take, with messages that say what to fix."""

from __future__ import annotations

from app.memories.payloads import memory_hash
from app.memories.repository import StoredMemory
from app.memories.schemas import MemoryCreate, SearchRequest
from app.memories.service import to_item


def test_identifiers_may_come_from_search_filters():
    request = SearchRequest.model_validate({"query": "q", "filters": {"agent_id": "a"}})

    assert request.filters == {"agent_id": "a"}


def test_infer_defaults_to_true_like_mem0():
    assert MemoryCreate.model_validate({"messages": [{"role": "user", "content": "x"}], "user_id": "u"}).infer is True


def test_items_have_mem0s_shape():
    payload = {
        "data": "I like tea",
        "hash": memory_hash("I like tea"),
        "user_id": "u",
        "role": "user",
        "created_at": "t0",
        "updated_at": "t1",
        "topic": "drinks",
    }

    item = to_item(StoredMemory(__import__("uuid").UUID(int=1), payload, 0.25), with_score=True)

    assert item == {
        "id": "00000000-0000-0000-0000-000000000001",
        "memory": "I like tea",
        "hash": payload["hash"],
        "metadata": {"topic": "drinks"},
        "created_at": "t0",
        "updated_at": "t1",
        "user_id": "u",
        "role": "user",
        "score": 0.75,
    }
