"""Upstream mem0 and this server share one table: each reads what the other wrote."""

from __future__ import annotations

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below


def test_rows_written_by_mem0_are_listed_and_searched_here(app_api, mem0_memory):
    messages = [
        {"role": "user", "content": "I am allergic to peanuts"},
        {"role": "user", "content": "I drive a red bike"},
    ]
    added = mem0_memory.add(messages, user_id="from-mem0", infer=False, metadata={"source": "upstream"})
    upstream_ids = {r["id"] for r in added["results"]}

    listed = app_api.get("/memories", params={"user_id": "from-mem0"}).json()["results"]
    body = {"query": "peanuts allergy", "user_id": "from-mem0", "threshold": 0}  # both rows, related or not
    found = app_api.post("/search", json=body).json()["results"]

    assert {m["id"] for m in listed} == upstream_ids
    assert {m["metadata"]["source"] for m in listed} == {"upstream"}
    assert found[0]["memory"] == "I am allergic to peanuts"
    assert {m["id"] for m in found} == upstream_ids


def test_rows_written_here_are_read_by_mem0(app_api, mem0_memory):
    body = {
        "messages": [{"role": "user", "content": "My sister lives in Lisbon", "name": "sam"}],
        "user_id": "from-server",
        "metadata": {"source": "fixed"},
        "infer": False,
    }
    [created] = app_api.post("/memories", json=body).json()["results"]

    fetched = mem0_memory.get(created["id"])
    listed = mem0_memory.get_all(filters={"user_id": "from-server"})["results"]
    found = mem0_memory.search("Lisbon sister", filters={"user_id": "from-server"}, threshold=0.0)["results"]

    assert fetched["memory"] == "My sister lives in Lisbon"
    assert fetched["user_id"] == "from-server" and fetched["actor_id"] == "sam" and fetched["role"] == "user"
    assert fetched["metadata"] == {"source": "fixed"}
    assert [m["id"] for m in listed] == [created["id"]]
    assert found[0]["id"] == created["id"]


def test_history_of_a_memory_the_library_wrote_is_its_add_rebuilt(app_api, mem0_memory):
    [added] = mem0_memory.add("I collect stamps", user_id="history-from-mem0", infer=False)["results"]

    history = app_api.get(f"/memories/{added['id']}/history")

    assert history.status_code == 200, history.text
    [event] = history.json()
    assert event["event"] == "ADD" and event["new_memory"] == "I collect stamps" and event["old_memory"] is None
    assert event["memory_id"] == added["id"]
