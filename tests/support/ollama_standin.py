"""An HTTP server that speaks enough of the Ollama API for tests and benchmarks, with deterministic
embeddings and chat replies, latency and fault injection, and a small control API (/_control, /_stats)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

VERSION = "0.6.0-standin"
DEFAULT_MODELS = ("mistral:7b-instruct-q5_K_M", "nomic-embed-text:latest")
STAT_OPS = ("embed", "embeddings", "chat", "generate", "tags", "show", "pull", "version", "ps")
FAULT_OPS = ("embed", "chat", "generate", "tags", "show", "version", "pull", "ps")
FAULT_KINDS = ("status", "hang", "wrong_dims", "malformed", "drop")
MAX_LOGGED_REQUESTS = 200
READY_PREFIX = "OLLAMA_STANDIN_READY"

_TOKEN_RE = re.compile(r"[^\W_]+")
_SENTENCE_SPLIT_RE = re.compile(r"[.!?\n]+")
_TRANSCRIPT_USER_RE = re.compile(r"^\s*user\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
# The stand-in's named entities: runs of capitalised words; after "to", "in", "from" or "at" they are places.
_CAPITALISED_RUN_RE = re.compile(r"(?:\b(to|in|from|at)\s+)?\b([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")
_NOT_NAMES = frozenset(
    {
        "I",
        "I'm",
        "I've",
        "My",
        "The",
        "A",
        "An",
        "We",
        "He",
        "She",
        "It",
        "They",
        "This",
        "That",
        "User",
        "Our",
        "His",
        "Her",
        "Their",
        "Yes",
        "No",
        "Hi",
        "Hello",
    }
)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_QUANTUM = 10_000_000  # vectors are served with 7 decimals; see _vectors_json
_ORDER_WEIGHT = 0.1
_NEVER_EXPIRES = datetime(2318, 1, 1, tzinfo=UTC)  # what Ollama reports for a negative keep_alive
_RAW_SEND_KEY = "standin.raw_send"


# ---------------------------------------------------------------------------------------------------------------
# Deterministic embeddings


@functools.lru_cache(maxsize=32_768)
def _token_vector(token: str, dims: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dims, dtype=np.float32)
    vector.setflags(write=False)  # shared through the cache
    return vector


def _order_vector(text: str, dims: int) -> np.ndarray:
    # Two of 512 cached salt vectors picked by the text's hash: a fresh generator per text would cost more
    # than all its tokens, and caching per text would evict the token vectors.
    digest = hashlib.sha256(b"text\0" + text.encode()).digest()
    salt: np.ndarray = _token_vector(f"\0salt{digest[0]}", dims) - _token_vector(f"\0salt{256 + digest[1]}", dims)
    return salt


def _quantised_embedding(text: str, dims: int) -> np.ndarray:
    tokens = _TOKEN_RE.findall(text.lower())
    if not tokens:
        vector = np.zeros(dims)
        vector[0] = 1.0
    else:
        vector = np.add.reduce([_token_vector(token, dims) for token in tokens], dtype=np.float64)
        vector += _ORDER_WEIGHT * _order_vector(text, dims)
        vector /= np.linalg.norm(vector)
    return np.rint(vector * _QUANTUM).astype(np.int64)


def embed_text(text: str, dims: int) -> list[float]:
    """The vector the stand-in serves for `text`: a unit-length hashed bag of words, rounded to 7 decimals.

    Texts sharing words are similar; word order only moves the vector slightly; a text without any
    alphanumeric token maps to the first basis vector. Bit-identical across processes for a given numpy.
    """
    vector: list[float] = (_quantised_embedding(text, dims) / _QUANTUM).tolist()
    return vector


def _vectors_json(vectors: Iterable[np.ndarray]) -> str:
    # json.dumps needs ~450 µs for 768 floats; integers with a decimal exponent ("1234567e-7") decode to
    # exactly the floats embed_text returns and encode four times faster, which matters at 100k embeddings.
    encoded = (json.dumps(v.tolist(), separators=(",", ":")).replace(",", "e-7,").replace("]", "e-7]") for v in vectors)
    return "[" + ",".join(encoded) + "]"


# ---------------------------------------------------------------------------------------------------------------
# Deterministic chat content


def facts_from_text(text: str) -> list[str]:
    """Sentences of one user message; if it embeds a transcript ("user: ..." lines) only those lines count."""
    transcript = _TRANSCRIPT_USER_RE.findall(text)
    sources = transcript if transcript else [text]
    return [s.strip() for source in sources for s in _SENTENCE_SPLIT_RE.split(source) if s.strip()]


def facts_from_messages(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The facts a JSON-format chat returns: sentences of every user-role message, first occurrence kept."""
    facts: dict[str, None] = {}
    for message in messages:
        if message.get("role") == "user":
            facts.update(dict.fromkeys(facts_from_text(message.get("content") or "")))
    return list(facts)


