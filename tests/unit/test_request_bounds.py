"""Requests are bounded where they are parsed (metadata and filters by size and depth, texts by length), and rows
stored before the bounds existed still serialise."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.memories.schemas import (
    CLIPPED_MARKER,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_TEXT_CHARS,
    MemoryCreate,
    MemoryItem,
    MemoryUpdate,
    SearchRequest,
    json_depth,
)


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def create(**fields: Any) -> MemoryCreate:
    return MemoryCreate.model_validate({"messages": [{"role": "user", "content": "x"}], "user_id": "u", **fields})


def test_metadata_may_nest_32_levels_and_no_deeper():
    assert json_depth(nested(MAX_METADATA_DEPTH), 100) == MAX_METADATA_DEPTH
    create(metadata=nested(MAX_METADATA_DEPTH))

    with pytest.raises(ValidationError, match="nests more than 32 levels"):
        create(metadata=nested(MAX_METADATA_DEPTH + 1))
    with pytest.raises(ValidationError, match="nests more than 32 levels"):
        MemoryUpdate.model_validate({"metadata": nested(900)})


def test_metadata_and_filters_are_bounded_in_bytes():
    with pytest.raises(ValidationError, match="bytes as JSON; at most 65,536"):
        create(metadata={"blob": "x" * MAX_METADATA_BYTES})
    with pytest.raises(ValidationError, match="bytes as JSON; at most 65,536"):
        SearchRequest.model_validate({"query": "q", "user_id": "u", "filters": {"k": {"in": ["v" * 100] * 700}}})


def test_queries_and_updated_texts_are_bounded():
    with pytest.raises(ValidationError, match="at most 20000 characters"):
        SearchRequest.model_validate({"query": "q" * (MAX_TEXT_CHARS + 1), "user_id": "u"})
    with pytest.raises(ValidationError, match="at most 20000 characters"):
        MemoryUpdate.model_validate({"text": "t" * (MAX_TEXT_CHARS + 1)})
    with pytest.raises(ValidationError, match="at most 255 characters"):
        create(user_id="u" * 256)


def test_metadata_copies_count_once_per_stored_message():
    request = MemoryCreate.model_validate(
        {
            "messages": [{"role": "system", "content": "s"}] + [{"role": "user", "content": "x"}] * 3,
            "user_id": "u",
            "metadata": {"k": "v"},
        }
    )

    assert request.metadata_copies_bytes() == 3 * len(b'{"k":"v"}')
    assert create().metadata_copies_bytes() == 0


def test_a_stored_row_nested_too_deep_is_clipped_on_the_way_out():
    item = MemoryItem.model_validate({"id": "i", "memory": "m", "metadata": nested(500)})

    body = item.model_dump_json()  # would raise PydanticSerializationError unclipped

    assert json_depth(item.metadata, 1000) == MAX_METADATA_DEPTH
    assert CLIPPED_MARKER in body
    shallow = nested(MAX_METADATA_DEPTH)
    assert MemoryItem.model_validate({"id": "i", "memory": "m", "metadata": shallow}).metadata == shallow


def test_an_unknown_field_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="topk"):
        SearchRequest.model_validate({"query": "q", "user_id": "u", "topk": 5})
    with pytest.raises(ValidationError, match="metdata"):
        create(metdata={"k": "v"})
