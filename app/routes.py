"""The app's routes as one flat list: FastAPI wraps each included router, and the app includes them all without a
prefix, so their paths match unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope


def leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from leaf_routes(included.routes)
        else:
            yield route


def routes_matching(routes: Sequence[BaseRoute], scope: Scope) -> list[BaseRoute]:
    """The routes whose path matches the request's, whatever their methods, in the order the app tries them."""
    return [route for route in leaf_routes(routes) if route.matches(scope)[0] is not Match.NONE]
