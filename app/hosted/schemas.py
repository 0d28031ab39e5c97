"""Request shapes of mem0's hosted API (what the pinned `mem0ai` clients send), mapped onto this server's own
request models. A field this server cannot honour is refused with a 422 naming it, never dropped."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.errors import InvalidInput, describe_problems
from app.memories.schemas import MAX_TEXT_CHARS, Filters, MemoryList, Message, Metadata
from app.params import MAX_PAGE_SIZE, SCOPE_KEYS, Identifier

MAX_BATCH = 1000
DEFAULT_PAGE_SIZE = 100


# Client configuration that mem0's SDKs (and integrations built on them) put in request bodies or query strings:
# meaningless to this server, so accepted on the hosted routes only, and named back and counted, never silently.
CLIENT_CONFIG_FIELDS = frozenset(
    {"apiKey", "api_key", "host", "org_id", "project_id", "org_name", "project_name", "version", "api_version"}
)


class HostedModel(BaseModel):
    """Unknown fields are refused in one message that names them and what is supported; client configuration is
    set aside (`ignored_fields`) for the route to name in its answer."""

    model_config = ConfigDict(extra="forbid")
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        return self._ignored

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(
                    f"not supported by this server: {', '.join(unknown)}; "
                    f"supported fields: {', '.join(sorted(cls.model_fields))}"
                )
        return data

    # Defined after the check above so that it runs first (pydantic applies wrap and before validators last-first).
    @model_validator(mode="wrap")
    @classmethod
    def _client_configuration_set_aside(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        ignored: tuple[str, ...] = ()
        if isinstance(data, dict):
            ignored = tuple(sorted(key for key in data if key in CLIENT_CONFIG_FIELDS))
            data = {key: value for key, value in data.items() if key not in CLIENT_CONFIG_FIELDS}
        model = handler(data)
        model._ignored = ignored
        return model


def flatten_filters(filters: dict[str, Any] | None) -> dict[str, Any]:
    """A hosted `filters` with a top-level AND of plain conditions (`{"AND": [{"user_id": "a"}, ...]}`, how
    mem0's hosted API writes them) merged into one object when no key repeats; anything else is kept as given."""
    conditions: dict[str, Any] = dict(filters or {})
    clauses = conditions.get("AND")
    if isinstance(clauses, list) and all(isinstance(c, dict) for c in clauses):
        merged: dict[str, Any] = {k: v for k, v in conditions.items() if k != "AND"}
        for clause in clauses:
            if set(clause) & set(merged):
                return conditions  # the same key twice: left for the filter language to judge
            merged.update(clause)
        conditions = merged
    return conditions


def split_filters(filters: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, Any]]:
    """The identifiers a hosted `filters` names as plain values, and every other condition."""
    conditions = flatten_filters(filters)
    identifiers = {k: conditions.pop(k) for k in SCOPE_KEYS if isinstance(conditions.get(k), str)}
    return identifiers, conditions


