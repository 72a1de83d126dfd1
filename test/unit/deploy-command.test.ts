import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EXIT_CODES, outcomeMarker, outcomeOf } from "../../decisions/outcome";

const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

/** A fake `pulumi` that records its calls and answers `up` with the given output and status. */
function workspace(checks: { name: string; run: string }[], upOutput: string, upStatus: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-deploy-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(dir, "up-output.txt"), upOutput);
  fs.writeFileSync(
    path.join(bin, "pulumi"),
    `#!/bin/sh\necho "$@" >> "${dir}/calls"\ncase "$1" in\n  config) exit 1;;\n  up) cat "${dir}/up-output.txt"; exit ${upStatus};;\n  *) echo previewed; exit 0;;\nesac\n`,
    { mode: 0o755 },
  );
  const stack = {
    config: {
      "fleet:hosts": { h: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k" } },
      "fleet:checks": checks,
    },
  };
  fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), JSON.stringify(stack));
  const run = () =>
    spawnSync(TSX, [path.join(ROOT, "scripts", "deploy.ts"), "--stack", "t"], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` },
    });
  const calls = () => (fs.existsSync(path.join(dir, "calls")) ? fs.readFileSync(path.join(dir, "calls"), "utf8") : "");
  return { run, calls };
}

describe("npm run deploy: checks, then preview and up, with an exit code per outcome", function () {
  this.timeout(60_000);

  it("outcomeOf: the worst fleet marker decides; no marker is a failed deploy", () => {
    assert.deepEqual(outcomeOf(0, "anything"), { kind: "ok", code: 0 });
    assert.equal(
      outcomeOf(1, `x\n${outcomeMarker("rollback")}\ny\n${outcomeMarker("critical")}`).code,
      EXIT_CODES.critical,
    );
    assert.equal(outcomeOf(1, outcomeMarker("build")).code, 2);
    assert.equal(outcomeOf(1, outcomeMarker("config")).code, 6);
    assert.equal(outcomeOf(255, "error: engine failed").code, EXIT_CODES.failure);
  });

  it("a failing pre-deploy check blocks the deploy: exit 1, Pulumi never runs", () => {
    const w = workspace([{ name: "unit tests", run: "echo testing; exit 7" }], "", 0);
    const r = w.run();
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /check "unit tests" failed \(exit 7\); nothing was deployed/);
    assert.doesNotMatch(w.calls(), /preview|up/);
  });

  it("passing checks, then preview and up; a rollback reported by fleet exits 4", () => {
    const w = workspace(
      [{ name: "ok", run: "true" }],
      `error: release x failed its health gate\n${outcomeMarker("rollback")}\n`,
      255,
    );
    const r = w.run();
    assert.equal(r.status, 4, r.stderr);
    assert.match(w.calls(), /^config .*\npreview --stack t --diff .*\nup --stack t --yes --skip-preview/m);
  });

  it("success exits 0; an unmarked failure exits 3", () => {
    assert.equal(workspace([], "done", 0).run().status, 0);
    assert.equal(workspace([], "error: something", 1).run().status, 3);
  });
});
