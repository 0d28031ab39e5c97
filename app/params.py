"""Request parameters and small response shapes that several features' routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field, StrictStr

IDENTIFIER_KEYS = ("user_id", "agent_id", "run_id")
# mem0's hosted API also scopes memories by app: stored and filtered like the others, not part of API keys' scopes.
SCOPE_KEYS = (*IDENTIFIER_KEYS, "app_id")
MAX_IDENTIFIER_CHARS = 255
MAX_PAGE_SIZE = 1000

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=MAX_IDENTIFIER_CHARS)]
IdentifierQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_IDENTIFIER_CHARS)]
PageParam = Annotated[int, Query(ge=1, description="Page number, from 1.")]
PageSizeParam = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]


def query_identifiers(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
    """The identifiers given (as query parameters or tool arguments); those left out are not part of the scope."""
    return {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)) if v is not None}


class StatusMessage(BaseModel):
    message: str
