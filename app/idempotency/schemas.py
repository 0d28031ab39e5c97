"""Idempotency-Key parsing (structured-field String or bare), request fingerprints and the stored response."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidIdempotencyKey

HEADER = "Idempotency-Key"
BODY_FIELD = "idempotency_key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class KeyedRequest:
    """A request that carries a key: whose keys it lives among, the key, and what the key is bound to."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredResult:
    """What a key keeps of the first successful run, as the write's owner serialised it: a replay is rebuilt from
    it and answers exactly what the first run answered."""

    status: int
    body: bytes


def parse_header_value(raw: str) -> str:
    """The key in an Idempotency-Key header: an RFC 9651 String ("abc", as the IETF draft writes it) or bare."""
    value = raw.strip(" \t")
    return _parse_sf_string(value) if value.startswith('"') else value


def _parse_sf_string(value: str) -> str:
    chars: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == "\\":
            escaped = value[index + 1 : index + 2]
            if escaped not in ('"', "\\") or not escaped:
                raise InvalidIdempotencyKey(
                    f"{HEADER}: inside a quoted key a backslash may only escape '\"' or '\\\\'; send the key bare"
                )
            chars.append(escaped)
            index += 2
            continue
        if char == '"':
            if index != len(value) - 1:
                raise InvalidIdempotencyKey(f"{HEADER}: characters follow the closing quote; send one key")
            return "".join(chars)
        if not " " <= char <= "~":
            raise InvalidIdempotencyKey(f"{HEADER}: a quoted key may hold printable ASCII only; send the key bare")
        chars.append(char)
        index += 1
    raise InvalidIdempotencyKey(f"{HEADER}: the quoted key has no closing quote")


def validate_key(key: str, source: str) -> str:
    """A usable key: not empty, at most 255 characters, no control characters."""
    if not key.strip():
        raise InvalidIdempotencyKey(f"{source} is empty; send a unique value per logical write, e.g. a UUID")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(f"{source} has {len(key)} characters; at most {MAX_KEY_LENGTH} are allowed")
    if any(unicodedata.category(char) == "Cc" for char in key):
        raise InvalidIdempotencyKey(f"{source} contains control characters; use printable characters only")
    return key


def resolve_key(header: str | None, body_field: str | None) -> str | None:
    """The request's key from the header and/or the body field; both given must agree."""
    from_header = None if header is None else validate_key(parse_header_value(header), f"the {HEADER} header")
    from_body = None if body_field is None else validate_key(body_field, f"the body field {BODY_FIELD}")
    if from_header is not None and from_body is not None and from_header != from_body:
        raise InvalidIdempotencyKey(
            f"the {HEADER} header ({from_header[:64]!r}) and the body field {BODY_FIELD} ({from_body[:64]!r}) "
            "differ; send one of them, or the same value in both"
        )
    return from_header if from_header is not None else from_body


def canonical_json(value: Any) -> bytes:
    """One spelling per JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """What a key is bound to: method, path and the canonical JSON body without the key itself."""
    if isinstance(body, dict):
        body = {name: value for name, value in body.items() if name != BODY_FIELD}
    digest = hashlib.sha256()
    for part in (method.upper().encode("ascii"), path.encode("utf-8"), canonical_json(body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
