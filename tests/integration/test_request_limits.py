"""Bounded requests and honest statuses: 413 before parsing, 405 with Allow, a 500 that keeps the connection, a
database outage that says so, and rows stored before the limits that stay readable.

The in-process app answers most; a body streamed without Content-Length and several requests on one connection
need a real server's socket (`server`/`api`)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.postgres import count_rows
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess

TWELVE_MB = 12 * 1024 * 1024


def write(api, user: str, text: str, **extra) -> str:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False, **extra}
    response = api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["results"][0]["id"])


def test_a_12_mb_body_is_413_before_it_is_read(app_api, module_db):
    before = count_rows(module_db, "memories")
    body = b'{"messages":[{"role":"user","content":"' + b"x" * TWELVE_MB + b'"}],"user_id":"big","infer":false}'

    response = app_api.post("/memories", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 413, response.text
    assert response.json()["error"] == "body_too_large" and "MEM0_MAX_BODY_BYTES" in response.json()["message"]
    assert count_rows(module_db, "memories") == before


def test_a_streamed_body_without_content_length_is_counted_too(api, module_db):
    def chunks() -> Iterator[bytes]:
        yield b'{"messages":[{"role":"user","content":"'
        for _ in range(12):
            yield b"x" * (1024 * 1024)
        yield b'"}],"user_id":"big","infer":false}'

    response = api.post("/memories", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413, response.text
    assert "more than" in response.json()["message"]
    assert count_rows(module_db, "memories", "payload->>'user_id' = 'big'") == 0


def test_405_names_every_method_the_path_takes(app_api):
    response = app_api.request("PATCH", "/memories")

    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "DELETE"}
    assert response.json()["error"] == "method_not_allowed"


def raw_exchange(port: int, requests: list[bytes]) -> list[bytes]:
    """Send each request on one TCP connection and read its whole response (the bodies are JSON with a length)."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for request in requests:
            sock.sendall(request)
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                assert line, f"the server closed the connection; answers so far: {answers}"
                head += line
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            answers.append(head + reader.read(length))
    return answers


def test_error_answers_keep_the_connection_an_unexpected_500_included(server, api, module_db):
    # A row that breaks mem0's layout (`data` must be text) cannot be shaped into an answer: a real 500, ours.
    memory_id = write(api, "broken-row", "fine so far")
    with psycopg.connect(module_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE memories SET payload = jsonb_set(payload, '{data}', '{\"not\": \"text\"}') WHERE id = %s",
            (memory_id,),
        )
    nul_body = b'{"query":"a\\u0000","user_id":"u"}'
    signed_in = f"Host: localhost\r\nX-API-Key: {TEST_ADMIN_KEY}\r\n".encode()
    requests = [
        f"GET /memories/{memory_id} HTTP/1.1\r\n".encode() + signed_in + b"\r\n",
        b"POST /search HTTP/1.1\r\n"
        + signed_in
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(nul_body)}\r\n\r\n".encode()
        + nul_body,
        b"PATCH /memories HTTP/1.1\r\n" + signed_in + b"\r\n",
        b"GET /nowhere HTTP/1.1\r\n" + signed_in + b"\r\n",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ]

    answers = raw_exchange(server.port, requests)

    assert [answer.split(b" ", 2)[1] for answer in answers] == [b"500", b"422", b"405", b"404", b"200"]
    error = json.loads(answers[0].split(b"\r\n\r\n", 1)[1])
    assert error["error"] == "internal_error" and error["request_id"]
    assert not any(b"connection: close" in answer.lower() for answer in answers)


@pytest.mark.parametrize("levels", [40, 500])
def test_a_row_stored_with_too_deep_metadata_stays_readable_and_deletable(app_api, module_db, levels):
    user = f"deep-{levels}"
    memory_id = write(app_api, user, "I keep deep notes")
    deep: dict[str, object] = {"leaf": True}
    for _ in range(levels):
        deep = {"k": deep}
    with psycopg.connect(module_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE memories SET payload = payload || jsonb_build_object('notes', %s::jsonb) WHERE id = %s",
            (json.dumps(deep), memory_id),
        )

    listed = app_api.get("/memories", params={"user_id": user})
    found = app_api.post("/search", json={"query": "deep notes", "user_id": user})
    got = app_api.get(f"/memories/{memory_id}")

    for response in (listed, found, got):
        assert response.status_code == 200, response.text
        assert "levels; not shown]" in response.text
    assert got.json()["memory"] == "I keep deep notes"
    updated = app_api.put(f"/memories/{memory_id}", json={"text": "I keep deeper notes"})
    assert updated.status_code == 200, updated.text
    assert app_api.delete(f"/memories/{memory_id}").status_code == 200
    assert count_rows(module_db, "memories", "id = %s", (memory_id,)) == 0


@pytest.mark.slow  # in-process, but it waits out the pool's timeouts
def test_a_database_outage_is_a_503_that_says_the_database_is_unavailable(pg_admin, fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_DB_TIMEOUT_S="2", MEM0_DB_POOL_MIN="1")
    with InProcessServer(env) as app, app.client() as client, psycopg.connect(pg_admin, autocommit=True) as admin:
        database = psycopg.conninfo.conninfo_to_dict(fresh_db)["dbname"]
        assert client.get("/memories", params={"user_id": "u"}).status_code == 200
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            # The first finds its pooled connection dead; the next ones wait for a connection the pool cannot open.
            responses = [client.get("/memories", params={"user_id": "u"}) for _ in range(5)]
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

        for response in responses:
            assert response.status_code == 503, response.text
            error = response.json()
            assert error["error"] == "storage_unavailable" and error["request_id"]
            assert "database is unavailable" in error["message"] and "overloaded" not in error["message"]


def test_the_served_app_cuts_slow_headers_and_refuses_past_its_connection_cap(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_HEADER_TIMEOUT_S="0.5", MEM0_MAX_CONNECTIONS="3")
    with ServerProcess(env) as server, server.client() as client:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"POST /memories HTTP/1.1\r\nHost: localhost\r\n")
            assert slow.makefile("rb").read().startswith(b"HTTP/1.1 408 ")
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as refused:
                assert refused.makefile("rb").read().startswith(b"HTTP/1.1 503 ")
        finally:
            for sock in held:
                sock.close()
        metrics = client.get("/metrics").text
    assert 'mem0_connections_refused_total{reason="headers_timeout"} 1.0' in metrics
    assert 'mem0_connections_refused_total{reason="connection_cap"} 1.0' in metrics
