"""Relations from the one extraction call (issue 23): normalised to mem0's layout, validated item by item, a bad
relation dropped and counted without costing the write its facts; Cypher-looking text stays a plain value."""

from __future__ import annotations

import json

from app.graph.names import Relation, mentioned_names, node_name, relationship_type
from app.llm.extraction import GRAPH_SCHEMA, Ask, Extraction, build_chat_messages, parse_reply

KNOWN = [Relation("alice", "works_at", "acme")]


def reply(relations: list[object], ended: list[object] | None = None) -> str:
    return json.dumps(
        {"facts": ["Alice works at Globex"], "entities": [], "relations": relations, "ended_relations": ended or []}
    )


def test_names_and_relationships_are_written_as_mem0_writes_them() -> None:
    assert node_name("  New   York ") == "new_york"
    assert relationship_type("Works at") == "works_at"
    assert relationship_type("is-located in") == "is_located_in"
    for hostile in ("works`]->(x) DETACH DELETE n //", "x:Label", "", "1st", "a" * 65, "é_rel"):
        assert relationship_type(hostile) is None, hostile


def test_a_reply_states_relations_and_ends_only_known_ones() -> None:
    extraction = parse_reply(
        reply(
            [{"source": "Alice", "relationship": "Works at", "destination": "Globex"}],
            [
                {"source": "alice", "relationship": "works_at", "destination": "acme"},
                {"source": "bob", "relationship": "works_at", "destination": "acme"},
            ],
        ),
        "m",
        Ask(known=KNOWN),
    )
    assert extraction.relations == [Relation("alice", "works_at", "globex")]
    assert extraction.ended_relations == [Relation("alice", "works_at", "acme")]
    assert [(d.item, d.reason) for d in extraction.dropped] == [("ended_relation", "unknown")]


def test_bad_relations_are_dropped_with_a_reason_and_the_facts_kept() -> None:
    cypher = "x'}) MATCH (n) DETACH DELETE n //"
    extraction = parse_reply(
        reply(
            [
                {"source": "Alice", "relationship": "works`]->(n) DELETE n", "destination": "Acme"},
                {"source": "A" * 10_000, "relationship": "knows", "destination": "Bob"},
                {"source": "&&", "relationship": "knows", "destination": "Bob"},
                {"source": 1, "relationship": "knows", "destination": "Bob"},
                "not an object",
                {"source": cypher, "relationship": "knows", "destination": "Bob"},
            ]
        ),
        "m",
        Ask(known=KNOWN),
    )
    assert extraction.facts == ["Alice works at Globex"]
    reasons = [(d.item, d.reason) for d in extraction.dropped]
    assert reasons == [
        ("relation", "bad_relationship"),
        ("relation", "too_long"),
        ("relation", "no_letters"),
        ("relation", "not_text"),
        ("relation", "not_text"),
    ]
    # Quotes and braces in a name are a plain value (a Cypher parameter later), normalised like any name.
    assert extraction.relations == [Relation(node_name(cypher), "knows", "bob")]


def test_without_the_graph_the_reply_and_prompt_are_as_before() -> None:
    extraction = parse_reply(reply([{"source": "a", "relationship": "b", "destination": "c"}]), "m")
    assert extraction.relations == [] and extraction.dropped == []
    assert "relations" not in build_chat_messages([{"role": "user", "content": "hi"}])[0]["content"]
    assert set(GRAPH_SCHEMA["required"]) == {"facts", "entities", "relations", "ended_relations"}


def test_the_prompt_shows_known_relations_and_a_retry_keeps_the_relations() -> None:
    messages = build_chat_messages([{"role": "user", "content": "Alice left Acme"}], Ask(known=KNOWN))
    assert "Known relations:\nalice -works_at-> acme" in messages[1]["content"]
    stored = Extraction(["f"], [], "m", relations=[Relation("a", "b", "c")], ended_relations=KNOWN)
    assert Extraction.from_json(json.loads(json.dumps(stored.to_json()))) == stored


def test_mentioned_names_cover_multi_word_names() -> None:
    names = mentioned_names("Where does Alice from New York work?")
    assert {"alice", "new_york", "where"} <= set(names) and "york_work" in names
