"""llama-index-memory-mem0's `Mem0Memory` over mem0ai's `MemoryClient(host=...)`, as a chat engine uses it: `put` a
user message (added to mem0, inferred), then `get` the chat history for the next question, whose system message
holds the memories mem0 found for it; `search` as the memory exposes it. It has no list or delete.

The client is built here and handed over: `Mem0Memory.from_client` passes `org_id` and `project_id` to
`MemoryClient`, which no mem0ai 2.x (all it allows) takes, so it raises a TypeError before any request.
Env: MEM0_HOST, MEM0_API_KEY, USER_ID, REPORT_PATH (steps.py)."""

from __future__ import annotations

from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from llama_index.memory.mem0 import Mem0Memory
from mem0 import MemoryClient
from steps import Steps, setting, wait_until


def main() -> None:
    user = setting("USER_ID")
    steps = Steps()
    memory = steps.run(
        "construct",
        lambda: Mem0Memory(
            primary_memory=Memory.from_defaults(),
            context={"user_id": user},
            client=MemoryClient(api_key=setting("MEM0_API_KEY"), host=setting("MEM0_HOST")),
        ),
    )
    if memory is None:
        steps.report()
        return

    def search() -> dict:
        return memory.search("green tea", filters={"user_id": user})

    steps.run("put", lambda: memory.put(ChatMessage(role="user", content="I like green tea.")))
    steps.run("search", lambda: wait_until(search, lambda answer: len(answer["results"]) > 0))
    steps.run("get", lambda: [message.content for message in memory.get(input="What do I drink?")])
    steps.report()


if __name__ == "__main__":
    main()
