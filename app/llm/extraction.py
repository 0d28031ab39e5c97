"""Fact extraction with one structured-output Ollama /api/chat call and explicit truncation detection."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import InvalidModelOutput, UpstreamError
from app.graph.names import MAX_NAME_CHARS, Relation, node_name, relationship_type
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

_RELATION_ITEMS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "source": {"type": "string"},
            "relationship": {"type": "string"},
            "destination": {"type": "string"},
        },
        "required": ["source", "relationship", "destination"],
    },
}
# With graph memory the same one call also states the relations between the entities (mem0's field names) and which
# of the known relations the conversation ends.
GRAPH_SCHEMA: dict[str, Any] = {
    **FACTS_SCHEMA,
    "properties": {**FACTS_SCHEMA["properties"], "relations": _RELATION_ITEMS, "ended_relations": _RELATION_ITEMS},
    "required": ["facts", "entities", "relations", "ended_relations"],
}


def reply_schema(graph: bool, categories: Sequence[str]) -> dict[str, Any]:
    """The reply's JSON schema: facts and entities; relations with the graph; each fact's categories (one list per
    fact, in order, names from `categories`) when there are categories to give."""
    schema = GRAPH_SCHEMA if graph else FACTS_SCHEMA
    if not categories:
        return schema
    per_fact = {"type": "array", "items": {"type": "array", "items": {"type": "string", "enum": list(categories)}}}
    return {
        **schema,
        "properties": {**schema["properties"], "fact_categories": per_fact},
        "required": [*schema["required"], "fact_categories"],
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

GRAPH_RULES = """Also list the relations between the entities the conversation states, as
{"source": "...", "relationship": "...", "destination": "..."}, the relationship in a few lowercase words
(works_at, lives_in, friend_of). Under "ended_relations" list each known relation (below) that the conversation
says no longer holds, exactly as written there. Answer with JSON:
{"facts": [...], "entities": [...], "relations": [...], "ended_relations": [...]}."""

CATEGORY_RULES = """Also give each fact the categories it belongs to, under "fact_categories": one list per fact,
in the order of the facts, each name from this list:
{categories}"""

CHARS_PER_TOKEN = 3.0  # conservative: estimates more tokens than most tokenizers produce for English
CONTEXT_MARGIN_TOKENS = 256
MIN_NUM_CTX = 2048
# A reply past these is a runaway generation, not facts: refused rather than stored.
MAX_FACTS = 100
MAX_FACT_CHARS = 2000
MAX_ENTITIES = 100
MAX_ENTITY_CHARS = 200
MAX_RELATIONS = 100


class PromptTruncated(UpstreamError):
    """The prompt filled the context window, so Ollama cut it: the reply cannot be trusted."""

    code = "prompt_truncated"


@dataclass(frozen=True)
class ExtractedEntity:
    """A person, place, organization or product the facts name, as the model spelled it."""

    name: str
    type: str


@dataclass(frozen=True)
class Ask:
    """What an extraction is asked beyond the conversation: the caller's instructions; with graph memory (`known` not
    None) relations, the known ones shown so the reply can end them; categories (name, description) for each fact."""

    instructions: str | None = None
    known: Sequence[Relation] | None = None
    categories: Sequence[tuple[str, str]] = ()

    @property
    def category_names(self) -> list[str]:
        return [name for name, _ in self.categories]


@dataclass(frozen=True)
class DroppedItem:
    """An item of the model's reply that could not be used: a fact or a named entity, and why."""

    item: str  # fact, entity, relation or ended_relation
    reason: str  # not_text, empty, too_long, invalid_unicode, bad_type, no_letters, too_many, bad_relationship, unknown
    index: int