def scope_only(filters: dict[str, Any] | None, where: str) -> dict[str, str]:
    """Identifiers from `filters` for a route that takes a scope and nothing else (add, list, delete)."""
    identifiers, rest = split_filters(filters)
    if rest:
        raise InvalidInput(
            f"{where}: filters {', '.join(sorted(rest))} are not supported here; "
            "give user_id, agent_id and/or run_id as plain values"
        )
    for key, value in identifiers.items():
        if value == "*":
            raise InvalidInput(f"{where}: {key} '*' (every {key[:-3]}) is not supported here; name the {key[:-3]}")
    return identifiers


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """`model` built from data a hosted request carried: a problem is a 422 naming the field, as a body's is."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(describe_problems(error.errors())) from None


class ScopedModel(HostedModel):
    """Identifiers top-level (as the clients' `add(..., user_id=)` or the v1 routes send them) or in `filters`."""

    user_id: Identifier | None = None
    agent_id: Identifier | None = None
    run_id: Identifier | None = None
    app_id: Identifier | None = None

    def top_level(self) -> dict[str, str]:
        return {k: v for k in SCOPE_KEYS if (v := getattr(self, k)) is not None}

    def merged(self, in_filters: dict[str, Any], where: str) -> dict[str, Any]:
        """`in_filters` with the top-level identifiers added; one named twice with two values is a 422."""
        top = self.top_level()
        clashing = sorted(k for k in top.keys() & in_filters.keys() if top[k] != in_filters[k])
        if clashing:
            raise InvalidInput(f"{where}: {', '.join(clashing)} differ between the body and filters; send one value")
        return {**in_filters, **top}


class HostedAdd(ScopedModel):
    """`POST /v3/memories/add/`: identifiers top-level (as the clients' `add(..., user_id=)` sends them) or in
    `filters`."""

    messages: list[Message] = Field(min_length=1)
    filters: dict[str, Any] | None = None
    metadata: Metadata = None
    infer: bool = True
    async_mode: bool | None = None
    output_format: Literal["v1.0", "v1.1"] | None = None
    expiration_date: date | None = None
    custom_instructions: StrictStr | None = Field(None, description="Extra instructions for the fact extraction.")
    enable_graph: bool | None = Field(None, description="Graph memory for this write (mem0's meaning).")
    timestamp: datetime | int | float | None = Field(None, description="When the memories were made (created_at).")
    immutable: bool = False
    includes: StrictStr | None = None
    excludes: StrictStr | None = None
    custom_categories: list[dict[StrictStr, StrictStr]] | None = None

    @model_validator(mode="after")
    def _instructions_need_inference(self) -> HostedAdd:
        if self.custom_instructions is not None and not self.infer:
            raise ValueError("custom_instructions instruct the fact extraction, which only infer: true runs")
        return self

    @field_validator("messages", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        # The clients accept a string or one message as well as a list; the TypeScript one sends them as given.
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
        return [value] if isinstance(value, dict) else value

    def identifiers(self) -> dict[str, str]:
        return self.merged(scope_only(self.filters, "add"), "add")


class HostedList(ScopedModel):
    """`POST /v3/memories/` and `POST /v2/memories/` (`get_all`); page and page_size come as query parameters;
    `GET /v1/memories/` sends the same as query parameters."""

    filters: dict[str, Any] | None = None
    latest_only: bool | None = None  # every memory here is its latest version: honoured as it is
    output_format: Literal["v1.0", "v1.1"] | None = None
    enable_graph: bool | None = Field(None, description="Add the scope's relations (mem0's meaning).")
    limit: int | None = Field(None, ge=1, description="How many memories (the v1 list), newest first.")
    start_date: datetime | date | None = Field(None, description="Memories created at or after this (mem0's).")
    end_date: datetime | date | None = Field(None, description="Memories created at or before this (mem0's).")

    def scope(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The identifiers named as plain values, and every other condition (the full filter language, with
        start_date / end_date as a range on created_at)."""
        identifiers, conditions = split_filters(self.filters)
        created = {
            operator: moment.isoformat()
            for operator, moment in (("gte", self.start_date), ("lte", self.end_date))
            if moment is not None
        }
        if created:
            if "created_at" in conditions:
                raise InvalidInput("get_all: give created_at in filters or start_date / end_date, not both")
            conditions["created_at"] = created
        return self.merged(identifiers, "get_all"), conditions


class HostedSearch(ScopedModel):
    """`POST /v3/memories/search/`."""

    query: StrictStr = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    filters: Filters = None
    top_k: int | None = Field(None, ge=1)
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    rerank: Literal[False] | None = Field(None, description="No reranker runs here: only false is accepted.")
    show_expired: bool = False
    keyword_search: Literal[True] | None = Field(
        None, description="Search is always hybrid (semantic + keyword, as mem0 ranks it): only true is accepted."
    )
    latest_only: bool | None = None
    output_format: Literal["v1.0", "v1.1"] | None = None
    enable_graph: bool | None = Field(None, description="Relations around the entities the query names.")
    categories: list[StrictStr] | None = Field(None, description="Only memories in one of these categories.")
    limit: int | None = Field(None, ge=1, description="Older name for top_k.")
    metadata: dict[str, Any] | None = Field(None, description="Equality conditions on the memories' metadata.")


class HostedUpdate(HostedModel):
    """`PUT /v1/memories/{id}/`."""

    text: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    expiration_date: date | None = Field(None, description="YYYY-MM-DD, or null to clear it.")


class BatchUpdateItem(HostedModel):
    memory_id: StrictStr
    text: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class BatchDeleteItem(HostedModel):
    memory_id: StrictStr


class BatchUpdate(HostedModel):
    memories: list[BatchUpdateItem] = Field(min_length=1, max_length=MAX_BATCH)


class BatchDelete(HostedModel):
    memories: list[BatchDeleteItem] = Field(min_length=1, max_length=MAX_BATCH)


class MemoryPage(MemoryList):
    """The hosted API's paged list (`get_all`): `next` / `previous` are URLs, null at the ends."""

    count: int
    next: str | None
    previous: str | None


class PageQuery(BaseModel):
    """`page` and `page_size` as the v1 / v2 lists take them (query parameters, checked like the v3 list's)."""

    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)

    def numbers(self) -> tuple[int, int]:
        return self.page, self.page_size


class Ping(BaseModel):
    status: Literal["ok"]
    message: str
    org_id: str
    project_id: str
    user_email: str | None


class QueuedEvent(BaseModel):
    message: str
    status: str
    event_id: str


class Queued(BaseModel):
    """202: an inferred write whose job has not finished; `GET /jobs/{job_id}` follows it."""

    results: list[QueuedEvent]
    job_id: str
    status: str
