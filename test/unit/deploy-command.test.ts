import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EXIT_CODES, outcomeOf } from "../../decisions/outcome";
import { outcomeMarker } from "../../model/errors";

const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

/**
 * A fake `pulumi` that records its calls and answers `up` with the given output and status;
 * `config` fails (so the script reads Pulumi.t.yaml, with `extraConfig` in it) unless `cliConfig`
 * gives what `pulumi config --json` prints.
 */
function workspace(
  checks: { name: string; run: string }[],
  upOutput: string,
  upStatus: number,
  { cliConfig, extraConfig = {} }: { cliConfig?: unknown; extraConfig?: Record<string, unknown> } = {},
) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-deploy-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(dir, "up-output.txt"), upOutput);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cliConfig ?? {}));
  const config = cliConfig === undefined ? "exit 1" : `cat "${dir}/config.json"; exit 0`;
  fs.writeFileSync(
    path.join(bin, "pulumi"),
    `#!/bin/sh\necho "$@" >> "${dir}/calls"\ncase "$1" in\n  config) ${config};;\n  up) cat "${dir}/up-output.txt"; exit ${upStatus};;\n  *) echo previewed; exit 0;;\nesac\n`,
    { mode: 0o755 },
  );
  const hosts = { h: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k" } };
  const stack = { config: { "fleet:hosts": hosts, "fleet:checks": checks, ...extraConfig } };
  fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), JSON.stringify(stack));
  const run = (args: string[] = ["--stack", "t"]) =>
    spawnSync(TSX, [path.join(ROOT, "scripts", "deploy.ts"), ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, FLEET_PULUMI_BIN_DIR: bin },
    });
  const calls = () => (fs.existsSync(path.join(dir, "calls")) ? fs.readFileSync(path.join(dir, "calls"), "utf8") : "");
  return { run, calls, dir };
}

describe("npm run deploy: checks, then pulumi up (preview, then update), with an exit code per outcome", function () {
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

  it("passing checks, then one pulumi up; a rollback reported by fleet exits 4", () => {
    const w = workspace(
      [{ name: "ok", run: "true" }],
      `error: release x failed its health gate\n${outcomeMarker("rollback")}\n`,
      255,
    );
    const r = w.run();
    assert.equal(r.status, 4, r.stderr);
    // One CLI run: `up` previews with the diff, then applies (no separate `pulumi preview`).
    assert.match(w.calls(), /^config .*\nup --stack t --yes --diff --non-interactive\b/m);
    assert.doesNotMatch(w.calls(), /^preview/m);
  });

  it("success exits 0; an unmarked failure exits 3", () => {
    assert.equal(workspace([], "done", 0).run().status, 0);
    assert.equal(workspace([], "error: something", 1).run().status, 3);
  });

  it("config from the CLI: a secret or any non-JSON string is a string, not a crash (Pulumi keeps strings)", () => {
    const hosts = { h: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k" } };
    const checks = [{ name: "ok", run: "true" }];
    const w = workspace([], "done", 0, {
      cliConfig: {
        "fleet:hosts": { value: JSON.stringify(hosts), objectValue: hosts, secret: false },
        "fleet:checks": { value: JSON.stringify(checks), objectValue: checks, secret: false },
        "hcloud:token": { value: "abc", secret: true },
        "aws:region": { value: "eu central one", secret: false },
      },
    });
    const r = w.run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /check "ok": true/);
    assert.match(w.calls(), /^up --stack t/m);
  });

  it("a secret only the CLI can decrypt, in the stack file: exit 6 naming it and what to do; Pulumi never runs", () => {
    const w = workspace([{ name: "ok", run: "true" }], "done", 0, {
      extraConfig: { "hcloud:token": { secure: "v1:AAAA:abcd" } },
    });
    const r = w.run();
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /deploy: hcloud:token is a secret, and only its ciphertext is in .*Pulumi\.t\.yaml/);
    assert.match(r.stderr, /set PULUMI_CONFIG_PASSPHRASE .* Nothing was deployed\./);
    assert.doesNotMatch(w.calls(), /preview|up/);
  });

  it("an unknown flag or a missing --stack value: exit 6 naming it, pointing at --help; nothing runs", () => {
    const w = workspace([{ name: "never", run: "touch ran" }], "done", 0);
    for (const [args, message] of [
      [["--stack", "t", "--bogus"], /^deploy: unknown option --bogus \(see npm run deploy -- --help\)$/m],
      [["--stack"], /^deploy: --stack needs a value: -s, --stack <name>/m],
    ] as const) {
      const r = w.run([...args]);
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.equal(w.calls(), "");
    assert.ok(!fs.existsSync(path.join(w.dir, "ran")));
  });

  it("--cwd names the project folder: the stack file, the checks and pulumi run there", () => {
    const w = workspace([{ name: "where", run: "pwd > where.txt" }], "done", 0);
    const r = spawnSync(TSX, [path.join(ROOT, "scripts", "deploy.ts"), "-s", "t", "--cwd", w.dir], {
      cwd: os.tmpdir(),
      encoding: "utf8",
      env: {
        ...process.env,
        PATH: `${path.join(w.dir, "bin")}:${process.env["PATH"]}`,
        FLEET_PULUMI_BIN_DIR: path.join(w.dir, "bin"),
      },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(w.dir, "where.txt"), "utf8").trim(), fs.realpathSync(w.dir));
  });
});
