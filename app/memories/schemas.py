"""Request and response shapes, compatible with mem0's REST server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictStr,
    field_validator,
    model_serializer,
    model_validator,
)

from app.config import CATEGORY_NAME
from app.filters import names_scopes
from app.params import SCOPE_KEYS, Identifier

# Keys the server owns inside a memory's payload; user metadata may not overwrite them.
RESERVED_PAYLOAD_KEYS = frozenset(
    {
        "data",
        "hash",
        "created_at",
        "updated_at",
        "text_lemmatized",
        "attributed_to",
        "actor_id",
        "role",
        "extraction",
        "expiration_date",
        "immutable",
        "categories",
        *SCOPE_KEYS,
    }
)


# Text validity (no NUL, no lone surrogate, finite numbers) is checked for every request in app/limits.py;
# these are the bounds. Metadata is copied into every memory row and read back on every search, so it is bounded
# by size and by depth: 32 levels stays far below pydantic's serialisation depth limit, so no stored row can fail
# to serialise (rows stored before the limit are clipped on the way out, see MemoryItem).
MAX_CUSTOM_CATEGORIES = 50
MAX_CATEGORY_DESCRIPTION_CHARS = 500
MAX_TEXT_CHARS = 20_000  # a search query or an updated memory text: what one embedding call reads
MAX_PROMPT_CHARS = 4_000  # extra extraction instructions: a paragraph, not a second conversation
MAX_METADATA_DEPTH = 32
MAX_METADATA_BYTES = 64 * 1024
MAX_FILTERS_BYTES = 64 * 1024
CLIPPED_MARKER = f"[nested deeper than {MAX_METADATA_DEPTH} levels; not shown]"


def json_depth(value: Any, limit: int) -> int:
    """How deep `value` nests (a scalar is 0, {} is 1), counted no further than limit + 1."""
    if limit < 0 or not isinstance(value, dict | list):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((json_depth(item, limit - 1) for item in items), default=0)


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON: what it costs in a jsonb payload."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _bounded_json(value: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    depth = json_depth(value, MAX_METADATA_DEPTH)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"nests more than {MAX_METADATA_DEPTH} levels deep; flatten it")
    size = json_size(value)
    if size > max_bytes:
        raise ValueError(f"is {size:,} bytes as JSON; at most {max_bytes:,}; send less")
    return value


def clip_depth(value: Any, levels: int) -> Any:
    """`value` with every object or array deeper than `levels` replaced by CLIPPED_MARKER."""
    if not isinstance(value, dict | list):
        return value
    if levels <= 0:
        return CLIPPED_MARKER
    if isinstance(value, dict):
        return {key: clip_depth(item, levels - 1) for key, item in value.items()}
    return [clip_depth(item, levels - 1) for item in value]


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    clashing = sorted(RESERVED_PAYLOAD_KEYS & value.keys())
    if clashing:
        raise ValueError(
            f"metadata keys {clashing} are reserved; pass identifiers as top-level fields and rename the rest"
        )
    return _bounded_json(value, MAX_METADATA_BYTES)


Metadata = Annotated[dict[str, Any] | None, AfterValidator(_metadata)]


def _filters(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return value if value is None else _bounded_json(value, MAX_FILTERS_BYTES)


Filters = Annotated[dict[str, Any] | None, AfterValidator(_filters)]


class Message(BaseModel):
    role: Literal["user", "assistant", "system"] = Field(description="Who said it: user, assistant or system.")
    content: StrictStr = Field(description="The message text.")
    name: Identifier | None = Field(None, description="Optional speaker name, stored as actor_id.")

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is empty; send the text to remember")
        return value


class Scope(BaseModel):
    """The identifiers a memory belongs to; at least one is required wherever a scope is."""

    user_id: Identifier | None = None
    agent_id: Identifier | None = None
    run_id: Identifier | None = None
    app_id: Identifier | None = None

    def identifiers(self) -> dict[str, str]:
        return {key: value for key in SCOPE_KEYS if (value := getattr(self, key)) is not None}


class MemoryCreate(Scope):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(
        min_length=1, description="Messages to store (infer: false) or to extract facts from."
    )
    metadata: Metadata = Field(None, description="Free-form JSON object stored with each memory.")
    infer: bool = Field(
        True, description="false stores each non-system message as one memory; true extracts facts with the LLM."
    )
    async_mode: bool | None = Field(None, description="With infer: true, answer 202 with a job id at once.")
    expiration_date: date | None = Field(
        None,
        description="YYYY-MM-DD: from the day after, list and search leave the memories out unless show_expired.",
    )
    prompt: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="With infer: true, extra instructions for the fact extraction (what to keep, what to skip).",
    )
    idempotency_key: StrictStr | None = Field(
        None,
        description="The Idempotency-Key, for clients that cannot set headers; if both are sent they must be equal.",
    )
    enable_graph: bool | None = Field(
        None,
        description="Graph memory for this write (default: on when the server has it); true without it is a 422.",
    )
    timestamp: datetime | None = Field(
        None, description="When the memories were made (ISO time or Unix seconds): their created_at (mem0's)."
    )
    immutable: bool = Field(False, description="The memories cannot be updated later (409), only deleted (mem0's).")
    includes: StrictStr | None = Field(
        None, min_length=1, max_length=MAX_PROMPT_CHARS, description="With infer: true, what to remember (mem0's)."
    )
    excludes: StrictStr | None = Field(
        None, min_length=1, max_length=MAX_PROMPT_CHARS, description="With infer: true, what never to remember."
    )
    custom_categories: list[dict[StrictStr, StrictStr]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CUSTOM_CATEGORIES,
        description="With infer: true, the categories the extraction gives each fact, as [{name: description}] "
        "(mem0's); default: MEM0_CATEGORIES.",
    )

    @model_validator(mode="after")
    def _prompt_needs_inference(self) -> MemoryCreate:
        for name in ("prompt", "includes", "excludes", "custom_categories"):
            if getattr(self, name) is not None and not self.infer:
                raise ValueError(f"{name} instructs the fact extraction, which only infer: true runs; drop one of them")
        return self

    @field_validator("timestamp")
    @classmethod
    def _timestamp_has_a_zone(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("custom_categories")
    @classmethod
    def _one_named_category_each(cls, value: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        for index, category in enumerate(value or []):
            if len(category) != 1:
                raise ValueError(f"custom_categories.{index}: one {{name: description}} per category")
            [(name, description)] = category.items()
            if not CATEGORY_NAME.fullmatch(name) or len(description) > MAX_CATEGORY_DESCRIPTION_CHARS:
                raise ValueError(
                    f"custom_categories.{index}: a name of lowercase words joined by _ (at most 64 characters) and a "
                    f"description of at most {MAX_CATEGORY_DESCRIPTION_CHARS} characters"
                )
        return value

    def category_list(self) -> list[tuple[str, str]] | None:
        """The write's own categories with their descriptions (None: the server's MEM0_CATEGORIES)."""
        if self.custom_categories is None:
            return None
        return [next(iter(category.items())) for category in self.custom_categories]

    def instructions(self) -> str | None:
        """The caller's instructions for the extraction: `prompt`, and mem0's `includes` / `excludes`."""
        parts = [self.prompt] if self.prompt else []
        if self.includes:
            parts.append(f"Only remember facts about: {self.includes}")
        if self.excludes:
            parts.append(f"Never remember facts about: {self.excludes}")
        return "\n".join(parts) or None

    def metadata_copies_bytes(self) -> int:
        """mem0's layout copies the metadata into every memory a write stores: its JSON size times the messages
        (an inferred write's facts are not known yet; its messages stand in for them)."""
        stored = sum(1 for message in self.messages if message.role != "system")
        return json_size(self.metadata) * stored if self.metadata else 0

    @model_validator(mode="after")
    def _needs_identifier(self) -> MemoryCreate:
        if not self.identifiers():
            raise ValueError("at least one identifier (user_id, agent_id or run_id) is required")
        return self


class SearchRequest(Scope):
    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="What to look for.")
    filters: Filters = Field(None, description="Payload filters: {key: value} or {key: {op: value}}.")
    top_k: int | None = Field(None, ge=1, description="How many results (default 10).")
    limit: int | None = Field(None, ge=1, description="Older name for top_k.")
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Drop candidates whose semantic score (1 - cosine distance) is below this (default 0.1, as "
        "mem0), before the keyword score is added.",
    )
    show_expired: bool = Field(False, description="Include memories past their expiration_date.")
    enable_graph: bool | None = Field(
        None, description="Add the graph's relations around the entities the query names (default: with the graph)."
    )
    categories: list[StrictStr] | None = Field(
        None, min_length=1, description="Only memories in one of these categories (mem0's)."
    )
    explain: bool = Field(
        False,
        description="Add score_details to each result: semantic_score, bm25_score, entity_boost, raw_score, "
        "max_possible_score, final_score, threshold (mem0's names).",
    )

    @model_validator(mode="after")
    def _needs_identifier(self) -> SearchRequest:
        if not self.identifiers() and not names_scopes(self.filters or {}):
            raise ValueError(
                "at least one identifier (user_id, agent_id or run_id) is required, top-level or in filters "
                '(a value, "*", {"in": [...]} or an OR of them)'
            )
        return self


class MemoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr | None = Field(
        None, min_length=1, max_length=MAX_TEXT_CHARS, description="New memory text; it is embedded again."
    )
    metadata: Metadata = Field(None, description="Replaces the memory's user metadata.")
    expiration_date: date | None = Field(None, description="YYYY-MM-DD, or null to clear it.")

    @model_validator(mode="after")
    def _needs_change(self) -> MemoryUpdate:
        if self.text is None and self.metadata is None and "expiration_date" not in self.model_fields_set:
            raise ValueError("send text, metadata and/or expiration_date to update")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self


class MemoryItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    memory: str
    hash: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    app_id: str | None = None
    actor_id: str | None = None
    role: str | None = None
    expiration_date: str | None = None
    categories: list[str] | None = None
    immutable: bool | None = None
    score: float | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _clip_deep_metadata(cls, value: Any) -> Any:
        # Rows written before the depth limit (or by another mem0) may nest too deep to serialise; they stay readable.
        return clip_depth(value, MAX_METADATA_DEPTH)


class AddResult(BaseModel):
    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    role: str | None = None
    actor_id: str | None = None


class AddResponse(BaseModel):
    results: list[AddResult]


class ListedRelation(BaseModel):
    source: str
    relationship: str
    target: str


class FoundRelation(BaseModel):
    source: str
    relationship: str
    destination: str


class _WithRelations(BaseModel):
    """`relations` appears only when the request used graph memory: without it the answer is as it always was."""

    relations: Any = None

    @model_serializer(mode="wrap")
    def _omit_absent_relations(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.relations is None and isinstance(data, dict):
            data.pop("relations", None)
        return data


class MemoryList(_WithRelations):
    results: list[MemoryItem]
    relations: list[ListedRelation] | None = Field(None, description="With graph memory: the scope's relations.")


class SearchResults(_WithRelations):
    results: list[MemoryItem]
    relations: list[FoundRelation] | None = Field(
        None, description="With graph memory: relations around the entities the query names."
    )


class HistoryEntry(BaseModel):
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: str
    created_at: str | None
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None
    role: str | None
