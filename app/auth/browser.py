"""Defences against web pages: a Host allow-list (DNS rebinding) and no state change from a simple cross-site
request (a non-JSON body, or an Origin the server does not know)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(value: str) -> str:
    """`Host` or an Origin's netloc without its port, lower-cased; IPv6 without brackets. Empty when there is none
    or it cannot be parsed (`[::1`)."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def allowed_name(value: str) -> str:
    """A name of MEM0_ALLOWED_HOSTS as `host_name` reads a request's: a bare IPv6 address (`::1`) included."""
    value = value.strip()
    return host_name(f"[{value}]" if value.count(":") > 1 and not value.startswith("[") else value)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class BrowserDefenseMiddleware:
    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], cors_origins: Sequence[str]) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = frozenset(allowed_name(h) for h in allowed_hosts if h != "*") - {""}
        self.cors_origins = frozenset(origin.rstrip("/").lower() for origin in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        await error_response(Request(scope), status, code, message)(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        host = host_name(headers.get("host", ""))
        if not host or (not self.any_host and host not in self.allowed_hosts):
            return (
                400,
                "invalid_host",
                f"this server does not answer to Host {host[:64]!r}; add the name to MEM0_ALLOWED_HOSTS",
            )
        if scope["method"] not in STATE_CHANGING:
            return None
        content_type = headers.get("content-type")
        if content_type is not None and not is_json(content_type):
            return 415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json"
        origin = headers.get("origin")
        if origin is not None and not self._known_origin(origin):
            return (
                403,
                "cross_origin_refused",
                "requests from this web origin may not change data; add it to MEM0_CORS_ORIGINS if it is yours",
            )
        return None

    def _known_origin(self, origin: str) -> bool:
        """A configured CORS origin, or a web origin on an allowed host; `null` (sandboxed pages, file://) and other
        origins without a host are never known."""
        if origin.rstrip("/").lower() in self.cors_origins:
            return True
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False
        return host_name(netloc) in self.allowed_hosts
