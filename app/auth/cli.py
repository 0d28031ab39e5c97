"""`mem0-fixed keys create | list | revoke`: API keys, managed from the server's own command line."""

from __future__ import annotations

import argparse
import sys

from psycopg_pool import AsyncConnectionPool

from app.auth.repository import KeyRepository
from app.auth.service import create_key, list_keys, revoke_key
from app.config import Settings
from app.db.connect import resolve_conninfo
from app.db.migrator import migrate


def add_keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="mint a key; its secret is printed once")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. bot")
    create.add_argument("--admin", action="store_true", help="may touch every memory and call admin routes")
    for kind in ("user-id", "agent-id", "run-id"):
        create.add_argument(
            f"--{kind}",
            action="append",
            default=[],
            metavar="PATTERN",
            help=f"limit the key to memories whose {kind.replace('-', '_')} matches (repeatable; * is a wildcard)",
        )
    actions.add_parser("list", help="every key, without secrets")
    revoke = actions.add_parser("revoke", help="a revoked key answers 401 from then on")
    revoke.add_argument("key_id")


async def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    conninfo = await resolve_conninfo(settings)
    await migrate(conninfo, collection=settings.collection_name, dims=settings.embedding_dims)
    repository = KeyRepository()
    async with AsyncConnectionPool(conninfo, min_size=1, max_size=1, open=False) as pool:
        if args.keys_command == "create":
            patterns = {"user_id": args.user_id, "agent_id": args.agent_id, "run_id": args.run_id}
            if not args.admin and not any(patterns.values()):
                print("keys: a key is --admin or limited by --user-id/--agent-id/--run-id", file=sys.stderr)
                return 2
            secret = await create_key(pool, repository, args.name, admin=args.admin, patterns=patterns)
            print(secret)
            print("store it now: it is not shown again", file=sys.stderr)
        elif args.keys_command == "list":
            for key in await list_keys(pool, repository):
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                scope = "admin" if key.admin else " ".join(f"{k}={','.join(v)}" for k, v in key.patterns.items())
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                print(f"{key.id}\t{key.name}\t{scope}\t{state}\tcreated {key.created_at:%Y-%m-%d}\tused {used}")
        elif not await revoke_key(pool, repository, args.key_id):
            print(f"keys: no active key {args.key_id!r}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {args.key_id}")
    return 0
