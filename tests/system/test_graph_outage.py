"""Graph memory through a Neo4j outage (issue 23): inferred writes still succeed and are searchable, /ready says the
graph is degraded and stays 200, and once Neo4j is back the graph catches up without a restart."""

from __future__ import annotations

import uuid

from tests.support.graph import (
    infer,
    neo4j_relations,
    search_relations,
    wait_for,
)


def test_with_neo4j_stopped_writes_succeed_and_the_graph_catches_up(graph_api, neo4j_server):
    user = f"outage-{uuid.uuid4().hex[:6]}"
    neo4j_server.stop()
    try:
        wait_for(lambda: graph_api.get("/ready").json()["graph"] == "degraded")
        written = infer(graph_api, user, "Bob lives in Paris.")
        assert written["relations"]["added_entities"] == [
            {"source": "bob", "relationship": "lives_in", "target": "paris"}
        ]
        assert graph_api.get("/ready").status_code == 200
        assert search_relations(graph_api, user, "Where does Bob live?") == [("bob", "lives_in", "paris")]
    finally:
        neo4j_server.start()
    wait_for(lambda: neo4j_relations(neo4j_server, user) == {("bob", "lives_in", "paris", True)})
    wait_for(lambda: graph_api.get("/ready").json()["graph"] == "ok")
