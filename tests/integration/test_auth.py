"""Authenticated by default: keys minted by the CLI, bound to the identities they may touch, enforced in SQL;
browser-facing defences; secrets never stored or shown in clear."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.routing import APIRoute

from app.auth.repository import KeyRepository
from app.auth.service import KeyService
from app.config import Settings
from app.db.migrator import migrate
from app.db.pool import open_pool
from app.main import create_app
from app.mcp.oauth_discovery import METADATA_PATHS, REGISTRATION_PATH
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer, SettingsFromValues
from tests.support.keys import keys_cli, mint_key
from tests.support.logs import captured_logs
from tests.support.postgres import count_rows
from tests.support.server_process import TEST_ADMIN_KEY

OPEN_PATHS = {"/health", "/ready", "/metrics"}
# FastAPI's own documentation routes describe the API (public source), no data.
DOCUMENTATION_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/"}
# What MCP clients probe for OAuth: a 404 to anyone, saying to send the key (tests/integration/test_mcp.py).
OAUTH_DISCOVERY_PATHS = {*METADATA_PATHS, REGISTRATION_PATH}


@pytest.fixture(scope="module")
def auth_server(module_db, standin_session) -> Iterator[InProcessServer]:
    """The in-process app; what it logs (as a server process would write it) never holds the admin key."""
    app_server = InProcessServer(server_env(module_db, standin_session, MEM0_ALLOW_RESET="true"))
    with captured_logs(app_server.settings.log_level) as log, app_server:
        yield app_server
    assert log.lines, "nothing was logged: the check below would prove nothing"
    assert TEST_ADMIN_KEY not in log.text()


def _add(client, user: str, text: str) -> str:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False}
    response = client.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["id"]


def _api_routes(routes: list) -> list[APIRoute]:
    """Every endpoint, inside the routers the app includes too."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _route_table() -> list[tuple[str, str]]:
    app = create_app(Settings(DATABASE_URL="postgresql://unused/unused"))
    table = []
    for route in _api_routes(app.routes):
        if route.path not in OPEN_PATHS | DOCUMENTATION_PATHS | OAUTH_DISCOVERY_PATHS:
            path = route.path.replace("{memory_id}", str(uuid.uuid4())).replace("{job_id}", str(uuid.uuid4()))
            table += [(method, path) for method in sorted(route.methods)]
    return table


