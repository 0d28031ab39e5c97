"""mem0ai's Python `MemoryClient` as its users call it, pointed at this server with `host=`: add (inferred, the
client's default), list, search, delete one, delete the scope. Run by the interpreter of the mem0ai version under
test; env: MEM0_HOST, MEM0_API_KEY, USER_ID. Prints what each call answered (steps.py)."""

from __future__ import annotations

from mem0 import MemoryClient
from steps import Steps, setting, wait_until

FACTS = ["I like green tea", "I live in Lisbon"]


def main() -> None:
    user = setting("USER_ID")
    steps = Steps()
    client = steps.run("construct", lambda: MemoryClient(api_key=setting("MEM0_API_KEY"), host=setting("MEM0_HOST")))
    if client is None:
        steps.report()
        return

    def memories() -> dict:
        return client.get_all(filters={"user_id": user})

    steps.run("add", lambda: client.add(". ".join(FACTS) + ".", user_id=user))
    # Older clients add in async mode (mem0's default there): the facts are stored after the answer.
    listed = steps.run("list", lambda: wait_until(memories, lambda page: len(page["results"]) >= len(FACTS)))
    steps.run("search", lambda: client.search("green tea", filters={"user_id": user}))
    steps.run("delete", lambda: client.delete(next(m["id"] for m in listed["results"] if m["memory"] == FACTS[0])))
    steps.run("list_after_delete", memories)
    steps.run("delete_all", lambda: client.delete_all(user_id=user))
    steps.run("list_after_delete_all", memories)
    steps.report()


if __name__ == "__main__":
    main()