@dataclass(frozen=True)
class Extraction:
    """What the model found, stored on the job so a retry after a storage failure does not ask again. `dropped`
    lists the reply's unusable items (reported once, by the worker that asked; not stored)."""

    facts: list[str]
    entities: list[ExtractedEntity]
    model: str
    dropped: list[DroppedItem] = field(default_factory=list, compare=False)
    relations: list[Relation] = field(default_factory=list)
    ended_relations: list[Relation] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)  # per fact, in order; empty when none were asked

    def to_json(self) -> dict[str, object]:
        entities = [{"name": entity.name, "type": entity.type} for entity in self.entities]
        graph = {
            "relations": [_relation_json(relation) for relation in self.relations],
            "ended_relations": [_relation_json(relation) for relation in self.ended_relations],
        }
        return {"facts": self.facts, "entities": entities, "model": self.model, **graph, "categories": self.categories}

    def categories_of(self, index: int) -> list[str]:
        return self.categories[index] if index < len(self.categories) else []

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Extraction:
        facts, model = data.get("facts"), data.get("model")
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts) or not isinstance(model, str):
            raise InvalidModelOutput("the job's stored extraction is not {facts: [string], model: string}")
        relations = parse_relations(data.get("relations", []), "relation", [])
        ended = parse_relations(data.get("ended_relations", []), "ended_relation", [])
        stored = data.get("categories", [])
        categories = (
            [[str(name) for name in names] for names in stored if isinstance(names, list)]
            if isinstance(stored, list)
            else []
        )
        return cls(
            facts, parse_entities(data, []), model, relations=relations, ended_relations=ended, categories=categories
        )


def _relation_json(relation: Relation) -> dict[str, str]:
    return {"source": relation.source, "relationship": relation.relationship, "destination": relation.destination}


def merge_extractions(extractions: list[Extraction]) -> Extraction:
    """One extraction for a conversation extracted window by window: every fact, each entity once."""
    entities: dict[str, ExtractedEntity] = {}
    for extraction in extractions:
        for entity in extraction.entities:
            entities.setdefault(entity_key(entity.name), entity)
    facts = [fact for extraction in extractions for fact in extraction.facts]
    dropped = [item for extraction in extractions for item in extraction.dropped]
    relations = list(dict.fromkeys(relation for extraction in extractions for relation in extraction.relations))
    ended = list(dict.fromkeys(relation for extraction in extractions for relation in extraction.ended_relations))
    categories = [e.categories_of(i) for e in extractions for i in range(len(e.facts))]
    return Extraction(
        facts,
        list(entities.values()),
        extractions[-1].model,
        dropped,
        relations=relations,
        ended_relations=ended,
        categories=categories if any(categories) else [],
    )


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


def build_chat_messages(messages: list[dict[str, str]], ask: Ask = Ask()) -> list[dict[str, str]]:
    """The extraction prompt: the rules, then what `ask` adds (graph rules, categories, the caller's instructions
    last); the known relations, one per line, before the conversation."""
    system = SYSTEM_PROMPT
    if ask.known is not None:
        system += "\n" + GRAPH_RULES
    if ask.categories:
        listed = ", ".join(f"{name} ({about})" if about else name for name, about in ask.categories)
        system += "\n" + CATEGORY_RULES.format(categories=listed)
    if ask.instructions is not None:
        system += f"\nAdditional instructions:\n{ask.instructions}"
    conversation = "Conversation:\n" + render_conversation(messages)
    if ask.known:
        known = "\n".join(relation.line() for relation in ask.known)
        conversation = f"Known relations:\n{known}\n\n{conversation}"
    return [{"role": "system", "content": system}, {"role": "user", "content": conversation}]


def estimate_tokens(chat_messages: list[dict[str, str]]) -> int:
    chars = sum(len(message["content"]) for message in chat_messages)
    return int(chars / CHARS_PER_TOKEN) + 16 * len(chat_messages)


