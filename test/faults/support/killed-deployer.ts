/**
 * Fault 6 (issue #17, "magic rollback"): the deployer is killed. The provider host process that
 * drives the deploy (what `pulumi up` runs fleet's provider in) gets SIGKILL at the phase's sync
 * point; once its connection is gone on the host, the gate is released so that the orphaned
 * remote step goes on as it would. Then, with no deployer at all, the host must serve the old
 * release within the watchdog's deadline (decisions/watchdog.ts) plus a slack, from the kill:
 * - after the switch (switch, restart, health), the host's watchdog reverts by itself: deploy.log's
 *   last line is its `reverted` line, no lock is left;
 * - before it (upload, install, build, migrate), nothing was switched: the old release serves
 *   throughout, no watchdog runs, and the lock left names its holder and its presence, which
 *   has ended; the next run takes it over (an `interrupted` line for the killed attempt);
 * - in the backup phase the service's deploy never started: no service lock, no deploy.log line.
 * runCell then asserts the rest (Read matches the host, the next plain up() converges, only the
 * old or the new release answered outside the restart windows).
 */
import { strict as assert } from "assert";
import { watchdogDeadlineMs } from "../../../decisions/watchdog";
import type { CellContext, CellPlan } from "./cell";
import { ended, go, killDeployer, presenceRuns, type GatePoint } from "./inject";
import { note, type Phase } from "./matrix";
import { sleep } from "./servers";
import type { FaultStack } from "./stack";

/** The family's health timeout: small, so that each cell waits little for the watchdog. */
export const KILLED_HEALTH_TIMEOUT = "4s";
const HEALTH_TIMEOUT_MS = 4000;
/** From the switch, how long the host waits for a decision (health timeout + 20 s). */
const DEADLINE_MS = watchdogDeadlineMs(HEALTH_TIMEOUT_MS);
/** After the deadline: the watchdog's restart and probe of the old release, and our look at it. */
const SLACK_MS = 10_000;
/** The phases whose interrupted step has switched already: the watchdog runs. */
const SWITCHED: ReadonlySet<Phase> = new Set<Phase>(["switch", "restart", "health"]);

const PROVIDER_DIED = /provider host exited \(code null, signal SIGKILL\) during update/;

function presenceOf(lock: string | undefined): string | undefined {
  return lock === undefined ? undefined : /^presence=(\d+ \d+)$/m.exec(lock)?.[1];
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Polls `check` until it holds or `by` (ms since the epoch) passes; true if it held. */
async function until(by: number, check: () => Promise<boolean>, everyMs = 200): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() > by) return false;
    await sleep(everyMs);
  }
}

