"""@mem0/vercel-ai-provider's memory functions (what its language model calls around each generation), pointed at
this server with `host` in `mem0Config`: with and without `metadata`, which it puts in the add body (stored) and
in the search body (mem0's meaning: only memories with that metadata)."""

from __future__ import annotations

import json

import pytest

from tests.contracts.harness import answer, drive, new_user
from tests.contracts.installs import node_modules_of

TAGGED, UNTAGGED = "I like green tea", "I like black tea"
METADATA = {"source": "vercel-contract"}


def _run(server, home, **settings):
    user = new_user("vercel")
    modules = str(node_modules_of("vercel-ai-provider"))
    return user, drive("node", "vercel_ai_provider.cjs", server, home, NODE_MODULES=modules, USER_ID=user, **settings)


@pytest.fixture(scope="module")
def plain(server, tmp_path_factory):
    return _run(server, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def with_metadata(server, tmp_path_factory):
    return _run(server, tmp_path_factory.mktemp("home"), METADATA=json.dumps(METADATA))


def test_memories_added_are_found_for_the_prompt(plain):
    _, answers = plain
    assert [r["memory"] for r in answer(answers, "add")["results"]] == [TAGGED]
    assert sorted(m["memory"] for m in answer(answers, "get")) == [UNTAGGED, TAGGED]
    assert f"Memory: {TAGGED}" in answer(answers, "retrieve")
    assert {m["memory"] for m in answer(answers, "search")["results"]} == {TAGGED, UNTAGGED}


def test_metadata_in_the_config_is_stored_with_the_memory(with_metadata, api):
    user, answers = with_metadata
    assert [r["memory"] for r in answer(answers, "add")["results"]] == [TAGGED]
    listed = api.get("/memories", params={"user_id": user}).json()["results"]
    assert {m["memory"]: m["metadata"] for m in listed} == {TAGGED: METADATA, UNTAGGED: None}


def test_metadata_in_the_config_filters_the_search(with_metadata):
    _, answers = with_metadata
    assert [m["memory"] for m in answer(answers, "get")] == [TAGGED]
    assert f"Memory: {TAGGED}" in answer(answers, "retrieve")
    assert [m["memory"] for m in answer(answers, "search")["results"]] == [TAGGED]
