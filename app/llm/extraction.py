"""Fact extraction with one structured-output Ollama /api/chat call and explicit truncation detection."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidModelOutput, UpstreamError
from app.llm.client import OllamaClient

logger = logging.getLogger(__name__)

NAMED_ENTITY_TYPES = ("person", "place", "organization", "product")

# Ollama structured outputs: the reply is constrained to this schema, so it always parses.
FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {"type": "array", "items": {"type": "string"}},
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": list(NAMED_ENTITY_TYPES)},
                },
                "required": ["name", "type"],
            },
        },
    },
    "required": ["facts", "entities"],
}

# Written for 7B models: short, imperative, the rules that matter from mem0's extraction prompt.
SYSTEM_PROMPT = """You extract facts worth remembering about the user from a conversation.
Rules:
- Each fact is one short, self-contained sentence that makes sense without the conversation.
- Attribute each fact to the person who said it (for example "User likes tea").
- Only use what the user (or a named speaker) states. Never turn the assistant's own suggestions,
  questions or answers into facts.
- Skip greetings, small talk and anything not worth remembering.
- Write facts in the language of the conversation.
- List the people, places, organizations and products your facts name, each spelled as in the fact.
Answer with JSON: {"facts": ["...", "..."], "entities": [{"name": "...", "type": "person"}]}, a type being
person, place, organization or product. If there is nothing worth remembering, answer {"facts": [], "entities": []}."""

CHARS_PER_TOKEN = 3.0  # conservative: estimates more tokens than most tokenizers produce for English
CONTEXT_MARGIN_TOKENS = 256
MIN_NUM_CTX = 2048
# A reply past these is a runaway generation, not facts: refused rather than stored.
MAX_FACTS = 100
MAX_FACT_CHARS = 2000
MAX_ENTITIES = 100
MAX_ENTITY_CHARS = 200


class PromptTruncated(UpstreamError):
    """The prompt filled the context window, so Ollama cut it: the reply cannot be trusted."""

    code = "prompt_truncated"


@dataclass(frozen=True)
class ExtractedEntity:
    """A person, place, organization or product the facts name, as the model spelled it."""

    name: str
    type: str


@dataclass(frozen=True)
class Extraction:
    """What the model found, stored on the job so a retry after a storage failure does not ask again."""

    facts: list[str]
    entities: list[ExtractedEntity]
    model: str

    def to_json(self) -> dict[str, object]:
        entities = [{"name": entity.name, "type": entity.type} for entity in self.entities]
        return {"facts": self.facts, "entities": entities, "model": self.model}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Extraction:
        facts, model = data.get("facts"), data.get("model")
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts) or not isinstance(model, str):
            raise InvalidModelOutput("the job's stored extraction is not {facts: [string], model: string}")
        return cls(facts, parse_entities(data), model)


def merge_extractions(extractions: list[Extraction]) -> Extraction:
    """One extraction for a conversation extracted window by window: every fact, each entity once."""
    entities: dict[str, ExtractedEntity] = {}
    for extraction in extractions:
        for entity in extraction.entities:
            entities.setdefault(entity_key(entity.name), entity)
    facts = [fact for extraction in extractions for fact in extraction.facts]
    return Extraction(facts, list(entities.values()), extractions[-1].model)


def entity_key(name: str) -> str:
    """mem0's normalisation of an entity's text: one entity per key in a scope."""
    return " ".join(name.lower().split())


def render_conversation(messages: list[dict[str, str]]) -> str:
    """One line per message, `role: content`, system messages left out (they are instructions, not facts)."""
    lines = []
    for message in messages:
        role = message.get("role", "user")
        if role == "system":
            continue
        speaker = message.get("name") or role
        lines.append(f"{speaker}: {message.get('content', '')}")
    return "\n".join(lines)


def build_chat_messages(messages: list[dict[str, str]], instructions: str | None = None) -> list[dict[str, str]]:
    """The extraction prompt; a write's `prompt` adds the caller's own instructions after the rules."""
    system = SYSTEM_PROMPT if instructions is None else f"{SYSTEM_PROMPT}\nAdditional instructions:\n{instructions}"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "Conversation:\n" + render_conversation(messages)},
    ]


def estimate_tokens(chat_messages: list[dict[str, str]]) -> int:
    chars = sum(len(message["content"]) for message in chat_messages)
    return int(chars / CHARS_PER_TOKEN) + 16 * len(chat_messages)


def conversation_windows(
    messages: list[dict[str, str]], *, num_predict: int, max_ctx: int, instructions: str | None = None
) -> list[list[dict[str, str]]]:
    """Consecutive runs of the conversation whose prompt and answer each fit the context window: a transcript longer
    than one window is extracted window by window instead of refused. A single message too long for any window stays
    alone in its own, and its extraction reports the truncation."""
    budget = max_ctx - num_predict - CONTEXT_MARGIN_TOKENS
    base = estimate_tokens(build_chat_messages([], instructions))
    windows: list[list[dict[str, str]]] = []
    current: list[dict[str, str]] = []
    used = base
    for message in messages:
        cost = int((len(render_conversation([message])) + 1) / CHARS_PER_TOKEN) + 1
        if current and used + cost > budget:
            windows.append(current)
            current, used = [], base
        current.append(message)
        used += cost
    if current:
        windows.append(current)
    return windows


def choose_num_ctx(prompt_tokens: int, num_predict: int, max_ctx: int) -> int:
    """Room for prompt + answer + margin, rounded up to a multiple of 1024, within [MIN_NUM_CTX, max_ctx]."""
    needed = prompt_tokens + num_predict + CONTEXT_MARGIN_TOKENS
    rounded = -(-needed // 1024) * 1024
    return max(MIN_NUM_CTX, min(rounded, max_ctx))


def parse_reply(content: str, model: str) -> Extraction:
    """Parse and validate the schema-constrained reply before anything hashes or stores it; anything else is
    an upstream error, never "no facts"."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        raise UpstreamError("the model's extraction reply is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidModelOutput('the model\'s extraction reply does not match {"facts": [string]}')
    return Extraction(parse_facts(data), parse_entities(data), model)


