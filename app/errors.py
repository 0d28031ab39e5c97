"""One error type per failure kind, one JSON shape `{error, message, request_id}`, one handler."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.routes import routes_matching

logger = logging.getLogger(__name__)


EXIT_STARTUP = 1  # the exit code of a server or command that cannot start


class StartupError(Exception):
    """The server cannot serve; the message names the cause and the fix."""


class AppError(Exception):
    """Base of every error the API answers with; subclasses fix the status and the error code."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, headers: Mapping[str, str] | None = None, fields: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        # Extra members of the error body that a client acts on (e.g. the job_id of a failed job).
        self.fields = dict(fields or {})


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Unauthorized(AppError):
    """No API key, or one that is unknown or revoked."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="mem0-fixed"'})


class RateLimited(AppError):
    """The key sent more requests than MEM0_RATE_LIMIT allows; Retry-After says when to go on."""

    status_code = 429
    code = "rate_limited"


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"


class IdempotencyKeyInUse(Conflict):
    """Another request holding the same key is still running; Retry-After says when to ask again."""

    code = "idempotency_key_in_use"


class IdempotencyKeyReused(InvalidInput):
    """The key was already used for a different request (method, path or body)."""

    code = "idempotency_key_reused"


class QueueFull(AppError):
    """More inferred writes wait than MEM0_QUEUE_MAX allows; retry after Retry-After."""

    status_code = 429
    code = "queue_full"


class JobFailed(AppError):
    """An inferred write's job ended FAILED (Ollama down after every retry, or truncation)."""

    status_code = 502
    code = "job_failed"


class PoisonJob(AppError):
    """A job whose lease ran out AFTER_LEASE_EXPIRIES times took its worker (or server) down each time."""

    code = "poison_job"
    AFTER_LEASE_EXPIRIES = 3

    def __init__(self, expiries: int) -> None:
        super().__init__(
            f"the job's lease ran out {expiries} times (its worker or server died each time); "
            "failed as poison so it cannot stop the queue; inspect its messages and retry it by hand"
        )


class NoFactsFound(InvalidInput):
    """The model found nothing to remember and MEM0_INFER_EMPTY_POLICY=reject."""

    code = "no_facts"


class UpstreamError(AppError):
    """Ollama answered, but not with something usable."""

    status_code = 502
    code = "upstream_error"


class EmbeddingDimensionMismatch(UpstreamError):
    code = "embedding_dimension_mismatch"


class InvalidModelOutput(UpstreamError):
    """The model's reply cannot be stored as it is (invalid Unicode, not the asked-for shape)."""

    code = "invalid_model_output"


class UpstreamUnavailable(AppError):
    status_code = 503
    code = "upstream_unavailable"


class UpstreamTimeout(AppError):
    status_code = 504
    code = "upstream_timeout"


class StorageUnavailable(AppError):
    status_code = 503
    code = "storage_unavailable"


class ErrorBody(BaseModel):
    """The one error shape; a few errors add members a client acts on (a failed job's `job_id`)."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str
    detail: str
    request_id: str


# Documented on every route (OpenAPI status ranges), so clients and fuzzers know what a 4xx or 5xx carries.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "A client mistake; `message` says what to fix."},
    "5XX": {"model": ErrorBody, "description": "Ollama or the database failed; quote `request_id` when reporting it."},
}


def new_request_id() -> str:
    """32 random hex digits, a UUID's length; without building a UUID object on every request."""
    return secrets.token_hex(16)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> JSONResponse:
    request_id = request_id_of(request)
    all_headers = {"X-Request-ID": request_id, **(headers or {})}
    # `detail` repeats `message` for mem0's official clients, which read the error text from `detail`.
    body = {**(fields or {}), "error": code, "message": message, "detail": message, "request_id": request_id}
    return JSONResponse(body, status_code=status_code, headers=all_headers)


def describe_problems(errors: Sequence[Mapping[str, Any]], whole: str = "body") -> str:
    """Pydantic's errors as one message a client acts on: `field.path: reason` per problem (never the value sent);
    `whole` names a problem with the input as a whole."""
    problems = []
    for item in errors:
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or whole
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{location}: {message}")
    return "; ".join(problems) or f"invalid {whole}"


def _describe_validation(exc: RequestValidationError) -> tuple[int, str]:
    if any(item.get("type") == "json_invalid" for item in exc.errors()):
        return 400, "the request body is not valid JSON; send a JSON object with Content-Type: application/json"
    return 422, describe_problems(exc.errors())


async def _handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code >= 500:
        logger.warning("request failed: %s: %s", exc.code, exc.message)
    return error_response(request, exc.status_code, exc.code, exc.message, exc.headers, exc.fields)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, message = _describe_validation(exc)
    return error_response(request, status, "bad_request" if status == 400 else "invalid_input", message)


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    headers: dict[str, Any] = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        # Starlette's Allow names only the first route matching the path; several routes may share it.
        headers["Allow"] = allowed_methods(request)
        message = f"{request.method} is not allowed here; use {headers['Allow']}"
    return error_response(request, exc.status_code, codes.get(exc.status_code, "http_error"), message, headers)


def allowed_methods(request: Request) -> str:
    matching = routes_matching(request.app.router.routes, request.scope)
    return ", ".join(sorted({method for route in matching for method in getattr(route, "methods", None) or ()}))


def internal_error_response(request: Request) -> JSONResponse:
    """The answer to an exception no handler knows. Sent by RequestContextMiddleware, which does not re-raise
    (Starlette's ServerErrorMiddleware would, and uvicorn then drops the keep-alive connection)."""
    logger.exception("unhandled error")
    return error_response(
        request, 500, "internal_error", "the server failed unexpectedly; quote the request_id when reporting it"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
