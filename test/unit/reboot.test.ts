import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import {
  BOOT_LINE,
  bootHoldProgram,
  bootHoldUnit,
  probedHealth,
  rebootHealthScript,
  rebootLockOwnerText,
  rebootLockScript,
  rebootLocksReadScript,
  rebootRelockScript,
  rebootScript,
  rebootUnlockScript,
  type BootHold,
  type BootHoldPaths,
  type RebootHealthTarget,
  type RebootLockTarget,
} from "../../commands/reboot";
import { decodeBase64, parseFacts } from "../../commands/facts";
import { prepareScript, type LockOwner } from "../../commands/service";
import { PRESENCE_GONE } from "../../commands/watchdog";
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
import { localServiceSpec, runLocalScript } from "../support/local-sh";

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

describe("commands/reboot: the deploy locks the reboot holds (run with the local sh in a temporary root)", () => {
  const OWNER: LockOwner = {
    who: "al@lap",
    machine: "lap",
    pid: 42,
    since: "2026-01-01T00:00:00.000Z",
    release: "reboot",
    token: "t0k",
    presence: "100 200",
  };

  it("takes every service's lock, all or none, with an owner file that names the reboot (exact script)", () => {
    const targets: RebootLockTarget[] = [
      { root: "/srv/fleet", service: "api", unitName: "api" },
      { root: "/srv/it's $(x)", service: "web", unitName: "web" },
    ];
    const ownerText =
      "who=al@lap\nmachine=lap\npid=42\nsince=2026-01-01T00:00:00.000Z\nrelease=reboot\ntoken=t0k\npresence=100 200\nkind=reboot\n";
    assert.equal(rebootLockOwnerText(OWNER), ownerText);
    const web = `'/srv/it'\\''s $(x)/web'`;
    assert.equal(
      rebootLockScript(targets, OWNER),
      [
        "set -eu",
        "umask 022",
        `owner_wait() { i=0; while [ ! -s "$1/.lock/owner" ] && [ -d "$1/.lock" ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done; }`,
        `holder() { tr '\\n' ' ' < "$1/.lock/owner" 2>/dev/null | base64 -w0 || true; }`,
        PRESENCE_GONE,
        `gone_reboot() { grep -qxF kind=reboot "$1/.lock/owner" 2>/dev/null && presence_gone "$1/.lock"; }`,
        `mine() { [ "$(sed -n 's/^token=//p' "$1/.lock/owner" 2>/dev/null)" = t0k ]; }`,
        `unlock() {`,
        `  mine "$1" || return 0`,
        `  if [ -e "$1/.lock/made-dir" ]; then rm -rf "$1/.lock"; rmdir "$1" 2>/dev/null || true; else rm -rf "$1/.lock"; fi`,
        `}`,
        `take() {`,
        `  made=0; [ -d "$1" ] || { mkdir -p "$1" || return 2; made=1; }`,
        `  if ! mkdir "$1/.lock" 2>/dev/null; then`,
        `    if [ -d "$1/.lock" ]; then`,
        `      owner_wait "$1"; gone_reboot "$1" || return 1`,
        `      [ ! -e "$1/.lock/made-dir" ] || made=1`,
        `      echo "took_over=$2"; rm -rf "$1/.lock"`,
        `    fi`,
        `    mkdir "$1/.lock" 2>/dev/null || { [ -d "$1/.lock" ] && return 1; return 2; }`,
        `  fi`,
        `  { printf '%s' ${Buffer.from(ownerText).toString("base64")} | base64 -d > "$1/.lock/owner" && { [ "$made" = 0 ] || : > "$1/.lock/made-dir"; }; } || { rm -rf "$1/.lock"; return 2; }`,
        `}`,
        `undo() {`,
        `  [ "$1" -lt 1 ] || unlock /srv/fleet/api`,
        `  [ "$1" -lt 2 ] || unlock ${web}`,
        `  :`,
        `}`,
        `failed() {`,
        `  [ "$1" != 1 ] || { echo "held=$3"; echo "held_by=$(holder "$2")"; }`,
        `  undo "$4"`,
        `  [ "$1" != 1 ] || exit 75`,
        `  echo "could not take the deploy lock in $2" >&2; exit 1`,
        `}`,
        `if take /srv/fleet/api api; then echo took=api; else failed $? /srv/fleet/api api 0; fi`,
        `if take ${web} web; then echo took=web; else failed $? ${web} web 1; fi`,
        "",
      ].join("\n"),
    );
    assert.equal(
      rebootUnlockScript({ targets, token: "t0k" }),
      [
        "set -u",
        `mine() { [ "$(sed -n 's/^token=//p' "$1/.lock/owner" 2>/dev/null)" = t0k ]; }`,
        `unlock() {`,
        `  mine "$1" || return 0`,
        `  if [ -e "$1/.lock/made-dir" ]; then rm -rf "$1/.lock"; rmdir "$1" 2>/dev/null || true; else rm -rf "$1/.lock"; fi`,
        `}`,
        `if mine /srv/fleet/api; then unlock /srv/fleet/api; echo released=api; fi`,
        `if mine ${web}; then unlock ${web}; echo released=web; fi`,
        "systemctl stop fleet-reboot-hold.service 2>/dev/null || true",
        "rm -f /etc/systemd/system/multi-user.target.wants/fleet-reboot-hold.service /etc/systemd/system/fleet-reboot-hold.service /etc/fleet/reboot-hold.sh",
        "",
      ].join("\n"),
    );
  });

  it("the reboot script installs the boot hold (before sshd, forking, one boot) before it schedules the reboot", () => {
    const targets: RebootLockTarget[] = [{ root: "/srv/fleet", service: "api", unitName: "api" }];
    const s = rebootScript({ targets, token: "t0k", waitMs: 90_000 });
    assert.ok(s.indexOf("echo hold=1") < s.indexOf("systemctl reboot"), s);
    assert.match(s, /^if \[ -d \/run\/systemd\/system \]; then$/m);
    assert.ok(s.includes(Buffer.from(bootHoldProgram({ targets, token: "t0k", waitMs: 90_000 })).toString("base64")));
    assert.ok(s.includes(Buffer.from(bootHoldUnit()).toString("base64")));
    assert.match(
      s,
      /^ {2}ln -sfn \/etc\/systemd\/system\/fleet-reboot-hold\.service \/etc\/systemd\/system\/multi-user\.target\.wants\/fleet-reboot-hold\.service$/m,
    );
    assert.equal(
      bootHoldUnit(),
      [
        "[Unit]",
        "Description=fleet: npm run reboot holds its deploy locks through this boot",
        "DefaultDependencies=no",
        "After=local-fs.target",
        "Before=ssh.service sshd.service ssh.socket sshd.socket",
        "",
        "[Service]",
        "Type=forking",
        'ExecStart=/bin/sh "/etc/fleet/reboot-hold.sh"',
        "TimeoutStartSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    );
    assert.doesNotMatch(rebootScript(), /hold/, "no services on the host: no locks, no hold");
  });

  describe("against the deploy's own lock (commands/service.ts prepareScript)", () => {
    let tmp: string;
    let root: string;
    let paths: BootHoldPaths;
    const unitName = `fleet-reboot-unit-${process.pid}`;
    const targets = (): RebootLockTarget[] => [
      { root, service: "svc", unitName },
      { root, service: "other", unitName: `${unitName}-o` },
    ];
    const dir = (service: string) => path.join(root, service);
    const ownerFile = (service: string) => path.join(dir(service), ".lock", "owner");
    const run = (script: string) => runLocalScript(script, tmp, { stubSystemctl: true });
    /** The deploy of "svc" taking its lock, as a deploy does. */
    const deploy = () =>
      run(
        prepareScript(localServiceSpec(root, unitName), {
          who: "bob@ci",
          machine: "ci",
          pid: 7,
          since: "now",
          release: "0123456789ab",
          token: "deploytoken",
        }),
      );
    const children: number[] = [];
    /** A live process standing for a presence. */
    function live(): string {
      const child = spawn("sleep", ["60"], { stdio: "ignore" });
      children.push(child.pid!);
      return `${child.pid} ${fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(" ")[21]}`;
    }
    /** A presence that no longer runs. */
    async function gone(): Promise<string> {
      const child = spawn("sleep", ["60"], { stdio: "ignore" });
      const p = `${child.pid} ${fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(" ")[21]}`;
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      });
      return p;
    }
    const hold = (): BootHold => ({ targets: targets(), token: "t0k", waitMs: 60_000, paths });

    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-reboot-locks-"));
      root = path.join(tmp, "root");
      fs.mkdirSync(path.join(dir("svc"), "releases"), { recursive: true });
      paths = {
        program: path.join(tmp, "etc", "reboot-hold.sh"),
        unit: path.join(tmp, "etc", "fleet-reboot-hold.service"),
        wants: path.join(tmp, "etc", "wants", "fleet-reboot-hold.service"),
      };
    });
    afterEach(() => {
      for (const pid of children.splice(0)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("while the reboot holds the locks a deploy is refused naming it; released, the deploy takes its lock", () => {
      const took = run(rebootLockScript(targets(), { ...OWNER, presence: live() }));
      assert.equal(took.code, 0, took.stderr);
      assert.deepEqual(parseFacts(took.stdout).all["took"], ["svc", "other"]);
      assert.match(
        fs.readFileSync(ownerFile("svc"), "utf8"),
        /^who=al@lap\n(.*\n)*release=reboot\ntoken=t0k\npresence=\d+ \d+\nkind=reboot\n$/,
      );
      assert.ok(fs.existsSync(ownerFile("other")), "a service not deployed here yet is locked too");

      const refused = deploy();
      assert.equal(refused.code, 75, refused.stderr);
      assert.match(refused.stdout, /^locked=1\nwho=al@lap\n(.*\n)*kind=reboot$/m);
      assert.match(fs.readFileSync(ownerFile("svc"), "utf8"), /^token=t0k$/m, "the reboot's lock is left as it was");

      const released = run(rebootUnlockScript(hold()));
      assert.equal(released.code, 0, released.stderr);
      assert.deepEqual(parseFacts(released.stdout).all["released"], ["svc", "other"]);
      assert.ok(!fs.existsSync(path.join(dir("svc"), ".lock")));
      assert.ok(fs.existsSync(path.join(dir("svc"), "releases")), "a deployed service's dir stays");
      assert.ok(!fs.existsSync(dir("other")), "the dir made for the lock goes with it");
      assert.match(fs.readFileSync(path.join(tmp, "systemctl.log"), "utf8"), /^stop fleet-reboot-hold\.service$/m);

      const after = deploy();
      assert.equal(after.code, 0, after.stderr);
      assert.match(fs.readFileSync(ownerFile("svc"), "utf8"), /^token=deploytoken$/m);
    });

    it("all or none: a lock a deploy holds refuses, names it, and releases the ones taken; the holder's stays", () => {
      fs.mkdirSync(path.join(dir("other"), ".lock"), { recursive: true });
      const holder = `who=bob@ci\nmachine=ci\npid=7\nsince=then\nrelease=bbbbbbbbbbbb\ntoken=theirs\npresence=${live()}\n`;
      fs.writeFileSync(ownerFile("other"), holder);
      const r = run(rebootLockScript(targets(), { ...OWNER, presence: live() }));
      assert.equal(r.code, 75, r.stderr);
      const f = parseFacts(r.stdout);
      assert.deepEqual(f.all["took"], ["svc"]);
      assert.equal(f.one["held"], "other");
      assert.equal(decodeBase64(f.one["held_by"]), holder.replace(/\n/g, " "));
      assert.ok(!fs.existsSync(path.join(dir("svc"), ".lock")), "the lock it took is released");
      assert.equal(fs.readFileSync(ownerFile("other"), "utf8"), holder);
      // Refused before the reboot: the run's read says the same.
      const read = runLocalScript(rebootLocksReadScript(targets()), tmp);
      assert.deepEqual(
        (parseFacts(read.stdout).all["held"] ?? []).map((l) => [l.split(" ")[0], decodeBase64(l.split(" ")[1])]),
        [["other", holder.replace(/\n/g, " ")]],
      );
    });

    it("a reboot that is gone: a deploy takes its lock over, and so does the next reboot; a gone deploy's it leaves to deploys", async () => {
      const first = run(rebootLockScript(targets(), { ...OWNER, presence: await gone() }));
      assert.equal(first.code, 0, first.stderr);
      const read = runLocalScript(rebootLocksReadScript(targets()), tmp);
      assert.equal(read.stdout, "", "a gone reboot's lock is in nobody's way");

      const next = run(rebootLockScript(targets(), { ...OWNER, token: "next", presence: live() }));
      assert.equal(next.code, 0, next.stderr);
      assert.deepEqual(parseFacts(next.stdout).all["took_over"], ["svc", "other"]);
      assert.match(fs.readFileSync(ownerFile("svc"), "utf8"), /^token=next$/m);
      run(rebootUnlockScript({ targets: targets(), token: "next" }));
      assert.ok(!fs.existsSync(dir("other")), "made by the first reboot, removed by the one that took it over");

      run(rebootLockScript(targets(), { ...OWNER, presence: await gone() }));
      const deployed = deploy();
      assert.equal(deployed.code, 0, deployed.stderr);
      assert.match(deployed.stdout, /^took_over=1$/m);
      assert.match(deployed.stdout, /^stale_who=al@lap$/m);

      // A gone deploy's lock: not the reboot's to take (the deploy's takeover reverts and logs).
      fs.writeFileSync(ownerFile("svc"), `who=bob@ci\ntoken=theirs\npresence=${await gone()}\n`);
      const deployGone = run(rebootLockScript(targets(), { ...OWNER, token: "fourth", presence: live() }));
      assert.equal(deployGone.code, 75, deployGone.stderr);
      assert.equal(parseFacts(deployGone.stdout).one["held"], "svc");
    });

    it("through the boot: the hold names itself in the locks (one boot only), the reboot then names its new presence", async () => {
      const took = run(rebootLockScript(targets(), { ...OWNER, presence: await gone() }));
      assert.equal(took.code, 0, took.stderr);
      fs.mkdirSync(path.dirname(paths.wants), { recursive: true });
      fs.writeFileSync(paths.wants, "");
      // The boot: the hold runs before sshd.
      const boot = runLocalScript(`deadline=${Math.floor(Date.now() / 1000) + 3600}\n${bootHoldProgram(hold())}`, tmp);
      assert.equal(boot.code, 0, boot.stderr);
      const held = parseFacts(boot.stdout).one["presence"]!;
      children.push(Number(held.split(" ")[0]));
      assert.ok(!fs.existsSync(paths.wants), "one boot only");
      assert.ok(Number(held.split(" ")[0]) > 0);
      assert.match(
        fs.readFileSync(`/proc/${held.split(" ")[0]}/cmdline`, "utf8"),
        /^sleep\x0060\x00$/,
        "never longer than the wait (60 s), whatever the deadline",
      );
      assert.match(fs.readFileSync(ownerFile("other"), "utf8"), new RegExp(`^presence=${held}$`, "m"));
      assert.equal(deploy().code, 75, "a deploy right after the boot finds the reboot's lock held");

      const mine = live();
      const relock = run(rebootRelockScript(hold(), mine));
      assert.equal(relock.code, 0, relock.stderr);
      assert.deepEqual(parseFacts(relock.stdout).all["kept"], ["svc", "other"]);
      assert.match(fs.readFileSync(ownerFile("svc"), "utf8"), new RegExp(`^presence=${mine}$`, "m"));
      assert.equal(fs.readFileSync(ownerFile("svc"), "utf8").match(/^presence=/gm)?.length, 1);
      assert.match(fs.readFileSync(path.join(tmp, "systemctl.log"), "utf8"), /^stop fleet-reboot-hold\.service$/m);
      assert.equal(deploy().code, 75);

      // Someone took a lock meanwhile: that one is lost, and left alone.
      fs.writeFileSync(ownerFile("other"), "who=carol\ntoken=hers\n");
      const again = run(rebootRelockScript(hold(), live()));
      assert.deepEqual(parseFacts(again.stdout).all["lost"], ["other"]);
      assert.equal(fs.readFileSync(ownerFile("other"), "utf8"), "who=carol\ntoken=hers\n");
      run(rebootUnlockScript(hold()));
      assert.ok(fs.existsSync(ownerFile("other")), "the release leaves a lock that is not the reboot's");
      assert.ok(!fs.existsSync(path.join(dir("svc"), ".lock")));
    });

    it("a boot after the reboot's wait is over: the hold releases the reboot's locks (it gave up on this host)", async () => {
      run(rebootLockScript(targets(), { ...OWNER, presence: await gone() }));
      fs.mkdirSync(path.dirname(paths.program), { recursive: true });
      fs.writeFileSync(paths.program, "");
      fs.writeFileSync(paths.unit, "");
      const boot = runLocalScript(`deadline=${Math.floor(Date.now() / 1000) - 1}\n${bootHoldProgram(hold())}`, tmp);
      assert.equal(boot.code, 0, boot.stderr);
      assert.deepEqual(parseFacts(boot.stdout).all["released"], ["svc", "other"]);
      assert.equal(parseFacts(boot.stdout).one["presence"], undefined);
      assert.ok(!fs.existsSync(path.join(dir("svc"), ".lock")));
      assert.ok(!fs.existsSync(dir("other")));
      assert.ok(!fs.existsSync(paths.program) && !fs.existsSync(paths.unit), "the hold is gone too");
      assert.equal(deploy().code, 0);
    });
  });
});