export function killedDeployerPlan(phase: Phase, point: GatePoint, files: Record<string, string> = {}): CellPlan {
  const log = (line: string) => note(phase, "deployer-killed", line);
  /** What the killed deploy left, read right after the kill. */
  let killedAt = 0;
  let auditAtKill = 0;
  let lockAtKill: string | undefined;

  /** Nothing but the old release answered, and it never stopped answering. */
  const oldServedThroughout = (ctx: CellContext, when: string) => {
    const seen = ctx.sampler.snapshot();
    assert.deepEqual(seen.releases, [ctx.oldRelease], `only the old release answered ${when}`);
    assert.deepEqual(seen.gaps, [], `the old release answered every probe ${when}`);
  };

  /** Service phases: the deployer's presence ends with its connection; then the orphan goes on. */
  const releaseOrphan = async (ctx: CellContext) => {
    const presence = presenceOf(lockAtKill);
    assert.ok(
      presence,
      `the killed deploy's lock records the deployer's presence on the host:\n${lockAtKill ?? "(no lock)"}`,
    );
    const gone = await until(Date.now() + 10_000, async () => !(await presenceRuns(ctx.server, presence)), 100);
    assert.ok(gone, `the deployer's presence (${presence}) still runs 10 s after the deployer was killed`);
    log(
      `the deployer's presence on the host (pid and start time ${presence}) ended ${Date.now() - killedAt} ms after the kill`,
    );
    await go(ctx.server, ctx.point);
  };

  /** After the switch: the watchdog reverts within its deadline + the slack, with nobody deploying. */
  const watchdogReverts = async (ctx: CellContext) => {
    const st = ctx.stack;
    const reverted = new RegExp(
      `^\\S+ host-watchdog ${escaped(ctx.oldRelease)} -> ${escaped(ctx.newRelease)} reverted \\d+\\.\\d{3}s reverted by the host: `,
    );
    const by = killedAt + DEADLINE_MS + SLACK_MS;
    const done = await until(
      by,
      async () => reverted.test(await st.lastAudit()) && (await st.live()).lock === undefined,
    );
    const seenAt = Date.now();
    if (!done) {
      assert.fail(
        `${DEADLINE_MS + SLACK_MS} ms after the deployer was killed, the host's watchdog had not reverted ` +
          `(deploy.log's last line is not its reverted line, or a lock is left):\n${await st.watchdogReport()}`,
      );
    }
    ctx.hostRestart(killedAt, seenAt);
    log(`served until the revert: ${ctx.sampler.snapshot().releases.join(", ")}`);
    log(
      `the host's watchdog reverted ${seenAt - killedAt} ms after the kill (deadline ${DEADLINE_MS} ms from the switch): ${await st.lastAudit()}`,
    );
    const served = await st.served();
    assert.equal(served?.release, ctx.oldRelease, "once the watchdog reverted, the old release serves");
    const live = await st.live();
    assert.equal(live.current, ctx.oldRelease, "the watchdog put `current` back to the old release");
    assert.equal(live.lock, undefined, "the watchdog released the lock");
    assert.ok(
      await until(Date.now() + 5000, async () => !(await st.watchdogActive())),
      `the watchdog unit still runs 5 s after its reverted line:\n${await st.watchdogReport()}`,
    );
  };

  /** Before the switch: through the whole deadline, nothing acts on what the killed deploy left. */
  const nothingActs = async (ctx: CellContext) => {
    const st = ctx.stack;
    const wait = killedAt + DEADLINE_MS + 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    const live = await st.live();
    log(`${Date.now() - killedAt} ms after the kill (the watchdog's deadline is ${DEADLINE_MS} ms): nothing changed`);
    assert.equal(live.current, ctx.oldRelease, "nothing was switched: `current` is the old release");
    assert.equal(live.servedRelease, ctx.oldRelease, "the old release serves");
    assert.equal(
      live.lock,
      lockAtKill,
      "the lock the killed deploy took is left as it was (the next run takes it over)",
    );
    assert.notEqual(
      (await ctx.server.exec(`test -e ${st.dir}/.lock/switched`)).code,
      0,
      "the lock says nothing was switched",
    );
    assert.ok(!(await st.watchdogActive()), "no watchdog runs: the killed deploy never reached the switch");
    assert.equal((await st.audit()).length, auditAtKill, "nobody wrote a deploy.log line");
    oldServedThroughout(ctx, "from the deploy's start to the watchdog's deadline after the kill");
  };

  /** The backup phase: the backup resource's provider died; the service's deploy never started. */
  const backupOrphan = async (ctx: CellContext) => {
    const st = ctx.stack;
    assert.equal(lockAtKill, undefined, "the service's deploy never started: it took no lock");
    await go(ctx.server, ctx.point);
    assert.ok(await ended(ctx.server, ctx.gatePid), "the orphaned pg_dump's gate returned");
    const lockFree = await until(
      Date.now() + 15_000,
      async () => (await ctx.server.exec(`flock -n ${st.backupsDir}/.lock true`)).code === 0,
    );
    assert.ok(lockFree, "the backup set's lock is free within 15 s of the orphaned backup going on");
    log(`the orphaned backup let go of the backup set's lock ${Date.now() - killedAt} ms after the kill`);
    const live = await st.live();
    assert.equal(live.current, ctx.oldRelease, "the service was not touched: `current` is the old release");
    assert.equal(live.servedRelease, ctx.oldRelease, "the old release serves");
    assert.equal(live.lock, undefined, "no service lock");
    assert.ok(!(await st.watchdogActive()), "no watchdog runs");
    assert.equal((await st.audit()).length, auditAtKill, "nobody wrote a deploy.log line");
    oldServedThroughout(ctx, "while the killed deploy's backup was orphaned");
  };

  return {
    phase,
    fault: "deployer-killed",
    point,
    mode: "wait",
    files,
    freshDeployer: true,
    inject: async (ctx) => {
      killedAt = Date.now();
      const exit = await killDeployer(ctx.deployer);
      auditAtKill = (await ctx.stack.audit()).length;
      lockAtKill = (await ctx.stack.live()).lock;
      return (
        `SIGKILL of the provider host driving the deploy (pid ${ctx.deployer.pid}; it exited by ${exit.signal}); ` +
        `the gate goes on once the deployer's connection is gone on the host`
      );
    },
    recover: async (ctx) => {
      if (phase === "backup") return backupOrphan(ctx);
      await releaseOrphan(ctx);
      await (SWITCHED.has(phase) ? watchdogReverts(ctx) : nothingActs(ctx));
    },
    names: PROVIDER_DIED,
    namesWhat: "the deploy failed with its provider host's death (the engine's error: fleet was killed)",
    evidence: /signal SIGKILL/,
    afterFault: async (st: FaultStack, err: Error | undefined, newRelease: string) => {
      assert.ok(err, "the deploy whose provider host was killed failed");
      assert.equal(err.name, "ProviderHostError", "the deploy failed because its provider host died");
      if (phase === "backup" || SWITCHED.has(phase)) return;
      const lock = (await st.live()).lock ?? "";
      assert.match(
        lock,
        new RegExp(`^release=${escaped(newRelease)}$`, "m"),
        "the lock left names the killed attempt's release",
      );
      const presence = presenceOf(lock);
      assert.ok(presence && !(await presenceRuns(st.o.server, presence)), "the presence the lock names no longer runs");
    },
    afterConverged: async (_st, r) => {
      const from = escaped(r.oldRelease);
      const to = escaped(r.newRelease);
      const holder = escaped(/^who=(.*)$/m.exec(lockAtKill ?? "")?.[1] ?? "?");
      const ok = { what: "the next run's ok", re: new RegExp(`^\\S+ \\S+ ${from} -> ${to} ok \\d+\\.\\d{3}s`) };
      const before =
        phase === "backup"
          ? [] // the killed run never reached the service
          : SWITCHED.has(phase)
            ? [{ what: "the watchdog's reverted", re: new RegExp(`^\\S+ host-watchdog ${from} -> ${to} reverted `) }]
            : [
                {
                  what: "the takeover's interrupted",
                  re: new RegExp(
                    `^\\S+ ${holder} ${from} -> ${to} interrupted \\d+\\.\\d{3}s ` +
                      `the deploying side was gone \\(its connection ended\\) before it finished; found by \\S+$`,
                  ),
                },
              ];
      const expected = [...before, ok];
      const added = r.added.join("\n");
      const want = expected.map((e) => e.what).join(", ");
      assert.equal(
        r.added.length,
        expected.length,
        `deploy.log should have got ${want} during the cell; it got:\n${added}`,
      );
      expected.forEach((e, i) =>
        assert.match(r.added[i] ?? "", e.re, `deploy.log's line ${i + 1} of the cell is ${e.what}:\n${added}`),
      );
      log(`deploy.log during the cell: ${r.added.map((l) => l.split(" ").slice(1, 6).join(" ")).join(" | ")}`);
    },
  };
}