def parse_entities(data: dict[str, Any]) -> list[ExtractedEntity]:
    """The reply's entities, validated like its facts; an extraction without the key (stored on a job before
    entities were asked for) has none."""
    entities = data.get("entities", [])
    if not isinstance(entities, list) or len(entities) > MAX_ENTITIES:
        raise InvalidModelOutput(f"the model's entities are not a list of at most {MAX_ENTITIES}")
    found: list[ExtractedEntity] = []
    for index, entity in enumerate(entities):
        name = entity.get("name") if isinstance(entity, dict) else None
        kind = entity.get("type") if isinstance(entity, dict) else None
        if not isinstance(name, str) or kind not in NAMED_ENTITY_TYPES:
            raise InvalidModelOutput(
                f"entity {index} of the model's reply is not {{name: string, type: {' | '.join(NAMED_ENTITY_TYPES)}}}"
            )
        name = " ".join(name.replace("\x00", "").split())
        if len(name) > MAX_ENTITY_CHARS or not _is_storable(name):
            raise InvalidModelOutput(
                f"entity {index} of the model's reply is longer than {MAX_ENTITY_CHARS} characters "
                "or holds invalid Unicode"
            )
        # A name without a letter or digit ("&") names nothing a text search could find.
        if any(character.isalnum() for character in name):
            found.append(ExtractedEntity(name, str(kind)))
    return found


def _is_storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_facts(data: dict[str, Any]) -> list[str]:
    facts = data.get("facts")
    if not isinstance(facts, list) or not all(isinstance(fact, str) for fact in facts):
        raise InvalidModelOutput('the model\'s extraction reply does not match {"facts": [string]}')
    if len(facts) > MAX_FACTS:
        raise InvalidModelOutput(
            f"the model's reply lists {len(facts)} facts; more than {MAX_FACTS} is a runaway reply"
        )
    cleaned = [fact.replace("\x00", "").strip() for fact in facts]
    for index, fact in enumerate(cleaned):
        if len(fact) > MAX_FACT_CHARS:
            raise InvalidModelOutput(
                f"fact {index} of the model's reply has {len(fact)} characters (at most {MAX_FACT_CHARS})"
            )
        if not _is_storable(fact):
            raise InvalidModelOutput(
                f"fact {index} of the model's reply holds invalid Unicode (a lone surrogate), so it cannot be stored"
            )
    return [fact for fact in cleaned if fact]


def check_truncation(prompt_eval_count: int | None, num_ctx: int) -> None:
    if prompt_eval_count is not None and prompt_eval_count >= num_ctx:
        raise PromptTruncated(
            f"extraction prompt filled the context window ({prompt_eval_count} >= num_ctx {num_ctx} tokens); "
            "Ollama truncated it. Raise MEM0_LLM_NUM_CTX or send shorter messages"
        )


async def extract_facts(
    client: OllamaClient,
    model: str,
    messages: list[dict[str, str]],
    *,
    num_predict: int,
    max_ctx: int,
    instructions: str | None = None,
) -> Extraction:
    chat_messages = build_chat_messages(messages, instructions)
    estimate = estimate_tokens(chat_messages)
    num_ctx = choose_num_ctx(estimate, num_predict, max_ctx)
    if estimate + num_predict > max_ctx:
        raise PromptTruncated(
            f"extraction prompt needs about {estimate} tokens plus {num_predict} for the answer, "
            f"more than MEM0_LLM_NUM_CTX={max_ctx}"
        )
    started = time.perf_counter()
    response = await client.chat(
        model=model,
        messages=chat_messages,
        format=FACTS_SCHEMA,
        options={"temperature": 0, "num_predict": num_predict, "num_ctx": num_ctx},
    )
    logger.info(
        "llm extraction",
        extra={
            "model": model,
            "prompt_tokens": int(response.prompt_eval_count or 0),
            "estimated_tokens": estimate,
            "output_tokens": int(response.eval_count or 0),
            "num_ctx": num_ctx,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    check_truncation(response.prompt_eval_count, num_ctx)
    return parse_reply(response.message.content or "", model)
