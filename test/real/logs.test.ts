import { strict as assert } from "assert";
import * as crypto from "crypto";
import { connectionFor, sh, sshRun } from "../support/fleet";
import {
  deploy,
  hostConfig,
  project,
  runScript,
  SERVICE_ROOT,
  start,
  type Deployed,
  type Project,
} from "./operate-project";

const SERVICE = "op-logs";
const PORT = 18950;
const HOSTS = ["web1", "web2"];
/** Where a test leaves a line for the service to log (the unit's shell prints and removes it). */
const SAY = `/tmp/${SERVICE}-say`;

/** journalctl for this service still running on `host` (the bracket keeps pgrep from matching its own shell). */
async function journalctlsOn(host: string): Promise<string> {
  const r = await sshRun(host, `pgrep -af '[j]ournalctl -u ${SERVICE}' || true`);
  return r.stdout.trim();
}

describe("npm run logs (real servers)", function () {
  this.timeout(300_000);
  const secret = `tok-${crypto.randomBytes(12).toString("hex")}`;
  let deployed: Deployed | undefined;
  let p: Project;

  before(async () => {
    // The start logs the secret into the journal on purpose, then whatever a test leaves in SAY.
    const startCommand =
      `echo "starting with token $T_TOKEN"; ` +
      `(while sleep 0.3; do if [ -f ${SAY} ]; then cat ${SAY}; rm -f ${SAY}; fi; done) & exec python3 app.py`;
    deployed = await deploy(SERVICE, HOSTS, PORT, startCommand, secret);
    p = project({
      "fleet:hosts": {
        web1: hostConfig("web1"),
        web2: hostConfig("web2", "deploy"),
        gone: {
          address: "127.0.0.99",
          privateKeyFile: hostConfig("web1")["privateKeyFile"],
          hostKey: connectionFor("web1").hostKey,
          connectTimeout: "1s",
        },
      },
      "fleet:secretEnv": { [SERVICE]: { T_TOKEN: secret } },
      "fleet:services": {
        [SERVICE]: {
          hosts: ["web1", "web2", "gone"],
          root: SERVICE_ROOT,
          source: { path: "." },
          start: "python3 app.py",
          health: { url: `http://127.0.0.1:${PORT}/api/health` },
        },
      },
    });
  });

  after(async () => {
    for (const h of HOSTS) await sshRun(h, `rm -f ${SAY}`).catch(() => undefined);
    await deployed?.destroy();
  });

  it("prints each host's lines with its prefix, the secret redacted; an unreachable host is one line and exit 1", async () => {
    const r = await runScript("logs", [SERVICE, "-n", "50", "--stack", "t"], p);
    const out = r.stdout.toString("utf8");
    assert.equal(r.status, 1, r.stderr);
    for (const h of HOSTS) assert.match(out, new RegExp(`^${h} +\\| .*starting with token \\[secret\\]$`, "m"), out);
    assert.ok(!out.includes(secret) && !r.stderr.includes(secret), "the secret is never printed");
    const gone = r.stderr.split("\n").filter((l) => l.includes("gone"));
    assert.equal(gone.length, 1, r.stderr);
    assert.match(gone[0]!, /^logs: gone: cannot read its journal: .*127\.0\.0\.99/);
    for (const line of out.trimEnd().split("\n")) assert.match(line, /^(web1|web2) \| /);
  });

  it("--host narrows to one host; -n bounds the lines; --since takes a duration", async () => {
    const r = await runScript("logs", [SERVICE, "--host", "web2", "-n", "3", "--since", "1h", "--stack", "t"], p);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.toString("utf8").trimEnd().split("\n");
    assert.ok(lines.length >= 1 && lines.length <= 3, lines.join("\n"));
    for (const line of lines) assert.match(line, /^web2 \| /);
  });

  it("-f streams a line logged after it started, and Ctrl-C ends it cleanly on every host (exit 0, no journalctl left)", async () => {
    const child = start("logs", [SERVICE, "-f", "-n", "5", "--host", "web1,web2", "--stack", "t"], p);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
    const ended = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    const waitFor = async (pattern: RegExp, what: string) => {
      while (!pattern.test(out)) {
        if (child.exitCode !== null) throw new Error(`logs -f ended before ${what}: ${err}\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      // Following on both hosts: journalctl runs there.
      for (const h of HOSTS) {
        await waitFor(new RegExp(`^${h} \\| `, "m"), `${h}'s first line`);
        while ((await journalctlsOn(h)) === "") await new Promise((r) => setTimeout(r, 100));
      }
      const marker = `followed-${crypto.randomBytes(4).toString("hex")}`;
      for (const h of HOSTS) await sh(h, `printf '%s\\n' '${marker} on ${h} token ${secret}' > ${SAY}`);
      for (const h of HOSTS)
        await waitFor(new RegExp(`^${h} \\| .*${marker} on ${h} token \\[secret\\]$`, "m"), `${h}'s new line`);
      child.kill("SIGINT");
      assert.equal(await ended, 0, err);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    assert.ok(!out.includes(secret) && !err.includes(secret), "the secret is never printed");
    for (const h of HOSTS) assert.equal(await journalctlsOn(h), "", `no journalctl left on ${h}`);
  });

  it("a bad --since is a usage error naming the flag (exit 6)", async () => {
    const r = await runScript("logs", [SERVICE, "--since", "last tuesday", "--stack", "t"], p);
    assert.equal(r.status, 6);
    assert.match(r.stderr, /^logs: --since takes a duration/m);
  });
});