def conversation_windows(
    messages: list[dict[str, str]],
    *,
    num_predict: int,
    max_ctx: int,
    ask: Ask = Ask(),
) -> list[list[dict[str, str]]]:
    """Consecutive runs of the conversation whose prompt and answer each fit the context window: a transcript longer
    than one window is extracted window by window instead of refused. A single message too long for any window stays
    alone in its own, and its extraction reports the truncation."""
    budget = max_ctx - num_predict - CONTEXT_MARGIN_TOKENS
    base = estimate_tokens(build_chat_messages([], ask))
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


def parse_reply(content: str, model: str, ask: Ask = Ask()) -> Extraction:
    """The reply checked item by item before anything hashes or stores it: an unusable fact, entity or relation is
    dropped (and listed in `dropped`), the rest kept. A reply with no usable fact although it listed some, or that is
    not the schema's JSON at all, is invalid output: asking the same model the same question again would not help.
    With graph memory (`ask.known` not None) an ended relation counts only if it is one of the known ones."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):  # also a number past int's digit limit, or nesting past the stack
        raise InvalidModelOutput("the model's extraction reply is not JSON this server can read") from None
    if not isinstance(data, dict) or not isinstance(data.get("facts"), list):
        raise InvalidModelOutput('the model\'s extraction reply does not match {"facts": [string]}')
    dropped: list[DroppedItem] = []
    kept = parse_facts(data["facts"], dropped)
    facts = [text for _, text in kept]
    if not facts and any(item.item == "fact" and item.reason != "empty" for item in dropped):
        reasons = "; ".join(sorted({FACT_PROBLEMS[item.reason] for item in dropped if item.item == "fact"}))
        raise InvalidModelOutput(f"none of the model's facts can be stored: {reasons}")
    entities = parse_entities(data, dropped)
    fact_indexes = [index for index, _ in kept]
    per_fact = parse_categories(data.get("fact_categories"), fact_indexes, ask.category_names, dropped)
    known = ask.known
    if known is None:
        return Extraction(facts, entities, model, dropped, categories=per_fact)
    relations = parse_relations(data.get("relations", []), "relation", dropped)
    candidates = parse_relations(data.get("ended_relations", []), "ended_relation", dropped)
    ended = [relation for relation in candidates if relation in known]
    dropped += [DroppedItem("ended_relation", "unknown", i) for i, r in enumerate(candidates) if r not in known]
    return Extraction(facts, entities, model, dropped, relations=relations, ended_relations=ended, categories=per_fact)


def parse_categories(
    raw: Any, fact_indexes: list[int], allowed: Sequence[str], dropped: list[DroppedItem]
) -> list[list[str]]:
    """Each kept fact's categories (by its index in the reply), names outside `allowed` dropped and counted."""
    if not allowed or raw is None:
        return []
    if not isinstance(raw, list):
        dropped.append(DroppedItem("category", "not_text", 0))
        return []
    per_fact: list[list[str]] = []
    for index in fact_indexes:
        names = raw[index] if index < len(raw) and isinstance(raw[index], list) else []
        usable = [name for name in names if isinstance(name, str) and name in allowed]
        dropped += [DroppedItem("category", "bad_type", index) for name in names if name not in usable]
        per_fact.append(list(dict.fromkeys(usable)))
    return per_fact if any(per_fact) else []


FACT_PROBLEMS = {
    "not_text": "not text",
    "empty": "blank",
    "too_long": f"longer than {MAX_FACT_CHARS} characters",
    "invalid_unicode": "invalid Unicode (a lone surrogate), which cannot be stored",
    "too_many": f"past the first {MAX_FACTS}",
}


def parse_facts(facts: list[Any], dropped: list[DroppedItem]) -> list[tuple[int, str]]:
    """The usable facts with their index in the reply: text, not blank, at most MAX_FACT_CHARS, valid Unicode; at
    most MAX_FACTS of them."""
    kept: list[tuple[int, str]] = []
    for index, fact in enumerate(facts):
        text = fact.replace("\x00", "").strip() if isinstance(fact, str) else None
        reason = _fact_problem(text, len(kept))
        if text is not None and reason is None:
            kept.append((index, text))
        else:
            dropped.append(DroppedItem("fact", reason or "not_text", index))
    return kept


