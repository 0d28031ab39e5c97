"""llama-index-memory-mem0's `Mem0Memory` over mem0ai's `MemoryClient(host=...)` (2.2.1, its hosted v3 routes):
a chat message put into the memory is extracted by the server, and the next question's history starts with a
system message holding it."""

from __future__ import annotations

import pytest

from tests.contracts.harness import answer, drive, new_user, stored
from tests.contracts.installs import python_of

FACT = "I like green tea"


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    user = new_user("llama-index")
    interpreter = python_of("llama-index-memory-mem0")
    return user, drive(interpreter, "llama_index_memory_mem0.py", server, tmp_path_factory.mktemp("home"), USER_ID=user)


def test_a_put_message_is_stored_as_its_fact(run, api):
    user, answers = run
    assert answer(answers, "construct") == "<Mem0Memory>"
    assert answer(answers, "put") is None
    assert stored(api, user) == [FACT]
    assert [m["memory"] for m in answer(answers, "search")["results"]] == [FACT]


def test_the_next_questions_history_starts_with_the_memory(run):
    _, answers = run
    system, *chat = answer(answers, "get")
    # llama-index writes each memory as ` [categories] : memory ` (the categories the server's extraction gave it).
    assert f" [food] : {FACT} " in system and "relevant preferences" in system
    assert chat == [f"{FACT}."]
