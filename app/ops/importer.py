"""`mem0-fixed import`: an upstream mem0 pgvector table (any dimension) and its SQLite history.db, re-embedded with
the configured Ollama embedder and written into this server's memories and memory_history tables.

Each batch is one transaction (its memories and their history), inserted with ON CONFLICT DO NOTHING after skipping
the ids already there, so an interrupted import continues where it stopped when run again and a finished one
imports nothing. The source table and upstream's mem0migrations are only read: the source connection is read-only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from app.checks import MEM0_TELEMETRY_TABLE, vector_column_dims
from app.config import Settings
from app.db.connect import resolve_conninfo
from app.db.migrator import MigrationError, migrate
from app.db.queries import parse_named_queries
from app.errors import AppError, StartupError
from app.llm.client import OllamaClient, build_ollama_client
from app.memories.keywords import lemmatize_for_bm25
from app.memories.payloads import memory_hash
from app.ops.upstream_history import history_rows, read_history

EXIT_FAILED = 1
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_import_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "import", help="copy an upstream mem0 table (any dims) and its history.db in, re-embedded; resumable"
    )
    parser.add_argument("--from-table", required=True, help="the upstream mem0 collection (table) to read")
    parser.add_argument("--from-database-url", help="the upstream database (default: this server's database)")
    parser.add_argument("--history-db", type=Path, help="upstream mem0's SQLite history.db")
    parser.add_argument("--batch-size", type=int, default=50, help="memories per embed call and transaction (50)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")


def _queries(collection: str, source: str) -> dict[str, sql.Composed]:
    text = resources.files("app.ops").joinpath("importer.sql").read_text(encoding="utf-8")
    return {
        name: sql.SQL(body.replace("{collection}", collection)).format(source=sql.Identifier(source))
        for name, body in parse_named_queries(text).items()
    }


@dataclass
class Batch:
    """One batch of source rows: the importable ones (uuid id, text in payload.data) and how many were not."""

    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bad_ids: int = 0
    without_text: int = 0

    @classmethod
    def of(cls, raw: list[tuple[Any, Any]]) -> Batch:
        batch = cls()
        for source_id, payload in raw:
            try:
                memory_id = str(uuid.UUID(str(source_id)))
            except ValueError:
                batch.bad_ids += 1
                continue
            text = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(text, str) or not text.strip():
                batch.without_text += 1
                continue
            batch.rows.append((memory_id, payload))
        return batch


@dataclass
class Tally:
    total: int
    started: float = field(default_factory=time.monotonic)
    seen: int = 0
    imported: int = 0
    present: int = 0
    history: int = 0
    bad_ids: int = 0
    without_text: int = 0

    def count(self, batch: Batch, raw_rows: int) -> None:
        self.seen += raw_rows
        self.bad_ids += batch.bad_ids
        self.without_text += batch.without_text

    def progress(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        # Rows already there pass without an embed call, so the ETA is paced by the rows this run imported.
        rate = (self.imported or self.seen) / elapsed
        eta = (self.total - self.seen) / rate if rate else 0.0
        percent = 100 * self.seen // max(self.total, 1)
        return (
            f"{self.seen}/{self.total} rows ({percent}%): {self.imported} imported, {self.present} already there; "
            f"{rate:.1f} imported/s, ETA {eta:.0f}s"
        )

    def skipped(self) -> str:
        return f"{self.bad_ids} with an id that is not a UUID and {self.without_text} without text skipped"


def imported_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Upstream's payload, every key kept; `text_lemmatized` is what this server's keyword search matches its own
    queries against (payloads.py), so it is set the same way, and a missing `hash` is filled as mem0 computes it."""
    text = str(payload["data"])
    return {**payload, "hash": payload.get("hash") or memory_hash(text), "text_lemmatized": lemmatize_for_bm25(text)}


class Importer:
    def __init__(
        self,
        settings: Settings,
        queries: dict[str, sql.Composed],
        target: AsyncConnection,
        ollama: OllamaClient,
        history: dict[str, list[dict[str, Any]]],
    ) -> None:
        self.settings = settings
        self.q = queries
        self.target = target
        self.ollama = ollama
        self.history = history

    async def already_there(self, ids: list[str]) -> set[str]:
        cursor = await self.target.execute(self.q["already_imported"], {"ids": ids})
        return {str(row[0]) for row in await cursor.fetchall()}

    async def write(self, batch: Batch, tally: Tally) -> None:
        present = await self.already_there([memory_id for memory_id, _ in batch.rows])
        todo = [(memory_id, payload) for memory_id, payload in batch.rows if memory_id not in present]
        tally.present += len(present)
        if not todo:
            return
        payloads = [imported_payload(payload) for _, payload in todo]
        # Embedded before the transaction opens, so no transaction waits on Ollama.
        vectors = await self.ollama.embed(
            self.settings.embedder_model, [p["data"] for p in payloads], dims=self.settings.embedding_dims
        )
        async with self.target.transaction():
            cursor = await self.target.execute(
                self.q["insert_memories"],
                {
                    "ids": [memory_id for memory_id, _ in todo],
                    "vectors": [Vector(vector) for vector in vectors],
                    "payloads": [Jsonb(payload) for payload in payloads],
                },
            )
            inserted = {str(row[0]) for row in await cursor.fetchall()}
            # Only the rows this run inserted get history: a row another run added has its history already.
            events = [
                event
                for (memory_id, _), payload in zip(todo, payloads, strict=True)
                if memory_id in inserted
                for event in history_rows(memory_id, self.history.get(memory_id, []), payload)
            ]
            if events:
                async with self.target.cursor() as history_cursor:
                    await history_cursor.executemany(self.q["insert_history"], events)
        tally.imported += len(inserted)
        tally.present += len(todo) - len(inserted)
        tally.history += len(events)


