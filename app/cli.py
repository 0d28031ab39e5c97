"""`mem0-fixed serve | check | migrate | keys | invariants | backup | restore | canary | import | rollout | rollback`:
the server, its operations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

import psycopg
import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from app.auth.cli import add_keys_parser, run_keys
from app.checks import run_checks
from app.config import ConfigError, Settings, load_settings
from app.db.connect import resolve_conninfo
from app.db.migrator import MigrationError, migrate
from app.egress import install_egress_guard
from app.errors import StartupError
from app.llm.client import build_ollama_client
from app.log import configure_logging
from app.main import create_app
from app.ops.cli import DEPLOY_COMMANDS, OPS_COMMANDS, add_ops_parsers, run_deploy, run_ops

EXIT_CONFIG = 2
EXIT_STARTUP = 1

logger = logging.getLogger(__name__)


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        print(str(error), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None


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
    # loop/http "auto" pick uvloop and httptools (both pinned); Server.run() applies the loop choice,
    # which a bare asyncio.run(server.serve()) would silently skip.
    config = uvicorn.Config(
        QuietExpectedStartupFailure(app),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="auto",
        http="auto",
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


async def _check(settings: Settings) -> int:
    try:
        conninfo = await resolve_conninfo(settings)
    except StartupError as error:
        print(f"[FAIL] postgres: {error}")
        return EXIT_STARTUP
    client = build_ollama_client(settings)
    try:
        report = await run_checks(settings, conninfo, client, allow_pull=False)
    finally:
        await client.close()
    for result in report.results:
        print(result.line())
    print("all checks passed" if report.ok else f"{len(report.failures())} check(s) failed")
    return 0 if report.ok else EXIT_STARTUP


async def _migrate(settings: Settings) -> int:
    try:
        conninfo = await resolve_conninfo(settings)
        applied = await migrate(conninfo, collection=settings.collection_name, dims=settings.embedding_dims)
    except (StartupError, MigrationError, psycopg.OperationalError) as error:
        print(f"migrations: {error}", file=sys.stderr)
        return EXIT_STARTUP
    print(f"applied {applied}" if applied else "up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mem0-fixed", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server (the default)")
    commands.add_parser("check", help="run the startup checks and print them")
    commands.add_parser("migrate", help="apply pending migrations")
    add_keys_parser(commands)
    add_ops_parsers(commands)
    args = parser.parse_args(argv)
    if args.command in DEPLOY_COMMANDS:  # plain host tools, as before they moved here: no settings to validate
        return run_deploy(args)
    settings = _settings_or_exit()
    configure_logging(settings.log_level)
    if args.command in (None, "serve"):
        return serve(settings)
    if args.command == "check":
        install_egress_guard(settings)
        return asyncio.run(_check(settings))
    if args.command == "keys":
        return asyncio.run(run_keys(args, settings))
    if args.command in OPS_COMMANDS:
        return asyncio.run(run_ops(args, settings))
    return asyncio.run(_migrate(settings))
