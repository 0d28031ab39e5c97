"""A shared async client for Ollama's REST API with explicit deadlines; maps every failure to an API error.

On aiohttp (C-accelerated HTTP parsing) with orjson, not the `ollama` package (httpx, json and pydantic): an embed
call is on every write and search, and this way its answer becomes one float32 array per vector, the form pgvector's
binary format and the query cache keep, without a Python float per dimension outliving the decode."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import numpy as np
import orjson

from app.config import Settings
from app.errors import (
    AppError,
    EmbeddingDimensionMismatch,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.llm.batcher import EmbedBatcher
from app.llm.embedding import Embedding

logger = logging.getLogger(__name__)
T = TypeVar("T")
# (operation, model, seconds, the exception that ended the call or None on success,
#  tokens Ollama reported: prompt plus generated, None if it gave none)
CallObserver = Callable[[str, str, float, BaseException | None, int | None], None]
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class ChatReply:
    """What a chat call answered: the whole message and Ollama's token counts."""

    content: str
    prompt_eval_count: int | None = None
    eval_count: int | None = None

    @property
    def tokens(self) -> int | None:
        known = [count for count in (self.prompt_eval_count, self.eval_count) if count is not None]
        return sum(known) if known else None


@dataclass(frozen=True)
class EmbedReply:
    vectors: list[Embedding]
    prompt_eval_count: int | None = None

    @property
    def tokens(self) -> int | None:
        return self.prompt_eval_count


def _tokens(result: object) -> int | None:
    return result.tokens if isinstance(result, ChatReply | EmbedReply) else None


