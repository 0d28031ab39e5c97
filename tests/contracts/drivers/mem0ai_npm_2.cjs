// mem0ai's TypeScript `MemoryClient` 2.x (what @mastra/mem0 bundles) as its README calls it, pointed at this
// server with `host`: add (inferred, the default), list and search on both API versions it offers (v1 by default,
// `api_version: "v2"` with filters), delete one, delete the user's memories.
// Env: NODE_MODULES, MEM0_HOST, MEM0_API_KEY, USER_ID, REPORT_PATH (steps.cjs).
"use strict";

const { Steps, waitUntil, pinned, setting } = require("./steps.cjs");

const FACTS = ["I like green tea", "I live in Lisbon"];

async function main() {
  const { MemoryClient } = pinned("mem0ai");
  const user = setting("USER_ID");
  const steps = new Steps();
  const client = new MemoryClient({ apiKey: setting("MEM0_API_KEY"), host: setting("MEM0_HOST") });
  const memories = () => client.getAll({ user_id: user });
  const stored = (answer) => (Array.isArray(answer) ? answer : answer.results);

  await steps.run("ping", () => client.ping());
  await steps.run("add", () => client.add([{ role: "user", content: `${FACTS.join(". ")}.` }], { user_id: user }));
  const listed = await steps.run("list", () =>
    waitUntil(memories, (answer) => stored(answer).length >= FACTS.length),
  );
  await steps.run("list_v2", () => client.getAll({ filters: { AND: [{ user_id: user }] }, api_version: "v2" }));
  await steps.run("search", () => client.search("green tea", { user_id: user }));
  await steps.run("search_v2", () =>
    client.search("green tea", { filters: { AND: [{ user_id: user }] }, api_version: "v2" }),
  );
  await steps.run("delete", () => client.delete(stored(listed).find((m) => m.memory === FACTS[0]).id));
  await steps.run("list_after_delete", memories);
  await steps.run("delete_all", () => client.deleteAll({ user_id: user }));
  await steps.run("list_after_delete_all", memories);
  steps.report();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
