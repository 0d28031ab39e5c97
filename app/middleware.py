"""Request context as plain ASGI: a request id (X-Request-ID accepted and echoed), one access log line, the
finished request handed to an observer (the metrics), and a JSON 500 for any exception no handler knew, answered
here so the keep-alive connection survives it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextvars import ContextVar

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import internal_error_response, new_request_id

logger = logging.getLogger("app.access")

_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Read by the log formatter, so every line logged while a request runs carries its id.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


RequestObserver = Callable[[str, str, int, float], None]  # (route template, method, status, seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
        request_id = incoming if _ACCEPTABLE_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                responded = True
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if responded:
                raise  # half a response is out; only dropping the connection tells the client
            await internal_error_response(Request(scope))(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            if self.observer is not None:
                self.observer(route, scope["method"], status, seconds)
            # Route template and status only: paths may hold ids, bodies hold user content; neither is logged.
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            current_request_id.reset(token)
