// @mem0/vercel-ai-provider's memory functions, which its language model calls around every generation, with the
// `mem0Config` a user gives it (`host`, `user_id`, and `metadata` when METADATA is set): addMemories (inferred),
// then getMemories (the memories the model would be given), retrieveMemories (the system prompt made of them) and
// searchMemories (the raw answer; it swallows errors). It has no list or delete.
// Env: NODE_MODULES, MEM0_HOST, MEM0_API_KEY, USER_ID, METADATA (JSON, optional), REPORT_PATH (steps.cjs).
"use strict";

const { Steps, waitUntil, pinned, setting } = require("./steps.cjs");

async function main() {
  const provider = pinned("@mem0/vercel-ai-provider");
  const steps = new Steps();
  const config = { mem0ApiKey: setting("MEM0_API_KEY"), host: setting("MEM0_HOST"), user_id: setting("USER_ID") };
  const metadata = process.env.METADATA ? JSON.parse(process.env.METADATA) : undefined;
  const tagged = { ...config, ...(metadata && { metadata }) };

  await steps.run("add", () => provider.addMemories("I like green tea.", tagged));
  // Written without the metadata: a search filtered by it leaves this one out, an unfiltered one finds both.
  await steps.run("add_untagged", () => provider.addMemories("I like black tea.", config));
  await steps.run("get", () =>
    waitUntil(
      () => provider.getMemories("tea", tagged),
      (memories) => memories.length > 0,
    ),
  );
  await steps.run("retrieve", () => provider.retrieveMemories("tea", tagged));
  await steps.run("search", () => provider.searchMemories("tea", tagged));
  steps.report();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
