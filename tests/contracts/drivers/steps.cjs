// What every JavaScript driver shares (the Python drivers' steps.py, for node): run an integration's calls in
// order, record each one's answer or error by name, write them as one JSON object to REPORT_PATH.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const WAIT_MS = 30000; // an inferred write's job, or an add the server queued, lands well within this

class Steps {
  constructor() {
    this.answers = {};
  }

  async run(name, call) {
    try {
      const value = await call();
      this.answers[name] = { value: value === undefined ? null : value };
      return value;
    } catch (error) {
      // mem0ai's errors name the server's status and message; fetch-based integrations put the status in the message.
      this.answers[name] = { error: `${error.name}: ${error.message}` };
      return undefined;
    }
  }

  report() {
    fs.writeFileSync(process.env.REPORT_PATH, JSON.stringify(this.answers));
  }
}

// `read()` again until `done` holds for what it answers (the last answer either way after WAIT_MS).
async function waitUntil(read, done) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// A package from the integration's pinned install (tests/contracts/installs.py), never from the repository.
function pinned(name) {
  return require(path.join(process.env.NODE_MODULES, name));
}

function setting(name) {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

module.exports = { Steps, waitUntil, pinned, setting };
