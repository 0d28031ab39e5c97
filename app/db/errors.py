"""Maps database failures to API errors in one place, by SQLSTATE and constraint name."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from app.errors import AppError, Conflict, IdempotencyKeyInUse, InvalidInput, StorageUnavailable

logger = logging.getLogger(__name__)

# Constraint name -> (error type, message). Primary keys are random UUIDs, so a clash means a replayed insert.
CONSTRAINT_ERRORS: dict[str, tuple[type[AppError], str]] = {
    # Claims use ON CONFLICT, so this only fires if a future statement inserts a key without it.
    "idempotency_keys_pkey": (IdempotencyKeyInUse, "this Idempotency-Key is held by another request; retry later"),
}


def translate(error: psycopg.Error) -> AppError:
    constraint = getattr(error.diag, "constraint_name", None)
    if constraint and constraint in CONSTRAINT_ERRORS:
        kind, message = CONSTRAINT_ERRORS[constraint]
        return kind(message)
    if isinstance(error, pg.UniqueViolation):
        return Conflict(f"a row with this key already exists ({constraint or 'unique constraint'})")
    if isinstance(error, psycopg.DataError):
        # SQLSTATE class 22 (and psycopg's own refusal of a NUL in text): a value in the request, not the database.
        return InvalidInput(f"the database cannot store a value in this request ({_reason(error)}); change it")
    if isinstance(error, pg.OperationalError | pg.AdminShutdown | pg.QueryCanceled):
        return StorageUnavailable(f"the database is unavailable: {type(error).__name__}")
    logger.error("database error", extra={"sqlstate": error.sqlstate, "error_type": type(error).__name__})
    return StorageUnavailable(f"the database rejected the operation ({error.sqlstate or type(error).__name__})")


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Wrap every database use: psycopg and pool failures leave as API errors, never as bare 500s."""
    try:
        yield
    except PoolTimeout as error:
        # Every connection busy, or none could be opened: during an outage the pool keeps failing to reconnect.
        raise StorageUnavailable(
            "the database is unavailable: no connection could be obtained in time; retry later"
        ) from error
    except psycopg.Error as error:
        raise translate(error) from error
    except UnicodeEncodeError as error:
        raise InvalidInput("the request holds text that is not valid Unicode (a lone surrogate); fix it") from error


def _reason(error: psycopg.Error) -> str:
    """Postgres's one-line reason (its detail lines, which may quote whole rows, left out)."""
    primary = getattr(error.diag, "message_primary", None) or str(error).split("\n", 1)[0]
    return str(primary)[:200]
