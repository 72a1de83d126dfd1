import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  asRoot,
  deployedCheck,
  execScript,
  journalCommand,
  journalSince,
  logsScript,
  type ExecTarget,
} from "../../commands/operate";
import { exitCodeOf, formatSummary } from "../../operate/exec";
import { hostPrefix, LineWriter, redactLine } from "../../operate/lines";

/** Arguments a shell would love to interpret. */
const HOSTILE = [
  "it's",
  'say "hi"',
  "$HOME",
  "`id`",
  "a;b",
  "two\nlines",
  "ünï©ødé ✓",
  "",
  "-n",
  "--",
  "*",
  "\\",
  "%s",
];

describe("commands/operate.ts: the logs and exec command lines", () => {
  it("journalSince: durations become journalctl's relative form; its own forms pass; anything else is refused", () => {
    assert.equal(journalSince("10m"), "-10m");
    assert.equal(journalSince("2h"), "-2h");
    assert.equal(journalSince("1d"), "-1d");
    assert.equal(journalSince("30 min"), "-30min");
    for (const same of ["-10m", "+1h", "3 hours ago", "today", "yesterday", "now", "2026-12-01", "2026-12-01 10:00"])
      assert.equal(journalSince(same), same);
    for (const same of ["2026-12-01 10:00:05", "10:00", "@1700000000"]) assert.equal(journalSince(same), same);
    for (const bad of ["", "10", "10 parsecs", "soon", "today; rm -rf /", "$(id)", "-10", "10m ago; x", "1e3s"])
      assert.equal(journalSince(bad), undefined, bad);
  });

  it("journalCommand: a plain unit by name, a proxied one by its instances' pattern, quoted", () => {
    assert.equal(
      journalCommand({ unitName: "web", proxied: false, lines: 100, follow: false }),
      "journalctl -u web -n 100 --no-pager --no-hostname",
    );
    assert.equal(
      journalCommand({ unitName: "web", proxied: true, lines: 5, since: "3 hours ago", follow: true }),
      "journalctl -u 'web@*' -n 5 --since '3 hours ago' --no-pager --no-hostname -f",
    );
  });

  it("asRoot: root runs the script directly, anyone else through sudo -n; the script is one quoted argument", () => {
    assert.equal(asRoot("root", "echo 'x'"), `/bin/sh -c 'echo '\\''x'\\'''`);
    assert.equal(asRoot("deploy", "true"), "sudo -n /bin/sh -c true");
  });

  it("execScript: in current; root only opens the env file (fd 3), env -i finds runuser in root's PATH; the user's shell reads the env", () => {
    const t: ExecTarget = { root: "/srv/fleet", service: "web", unitName: "web", runAs: "app" };
    const inner = `'set -a; eval "$(cat <&3)"; set +a; exec 3<&-; exec "$@"'`;
    const clean = `command -p env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \${TERM+"TERM=$TERM"} \${LANG+"LANG=$LANG"}`;
    assert.equal(
      execScript(t, ["sh", "-c", "echo $HOME"]),
      [
        "cd /srv/fleet/web/current/ || exit 126",
        "ef=/srv/fleet/web/shared/env",
        `if [ -L "$ef" ]; then echo "exec: refusing to read the env file $ef: it is a symbolic link (fleet writes a regular file; redeploy to rewrite it)" >&2; exit 126; fi`,
        `[ -f "$ef" ] || ef=/dev/null`,
        `${clean} runuser -u app -- /bin/sh -c ${inner} sh sh -c 'echo $HOME' 3<"$ef"`,
      ].join("\n"),
    );
    // runAs root: no runuser, and still nothing of the env file in the outer shell.
    const rootScript = execScript({ ...t, runAs: "root" }, ["ls"]);
    assert.ok(rootScript.endsWith(`\n${clean} \${HOME+"HOME=$HOME"} /bin/sh -c ${inner} sh ls 3<"$ef"`), rootScript);
    assert.equal(deployedCheck(t), "test -d /srv/fleet/web/current/");
    assert.throws(() => execScript(t, []), /no command/);
  });

  it("execScript, run by a real sh: hostile arguments arrive byte-exact, with the env file's values", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-operate-"));
    fs.mkdirSync(path.join(root, "svc", "releases", "r1"), { recursive: true });
    fs.mkdirSync(path.join(root, "svc", "shared"));
    fs.symlinkSync(path.join(root, "svc", "releases", "r1"), path.join(root, "svc", "current"));
    // As commands/unit.ts renderEnvFile writes it (systemd double quotes).
    fs.writeFileSync(path.join(root, "svc", "shared", "env"), 'T_SECRET="s3 \\"cr\\$t\\`"\n', { mode: 0o600 });
    const t: ExecTarget = { root, service: "svc", unitName: "svc", runAs: "root" };
    const script = execScript(t, ["printf", "%s\\0", ...HOSTILE]);
    const r = spawnSync("/bin/sh", ["-c", script], { encoding: "buffer" });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString("utf8").split("\0").slice(0, -1), HOSTILE);
    const env = spawnSync("/bin/sh", ["-c", execScript(t, ["sh", "-c", 'printf "%s|%s" "$T_SECRET" "$(pwd -P)"'])]);
    assert.equal(env.stdout.toString(), `s3 "cr$t\`|${fs.realpathSync(path.join(root, "svc", "releases", "r1"))}`);
    const code = spawnSync("/bin/sh", ["-c", execScript(t, ["sh", "-c", "exit 7"])]);
    assert.equal(code.status, 7);
    // Behind the proxy there is no shared/env: the serving instance's env file holds the env.
    fs.mkdirSync(path.join(root, "svc", "shared", "instances"));
    fs.mkdirSync(path.join(root, "svc", "proxy"));
    fs.writeFileSync(path.join(root, "svc", "proxy", "serving"), "18001\n");
    fs.writeFileSync(path.join(root, "svc", "shared", "instances", "18001.env"), "T_SECRET=inst\nPORT=18001\n");
    const proxied = spawnSync("/bin/sh", [
      "-c",
      execScript({ ...t, proxied: true }, ["sh", "-c", 'echo "$T_SECRET $PORT"']),
    ]);
    assert.equal(proxied.stdout.toString(), "inst 18001\n");
  });

  it("execScript, run by a real sh: root's shell resolves nothing through the env file's PATH; the command does", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-operate-"));
    const venv = path.join(root, "svc", "releases", "r1", ".venv", "bin");
    fs.mkdirSync(venv, { recursive: true });
    fs.mkdirSync(path.join(root, "svc", "shared"));
    fs.symlinkSync(path.join(root, "svc", "releases", "r1"), path.join(root, "svc", "current"));
    const marks = path.join(root, "marks");
    fs.mkdirSync(marks);
    // What a hostile service user plants in its venv: every tool root's shell could look up.
    for (const tool of ["env", "runuser", "cat", "sh", "printf"])
      fs.writeFileSync(path.join(venv, tool), `#!/bin/sh\ntouch ${marks}/${tool}\nexit 99\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(venv, "svc-tool"), `#!/bin/sh\necho "tool $T_SECRET $FLEET_X"\n`, { mode: 0o755 });
    fs.writeFileSync(
      path.join(root, "svc", "shared", "env"),
      `FLEET_X="a b"\nPATH="${venv}:/usr/bin:/bin"\nT_SECRET="s3\\$"\n`,
      { mode: 0o600 },
    );
    const t: ExecTarget = { root, service: "svc", unitName: "svc", runAs: "root" };
    const r = spawnSync("/bin/sh", ["-c", execScript(t, ["svc-tool"])], { encoding: "utf8" });
    assert.equal(r.stdout, "tool s3$ a b\n", r.stderr);
    assert.equal(r.status, 0);
    assert.deepEqual(fs.readdirSync(marks), [], "no planted tool ran");
    // Run as root (CI containers, this sandbox), the same as another user: runuser is root's, not the venv's.
    if (process.getuid?.() === 0) {
      fs.chmodSync(root, 0o755);
      fs.chmodSync(marks, 0o777);
      fs.writeFileSync(path.join(venv, "svc-tool"), `#!/bin/sh\necho "$(id -un) $T_SECRET"\n`, { mode: 0o755 });
      const nobody = spawnSync("/bin/sh", ["-c", execScript({ ...t, runAs: "nobody" }, ["svc-tool"])], {
        encoding: "utf8",
      });
      assert.equal(nobody.stdout, "nobody s3$\n", nobody.stderr);
      assert.deepEqual(fs.readdirSync(marks), [], "no planted tool ran");
    }
    // A link in the env file's place is refused, naming it.
    fs.renameSync(path.join(root, "svc", "shared", "env"), path.join(root, "svc", "shared", "env.real"));
    fs.symlinkSync(path.join(root, "svc", "shared", "env.real"), path.join(root, "svc", "shared", "env"));
    const linked = spawnSync("/bin/sh", ["-c", execScript(t, ["svc-tool"])], { encoding: "utf8" });
    assert.equal(linked.status, 126);
    assert.match(linked.stderr, /refusing to read the env file .*\/svc\/shared\/env: it is a symbolic link/);
    assert.equal(linked.stdout, "");
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("logsScript -f: ending its input kills journalctl (no orphan), as the channel's EOF does on the host", async function () {
    this.timeout(20_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-journal-"));
    const pidFile = path.join(dir, "pid");
    // A stand-in journalctl that records its pid and never ends by itself, as `journalctl -f`.
    fs.writeFileSync(
      path.join(dir, "journalctl"),
      `#!/bin/sh\necho $$ > ${pidFile}\necho "args: $*"\nwhile :; do sleep 1; done\n`,
      { mode: 0o755 },
    );
    const script = logsScript({ unitName: "web", proxied: false, lines: 3, follow: true });
    const child = spawn("/bin/sh", ["-c", script], { env: { ...process.env, PATH: `${dir}:${process.env["PATH"]}` } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    while (!out.includes("\n")) await new Promise((r) => setTimeout(r, 50));
    assert.equal(out, "args: -u web -n 3 --no-pager --no-hostname -f\n");
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(alive(pid));
    const ended = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    child.stdin.end();
    assert.equal(await ended, 143, "journalctl killed by TERM");
    assert.ok(!alive(pid), "no journalctl left");
  });

  it("logsScript without -f is journalctl itself", () => {
    assert.equal(
      logsScript({ unitName: "web", proxied: false, lines: 1, follow: false }),
      journalCommand({ unitName: "web", proxied: false, lines: 1, follow: false }),
    );
  });
});

describe("operate/lines.ts: remote output as it is printed", () => {
  it("LineWriter: whole lines, prefixed, redacted even when a secret is split between chunks", () => {
    const got: string[] = [];
    const w = new LineWriter((b) => got.push(b.toString("utf8")), ["hunter2-secret"], "web1 | ");
    w.push(Buffer.from("a line\nthe pass is hunt"));
    w.push(Buffer.from("er2-secret ok\nlast"));
    assert.deepEqual(got, ["web1 | a line\n", "web1 | the pass is [secret] ok\n"]);
    w.flush();
    assert.deepEqual(got.slice(2), ["web1 | last\n"]);
    w.flush();
    assert.equal(got.length, 3);
  });

  it("LineWriter without a prefix keeps the bytes as they were, a last line without newline included", () => {
    const got: Buffer[] = [];
    const w = new LineWriter((b) => got.push(b), ["topsecret"]);
    const bytes = Buffer.concat([Buffer.from("ü\n"), Buffer.from([0xff, 0x00, 0x0a]), Buffer.from("x")]);
    w.push(bytes.subarray(0, 1));
    w.push(bytes.subarray(1));
    w.flush();
    assert.deepEqual(Buffer.concat(got), bytes);
  });

  it("redactLine: text lines with the JSON and URL forms; a line that is not UTF-8 byte by byte", () => {
    const s = "pa ss/wörd";
    assert.equal(redactLine(Buffer.from(`url=${encodeURIComponent(s)}\n`), [s]).toString(), "url=[secret]\n");
    const binary = Buffer.concat([Buffer.from([0xff]), Buffer.from(` ${s}\n`)]);
    assert.deepEqual(redactLine(binary, [s]), Buffer.concat([Buffer.from([0xff]), Buffer.from(" [secret]\n")]));
    const same = Buffer.from("nothing here\n");
    assert.equal(redactLine(same, []), same);
  });

  it("hostPrefix aligns the hosts' names", () => {
    assert.equal(hostPrefix("a", ["a", "web12"]), "a     | ");
    assert.equal(hostPrefix("web12", ["a", "web12"]), "web12 | ");
  });
});

describe("operate/exec.ts: exit codes and the --all-hosts summary", () => {
  it("exitCodeOf: the code, else 128 + the signal's number, else 255", () => {
    assert.equal(exitCodeOf({ code: 7 }), 7);
    assert.equal(exitCodeOf({ code: null, signal: "KILL" }), 137);
    assert.equal(exitCodeOf({ code: null }), 255);
  });

  it("formatSummary: one line per host, its exit code or why it did not run", () => {
    assert.equal(
      formatSummary([
        { host: "web1", code: 0 },
        { host: "web22", code: 3 },
        { host: "db", problem: "unreachable" },
      ]),
      "web1  → exit 0\nweb22 → exit 3\ndb    → not run: unreachable",
    );
  });
});
