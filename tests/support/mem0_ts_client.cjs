// Drives the npm `mem0ai` MemoryClient against this server and prints what each call returned as one JSON object.
// Env: MEM0AI_DIR (where `npm install mem0ai@<pinned>` put node_modules), MEM0_HOST, MEM0_API_KEY, USER_ID,
// OTHER_USER_ID. tests/integration/test_mem0_clients.py runs it and checks the answers against the REST API.
"use strict";

const path = require("node:path");
const { MemoryClient } = require(path.join(process.env.MEM0AI_DIR, "node_modules", "mem0ai"));

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { name: error.name, message: String(error.message) };
  }
}

async function main() {
  const user = process.env.USER_ID;
  const other = process.env.OTHER_USER_ID;
  const client = new MemoryClient({ apiKey: process.env.MEM0_API_KEY, host: process.env.MEM0_HOST });
  const out = {};
  await client.ping();
  out.ping = "ok";
  out.added = await client.add(
    [
      { role: "user", content: "I like green tea" },
      { role: "user", content: "I live in Lisbon" },
    ],
    { filters: { user_id: user }, infer: false },
  );
  out.inferred = await client.add("I like jazz. I work as a nurse.", { filters: { user_id: user } });
  const [first, second] = out.added.results.map((item) => item.id);
  out.got = await client.get(first);
  out.page1 = await client.getAll({ filters: { user_id: user }, page: 1, pageSize: 3 });
  out.page2 = await client.getAll({ filters: { user_id: user }, page: 2, pageSize: 3 });
  out.found = await client.search("green tea", { filters: { user_id: user }, topK: 2, threshold: 0 });
  out.updated = await client.update(first, { text: "I like black tea" });
  out.history = await client.history(first);
  out.batchUpdated = await client.batchUpdate([{ memoryId: second, text: "I live in Porto" }]);
  out.afterBatch = await client.get(second);
  out.batchDeleted = await client.batchDelete([second]);
  out.deleted = await client.delete(first);
  out.missing = await failure(client.get(first));
  await client.add("I keep bees", { filters: { user_id: other }, infer: false });
  out.users = await client.users();
  out.deletedUsers = await client.deleteUsers({ userId: other });
  await client.add("I grow leeks", { filters: { user_id: other }, infer: false });
  out.deletedAll = await client.deleteAll({ userId: other });
  out.feedback = await failure(client.feedback({ memoryId: first, feedback: "POSITIVE" }));
  out.final = await client.getAll({ filters: { user_id: user } });
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
