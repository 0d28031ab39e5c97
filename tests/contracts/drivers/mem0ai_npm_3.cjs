// mem0ai's TypeScript `MemoryClient` 3.x as its README calls it, pointed at this server with `host`: add
// (inferred, the default), list, search, delete one, delete the user's memories.
// Env: NODE_MODULES, MEM0_HOST, MEM0_API_KEY, USER_ID, REPORT_PATH (steps.cjs).
"use strict";

const { Steps, waitUntil, pinned, setting } = require("./steps.cjs");

const FACTS = ["I like green tea", "I live in Lisbon"];

async function main() {
  const { MemoryClient } = pinned("mem0ai");
  const user = setting("USER_ID");
  const steps = new Steps();
  const client = new MemoryClient({ apiKey: setting("MEM0_API_KEY"), host: setting("MEM0_HOST") });
  const memories = () => client.getAll({ filters: { user_id: user } });

  await steps.run("ping", () => client.ping());
  await steps.run("add", () => client.add([{ role: "user", content: `${FACTS.join(". ")}.` }], { userId: user }));
  const listed = await steps.run("list", () => waitUntil(memories, (page) => page.results.length >= FACTS.length));
  await steps.run("search", () => client.search("green tea", { filters: { user_id: user } }));
  await steps.run("delete", () => client.delete(listed.results.find((m) => m.memory === FACTS[0]).id));
  await steps.run("list_after_delete", memories);
  await steps.run("delete_all", () => client.deleteAll({ userId: user }));
  await steps.run("list_after_delete_all", memories);
  steps.report();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
