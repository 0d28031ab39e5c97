"""Runs the real app in the test process: `create_app` and its lifespan on an event loop in a thread, reached through
`httpx.ASGITransport`. The in-process twin of ServerProcess: same settings (given as environment variables), same
Postgres and Ollama, minus uvicorn, the process and the egress guard (an audit hook cannot be removed from a process).

The app gets a loop of its own, as it has in a server, so its background tasks (job workers, telemetry flusher, key
purger) keep running between requests and while a test sleeps; both sync and async clients forward to that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import shutil
import tempfile
import threading
from typing import Any

import httpx
import requests
import uvloop
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from requests.adapters import HTTPAdapter
from urllib3 import HTTPHeaderDict, HTTPResponse

from app.config import Settings
from app.main import create_app
from tests.support.server_process import TEST_ADMIN_KEY

# A Host the server answers to by default (MEM0_ALLOWED_HOSTS); no socket is opened for it.
BASE_URL = "http://localhost"
INPROCESS_THREAD = "mem0-inprocess"  # the name of the thread running an app

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


class SettingsFromValues(Settings):
    """Settings from the given values only: the test process's own environment and `.env` stay out, as
    `clean_environment` keeps them out of a server process. Values are keyed by variable name, as in `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class InProcessServer:
    """One app on its own loop thread; `env` holds the variables a ServerProcess would get."""

    def __init__(self, env: dict[str, str]) -> None:
        self._data_dir = None if "MEM0_DATA_DIR" in env else tempfile.mkdtemp(prefix="mem0-inprocess-")
        values = {"MEM0_DATA_DIR": self._data_dir, **env} if self._data_dir else env
        self.settings = SettingsFromValues(**values)
        self.app = create_app(self.settings)
        self.url = BASE_URL
        self._asgi = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)  # a 500 answer, as uvicorn gives
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ran: concurrent.futures.Future[None] = concurrent.futures.Future()

    def start(self, timeout_s: float = 60.0) -> InProcessServer:
        """Runs the lifespan's startup; raises what it raised (a StartupError names the cause)."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name=INPROCESS_THREAD, daemon=True)
        self._thread.start()
        try:
            started.result(timeout=timeout_s)
        except BaseException:
            self._shut_down(timeout_s)
            raise
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Runs the lifespan's shutdown and joins the thread; raises what the shutdown raised."""
        self._shut_down(timeout_s)
        if self._thread is not None and self._thread.is_alive():
            raise TimeoutError(f"the in-process app did not shut down within {timeout_s:g}s")
        if self._ran.done():
            self._ran.result()

    def _shut_down(self, timeout_s: float) -> None:
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None and self._ran.running():
            loop.call_soon_threadsafe(stop_requested.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def client(self, **kwargs: Any) -> httpx.Client:
        transport = _SyncForwarder(self)
        headers = {"X-API-Key": TEST_ADMIN_KEY, **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", 30.0)
        return httpx.Client(base_url=self.url, transport=transport, timeout=timeout, headers=headers, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        transport = _AsyncForwarder(self)
        headers = {"X-API-Key": TEST_ADMIN_KEY, **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", 30.0)
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=timeout, headers=headers, **kwargs)

    def requests_session(self) -> requests.Session:
        """A `requests` session whose requests to BASE_URL reach this app, for clients built on requests
        (schemathesis); it sends only the headers it is given: no key unless the caller adds one."""
        session = requests.Session()
        session.mount(self.url, _RequestsForwarder(self))
        return session

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, request: httpx.Request, body: bytes) -> concurrent.futures.Future[Reply]:
        """Hands one request to the app's loop; the reply is read whole there, so no stream crosses threads."""
        if self._loop is None or self._loop.is_closed() or not self._ran.running():
            raise httpx.ConnectError("the in-process app is not running", request=request)
        return asyncio.run_coroutine_threadsafe(self._respond(request, body), self._loop)

    async def _respond(self, request: httpx.Request, body: bytes) -> Reply:
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._asgi.handle_async_request(inner)
        content = await response.aread()
        return response.status_code, response.headers.raw, content

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        self._ran.set_running_or_notify_cancel()
        try:
            # uvloop, as uvicorn picks it in a server.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(self._serve(started))
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            self._ran.set_exception(error)
        else:
            self._ran.set_result(None)

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        async with self.app.router.lifespan_context(self.app):
            started.set_result(None)
            await self._stop_requested.wait()


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: float | None = request.extensions.get("timeout", {}).get("read")
    return timeout


class _SyncForwarder(httpx.BaseTransport):
    def __init__(self, server: InProcessServer) -> None:
        self._server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        future = self._server.submit(request, request.read())
        try:
            status, headers, content = future.result(timeout=_read_timeout(request))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise httpx.ReadTimeout("the in-process app did not answer in time", request=request) from None
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


class _AsyncForwarder(httpx.AsyncBaseTransport):
    def __init__(self, server: InProcessServer) -> None:
        self._server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        future = self._server.submit(request, await request.aread())
        try:
            status, headers, content = await asyncio.wait_for(asyncio.wrap_future(future), _read_timeout(request))
        except TimeoutError:
            raise httpx.ReadTimeout("the in-process app did not answer in time", request=request) from None
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


class _RequestsForwarder(HTTPAdapter):
    """A requests transport adapter that hands each request to the app, and its reply back as requests reads one."""

    def __init__(self, server: InProcessServer) -> None:
        super().__init__()
        self._client = httpx.Client(base_url=server.url, transport=_SyncForwarder(server), timeout=30.0)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.method is not None and request.url is not None
        headers = {**request.headers}
        reply = self._client.request(request.method, request.url, headers=headers, content=request.body)
        raw = HTTPResponse(
            body=io.BytesIO(reply.content),
            headers=HTTPHeaderDict(reply.headers.multi_items()),
            status=reply.status_code,
            reason=reply.reason_phrase,
            version=11,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)

    def close(self) -> None:
        self._client.close()
        super().close()
