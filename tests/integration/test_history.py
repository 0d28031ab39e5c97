"""A memory's history lists its events in the order they happened."""

from __future__ import annotations


def test_history_lists_add_update_and_delete_in_order(app_api):
    added = app_api.post(
        "/memories",
        json={"messages": [{"role": "user", "content": "I live in Porto"}], "user_id": "hist-user", "infer": False},
    ).json()["results"]
    memory_id = added[0]["id"]
    for city in ("Lisbon", "Faro", "Braga"):
        assert app_api.put(f"/memories/{memory_id}", json={"text": f"I live in {city}"}).status_code == 200
    assert app_api.delete(f"/memories/{memory_id}").status_code == 200

    history = app_api.get(f"/memories/{memory_id}/history").json()

    assert [h["event"] for h in history] == ["ADD", "UPDATE", "UPDATE", "UPDATE", "DELETE"]
    assert [h["new_memory"] for h in history] == [
        "I live in Porto",
        "I live in Lisbon",
        "I live in Faro",
        "I live in Braga",
        None,
    ]
