"""hermes-agent's mem0 memory provider, loaded by Hermes' own plugin loader and configured as its README says for
a self-hosted server (MEM0_HOST, MEM0_API_KEY, MEM0_USER_ID): the calls Hermes' agent loop makes. Its tools store
a fact (mem0_add, infer false), search, update and delete by id; after each turn `sync_turn` sends the exchange for
extraction (infer true, in a background thread) and `prefetch` recalls memories for the next question. It has no
list. Env: MEM0_HOST, MEM0_API_KEY, MEM0_USER_ID, REPORT_PATH (steps.py)."""

from __future__ import annotations

import json

from plugins.memory import load_memory_provider
from steps import Steps, wait_until


def main() -> None:
    steps = Steps()
    provider = load_memory_provider("mem0")
    provider.initialize("contract-session")

    def tool(name: str, **args: str) -> dict:
        return json.loads(provider.handle_tool_call(name, args))

    def search(query: str) -> dict:
        return tool("mem0_search", query=query)

    def found(answer: dict, text: str) -> bool:
        return any(item["memory"] == text for item in answer.get("results", []))

    steps.run("add", lambda: tool("mem0_add", content="I like green tea"))
    steps.run("sync_turn", lambda: provider.sync_turn("I live in Lisbon.", "Noted: you live in Lisbon."))
    steps.run("search", lambda: wait_until(lambda: search("Lisbon"), lambda a: found(a, "I live in Lisbon")))
    steps.run("prefetch", lambda: provider.prefetch("Where do I live?"))
    tea = steps.run("search_tea", lambda: search("green tea"))
    tea_id = next((item["id"] for item in (tea or {}).get("results", []) if item["memory"] == "I like green tea"), "")
    steps.run("update", lambda: tool("mem0_update", memory_id=tea_id, text="I like black tea"))
    steps.run("search_after_update", lambda: search("black tea"))
    steps.run("delete", lambda: tool("mem0_delete", memory_id=tea_id))
    steps.run("search_after_delete", lambda: search("black tea"))
    provider.shutdown()
    steps.report()


if __name__ == "__main__":
    main()
