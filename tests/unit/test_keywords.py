"""The hybrid ranking in app/memories/keywords.py against mem0 2.2.1's own functions (spaCy absent, as here)."""

from __future__ import annotations

import random

import pytest

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from app.memories.keywords import (
    Candidate,
    bm25_params,
    candidate_limit,
    lemmatize_for_bm25,
    normalize_bm25,
    score_and_rank,
)


def test_lemmatization_without_spacy_is_mem0s():
    from mem0.utils.lemmatization import lemmatize_for_bm25 as upstream

    for text in ["Alice moved to Lisbon", "  The MEETINGS were attended!  ", "passport 48213977", ""]:
        assert lemmatize_for_bm25(text) == upstream(text)


@pytest.mark.parametrize("words", [0, 1, 3, 4, 6, 7, 9, 10, 15, 16, 40])
def test_sigmoid_parameters_follow_query_length_as_mem0s(words):
    from mem0.utils.scoring import get_bm25_params

    query = " ".join(f"w{i}" for i in range(words))

    assert bm25_params(query) == get_bm25_params(query, lemmatized=query)
    for raw in (0.0, 0.1, 0.35, 2.0, 5.0, 12.5):
        from mem0.utils.scoring import normalize_bm25 as upstream_normalize

        assert normalize_bm25(raw, *bm25_params(query)) == upstream_normalize(raw, *bm25_params(query))


def test_candidates_are_over_fetched_as_mem0():
    assert [candidate_limit(k) for k in (1, 10, 15, 16, 100)] == [60, 60, 60, 64, 400]


@pytest.mark.parametrize("seed", range(20))
def test_score_and_rank_matches_mem0s(seed):
    from mem0.utils.scoring import get_bm25_params
    from mem0.utils.scoring import normalize_bm25 as upstream_normalize
    from mem0.utils.scoring import score_and_rank as upstream

    rng = random.Random(seed)
    query = " ".join(rng.choice(["tea", "Lisbon", "42", "sister", "cello"]) for _ in range(rng.randint(1, 8)))
    candidates = [
        Candidate(
            f"id-{i}",
            {"data": f"memory {i}"} if rng.random() > 0.05 else {},
            round(rng.random(), 2),  # ties on purpose: both sorts are stable
            rng.choice([None, 0.0, 0.1, 0.2, 0.35, 1.5]),
        )
        for i in range(rng.randint(0, 80))
    ]
    any_hit = any(c.keyword_rank for c in candidates) or rng.random() < 0.3
    threshold = rng.choice([0.0, 0.1, 0.5])
    top_k = rng.randint(1, 30)

    mine = score_and_rank(candidates, query, any_keyword_hit=any_hit, threshold=threshold, top_k=top_k)

    midpoint, steepness = get_bm25_params(query, lemmatized=query)
    bm25 = {c.id: upstream_normalize(c.keyword_rank, midpoint, steepness) for c in candidates if c.keyword_rank}
    if any_hit and not bm25:
        bm25 = {"a-keyword-hit-outside-the-candidates": 0.4}
    theirs = upstream(
        [{"id": c.id, "score": c.semantic, "payload": c.payload} for c in candidates],
        bm25,
        {},
        threshold,
        top_k,
        explain=True,
    )
    theirs = [r for r in theirs if r["payload"].get("data")]  # mem0's search drops rows without text after the cut
    assert [(r.id, r.score, r.details) for r in mine] == [(r["id"], r["score"], r["score_details"]) for r in theirs]
