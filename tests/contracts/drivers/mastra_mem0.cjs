// @mastra/mem0's `Mem0Integration` as Mastra's docs configure it (`apiKey`, `userId`), with `host` pointing it at
// this server: createMemory (inferred, mem0ai 2.x's add), then searchMemory, both answering the memory string
// Mastra puts in an agent's prompt. It has no list or delete. Env: NODE_MODULES, MEM0_HOST, MEM0_API_KEY, USER_ID,
// REPORT_PATH (steps.cjs).
"use strict";

const { Steps, waitUntil, pinned, setting } = require("./steps.cjs");

const FACTS = ["I like green tea", "I live in Lisbon"];

async function main() {
  const { Mem0Integration } = pinned("@mastra/mem0");
  const steps = new Steps();
  const mem0 = new Mem0Integration({
    config: { apiKey: setting("MEM0_API_KEY"), host: setting("MEM0_HOST"), userId: setting("USER_ID") },
  });
  const search = () => mem0.searchMemory("green tea");

  // A string becomes one user message per line.
  await steps.run("create", () => mem0.createMemory(FACTS.join("\n")));
  await steps.run("search", () => waitUntil(search, (memories) => memories.includes(FACTS[0])));
  steps.report();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
