"""Graph memory through the API (issue 23): relations from the one extraction call, kept in Postgres, projected to
a real Neo4j 5.26 in mem0's layout, read back by search, list and GET /graph, ended by a later write with history
kept, and removed with the memories they came from (a Neo4j outage: test_graph_outage)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.support.graph import (
    infer,
    neo4j_nodes,
    neo4j_relations,
    search_relations,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_relations_from_one_call_reach_postgres_neo4j_search_and_history(graph_api, neo4j_session, standin):
    u1, u2 = f"u1-{uuid.uuid4().hex[:6]}", f"u2-{uuid.uuid4().hex[:6]}"
    standin.reset_stats()

    first = infer(graph_api, u1, "Alice works at Acme. Acme is located in Berlin.")

    assert first["relations"]["added_entities"] == [
        {"source": "alice", "relationship": "works_at", "target": "acme"},
        {"source": "acme", "relationship": "located_in", "target": "berlin"},
    ]
    wait_for(lambda: len(neo4j_relations(neo4j_session, u1)) == 2)
    assert neo4j_relations(neo4j_session, u1) == {
        ("alice", "works_at", "acme", True),
        ("acme", "located_in", "berlin", True),
    }
    assert search_relations(graph_api, u1, "Where does Alice work?") == [("alice", "works_at", "acme")]
    assert search_relations(graph_api, u2, "Where does Alice work?") == []
    listed = graph_api.get("/memories", params={"user_id": u1}).json()["relations"]
    assert {(r["source"], r["relationship"], r["target"]) for r in listed} == {
        ("alice", "works_at", "acme"),
        ("acme", "located_in", "berlin"),
    }
    before_second = datetime.now(UTC).isoformat()

    second = infer(graph_api, u1, "Alice left Acme and now works at Globex.")

    assert [s["op"] for s in standin.stats()["requests"]].count("chat") == 2  # one model call per write
    assert second["relations"] == {
        "added_entities": [{"source": "alice", "relationship": "works_at", "target": "globex"}],
        "deleted_entities": [{"source": "alice", "relationship": "works_at", "target": "acme"}],
    }
    assert search_relations(graph_api, u1, "Where does Alice work?") == [("alice", "works_at", "globex")]
    wait_for(lambda: ("alice", "works_at", "acme", False) in neo4j_relations(neo4j_session, u1))
    graph = graph_api.get("/graph", params={"user_id": u1}).json()
    ended = next(r for r in graph["relations"] if r["destination"] == "acme" and r["source"] == "alice")
    assert ended["valid"] is False and ended["invalidated_at"]
    earlier = graph_api.get("/graph", params={"user_id": u1, "as_of": before_second}).json()["relations"]
    assert ("alice", "works_at", "acme") in {(r["source"], r["relationship"], r["destination"]) for r in earlier}
    assert ("alice", "works_at", "globex") not in {(r["source"], r["relationship"], r["destination"]) for r in earlier}


def test_deletes_take_their_relations_and_nodes(graph_api, neo4j_session):
    user = f"deletes-{uuid.uuid4().hex[:6]}"
    first = infer(graph_api, user, "Carol works at Initech.")
    infer(graph_api, user, "Dave lives in Rome.")
    wait_for(lambda: len(neo4j_relations(neo4j_session, user)) == 2)
    [source] = [m["id"] for m in first["results"]]

    assert graph_api.delete(f"/memories/{source}").status_code == 200

    assert ("carol", "works_at", "initech") not in search_relations(graph_api, user, "Carol Initech")
    wait_for(lambda: neo4j_relations(neo4j_session, user) == {("dave", "lives_in", "rome", True)})

    assert graph_api.delete("/memories", params={"user_id": user}).status_code == 200
    wait_for(lambda: neo4j_nodes(neo4j_session, user) == 0)
    assert graph_api.get("/graph", params={"user_id": user}).json() == {"entities": [], "relations": []}


def test_enable_graph_as_mem0s_clients_send_it(graph_api):
    user = f"flags-{uuid.uuid4().hex[:6]}"
    body = {"messages": [{"role": "user", "content": "Erin plays at Wimbledon."}], "user_id": user}
    hosted = graph_api.post("/v3/memories/add/", json={**body, "enable_graph": True, "async_mode": False})
    assert hosted.status_code == 200 and hosted.json()["relations"]["added_entities"]
    search = {"query": "Erin", "filters": {"AND": [{"user_id": user}]}, "enable_graph": False}
    assert "relations" not in graph_api.post("/v3/memories/search/", json=search).json()
    listed = graph_api.post("/v3/memories/", json={"filters": {"user_id": user}, "enable_graph": True}).json()
    assert listed["relations"] == [{"source": "erin", "relationship": "plays_at", "target": "wimbledon"}]
