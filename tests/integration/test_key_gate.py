"""The key is checked before the body is read (issue 22, item 5): a request without a valid key is a 401 whatever
its body, never a 413 or a JSON error that needed the body; and an address that keeps failing to sign in is refused
(429) before its keys cost a database look-up, while a key it verified earlier goes on working."""

from __future__ import annotations

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


@pytest.fixture
def app(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_MAX_BODY_BYTES="2000", MEM0_AUTH_FAILURE_LIMIT="5/minute")
    with InProcessServer(env) as app:
        yield app


BODIES = {
    "too-large": b'{"query": "' + b"x" * 5000 + b'", "user_id": "alice"}',
    "too-deep": b"[" * 500 + b"]" * 500,
    "not-json": b"{not json",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_without_a_key_any_body_is_401_and_with_one_it_is_judged(app, body):
    headers = {"Content-Type": "application/json"}
    with app.client(headers={"X-API-Key": ""}) as anonymous, app.client() as keyed:
        refused = anonymous.post("/search", content=body, headers=headers)
        judged = keyed.post("/search", content=body, headers=headers)

    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert judged.status_code in (400, 413, 422), judged.text


def test_an_address_that_keeps_failing_is_refused_before_its_keys_are_looked_up(app):
    with (
        app.client() as keyed,
        app.client(headers={"X-API-Key": "m0fk_000000000000_not-a-real-key"}) as guessing,
        app.client(headers={"X-API-Key": ""}) as keyless,
    ):
        assert keyed.get("/memories", params={"user_id": "alice"}).status_code == 200  # verified, remembered
        assert [guessing.get("/memories", params={"user_id": "alice"}).status_code for _ in range(5)] == [401] * 5

        refused = guessing.get("/memories", params={"user_id": "alice"})
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1 and "MEM0_AUTH_FAILURE_LIMIT" in refused.json()["message"]
        assert keyed.get("/memories", params={"user_id": "alice"}).status_code == 200
        assert keyless.get("/entities").status_code == 401  # no key, no look-up: nothing to refuse
