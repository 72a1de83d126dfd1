// @ts-check
/**
 * `node build/launch.js <command> [args]`: how package.json starts fleet's commands (pulumi,
 * deploy, rollback, status, drift, restore, logs, exec, reboot, dashboard). Plain JavaScript, so it starts on bare node: it runs
 * dist/<command>.js, the bundle build/bundle.ts makes, after checking that every file the bundle
 * was built from is unchanged (dist/manifest.json: size and mtime). A changed or missing input
 * rebuilds first (tsx loads the build, once), so an edited source is never run stale.
 * `node build/launch.js --build` builds (npm ci's prepare step).
 */
"use strict";
require("./lazy-typescript");
const fs = require("fs");
const path = require("path");

const PROJECT_DIR = path.resolve(__dirname, "..");
const DIST_DIR = path.join(PROJECT_DIR, "dist");
const COMMANDS = ["pulumi", "deploy", "rollback", "status", "drift", "restore", "logs", "exec", "reboot", "dashboard"];

/** Whether dist/ was built from the files as they are now. */
function fresh() {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(DIST_DIR, "manifest.json"), "utf8"));
  } catch {
    return false;
  }
  for (const [file, [size, mtimeMs]] of Object.entries(manifest.inputs)) {
    let st;
    try {
      st = fs.statSync(path.join(PROJECT_DIR, file));
    } catch {
      return false;
    }
    if (st.size !== size || st.mtimeMs !== mtimeMs) return false;
  }
  return true;
}

function build() {
  require("tsx/cjs/api").register();
  require(path.join(PROJECT_DIR, "build", "bundle.ts")).build();
}

function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === "--build") {
    build();
    return;
  }
  if (!command || !COMMANDS.includes(command)) {
    console.error(`usage: node build/launch.js <${COMMANDS.join("|")}> [args]`);
    process.exitCode = 2;
    return;
  }
  if (!fresh()) build();
  const entry = path.join(DIST_DIR, `${command}.js`);
  // The bundle's own argv, as if node had run it directly (scripts read process.argv.slice(2)).
  process.argv = [process.argv[0] ?? "node", entry, ...args];
  /** @type {Record<string, unknown>} */ (globalThis)["fleetEntry"] = entry;
  require(entry);
}

if (require.main === module) main();
module.exports = { fresh, DIST_DIR };
