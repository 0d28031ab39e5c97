"""What Neo4j must show for a scope (app/graph/projection/layout.py) and how checked text reaches Cypher."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.graph.projection.graph_store import node_label, relationship_type, scope_predicate, statement
from app.graph.projection.layout import MAX_NAME_BYTES, ProjectedNode, ProjectedRelationship, ScopeGraph
from app.graph.repository import StoredRelation, TypedRelation

SCOPE = {"user_id": "alice"}
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATE = datetime(2026, 2, 1, tzinfo=UTC)


def stored(source, relationship, destination, *, ended=None, mentions=1, types=("person", "place")):
    relation = TypedRelation(source, types[0], relationship, destination, types[1])
    return StoredRelation(relation, EARLY, ended, mentions, dict(SCOPE))


def test_one_node_per_name_and_one_relationship_per_triple():
    graph = ScopeGraph.of(
        [
            stored("alice", "lives_in", "paris", mentions=2),
            stored("alice", "works_at", "acme", types=("person", "organization")),
        ]
    )

    assert graph.nodes == [
        ProjectedNode("alice", "person", 3),
        ProjectedNode("paris", "place", 2),
        ProjectedNode("acme", "organization", 1),
    ]
    assert graph.relationships == [
        ProjectedRelationship("alice", "lives_in", "paris", True, None, 2),
        ProjectedRelationship("alice", "works_at", "acme", True, None, 1),
    ]
    assert graph.dropped == 0


def test_an_ended_relation_stays_invalid_and_a_restated_one_is_valid():
    ended = ScopeGraph.of(
        [stored("alice", "lives_in", "paris", ended=EARLY), stored("alice", "lives_in", "paris", ended=LATE)]
    )
    restated = ScopeGraph.of([stored("alice", "lives_in", "paris", ended=LATE), stored("alice", "lives_in", "paris")])

    assert ended.relationships == [ProjectedRelationship("alice", "lives_in", "paris", False, LATE, 2)]
    assert restated.relationships == [ProjectedRelationship("alice", "lives_in", "paris", True, None, 2)]


def test_a_known_type_is_not_replaced_by_the_generic_one_and_an_unknown_type_is_generic():
    graph = ScopeGraph.of(
        [
            stored("alice", "knows", "bob", types=("person", "person")),
            stored("bob", "likes", "jazz", types=("entity", "Robot`) DETACH DELETE n")),
        ]
    )

    assert {node.name: node.type for node in graph.nodes} == {"alice": "person", "bob": "person", "jazz": "entity"}


def test_a_relation_neo4j_cannot_take_is_dropped_with_its_nodes():
    graph = ScopeGraph.of(
        [
            stored("alice", "x`]->() DETACH DELETE n //", "paris"),
            stored("alice", "visited", "ü" * (MAX_NAME_BYTES // 2 + 1)),  # two bytes each
            stored("alice", "visited", "x" * MAX_NAME_BYTES),
        ]
    )

    assert [(r.type, len(r.destination)) for r in graph.relationships] == [("visited", MAX_NAME_BYTES)]
    assert [node.name for node in graph.nodes] == ["alice", "x" * MAX_NAME_BYTES]
    assert graph.dropped == 2


def test_the_scope_predicate_compares_all_three_identifiers_as_parameters():
    assert scope_predicate("n", {"user_id": "u1"}) == "n.user_id = $user_id AND n.agent_id IS NULL AND n.run_id IS NULL"
    assert scope_predicate("s", {"agent_id": "a", "run_id": "r"}) == (
        "s.user_id IS NULL AND s.agent_id = $agent_id AND s.run_id = $run_id"
    )


def test_only_a_checked_label_or_relationship_type_is_written_into_a_statement():
    text = statement("set_nodes", SCOPE, label=node_label("person"))

    assert "SET n:`person`" in text
    assert "REMOVE n:`person`:`place`:`organization`:`product`:`entity`" in text
    assert "alice" not in text
    assert "MERGE (source)-[r:`works_at`]->" in statement(
        "merge_relationships", SCOPE, type_=relationship_type("works_at")
    )
    for bad in ("Works At", "x`]->(n) DETACH DELETE n //", "a" * 65):
        with pytest.raises(ValueError):
            relationship_type(bad)
    with pytest.raises(ValueError):
        node_label("Person`) DETACH DELETE n //")
