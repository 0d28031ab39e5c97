"""The request checks that run before FastAPI parses anything: each refusal is a 4xx naming the field."""

from __future__ import annotations

import json

import pytest

from app.limits import MAX_JSON_DEPTH, Refusal, check_json_body, check_query


def refusal_of(body: bytes) -> Refusal:
    with pytest.raises(Refusal) as caught:
        check_json_body(body)
    return caught.value


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (b'{"messages":[{"content":"a\\u0000b"}]}', 422, "messages.0.content", "NUL"),
        (b'{"metadata":{"k\\u0000":1}}', 422, "metadata.'k\\x00' (the key)", "NUL"),
        (b'{"query":"half \\ud83d an emoji"}', 422, "query", "lone UTF-16 surrogate ('\\ud83d')"),
        (b'{"filters":{"\\udc00":1}}', 422, "filters.'\\udc00' (the key)", "surrogate"),
        (b'{"metadata":{"score":NaN}}', 422, "metadata.score", "NaN is not a JSON number"),
        (b'{"metadata":{"x":[-Infinity]}}', 422, "metadata.x.0", "-Infinity is not a JSON number"),
        (b'{"user_id":"a","user_id":"b"}', 400, "user_id", "twice"),
        (b'{"query":"caf\xe9"}', 400, "UTF-8", "not valid UTF-8"),
        (b'{"n":' + b"9" * 5000 + b"}", 422, "number", "too long"),
    ],
)
def test_unstorable_bodies_are_refused_naming_the_field(body, status, field, words):
    refusal = refusal_of(body)

    assert refusal.status == status
    assert field in refusal.message and words in refusal.message
    json.dumps(refusal.message).encode("utf-8")  # the message itself is always valid to send back


def test_nesting_is_bounded_at_any_depth():
    assert "nests deeper" in refusal_of(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)).message
    assert "nests deeper" in refusal_of(b'{"a":' * 100_000 + b"1" + b"}" * 100_000).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"messages":[{"role":"user","content":"caf\xc3\xa9 \xf0\x9f\x98\x80"}],"user_id":"u"}',
        b'{"query":"\\ud83d\\ude00 a whole emoji as a surrogate pair"}',
        b'{"metadata":{"n":1e300,"m":-0.0,"deep":' + b"[" * (MAX_JSON_DEPTH - 2) + b"]" * (MAX_JSON_DEPTH - 2) + b"}}",
        b"{not json",  # FastAPI's own parser answers this one
    ],
)
def test_good_bodies_pass(body):
    check_json_body(body)


def scope(path: str = "/memories", query: bytes = b"") -> dict[str, object]:
    return {"type": "http", "path": path, "query_string": query, "headers": []}


@pytest.mark.parametrize(
    ("path", "query", "words"),
    [
        ("/memories", b"user_id=%00", "query parameter user_id: contains a NUL"),
        ("/memories", b"user%00id=u", "query parameter name"),
        ("/memories/\x00", b"", "path contains a NUL"),
    ],
)
def test_nul_in_the_url_is_refused(path, query, words):
    with pytest.raises(Refusal) as caught:
        check_query(scope(path, query))

    assert caught.value.status == 422 and words in caught.value.message


def test_a_plain_query_passes():
    check_query(scope(query=b"user_id=ada%20lovelace&limit=5&agent_id=%E2%9C%93"))
