"""mem0 2.2.1's hybrid ranking (`mem0/utils/scoring.py`, `Memory._search_vector_store`), reproduced exactly so a
search here ranks and scores as upstream mem0 does over the same table; tests/unit/test_keywords.py compares these
functions with mem0's own.

The keyword signal is Postgres full-text search over `payload ->> 'text_lemmatized'` ('simple' configuration,
`plainto_tsquery`, `ts_rank_cd`: what mem0's pgvector store runs), squashed into [0, 1] by a sigmoid whose
midpoint and steepness depend on the query's length, and added to the semantic score (1 - cosine distance); the
sum, plus the entity boost of memories linked to entities the query names, is divided by the largest it could be.
Only semantic candidates are ranked: keyword hits and entities lift them, they do not add results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_THRESHOLD = 0.1  # mem0's default: gates the semantic score before anything is combined
ENTITY_BOOST_WEIGHT = 0.5
MIN_CANDIDATES = 60  # mem0 over-fetches max(4 * top_k, 60) semantic and keyword candidates


def lemmatize_for_bm25(text: str) -> str:
    """What mem0 stores as `text_lemmatized` and searches with. mem0 lemmatises with spaCy's `en_core_web_sm` when
    both are installed and returns the text unchanged otherwise; this server downloads no model, so it is the
    second case, byte for byte (the 'simple' text-search configuration lowercases at index and query time)."""
    return text


def candidate_limit(top_k: int) -> int:
    return max(top_k * 4, MIN_CANDIDATES)


def bm25_params(lemmatized_query: str) -> tuple[float, float]:
    """mem0's get_bm25_params: longer queries score higher raw ranks, so the sigmoid moves right and flattens."""
    terms = len(lemmatized_query.split()) if lemmatized_query else 1
    if terms <= 3:
        return 5.0, 0.7
    if terms <= 6:
        return 7.0, 0.6
    if terms <= 9:
        return 9.0, 0.5
    if terms <= 15:
        return 10.0, 0.5
    return 12.0, 0.5


@dataclass(frozen=True)
class Ranked:
    id: str
    payload: dict[str, Any]
    score: float
    details: dict[str, float]


@dataclass(frozen=True)
class ScoredRow:
    """A candidate as the search query returns it: gated by the threshold, in mem0's order, cut to top_k."""

    id: str
    payload: dict[str, Any] | None
    semantic: float
    bm25: float
    entity: float


def search_params(query: str, *, threshold: float, top_k: int) -> dict[str, Any]:
    """The ranking's parameters for the search query (app/memories/queries.sql)."""
    midpoint, steepness = bm25_params(lemmatize_for_bm25(query))
    return {
        "keywords": lemmatize_for_bm25(query),
        "query": query,
        "entity_weight": ENTITY_BOOST_WEIGHT,
        "midpoint": midpoint,
        "steepness": steepness,
        "threshold": threshold,
        "top_k": top_k,
        "limit": candidate_limit(top_k),
    }


def finish(
    rows: list[ScoredRow], *, any_keyword_hit: bool, any_entity: bool, threshold: float, top_k: int
) -> list[Ranked]:
    """The end of mem0's score_and_rank and search for rows Postgres ranked and cut to top_k: the scores and
    their details, and rows without text dropped (mem0 drops them after the cut, so they cost a place). Expired
    rows never reach here: the scope's WHERE leaves them out unless show_expired."""
    max_possible = 1.0 + (1.0 if any_keyword_hit else 0.0) + (ENTITY_BOOST_WEIGHT if any_entity else 0.0)
    kept: list[Ranked] = []
    for row in rows[:top_k]:
        payload = row.payload or {}
        raw = row.semantic + row.bm25 + row.entity
        score = min(raw / max_possible, 1.0)
        details = {
            "semantic_score": row.semantic,
            "bm25_score": row.bm25,
            "entity_boost": row.entity,
            "raw_score": raw,
            "max_possible_score": max_possible,
            "final_score": score,
            "threshold": threshold,
        }
        kept.append(Ranked(row.id, payload, score, details))
    return [r for r in kept if r.payload.get("data")]
