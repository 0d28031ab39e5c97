"""mem0's official clients, pinned, against a real server over real HTTP: the Python `MemoryClient` and
`AsyncMemoryClient` (mem0ai on PyPI) and the TypeScript `MemoryClient` (mem0ai on npm, run with node). Each call
returns what the client documents and the same data the REST API shows."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mem0.client.main import AsyncMemoryClient, MemoryClient
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from tests.support.keys import mint_key
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess

NPM_MEM0AI = "mem0ai@3.3.1"
NPM_DIR = Path("/tmp/mem0-fixed-npm") / NPM_MEM0AI.replace("@", "-")
TS_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "mem0_ts_client.cjs"


def _user() -> str:
    return f"client-{uuid.uuid4().hex[:10]}"


def _rest(api: Any, user: str) -> list[dict[str, Any]]:
    return api.get("/memories", params={"user_id": user}).json()["results"]


@pytest.fixture(params=["MemoryClient", "AsyncMemoryClient"])
def client_and_call(request, server: ServerProcess) -> Iterator[tuple[Any, Callable[[Any], Any]]]:
    """One client of each kind and `call`, which awaits an async client's results on one loop (its httpx client
    is bound to the loop it first ran on)."""
    loop = asyncio.new_event_loop()

    def call(result: Any) -> Any:
        return loop.run_until_complete(result) if inspect.isawaitable(result) else result

    kind = MemoryClient if request.param == "MemoryClient" else AsyncMemoryClient
    client = kind(api_key=TEST_ADMIN_KEY, host=server.url)  # the constructor pings /v1/ping/
    try:
        yield client, call
    finally:
        if isinstance(client, AsyncMemoryClient):
            call(client.async_client.aclose())
        else:
            client.client.close()
        loop.close()


def test_every_documented_call_returns_what_the_rest_api_shows(client_and_call, api):
    client, call = client_and_call
    user, other = _user(), _user()

    added = call(
        client.add(
            [{"role": "user", "content": t} for t in ("I like tea", "I live in Oslo")], user_id=user, infer=False
        )
    )
    first, second = (item["id"] for item in added["results"])
    assert [(r["memory"], r["event"]) for r in added["results"]] == [("I like tea", "ADD"), ("I live in Oslo", "ADD")]
    inferred = call(client.add("I like jazz. I work as a nurse.", user_id=user))
    assert sorted(r["memory"] for r in inferred["results"]) == ["I like jazz", "I work as a nurse"]
    rest = _rest(api, user)
    assert len(rest) == 4

    assert call(client.get(first)) == api.get(f"/memories/{first}").json()
    everything = call(client.get_all(filters={"user_id": user}))
    assert everything["count"] == 4 and everything["results"] == rest
    page1 = call(client.get_all(filters={"AND": [{"user_id": user}]}, page=1, page_size=3))
    page2 = call(client.get_all(filters={"user_id": user}, page=2, page_size=3))
    assert page1["count"] == 4 and page1["next"] and page2["previous"] and page2["next"] is None
    assert page1["results"] + page2["results"] == rest

    found = call(client.search("tea", filters={"user_id": user}, top_k=2, threshold=0.0))
    assert (
        found["results"]
        == api.post("/search", json={"query": "tea", "user_id": user, "top_k": 2, "threshold": 0.0}).json()["results"]
    )
    assert found["results"][0]["memory"] == "I like tea" and found["results"][0]["score"] > 0

    updated = call(client.update(first, text="I like coffee"))
    assert updated["memory"] == "I like coffee" == api.get(f"/memories/{first}").json()["memory"]
    history = call(client.history(first))
    assert [(h["event"], h["new_memory"]) for h in history] == [("ADD", "I like tea"), ("UPDATE", "I like coffee")]
    assert history == api.get(f"/memories/{first}/history").json()

    assert call(client.batch_update([{"memory_id": second, "text": "I live in Bergen"}]))["message"].startswith(
        "Successfully updated 1"
    )
    assert api.get(f"/memories/{second}").json()["memory"] == "I live in Bergen"
    assert call(client.batch_delete([{"memory_id": second}]))["message"].startswith("Successfully deleted 1")
    assert api.get(f"/memories/{second}").status_code == 404

    assert "deleted" in call(client.delete(first))["message"]
    with pytest.raises(MemoryNotFoundError) as missing:
        call(client.get(first))
    assert "no memory with id" in str(missing.value)  # read from the error body's `detail`

    call(client.add("I keep bees", user_id=other, infer=False))
    users = call(client.users())
    assert {"type": "user", "name": other, "total_memories": 1}.items() <= next(
        e for e in users["results"] if e["name"] == other
    ).items()
    assert users == api.get("/entities").json()
    assert call(client.delete_users(user_id=other)) == {"message": "Entity deleted successfully."}
    assert _rest(api, other) == []

    call(client.add("I grow leeks", user_id=other, infer=False))
    assert "deleted" in call(client.delete_all(user_id=other))["message"]
    assert _rest(api, other) == []
    with pytest.raises(ValidationError):
        call(client.delete_all())  # no scope: refused (422), never "delete everything"
    assert [m["memory"] for m in _rest(api, user)] != []


def test_a_wrong_key_fails_construction_with_the_servers_reason(server):
    with pytest.raises(ValueError, match="unknown or revoked"):
        MemoryClient(api_key="m0fk_000000000000_not-a-real-key-at-all", host=server.url)


def test_a_key_limited_to_one_user_sees_only_that_user_through_the_client(server, module_db, api):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    for user, text in ((alice, "Alice keeps goats"), (bob, "Bob keeps bees")):
        body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False}
        assert api.post("/memories", json=body).status_code == 200
    bobs = _rest(api, bob)[0]["id"]
    limited = MemoryClient(
        api_key=mint_key(module_db, "--name", "alice-client", "--user-id", "alice-*"), host=server.url
    )

    assert [m["memory"] for m in limited.get_all(filters={"user_id": alice})["results"]] == ["Alice keeps goats"]
    assert limited.get_all(filters={"user_id": bob}) == {"count": 0, "next": None, "previous": None, "results": []}
    assert limited.search("bees", filters={"user_id": bob})["results"] == []
    with pytest.raises(MemoryNotFoundError):
        limited.get(bobs)
    with pytest.raises(MemoryNotFoundError):
        limited.batch_delete([{"memory_id": bobs}])
    assert {e["name"] for e in limited.users()["results"]} == {alice}
    with pytest.raises(AuthenticationError):  # 403: deleting another user
        limited.delete_users(user_id=bob)
    with pytest.raises(AuthenticationError):  # 403: writing for another user
        limited.add("Bob likes jazz", user_id=bob, infer=False)
    limited.client.close()

    assert [m["id"] for m in _rest(api, bob)] == [bobs]


def _npm_mem0ai() -> Path:
    """The pinned npm client, installed once into /tmp (never committed); skips with the reason if npm cannot."""
    if (NPM_DIR / "node_modules" / "mem0ai" / "package.json").exists():
        return NPM_DIR
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed to run the mem0ai TypeScript client")
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(NPM_DIR), NPM_MEM0AI, "--no-audit", "--no-fund", "--ignore-scripts"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"npm could not install {NPM_MEM0AI}: {result.stderr.strip()[-500:]}")
    return NPM_DIR


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def test_the_typescript_client_works_against_the_server(server, api, tmp_path):
    mem0ai = _npm_mem0ai()
    user, other = _user(), _user()
    env = {
        **os.environ,
        "MEM0AI_DIR": str(mem0ai),
        "MEM0_HOST": server.url,
        "MEM0_API_KEY": TEST_ADMIN_KEY,
        "USER_ID": user,
        "OTHER_USER_ID": other,
        "MEM0_TELEMETRY": "false",  # the npm client's PostHog events
        "HOME": str(tmp_path),  # where it keeps its identity file
    }
    run = subprocess.run(
        [shutil.which("node") or "node", str(TS_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    first = out["added"]["results"][0]["id"]
    assert [r["memory"] for r in out["added"]["results"]] == ["I like green tea", "I live in Lisbon"]
    assert sorted(r["memory"] for r in out["inferred"]["results"]) == ["I like jazz", "I work as a nurse"]
    assert out["got"]["id"] == first and out["got"]["memory"] == "I like green tea"
    assert out["page1"]["count"] == 4 and len(out["page1"]["results"]) == 3 and len(out["page2"]["results"]) == 1
    # threshold 0 (sent by the script): the count does not depend on the default threshold's cut.
    assert out["found"]["results"][0]["memory"] == "I like green tea" and len(out["found"]["results"]) == 2
    assert out["updated"]["memory"] == "I like black tea"
    assert [h["event"] for h in out["history"]] == ["ADD", "UPDATE"]
    assert out["batchUpdated"]["message"].startswith("Successfully updated 1")
    assert out["afterBatch"]["memory"] == "I live in Porto"
    assert out["batchDeleted"]["message"].startswith("Successfully deleted 1")
    assert "deleted" in out["deleted"]["message"]
    assert out["missing"]["name"] == "MemoryNotFoundError" and "no memory with id" in out["missing"]["message"]
    assert any(e["name"] == other and e["totalMemories"] == 1 for e in out["users"]["results"])
    assert out["deletedUsers"] == {"message": "Entity deleted successfully."}
    assert "deleted" in out["deletedAll"]["message"]
    assert "not supported" in out["feedback"]["message"]
    assert _rest(api, other) == []
    # What the client reads last is what the REST API shows (the client camel-cases keys).
    rest = _rest(api, user)
    assert [(m["id"], m["memory"]) for m in out["final"]["results"]] == [(m["id"], m["memory"]) for m in rest]
    assert {_camel(k) for k in rest[0]} <= set(out["final"]["results"][0]) | {
        _camel(k) for k, v in rest[0].items() if v is None
    }
