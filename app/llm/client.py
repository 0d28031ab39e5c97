"""A shared async Ollama client with explicit deadlines; maps every failure to an API error."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import ollama
import pydantic

from app.config import Settings
from app.errors import (
    AppError,
    EmbeddingDimensionMismatch,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.llm.batcher import EmbedBatcher

logger = logging.getLogger(__name__)
T = TypeVar("T")
# (operation, model, seconds, the exception that ended the call or None on success,
#  tokens Ollama reported: prompt plus generated, None if it gave none)
CallObserver = Callable[[str, str, float, BaseException | None, int | None], None]


def _tokens(response: object) -> int | None:
    counts = [getattr(response, name, None) for name in ("prompt_eval_count", "eval_count")]
    known = [count for count in counts if isinstance(count, int)]
    return sum(known) if known else None


def normalize_model_name(name: str) -> str:
    """Ollama treats a name without a tag as `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaClient:
    """Wraps `ollama.AsyncClient`: one keep-alive connection pool, a deadline on every call."""

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
        self.base_url = base_url
        self.embed_timeout_s = embed_timeout_s
        self.llm_timeout_s = llm_timeout_s
        self.llm_idle_timeout_s = llm_idle_timeout_s
        self.pull_timeout_s = pull_timeout_s
        self.keep_alive = keep_alive
        # Called after every call; the app points it at its metrics and telemetry.
        self.observer: CallObserver | None = None
        self._client = ollama.AsyncClient(
            host=base_url,
            timeout=httpx.Timeout(
                connect=connect_timeout_s, read=None, write=connect_timeout_s, pool=connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.embed_batcher = EmbedBatcher(
            self._embed_call, max_in_flight=embed_concurrency, max_batch=embed_batch_max, stall_s=embed_stall_s
        )

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]

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
        except ollama.ResponseError as error:
            raise UpstreamError(f"Ollama {operation} answered HTTP {error.status_code}: {error.error}") from None
        except (ConnectionError, httpx.ConnectError):
            raise UpstreamUnavailable(f"Ollama is unreachable at {self.base_url} ({operation})") from None
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"Ollama {operation} timed out at {self.base_url}") from None
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(f"Ollama {operation} failed: {type(error).__name__}: {error}") from None
        except (json.JSONDecodeError, pydantic.ValidationError, ValueError, TypeError) as error:
            raise UpstreamError(f"Ollama {operation} sent a malformed reply: {type(error).__name__}") from None

    async def embed(self, model: str, texts: Sequence[str], *, dims: int) -> list[list[float]]:
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

    async def _embed_call(self, model: str, texts: list[str]) -> list[list[float]]:
        """One /api/embed call for every text (the batcher's unit of work)."""
        response = await self._call(
            "embed",
            self.embed_timeout_s,
            lambda: self._client.embed(model=model, input=texts, keep_alive=self.keep_alive),
            model,
        )
        vectors = [list(vector) for vector in response.embeddings]
        if len(vectors) != len(texts):
            raise UpstreamError(f"Ollama embed returned {len(vectors)} vectors for {len(texts)} inputs")
        return vectors

    async def probe_dims(self, model: str, text: str = "dimension probe", timeout_s: float | None = None) -> int:
        response = await self._call(
            "embed",
            timeout_s or self.embed_timeout_s,
            lambda: self._client.embed(model=model, input=[text], keep_alive=self.keep_alive),
            model,
        )
        if not response.embeddings:
            raise UpstreamError(f"Ollama embed returned no vector for the probe text with {model}")
        return len(response.embeddings[0])

    async def version(self, timeout_s: float | None = None) -> str:
        async def fetch() -> str:
            response = await self._client._client.get("/api/version")  # the client has no version() call
            response.raise_for_status()
            return str(response.json().get("version", "unknown"))

        return await self._call("version", timeout_s or self.embed_timeout_s, fetch)

    async def list_models(self) -> set[str]:
        response = await self._call("tags", self.embed_timeout_s, self._client.list)
        return {normalize_model_name(str(model.model)) for model in response.models if model.model}

    async def pull(self, model: str, on_progress: Callable[[str], None]) -> None:
        async def run() -> None:
            last_status = ""
            async for progress in await self._client.pull(model, stream=True):
                if progress.status != last_status:
                    last_status = str(progress.status)
                    on_progress(f"pull {model}: {last_status}")

        await self._call("pull", self.pull_timeout_s, run)

    async def load_llm(self, model: str) -> None:
        """An empty-prompt generate loads the model into memory and keeps it there for keep_alive."""
        await self._call(
            "generate",
            self.llm_timeout_s,
            lambda: self._client.generate(model=model, prompt="", keep_alive=self.keep_alive),
            model,
        )

    async def chat(self, **request: Any) -> ollama.ChatResponse:
        """One chat call, streamed: a call that sends nothing for `llm_idle_timeout_s` (no first token, or none
        since the last) is cut then, not at the end of the whole call's `llm_timeout_s`."""

        async def streamed() -> ollama.ChatResponse:
            chunks = aiter(await self._client.chat(keep_alive=self.keep_alive, stream=True, **request))
            parts: list[str] = []
            last: ollama.ChatResponse | None = None
            while True:
                try:
                    async with asyncio.timeout(self.llm_idle_timeout_s):
                        last = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UpstreamTimeout(f"Ollama chat sent nothing for {self.llm_idle_timeout_s:g}s") from None
                parts.append(last.message.content or "")
            if last is None:
                raise UpstreamError("Ollama chat answered with an empty stream")
            last.message.content = "".join(parts)
            return last

        return await self._call("chat", self.llm_timeout_s, streamed, str(request.get("model", "")))


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