def test_every_route_but_the_probes_answers_401_without_a_valid_key(auth_server, module_db):
    revoked = mint_key(module_db, "--name", "gone", "--admin")
    key_id = revoked.split("_")[1]
    assert keys_cli(module_db, "revoke", key_id).returncode == 0
    routes = _route_table()
    assert len(routes) >= 10, routes

    for presented in (None, "m0fk_000000000000_not-a-real-key-at-all", revoked):
        with auth_server.client() as client:
            client.headers.pop("X-API-Key")
            if presented is not None:
                client.headers["X-API-Key"] = presented
            for method, path in routes:
                response = client.request(method, path, json={} if method in ("POST", "PUT") else None)
                assert response.status_code == 401, (method, path, presented, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.json()["error"] == "unauthorized"
    with auth_server.client() as client:
        client.headers.pop("X-API-Key")
        assert all(client.get(path).status_code == 200 for path in OPEN_PATHS)


def test_bearer_and_token_schemes_carry_the_key_as_mem0_clients_send_it(auth_server):
    with auth_server.client() as client:
        client.headers.pop("X-API-Key")
        for scheme in ("Bearer", "Token"):
            response = client.get(
                "/memories", params={"user_id": "x"}, headers={"Authorization": f"{scheme} {TEST_ADMIN_KEY}"}
            )
            assert response.status_code == 200, (scheme, response.text)


def test_a_key_limited_to_alice_cannot_touch_bobs_memories_anywhere(auth_server, module_db, standin):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    with auth_server.client() as admin:
        bobs = _add(admin, bob, "Bob keeps bees")
        _add(admin, alice, "Alice keeps goats")
        job = admin.post(
            "/memories",
            json={"messages": [{"role": "user", "content": "Bob likes jazz"}], "user_id": bob, "async_mode": True},
        ).json()["job_id"]
        while admin.get(f"/jobs/{job}").json()["status"] not in ("SUCCEEDED", "FAILED"):
            time.sleep(0.1)
    bobs_rows = count_rows(module_db, "memories", "payload->>'user_id' = %s", (bob,))
    limited = mint_key(module_db, "--name", "alice-bot", "--user-id", "alice-*")

    with auth_server.client(headers={"X-API-Key": limited}) as client:
        assert [m["memory"] for m in client.get("/memories", params={"user_id": alice}).json()["results"]] == [
            "Alice keeps goats"
        ]
        assert client.get("/memories", params={"user_id": bob}).json()["results"] == []
        search = client.post("/search", json={"query": "bees", "user_id": bob})
        assert search.status_code == 200 and search.json()["results"] == []
        assert client.get(f"/memories/{bobs}").status_code == 404
        assert client.put(f"/memories/{bobs}", json={"text": "Bob keeps wasps"}).status_code == 404
        assert client.get(f"/memories/{bobs}/history").status_code == 404
        assert client.delete(f"/memories/{bobs}").status_code == 404
        assert client.get(f"/jobs/{job}").status_code == 404
        assert client.post(f"/jobs/{job}/retry").status_code == 404
        assert client.delete("/memories", params={"user_id": bob}).status_code == 403
        write = client.post(
            "/memories", json={"messages": [{"role": "user", "content": "x"}], "user_id": bob, "infer": False}
        )
        assert write.status_code == 403
        assert client.post("/reset").status_code == 403
        assert client.get("/configure").status_code == 403
        assert _add(client, alice, "Alice keeps hens")

    assert count_rows(module_db, "memories", "payload->>'user_id' = %s", (bob,)) == bobs_rows >= 1
    with auth_server.client() as admin:
        assert admin.get(f"/memories/{bobs}").json()["memory"] == "Bob keeps bees"
        assert admin.get(f"/jobs/{job}").status_code == 200
        assert len(admin.get(f"/memories/{bobs}/history").json()) == 1


def test_browser_defences_refuse_rebinding_cross_site_posts_widening_filters_and_guessed_jobs(auth_server, module_db):
    with auth_server.client() as client:
        rebound = client.get("/memories", params={"user_id": "x"}, headers={"Host": "attacker.example"})
        assert rebound.status_code == 400 and rebound.json()["error"] == "invalid_host"
        cross_site = client.post(
            "/reset", content=b"x", headers={"Content-Type": "text/plain", "Origin": "https://attacker.example"}
        )
        assert cross_site.status_code == 415
        with_origin = client.post("/reset", headers={"Origin": "https://attacker.example"})
        assert with_origin.status_code == 403 and with_origin.json()["error"] == "cross_origin_refused"
        widened = client.post("/search", json={"query": "anything", "filters": {"user_id": {"ne": ""}}})
        assert widened.status_code == 422
        assert client.get("/jobs/1").status_code == 404
        assert client.get(f"/jobs/{uuid.uuid4()}").status_code == 404
    assert count_rows(module_db, "memories") >= 0  # reset never ran: the table still exists


def test_keys_are_stored_as_salted_hashes_and_never_shown(auth_server, module_db):
    first = mint_key(module_db, "--name", "one", "--user-id", "u1")
    second = mint_key(module_db, "--name", "two", "--user-id", "u1")
    with psycopg.connect(module_db) as conn:
        rows = conn.execute("SELECT id, name, salt, secret_hash, user_ids FROM api_keys").fetchall()
    dumped = repr(rows)
    for secret in (first, second, TEST_ADMIN_KEY):
        assert secret not in dumped and secret.encode() not in b"".join(bytes(r[2]) + bytes(r[3]) for r in rows)
    salts = [bytes(r[2]) for r in rows]
    assert len(set(salts)) == len(salts)
    listing = keys_cli(module_db, "list")
    assert first not in listing.stdout and "one" in listing.stdout
    with auth_server.client() as client:
        shown = client.get("/configure").json()
    assert shown["admin_api_key"] == "***" and TEST_ADMIN_KEY not in repr(shown)


def test_the_rate_limit_answers_429_with_retry_after(fresh_db, standin):
    # Per hour: a window boundary mid-test (which resets the count) is 60 times less likely than per minute.
    with InProcessServer(server_env(fresh_db, standin, MEM0_RATE_LIMIT="5/hour")) as app, app.client() as client:
        statuses = [client.get("/memories", params={"user_id": "r"}).status_code for _ in range(7)]
        refused = client.get("/memories", params={"user_id": "r"})
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"] == "rate_limited"


def test_two_replicas_on_one_database_share_each_keys_rate_limit(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_RATE_LIMIT="40/hour")
    with InProcessServer(env) as first, InProcessServer(env) as second, first.client() as one, second.client() as other:
        statuses = [
            client.get("/memories", params={"user_id": "r"}).status_code for _ in range(40) for client in (one, other)
        ]
    # Each replica may run a tenth of the window's remainder ahead of the other (app/auth/rates.py), never 2x.
    assert set(statuses) == {200, 429}
    assert 40 <= statuses.count(200) <= 44, statuses


async def test_replicas_starting_together_on_an_empty_database_generate_one_admin_key(fresh_db, tmp_path):
    """Two servers' key bootstraps at once, each on its own pool (as two processes would), without
    MEM0_ADMIN_API_KEY: one generates the key into the file, the other finds it and generates none."""
    await migrate(fresh_db, collection="memories", dims=768)
    settings = SettingsFromValues(DATABASE_URL=fresh_db, MEM0_DATA_DIR=str(tmp_path))
    replicas = [
        KeyService(
            settings, await open_pool(fresh_db, min_size=1, max_size=1, timeout_s=5, ef_search=40), KeyRepository()
        )
        for _ in range(2)
    ]
    try:
        key_files = await asyncio.gather(*(replica.bootstrap() for replica in replicas))
        key = (tmp_path / "admin-api-key").read_text()
        access = await replicas[1].authenticate({"authorization": f"Token {key}"})
    finally:
        for replica in replicas:
            await replica.pool.close()
    assert set(key_files) == {None, tmp_path / "admin-api-key"}  # one each
    assert access.admin
    assert count_rows(fresh_db, "api_keys") == 1


def test_auth_disabled_answers_without_a_key_generates_none_and_says_so(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_AUTH_DISABLED="true")
    del env["MEM0_ADMIN_API_KEY"]
    with captured_logs() as log, InProcessServer(env) as app, app.client() as client:
        client.headers.pop("X-API-Key")
        assert client.get("/memories", params={"user_id": "x"}).status_code == 200
    assert "MEM0_AUTH_DISABLED=true" in log.text()
    assert count_rows(fresh_db, "api_keys") == 0
