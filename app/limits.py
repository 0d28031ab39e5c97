"""Every request is bounded and its text checked as plain ASGI, before FastAPI parses anything.

A body over MEM0_MAX_BODY_BYTES is 413, counted as it streams in (a missing or false Content-Length does not get
past it). A JSON body must be UTF-8, name each key once per object and nest at most MAX_JSON_DEPTH levels; its
strings (keys included) and the query parameters must be text Postgres can store and Ollama can read: no NUL, no
lone UTF-16 surrogate; numbers must be finite (Python's JSON reader accepts NaN and Infinity, jsonb does not).
Each refusal is a JSON error naming the field, so nothing downstream (fingerprints, hashes, SQL, Ollama) ever sees
such input and fails on it as a 5xx.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response

# Deeper than any request the API takes (metadata is capped at 32 levels in app/memories/schemas.py), and far below
# the recursion limit of json.loads and of pydantic.
MAX_JSON_DEPTH = 64
_SHOWN_CHARS = 64


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_query(scope)
            body = await self._read_body(scope, receive)
            if body is None:
                return  # the client went away before sending its body: nobody to answer
            if body and _is_json(scope):
                check_json_body(body)
        except Refusal as refusal:
            response = error_response(Request(scope), refusal.status, refusal.code, refusal.message)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            raise self._too_large(declared)
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                raise self._too_large(received, streamed=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, size: int, *, streamed: bool = False) -> Refusal:
        size_text = f"more than {self.max_body_bytes:,}" if streamed else f"{size:,}"
        return Refusal(
            413,
            "body_too_large",
            f"the request body has {size_text} bytes; at most {self.max_body_bytes:,} (MEM0_MAX_BODY_BYTES) are "
            "accepted; send less per request",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then the client's own messages (a disconnect) as they come."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _is_json(scope: Scope) -> bool:
    """What FastAPI would parse as JSON: no content type, application/json, or any +json type."""
    media_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


def check_query(scope: Scope) -> None:
    if "\x00" in scope["path"]:
        raise Refusal(422, "invalid_input", "the path contains a NUL character (%00); remove it")
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        check_text(name, "a query parameter name")
        check_text(value, f"query parameter {_label(name)}")


def check_json_body(body: bytes) -> None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Refusal(
            400, "bad_request", f"the request body is not valid UTF-8 (byte {error.start}); send UTF-8 encoded JSON"
        ) from None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        return  # not JSON at all: FastAPI's own parser answers that with a 400
    except RecursionError:
        raise Refusal(
            422, "invalid_input", f"the request body nests deeper than {MAX_JSON_DEPTH} levels; flatten it"
        ) from None
    except ValueError:  # an integer literal past Python's 4,300-digit limit
        raise Refusal(422, "invalid_input", "the request body holds a number too long to read; shorten it") from None
    check_value(document, "", 0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise Refusal(
                400,
                "bad_request",
                f"the key {_label(key)} appears twice in one JSON object; send each key once "
                "(JSON parsers disagree about which copy wins)",
            )
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means a repeated key")


def check_value(value: Any, where: str, depth: int) -> None:
    """Raise a Refusal naming the first field (`messages.0.content`) that holds something unstorable."""
    if depth >= MAX_JSON_DEPTH and isinstance(value, dict | list):
        raise Refusal(422, "invalid_input", f"the request body nests deeper than {MAX_JSON_DEPTH} levels; flatten it")
    if isinstance(value, str):
        check_text(value, where or "body")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Refusal(
            422,
            "invalid_input",
            f"{where or 'body'}: {_constant_name(value)} is not a JSON number and cannot be stored; "
            "send a finite number, or the value as a string",
        )
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{_label(key)}" if where else _label(key)
            check_text(key, f"{path} (the key)")
            check_value(item, path, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{where}.{index}" if where else str(index), depth + 1)


def check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise Refusal(
            422, "invalid_input", f"{where}: contains a NUL character (\\u0000), which cannot be stored; remove it"
        )
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Refusal(
            422,
            "invalid_input",
            f"{where}: contains a lone UTF-16 surrogate ({value[error.start]!a}) at character {error.start}, "
            "which is not valid Unicode; send whole characters (a surrogate pair, or the character itself in UTF-8)",
        ) from None


def _constant_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _label(name: str) -> str:
    """A field name fit to quote back in a message: short, and escaped unless printable (a lone surrogate is not)."""
    shown = name[:_SHOWN_CHARS]
    return shown if shown.isprintable() else ascii(shown)
