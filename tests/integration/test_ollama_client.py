"""The server's own Ollama client (app/llm/client.py, aiohttp) and Ollama's official Python client read the same
answers from the stand-in alike: the official client vouches for the stand-in speaking Ollama's API, and the
server's client is checked against both."""

from __future__ import annotations

import numpy as np
import ollama
import pytest

from app.errors import UpstreamError, UpstreamUnavailable
from app.llm.client import OllamaClient
from tests.conftest import DIMS
from tests.support.server_process import free_port

EMBEDDER = "nomic-embed-text:latest"
LLM = "mistral:7b-instruct-q5_K_M"


def client_for(url: str) -> OllamaClient:
    return OllamaClient(
        url, connect_timeout_s=2, embed_timeout_s=5, llm_timeout_s=10, pull_timeout_s=10, keep_alive="5m"
    )


async def test_embeddings_are_float32_arrays_equal_to_the_official_clients(standin):
    official = ollama.AsyncClient(host=standin.url)
    ours = client_for(standin.url)
    try:
        texts = ["I keep bees", "my sister plays the cello"]
        expected = (await official.embed(model=EMBEDDER, input=texts)).embeddings
        vectors = await ours.embed(EMBEDDER, texts, dims=DIMS)
    finally:
        await ours.close()
    assert [vector.dtype for vector in vectors] == [np.float32, np.float32]
    assert [vector.shape for vector in vectors] == [(DIMS,), (DIMS,)]
    for vector, reference in zip(vectors, expected, strict=True):
        np.testing.assert_allclose(vector, np.asarray(reference, dtype=np.float32))


async def test_a_streamed_chat_reads_as_the_official_client_reads_it(standin):
    messages = [{"role": "user", "content": "Extract facts: I moved to Lyon."}]
    official = ollama.AsyncClient(host=standin.url)
    parts = [chunk async for chunk in await official.chat(model=LLM, messages=messages, stream=True)]
    ours = client_for(standin.url)
    try:
        reply = await ours.chat(model=LLM, messages=messages)
        models = await ours.list_models()
        version = await ours.version()
    finally:
        await ours.close()
    assert reply.content == "".join(part.message.content or "" for part in parts)
    assert reply.prompt_eval_count == parts[-1].prompt_eval_count
    assert models == {model.model for model in (await official.list()).models}
    assert version != "unknown"


async def test_ollamas_error_answers_and_a_closed_port_are_api_errors(standin):
    ours = client_for(standin.url)
    try:
        with pytest.raises(UpstreamError, match="Ollama embed answered HTTP 404"):
            await ours.embed("no-such-model:latest", ["x"], dims=DIMS)
    finally:
        await ours.close()
    closed = client_for(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            await closed.version()
    finally:
        await closed.close()