def entities_from_facts(facts: Sequence[str]) -> list[dict[str, str]]:
    """The entities a schema asking for them gets: each capitalised run of words in the facts, once."""
    entities: dict[str, dict[str, str]] = {}
    for fact in facts:
        for preposition, run in _CAPITALISED_RUN_RE.findall(fact):
            words = run.split()
            while words and words[0] in _NOT_NAMES:
                words.pop(0)
            if words:
                name = " ".join(words)
                entities.setdefault(name.lower(), {"name": name, "type": "place" if preposition else "person"})
    return list(entities.values())


_KNOWN_RELATION_RE = re.compile(r"^(\S+) -(\S+)-> (\S+)$", re.MULTILINE)
_FILLER_WORDS = frozenset({"and", "now", "is", "are", "was", "also", "then", "the", "a", "an"})
_ENDING_WORDS = frozenset({"left", "quit"})


def known_relations(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """The `source -relationship-> destination` lines the server put in the prompt."""
    return [
        match
        for message in messages
        if message.get("role") == "user"
        for match in _KNOWN_RELATION_RE.findall(message.get("content") or "")
    ]


def relations_from_facts(
    facts: Sequence[str], known: Sequence[tuple[str, str, str]]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A graph schema's relations: in each fact, from its first named entity to each later one, named by the words
    just before that one ("Alice works at Acme" -> Alice works at Acme). "left" or "quit" before a name ends the
    known relations from the subject to it instead."""
    relations: list[dict[str, str]] = []
    ended: list[dict[str, str]] = []
    for fact in facts:
        names = [name["name"] for name in entities_from_facts([fact])]
        if len(names) < 2:
            continue
        subject = names[0]
        position = fact.find(subject) + len(subject)
        for name in names[1:]:
            at = fact.find(name, position)
            if at < 0:
                continue
            words = [w for w in re.findall(r"[\w']+", fact[position:at].lower()) if w not in _FILLER_WORDS]
            position = at + len(name)
            if not words:
                continue
            key = (subject.lower().replace(" ", "_"), name.lower().replace(" ", "_"))
            if words[0] in _ENDING_WORDS:
                ended += [{"source": s, "relationship": r, "destination": d} for s, r, d in known if (s, d) == key]
            else:
                relations.append({"source": subject, "relationship": " ".join(words), "destination": name})
    return relations, ended


_CATEGORY_WORDS = {"food": ("tea", "coffee", "eat", "food", "cook"), "travel": ("travel", "flight", "trip", "moved")}


def categories_of(fact: str, allowed: Sequence[str]) -> list[str]:
    """A fact's categories from `allowed`: those named in it, or whose cue words it uses; `misc` otherwise."""
    words = set(re.findall(r"[a-z]+", fact.lower()))
    found = [
        name for name in allowed if name.replace("_", " ") in fact.lower() or words & set(_CATEGORY_WORDS.get(name, ()))
    ]
    return found or (["misc"] if "misc" in allowed else [])


def estimate_tokens(text: str) -> int:
    """The stand-in's token count for a text: one token per four characters."""
    return math.ceil(len(text) / 4)


# ---------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class FaultSpec:
    """How one operation misbehaves; `count` is the number of faults left (None: unlimited)."""

    kind: str
    status: int = 500
    every: int = 1
    count: int | None = None
    dims: int | None = None
    seconds: float = 3600.0


@dataclass
class StandinConfig:
    """Every tunable of the stand-in; /_control changes it while the server runs."""

    host: str = "127.0.0.1"
    port: int = 0
    dims: int = 768
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    pullable: list[str] | None = None  # None: any name can be pulled
    embed_latency_ms: float = 0.0
    chat_latency_ms: float = 0.0
    num_ctx: int = 2048  # the context used when a request sets no options.num_ctx, as in Ollama
    enforce_num_predict: bool = False  # cut replies at options.num_predict tokens with done_reason "length"
    faults: dict[str, FaultSpec] = field(default_factory=dict)
    chat_reply: str | None = None
    chat_replies: list[str] = field(default_factory=list)  # consumed one per chat call before chat_reply
    down: bool = False  # every /api/* call answers 503

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data."""
        return asdict(self)


def normalize_model_name(name: str) -> str:
    """Ollama reads a name without a tag as `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _fault_spec(op: str, raw: Mapping[str, Any]) -> FaultSpec:
    unknown = set(raw) - {"kind", "status", "every", "count", "dims", "seconds"}
    if unknown:
        raise ValueError(f"unknown fault fields for {op}: {sorted(unknown)}")
    spec = FaultSpec(**raw)
    if spec.kind not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {spec.kind!r}")

    def whole(value: Any, low: int, high: int | None = None) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= (high or value)

    if not (whole(spec.status, 100, 599) and whole(spec.every, 1) and (spec.count is None or whole(spec.count, 1))):
        raise ValueError("a fault needs an HTTP status, every >= 1 and count >= 1 or null")
    if isinstance(spec.seconds, bool) or not isinstance(spec.seconds, int | float) or spec.seconds < 0:
        raise ValueError("a fault's seconds must be a number >= 0")
    if spec.kind == "wrong_dims" and (op != "embed" or not whole(spec.dims, 1)):
        raise ValueError("wrong_dims applies to embed only and needs dims >= 1")
    return spec


def _setting(key: str, value: Any) -> Any:
    """`value` checked against the type of setting `key`."""
    if key in ("dims", "num_ctx"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer")
        return value
    if key in ("embed_latency_ms", "chat_latency_ms"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{key} must be a number >= 0")
        return float(value)
    if key in ("down", "enforce_num_predict"):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if key == "chat_reply":
        if value is not None and not isinstance(value, str):
            raise ValueError("chat_reply must be a string or null")
        return value
    if key == "chat_replies":
        if not isinstance(value, list) or not all(isinstance(reply, str) for reply in value):
            raise ValueError("chat_replies must be a list of strings")
        return list(value)
    if key in ("models", "pullable"):
        if value is None and key == "pullable":
            return None
        if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
            raise ValueError(f"{key} must be a list of model names")
        return list(dict.fromkeys(normalize_model_name(name) for name in value))
    raise ValueError(f"unknown or read-only setting {key!r}")


def apply_partial(config: StandinConfig, partial: Mapping[str, Any]) -> None:
    """Applies a /_control body to `config`; raises ValueError, leaving `config` untouched, if any part is bad."""
    changes: dict[str, Any] = {}
    faults = dict(config.faults)
    for key, value in partial.items():
        if key != "faults":
            changes[key] = _setting(key, value)
        elif value is None:
            faults = {}
        elif not isinstance(value, dict):
            raise ValueError("faults must be an object of operation to fault spec (or null)")
        else:
            for op, raw in value.items():
                if op not in FAULT_OPS:
                    raise ValueError(f"fault operation must be one of {FAULT_OPS}, not {op!r}")
                if raw is None:
                    faults.pop(op, None)
                elif isinstance(raw, dict):
                    faults[op] = _fault_spec(op, raw)
                else:
                    raise ValueError(f"the fault for {op} must be an object or null")
    for key, value in changes.items():
        setattr(config, key, value)
    config.faults = faults


# ---------------------------------------------------------------------------------------------------------------
# Model metadata

_FAMILIES = (
    ("nomic-embed", "nomic-bert"),
    ("mxbai-embed", "bert"),
    ("all-minilm", "bert"),
    ("bge", "bert"),
    ("mistral", "llama"),
    ("mixtral", "llama"),
    ("llama", "llama"),
    ("qwen", "qwen2"),
    ("gemma", "gemma"),
    ("phi", "phi3"),
)


def is_embedding_model(name: str) -> bool:
    """Embedding-only models, by Ollama's naming: they cannot chat or generate."""
    base = name.rsplit("/", 1)[-1].split(":")[0].lower()
    return "embed" in base or base.startswith(("all-minilm", "bge-", "paraphrase-multilingual"))


def _model_details(name: str) -> dict[str, Any]:
    base, _, tag = name.rsplit("/", 1)[-1].lower().partition(":")
    family = next((fam for prefix, fam in _FAMILIES if base.startswith(prefix)), base.split("-")[0])
    embedding = is_embedding_model(name)
    size = re.search(r"(?:^|[-_])(\d+(?:\.\d+)?)([bm])(?:$|[-_])", tag)
    quant = re.search(r"(?:^|[-_])(q\d(?:_[a-z0-9]+)*|f16|f32|bf16)$", tag)
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": f"{size.group(1)}{size.group(2).upper()}" if size else ("137M" if embedding else "7B"),
        "quantization_level": quant.group(1).upper() if quant else ("F16" if embedding else "Q4_0"),
    }


def _model_size(name: str) -> int:
    return 274_302_450 if is_embedding_model(name) else 5_137_025_024


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _keep_alive_seconds(value: Any) -> float | None:
    """Seconds a model stays loaded; None means forever. Raises ValueError like Ollama's duration parser."""
    if value is None:
        return 300.0
    if isinstance(value, bool):
        raise ValueError("invalid keep_alive")
    if isinstance(value, int | float) or re.fullmatch(r"-?\d+(?:\.\d+)?", str(value)):
        seconds = float(value)
    else:
        text = str(value)
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if not body or _DURATION_RE.sub("", body):
            raise ValueError(f"time: invalid duration {text!r}")
        seconds = sign * sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_RE.findall(body))
    return None if seconds < 0 else seconds


# ---------------------------------------------------------------------------------------------------------------
# Responses


class _Reply(Exception):
    """Raised inside a handler to answer at once (errors, faults)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _error(status: int, message: str) -> _Reply:
    return _Reply(JSONResponse({"error": message}, status_code=status))


def _ndjson(lines: Iterable[Mapping[str, Any]]) -> StreamingResponse:
    return StreamingResponse((json.dumps(line) + "\n" for line in lines), media_type="application/x-ndjson")


class _DropConnection(Response):
    """Closes the TCP connection without sending a byte, so the client sees the server vanish mid-request."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's send is a bound method of the request cycle, which owns the transport.
        cycle = getattr(scope.get(_RAW_SEND_KEY), "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            # Another server: promise a body and never send it, the closest portable failure.
            headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            return
        transport.close()
        # Wait for uvicorn to notice, or it would answer the unanswered request with a 500.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while (await receive())["type"] != "http.disconnect":
                    pass


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleeps `seconds`; returns True early if the client goes away, so abandoned hangs free their task."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    watcher = asyncio.ensure_future(disconnected())
    done, pending = await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return watcher in done


# ---------------------------------------------------------------------------------------------------------------
# The server

Handler = Callable[[dict[str, Any], Request, FaultSpec | None], Awaitable[Response]]


@dataclass
class _Loaded:
    expires_at: datetime | None  # None: never
    context_length: int


class Standin:
    """State and handlers of one stand-in; `build_app` wires it into a Starlette app."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.started_at = datetime.now(UTC).replace(microsecond=0)
        self.loaded: dict[str, _Loaded] = {}
        self._fault_calls: dict[str, int] = {}
        self._fault_seen_spec: dict[str, FaultSpec] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zeroes the counters and forgets the logged requests."""
        self.counts = dict.fromkeys(STAT_OPS, 0)
        self.embed_inputs = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)

    def stats(self) -> dict[str, Any]:
        """The /_stats body."""
        return {"counts": dict(self.counts), "embed_inputs": self.embed_inputs, "requests": list(self.requests)}

    # -- plumbing ------------------------------------------------------------------------------------------------

    def endpoint(self, op: str, fault_op: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wraps a handler with counting, the down switch and fault injection."""

        async def run(request: Request) -> Response:
            request.state.arrived = asyncio.get_running_loop().time()
            entry: dict[str, Any] = {"op": op, "model": None, "at": round(time.time(), 6)}
            self.counts[op] += 1
            self.requests.append(entry)
            try:
                body = await self._body(request, entry)
                if self.config.down:
                    entry["fault"] = "down"
                    raise _error(503, "ollama stand-in is down")
                fault = self._take_fault(fault_op)
                if fault is not None:
                    entry["fault"] = fault.kind
                    await self._misbehave(fault, request)
                return await handler(body, request, fault)
            except _Reply as reply:
                return reply.response

        return run

    async def _body(self, request: Request, entry: dict[str, Any]) -> dict[str, Any]:
        if request.method != "POST":
            return {}
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise _error(400, "invalid request body") from None
        if not isinstance(body, dict):
            raise _error(400, "invalid request body")
        entry["model"] = body.get("model")
        for key in ("stream", "keep_alive", "options", "format", "truncate"):
            if key in body:
                entry[key] = body[key]
        if entry["op"] in ("embed", "embeddings"):
            inputs = body.get("input") if entry["op"] == "embed" else body.get("prompt")
            entry["n_inputs"] = len(inputs) if isinstance(inputs, list) else int(bool(inputs))
        if isinstance(body.get("messages"), list):
            entry["n_messages"] = len(body["messages"])
            system = [m.get("content") for m in body["messages"] if isinstance(m, dict) and m.get("role") == "system"]
            if system:
                entry["system"] = str(system[0])[:4000]  # what the server instructed the model, for assertions
        return body

    def _take_fault(self, op: str) -> FaultSpec | None:
        spec = self.config.faults.get(op)
        if spec is None:
            return None
        if self._fault_seen_spec.get(op) is not spec:  # a newly set fault counts its calls from zero
            self._fault_seen_spec[op] = spec
            self._fault_calls[op] = 0
        self._fault_calls[op] += 1
        if self._fault_calls[op] % spec.every:
            return None
        if spec.count is not None:
            spec.count -= 1
            if spec.count <= 0:
                del self.config.faults[op]
        return spec

    async def _misbehave(self, fault: FaultSpec, request: Request) -> None:
        if fault.kind == "status":
            raise _error(fault.status, "injected fault")
        if fault.kind == "malformed":
            raise _Reply(Response(b'{"model": "standin", "embeddings": [[0.1, 0.2', media_type="application/json"))
        if fault.kind == "drop":
            raise _Reply(_DropConnection())
        if fault.kind == "hang" and await _sleep_unless_disconnected(request, fault.seconds):
            raise _Reply(Response(status_code=499))  # nobody is listening any more

    async def _latency(self, request: Request, milliseconds: float) -> None:
        """Holds the reply until `milliseconds` after the request arrived: the configured latency is the service
        time a client sees, so the stand-in's own parsing and computing do not add to it."""
        if milliseconds > 0:
            elapsed = asyncio.get_running_loop().time() - request.state.arrived
            await _sleep_unless_disconnected(request, max(0.0, milliseconds / 1000 - elapsed))

    def _present_model(self, body: Mapping[str, Any]) -> str:
        model = body.get("model") or body.get("name")
        if not isinstance(model, str) or not model:
            raise _error(400, "model is required")
        if normalize_model_name(model) not in self.config.models:
            raise _error(404, f'model "{model}" not found, try pulling it first')
        return model

    def _capable_model(self, body: Mapping[str, Any], capability: str) -> str:
        model = self._present_model(body)
        if is_embedding_model(model):
            raise _error(400, f'"{model}" does not support {capability}')
        return model

    def _load(self, model: str, keep_alive: Any, options: Mapping[str, Any] | None) -> int:
        """Marks the model loaded as Ollama's scheduler would; returns the load duration in ns."""
        try:
            seconds = _keep_alive_seconds(keep_alive)
        except ValueError as exc:
            raise _error(400, str(exc)) from None
        name = normalize_model_name(model)
        was_loaded = name in self.loaded
        if seconds == 0:
            self.loaded.pop(name, None)
            return 0
        expires = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        self.loaded[name] = _Loaded(expires, self._num_ctx(options))
        return 1_000_000 if was_loaded else 250_000_000

    def _num_ctx(self, options: Mapping[str, Any] | None) -> int:
        value = (options or {}).get("num_ctx")
        return value if isinstance(value, int) and value > 0 else self.config.num_ctx

    def _model_entry(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": self.started_at.isoformat(),
            "size": _model_size(name),
            "digest": _digest(name),
            "details": _model_details(name),
        }

    # -- Ollama endpoints ----------------------------------------------------------------------------------------

    async def version(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        return JSONResponse({"version": VERSION})

    async def tags(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        return JSONResponse({"models": [self._model_entry(name) for name in self.config.models]})

    async def show(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = body.get("model") or body.get("name")
        if not isinstance(model, str) or not model:
            raise _error(400, "model is required")
        name = normalize_model_name(model)
        if name not in self.config.models:
            raise _error(404, f"model '{model}' not found")
        details = _model_details(name)
        arch = details["family"]
        embedding = is_embedding_model(name)
        context_length = 2048 if embedding else 32768
        return JSONResponse(
            {
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n',
                "parameters": "" if embedding else 'stop "[INST]"\nstop "[/INST]"',
                "template": "{{ .Prompt }}" if embedding else "[INST] {{ .Prompt }} [/INST]",
                "details": details,
                "model_info": {
                    "general.architecture": arch,
                    "general.basename": name.split(":")[0],
                    "general.parameter_count": 136_727_040 if embedding else 7_248_023_552,
                    f"{arch}.context_length": context_length,
                    f"{arch}.embedding_length": self.config.dims if embedding else 4096,
                },
                "capabilities": ["embedding"] if embedding else ["completion"],
                "modified_at": self.started_at.isoformat(),
            }
        )

    async def ps(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        now = datetime.now(UTC)
        self.loaded = {
            name: entry
            for name, entry in self.loaded.items()
            if (entry.expires_at is None or entry.expires_at > now) and name in self.config.models
        }
        models = [
            {
                **self._model_entry(name),
                "expires_at": (entry.expires_at or _NEVER_EXPIRES).isoformat(),
                "size_vram": _model_size(name),
                "context_length": entry.context_length,
            }
            for name, entry in self.loaded.items()
        ]
        return JSONResponse({"models": models})

    async def pull(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = body.get("model") or body.get("name")
        if not isinstance(model, str) or not model:
            raise _error(400, "model is required")
        name = normalize_model_name(model)
        pullable = self.config.pullable is None or name in self.config.pullable
        if body.get("stream", True) is False:
            if not pullable:
                raise _error(500, "pull model manifest: file does not exist")
            self._add_model(name)
            return JSONResponse({"status": "success"})
        if not pullable:
            # Ollama has already answered 200 when the manifest lookup fails, so the error is a stream line.
            return _ndjson([{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}])
        digest = f"sha256:{_digest(name)}"
        total = _model_size(name)
        self._add_model(name)
        return _ndjson(
            [
                {"status": "pulling manifest"},
                {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total},
                {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": total // 2},
                {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": total},
                {"status": "verifying sha256 digest"},
                {"status": "writing manifest"},
                {"status": "success"},
            ]
        )

    def _add_model(self, name: str) -> None:
        if name not in self.config.models:
            self.config.models.append(name)

    async def embed(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = self._present_model(body)
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(text, str) for text in raw):
            texts = raw
        elif raw is None:
            texts = []
        else:
            raise _error(400, "invalid input type")
        options = body.get("options") if isinstance(body.get("options"), dict) else None
        num_ctx = self._num_ctx(options)
        tokens = [estimate_tokens(text) for text in texts]
        if body.get("truncate") is False and any(count > num_ctx for count in tokens):
            raise _error(400, "input length exceeds maximum context length")
        load_ns = self._load(model, body.get("keep_alive"), options)
        dims = fault.dims if fault is not None and fault.kind == "wrong_dims" and fault.dims else self.config.dims
        vectors = [_quantised_embedding(text, dims) for text in texts]
        total_ns = load_ns + int(self.config.embed_latency_ms * 1e6) + 1_000_000 * len(texts)
        payload = (
            f'{{"model":{json.dumps(model)},"embeddings":{_vectors_json(vectors)},'
            f'"total_duration":{total_ns},"load_duration":{load_ns},'
            f'"prompt_eval_count":{sum(min(count, num_ctx) for count in tokens)}}}'
        )
        await self._latency(request, self.config.embed_latency_ms)
        self.embed_inputs += len(texts)
        return Response(payload, media_type="application/json")

    async def embeddings(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = self._present_model(body)
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise _error(400, "invalid prompt")
        options = body.get("options") if isinstance(body.get("options"), dict) else None
        self._load(model, body.get("keep_alive"), options)
        await self._latency(request, self.config.embed_latency_ms)
        dims = fault.dims if fault is not None and fault.kind == "wrong_dims" and fault.dims else self.config.dims
        if not prompt:
            return JSONResponse({"embedding": []})
        self.embed_inputs += 1
        vector = _vectors_json([_quantised_embedding(prompt, dims)])[1:-1]
        return Response(f'{{"embedding":{vector}}}', media_type="application/json")

    async def generate(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = self._capable_model(body, "generate")
        options = self._options(body)
        fmt = self._format(body)
        prompt = body.get("prompt") or ""
        load_ns = self._load(model, body.get("keep_alive"), options)
        if not prompt:
            return self._load_reply(model, response="")
        await self._latency(request, self.config.chat_latency_ms)
        if fmt:
            content = json.dumps({"facts": facts_from_text(str(prompt))})
        else:
            content = f"Stand-in completion for: {str(prompt)[:80]}"
        prompt_tokens = estimate_tokens(str(prompt) + str(body.get("system") or "")) + 4
        content, final = self._completion(content, prompt_tokens, options, load_ns)
        if body.get("stream", True) is False:
            return JSONResponse({"model": model, "created_at": _now(), "response": content, **final})
        chunks = [{"model": model, "created_at": _now(), "response": c, "done": False} for c in _chunks(content)]
        return _ndjson([*chunks, {"model": model, "created_at": _now(), "response": "", **final}])

    async def chat(self, body: dict[str, Any], request: Request, fault: FaultSpec | None) -> Response:
        model = self._capable_model(body, "chat")
        options = self._options(body)
        fmt = self._format(body)
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content") or "", str) for m in messages
        ):
            raise _error(400, "invalid messages")
        load_ns = self._load(model, body.get("keep_alive"), options)
        if not messages:
            return self._load_reply(model, message={"role": "assistant", "content": ""})
        await self._latency(request, self.config.chat_latency_ms)
        content = self._chat_content(messages, fmt)
        prompt_tokens = sum(estimate_tokens(m.get("content") or "") + 4 for m in messages)
        content, final = self._completion(content, prompt_tokens, options, load_ns)
        if body.get("stream", True) is False:
            message = {"role": "assistant", "content": content}
            return JSONResponse({"model": model, "created_at": _now(), "message": message, **final})
        chunks = [
            {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": c}, "done": False}
            for c in _chunks(content)
        ]
        last = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""}, **final}
        return _ndjson([*chunks, last])

    def _load_reply(self, model: str, **content: Any) -> Response:
        """Ollama's answer to an empty prompt: the model was just loaded, or unloaded for keep_alive 0."""
        reason = "load" if normalize_model_name(model) in self.loaded else "unload"
        return JSONResponse({"model": model, "created_at": _now(), **content, "done": True, "done_reason": reason})

    def _chat_content(self, messages: list[dict[str, Any]], fmt: Any) -> str:
        if self.config.chat_replies:
            return self.config.chat_replies.pop(0)
        if self.config.chat_reply is not None:
            return self.config.chat_reply
        if fmt:
            facts = facts_from_messages(messages)
            properties = fmt.get("properties", {}) if isinstance(fmt, dict) else {}
            reply: dict[str, Any] = {"facts": facts}
            if "entities" in properties:
                reply["entities"] = entities_from_facts(facts)
            if "relations" in properties:
                reply["relations"], reply["ended_relations"] = relations_from_facts(facts, known_relations(messages))
            if "fact_categories" in properties:
                allowed = properties["fact_categories"]["items"]["items"].get("enum", [])
                reply["fact_categories"] = [categories_of(fact, allowed) for fact in facts]
            return json.dumps(reply)
        last_user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        first_sentence = next(iter(facts_from_text(last_user)), "")
        return f"Stand-in reply to: {first_sentence[:80]}"

    def _options(self, body: Mapping[str, Any]) -> dict[str, Any]:
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise _error(400, "invalid options")
        return options or {}

    def _format(self, body: Mapping[str, Any]) -> Any:
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise _error(400, 'invalid format: expected "json" or a valid JSON Schema')
        return fmt

    def _completion(
        self, content: str, prompt_tokens: int, options: Mapping[str, Any], load_ns: int
    ) -> tuple[str, dict[str, Any]]:
        """Applies num_ctx truncation (reported, as Ollama does, by prompt_eval_count) and num_predict."""
        prompt_eval_count = min(prompt_tokens, self._num_ctx(options))
        eval_count = max(1, estimate_tokens(content))
        done_reason = "stop"
        num_predict = options.get("num_predict")
        if self.config.enforce_num_predict and isinstance(num_predict, int) and 0 < num_predict < eval_count:
            content, eval_count, done_reason = content[: num_predict * 4], num_predict, "length"
        prompt_ns, eval_ns = prompt_eval_count * 100_000, eval_count * 10_000_000
        return content, {
            "done": True,
            "done_reason": done_reason,
            "total_duration": load_ns + prompt_ns + eval_ns + int(self.config.chat_latency_ms * 1e6),
            "load_duration": load_ns,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }

    # -- control API ---------------------------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                partial = json.loads(await request.body() or b"{}")
                if not isinstance(partial, dict):
                    raise ValueError("the control body must be a JSON object")
                apply_partial(self.config, partial)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.config.to_dict())

    async def root(self, request: Request) -> Response:
        return Response("Ollama is running")

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def reset_stats_endpoint(self, request: Request) -> Response:
        self.reset_stats()
        return JSONResponse(self.stats())


def _chunks(content: str, size: int = 16) -> list[str]:
    return [content[i : i + size] for i in range(0, len(content), size)] or [""]


class _StandinApp(Starlette):
    """Keeps the server's own send callable in the scope so the drop fault can reach the socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def build_app(config: StandinConfig) -> Starlette:
    """The stand-in as an ASGI app; its `Standin` is `app.state.standin`."""
    standin = Standin(config)
    api = [
        ("/api/version", "GET", "version", "version", standin.version),
        ("/api/tags", "GET", "tags", "tags", standin.tags),
        ("/api/ps", "GET", "ps", "ps", standin.ps),
        ("/api/show", "POST", "show", "show", standin.show),
        ("/api/pull", "POST", "pull", "pull", standin.pull),
        ("/api/embed", "POST", "embed", "embed", standin.embed),
        ("/api/embeddings", "POST", "embeddings", "embed", standin.embeddings),  # counted apart, faulted as embed
        ("/api/generate", "POST", "generate", "generate", standin.generate),
        ("/api/chat", "POST", "chat", "chat", standin.chat),
    ]
    routes = [
        Route(path, standin.endpoint(op, fault_op, handler), methods=[method])
        for path, method, op, fault_op, handler in api
    ]
    routes += [
        Route("/_control", standin.control, methods=["GET", "POST"]),
        Route("/_stats", standin.stats_endpoint, methods=["GET"]),
        Route("/_reset_stats", standin.reset_stats_endpoint, methods=["POST"]),
        Route("/", standin.root, methods=["GET", "HEAD"]),
    ]
    app = _StandinApp(routes=routes)
    app.state.standin = standin
    return app


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _bind(host: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP (not 0) lets asyncio set TCP_NODELAY on accepted connections; without it every
    # keep-alive reply waits ~40 ms for a delayed ACK (Nagle), which swamps the configured latency.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # lets a restarted stand-in reuse its port
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that announces the READY line once its sockets accept connections."""

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self.ready_line, flush=True)


async def serve(config: StandinConfig, *, exit_with_parent: bool = False, http: str = "h11") -> None:
    """Serves until SIGTERM/SIGINT; prints the READY line once connections are accepted."""
    sock = _bind(config.host, config.port)
    host = f"[{config.host}]" if ":" in config.host else config.host
    uvicorn_config = uvicorn.Config(
        build_app(config),
        http=http,  # h11 by default: the drop fault reaches the socket through h11's request cycle
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,  # hung requests must not hold up shutdown
    )
    server = _Server(uvicorn_config, f"{READY_PREFIX} http://{host}:{sock.getsockname()[1]}")
    if exit_with_parent:
        loop = asyncio.get_running_loop()

        def watch_stdin() -> None:
            sys.stdin.buffer.read()  # returns at EOF, i.e. when the parent process is gone
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)

        threading.Thread(target=watch_stdin, name="standin-parent-watch", daemon=True).start()
    await server.serve(sockets=[sock])


def _parse_args(argv: Sequence[str] | None) -> tuple[StandinConfig, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated models present at start")
    parser.add_argument("--pullable", default=None, help="comma-separated models /api/pull accepts (default: any)")
    parser.add_argument("--embed-latency-ms", type=float, default=0.0)
    parser.add_argument("--chat-latency-ms", type=float, default=0.0)
    parser.add_argument("--num-ctx", type=int, default=2048, help="context when a request sets no num_ctx")
    parser.add_argument("--config-json", default=None, help="a /_control body applied at start")
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when stdin reaches EOF")
    parser.add_argument(
        "--fast", action="store_true", help="uvloop and httptools: less CPU per call (benchmarks); no drop fault"
    )
    args = parser.parse_args(argv)
    config = StandinConfig(host=args.host, port=args.port)
    partial: dict[str, Any] = {
        "dims": args.dims,
        "models": [m for m in args.models.split(",") if m],
        "pullable": None if args.pullable is None else [m for m in args.pullable.split(",") if m],
        "embed_latency_ms": args.embed_latency_ms,
        "chat_latency_ms": args.chat_latency_ms,
        "num_ctx": args.num_ctx,
    }
    if args.config_json:
        partial.update(json.loads(args.config_json))
    try:
        apply_partial(config, partial)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    return config, args.exit_with_parent, args.fast


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m tests.support.ollama_standin`."""
    config, exit_with_parent, fast = _parse_args(argv)
    if fast:
        uvloop.run(serve(config, exit_with_parent=exit_with_parent, http="httptools"))
    else:
        asyncio.run(serve(config, exit_with_parent=exit_with_parent))


if __name__ == "__main__":
    main()
