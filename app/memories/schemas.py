"""Request and response shapes, compatible with mem0's REST server."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

IDENTIFIER_KEYS = ("user_id", "agent_id", "run_id")
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
        *IDENTIFIER_KEYS,
    }
)


def reject_nul(value: Any, where: str = "value") -> Any:
    """Postgres cannot store U+0000 in text or jsonb: refuse it up front instead of failing in the database."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} contains a NUL character (\\u0000), which cannot be stored; remove it")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, f"{where} key")
            reject_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            reject_nul(item, where)
    return value


def _text(value: str) -> str:
    return str(reject_nul(value, "text"))


Identifier = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_text)]
Text = Annotated[StrictStr, AfterValidator(_text)]


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    reject_nul(value, "metadata")
    clashing = sorted(RESERVED_PAYLOAD_KEYS & value.keys())
    if clashing:
        raise ValueError(
            f"metadata keys {clashing} are reserved; pass identifiers as top-level fields and rename the rest"
        )
    return value


Metadata = Annotated[dict[str, Any] | None, AfterValidator(_metadata)]


def _filters(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return value if value is None else reject_nul(value, "filters")


Filters = Annotated[dict[str, Any] | None, AfterValidator(_filters)]


class Message(BaseModel):
    role: Literal["user", "assistant", "system"] = Field(description="Who said it: user, assistant or system.")
    content: Text = Field(description="The message text.")
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

    def identifiers(self) -> dict[str, str]:
        return {key: value for key in IDENTIFIER_KEYS if (value := getattr(self, key)) is not None}


class MemoryCreate(Scope):
    model_config = ConfigDict(extra="ignore")

    messages: list[Message] = Field(
        min_length=1, description="Messages to store (infer: false) or to extract facts from."
    )
    metadata: Metadata = Field(None, description="Free-form JSON object stored with each memory.")
    infer: bool = Field(
        True, description="false stores each non-system message as one memory; true extracts facts with the LLM."
    )
    async_mode: bool | None = Field(None, description="With infer: true, answer 202 with a job id at once.")
    idempotency_key: StrictStr | None = Field(
        None,
        description="The Idempotency-Key, for clients that cannot set headers; if both are sent they must be equal.",
    )

    @model_validator(mode="after")
    def _needs_identifier(self) -> MemoryCreate:
        if not self.identifiers():
            raise ValueError("at least one identifier (user_id, agent_id or run_id) is required")
        return self


class SearchRequest(Scope):
    model_config = ConfigDict(extra="ignore")

    query: Text = Field(min_length=1, description="What to look for.")
    filters: Filters = Field(None, description="Payload filters: {key: value} or {key: {op: value}}.")
    top_k: int | None = Field(None, ge=1, description="How many results (default 10).")
    limit: int | None = Field(None, ge=1, description="Older name for top_k.")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="Drop results whose score is below this.")

    @model_validator(mode="after")
    def _needs_identifier(self) -> SearchRequest:
        in_filters = {key for key in IDENTIFIER_KEYS if (self.filters or {}).get(key) is not None}
        if not self.identifiers() and not in_filters:
            raise ValueError(
                "at least one identifier (user_id, agent_id or run_id) is required, top-level or in filters"
            )
        return self


class MemoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text | None = Field(None, min_length=1, description="New memory text; it is embedded again.")
    metadata: Metadata = Field(None, description="Replaces the memory's user metadata.")

    @model_validator(mode="after")
    def _needs_change(self) -> MemoryUpdate:
        if self.text is None and self.metadata is None:
            raise ValueError("send text and/or metadata to update")
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
    actor_id: str | None = None
    role: str | None = None
    score: float | None = None


class AddResult(BaseModel):
    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    role: str | None = None
    actor_id: str | None = None


class AddResponse(BaseModel):
    results: list[AddResult]


class MemoryList(BaseModel):
    results: list[MemoryItem]


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


class StatusMessage(BaseModel):
    message: str
