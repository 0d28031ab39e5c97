"""A corpus of hostile requests against the app (in-process, `app_api`): each is a 4xx JSON error, Ollama is not called, and the
memories, history, jobs and idempotency tables are exactly as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.logs import LogLines, captured_logs
from tests.support.postgres import count_rows

# In-process, but the corpus (10 MB bodies, 100,000-level nesting) takes tens of seconds: `make test` runs it.
pytestmark = pytest.mark.slow

TABLES = ("memories", "memory_history", "jobs", "idempotency_keys")
TEN_MB = 10 * 1000 * 1000
JSON = {"content-type": "application/json"}
SURROGATE = "\\ud83d"  # as JSON escapes it: half of an emoji


def body(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hello"}], "user_id": "hostile", "infer": False, **fields}


def raw(template: str) -> bytes:
    """A JSON body spelled by hand, for what json.dumps will not write (lone surrogates, NaN, repeated keys)."""
    return template.encode("utf-8")


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def nested_raw(levels: int) -> bytes:
    return b'{"k":' * levels + b"1" + b"}" * levels


MESSAGE = '{"role":"user","content":"hello"}'

WRITES: dict[str, bytes | dict[str, Any]] = {
    "NUL in content": body(messages=[{"role": "user", "content": "a\x00b"}]),
    "NUL in a metadata key": body(metadata={"k\x00": 1}),
    "NUL deep in metadata": body(metadata={"a": [{"b": "x\x00"}]}),
    "NUL in user_id": body(user_id="u\x00"),
    "NUL in a speaker name": body(messages=[{"role": "user", "content": "hi", "name": "n\x00"}]),
    "NUL in idempotency_key": body(idempotency_key="k\x00"),
    "NUL in an unknown field": body(extra="x\x00"),
    "lone surrogate in content": raw(f'{{"messages":[{{"role":"user","content":"a {SURROGATE} b"}}],"user_id":"u"}}'),
    "lone surrogate, infer true": raw(
        f'{{"messages":[{{"role":"user","content":"{SURROGATE}"}}],"user_id":"u","infer":true}}'
    ),
    "lone surrogate in a metadata key": raw(f'{{"messages":[{MESSAGE}],"user_id":"u","metadata":{{"{SURROGATE}":1}}}}'),
    "lone surrogate in user_id": raw(f'{{"messages":[{MESSAGE}],"user_id":"{SURROGATE}","infer":false}}'),
    "low surrogate alone": raw('{"messages":[{"role":"user","content":"\\udc00"}],"user_id":"u"}'),
    "invalid UTF-8": b'{"messages":[{"role":"user","content":"caf\xe9"}],"user_id":"u","infer":false}',
    "overlong UTF-8": b'{"messages":[{"role":"user","content":"\xc0\xaf"}],"user_id":"u","infer":false}',
    "UTF-16 body": json.dumps(body()).encode("utf-16"),
    "10 MB content": body(messages=[{"role": "user", "content": "x" * TEN_MB}]),
    "10 MB content, infer true": body(messages=[{"role": "user", "content": "x" * TEN_MB}], infer=True),
    "10 MB user_id": body(user_id="u" * TEN_MB),
    "10 MB metadata": body(metadata={"blob": "m" * TEN_MB}),
    "metadata 33 levels deep": body(metadata=nested(33)),
    "metadata 500 levels deep": body(metadata=nested(500)),
    "body 100,000 levels deep": b'{"messages":['
    + MESSAGE.encode()
    + b'],"user_id":"u","metadata":'
    + nested_raw(100_000)
    + b"}",
    "repeated user_id": raw(f'{{"messages":[{MESSAGE}],"user_id":"a","user_id":"b","infer":false}}'),
    "repeated content": raw('{"messages":[{"role":"user","content":"a","content":"b"}],"user_id":"u"}'),
    "NaN in metadata": raw(f'{{"messages":[{MESSAGE}],"user_id":"u","metadata":{{"score":NaN}},"infer":false}}'),
    "Infinity in metadata": raw(f'{{"messages":[{MESSAGE}],"user_id":"u","metadata":{{"x":-Infinity}}}}'),
    "5,000-digit number": raw(f'{{"messages":[{MESSAGE}],"user_id":"u","metadata":{{"n":{"9" * 5000}}}}}'),
    "10,000 messages": body(messages=[{"role": "user", "content": f"m{i}"} for i in range(10_000)]),
    "metadata copied 50 times": body(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(50)], metadata={"blob": "b" * 60_000}
    ),
    "12 MB body": body(messages=[{"role": "user", "content": "x" * (12 * 1024 * 1024)}]),
    "JSON sent as text/plain": b"text/plain:" + json.dumps(body()).encode(),
}

SEARCHES: dict[str, bytes | dict[str, Any]] = {
    "NUL in query": {"query": "a\x00", "user_id": "u"},
    "NUL in a filter key": {"query": "q", "user_id": "u", "filters": {"k\x00": "v"}},
    "NUL in a filter value": {"query": "q", "user_id": "u", "filters": {"k": {"in": ["v\x00"]}}},
    "lone surrogate in query": raw(f'{{"query":"{SURROGATE}","user_id":"u"}}'),
    "lone surrogate in filters": raw(f'{{"query":"q","user_id":"u","filters":{{"k":"{SURROGATE}"}}}}'),
    "10 MB query": {"query": "q" * TEN_MB, "user_id": "u"},
    "2 MB filters": {"query": "q", "user_id": "u", "filters": {"topic": {"in": ["t" * 1000] * 2000}}},
    "filters 40 levels deep": {"query": "q", "user_id": "u", "filters": nested(40)},
    "repeated query": raw('{"query":"a","query":"b","user_id":"u"}'),
    "NaN in filters": raw('{"query":"q","user_id":"u","filters":{"score":{"gt":NaN}}}'),
    "top_k of 10**30": {"query": "q", "user_id": "u", "top_k": 10**30},
    "invalid UTF-8": b'{"query":"\xff","user_id":"u"}',
}


@pytest.fixture(scope="module", autouse=True)
def app_log() -> Iterator[LogLines]:
    """The app's log lines, as a server process writes them, from before it starts to the end of this module."""
    with captured_logs() as lines:
        yield lines


