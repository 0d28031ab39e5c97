"""`mem0-fixed serve | check | migrate | keys | invariants | backup | restore | canary | import | rollout | rollback |
graph`: the server, its operations."""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg

from app.auth.cli import add_keys_parser, run_keys
from app.checks import run_checks
from app.config import ConfigError, Settings, load_settings
from app.db.connect import resolve_conninfo
from app.db.migrator import MigrationError, migrate
from app.egress import install_egress_guard
from app.errors import EXIT_STARTUP, StartupError
from app.graph.projection.cli import add_graph_parser, run_graph
from app.llm.client import build_ollama_client
from app.log import configure_logging
from app.ops.cli import DEPLOY_COMMANDS, OPS_COMMANDS, add_ops_parsers, run_deploy, run_ops

EXIT_CONFIG = 2


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        print(str(error), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None


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
    add_graph_parser(commands)
    args = parser.parse_args(argv)
    if args.command in DEPLOY_COMMANDS:  # plain host tools, as before they moved here: no settings to validate
        return run_deploy(args)
    settings = _settings_or_exit()
    configure_logging(settings.log_level)
    if args.command in (None, "serve"):
        # Only the server needs the app (FastAPI, the MCP SDK: over a second of imports); the other commands start
        # without it.
        from app.server import serve

        return serve(settings)
    if args.command == "check":
        install_egress_guard(settings)
        return asyncio.run(_check(settings))
    if args.command == "keys":
        return asyncio.run(run_keys(args, settings))
    if args.command in OPS_COMMANDS:
        return asyncio.run(run_ops(args, settings))
    if args.command == "graph":
        return asyncio.run(run_graph(args, settings))
    return asyncio.run(_migrate(settings))
