import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { serviceLayout } from "../../commands/layout";
import { deleteScript, finalizeScript, prepareScript, readScript, type LockOwner } from "../../commands/service";
import { watchdogProgram } from "../../commands/watchdog";
import { parseFacts } from "../../commands/facts";
import { diffService, liveDrift } from "../../decisions/service-diff";
import { WATCHDOG_MARGIN_MS, watchdogDeadlineMs } from "../../decisions/watchdog";
import type { ServiceSpec } from "../../model/service";
import { localServiceSpec, runLocalScript } from "../support/local-sh";

/**
 * The host-side half of "magic rollback" (commands/watchdog.ts), run here with the local /bin/sh
 * in a temporary root, with stand-ins for curl and systemctl: who may take a held lock over, what
 * a takeover puts back and writes, and what only a confirmed gate may move (`verified`).
 */

const specAt = (root: string) => localServiceSpec(root, `fleet-wd-unit-${process.pid}`);
const run = (script: string, dir: string) => runLocalScript(script, dir, { stubSystemctl: true });

const startTime = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[21]!;

/** A process standing for a deployer's presence; `end()` makes it gone. */
function presenceProcess(): { presence: string; end: () => Promise<void> } {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  const pid = child.pid!;
  return {
    presence: `${pid} ${startTime(pid)}`,
    end: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

describe("the host's watchdog and lock takeover (commands/watchdog.ts, run with the local sh)", () => {
  let tmp: string;
  let spec: ServiceSpec;
  let dir: string;
  const owner = (o: Partial<LockOwner> = {}): LockOwner => ({
    who: "new@laptop",
    machine: "laptop",
    pid: 1,
    since: "now",
    release: spec.releaseId,
    token: "newtoken",
    ...o,
  });
  /** The lock as a holder that went away left it, after its switch when `switched`. */
  function heldBy(presence: string | undefined, switched: boolean): void {
    fs.mkdirSync(path.join(dir, ".lock"), { recursive: true });
    const lines = ["who=old@ci", "machine=ci", "pid=4242", "since=then", "release=bbbbbbbbbbbb", "token=oldtoken"];
    if (presence) lines.push(`presence=${presence}`);
    fs.writeFileSync(path.join(dir, ".lock", "owner"), lines.join("\n") + "\n");
    for (const r of ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]) {
      fs.mkdirSync(path.join(dir, "releases", r), { recursive: true });
      fs.writeFileSync(path.join(dir, "releases", r, "REVISION"), `${r}\n`);
    }
    fs.mkdirSync(path.join(dir, ".rollback"), { recursive: true });
    fs.writeFileSync(path.join(dir, ".rollback", "current"), "releases/aaaaaaaaaaaa");
    fs.writeFileSync(path.join(dir, ".rollback", "saved"), "");
    fs.writeFileSync(path.join(dir, "verified"), "aaaaaaaaaaaa\n");
    fs.symlinkSync(switched ? "releases/bbbbbbbbbbbb" : "releases/aaaaaaaaaaaa", path.join(dir, "current"));
    if (switched) fs.writeFileSync(path.join(dir, ".lock", "switched"), "");
  }
  const log = () =>
    fs.existsSync(path.join(dir, "deploy.log")) ? fs.readFileSync(path.join(dir, "deploy.log"), "utf8") : "";

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-wd-unit-"));
    spec = specAt(path.join(tmp, "root"));
    dir = path.join(tmp, "root", "svc");
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("the deadline is the health timeout plus a fixed margin", () => {
    assert.equal(WATCHDOG_MARGIN_MS, 20_000);
    assert.equal(watchdogDeadlineMs(4000), 24_000);
    assert.equal(watchdogDeadlineMs(-1), 20_000);
    assert.equal(watchdogDeadlineMs(4000, true), 28_000, "behind the proxy: the gate, then the probe through it");
  });

  it("a holder whose presence still runs is refused, named, and its lock left as it was", () => {
    const p = presenceProcess();
    try {
      heldBy(p.presence, true);
      const r = run(prepareScript(spec, owner()), tmp);
      assert.equal(r.code, 75, r.stderr);
      assert.match(r.stdout, /^locked=1$/m);
      assert.match(r.stdout, /^who=old@ci$/m);
      assert.equal(fs.readlinkSync(path.join(dir, "current")), "releases/bbbbbbbbbbbb");
      assert.equal(log(), "");
    } finally {
      void p.end();
    }
  });

  it("a lock without a recorded presence (fleet before the watchdog) cannot be judged on the host: refused", () => {
    heldBy(undefined, false);
    const r = run(prepareScript(spec, owner()), tmp);
    assert.equal(r.code, 75, r.stderr);
  });

  it("a holder whose presence is gone, stopped before its switch: taken over, logged as interrupted, nothing reverted", async () => {
    const p = presenceProcess();
    await p.end();
    heldBy(p.presence, false);
    const r = run(prepareScript(spec, owner()), tmp);
    assert.equal(r.code, 0, r.stderr);
    const facts = parseFacts(r.stdout).one;
    assert.deepEqual([facts["took_over"], facts["stale_who"], facts["stale_release"]], ["1", "old@ci", "bbbbbbbbbbbb"]);
    assert.match(
      fs.readFileSync(path.join(dir, ".lock", "owner"), "utf8"),
      /^token=newtoken$/m,
      "the lock is the new deploy's",
    );
    assert.match(
      log(),
      /^\S+ old@ci aaaaaaaaaaaa -> bbbbbbbbbbbb interrupted \d+\.\d{3}s the deploying side was gone .* found by new@laptop$/m,
    );
    assert.doesNotMatch(log(), /restored/);
    assert.equal(fs.readlinkSync(path.join(dir, "current")), "releases/aaaaaaaaaaaa");
  });

  it("a holder gone after its switch, undecided: the takeover puts back what the switch saved first", async () => {
    const p = presenceProcess();
    await p.end();
    heldBy(p.presence, true);
    const r = run(prepareScript(spec, owner()), tmp);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readlinkSync(path.join(dir, "current")), "releases/aaaaaaaaaaaa", "the last good release again");
    // The revert's facts stay off stdout, which carries the new deploy's own facts (its gate evidence).
    assert.doesNotMatch(r.stdout, /^(restored|restarts)=/m);
    assert.match(log(), / old@ci aaaaaaaaaaaa -> bbbbbbbbbbbb interrupted .*it had switched: aaaaaaaaaaaa restored$/m);
    const systemctl = fs.readFileSync(path.join(tmp, "systemctl.log"), "utf8");
    assert.match(systemctl, new RegExp(`^stop fleet-watchdog-${spec.unitName}$`, "m"), "its watchdog is stopped");
    assert.match(systemctl, new RegExp(`^restart ${spec.unitName}$`, "m"), "the restored release is restarted");
    assert.equal(fs.readFileSync(path.join(dir, "verified"), "utf8"), "aaaaaaaaaaaa\n", "verified does not move");
  });

  it("finalize leaves a lock that is no longer this deploy's alone (lock lost), and only an ok moves verified", () => {
    heldBy(undefined, false);
    const args = (result: "ok" | "failed", token: string) => ({
      deleteReleases: [],
      audit: { who: "w", from: "aaaaaaaaaaaa", to: spec.releaseId, result },
      elapsedBeforeMs: 0,
      token,
    });
    const lost = run(finalizeScript(spec, args("ok", "newtoken")), tmp);
    assert.equal(lost.code, 76, lost.stderr);
    assert.match(lost.stdout, /^lock_lost=1$/m);
    assert.ok(fs.existsSync(path.join(dir, ".lock", "owner")), "the other holder's lock stays");
    const failed = run(finalizeScript(spec, args("failed", "oldtoken")), tmp);
    assert.equal(failed.code, 0, failed.stderr);
    assert.equal(
      fs.readFileSync(path.join(dir, "verified"), "utf8"),
      "aaaaaaaaaaaa\n",
      "a failed attempt does not move it",
    );
    fs.mkdirSync(path.join(dir, ".lock"));
    fs.writeFileSync(path.join(dir, ".lock", "owner"), "token=t2\n");
    const ok = run(finalizeScript(spec, args("ok", "t2")), tmp);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.readFileSync(path.join(dir, "verified"), "utf8"), `${spec.releaseId}\n`);
    assert.ok(!fs.existsSync(path.join(dir, ".lock")));
  });

  it("finalize after the watchdog decided: exits 'reverted' with the watchdog's output", () => {
    heldBy(undefined, true);
    fs.writeFileSync(path.join(dir, ".lock", "owner"), "token=t3\n");
    fs.mkdirSync(path.join(dir, ".lock", "decided"));
    fs.writeFileSync(path.join(dir, ".lock", "decided", "by"), "host\n");
    fs.writeFileSync(path.join(dir, ".watchdog.out"), "restored=aaaaaaaaaaaa\nresult=ok\n");
    const r = run(
      finalizeScript(spec, {
        deleteReleases: [],
        audit: { who: "w", from: "a", to: spec.releaseId, result: "ok" },
        elapsedBeforeMs: 0,
        token: "t3",
      }),
      tmp,
    );
    assert.equal(r.code, 71, r.stderr);
    assert.match(r.stdout, /^by_host=1$/m);
    assert.match(r.stdout, /^restored=aaaaaaaaaaaa$/m);
    assert.equal(fs.readFileSync(path.join(dir, "verified"), "utf8"), "aaaaaaaaaaaa\n");
  });

  it("the watchdog's program acts only for its own token, once undecided, and ends by releasing the lock", () => {
    heldBy(undefined, true);
    fs.writeFileSync(path.join(dir, ".lock", "owner"), "who=old@ci\nrelease=bbbbbbbbbbbb\ntoken=mine\n");
    const layout = serviceLayout(spec.root, spec.name, spec.unitName);
    const other = run(watchdogProgram(spec, layout, "someone-else", 0), tmp);
    assert.equal(other.code, 0);
    assert.equal(
      fs.readlinkSync(path.join(dir, "current")),
      "releases/bbbbbbbbbbbb",
      "another deploy's lock: nothing done",
    );
    const mine = run(watchdogProgram(spec, layout, "mine", 0), tmp);
    assert.equal(mine.code, 0, mine.stderr);
    assert.equal(fs.readlinkSync(path.join(dir, "current")), "releases/aaaaaaaaaaaa");
    assert.ok(!fs.existsSync(path.join(dir, ".lock")), "the lock is released");
    // The stand-in curl never answers: the restored release is not healthy, and the line says so.
    assert.match(
      log(),
      /^\S+ host-watchdog aaaaaaaaaaaa -> bbbbbbbbbbbb critical .* reverted by the host: no confirmation within 0 s/m,
    );
    assert.match(fs.readFileSync(path.join(dir, ".watchdog.out"), "utf8"), /^restored=aaaaaaaaaaaa$/m);
    assert.doesNotMatch(log(), /stay applied/, "nothing migrated: nothing to say about the database");
  });

  it("a reverted release that migrated: the line says its migrations stay applied (the host restores no database)", () => {
    heldBy(undefined, true);
    fs.writeFileSync(path.join(dir, ".lock", "owner"), "who=old@ci\nrelease=bbbbbbbbbbbb\ntoken=mine\n");
    fs.writeFileSync(path.join(dir, ".lock", "migrated"), "");
    const layout = serviceLayout(spec.root, spec.name, spec.unitName);
    assert.equal(run(watchdogProgram(spec, layout, "mine", 0), tmp).code, 0);
    assert.match(log(), /; the migrations bbbbbbbbbbbb ran stay applied$/m);
  });

  it("delete takes over a gone holder's lock (stopping its watchdog) and refuses a live one", async () => {
    const alive = presenceProcess();
    try {
      heldBy(alive.presence, false);
      assert.equal(run(deleteScript(spec), tmp).code, 75);
      assert.ok(fs.existsSync(dir));
    } finally {
      await alive.end();
    }
    const r = run(deleteScript(spec), tmp);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(dir), "everything removed");
    assert.match(fs.readFileSync(path.join(tmp, "systemctl.log"), "utf8"), /^stop fleet-watchdog-/m);
  });

  it("read reports the verified release beside the live one", () => {
    heldBy(undefined, true);
    const facts = parseFacts(run(readScript(spec), tmp).stdout).one;
    assert.deepEqual(
      [facts["current"], facts["verified"], facts["verified_commit"]],
      ["bbbbbbbbbbbb", "aaaaaaaaaaaa", "aaaaaaaaaaaa"],
    );
  });

  it("live drift (current is not the deployed release) is a change: the next up deploys and gates again", () => {
    const state = { releaseId: "aaaaaaaaaaaa", live: { release: "bbbbbbbbbbbb" } };
    assert.ok(liveDrift(state));
    assert.ok(!liveDrift({ releaseId: "a", live: { release: "a" } }));
    assert.ok(!liveDrift({ releaseId: "a" }));
    const d = diffService(state, { releaseId: "aaaaaaaaaaaa" });
    assert.ok(d.changes && !d.recordOnly);
    assert.ok(d.changedKeys.includes("live.release"));
    assert.ok(!diffService({ releaseId: "a", live: { release: "a" } }, { releaseId: "a" }).changes);
  });
});
