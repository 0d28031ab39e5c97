"""hermes-agent's mem0 memory provider against this server as a self-hosted one (MEM0_HOST): the REST routes with
`X-API-Key` (POST /memories, POST /search, PUT and DELETE /memories/{id}), as Hermes' agent loop calls them."""

from __future__ import annotations

import pytest

from tests.contracts.harness import answer, drive, new_user, stored
from tests.contracts.installs import python_of


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    user = new_user("hermes")
    interpreter = python_of("hermes-agent")
    home = tmp_path_factory.mktemp("home")
    # Hermes installs a missing backend with pip at run time; its pinned install has them all.
    return user, drive(
        interpreter, "hermes_agent.py", server, home, MEM0_USER_ID=user, HERMES_DISABLE_LAZY_INSTALLS="1"
    )


def test_the_add_tool_stores_the_fact_verbatim(run):
    _, answers = run
    assert answer(answers, "add")["result"] == "Fact stored."
    assert [item["memory"] for item in answer(answers, "search_tea")["results"]] == ["I like green tea"]


def test_a_synced_turn_is_extracted_and_recalled(run):
    _, answers = run
    assert answer(answers, "sync_turn") is None  # sent in the background; the search waited for it
    assert [item["memory"] for item in answer(answers, "search")["results"]] == ["I live in Lisbon"]
    assert "- I live in Lisbon" in answer(answers, "prefetch").splitlines()


def test_update_and_delete_by_id(run, api):
    user, answers = run
    assert answer(answers, "update")["result"] == "Memory updated."
    assert [item["memory"] for item in answer(answers, "search_after_update")["results"]] == ["I like black tea"]
    assert answer(answers, "delete")["result"] == "Memory deleted."
    assert answer(answers, "search_after_delete") == {"result": "No relevant memories found."}
    assert stored(api, user) == ["I live in Lisbon"]
