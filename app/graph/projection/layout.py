"""What Neo4j must show for one scope, in mem0's layout, computed from the scope's relations in Postgres.

mem0 keeps one node per (name, scope) and one relationship per (source, type, destination); Postgres keeps a row
per stated relation, so an ended relation and its restatement are two rows that become one relationship here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.graph.names import NODE_TYPES, RELATIONSHIP_TYPE
from app.graph.repository import StoredRelation

logger = logging.getLogger(__name__)
GENERIC_NODE_TYPE = "entity"  # names.NODE_TYPES' type for an entity named in a relation only
# Neo4j's TEXT index (graph.cypher) refuses a longer value, which would fail the scope's projection at every retry.
MAX_NAME_BYTES = 32_766


@dataclass(frozen=True)
class ProjectedNode:
    name: str
    type: str  # one of names.NODE_TYPES: written into a query as a label
    mentions: int


@dataclass(frozen=True)
class ProjectedRelationship:
    source: str
    type: str  # fullmatches names.RELATIONSHIP_TYPE: written into a query as a relationship type
    destination: str
    valid: bool
    invalidated_at: datetime | None
    mentions: int


@dataclass(frozen=True)
class ScopeGraph:
    nodes: list[ProjectedNode]
    relationships: list[ProjectedRelationship]
    dropped: int  # relations left out: a relationship that is not a plain identifier, or a name Neo4j cannot index

    @classmethod
    def of(cls, relations: Sequence[StoredRelation]) -> ScopeGraph:
        """`relations` in the order they were stored (scope_relations orders by id): a later type wins."""
        kept: list[StoredRelation] = []
        for stored in relations:
            relation = stored.relation
            if not RELATIONSHIP_TYPE.fullmatch(relation.relationship):
                logger.warning("graph relation left out of Neo4j: its relationship is not a plain identifier")
            elif max(len(relation.source.encode()), len(relation.destination.encode())) > MAX_NAME_BYTES:
                logger.warning("graph relation left out of Neo4j: a name is longer than %d bytes", MAX_NAME_BYTES)
            else:
                kept.append(stored)
        return cls(_nodes(kept), _relationships(kept), len(relations) - len(kept))

    def nodes_by_type(self) -> dict[str, list[ProjectedNode]]:
        grouped: dict[str, list[ProjectedNode]] = {}
        for node in self.nodes:
            grouped.setdefault(node.type, []).append(node)
        return grouped

    def relationships_by_type(self) -> dict[str, list[ProjectedRelationship]]:
        grouped: dict[str, list[ProjectedRelationship]] = {}
        for relationship in self.relationships:
            grouped.setdefault(relationship.type, []).append(relationship)
        return grouped


def _node_type(stated: str) -> str:
    """A type outside the fixed set (a row written by something else) is shown as the generic one, never as a
    label of its own: labels cannot be query parameters."""
    return stated if stated in NODE_TYPES else GENERIC_NODE_TYPE


def _relationships(relations: Sequence[StoredRelation]) -> list[ProjectedRelationship]:
    """Rows of one (source, type, destination) merge: valid when any of them is (an ended relation restated),
    else ended at the latest end; the mentions of all of them add up."""
    merged: dict[tuple[str, str, str], ProjectedRelationship] = {}
    for stored in relations:
        relation = stored.relation
        key = (relation.source, relation.relationship, relation.destination)
        row = ProjectedRelationship(
            relation.source,
            relation.relationship,
            relation.destination,
            stored.invalidated_at is None,
            stored.invalidated_at,
            stored.mentions,
        )
        if (seen := merged.get(key)) is not None:
            valid = seen.valid or row.valid
            ends = [end for end in (seen.invalidated_at, row.invalidated_at) if end is not None]
            row = ProjectedRelationship(*key, valid, None if valid else max(ends), seen.mentions + row.mentions)
        merged[key] = row
    return list(merged.values())


def _nodes(relations: Sequence[StoredRelation]) -> list[ProjectedNode]:
    """A node per name at either end; its type is the latest specific one stated (a generic `entity` does not
    replace a known `person`), its mentions those of the relations it is in."""
    types: dict[str, str] = {}
    mentions: dict[str, int] = {}
    for stored in relations:
        relation = stored.relation
        ends = {relation.source: relation.source_type, relation.destination: relation.destination_type}
        for name, stated in ends.items():
            node_type = _node_type(stated)
            if node_type != GENERIC_NODE_TYPE or name not in types:
                types[name] = node_type
            mentions[name] = mentions.get(name, 0) + stored.mentions
    return [ProjectedNode(name, types[name], mentions[name]) for name in types]