async def run_import(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch_size < 1 or not TABLE_NAME.match(args.from_table):
        print("import: --batch-size must be >= 1 and --from-table a plain table name", file=sys.stderr)
        return EXIT_FAILED
    try:
        target = await resolve_conninfo(settings)
        source = args.from_database_url or target
        if source == target and args.from_table == settings.collection_name:
            print(f"import: {args.from_table!r} is this server's own memories table", file=sys.stderr)
            return EXIT_FAILED
        history = read_history(args.history_db) if args.history_db else {}
        queries = _queries(settings.collection_name, args.from_table)
        # Not autocommit: the named cursor that streams the source lives in one read-only transaction.
        async with await AsyncConnection.connect(source) as source_conn:
            await source_conn.set_read_only(True)
            return await _import(args, settings, queries, source_conn, target, history)
    except (AppError, StartupError, MigrationError, psycopg.Error, OSError, ValueError) as error:
        message = error.message if isinstance(error, AppError) else str(error).strip()
        print(f"import stopped: {message}; what was committed stays, run it again to continue", file=sys.stderr)
        return EXIT_FAILED


async def _import(
    args: argparse.Namespace,
    settings: Settings,
    q: dict[str, sql.Composed],
    source_conn: AsyncConnection,
    target: str,
    history: dict[str, list[dict[str, Any]]],
) -> int:
    cursor = await source_conn.execute(q["source_count"])
    total = int((await cursor.fetchone() or (0,))[0])
    dims = await vector_column_dims(source_conn, [args.from_table, MEM0_TELEMETRY_TABLE])
    found = dims.get(f"{args.from_table}.vector")
    print(
        f"source: {args.from_table}, {total} rows, vector({found}); configured: vector({settings.embedding_dims}) "
        f"with {settings.embedder_model}, so every row is embedded again from payload.data"
    )
    print(f"history: {sum(len(rows) for rows in history.values())} rows for {len(history)} memories in history.db")
    leftover = dims.get(f"{MEM0_TELEMETRY_TABLE}.vector")
    if leftover is not None:
        print(
            f"{MEM0_TELEMETRY_TABLE}: vector({leftover}) in the source database, left alone like {args.from_table}"
            + (
                " (this server refuses to start while it shares its database: drop it when done)"
                if (leftover != settings.embedding_dims and args.from_database_url is None)
                else ""
            )
        )
    if args.dry_run:
        return await _dry_run(args, q, source_conn, target, total)
    await migrate(target, collection=settings.collection_name, dims=settings.embedding_dims)
    ollama = build_ollama_client(settings)
    tally = Tally(total)
    try:
        async with await AsyncConnection.connect(target, autocommit=True) as target_conn:
            await register_vector_async(target_conn)
            importer = Importer(settings, q, target_conn, ollama, history)
            async with source_conn.cursor(name="mem0_fixed_import") as rows:
                await rows.execute(q["source_rows"])
                while raw := await rows.fetchmany(args.batch_size):
                    batch = Batch.of(raw)
                    tally.count(batch, len(raw))
                    await importer.write(batch, tally)
                    print(tally.progress(), flush=True)
    finally:
        await ollama.close()
    print(
        f"imported {tally.imported} memories with {tally.history} history rows; {tally.present} were there already; "
        f"{tally.skipped()}; {args.from_table} and {MEM0_TELEMETRY_TABLE} left as they were"
    )
    return 0


async def _dry_run(
    args: argparse.Namespace, q: dict[str, sql.Composed], source_conn: AsyncConnection, target: str, total: int
) -> int:
    tally = Tally(total)
    async with await AsyncConnection.connect(target, autocommit=True) as target_conn:
        cursor = await target_conn.execute(q["target_exists"])
        target_exists = bool((await cursor.fetchone() or (False,))[0])
        async with source_conn.cursor(name="mem0_fixed_import_dry_run") as rows:
            await rows.execute(q["source_rows"])
            while raw := await rows.fetchmany(args.batch_size):
                batch = Batch.of(raw)
                tally.count(batch, len(raw))
                if target_exists:
                    ids = [memory_id for memory_id, _ in batch.rows]
                    found = await target_conn.execute(q["already_imported"], {"ids": ids})
                    tally.present += len(await found.fetchall())
                tally.imported += len(batch.rows)  # here: the importable rows
    print(
        f"dry run: would import {tally.imported - tally.present} memories ({tally.present} already there, "
        f"{tally.skipped()}); nothing written, {args.from_table} and {MEM0_TELEMETRY_TABLE} left alone"
    )
    return 0