def normalize_model_name(name: str) -> str:
    """Ollama treats a name without a tag as `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OllamaClient:
    """One keep-alive connection pool to Ollama, a deadline on every call."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float,
        embed_timeout_s: float,
        llm_timeout_s: float,
        pull_timeout_s: float,
        llm_idle_timeout_s: float = 30.0,
        keep_alive: str,
        max_connections: int = 64,
        embed_concurrency: int = 4,
        embed_batch_max: int = 64,
        embed_stall_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.embed_timeout_s = embed_timeout_s
        self.llm_timeout_s = llm_timeout_s
        self.llm_idle_timeout_s = llm_idle_timeout_s
        self.pull_timeout_s = pull_timeout_s
        self.keep_alive = keep_alive
        self.max_connections = max_connections
        # Called after every call; the app points it at its metrics and telemetry.
        self.observer: CallObserver | None = None
        self._session: aiohttp.ClientSession | None = None
        self.embed_batcher = EmbedBatcher(
            self._embed_call, max_in_flight=embed_concurrency, max_batch=embed_batch_max, stall_s=embed_stall_s
        )

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp binds it to the running event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self.base_url,
                connector=aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=60),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s),
                trust_env=False,  # Ollama is local: no proxy from the environment sits between
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, operation: str, timeout_s: float, call: Callable[[], Awaitable[T]], model: str = "") -> T:
        started = time.perf_counter()
        result: T | None = None
        failure: BaseException | None = None
        try:
            async with self._translated_errors(operation, timeout_s), asyncio.timeout(timeout_s):
                result = await call()
            return result
        except BaseException as error:  # recorded and re-raised: an AppError, or a cancellation by the caller
            failure = error
            raise
        finally:
            if self.observer is not None:
                self.observer(operation, model, time.perf_counter() - started, failure, _tokens(result))

    @asynccontextmanager
    async def _translated_errors(self, operation: str, timeout_s: float) -> AsyncIterator[None]:
        try:
            yield
        except AppError:
            raise
        except TimeoutError:
            raise UpstreamTimeout(f"Ollama {operation} did not answer within {timeout_s:g}s") from None
        except (aiohttp.ClientConnectorError, ConnectionRefusedError):
            raise UpstreamUnavailable(f"Ollama is unreachable at {self.base_url} ({operation})") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnavailable(f"Ollama {operation} failed: {type(error).__name__}: {error}") from None
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as error:
            raise UpstreamError(f"Ollama {operation} sent a malformed reply: {type(error).__name__}") from None

    async def _request(self, operation: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request (a POST of `body` as JSON, or a GET without one) and its decoded JSON answer."""
        method, data = ("GET", None) if body is None else ("POST", orjson.dumps(body))
        async with self._http().request(method, path, data=data, headers=_JSON) as response:
            raw = await response.read()
            _raise_for_status(operation, response.status, raw)
        return orjson.loads(raw)

    @asynccontextmanager
    async def _stream(self, operation: str, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
        """A streamed request: its answer's JSON lines, decoded one by one."""
        async with self._http().post(path, data=orjson.dumps(body), headers=_JSON) as response:
            if response.status >= 400:
                _raise_for_status(operation, response.status, await response.read())

            async def lines() -> AsyncIterator[Any]:
                async for line in response.content:
                    if line.strip():
                        yield orjson.loads(line)

            yield lines()

    async def embed(self, model: str, texts: Sequence[str], *, dims: int) -> list[Embedding]:
        """The vectors for `texts`, checked for dimension; concurrent requests share batched /api/embed calls."""
        try:
            async with asyncio.timeout(self.embed_timeout_s):
                vectors = await self.embed_batcher.embed(model, texts)
        except TimeoutError:
            raise UpstreamTimeout(
                f"Ollama embed did not answer within {self.embed_timeout_s:g}s "
                f"({self.embed_batcher.waiting} requests waiting for a free call)"
            ) from None
        wrong = sorted({len(vector) for vector in vectors if len(vector) != dims})
        if wrong:
            raise EmbeddingDimensionMismatch(
                f"embedder {model} returned {wrong[0]}-dim vectors but MEM0_EMBEDDING_DIMS and the table are {dims}"
            )
        return vectors

    async def _embed_call(self, model: str, texts: list[str]) -> list[Embedding]:
        """One /api/embed call for every text (the batcher's unit of work)."""
        reply = await self._call("embed", self.embed_timeout_s, lambda: self._embed_request(model, texts), model)
        vectors = reply.vectors
        if len(vectors) != len(texts):
            raise UpstreamError(f"Ollama embed returned {len(vectors)} vectors for {len(texts)} inputs")
        return vectors

    async def _embed_request(self, model: str, texts: list[str]) -> EmbedReply:
        body = {"model": model, "input": texts, "keep_alive": self.keep_alive}
        answer = await self._request("embed", "/api/embed", body)
        rows = answer["embeddings"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise TypeError("embeddings is not a list of vectors")
        return EmbedReply([np.array(row, dtype=np.float32) for row in rows], _count(answer.get("prompt_eval_count")))

    async def probe_dims(self, model: str, text: str = "dimension probe", timeout_s: float | None = None) -> int:
        reply = await self._call(
            "embed", timeout_s or self.embed_timeout_s, lambda: self._embed_request(model, [text]), model
        )
        if not reply.vectors:
            raise UpstreamError(f"Ollama embed returned no vector for the probe text with {model}")
        return len(reply.vectors[0])

    async def version(self, timeout_s: float | None = None) -> str:
        async def fetch() -> str:
            answer = await self._request("version", "/api/version")
            return str(answer.get("version", "unknown")) if isinstance(answer, dict) else "unknown"

        return await self._call("version", timeout_s or self.embed_timeout_s, fetch)

    async def list_models(self) -> set[str]:
        async def fetch() -> set[str]:
            models = (await self._request("tags", "/api/tags")).get("models") or []
            names = (model.get("model") or model.get("name") for model in models if isinstance(model, dict))
            return {normalize_model_name(str(name)) for name in names if name}

        return await self._call("tags", self.embed_timeout_s, fetch)

    async def pull(self, model: str, on_progress: Callable[[str], None]) -> None:
        async def run() -> None:
            last_status = ""
            async with self._stream("pull", "/api/pull", {"model": model, "stream": True}) as progress_lines:
                async for progress in progress_lines:
                    if isinstance(progress, dict) and progress.get("error"):
                        raise UpstreamError(
                            f"Ollama pull of {model} failed: {str(progress['error'])[:MAX_ERROR_CHARS]}"
                        )
                    status = str(progress.get("status", "")) if isinstance(progress, dict) else ""
                    if status and status != last_status:
                        last_status = status
                        on_progress(f"pull {model}: {last_status}")

        await self._call("pull", self.pull_timeout_s, run)

    async def load_llm(self, model: str) -> None:
        """An empty-prompt generate loads the model into memory and keeps it there for keep_alive."""
        body = {"model": model, "prompt": "", "keep_alive": self.keep_alive, "stream": False}
        await self._call(
            "generate", self.llm_timeout_s, lambda: self._request("generate", "/api/generate", body), model
        )

    async def chat(self, **request: Any) -> ChatReply:
        """One chat call, streamed: a call that sends nothing for `llm_idle_timeout_s` (no first token, or none
        since the last) is cut then, not at the end of the whole call's `llm_timeout_s`."""

        async def streamed() -> ChatReply:
            body = {**request, "keep_alive": self.keep_alive, "stream": True}
            parts: list[str] = []
            last: dict[str, Any] | None = None
            loop = asyncio.get_running_loop()
            try:
                # One deadline for the answer's headers and first chunk, moved on by every chunk.
                async with asyncio.timeout(self.llm_idle_timeout_s) as idle:
                    async with self._stream("chat", "/api/chat", body) as chunks:
                        async for chunk in chunks:
                            idle.reschedule(loop.time() + self.llm_idle_timeout_s)
                            parts.append(_chat_content(chunk))
                            last = chunk
            except TimeoutError:
                raise UpstreamTimeout(f"Ollama chat sent nothing for {self.llm_idle_timeout_s:g}s") from None
            if last is None:
                raise UpstreamError("Ollama chat answered with an empty stream")
            return ChatReply("".join(parts), _count(last.get("prompt_eval_count")), _count(last.get("eval_count")))

        return await self._call("chat", self.llm_timeout_s, streamed, str(request.get("model", "")))


_JSON = {"Content-Type": "application/json"}


def _chat_content(chunk: Any) -> str:
    """One streamed chat chunk's text; an error chunk (Ollama failed mid-answer) fails the call."""
    if not isinstance(chunk, dict):
        raise TypeError("a chat chunk is not an object")
    if chunk.get("error"):
        raise UpstreamError(f"Ollama chat failed: {str(chunk['error'])[:MAX_ERROR_CHARS]}")
    message = chunk.get("message") or {}
    return str(message.get("content") or "") if isinstance(message, dict) else ""


def _raise_for_status(operation: str, status: int, raw: bytes) -> None:
    """Ollama's errors are `{"error": "..."}` with a 4xx or 5xx status."""
    if status < 400:
        return
    try:
        answer = orjson.loads(raw)
        message = str(answer.get("error", answer)) if isinstance(answer, dict) else str(answer)
    except orjson.JSONDecodeError:
        message = raw.decode(errors="replace")
    raise UpstreamError(f"Ollama {operation} answered HTTP {status}: {message[:MAX_ERROR_CHARS]}")


def build_ollama_client(settings: Settings) -> OllamaClient:
    return OllamaClient(
        settings.ollama_base_url,
        connect_timeout_s=settings.ollama_connect_timeout_s,
        embed_timeout_s=settings.embed_timeout_s,
        llm_timeout_s=settings.llm_timeout_s,
        llm_idle_timeout_s=settings.llm_idle_timeout_s,
        pull_timeout_s=settings.pull_timeout_s,
        keep_alive=settings.ollama_keep_alive,
        max_connections=settings.ollama_max_connections,
        embed_concurrency=settings.embed_concurrency,
        embed_batch_max=settings.embed_batch_max,
        embed_stall_s=settings.embed_stall_s,
    )
