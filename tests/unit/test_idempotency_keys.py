"""Idempotency-Key parsing and request fingerprints."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings
from app.errors import InvalidIdempotencyKey
from app.idempotency.schemas import parse_header_value, request_fingerprint, resolve_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("abc-123", "abc-123"),
        ('"abc-123"', "abc-123"),
        ('  "abc 123"  ', "abc 123"),
        (r'"a\"b\\c"', 'a"b\\c'),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('ab"c', 'ab"c'),
    ],
    ids=["bare", "quoted", "quoted-with-space", "quoted-escapes", "uuid", "bare-with-quote-inside"],
)
def test_a_header_key_may_be_a_structured_field_string_or_bare(raw, key):
    assert parse_header_value(raw) == key


@pytest.mark.parametrize(
    "raw",
    ['"unterminated', '"a"b', r'"bad\escape"', '"tab\there"', '"ü"'],
    ids=["no-closing-quote", "text-after-quote", "bad-escape", "control-char", "non-ascii"],
)
def test_a_malformed_quoted_key_is_refused(raw):
    with pytest.raises(InvalidIdempotencyKey):
        parse_header_value(raw)


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ("", None),
        ('""', None),
        ("   ", None),
        ("x" * 256, None),
        (None, ""),
        (None, "a\nb"),
        (None, "a\x00b"),
        (None, "a\x7fb"),
        (None, "y" * 256),
        ("one", "two"),
    ],
    ids=[
        "empty-header",
        "empty-quoted",
        "blank-header",
        "256-chars",
        "empty-body-field",
        "newline",
        "nul",
        "del",
        "256-chars-body",
        "header-and-body-differ",
    ],
)
def test_bad_keys_are_400(header, body):
    with pytest.raises(InvalidIdempotencyKey) as raised:
        resolve_key(header, body)

    assert raised.value.status_code == 400


def test_the_header_and_the_body_field_name_one_key():
    assert resolve_key('"k-1"', "k-1") == "k-1"
    assert resolve_key(None, "k-1") == "k-1"
    assert resolve_key("k-1", None) == "k-1"
    assert resolve_key(None, None) is None
    assert resolve_key("x" * 255, None) == "x" * 255


def test_the_fingerprint_ignores_key_order_whitespace_and_the_key_field():
    body = {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False}
    reordered = {
        "infer": False,
        "user_id": "u",
        "messages": [{"content": "hi", "role": "user"}],
        "idempotency_key": "k",
    }

    assert request_fingerprint("POST", "/memories", body) == request_fingerprint("post", "/memories", reordered)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/memories", {"messages": [{"role": "user", "content": "hi!"}], "user_id": "u", "infer": False}),
        ("POST", "/memories", {"messages": [{"role": "user", "content": "hi"}], "user_id": "v", "infer": False}),
        ("POST", "/memories", {"messages": [{"role": "user", "content": "hi"}], "user_id": "u"}),
        ("PUT", "/memories", {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False}),
        ("POST", "/search", {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False}),
    ],
    ids=["other-text", "other-user", "field-missing", "other-method", "other-path"],
)
def test_any_difference_in_method_path_or_body_changes_the_fingerprint(method, path, body):
    reference = {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False}

    assert request_fingerprint(method, path, body) != request_fingerprint("POST", "/memories", reference)


@pytest.fixture
def idempotency_env(monkeypatch):
    for name in ("MEM0_IDEMPOTENCY_TTL_S", "MEM0_IDEMPOTENCY_TTL", "MEM0_IDEMPOTENCY_LEASE_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no stray .env file
    return monkeypatch


def test_keys_live_a_day_and_leases_half_a_minute_by_default(idempotency_env):
    # A short lease (renewed while its request runs) frees a killed server's keys within a minute.
    settings = load_settings({})

    assert (settings.idempotency_ttl_s, settings.idempotency_lease_s) == (86_400, 30)


def test_a_ttl_shorter_than_the_lease_is_a_config_error(idempotency_env):
    idempotency_env.setenv("MEM0_IDEMPOTENCY_TTL", "20")

    with pytest.raises(ConfigError, match="MEM0_IDEMPOTENCY_TTL_S must be at least MEM0_IDEMPOTENCY_LEASE_S"):
        load_settings({})
