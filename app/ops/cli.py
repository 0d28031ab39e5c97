"""`mem0-fixed invariants | backup | restore | canary | import | rollout | rollback`: the runbook's operations, in the
image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
from psycopg import AsyncConnection

from app.config import Settings
from app.db.connect import resolve_conninfo
from app.llm.client import build_ollama_client
from app.ops.backup import BackupError, dump, manifest, read_manifest, restore
from app.ops.canary import Canary, evidence
from app.ops.importer import add_import_parser, run_import
from app.ops.invariants import Invariants, check_invariants
from app.ops.rollback import add_rollback_parser, run_rollback
from app.ops.rollout import add_rollout_parser, run_rollout

EXIT_BROKEN = 1
OPS_COMMANDS = ("invariants", "backup", "restore", "canary", "import")
# The deploy tools drive nginx, Docker and mem0-fixed itself as subprocesses: they read no Settings (no DATABASE_URL).
DEPLOY_COMMANDS = ("rollout", "rollback")


def add_ops_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    invariants = commands.add_parser("invariants", help="check the database invariants; exit 1 on any breach")
    invariants.add_argument("--offline", action="store_true", help="do not ask Ollama for the embedder's dims")
    backup = commands.add_parser("backup", help="pg_dump (custom format) plus a manifest, into a directory")
    backup.add_argument("--out", type=Path, required=True)
    backup.add_argument("--image", help="the image tag running now, recorded in the manifest")
    restored = commands.add_parser("restore", help="restore a backup into a new database and verify it")
    restored.add_argument("directory", type=Path)
    restored.add_argument("--database", required=True, help="the new database's name (must not exist)")
    canary = commands.add_parser(
        "canary", help="the canary gate: 1 request, then each rate for a stage; exit 1 on a breach"
    )
    canary.add_argument("base_url", help="the server to judge, e.g. http://127.0.0.1:8888")
    canary.add_argument("--api-key", help="a key for the canary scope (default: MEM0_ADMIN_API_KEY)")
    canary.add_argument("--rates", default="1,5", help="requests per second of each stage after the first (1,5)")
    canary.add_argument("--stage-seconds", type=float, default=60.0, help="length of each rate's stage (60)")
    canary.add_argument("--evidence", type=Path, default=Path("canary-evidence.json"), help="the JSON report")
    add_import_parser(commands)
    add_rollout_parser(commands)
    add_rollback_parser(commands)


def run_deploy(args: argparse.Namespace) -> int:
    return run_rollout(args) if args.command == "rollout" else run_rollback(args)


async def run_canary(args: argparse.Namespace, settings: Settings) -> int:
    key = args.api_key or (settings.admin_api_key.get_secret_value() if settings.admin_api_key else None)
    headers = {"X-API-Key": key} if key else {}
    rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    async with httpx.AsyncClient(base_url=args.base_url, headers=headers, timeout=30, trust_env=False) as client:
        reports = await Canary(client).run(rates, args.stage_seconds)
    written = evidence(args.base_url, reports, args.evidence)
    print(f"{'stage':<28} {'calls':>6} {'write p95':>10} {'write ok':>9} {'read p95':>9} {'read ok':>8}")
    for report in reports:
        print(
            f"{report.name:<28} {report.calls:>6} {_number(report.write_p95_s):>10} "
            f"{_number(report.write_success):>9} {_number(report.read_p95_s):>9} {_number(report.read_success):>8}"
        )
        for breach in report.breaches:
            print(f"  BREACH: {breach}")
    print(f"canary {'passed' if written['passed'] else 'FAILED'}; evidence in {args.evidence}")
    return 0 if written["passed"] else EXIT_BROKEN


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


async def run_ops(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "canary":
        return await run_canary(args, settings)
    if args.command == "import":
        return await run_import(args, settings)
    conninfo = await resolve_conninfo(settings)
    if args.command == "invariants":
        found = await _invariants(settings, conninfo, probe_embedder=not args.offline)
        _print(found)
        return 0 if found.report.ok else EXIT_BROKEN
    try:
        if args.command == "backup":
            found = await _invariants(settings, conninfo, probe_embedder=False)
            dump(conninfo, args.out, manifest(found.migrations, found.row_counts, found.dims, args.image))
            print(f"backed up {found.row_counts} to {args.out}")
            return 0
        expected = read_manifest(args.directory)
        target = restore(conninfo, args.directory, args.database)
    except BackupError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return EXIT_BROKEN
    found = await _invariants(settings, target, probe_embedder=False)
    _print(found)
    same = found.row_counts == expected["row_counts"] and found.migrations == expected["migrations"]
    print("restored data matches the manifest" if same else f"restored {found.row_counts}, manifest {expected}")
    return 0 if same else EXIT_BROKEN


async def _invariants(settings: Settings, conninfo: str, *, probe_embedder: bool) -> Invariants:
    ollama = build_ollama_client(settings) if probe_embedder else None
    try:
        async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
            return await check_invariants(settings, conn, ollama)
    finally:
        if ollama is not None:
            await ollama.close()


def _print(found: Invariants) -> None:
    for result in found.report.results:
        print(result.line())
    print(f"rows: {found.row_counts}")
    print("all invariants hold" if found.report.ok else f"{len(found.report.failures())} invariant(s) broken")