@pytest.fixture(scope="module")
def victim(app_server) -> str:
    """Another user's memory: hostile requests must neither change nor reveal it."""
    with app_server.client() as client:
        response = client.post("/memories", json=body(user_id="victim", messages=[{"role": "user", "content": "s3"}]))
    assert response.status_code == 200, response.text
    return str(response.json()["results"][0]["id"])


@pytest.fixture
def unchanged(module_db, victim, standin) -> Iterator[None]:
    before = {table: count_rows(module_db, table) for table in TABLES}
    yield
    assert {table: count_rows(module_db, table) for table in TABLES} == before
    calls = standin.stats()["counts"]
    assert calls.get("embed", 0) == 0 and calls.get("chat", 0) == 0


def send(
    app_api, method: str, path: str, payload: bytes | dict[str, Any] | None, headers: dict[str, str] | None = None
):
    if isinstance(payload, bytes):
        media, _, content = payload.partition(b":") if payload.startswith(b"text/plain:") else (b"", b"", payload)
        content_type = media.decode() or "application/json"
        return app_api.request(method, path, content=content, headers={"content-type": content_type, **(headers or {})})
    return app_api.request(method, path, json=payload, headers=headers)


def assert_client_error(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    error = response.json()
    assert set(error) == {"error", "message", "detail", "request_id"} and error["message"] and error["request_id"]


@pytest.mark.parametrize("payload", WRITES.values(), ids=WRITES.keys())
def test_hostile_writes(app_api, unchanged, payload):
    assert_client_error(send(app_api, "POST", "/memories", payload))


@pytest.mark.parametrize("payload", WRITES.values(), ids=WRITES.keys())
def test_hostile_keyed_writes(app_api, unchanged, payload):
    assert_client_error(send(app_api, "POST", "/memories", payload, {"Idempotency-Key": "hostile-key"}))


@pytest.mark.parametrize("payload", SEARCHES.values(), ids=SEARCHES.keys())
def test_hostile_searches(app_api, unchanged, payload):
    assert_client_error(send(app_api, "POST", "/search", payload))


UPDATES: dict[str, bytes | dict[str, Any]] = {
    "NUL in text": {"text": "a\x00"},
    "lone surrogate in text": raw(f'{{"text":"{SURROGATE}"}}'),
    "10 MB text": {"text": "t" * TEN_MB},
    "metadata 500 levels deep": {"metadata": nested(500)},
    "NaN in metadata": raw('{"metadata":{"x":NaN}}'),
    "repeated text": raw('{"text":"a","text":"b"}'),
    "unknown field": {"text": "a", "owner": "root"},
}


@pytest.mark.parametrize("payload", UPDATES.values(), ids=UPDATES.keys())
def test_hostile_updates_leave_the_memory_as_it_was(app_api, unchanged, victim, payload):
    assert_client_error(send(app_api, "PUT", f"/memories/{victim}", payload))

    assert app_api.get(f"/memories/{victim}").json()["memory"] == "s3"


URLS = [
    ("GET", "/memories?user_id=%00"),
    ("GET", "/memories?user_id=" + "u" * 10_000),
    ("GET", "/memories?user_id=u&limit=99999999999999999999999"),
    ("DELETE", "/memories?user_id=%00"),
    ("DELETE", "/memories?agent_id=a%00b"),
    ("GET", "/memories/%00"),
    ("GET", "/memories/%00/history"),
    ("DELETE", "/memories/' OR '1'='1"),
    ("GET", "/memories/1;DROP TABLE memories"),
    ("GET", "/jobs/%C2%B9"),
    ("GET", "/jobs/%00"),
    ("GET", "/jobs/1' OR '1'='1"),
    ("POST", "/jobs/-1/retry"),
    ("GET", "/jobs/99999999999999999999999999"),
    ("PATCH", "/memories"),
]


@pytest.mark.parametrize(("method", "url"), URLS, ids=[f"{m} {u[:60]}" for m, u in URLS])
def test_hostile_urls(app_api, unchanged, method, url):
    assert_client_error(app_api.request(method, url))


SQL_AS_DATA = [
    ("GET", "/memories", {"user_id": "' OR '1'='1"}, None),
    ("GET", "/memories", {"user_id": "victim' --"}, None),
    ("DELETE", "/memories", {"user_id": "%' OR true --"}, None),
    ("POST", "/search", None, {"query": "s3", "user_id": "x' OR 1=1 --"}),
    ("POST", "/search", None, {"query": "s3", "user_id": "x", "filters": {"topic' OR '1'='1": "x"}}),
    ("POST", "/search", None, {"query": "s3", "user_id": "x", "filters": {"topic": {"in": ["') OR true --"]}}}),
    ("POST", "/search", None, {"query": "s3", "user_id": "x", "filters": {"data": {"icontains": "%"}}}),
]


@pytest.mark.parametrize(("method", "path", "params", "payload"), SQL_AS_DATA)
def test_sql_metacharacters_are_only_data(app_api, module_db, victim, method, path, params, payload):
    before = {table: count_rows(module_db, table) for table in TABLES}

    response = app_api.request(method, path, params=params, json=payload)

    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert victim not in response.text  # nothing of another user's scope leaks
    assert {table: count_rows(module_db, table) for table in TABLES} == before


def test_no_hostile_request_was_logged_as_a_server_failure(app_log):
    """Runs last in this module: client mistakes leave no ERROR line and no 5xx warning in the app's log."""
    lines = app_log.records()

    assert [line for line in lines if line.get("level") == "ERROR" or line.get("status", 0) >= 500] == []
    assert any(line.get("status") == 422 for line in lines)  # the log was read, and it holds the refusals
