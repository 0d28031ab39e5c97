"""mem0ai's Python `MemoryClient(host=...)`: the current release and the oldest 1.x, each from its own virtualenv;
drivers/mem0ai_python.py makes the same calls with both."""

from __future__ import annotations

import pytest

from tests.contracts.harness import answer, drive, new_user, stored
from tests.contracts.installs import python_of

CURRENT = "mem0ai-python-2"
OLDEST_1X = "mem0ai-python-1"
FACTS = ["I like green tea", "I live in Lisbon"]


@pytest.fixture(scope="module")
def run(request, server, tmp_path_factory):
    """The driver, run once per client version and module; the tests read what each call answered."""
    user = new_user(request.param)
    answers = drive(python_of(request.param), "mem0ai_python.py", server, tmp_path_factory.mktemp("home"), USER_ID=user)
    return user, answers


def versions() -> pytest.MarkDecorator:
    """Both client versions (mem0ai 1.x sends org_id and project_id, from /v1/ping/, in every body and query)."""
    return pytest.mark.parametrize("run", [CURRENT, OLDEST_1X], indirect=True)


@versions()
def test_the_client_constructs_against_the_server(run):
    _, answers = run
    assert answer(answers, "construct") == "<MemoryClient>"  # its constructor pinged /v1/ping/ with the key


@versions()
def test_an_inferred_add_stores_each_fact(run):
    _, answers = run
    assert answer(answers, "add")["results"]  # the stored facts or, in async mode (1.x's default), the queued event
    assert sorted(m["memory"] for m in answer(answers, "list")["results"]) == FACTS


@versions()
def test_search_finds_the_fact(run):
    _, answers = run
    best = answer(answers, "search")["results"][0]
    assert best["memory"] == FACTS[0] and best["score"] > 0


@versions()
def test_delete_removes_that_memory(run):
    _, answers = run
    assert "deleted" in answer(answers, "delete")["message"]
    assert [m["memory"] for m in answer(answers, "list_after_delete")["results"]] == FACTS[1:]


@versions()
def test_delete_all_empties_the_users_memories(run, api):
    user, answers = run
    assert "deleted" in answer(answers, "delete_all")["message"]
    assert answer(answers, "list_after_delete_all")["results"] == []
    assert stored(api, user) == []
