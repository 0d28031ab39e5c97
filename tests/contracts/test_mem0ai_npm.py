"""mem0ai's TypeScript `MemoryClient({host})` under node: 3.3.1 (the current major, hosted v3 routes) and 2.4.6
(the last 2.x, which @mastra/mem0 resolves: v1 routes by default, v2 with `api_version: "v2"`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contracts.harness import answer, drive, new_user, stored
from tests.contracts.installs import node_modules_of

FACTS = ["I like green tea", "I live in Lisbon"]

# mem0ai 2.x sends org_id and project_id (from /v1/ping/) in every body and query string. Its v1 answers are typed
# `Array<Memory>`: arrays, not `{results}` (mem0's v1.0 output format).


def _run(pin: str, driver: str, server: Any, home: Any) -> tuple[str, dict[str, Any]]:
    user = new_user(pin)
    return user, drive("node", driver, server, home, NODE_MODULES=str(node_modules_of(pin)), USER_ID=user)


@pytest.fixture(scope="module")
def current(server, tmp_path_factory):
    return _run("mem0ai-npm-3", "mem0ai_npm_3.cjs", server, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def last_2x(server, tmp_path_factory):
    return _run("mem0ai-npm-2", "mem0ai_npm_2.cjs", server, tmp_path_factory.mktemp("home"))


def memories(listed: Any) -> list[str]:
    """The memories' texts, sorted, from a list answer in either of mem0's shapes."""
    return sorted(m["memory"] for m in (listed if isinstance(listed, list) else listed["results"]))


def test_3x_add_stores_each_inferred_fact(current):
    _, answers = current
    assert answer(answers, "ping") is None  # resolves: the key is valid
    assert sorted(r["memory"] for r in answer(answers, "add")["results"]) == FACTS
    assert memories(answer(answers, "list")) == FACTS


def test_3x_search_finds_the_fact(current):
    _, answers = current
    best = answer(answers, "search")["results"][0]
    assert best["memory"] == FACTS[0] and best["score"] > 0


def test_3x_delete_and_delete_all_remove_the_memories(current, api):
    user, answers = current
    assert "deleted" in answer(answers, "delete")["message"]
    assert memories(answer(answers, "list_after_delete")) == FACTS[1:]
    assert "deleted" in answer(answers, "delete_all")["message"]
    assert memories(answer(answers, "list_after_delete_all")) == []
    assert stored(api, user) == []


def test_2x_pings_the_server(last_2x):
    _, answers = last_2x
    assert answer(answers, "ping") is None


def test_2x_add_stores_each_inferred_fact(last_2x):
    _, answers = last_2x
    assert isinstance(answer(answers, "add"), list)
    listed = answer(answers, "list")
    assert isinstance(listed, list) and memories(listed) == FACTS


def test_2x_lists_on_v2_with_filters(last_2x):
    _, answers = last_2x
    assert memories(answer(answers, "list_v2")) == FACTS


def test_2x_search_finds_the_fact(last_2x):
    _, answers = last_2x
    found = answer(answers, "search")
    assert isinstance(found, list) and found[0]["memory"] == FACTS[0]


def test_2x_search_on_v2_finds_the_fact(last_2x):
    _, answers = last_2x
    found = answer(answers, "search_v2")
    assert (found if isinstance(found, list) else found["results"])[0]["memory"] == FACTS[0]


def test_2x_delete_removes_that_memory(last_2x):
    _, answers = last_2x
    assert "deleted" in answer(answers, "delete")["message"]
    assert memories(answer(answers, "list_after_delete")) == FACTS[1:]


def test_2x_delete_all_empties_the_users_memories(last_2x, api):
    user, answers = last_2x
    assert "deleted" in answer(answers, "delete_all")["message"]
    assert memories(answer(answers, "list_after_delete_all")) == []
    assert stored(api, user) == []
