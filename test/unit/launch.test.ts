import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { build, DIST_DIR, ENTRIES } from "../../build/bundle";
import { PROVIDER_SOURCES, shippedPayload, type ShippedProviderName } from "../../providers/ship";

const PROJECT_DIR = path.resolve(__dirname, "..", "..");
const launch = require("../../build/launch.js") as { fresh(): boolean };

/** build/launch.js and build/bundle.ts: fleet's commands start from bundles that are never stale. */
describe("the precompiled deploy path (build/)", function () {
  this.timeout(120_000);
  before(() => build());

  it("builds one bundle per command and the program, and is fresh right after", () => {
    for (const name of Object.keys(ENTRIES)) assert.ok(fs.existsSync(path.join(DIST_DIR, `${name}.js`)), name);
    assert.equal(launch.fresh(), true);
  });

  it("any change to a file a bundle was built from makes it stale (then the launcher rebuilds)", () => {
    const file = path.join(PROJECT_DIR, "decisions", "watchdog.ts");
    const st = fs.statSync(file);
    try {
      fs.utimesSync(file, st.atime, new Date(st.mtimeMs + 2000));
      assert.equal(launch.fresh(), false, "an edited source is stale");
    } finally {
      fs.utimesSync(file, st.atime, st.mtime);
    }
    // (utimes keeps whole milliseconds only, so the restored file may differ from the manifest.)
    build();
    assert.equal(launch.fresh(), true, "fresh again once rebuilt");
  });

  it("the program bundle carries every provider packed exactly as an unbundled run packs it", () => {
    const program = fs.readFileSync(path.join(DIST_DIR, "program.js"), "utf8");
    for (const name of Object.keys(PROVIDER_SOURCES) as ShippedProviderName[]) {
      // Same packed text, so the same __provider: switching between tsx and the bundle changes no state.
      assert.ok(program.includes(JSON.stringify(shippedPayload(name).packed)), name);
    }
    assert.doesNotMatch(program, /require\("esbuild"\)\.buildSync|tsx\/cjs/, "no bundling at deploy time");
  });

  it("a command runs from its bundle on plain node: `npm run pulumi -- version` starts no tsx", () => {
    const out = execFileSync(process.execPath, [path.join(PROJECT_DIR, "build", "launch.js"), "pulumi", "version"], {
      cwd: PROJECT_DIR,
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    assert.match(out, /^v3\.\d+\.\d+/);
  });

  it("an unknown command is refused with the list of commands", () => {
    assert.throws(
      () =>
        execFileSync(process.execPath, [path.join(PROJECT_DIR, "build", "launch.js"), "deplo"], {
          stdio: ["ignore", "pipe", "pipe"],
        }),
      (err: { status: number; stderr: Buffer }) =>
        err.status === 2 && /usage: node build\/launch\.js <pulumi\|deploy\|rollback/.test(err.stderr.toString()),
    );
  });
});
