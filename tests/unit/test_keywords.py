"""The hybrid ranking in app/memories/keywords.py against mem0 2.2.1's own functions (spaCy absent, as here)."""

from __future__ import annotations

import pytest

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from app.memories.keywords import (
    bm25_params,
    candidate_limit,
    lemmatize_for_bm25,
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


def test_candidates_are_over_fetched_as_mem0():
    assert [candidate_limit(k) for k in (1, 10, 15, 16, 100)] == [60, 60, 60, 64, 400]
