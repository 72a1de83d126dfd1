import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const SCRIPTS = fs
  .readdirSync(path.join(ROOT, "scripts"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.replace(/\.ts$/, ""));

/**
 * A project folder whose `pulumi` fails as it does without the passphrase, so the scripts read
 * Pulumi.t.yaml, where secrets are ciphertext.
 */
function project(config: Record<string, unknown>): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-scripts-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, "pulumi"),
    `#!/bin/sh\necho "$@" >> "${dir}/calls"\necho "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE" >&2\nexit 255\n`,
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), JSON.stringify({ config }));
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, FLEET_PULUMI_BIN_DIR: bin } };
}

function run(
  script: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [path.join(ROOT, "scripts", `${script}.ts`), ...args], {
      cwd: opts.cwd ?? os.tmpdir(),
      env: opts.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

describe("operator scripts: one command line for all (scripts/*.ts)", function () {
  this.timeout(60_000);

  it("every script answers --help with its usage, the common flags and its exit codes, and runs nothing", async () => {
    assert.deepEqual(SCRIPTS.sort(), [
      "dashboard",
      "deploy",
      "drift",
      "exec",
      "logs",
      "reboot",
      "restore",
      "rollback",
      "status",
    ]);
    const { dir, env } = project({});
    for (const script of SCRIPTS) {
      const r = await run(script, ["--help"], { cwd: dir, env });
      assert.equal(r.status, 0, `${script}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^npm run ${script}: `), script);
      for (const part of ["usage:", "-s, --stack <name>", "-C, --cwd <dir>", "-h, --help", "exit codes:", "6 invalid"])
        assert.ok(r.stdout.includes(part), `${script} --help has ${part}:\n${r.stdout}`);
    }
    assert.ok(!fs.existsSync(path.join(dir, "calls")), "no script ran pulumi for --help");
  });

  it("every script refuses an unknown flag with exit 6, naming it and pointing at --help", async () => {
    for (const script of SCRIPTS) {
      const r = await run(script, ["--stak", "prod"]);
      assert.equal(r.status, 6, `${script}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`^${script}: unknown option --stak \\(see npm run ${script} -- --help\\)$`, "m"),
      );
    }
  });

  it("status: a host whose key is a secret it cannot read says so (and what to do); other secrets are not in the way", async () => {
    const { dir, env } = project({
      "fleet:hosts": { pi: { address: "127.0.0.1", port: 1, hostKey: HOST_KEY } },
      "fleet:privateKeys": { pi: { secure: "v1:AAAA:abcd" } },
      "fleet:notify": [{ kind: "webhook", url: { secure: "v1:BBBB:efgh" } }],
      "fleet:secretEnv": { api: { TOKEN: { secure: "v1:CCCC:ijkl" } } },
      "fleet:services": {
        api: { host: "pi", source: { path: "." }, start: "true", health: { url: "http://127.0.0.1:1/h" } },
      },
      "hcloud:token": "not json at all",
    });
    const r = await run("status", ["--stack", "t", "--cwd", dir], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^api\s+pi\s+.*not read: its key fleet:privateKeys\.pi is a secret \(see above\)$/m);
    assert.match(
      r.stderr,
      /^status: pi: fleet:privateKeys\.pi is a secret, and only its ciphertext is in .*Pulumi\.t\.yaml/m,
    );
    assert.match(r.stderr, /passphrase must be set/);
    assert.match(r.stderr, /or give hosts\.pi\.privateKeyFile instead\./);
  });

  /** A service on two hosts whose keys are only ciphertext: anything that tried to connect would fail otherwise. */
  function twoHosts() {
    return project({
      "fleet:hosts": {
        a: { address: "127.0.0.1", port: 1, hostKey: HOST_KEY },
        b: { address: "127.0.0.1", port: 2, hostKey: HOST_KEY },
        c: { address: "127.0.0.1", port: 3, hostKey: HOST_KEY },
      },
      "fleet:privateKeys": {
        a: { secure: "v1:AAAA:abcd" },
        b: { secure: "v1:AAAA:abcd" },
        c: { secure: "v1:AAAA:abcd" },
      },
      "fleet:services": {
        api: { hosts: ["a", "b"], source: { path: "." }, start: "true", health: { url: "http://127.0.0.1:1/h" } },
      },
    });
  }

  it("logs: usage errors exit 6 before anything connects, each naming its flag or the known names", async () => {
    const { dir, env } = twoHosts();
    const cases: [string[], RegExp][] = [
      [[], /^logs: name the service: npm run logs -- <service> \(see npm run logs -- --help\)$/m],
      [["api", "-n", "ten"], /^logs: -n\/--lines takes a count of lines, not "ten"/m],
      [["api", "-n", "-5"], /^logs: -n needs a value/m],
      [["api", "--since", "10 parsecs"], /^logs: --since takes a duration .* not "10 parsecs"/m],
      [["api", "--since", "yesterday; rm -rf /"], /^logs: --since takes a duration/m],
      [["api", "extra"], /^logs: unexpected argument "extra"/m],
      [["nope"], /unknown service "nope": the stack's services are api/],
      [["api", "--host", "zz"], /unknown host "zz": the stack's hosts are a, b, c/],
      [["api", "--host", "c"], /service "api" does not run on host "c": it runs on a, b/],
    ];
    for (const [argv, expected] of cases) {
      const r = await run("logs", [...argv, "--stack", "t", "-C", dir], { env });
      assert.equal(r.status, 6, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, expected, argv.join(" "));
      assert.equal(r.stdout, "", argv.join(" "));
    }
  });

  it("exec: usage errors exit 6 before anything connects; --help after -- belongs to the remote command", async () => {
    const { dir, env } = twoHosts();
    const cases: [string[], RegExp][] = [
      [[], /^exec: name the service/m],
      [["api"], /^exec: give the command after --: npm run exec -- <service> -- <command…>/m],
      [["api", "ls"], /^exec: unexpected argument "ls"/m],
      [["api", "--host", "a", "--all-hosts", "--", "ls"], /^exec: --host and --all-hosts exclude each other/m],
      [
        ["api", "--", "ls"],
        /service "api" runs on a, b: exec runs on one host\nName one with --host <h>, or run it on each in turn with --all-hosts\./,
      ],
      [["nope", "--", "ls"], /unknown service "nope": the stack's services are api/],
      [["api", "--host", "zz", "--", "ls"], /unknown host "zz": the stack's hosts are a, b, c/],
      [["api", "--host", "c", "--", "ls"], /service "api" does not run on host "c": it runs on a, b/],
      // Past the usage checks, the first thing it needs is host a's key: only ciphertext here.
      [["api", "--host", "a", "--", "--help"], /host "a": fleet:privateKeys\.a is a secret/],
    ];
    for (const [argv, expected] of cases) {
      const r = await run("exec", ["--stack", "t", "-C", dir, ...argv], { env });
      assert.equal(r.status, 6, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, expected, argv.join(" "));
      assert.equal(r.stdout, "", argv.join(" "));
    }
  });

  it("deploy: an unknown --hosts or --services name exits 6 naming the known ones, before checks or pulumi up run", async () => {
    // pulumi up needs every secret: here the keys are files, so the names are what is judged.
    const host = (port: number) => ({ address: "127.0.0.1", port, hostKey: HOST_KEY, privateKeyFile: "/nonexistent" });
    const marker = path.join(os.tmpdir(), `fleet-deploy-checked-${process.pid}`);
    const { dir, env } = project({
      "fleet:hosts": { a: host(1), b: host(2), c: host(3) },
      "fleet:services": {
        api: { hosts: ["a", "b"], source: { path: "." }, start: "true", health: { url: "http://127.0.0.1:1/h" } },
      },
      "fleet:checks": [{ name: "marker", run: `touch ${marker}` }],
    });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: fleet\nruntime: nodejs\n");
    const cases: [string[], RegExp][] = [
      [["--hosts", "zz"], /unknown host "zz": the stack's hosts are a, b, c/],
      [["--services", "nope"], /unknown service "nope": the stack's services are api/],
      [["--hosts", "a", "--services", "nope"], /unknown service "nope"/],
      [["--hosts", "c", "--services", "api"], /service "api" runs on a, b: none of --hosts c/],
      [["--hosts", ","], /--hosts names no host/],
    ];
    for (const [argv, expected] of cases) {
      const r = await run("deploy", [...argv, "--stack", "t", "-C", dir], { env });
      assert.equal(r.status, 6, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, expected, argv.join(" "));
    }
    assert.ok(!fs.existsSync(marker), "no check ran");
    const calls = fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
    assert.ok(
      calls.every((c) => c.startsWith("config")),
      `pulumi only read the config:\n${calls.join("\n")}`,
    );
  });

  it("restore: --stack is the stack's name (its host is read from Pulumi.<stack>.yaml in --cwd)", async () => {
    const { dir, env } = project({
      "fleet:hosts": { db: { address: "127.0.0.1", port: 1, hostKey: HOST_KEY, privateKeyFile: "/nonexistent/key" } },
    });
    fs.writeFileSync(
      path.join(dir, "restore.yaml"),
      "host: db\nname: appdb\nengine: sqlite\nsqlite: { path: /x.db }\n",
    );
    const r = await run("restore", ["--list", "--config", "restore.yaml", "--stack", "t", "-C", dir], { env });
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /hosts\.db\.privateKeyFile: cannot read \/nonexistent\/key/);
    const other = await run("restore", ["--list", "--config", "restore.yaml", "--stack", "prod", "-C", dir], { env });
    assert.match(other.stderr, /no .*Pulumi\.prod\.yaml/);
    const usage = await run("restore", ["--list"], { cwd: dir, env });
    assert.equal(usage.status, 6);
    assert.match(usage.stderr, /^restore: --config <file> is required \(see npm run restore -- --help\)$/m);
  });
});
