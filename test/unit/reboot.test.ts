import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import {
  BOOT_LINE,
  probedHealth,
  rebootHealthScript,
  rebootScript,
  type RebootHealthTarget,
} from "../../commands/reboot";
import {
  backVerdict,
  describeWaiting,
  rebootBatches,
  rebootOptions,
  rebootRefusals,
  stoppedReport,
} from "../../decisions/reboot";
import { isFleetError } from "../../model/errors";
import { judge } from "../../providers/service/gate";

const BEFORE = "ce4c5b87-de40-4745-80f5-c861527677fa 1317347";
const AFTER = "ce4c5b87-de40-4745-80f5-c861527677fa 1361752";

describe("decisions/reboot", () => {
  it("batches hosts in config order, the last batch holding the rest", () => {
    assert.deepEqual(rebootBatches(["a", "b", "c"], 1), [["a"], ["b"], ["c"]]);
    assert.deepEqual(rebootBatches(["a", "b", "c"], 2), [["a", "b"], ["c"]]);
    assert.deepEqual(rebootBatches(["a", "b"], 5), [["a", "b"]]);
    assert.deepEqual(rebootBatches([], 1), []);
    assert.throws(() => rebootBatches(["a"], 0), /≥ 1/);
  });

  it("reads --batch and --wait with the project's duration rules (defaults 1 and 5m)", () => {
    assert.deepEqual(rebootOptions(undefined, undefined), { batch: 1, waitMs: 300_000 });
    assert.deepEqual(rebootOptions("2", "90s"), { batch: 2, waitMs: 90_000 });
    for (const [batch, wait, problem] of [
      ["0", undefined, /--batch: "0" is not a whole number/],
      ["1.5", undefined, /--batch: "1.5"/],
      ["x", undefined, /--batch: "x"/],
      [undefined, "5", /--wait: "5" must be a duration like/],
      [undefined, "0s", /--wait: "0s" must be longer than 0/],
      [undefined, "5 min", /--wait: "5 min"/],
    ] as const) {
      assert.throws(
        () => rebootOptions(batch, wait),
        (err: unknown) => isFleetError(err) && err.kind === "config" && problem.test(err.summary),
        `${batch} ${wait}`,
      );
    }
  });

  it("a host is back only on a new boot, over SSH, with every service healthy", () => {
    const healthy = { service: "api", verdict: { ok: true }, status: "200" };
    assert.deepEqual(backVerdict(BEFORE, { ok: false, error: "ECONNREFUSED" }, []), {
      back: false,
      waitingFor: { kind: "ssh", last: "ECONNREFUSED" },
    });
    // Still (or again) the boot from before: it never went down.
    assert.deepEqual(backVerdict(BEFORE, { ok: true, boot: BEFORE }, [healthy]), {
      back: false,
      waitingFor: { kind: "boot" },
    });
    assert.deepEqual(backVerdict(BEFORE, { ok: true, boot: AFTER }, [healthy, { service: "web" }]), {
      back: false,
      waitingFor: { kind: "health", service: "web", last: "not probed yet" },
    });
    const sick = { service: "web", verdict: { ok: false, failedCheck: "did not answer 200" }, status: "503" };
    assert.deepEqual(backVerdict(BEFORE, { ok: true, boot: AFTER }, [healthy, sick]), {
      back: false,
      waitingFor: { kind: "health", service: "web", last: "did not answer 200 (last status 503)" },
    });
    assert.deepEqual(backVerdict(BEFORE, { ok: true, boot: AFTER }, [healthy]), { back: true });
    assert.deepEqual(backVerdict(BEFORE, { ok: true, boot: AFTER }, []), { back: true });
  });

  it("a stopped run names the host, what it waited for, and the hosts left untouched", () => {
    const text = stoppedReport(
      [{ host: "web2", waitingFor: { kind: "ssh", last: "unreachable: ECONNREFUSED" } }],
      ["web3", "web4"],
      "20s",
    );
    assert.equal(
      text,
      "reboot: web2 did not come back within 20s: waiting for SSH to answer again (last: unreachable: ECONNREFUSED)\n" +
        "reboot: stopped; not rebooted: web3, web4",
    );
    assert.match(stoppedReport([{ host: "a", waitingFor: { kind: "boot" } }], [], "5m"), /never went down[\s\S]*none/);
    assert.match(
      describeWaiting({ kind: "health", service: "api", last: "HTTP 500" }),
      /^service api's health \(last: HTTP 500\)$/,
    );
  });

  it("refuses a host with a deploy running or that cannot be read, naming each", () => {
    assert.deepEqual(rebootRefusals([{ host: "web1", locked: [] }]), []);
    assert.deepEqual(
      rebootRefusals([
        { host: "web1", locked: [{ service: "api", holder: "who=bob@ci pid=7" }] },
        { host: "cloud1", problem: "an hcloud server", locked: [] },
        { host: "web2", locked: [] },
      ]),
      ["web1: a deploy of api is running (lock held by who=bob@ci pid=7)", "cloud1: an hcloud server"],
    );
  });
});

