"""@mastra/mem0's `Mem0Integration` (it bundles mem0ai 2.x, so v1 routes), configured with `host`: it spreads its
whole config, the API key included, into every add and search body (`apiKey`, `host`, `user_id`, plus the
`org_id` and `project_id` mem0ai adds), and reads both answers as arrays of memories."""

from __future__ import annotations

import pytest

from tests.contracts.harness import answer, drive, new_user, stored
from tests.contracts.installs import node_modules_of

FACTS = ["I like green tea", "I live in Lisbon"]
MEMORY_PROMPT = "The MEMORIES of the USER are: \n\n"


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    user = new_user("mastra")
    modules = node_modules_of("mastra-mem0")
    home = tmp_path_factory.mktemp("home")
    return user, drive("node", "mastra_mem0.cjs", server, home, NODE_MODULES=str(modules), USER_ID=user)


def test_create_memory_stores_each_inferred_fact(run, api):
    user, answers = run
    assert MEMORY_PROMPT in answer(answers, "create")  # the added memories, as Mastra writes them for a prompt
    assert stored(api, user) == FACTS


def test_search_memory_answers_the_prompt_with_the_memories(run):
    _, answers = run
    prompt = answer(answers, "search")
    assert prompt.startswith("These are the memories I have stored.") and MEMORY_PROMPT in prompt
    assert prompt.split(MEMORY_PROMPT, 1)[1].split("\n")[0] == FACTS[0]  # best first
