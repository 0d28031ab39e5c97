"""Connection-level bounds uvicorn lacks: a header deadline, a body deadline and a cap on open connections.

A client that opens a connection and sends its request slowly (or never) holds a socket and a parser for as long
as it likes under uvicorn, which times out only idle keep-alive connections. Here a request's headers must arrive
within MEM0_HEADER_TIMEOUT_S of its first byte (or of the connection opening) and its body within
MEM0_BODY_TIMEOUT_S of its headers; past either the client gets a 408 and the connection closes. Past
MEM0_MAX_CONNECTIONS open connections a new one is answered 503 at once and closed, before anything is parsed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import new_request_id

Refusal = Callable[[str], None]


def _raw_error(status_line: str, code: str, message: str, extra_headers: str = "") -> bytes:
    request_id = new_request_id()
    body = json.dumps(
        {"error": code, "message": message, "detail": message, "request_id": request_id}, separators=(",", ":")
    ).encode()
    head = (
        f"HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\n{extra_headers}connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and the cap; `bounded_protocol` binds the settings."""

    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    on_refusal: Refusal

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self.on_refusal("connection_cap")
            transport.write(
                _raw_error(
                    "503 Service Unavailable",
                    "too_many_connections",
                    f"the server holds its limit of {self.max_connections} open connections "
                    "(MEM0_MAX_CONNECTIONS); retry shortly",
                    "retry-after: 1\r\n",
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        self._arm("headers", self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:  # refused in connection_made: never registered
            return
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm("headers", self.header_timeout_s)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm("body", self.body_timeout_s)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, part: str, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, part, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, part: str, seconds: float) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if cycle is not None and cycle.response_complete and part == "body":
            # Answered already (a 413 on its declared length): the rest of the body is not worth waiting for.
            self.transport.close()
            return
        self.on_refusal(f"{part}_timeout")
        if cycle is None or not cycle.response_started:
            setting = "MEM0_HEADER_TIMEOUT_S" if part == "headers" else "MEM0_BODY_TIMEOUT_S"
            self.transport.write(
                _raw_error(
                    "408 Request Timeout",
                    "request_timeout",
                    f"the request's {part} did not arrive within {seconds:g} s ({setting}); send them at once",
                )
            )
        if cycle is not None:
            cycle.disconnected = True  # the app's receive() answers http.disconnect instead of waiting on
            cycle.message_event.set()
        self.transport.close()


def bounded_protocol(
    *, max_connections: int, header_timeout_s: float, body_timeout_s: float, on_refusal: Refusal
) -> type[GuardedHttpProtocol]:
    return type(
        "BoundedHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "max_connections": max_connections,
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "on_refusal": staticmethod(on_refusal),
        },
    )
