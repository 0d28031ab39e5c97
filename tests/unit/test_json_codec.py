"""JSON through orjson, with Python's json taking what orjson refuses."""

from __future__ import annotations

from app.json_codec import canonical_dumps, dumps, loads


def test_an_integer_past_64_bits_survives_a_round_trip() -> None:
    value = {"n": 2**70, "m": -(2**70), "text": "é"}

    assert loads(dumps(value)) == value


def test_canonical_text_does_not_depend_on_key_order_and_writes_other_types_as_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    assert canonical_dumps({"b": 1, "a": [2**70]}) == canonical_dumps({"a": [2**70], "b": 1})
    assert canonical_dumps({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    assert canonical_dumps({"x": Opaque()}) == b'{"x":"opaque"}'
