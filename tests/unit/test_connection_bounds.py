"""Slow senders and connection floods are cut (issue 22, item 6): uvicorn with the guarded protocol on a real socket,
serving a small ASGI app that reads the whole body, as the server's own limits middleware does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from app.connections import bounded_protocol
from tests.support.server_process import free_port

HEADER_TIMEOUT_S = 0.3
BODY_TIMEOUT_S = 0.5
MAX_CONNECTIONS = 4


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = json.dumps({"received": size}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def bounded_server() -> AsyncIterator[tuple[int, Counter[str]]]:
    refused: Counter[str] = Counter()
    port = free_port()
    protocol = bounded_protocol(
        max_connections=MAX_CONNECTIONS,
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        on_refusal=lambda reason: refused.update([reason]),
    )
    config = uvicorn.Config(echo_length, host="127.0.0.1", port=port, http=protocol, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    server = await asyncio.get_running_loop().create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", port
    )
    yield port, refused
    server.close()
    for connection in list(state.connections):
        connection.shutdown()
    await server.wait_closed()


async def exchange(port: int, data: bytes, *, then_wait_s: float = 5.0) -> tuple[bytes, float]:
    """Send `data`, then read until the server closes; the answer and how long the server took to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    started = asyncio.get_running_loop().time()
    answer = await asyncio.wait_for(reader.read(), then_wait_s)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return answer, asyncio.get_running_loop().time() - started


def status_and_body(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_headers_that_never_finish_get_a_408_and_the_connection_closes(bounded_server) -> None:
    port, refused = bounded_server

    answer, waited = await exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")

    status, body = status_and_body(answer)
    assert status == 408 and body["error"] == "request_timeout" and "MEM0_HEADER_TIMEOUT_S" in body["message"]
    assert body["request_id"]
    assert waited < HEADER_TIMEOUT_S + 1
    assert refused == {"headers_timeout": 1}


async def test_a_silent_connection_is_closed_at_the_header_deadline(bounded_server) -> None:
    port, refused = bounded_server

    answer, _ = await exchange(port, b"")

    assert status_and_body(answer)[0] == 408
    assert refused == {"headers_timeout": 1}


async def test_a_body_that_stops_arriving_gets_a_408(bounded_server) -> None:
    port, refused = bounded_server

    answer, waited = await exchange(port, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a": ')

    status, body = status_and_body(answer)
    assert status == 408 and "MEM0_BODY_TIMEOUT_S" in body["message"]
    assert waited < BODY_TIMEOUT_S + 1
    assert refused == {"body_timeout": 1}


async def test_a_prompt_request_is_untouched_and_keep_alive_requests_each_get_their_own_deadline(
    bounded_server,
) -> None:
    port, refused = bounded_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3):
        await asyncio.sleep(HEADER_TIMEOUT_S * 0.7)  # together past one deadline, each within its own
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(len(b'{"received": 2}'))
    writer.close()
    assert not refused


async def test_past_the_cap_a_connection_is_answered_503_before_anything_is_read(bounded_server) -> None:
    port, refused = bounded_server
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.05)

        answer, _ = await exchange(port, b"")

        status, body = status_and_body(answer)
        assert status == 503 and body["error"] == "too_many_connections" and b"retry-after: 1" in answer
        assert refused["connection_cap"] == 1
    finally:
        for sock in held:
            sock.close()
    await asyncio.sleep(HEADER_TIMEOUT_S + 0.2)  # the held ones were cut at their deadline; room again
    answer, _ = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
