"""How entity names and relationship types are written in the graph (mem0's layout), and which known names a text
mentions. A relationship type is the one value that cannot be a Cypher parameter: it is written into a query only
after RELATIONSHIP_TYPE has matched it whole."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME_CHARS = 200
MAX_RELATIONSHIP_CHARS = 64
RELATIONSHIP_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
NODE_TYPES = ("person", "place", "organization", "product", "entity")  # entity: named in a relation only
MAX_MENTION_WORDS = 4
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SEPARATORS = re.compile(r"[\s_]+")


@dataclass(frozen=True)
class Relation:
    """mem0's relation: `source -relationship-> destination`, node names normalised, the type validated."""

    source: str
    relationship: str
    destination: str

    def line(self) -> str:
        return f"{self.source} -{self.relationship}-> {self.destination}"


def node_name(name: str) -> str:
    """mem0's node name: lowercased, each run of spaces one underscore."""
    return _SEPARATORS.sub("_", name.strip().lower())


def relationship_type(text: str) -> str | None:
    """`Works at` -> `works_at`; None when what is left is not a plain identifier."""
    candidate = re.sub(r"[\s\-]+", "_", text.strip().lower())
    return candidate if RELATIONSHIP_TYPE.fullmatch(candidate) else None


def mentioned_names(text: str) -> list[str]:
    """Every run of up to MAX_MENTION_WORDS words of `text` as a node name: the names it could mention."""
    words = [word.lower() for word in _WORD.findall(text)]
    names = {
        "_".join(words[start : start + length])
        for length in range(1, MAX_MENTION_WORDS + 1)
        for start in range(len(words) - length + 1)
    }
    return sorted(names)