/** Runs a script with the local /bin/sh (asynchronously: a test server in this process must answer). */
function sh(script: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-s"], { stdio: ["pipe", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.end(script);
  });
}

describe("commands/reboot", () => {
  it("the boot line prints the kernel's boot id and PID 1's start time", async () => {
    const r = await sh(BOOT_LINE);
    assert.match(r.stdout, /^boot=[0-9a-f-]{36} \d+\n$/);
  });

  it("the reboot is left to systemd a second later, so the session ends first; the boot id comes before", () => {
    const s = rebootScript();
    assert.ok(s.indexOf(BOOT_LINE) < s.indexOf("systemctl reboot"));
    assert.match(s, /systemd-run --quiet --on-active=1 .*\/bin\/systemctl reboot/);
    assert.match(s, /nohup \/bin\/sh -c 'sleep 1; systemctl reboot' <\/dev\/null >\/dev\/null 2>&1 &/);
  });

  it("quotes every value of the health probe (names, root, URL, body)", () => {
    const t: RebootHealthTarget = {
      root: "/srv/it's $(x)",
      service: "api",
      unitName: "api`y`",
      health: {
        url: "http://127.0.0.1:1/h?a='b'&c=$d",
        expectStatus: 200,
        bodyContains: "ü'\n$z",
        timeoutMs: 1000,
        intervalMs: 100,
      },
      proxied: false,
    };
    const s = rebootHealthScript(t, 500);
    assert.ok(s.includes(`cur=$(readlink '/srv/it'\\''s $(x)/api'/current`), s);
    assert.ok(s.includes(`'http://127.0.0.1:1/h?a='\\''b'\\''&c=$d'`));
    assert.ok(s.includes(`grep -qF -- 'ü'\\''\n$z'`));
    assert.ok(s.includes(`systemctl is-active 'api\`y\`'`));
    assert.match(s, /deadline=\$\(\( \$\(date \+%s%3N\) \+ 500 \)\)/);
  });

  it("behind the proxy, probes the serving instance's port and unit", () => {
    const s = rebootHealthScript(
      {
        root: "/srv/fleet",
        service: "api",
        unitName: "api",
        health: { url: "http://127.0.0.1:8080/api/health", expectStatus: 200, timeoutMs: 1000, intervalMs: 100 },
        proxied: true,
      },
      1000,
    );
    assert.match(s, /sp=\$\(cat \/srv\/fleet\/api\/proxy\/serving/);
    assert.ok(s.includes(`"http://127.0.0.1:$sp"/api/health`));
    assert.ok(s.includes(`systemctl is-active api@$sp.service`));
  });

  describe("the health probe, run by /bin/sh against a local server, judged by the deploy's verdict", () => {
    let server: http.Server;
    let root: string;
    let port: number;
    before(async () => {
      server = http.createServer((req, res) => {
        res.writeHead(req.url === "/health" ? 200 : 404);
        res.end(req.url === "/health" ? "all good" : "no");
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as AddressInfo).port;
      root = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-reboot-"));
      fs.mkdirSync(path.join(root, "api", "releases", "r1"), { recursive: true });
      fs.writeFileSync(path.join(root, "api", "releases", "r1", "REVISION"), "abc1234def\n");
      fs.symlinkSync("releases/r1", path.join(root, "api", "current"));
    });
    after(() => {
      server.close();
      fs.rmSync(root, { recursive: true, force: true });
    });

    const target = (over: Partial<RebootHealthTarget["health"]>): RebootHealthTarget => ({
      root,
      service: "api",
      unitName: "fleet-reboot-test-none",
      health: { url: `http://127.0.0.1:${port}/health`, expectStatus: 200, timeoutMs: 30_000, intervalMs: 50, ...over },
      proxied: false,
    });

    it("passes a service that answers as its health says, and reports the serving commit", async () => {
      const t = target({ bodyContains: "good" });
      const r = await sh(rebootHealthScript(t, 2000));
      assert.match(r.stdout, /^commit=abc1234def$/m);
      const gate = judge(t, r.stdout, "abc1234def");
      assert.deepEqual(gate.verdict, { ok: true });
      assert.equal(gate.outcome.status, "200");
    });

    it("fails one whose body or status is wrong, with the last status, once its (capped) deadline passes", async () => {
      const body = target({ bodyContains: "missing" });
      const r = await sh(rebootHealthScript(body, 300));
      const gate = judge({ health: probedHealth(body.health, 300) }, r.stdout, "");
      assert.equal(gate.verdict.ok, false);
      assert.match(
        gate.verdict.failedCheck!,
        /did not answer 200 with the expected body within 300 ms; last: HTTP 200/,
      );
      const status = target({ url: `http://127.0.0.1:${port}/other` });
      const s = judge(
        { health: probedHealth(status.health, 300) },
        (await sh(rebootHealthScript(status, 300))).stdout,
        "",
      );
      assert.match(s.verdict.failedCheck!, /last: HTTP 404/);
    });
  });
});
