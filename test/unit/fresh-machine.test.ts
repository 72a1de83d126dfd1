import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NO_SERVERS_ENV, loadInventory } from "../support/fleet";

const ROOT = path.resolve(__dirname, "..", "..");
const MOCHA = path.join(ROOT, "node_modules", "mocha", "bin", "mocha.js");

interface MochaConfig {
  readonly require: string[];
  readonly spec: string[];
}

const config = (name: string): MochaConfig =>
  JSON.parse(fs.readFileSync(path.join(ROOT, "test", name), "utf8")) as MochaConfig;

/** The files a config's specs name; each is "test/<dir>/**\/*.test.ts". */
function specFiles(specs: readonly string[]): string[] {
  return specs.flatMap((spec) => {
    const m = /^(.+)\/\*\*\/\*\.test\.ts$/.exec(spec);
    assert.ok(m, `spec ${spec} is "<dir>/**/*.test.ts"`);
    const dir = m[1]!;
    return fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => path.join(dir, f));
  });
}

describe("the test suite on a fresh machine (no test servers yet, no inventory)", function () {
  this.timeout(120_000);

  it("mocha loads every test file and lists its tests with an empty FLEET_DIR (--dry-run), and the root hook starts no server", () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-fresh-"));
    try {
      const fleetDir = path.join(scratch, "fleet");
      const tmp = path.join(scratch, "tmp"); // describe bodies make temporary repositories: keep them here
      fs.mkdirSync(fleetDir);
      fs.mkdirSync(tmp);
      const report = path.join(scratch, "dry-run.json");
      const env: NodeJS.ProcessEnv = { ...process.env, FLEET_DIR: fleetDir, TMPDIR: tmp };
      delete env[NO_SERVERS_ENV];
      delete env["NODE_OPTIONS"];
      const args = ["--config", "test/.mocharc.all.json", "--dry-run", "--reporter", "json"];
      const r = spawnSync(process.execPath, [MOCHA, ...args, "--reporter-option", `output=${report}`], {
        cwd: ROOT,
        env,
        encoding: "utf8",
        timeout: 110_000,
      });
      assert.equal(r.status, 0, `mocha ${args.join(" ")} failed while loading the files:\n${r.stderr}${r.stdout}`);
      const { tests } = JSON.parse(fs.readFileSync(report, "utf8")) as { tests: { file: string }[] };
      const listed = new Set(tests.map((t) => path.relative(ROOT, t.file)));
      const files = specFiles(config(".mocharc.all.json").spec);
      assert.ok(files.length > 30, `found the test files (${files.length})`);
      assert.deepEqual(
        files.filter((f) => !listed.has(f)),
        [],
        "every test file is loaded and lists its tests",
      );
      assert.deepEqual(fs.readdirSync(fleetDir), [], "the root hook ran nothing (it would have made runs/)");
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("test:unit has no servers: it never reads an inventory, even where an earlier run left one", () => {
    assert.ok(
      config(".mocharc.unit.json").require.includes("test/hooks/no-servers.ts"),
      "test/.mocharc.unit.json loads test/hooks/no-servers.ts",
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-inv-"));
    const saved = process.env[NO_SERVERS_ENV];
    try {
      fs.writeFileSync(
        path.join(dir, "fleet.json"),
        JSON.stringify({
          ssh_key: "/k",
          known_hosts: "/kh",
          ssh_config: "/c",
          hosts: [{ name: "web1", address: "127.0.0.11", port: 22, role: "node", container: "c" }],
        }),
      );
      process.env[NO_SERVERS_ENV] = "1";
      assert.throws(() => loadInventory(dir), /no test servers .*fixed fake SshConnection/);
      delete process.env[NO_SERVERS_ENV];
      assert.equal(loadInventory(dir).hosts[0]!.address, "127.0.0.11", "with servers, the same file is read");
    } finally {
      if (saved === undefined) delete process.env[NO_SERVERS_ENV];
      else process.env[NO_SERVERS_ENV] = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
