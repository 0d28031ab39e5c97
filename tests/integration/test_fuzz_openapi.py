"""Schemathesis against the server's own OpenAPI document (`/openapi.json` as the in-process app serves it, and its
requests sent to that app), bounded so it stays fast: for every operation, requests that fit the document and requests that do not, and not one 5xx; every
answer has a documented status, content type and schema. The long run is `python -m scripts.fuzz`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.support.inprocess import BASE_URL
from tests.support.server_process import TEST_ADMIN_KEY

EXAMPLES_PER_OPERATION = 25
UNSIGNED_EXAMPLES_PER_OPERATION = 5
SIGNED_IN = {"X-API-Key": TEST_ADMIN_KEY}
# Answer without a key: orchestrators' probes and Prometheus.
OPEN_PATHS = {"/health", "/ready", "/metrics"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def has_invalid_requests(operation: dict[str, Any]) -> bool:
    return "requestBody" in operation or any(p["in"] != "path" for p in operation.get("parameters", []))


# Collected from the app's routes, so each operation is its own test; the test fuzzes the document the server serves.
# An operation whose only inputs are string path segments has no invalid request to generate: every segment is one.
DOCUMENT = create_app(Settings(DATABASE_URL="postgresql://unused")).openapi()
CASES = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}")
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or has_invalid_requests(operation)
]


@pytest.fixture(scope="module")
def served_document(app_server):
    with app_server.client() as client:
        return schemathesis.openapi.from_dict(client.get("/openapi.json").raise_for_status().json())


@pytest.fixture(scope="module")
def session(app_server) -> Iterator[requests.Session]:
    """Sends schemathesis' requests to the in-process app; only the headers each case gives (no key by default)."""
    with app_server.requests_session() as session:
        yield session


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_operation_answers_without_5xx_and_as_documented(served_document, session, method, path, mode):
    operation = served_document[path][method]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case):
        case.call_and_validate(base_url=BASE_URL, session=session, headers=SIGNED_IN, checks=CHECKS)

    answers_as_documented()


UNSIGNED_CASES = [
    pytest.param(method.upper(), path, id=f"{method.upper()} {path} without a key")
    for path, methods in DOCUMENT["paths"].items()
    for method in methods
    if path not in OPEN_PATHS
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), UNSIGNED_CASES)
def test_without_a_key_no_operation_answers_2xx(served_document, session, method, path):
    """401, or an earlier 4xx from the request bounds (app/limits.py runs before anything reads a key)."""
    operation = served_document[path][method]

    @settings(
        max_examples=UNSIGNED_EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def refused(case):
        response = case.call(base_url=BASE_URL, session=session)
        assert 400 <= response.status_code < 500, (case.method, case.formatted_path, response.text)
        statuses.append(response.status_code)

    statuses: list[int] = []
    refused()
    assert 401 in statuses, statuses
