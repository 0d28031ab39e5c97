"""In-process egress guard: every outbound connection is checked against an allow-list built from the settings.

Python's audit hooks see `socket.getaddrinfo`, `socket.connect`, `socket.sendto` and `socket.sendmsg` before a
packet leaves; a refused destination raises `EgressBlocked` in the caller. libpq connects in C (no audit event),
but psycopg resolves names through Python's getaddrinfo, so the database host must be, and is, allowed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from app.config import Settings

logger = logging.getLogger(__name__)

GuardMode = Literal["enforce", "log", "off"]
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)
# Frames from these modules are plumbing; the "caller" reported is the first frame outside them.
_PLUMBING = (
    "socket",
    "ssl",
    "asyncio",
    "selectors",
    "anyio",
    "aiohttp",
    "httpx",
    "httpcore",
    "urllib3",
    "http.",
    "app.egress",
    "requests",
    "concurrent.",
    "threading",
)


class EgressBlocked(PermissionError):
    """A connection to a host outside the allow-list was refused before anything was sent."""


def database_hosts(settings: Settings) -> set[str]:
    """Every network host the configured Postgres connection string names (none for unix sockets)."""
    if settings.uses_embedded_postgres:
        return set()
    conninfo = settings.conninfo()
    parts = urlsplit(conninfo)
    hosts: set[str] = set()
    if parts.hostname:
        hosts.add(parts.hostname)
    for extra in parse_qs(parts.query).get("host", []) + parse_qs(parts.query).get("hostaddr", []):
        hosts.update(host for host in extra.split(",") if host and not host.startswith("/"))
    return hosts


def allowed_hosts(settings: Settings) -> set[str]:
    hosts = {urlsplit(settings.ollama_base_url).hostname or ""} | database_hosts(settings)
    if settings.neo4j_uri:
        hosts.add(urlsplit(settings.neo4j_uri).hostname or "")
    return {host.lower() for host in hosts if host}


class EgressGuard:
    """Decides per destination; counts and logs (once per host) what it refuses."""

    def __init__(self, mode: GuardMode, hosts: Iterable[str], on_block: Callable[[str], None] | None = None) -> None:
        self.mode = mode
        self.allowed_names = {host.lower() for host in hosts} | LOOPBACK_NAMES
        self.allowed_ips = {host for host in self.allowed_names if _is_ip(host)}
        self.blocked: Counter[str] = Counter()
        self._warned: set[str] = set()
        self.on_block = on_block
        self._busy = threading.local()

    def resolve_allowed(self) -> None:
        """Learn the addresses of allowed names up front, so a connect to their IP passes too."""
        for name in list(self.allowed_names - LOOPBACK_NAMES - self.allowed_ips):
            try:
                infos = socket.getaddrinfo(name, None)
            except OSError as error:
                logger.warning(
                    "egress guard could not resolve an allowed host yet", extra={"host": name, "error": str(error)}
                )
                continue
            self.allowed_ips.update(str(info[4][0]) for info in infos)

    def is_allowed(self, host: str) -> bool:
        host = host.lower().strip("[]")
        if host in self.allowed_names or host in self.allowed_ips:
            return True
        try:
            return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
        except ValueError:
            return False

    def check(self, host: Any, port: Any) -> None:
        if host is None or (isinstance(host, bytes | bytearray) and not host):
            return
        name = host.decode("idna") if isinstance(host, bytes | bytearray) else str(host)
        if not name or self.is_allowed(name):
            return
        self.blocked[name] += 1
        if self.on_block is not None:
            self.on_block(name)
        if name not in self._warned:
            self._warned.add(name)
            logger.warning(
                "egress blocked" if self.mode == "enforce" else "egress outside the allow-list",
                extra={"host": name, "port": port, "caller": _calling_module()},
            )
        if self.mode == "enforce":
            raise EgressBlocked(f"egress to {name}:{port} is not allowed (MEM0_EGRESS_GUARD=enforce)")

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not event.startswith("socket.") or getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            if event == "socket.getaddrinfo":
                self.check(args[0], args[1])
            elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
                sock, address = args[0], args[1]
                if getattr(sock, "family", None) in _NETWORK_FAMILIES and isinstance(address, tuple) and address:
                    self.check(address[0], address[1] if len(address) > 1 else None)
        finally:
            self._busy.active = False

    @property
    def blocked_total(self) -> int:
        return sum(self.blocked.values())


def install_egress_guard(settings: Settings, on_block: Callable[[str], None] | None = None) -> EgressGuard | None:
    """Install the process-wide hook once (audit hooks cannot be removed); None when the guard is off."""
    if settings.egress_guard == "off":
        return None
    guard = EgressGuard(settings.egress_guard, allowed_hosts(settings), on_block)
    guard.resolve_allowed()
    sys.addaudithook(guard.audit)
    logger.info(
        "egress guard installed", extra={"mode": guard.mode, "allowed": sorted(guard.allowed_names - LOOPBACK_NAMES)}
    )
    return guard


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _calling_module() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", "?"))
        if not module.startswith(_PLUMBING):
            return module
        frame = frame.f_back  # type: ignore[assignment]
    return "?"
