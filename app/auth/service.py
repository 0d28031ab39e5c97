"""API keys: minted once (the secret is shown only then), stored as salted hashes, checked on every request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cachetools import TTLCache
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg_pool import AsyncConnectionPool

from app.auth.access import EVERYTHING, Access
from app.auth.rates import SharedRateLimiter, retry_after
from app.auth.repository import KeyListing, KeyRepository, StoredKey
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import RateLimited, Unauthorized

logger = logging.getLogger(__name__)

KEY_PREFIX = "m0fk_"
ENV_ADMIN_ID = "env-admin"
# A first start with no key at all generates the admin key into this file under MEM0_DATA_DIR.
ADMIN_KEY_FILE = "admin-api-key"
GENERATED_ADMIN_NAME = "admin (generated at first start)"
_MINTED_KEY = re.compile(r"m0fk_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}")
TOUCH_EVERY_S = 60.0
FAILURES = "auth-failures"  # the limiter's namespace for failed sign-ins per client address
VERIFIED_TTL_S = 5.0
AUTH_HINT = (
    "send the API key in a header: `X-API-Key: <key>`, `Authorization: Token <key>` or `Authorization: Bearer <key>` "
    "(this server uses API keys, not OAuth)"
)


def digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()


def stored_key(key_id: str, secret: str, *, admin: bool, patterns: Mapping[str, Sequence[str]]) -> StoredKey:
    salt = secrets.token_bytes(16)
    return StoredKey(key_id, salt, digest(salt, secret), admin, {k: tuple(v) for k, v in patterns.items() if v})


def mint(*, admin: bool, patterns: Mapping[str, Sequence[str]]) -> tuple[StoredKey, str]:
    """A new key: what to store, and the secret to show once."""
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return stored_key(key_id, secret, admin=admin, patterns=patterns), secret


def write_owner_only(path: Path, secret: str) -> None:
    """`secret` in `path`, readable by its owner only from the first byte: mkstemp creates a new file (O_EXCL,
    mode 0600, never an older file with wider permissions), renamed over whatever `path` held once complete.
    No newline: the file's content is the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `X-API-Key` (upstream mem0's header) or `Authorization: Bearer|Token <key>` (mem0's clients)."""
    if api_key := headers.get("x-api-key"):
        return api_key.strip()
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and credentials.strip():
        return credentials.strip()
    return None


class KeyService:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, repository: KeyRepository) -> None:
        self.settings = settings
        self.pool = pool
        self.repository = repository
        self.rates = SharedRateLimiter(parse(settings.rate_limit), pool, repository) if settings.rate_limit else None
        self.failure_rate = parse(settings.auth_failure_limit) if settings.auth_failure_limit else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self._touched: dict[str, float] = {}
        # A verified key is trusted for VERIFIED_TTL_S without a database round trip per request; a revocation
        # takes effect within that time.
        self._verified: TTLCache[bytes, Access] = TTLCache(maxsize=10_000, ttl=VERIFIED_TTL_S)

    async def bootstrap(self) -> Path | None:
        """Store MEM0_ADMIN_API_KEY's hash (replacing an earlier one). Without it, on a database where no key can
        sign in, generate an admin key and write it to MEM0_DATA_DIR/admin-api-key: that file's path, else None.

        The file is written before the key's row commits: a failed write leaves no key that nobody holds."""
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            if self.settings.admin_api_key is not None:
                secret = self.settings.admin_api_key.get_secret_value()
                key = stored_key(ENV_ADMIN_ID, secret, admin=True, patterns={})
                await self.repository.upsert_admin(conn, key, "admin (MEM0_ADMIN_API_KEY)")
                return None
            await self.repository.lock_bootstrap(conn)
            if await self.repository.count_active(conn) > 0:
                return None
            key, secret = mint(admin=True, patterns={})
            await self.repository.insert(conn, key, GENERATED_ADMIN_NAME)
            path = self.settings.data_dir.expanduser().resolve() / ADMIN_KEY_FILE
            await asyncio.to_thread(write_owner_only, path, secret)
            return path

    async def authenticate(self, headers: Mapping[str, str], client: str | None = None) -> Access:
        """The presented key's Access: 401 without a valid one, 429 past its rate limit. A key verified in the last
        VERIFIED_TTL_S costs nothing; an unknown one costs a database look-up, so an address whose look-ups failed
        more than MEM0_AUTH_FAILURE_LIMIT allows is refused (429) before another."""
        if self.settings.auth_disabled:
            return EVERYTHING
        secret = presented_key(headers)
        if secret is None:
            raise Unauthorized(f"this route needs an API key; {AUTH_HINT}")
        fingerprint = hashlib.sha256(secret.encode("utf-8")).digest()
        access = self._verified.get(fingerprint)
        if access is None:
            self._refuse_failing(client)
            try:
                access = await self._verify(secret, fingerprint)
            except Unauthorized:
                if client is not None and self.failure_rate is not None:
                    self.limiter.hit(self.failure_rate, FAILURES, client)
                raise
        await self._limit(access.key_id)
        return access

    def _refuse_failing(self, client: str | None) -> None:
        if client is None or self.failure_rate is None or self.limiter.test(self.failure_rate, FAILURES, client):
            return
        reset_at, _ = self.limiter.get_window_stats(self.failure_rate, FAILURES, client)
        raise self._rate_limited(
            f"this address sent more than {self.settings.auth_failure_limit} unknown API keys "
            "(MEM0_AUTH_FAILURE_LIMIT)",
            reset_at - time.time(),
        )

    async def _verify(self, secret: str, fingerprint: bytes) -> Access:
        match = _MINTED_KEY.fullmatch(secret)
        key_id = match.group(1) if match else ENV_ADMIN_ID
        async with storage_errors(), self.pool.connection() as conn:
            key = await self.repository.active(conn, key_id)
            if key is None or not hmac.compare_digest(key.secret_hash, digest(key.salt, secret)):
                raise Unauthorized(f"the API key is unknown or revoked; {AUTH_HINT}")
            if time.monotonic() - self._touched.get(key_id, float("-inf")) > TOUCH_EVERY_S:
                self._touched[key_id] = time.monotonic()
                await self.repository.touch(conn, key_id)
        access = Access(f"key:{key_id}", key.admin, key.patterns)
        self._verified[fingerprint] = access
        return access

    async def _limit(self, key_id: str) -> None:
        if self.rates is None or (wait_s := await self.rates.admit(key_id)) is None:
            return
        raise self._rate_limited(
            f"this API key sent more than {self.settings.rate_limit} (MEM0_RATE_LIMIT, over every replica)", wait_s
        )

    def _rate_limited(self, what: str, wait_s: float) -> RateLimited:
        seconds = retry_after(wait_s)
        return RateLimited(f"{what}; retry after {seconds} s", headers={"Retry-After": seconds})


async def create_key(
    pool: AsyncConnectionPool,
    repository: KeyRepository,
    name: str,
    *,
    admin: bool,
    patterns: Mapping[str, Sequence[str]],
) -> str:
    key, secret = mint(admin=admin, patterns=patterns)
    async with storage_errors(), pool.connection() as conn:
        await repository.insert(conn, key, name)
    return secret


async def list_keys(pool: AsyncConnectionPool, repository: KeyRepository) -> list[KeyListing]:
    async with storage_errors(), pool.connection() as conn:
        return await repository.listing(conn)


async def revoke_key(pool: AsyncConnectionPool, repository: KeyRepository, key_id: str) -> bool:
    async with storage_errors(), pool.connection() as conn:
        return await repository.revoke(conn, key_id)
