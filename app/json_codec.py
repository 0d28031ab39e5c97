"""JSON with orjson, and Python's json for the one thing orjson refuses: an integer past 64 bits (JSON has no
limit, and such a number may arrive in a memory's metadata or a filter)."""

from __future__ import annotations

import json
from typing import Any

import orjson

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def canonical_dumps(value: Any) -> bytes:
    """One text per meaning (keys sorted), anything that is not JSON as its str: for keys and sizes, never stored."""
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, default=str).encode()
