"""`mem0-fixed serve`: the app under uvicorn, with an expected startup failure reported in one line."""

from __future__ import annotations

import contextlib
import logging
import sys

import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from app.config import Settings
from app.connections import bounded_protocol
from app.egress import install_egress_guard
from app.errors import EXIT_STARTUP
from app.main import create_app

logger = logging.getLogger(__name__)


class QuietExpectedStartupFailure:
    """Starlette reports a failed startup with its traceback and uvicorn logs it at ERROR; for an expected failure
    (a StartupError, whose message names the cause and the fix) that is 30 lines of noise, kept at DEBUG only."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_quietly(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and hasattr(self.app.state, "startup_error"):
                logger.debug("startup failed:\n%s", message.get("message", ""))
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, send_quietly)


def serve(settings: Settings) -> int:
    app = create_app(settings, install_egress_guard(settings))
    refused = app.state.metrics.connections_refused
    protocol = bounded_protocol(
        max_connections=settings.max_connections,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        on_refusal=lambda reason: refused.labels(reason).inc(),
    )
    # loop "auto" picks uvloop (pinned); Server.run() applies the loop choice, which a bare
    # asyncio.run(server.serve()) would silently skip.
    config = uvicorn.Config(
        QuietExpectedStartupFailure(app),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="auto",
        http=protocol,
    )
    server = uvicorn.Server(config)
    # uvicorn exits by itself when the lifespan fails; the reason is ours to print.
    with contextlib.suppress(SystemExit):
        server.run()
    if not server.started:
        reason = getattr(app.state, "startup_error", "see the log above")
        print(f"startup failed: {reason}", file=sys.stderr, flush=True)
        return EXIT_STARTUP
    return 0
