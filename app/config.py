"""Settings read from the environment only, validated once at startup.

Every default points at a local service; nothing here can select a remote provider.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from limits import parse
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SUPPORTED_PROVIDER = "ollama"
# mem0's own list of memory categories.
DEFAULT_CATEGORIES = (
    "personal_details",
    "family",
    "professional_details",
    "sports",
    "travel",
    "food",
    "music",
    "health",
    "technology",
    "hobbies",
    "fashion",
    "entertainment",
    "milestones",
    "user_preferences",
    "misc",
)
CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
SECRET_FIELDS = frozenset({"postgres_password", "database_url", "admin_api_key", "neo4j_password"})
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1", "mem0")


class ConfigError(Exception):
    """The environment holds a value the server cannot run with."""


class Settings(BaseSettings):
    """The server's whole configuration; field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # Postgres: upstream mem0's names, or one DATABASE_URL. Neither set means the embedded server.
    database_url: SecretStr | None = Field(None, validation_alias=AliasChoices("DATABASE_URL"))
    postgres_host: str | None = Field(None, validation_alias=AliasChoices("POSTGRES_HOST"))
    postgres_port: int = Field(5432, validation_alias=AliasChoices("POSTGRES_PORT"))
    postgres_db: str = Field("postgres", validation_alias=AliasChoices("POSTGRES_DB"))
    postgres_user: str = Field("postgres", validation_alias=AliasChoices("POSTGRES_USER"))
    postgres_password: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("POSTGRES_PASSWORD"))
    collection_name: str = Field(
        "memories", pattern=r"^[a-z_][a-z0-9_]{0,47}$", validation_alias=AliasChoices("POSTGRES_COLLECTION_NAME")
    )
    pool_min_size: int = Field(2, ge=1, validation_alias=AliasChoices("MEM0_DB_POOL_MIN"))
    pool_max_size: int = Field(20, ge=1, validation_alias=AliasChoices("MEM0_DB_POOL_MAX"))
    db_timeout_s: float = Field(10.0, gt=0, validation_alias=AliasChoices("MEM0_DB_TIMEOUT_S"))
    data_dir: Path = Field(Path("./data"), validation_alias=AliasChoices("MEM0_DATA_DIR"))

    # Ollama: the only provider.
    ollama_base_url: str = Field("http://localhost:11434", validation_alias=AliasChoices("OLLAMA_BASE_URL"))
    llm_provider: str = Field(SUPPORTED_PROVIDER, validation_alias=AliasChoices("MEM0_LLM_PROVIDER"))
    embedder_provider: str = Field(SUPPORTED_PROVIDER, validation_alias=AliasChoices("MEM0_EMBEDDER_PROVIDER"))
    llm_model: str = Field("mistral:7b-instruct-q5_K_M", min_length=1, validation_alias=AliasChoices("MEM0_LLM_MODEL"))
    embedder_model: str = Field(
        "nomic-embed-text:latest", min_length=1, validation_alias=AliasChoices("MEM0_EMBEDDER_MODEL")
    )
    embedding_dims: int = Field(768, ge=1, le=16000, validation_alias=AliasChoices("MEM0_EMBEDDING_DIMS"))
    ollama_keep_alive: str = Field("30m", validation_alias=AliasChoices("MEM0_OLLAMA_KEEP_ALIVE"))
    ollama_pull_missing: bool = Field(False, validation_alias=AliasChoices("MEM0_OLLAMA_PULL_MISSING"))
    ollama_connect_timeout_s: float = Field(5.0, gt=0, validation_alias=AliasChoices("MEM0_OLLAMA_CONNECT_TIMEOUT_S"))
    embed_timeout_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_EMBED_TIMEOUT_S"))
    llm_timeout_s: float = Field(120.0, gt=0, validation_alias=AliasChoices("MEM0_LLM_TIMEOUT_S"))
    llm_idle_timeout_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_LLM_IDLE_TIMEOUT_S"))
    pull_timeout_s: float = Field(3600.0, gt=0, validation_alias=AliasChoices("MEM0_OLLAMA_PULL_TIMEOUT_S"))
    ollama_max_connections: int = Field(16, ge=1, validation_alias=AliasChoices("MEM0_OLLAMA_MAX_CONNECTIONS"))
    # Embedding calls in flight at once; requests arriving meanwhile wait and share the next call.
    embed_concurrency: int = Field(4, ge=1, le=64, validation_alias=AliasChoices("MEM0_EMBED_CONCURRENCY"))
    embed_batch_max: int = Field(64, ge=1, le=2048, validation_alias=AliasChoices("MEM0_EMBED_BATCH_MAX"))
    embed_stall_s: float = Field(1.0, gt=0, validation_alias=AliasChoices("MEM0_EMBED_STALL_S"))

    # Inferred writes (infer: true): extraction and the durable job queue (issue 5).
    llm_fallback_model: str | None = Field(None, validation_alias=AliasChoices("MEM0_LLM_FALLBACK_MODEL"))
    llm_num_ctx: int = Field(8192, ge=2048, validation_alias=AliasChoices("MEM0_LLM_NUM_CTX"))
    llm_num_predict: int = Field(512, ge=16, validation_alias=AliasChoices("MEM0_LLM_NUM_PREDICT"))
    infer_mode: Literal["sync", "async"] = Field("sync", validation_alias=AliasChoices("MEM0_INFER_MODE"))
    infer_wait_s: float = Field(30.0, ge=0, validation_alias=AliasChoices("MEM0_INFER_WAIT_S"))
    infer_workers: int = Field(2, ge=0, validation_alias=AliasChoices("MEM0_INFER_WORKERS"))
    infer_max_attempts: int = Field(5, ge=1, validation_alias=AliasChoices("MEM0_INFER_MAX_ATTEMPTS"))
    # Short leases renewed every third of their length while a job runs: a crashed server's jobs are retaken
    # within one lease.
    infer_lease_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_INFER_LEASE_S"))
    infer_backoff_s: float = Field(1.0, gt=0, validation_alias=AliasChoices("MEM0_INFER_BACKOFF_S"))
    infer_backoff_max_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_INFER_BACKOFF_MAX_S"))
    # Longer than an Ollama restart or a model load: accepted work outlives Ollama's ordinary hiccups.
    infer_retry_window_s: float = Field(600.0, ge=0, validation_alias=AliasChoices("MEM0_INFER_RETRY_WINDOW_S"))
    infer_empty_policy: Literal["store_raw", "keep_empty", "reject"] = Field(
        "store_raw", validation_alias=AliasChoices("MEM0_INFER_EMPTY_POLICY")
    )
    queue_max: int = Field(1000, ge=1, validation_alias=AliasChoices("MEM0_QUEUE_MAX"))
    queue_max_per_key: int = Field(250, ge=1, validation_alias=AliasChoices("MEM0_QUEUE_MAX_PER_KEY"))
    jobs_retention_s: float = Field(7 * 86_400.0, gt=0, validation_alias=AliasChoices("MEM0_JOBS_RETENTION_S"))

    # Startup behaviour.
    startup_retries: int = Field(5, ge=1, validation_alias=AliasChoices("MEM0_STARTUP_RETRIES"))
    startup_backoff_s: float = Field(0.5, ge=0, validation_alias=AliasChoices("MEM0_STARTUP_BACKOFF_S"))
    allow_openai_env: bool = Field(False, validation_alias=AliasChoices("MEM0_ALLOW_OPENAI_ENV"))
    warmup: bool = Field(True, validation_alias=AliasChoices("MEM0_WARMUP"))
    # /ready trusts the latest embed call's outcome this long; when it is older, /ready probes the embedder.
    ready_embed_max_age_s: float = Field(10.0, gt=0, validation_alias=AliasChoices("MEM0_READY_EMBED_MAX_AGE_S"))

    # Request limits.
    max_message_chars: int = Field(20_000, ge=1, validation_alias=AliasChoices("MEM0_MAX_MESSAGE_CHARS"))
    max_messages: int = Field(500, ge=1, validation_alias=AliasChoices("MEM0_MAX_MESSAGES"))
    max_top_k: int = Field(1000, ge=1, validation_alias=AliasChoices("MEM0_MAX_TOP_K"))
    max_list_limit: int = Field(1000, ge=1, validation_alias=AliasChoices("MEM0_MAX_LIST_LIMIT"))
    # Refused with 413 before the body is parsed: counted as it streams in, not only from Content-Length.
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, validation_alias=AliasChoices("MEM0_MAX_BODY_BYTES"))
    # Connection bounds (app/connections.py): slow senders and idle sockets cannot hold the server.
    header_timeout_s: float = Field(10.0, gt=0, validation_alias=AliasChoices("MEM0_HEADER_TIMEOUT_S"))
    body_timeout_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_BODY_TIMEOUT_S"))
    max_connections: int = Field(1000, ge=1, validation_alias=AliasChoices("MEM0_MAX_CONNECTIONS"))
    # A write's metadata is copied into every memory it stores (mem0's layout): its size times the rows is capped.
    max_write_metadata_bytes: int = Field(
        1024 * 1024, ge=1, validation_alias=AliasChoices("MEM0_MAX_WRITE_METADATA_BYTES")
    )
    exact_search_max_rows: int = Field(10_000, ge=0, validation_alias=AliasChoices("MEM0_EXACT_SEARCH_MAX_ROWS"))
    scope_size_ttl_s: float = Field(30.0, ge=0, validation_alias=AliasChoices("MEM0_SCOPE_SIZE_TTL_S"))
    embed_cache_size: int = Field(1024, ge=0, validation_alias=AliasChoices("MEM0_EMBED_CACHE_SIZE"))
    search_cache_size: int = Field(1024, ge=0, validation_alias=AliasChoices("MEM0_SEARCH_CACHE_SIZE"))
    hnsw_ef_search: int = Field(800, ge=1, le=1000, validation_alias=AliasChoices("MEM0_HNSW_EF_SEARCH"))
    allow_reset: bool = Field(False, validation_alias=AliasChoices("MEM0_ALLOW_RESET"))
    egress_guard: Literal["enforce", "log", "off"] = Field(
        "enforce", validation_alias=AliasChoices("MEM0_EGRESS_GUARD")
    )

    # Idempotency keys (POST /memories).
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, validation_alias=AliasChoices("MEM0_IDEMPOTENCY_TTL_S", "MEM0_IDEMPOTENCY_TTL")
    )
    idempotency_lease_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("MEM0_IDEMPOTENCY_LEASE_S"))
    idempotency_purge_interval_s: float = Field(
        300.0, gt=0, validation_alias=AliasChoices("MEM0_IDEMPOTENCY_PURGE_INTERVAL_S")
    )

    # The server's own telemetry (never blocks a request).
    telemetry_queue_max: int = Field(10_000, ge=1, validation_alias=AliasChoices("MEM0_TELEMETRY_QUEUE_MAX"))
    telemetry_spill_max: int = Field(100_000, ge=0, validation_alias=AliasChoices("MEM0_TELEMETRY_SPILL_MAX"))
    telemetry_batch_size: int = Field(500, ge=1, validation_alias=AliasChoices("MEM0_TELEMETRY_BATCH_SIZE"))
    telemetry_flush_interval_s: float = Field(
        0.5, gt=0, validation_alias=AliasChoices("MEM0_TELEMETRY_FLUSH_INTERVAL_S")
    )
    telemetry_breaker_failures: int = Field(3, ge=1, validation_alias=AliasChoices("MEM0_TELEMETRY_BREAKER_FAILURES"))
    telemetry_breaker_cooldown_s: float = Field(
        5.0, ge=0, validation_alias=AliasChoices("MEM0_TELEMETRY_BREAKER_COOLDOWN_S")
    )
    telemetry_timeout_ms: int = Field(500, ge=10, validation_alias=AliasChoices("MEM0_TELEMETRY_TIMEOUT_MS"))
    telemetry_retention_s: float = Field(
        7 * 86_400.0, gt=0, validation_alias=AliasChoices("MEM0_TELEMETRY_RETENTION_S")
    )

    # The categories the extraction gives each fact (mem0's default list) when a write brings no custom_categories.
    categories: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_CATEGORIES), validation_alias=AliasChoices("MEM0_CATEGORIES")
    )

    # Graph memory (upstream mem0's variable names): off unless NEO4J_URI is set; Postgres keeps the relations,
    # Neo4j gets a projection of them.
    neo4j_uri: str | None = Field(None, validation_alias=AliasChoices("NEO4J_URI"))
    neo4j_username: str = Field("neo4j", validation_alias=AliasChoices("NEO4J_USERNAME"))
    neo4j_password: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("NEO4J_PASSWORD"))
    graph_hops: int = Field(1, ge=1, le=3, validation_alias=AliasChoices("MEM0_GRAPH_HOPS"))
    graph_max_relations: int = Field(100, ge=1, le=1000, validation_alias=AliasChoices("MEM0_GRAPH_MAX_RELATIONS"))

    # Security: API keys are required unless auth is disabled (local development only).
    admin_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("MEM0_ADMIN_API_KEY"))
    auth_disabled: bool = Field(False, validation_alias=AliasChoices("MEM0_AUTH_DISABLED"))
    rate_limit: str = Field("1200/minute", validation_alias=AliasChoices("MEM0_RATE_LIMIT"))
    auth_failure_limit: str = Field("600/minute", validation_alias=AliasChoices("MEM0_AUTH_FAILURE_LIMIT"))
    # Host header names the server answers to (DNS rebinding defence); ports are ignored.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_ALLOWED_HOSTS), validation_alias=AliasChoices("MEM0_ALLOWED_HOSTS")
    )
    cors_origins: Annotated[list[str], NoDecode] = Field([], validation_alias=AliasChoices("MEM0_CORS_ORIGINS"))

    # HTTP server.
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("MEM0_HOST"))
    port: int = Field(8888, ge=0, le=65535, validation_alias=AliasChoices("MEM0_PORT"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=AliasChoices("MEM0_LOG_LEVEL")
    )

    @field_validator("llm_provider", "embedder_provider")
    @classmethod
    def _only_ollama(cls, value: str) -> str:
        if value.strip().lower() != SUPPORTED_PROVIDER:
            raise ValueError(f"only '{SUPPORTED_PROVIDER}' is supported; unset it or set it to '{SUPPORTED_PROVIDER}'")
        return SUPPORTED_PROVIDER

    @field_validator("admin_api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters; generate one with `openssl rand -hex 32`")
        return value

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value.strip():
            try:
                parse(value)
            except ValueError:
                raise ValueError("write it like 1200/minute or 20/second; empty turns rate limiting off") from None
        return value.strip()

    @field_validator("categories")
    @classmethod
    def _category_names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not CATEGORY_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"category names are lowercase words joined by _ (at most 64 characters): {bad[:3]}")
        return value

    @field_validator("allowed_hosts", "cors_origins", "categories", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("ollama_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://localhost:11434")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pool_bounds(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("MEM0_DB_POOL_MIN must not exceed MEM0_DB_POOL_MAX")
        return self

    @model_validator(mode="after")
    def _key_outlives_lease(self) -> Settings:
        # An in-flight key must not expire (and be purged or retaken) while its holder still owns the lease.
        if self.idempotency_ttl_s < self.idempotency_lease_s:
            raise ValueError("MEM0_IDEMPOTENCY_TTL_S must be at least MEM0_IDEMPOTENCY_LEASE_S")
        return self

    @property
    def graph_enabled(self) -> bool:
        return bool(self.neo4j_uri)

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None and self.postgres_host is None

    def conninfo(self, embedded_uri: str | None = None) -> str:
        """The libpq connection string; the embedded server's URI when no external one is configured."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.postgres_host is not None:
            user = quote(self.postgres_user, safe="")
            password = quote(self.postgres_password.get_secret_value(), safe="")
            return f"postgresql://{user}:{password}@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        if embedded_uri is None:
            raise ConfigError("no POSTGRES_HOST or DATABASE_URL is set and the embedded Postgres is not running")
        return embedded_uri

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for GET /configure and logs."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if name in SECRET_FIELDS and value is not None:
                shown[name] = "***" if name != "database_url" else _mask_url(value.get_secret_value())
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown


def _mask_url(conninfo: str) -> str:
    """The connection string with its password masked: a URL's `user:pw@` and `?password=`, or libpq key=value."""
    if "://" in conninfo:
        parts = urlsplit(conninfo)
        netloc = parts.netloc
        if "@" in netloc:
            credentials, _, location = netloc.rpartition("@")
            netloc = f"{credentials.split(':', 1)[0]}:***@{location}"
        query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/*")))
    try:
        fields = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "***"
    if "password" in fields:
        fields["password"] = "***"
    return make_conninfo(**{name: str(value) for name, value in fields.items()})


def conflicting_openai_env(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Names of set OPENAI_* variables: upstream mem0 would silently use them."""
    return sorted(name for name, value in environ.items() if name.upper().startswith("OPENAI_") and value != "")


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per invalid variable: its name, the bad value and how to fix it."""
    aliases = {name: _alias_of(field.validation_alias, name) for name, field in Settings.model_fields.items()}
    lines = []
    for item in error.errors():
        location = str(item["loc"][0]) if item["loc"] else ""
        variable = aliases.get(location, location or "configuration")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f"={value!r}"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"config error: {variable}{shown}: {message}")
    return lines


def _alias_of(alias: object, default: str) -> str:
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return default


def load_settings(environ: dict[str, str] | os._Environ[str] | None = None, **overrides: Any) -> Settings:
    """Build Settings and apply the checks that need the raw environment; raise ConfigError with fix hints."""
    env = os.environ if environ is None else environ
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise ConfigError("\n".join(describe_validation_error(error))) from None
    conflicts = conflicting_openai_env(env)
    if conflicts and not settings.allow_openai_env:
        raise ConfigError(
            f"config error: {', '.join(conflicts)} is set, but this server only talks to Ollama; "
            "unset it, or set MEM0_ALLOW_OPENAI_ENV=true to downgrade this to a warning"
        )
    return settings