def _fact_problem(text: str | None, kept: int) -> str | None:
    if text is None:
        return "not_text"
    if not text:
        return "empty"
    if len(text) > MAX_FACT_CHARS:
        return "too_long"
    if not _is_storable(text):
        return "invalid_unicode"
    return "too_many" if kept >= MAX_FACTS else None


def parse_entities(data: dict[str, Any], dropped: list[DroppedItem]) -> list[ExtractedEntity]:
    """The reply's usable named entities: a name with a letter or digit, at most MAX_ENTITY_CHARS, and one of the
    types (`Person` is read as person). An extraction without the key (stored on a job before entities were asked
    for) has none."""
    entities = data.get("entities", [])
    if not isinstance(entities, list):
        dropped.append(DroppedItem("entity", "not_text", 0))
        return []
    found: list[ExtractedEntity] = []
    for index, entity in enumerate(entities):
        usable = _entity(entity, len(found))
        if isinstance(usable, ExtractedEntity):
            found.append(usable)
        else:
            dropped.append(DroppedItem("entity", usable, index))
    return found


def _entity(entity: Any, kept: int) -> ExtractedEntity | str:
    """The entity, tidied, or why it cannot be used."""
    name = entity.get("name") if isinstance(entity, dict) else None
    kind = entity.get("type") if isinstance(entity, dict) else None
    if not isinstance(name, str) or not isinstance(kind, str):
        return "not_text"
    name, kind = " ".join(name.replace("\x00", "").split()), kind.strip().lower()
    if kind not in NAMED_ENTITY_TYPES:
        return "bad_type"
    if len(name) > MAX_ENTITY_CHARS:
        return "too_long"
    if not _is_storable(name):
        return "invalid_unicode"
    # A name without a letter or digit ("&") names nothing a text search could find.
    if not any(character.isalnum() for character in name):
        return "no_letters"
    return "too_many" if kept >= MAX_ENTITIES else ExtractedEntity(name, kind)


def parse_relations(relations: Any, item: str, dropped: list[DroppedItem]) -> list[Relation]:
    """The usable relations, each once: both ends a usable name, the relationship a plain identifier once
    normalised (`Works at` -> works_at); at most MAX_RELATIONS."""
    if not isinstance(relations, list):
        dropped.append(DroppedItem(item, "not_text", 0))
        return []
    found: dict[Relation, None] = {}
    for index, raw in enumerate(relations):
        usable = _relation(raw, len(found))
        if isinstance(usable, Relation):
            found.setdefault(usable)
        else:
            dropped.append(DroppedItem(item, usable, index))
    return list(found)


def _relation(raw: Any, kept: int) -> Relation | str:
    """The relation, normalised, or why it cannot be used."""
    if not isinstance(raw, dict):
        return "not_text"
    ends = [raw.get("source"), raw.get("destination")]
    relationship = raw.get("relationship")
    if not all(isinstance(value, str) for value in [*ends, relationship]):
        return "not_text"
    names = [node_name(str(end).replace("\x00", "")) for end in ends]
    if any(len(name) > MAX_NAME_CHARS for name in names):
        return "too_long"
    if not all(_is_storable(name) for name in names):
        return "invalid_unicode"
    if not all(any(character.isalnum() for character in name) for name in names):
        return "no_letters"
    kind = relationship_type(str(relationship))
    if kind is None:
        return "bad_relationship"
    return "too_many" if kept >= MAX_RELATIONS else Relation(names[0], kind, names[1])


def _is_storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    ask: Ask = Ask(),
) -> Extraction:
    chat_messages = build_chat_messages(messages, ask)
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
        format=reply_schema(ask.known is not None, ask.category_names),
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
    return parse_reply(response.content, model, ask)
