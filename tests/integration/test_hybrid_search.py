"""Hybrid search (semantic + keyword, mem0 2.2.1's formula) through the in-process app, with upstream mem0 as the oracle:
mem0.Memory reads the same table through its own pgvector store and embeds with the same Ollama stand-in (no spaCy,
as here), and both must rank and score alike."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from importlib import resources

import psycopg
import pytest

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from app.db.migrator import migrate

NAMES = ["Alice", "Bruno", "Chen", "Dagny", "Emeka", "Farah", "Goran", "Hiroko", "Ines", "Jakub"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Osaka", "Quito", "Tbilisi", "Reykjavik", "Perth"]
RARE = ["zygomorphic", "quokka", "sphygmomanometer", "defenestration", "kumquat", "ouzo", "tessellation", "yurt"]
THINGS = ["tea", "coffee", "the cello", "chess", "running", "sushi", "jazz", "gardening", "painting", "hiking"]
TEMPLATES = [
    "{name} lives in {city} and likes {thing}",
    "My order number is {number}",
    "{name} gave me a {rare} for my birthday",
    "I met {name} in {city} in {year}",
    "The code for the {rare} locker is {number}",
    "I prefer {thing} over {thing2}",
    "{name} works at a {rare} shop in {city}",
    "Flight {number} to {city} leaves at {hour} o'clock",
    "I have been learning {thing} since {year}",
    "Remember that {name} is allergic to {thing}",
]
USERS = 6
PER_USER = 50


def _corpus(rng: random.Random) -> dict[str, list[str]]:
    corpus: dict[str, list[str]] = {}
    for u in range(USERS):
        texts: list[str] = []
        while len(texts) < PER_USER:
            text = rng.choice(TEMPLATES).format(
                name=rng.choice(NAMES),
                city=rng.choice(CITIES),
                rare=rng.choice(RARE),
                thing=rng.choice(THINGS),
                thing2=rng.choice(THINGS),
                number=rng.randint(1000, 99999),
                year=rng.randint(1990, 2025),
                hour=rng.randint(1, 12),
            )
            if text not in texts:  # equal texts embed equally, and ties have no defined order in either
                texts.append(text)
        corpus[f"oracle-{u}"] = texts
    return corpus


def _queries(rng: random.Random, corpus: dict[str, list[str]]) -> list[tuple[str, str]]:
    queries = []
    for user, texts in corpus.items():
        numbers = [word for text in texts for word in text.split() if word.isdigit()]
        for _ in range(4):
            queries.append((user, rng.choice(NAMES + CITIES + RARE + THINGS)))  # one word
        for _ in range(2):
            queries.append((user, rng.choice(numbers)))  # a number only one memory holds
        for _ in range(2):
            words = rng.choice(texts).split()
            start = rng.randrange(len(words))
            queries.append((user, " ".join(words[start : start + rng.randint(2, 4)])))  # words in one memory
        queries.append((user, f"what does {rng.choice(NAMES)} do in {rng.choice(CITIES)}"))  # no full-text hit
        queries.append((user, rng.choice(texts)))  # a whole memory
    return queries


def _write(app_api, user: str, texts: list[str]) -> list[str]:
    body = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": user, "infer": False}
    response = app_api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def _compare_with_mem0(app_api, mem0_memory, user: str, query: str) -> tuple[list[dict], list[tuple]]:
    """Our top 10 for the query, and the difference from mem0's (none when both list the same ids in the same
    order, and then every score and score detail must agree within 1e-6)."""
    response = app_api.post("/search", json={"query": query, "user_id": user, "top_k": 10, "explain": True})
    assert response.status_code == 200, response.text
    ours = response.json()["results"]
    theirs = mem0_memory.search(query, filters={"user_id": user}, top_k=10, explain=True)["results"]
    if [r["id"] for r in ours] != [r["id"] for r in theirs]:
        return ours, [(user, query, [r["memory"] for r in ours], [r["memory"] for r in theirs])]
    for mine, upstream in zip(ours, theirs, strict=True):
        assert mine["score"] == pytest.approx(upstream["score"], abs=1e-6), (query, mine, upstream)
        for key, value in upstream["score_details"].items():
            assert mine["score_details"][key] == pytest.approx(value, abs=1e-6), (query, key, mine, upstream)
    return ours, []


def test_rows_carry_text_lemmatized_as_mem0_writes_it(app_api, module_db):
    user = f"lem-{uuid.uuid4().hex}"
    [memory_id] = _write(app_api, user, ["The MEETINGS were attended, twice!"])
    app_api.put(f"/memories/{memory_id}", json={"text": "Alice moved to Lisbon"}).raise_for_status()
    with psycopg.connect(module_db) as conn:
        [(payload,)] = conn.execute("SELECT payload FROM memories WHERE id = %s", (uuid.UUID(memory_id),)).fetchall()
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'memories'")}

    assert payload["text_lemmatized"] == "Alice moved to Lisbon" == payload["data"]
    assert "memories_text_lemmatized_idx" in indexes
    listed = app_api.get("/memories", params={"user_id": user}).json()["results"]
    assert listed[0]["metadata"] is None  # a stored key, not user metadata


def test_rankings_and_scores_match_upstream_mem0(app_api, mem0_memory):
    rng = random.Random(16)
    corpus = _corpus(rng)
    for user, texts in corpus.items():
        _write(app_api, user, texts)
    queries = _queries(rng, corpus)
    assert len(queries) == USERS * 10

    differences = []
    keyword_queries = 0
    for user, query in queries:
        ours, difference = _compare_with_mem0(app_api, mem0_memory, user, query)
        keyword_queries += any(r["score_details"]["bm25_score"] > 0 for r in ours)
        differences += difference

    print(f"oracle: {len(queries)} queries, {keyword_queries} with a keyword hit, differences: {differences}")
    assert keyword_queries >= len(queries) // 3, "the corpus should exercise the keyword signal"
    assert len(differences) <= len(queries) * 0.05, differences


def test_a_number_the_embedding_ranks_low_comes_first_on_its_keyword_score(app_api):
    user = f"rare-{uuid.uuid4().hex}"
    # Shorter memories share the query's common words and sit a little closer to it than the one holding the
    # number (the stand-in embeds a bag of words, so more words dilute a text's vector): the embedding ranks the
    # number's memory fifth; its keyword hit must lift it to the top.
    target = "Dagny wrote down my passport number 48213977"
    near = ["lost passport number", "expired passport number", "my passport number", "renewed passport number"]
    _write(app_api, user, [*near, target, "I like tea"])
    query = "passport number 48213977"

    found = app_api.post("/search", json={"query": query, "user_id": user, "explain": True}).json()["results"]

    by_semantic = sorted(found, key=lambda r: r["score_details"]["semantic_score"], reverse=True)
    assert [r["memory"] for r in by_semantic].index(target) == 4, by_semantic
    assert found[0]["memory"] == target, found
    details = found[0]["score_details"]
    assert details["bm25_score"] > 0 and details["max_possible_score"] == 2.0
    assert (
        details["final_score"]
        == found[0]["score"]
        == pytest.approx((details["semantic_score"] + details["bm25_score"]) / 2)
    )
    assert all(r["score_details"]["bm25_score"] == 0 for r in found[1:])


@pytest.mark.slow  # no process, but lemmatizing 12,345 rows takes ~10 s: `make test` runs it
async def test_the_migration_fills_text_lemmatized_of_rows_stored_before_it(fresh_db, tmp_path):
    older = tmp_path / "before-0010"
    source = resources.files("app.migrations")
    shutil.copytree(str(source), older, ignore=shutil.ignore_patterns("*.py", "__pycache__", "001[0-9]_*", "00[2-9]*"))
    await migrate(fresh_db, collection="memories", dims=3, directory=older)
    rows = 12_345  # more than two batches of 5,000
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "INSERT INTO memories (id, vector, payload) SELECT gen_random_uuid(), '[1,0,0]', "
            "jsonb_build_object('data', 'memory ' || n, 'user_id', 'old') FROM generate_series(1, %s) AS n",
            (rows,),
        )
        conn.execute(
            "INSERT INTO memories (id, vector, payload) VALUES (gen_random_uuid(), '[0,1,0]', %s), "
            "(gen_random_uuid(), '[0,0,1]', %s)",
            (json.dumps({"data": "Lisbon", "text_lemmatized": "lisbon"}), json.dumps({"user_id": "no text"})),
        )

    applied = await migrate(fresh_db, collection="memories", dims=3)

    assert 10 in applied
    with psycopg.connect(fresh_db) as conn:
        filled = conn.execute(
            "SELECT count(*) FROM memories WHERE payload ->> 'text_lemmatized' = payload ->> 'data'"
        ).fetchone()
        kept = conn.execute("SELECT payload FROM memories WHERE payload ->> 'data' = 'Lisbon'").fetchone()
        untouched = conn.execute("SELECT payload FROM memories WHERE payload ->> 'user_id' = 'no text'").fetchone()
        found = conn.execute(
            "SELECT count(*) FROM memories "
            "WHERE to_tsvector('simple', payload ->> 'text_lemmatized') @@ plainto_tsquery('simple', 'memory 4242')"
        ).fetchone()
    assert filled == (rows,)
    assert kept == ({"data": "Lisbon", "text_lemmatized": "lisbon"},)  # a stored lemmatisation is kept
    assert untouched == ({"user_id": "no text"},)
    assert found == (1,)


def test_entity_boosted_rankings_match_upstream_mem0_given_the_same_query_entities(app_api, mem0_memory, monkeypatch):
    """Inferred writes link entities (the stand-in names each capitalised run of words); mem0 finds a query's
    entities with spaCy, which is not installed, so its NER is given what this server detects: the scope's entities
    the query names. From there mem0 does its own part (embeds them, searches its entity collection, boosts,
    divides by 2.5) over the rows this server wrote, and both must rank and score alike."""
    rng = random.Random(25)
    corpus = {f"entity-{user}": texts for user, texts in list(_corpus(rng).items())[:3]}
    for user, texts in corpus.items():
        body = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": user, "infer": True}
        response = app_api.post("/memories", json=body)
        assert response.status_code == 200 and len(response.json()["results"]) == PER_USER, response.text
    names = {
        user: [e["name"] for e in app_api.get("/named-entities", params={"user_id": user}).json()["results"]]
        for user in corpus
    }
    assert all(len(found) >= 10 for found in names.values()), names

    def named_in(query: str, user: str) -> list[tuple[str, str]]:
        words = f" {' '.join(query.lower().split())} "
        return [("PROPER", name) for name in names[user] if f" {name.lower()} " in words]

    queries = _queries(rng, corpus)
    differences, boosted = [], 0
    for user, query in queries:
        monkeypatch.setattr("mem0.memory.main.extract_entities", lambda text, user=user: named_in(text, user))
        ours, difference = _compare_with_mem0(app_api, mem0_memory, user, query)
        boosted += any(r["score_details"]["entity_boost"] > 0 for r in ours)
        differences += difference

    print(f"entity oracle: {len(queries)} queries, {boosted} boosted, differences: {differences}")
    assert boosted >= len(queries) // 3, "the queries should exercise the entity boost"
    assert len(differences) <= len(queries) * 0.05, differences
