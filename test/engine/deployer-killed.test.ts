import { strict as assert } from "assert";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { killTree, outputOf } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService, slowHealthApp } from "./support/fixtures";
import { currentRelease, deployLog, served, VersionSampler, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";
import { watchdogDeadlineMs } from "../../decisions/watchdog";

/**
 * The deploying machine dies mid-deploy (issue #17): `pulumi up` SIGKILLed, CLI, program host and
 * provider together, while a new release is in its health gate, on web2. What the host does by
 * itself, and what the next command finds, for each problem the issue lists:
 *   1. a slow-but-healthy release: the host puts the old one back by itself, releases the lock,
 *      and the next deploy needs no config change and keeps the old release as its rollback target;
 *   2. a broken release: the next deploy rolls back to the OLD release (not CRITICAL), every time;
 *   3. a refresh after the crash reports the old release as deployed (the new one as live), so the
 *      next up runs the gate instead of being a no-op;
 *   4. a destroy after the crash works;
 *   5. every attempt has its deploy.log line (`reverted`, `interrupted`);
 *   and two crashes in a row keep the last verified release.
 */
const HOST = "web2";
const SVC = "eng-kill";
const PORT = 18771;
const HEALTH_TIMEOUT_MS = 6000;
/** How long the slow release fails its health check after it starts (it would pass its gate). */
const SLOW_MS = 4000;
/** Slack over the watchdog's deadline for the revert itself (restart, probe) on a loaded machine. */
const REVERT_SLACK_MS = 15_000;

describe("engine: the deploying process killed mid-deploy; the host recovers by itself (web2)", function () {
  this.timeout(300_000);
  const stack = new EngineStack();
  let app: GitApp;
  let address: string;
  let sampler: VersionSampler;
  /** The release every case starts from and must get back to: the last verified one. */
  let good = "";
  let goodCommit = "";

  const file = (rel: string) => sh(HOST, `cat ${ROOT}/${SVC}/${rel} 2>/dev/null || true`);
  const lockHeld = async () => (await sh(HOST, `test -d ${ROOT}/${SVC}/.lock && echo held || echo free`)) === "held";
  const watchdogActive = () => sh(HOST, `systemctl is-active fleet-watchdog-${SVC} 2>/dev/null || true`);
  const lastLog = async () => (await deployLog(HOST, ROOT, SVC)).at(-1) ?? "";
  const recorded = async () => serviceReleases((await stack.exportState()).deployment)[`${SVC}-release`]?.outputs;

  /** Starts `pulumi up` on a new commit and SIGKILLs its whole tree while the release is in its gate. */
  async function killDuringGate(
    files: Record<string, string | null>,
  ): Promise<{ release: string; commit: string; killedAt: number }> {
    const commit = app.commit(`release ${Date.now()}`, files);
    const up = stack.startPulumi("up", "--yes", "--non-interactive");
    let gate = "";
    for (let i = 0; i < 1200 && !gate; i++) {
      if ((await served(address, PORT))?.commit === commit) {
        gate = await sh(HOST, `curl -s -o /dev/null -w '%{http_code}' http://${address}:${PORT}/api/health`);
      } else await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(gate, "500", "the new release answers and is still failing its gate");
    killTree(up.pgid);
    const r = await up.done;
    assert.equal(r.code, 128 + 9, outputOf(r));
    // The file backend's stack lock of the killed CLI: what a user clears with `pulumi cancel`.
    await stack.pulumi("cancel", "--yes", "--non-interactive");
    return { release: commit.slice(0, 12), commit, killedAt: Date.now() };
  }

  /** Waits, with no deployer running, for the host to serve `commit` again; returns how long it took. */
  async function servesAgain(commit: string, since: number): Promise<number> {
    const limit = since + watchdogDeadlineMs(HEALTH_TIMEOUT_MS) + REVERT_SLACK_MS;
    while (Date.now() < limit) {
      if ((await served(address, PORT))?.commit === commit && !(await lockHeld())) return Date.now() - since;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(
      `the host did not serve ${commit} again (lock released) within the watchdog's deadline + ${REVERT_SLACK_MS} ms`,
    );
  }

  /** Back to a verified `good` (a deploy of the last commit on top, when the case left the tip unhealthy). */
  async function settle(): Promise<void> {
    const r = await stack.npm("deploy", "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    good = (await currentRelease(HOST, ROOT, SVC))!;
    goodCommit = app.head();
    assert.equal((await file("verified")).trim(), good);
  }

  before(async function () {
    this.timeout(120_000);
    address = hostAddress(HOST);
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [SVC]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": {
        [SVC]: pyService({ hosts: [HOST], repo: app.dir, port: PORT, healthTimeout: `${HEALTH_TIMEOUT_MS / 1000}s` }),
      },
    });
    await stack.ok("up", "--yes", "--non-interactive");
    good = app.head().slice(0, 12);
    goodCommit = app.head();
    sampler = new VersionSampler(address, PORT);
  });
  after(async function () {
    this.timeout(120_000);
    await sampler?.stop();
    await stack.pulumi("cancel", "--yes", "--non-interactive").catch(() => undefined);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [SVC]).catch(() => undefined);
  });

  it("1, 5: a slow-but-healthy release killed in its gate: the host puts the old release back by itself and logs it", async () => {
    const killed = await killDuringGate({ "app.py": slowHealthApp(SLOW_MS) });
    const took = await servesAgain(goodCommit, killed.killedAt);
    console.log(`      (the host served ${good} again ${took} ms after the kill, with no deployer)`);
    assert.match(
      await lastLog(),
      new RegExp(` host-watchdog ${good} -> ${killed.release} reverted .*reverted by the host`),
    );
    assert.equal((await file("verified")).trim(), good, "the last verified release did not move");
    assert.equal(await currentRelease(HOST, ROOT, SVC), good);
    assert.notEqual(await watchdogActive(), "active");

    // The next deploy: no config change, and the last good release stays the rollback target.
    const r = await stack.npm("deploy", "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.equal((await served(address, PORT))?.commit, killed.commit);
    assert.match(await lastLog(), new RegExp(` ${good} -> ${killed.release} ok `));
    assert.equal((await file(".rollback/current")).trim(), `releases/${good}`);
    good = killed.release;
    goodCommit = killed.commit;
  });

  it("two crashes in a row: the last verified release survives both", async () => {
    const first = await killDuringGate({ "app.py": slowHealthApp(SLOW_MS), "n.txt": "1\n" });
    // The second attempt starts at once: its deploy takes over the first one's lock (its
    // connection is gone), puts the verified release back, and is killed in its gate too.
    const second = await killDuringGate({ "n.txt": "2\n" });
    await servesAgain(goodCommit, second.killedAt);
    const log = await deployLog(HOST, ROOT, SVC);
    assert.match(
      log.at(-2)!,
      new RegExp(` ${good} -> ${first.release} interrupted .*it had switched: ${good} restored`),
    );
    assert.match(log.at(-1)!, new RegExp(` host-watchdog ${good} -> ${second.release} reverted `));
    assert.equal((await file("verified")).trim(), good);
    assert.equal((await recorded())?.releaseId, good, "the state still records the verified release");
    await settle();
    assert.equal(good, second.release);
  });

  it("2: a broken release killed in its gate: the next deploy rolls back to the old release, not CRITICAL, every time", async () => {
    const broken = await killDuringGate({ "app.py": slowHealthApp(Infinity) });
    // At once, before the watchdog's deadline: the deploy takes the dead holder's lock over.
    for (const attempt of [1, 2]) {
      const r = await stack.npm("deploy", "--stack", stack.name);
      assert.equal(r.code, 4, `attempt ${attempt}: exit 4 (health failed, rolled back):\n${outputOf(r)}`);
      assert.doesNotMatch(outputOf(r), /CRITICAL/);
      assert.ok(outputOf(r).includes(`Rolled back automatically: ${good} is serving and healthy again.`), outputOf(r));
      assert.equal((await served(address, PORT))?.commit, goodCommit, `attempt ${attempt}`);
      assert.equal((await file("verified")).trim(), good);
    }
    const log = await deployLog(HOST, ROOT, SVC);
    assert.ok(
      log.some((l) => new RegExp(` ${good} -> ${broken.release} interrupted `).test(l)),
      `the killed attempt has its line:\n${log.join("\n")}`,
    );
    assert.match(log.at(-1)!, new RegExp(` ${good} -> ${broken.release} rolled-back `));
  });

  it("3: a refresh after the crash reports the old release as deployed (the broken one as live); the next up runs the gate", async () => {
    // The tip is still the broken release: deploy it again and kill that attempt in its gate.
    const broken = await killDuringGate({ "x.txt": `${Date.now()}\n` });
    const refresh = await stack.pulumi("refresh", "--yes", "--skip-preview", "--non-interactive");
    assert.equal(refresh.code, 0, outputOf(refresh));
    const outputs = await recorded();
    assert.equal(outputs?.releaseId, good, "deployed: the verified release");
    assert.equal(outputs?.live?.release, broken.release, "live: what the crashed deploy left in current");
    const up = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.notEqual(
      up.code,
      0,
      `the up after the refresh is no no-op: the broken release fails its gate\n${outputOf(up)}`,
    );
    assert.ok(
      outputOf(up).includes(`release ${broken.release} (commit ${broken.commit}) failed its health gate`),
      outputOf(up),
    );
    assert.equal((await served(address, PORT))?.commit, goodCommit);
  });

  it("4: a destroy after the crash stops the watchdog, takes the lock over and removes everything", async () => {
    await killDuringGate({ "y.txt": `${Date.now()}\n` });
    assert.ok(await lockHeld(), "the killed deploy's lock is left");
    assert.equal(await watchdogActive(), "active", "its watchdog waits");
    const r = await stack.pulumi("destroy", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.equal(await sh(HOST, `test -e ${ROOT}/${SVC} && echo present || echo absent`), "absent");
    assert.equal(await sh(HOST, `test -e /etc/systemd/system/${SVC}.service && echo present || echo absent`), "absent");
    assert.notEqual(await watchdogActive(), "active");
    assert.equal(await served(address, PORT), undefined, "nothing serves");
  });

  it("throughout, only the releases that were serving or being deployed answered", async () => {
    await sampler.stop();
    const answered = new Set(sampler.samples.map((s) => s.commit).filter((c): c is string => c !== undefined));
    const known = new Set(app.git("log", "--format=%H").split("\n"));
    for (const c of answered) assert.ok(known.has(c), `${c} answered: not a commit of this service`);
    assert.ok(sampler.samples.length > 100, `sampled ${sampler.samples.length} times`);
  });
});
