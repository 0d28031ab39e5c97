"""The table of every option mem0's pinned Python client sends (its own `AddMemoryOptions`, `SearchMemoryOptions`,
`GetAllMemoryOptions`, `UpdateMemoryOptions`), each through the real client against a real server: honoured (the
call succeeds and the field has its meaning, tested where named) or refused with an error naming it. A field a new
client version adds fails this test until it is classified here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mem0.client.main import MemoryClient
from mem0.client.types import AddMemoryOptions, GetAllMemoryOptions, SearchMemoryOptions, UpdateMemoryOptions

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess

# Honoured, and where each one's meaning is tested.
HONOURED = {
    "add": {
        "filters",  # test_hosted_api: identifiers in filters
        "metadata",  # test_mem0_clients
        "infer",  # test_mem0_clients
        "custom_instructions",  # test_upstream_fields (prompt), test_hosted_api
        "expiration_date",  # test_upstream_fields, test_hosted_api
        "timestamp",  # test_hosted_fields
        "custom_categories",  # test_hosted_fields
    },
    # test_upstream_fields, test_hosted_api, test_hybrid_search (keyword search is always on)
    # test_hosted_versions (metadata as an equality filter)
    "search": {
        "filters",
        "top_k",
        "threshold",
        "show_expired",
        "latest_only",
        "keyword_search",
        "metadata",
        "categories",  # test_hosted_fields
    },
    # test_mem0_clients (pages), test_hosted_fields (dates)
    "get_all": {"filters", "page", "page_size", "latest_only", "start_date", "end_date"},
    "update": {"text", "metadata", "expiration_date"},  # test_upstream_fields, test_mem0_clients
}
# A value each field can take, so a refusal is about the field, not a malformed value.
SAMPLES: dict[str, Any] = {
    "metadata": {"source": "table"},
    "infer": False,
    "custom_categories": [{"food": "what the user eats"}],
    "custom_instructions": "Keep food preferences only.",
    "agent_custom_instructions": "Keep the agent's own rules.",
    "timestamp": 1_767_225_600,
    "expiration_date": "2030-01-01",
    "structured_data_schema": {"type": "object"},
    "top_k": 3,
    "rerank": True,
    "threshold": 0.0,
    "fields": ["memory"],
    "categories": ["food"],
    "show_expired": True,
    "reference_date": "2026-01-01",
    "latest_only": True,
    "keyword_search": True,
    "page": 1,
    "page_size": 10,
    "start_date": "2026-01-01",
    "end_date": "2030-01-01",
    "text": "I like green tea",
}
MODELS = {"add": AddMemoryOptions, "search": SearchMemoryOptions, "get_all": GetAllMemoryOptions}
MODELS["update"] = UpdateMemoryOptions
CASES = [(method, field) for method, model in MODELS.items() for field in model.model_fields if field != "filters"]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[MemoryClient]:
    memory_client = MemoryClient(api_key=TEST_ADMIN_KEY, host=server.url)
    yield memory_client
    memory_client.client.close()


def _call(client: MemoryClient, method: str, field: str) -> Callable[[], Any]:
    user = f"table-{uuid.uuid4().hex[:8]}"
    option = {field: SAMPLES[field]}
    scope = {"filters": {"user_id": user}}
    if method == "add":
        # custom_instructions and categories steer the extraction, so they go with infer true; the rest with false.
        infer = {"infer": field in ("custom_instructions", "custom_categories")} if field != "infer" else {}
        return lambda: client.add([{"role": "user", "content": "I like tea"}], user_id=user, **infer, **option)
    if method == "search":
        return lambda: client.search("tea", **scope, **option)
    if method == "get_all":
        return lambda: client.get_all(**scope, **option)
    memory_id = client.add([{"role": "user", "content": "I like tea"}], user_id=user, infer=False)["results"][0]["id"]
    return lambda: client.update(memory_id, **option)


@pytest.mark.parametrize(("method", "field"), CASES, ids=[f"{m}.{f}" for m, f in CASES])
def test_every_client_option_is_honoured_or_refused_by_name(client, method, field):
    assert field in SAMPLES, f"{method}.{field} is new in mem0's client: classify it (HONOURED or refused)"
    call = _call(client, method, field)

    if field in HONOURED[method]:
        call()
    else:
        with pytest.raises(Exception) as refused:  # the client raises its own ValidationError on a 422
            call()
        assert field in str(refused.value), (method, field, refused.value)
