/**
 * One cell of the matrix, end to end: a new release, the sync point armed, the deploy started,
 * the fault injected when the deploy is inside the phase, the fault removed once the deploy has
 * ended, then every invariant of issue #10 asserted against the server, and a plain `up()` of
 * the same inputs that must converge.
 */
import { strict as assert } from "assert";
import { ProviderHost, type Props } from "../../support/provider-host";
import { alive, arm, arrived, disarm, ended, type GateMode, type GatePoint } from "./inject";
import { note, type Fault, type Phase } from "./matrix";
import type { Server } from "./servers";
import { ServeSampler, type FaultStack, type Live } from "./stack";

/**
 * The restart window: the app may serve nothing only while a deploy runs (its restart, or the
 * stop → database restore → start of a rollback with `restoreOnRollback`), and must serve again
 * within this long after that deploy ended. Measured against the deploys, not as a fixed time,
 * so that a loaded machine does not turn a slow restore into a failure, while a gap fleet leaves
 * behind (or one an orphaned script causes later) still is one.
 */
export const AFTER_DEPLOY_GRACE_MS = 3000;

export interface CellContext {
  readonly stack: FaultStack;
  readonly server: Server;
  readonly sampler: ServeSampler;
  /** The process that reached the sync point. */
  readonly gatePid: number;
  readonly point: GatePoint;
  /** The release that served before the cell, and the one its deploy brings. */
  readonly oldRelease: string;
  readonly newRelease: string;
  /** The provider host driving the faulty deploy (the cell's own with `freshDeployer`). */
  readonly deployer: ProviderHost;
  /**
   * A restart the host made on its own after the deploy ended (its watchdog's revert, an
   * orphaned step's restart), from `from` until the cell saw it done: serving nothing inside it
   * (plus the grace) is a restart window too.
   */
  readonly hostRestart: (from: number, to: number) => void;
}

export interface CellPlan {
  readonly phase: Phase;
  readonly fault: Fault;
  readonly point: GatePoint;
  readonly mode: GateMode;
  /** Files the cell's commit changes (requirements.txt makes the install run). */
  readonly files?: Record<string, string | null>;
  /** The fault, injected once a process is at the sync point; returns what it did, for the report. */
  readonly inject: (ctx: CellContext) => Promise<string>;
  /** The fault goes away (after the deploy has ended): the gate released, the server started, the disk freed. */
  readonly recover: (ctx: CellContext) => Promise<void>;
  /** How fleet's message must name the phase (or, with no fleet left to say it, what ended the deploy). */
  readonly names: RegExp;
  /** What `names` checks, for the assertion's message (default: that the error names the phase). */
  readonly namesWhat?: string;
  /** The evidence the message must carry (exit code, output tail, timeout, connection loss). */
  readonly evidence: RegExp;
  /**
   * The deploy runs through a provider host of its own, started for it (the process the fault
   * kills); the stack goes back to its family's host once that deploy has ended.
   */
  readonly freshDeployer?: boolean;
  /** The server itself went down: its processes are gone, pids mean nothing after the boot. */
  readonly serverRestarts?: boolean;
  /**
   * The interrupted script must be stopped by fleet itself by the time the deploy ends (not by
   * the gate being released): a script orphaned by a lost connection must not act afterwards.
   */
  readonly expectStopped?: boolean;
  /** Assertions of the cell's own, after the fault and before the next up(). */
  readonly afterFault?: (stack: FaultStack, err: Error | undefined, newRelease: string) => Promise<void>;
  /** Assertions of the cell's own after the next up() converged; `added`: the deploy.log lines the cell wrote. */
  readonly afterConverged?: (
    stack: FaultStack,
    r: { oldRelease: string; newRelease: string; added: string[] },
  ) => Promise<void>;
}

function head(text: string, lines = 4): string {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .slice(0, lines)
    .join(" ⏎ ");
}

/** Overlapping windows as one (a host restart that began inside the deploy's own window). */
function merged(windows: { from: number; to: number }[]): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const w of [...windows].sort((a, b) => a.from - b.from)) {
    const last = out[out.length - 1];
    if (last && w.from <= last.to) last.to = Math.max(last.to, w.to);
    else out.push({ ...w });
  }
  return out;
}

function lockSummary(live: Live): string {
  return live.lock === undefined ? "no lock left" : `lock left: ${live.lock.replace(/\n/g, " ")}`;
}

function consistent(live: Live, recorded: string): boolean {
  return (
    live.current === recorded &&
    live.runningRelease === recorded &&
    live.servedRelease === recorded &&
    live.envRelease === recorded &&
    live.lock === undefined
  );
}

/**
 * Cells share their family's stack; one that failed may have left it broken. Then the next cell
 * starts with one up() of the last inputs (and says so), so that each cell judges its own fault.
 */
async function ensureConverged(stack: FaultStack, log: (line: string) => void): Promise<void> {
  const recorded = stack.recordedRelease();
  const live = await stack.live();
  if (consistent(live, recorded)) return;
  log(
    `an earlier cell left the stack inconsistent (recorded ${recorded}, current ${live.current}, process runs ${live.runningRelease || "none"}, ` +
      `served ${live.servedRelease}, env ${live.envRelease}, ${lockSummary(live)}): one up() of its inputs first`,
  );
  try {
    await stack.up();
  } catch (e) {
    throw new Error(
      `an earlier cell broke this family and an up() did not repair it: ${head((e as Error).message, 6)}`,
    );
  }
  const again = await stack.live();
  if (!consistent(again, stack.recordedRelease()))
    throw new Error(
      `an earlier cell broke this family and an up() did not repair it (current ${again.current}, process runs ${again.runningRelease || "none"})`,
    );
}

export async function runCell(stack: FaultStack, plan: CellPlan): Promise<string> {
  const { phase, fault } = plan;
  const server = stack.o.server;
  const log = (line: string) => note(phase, fault, line);
  await ensureConverged(stack, log);
  const oldRelease = stack.recordedRelease();
  assert.ok(oldRelease, "the family's good release is deployed before its cells run");
  const newCommit = stack.newRelease(`${phase}-${fault}`, plan.files ?? {});
  const newRelease = String(stack.serviceProps()["releaseId"]);
  log(`old release ${oldRelease}, new release ${newRelease}`);

  const family = stack.host;
  const deployer = plan.freshDeployer ? await ProviderHost.start() : family;
  await arm(server, plan.point, plan.mode);
  const sampler = new ServeSampler(stack);
  try {
    return await judged(stack, plan, sampler, { oldRelease, newRelease, newCommit, deployer });
  } finally {
    await sampler.stop();
    await disarm(server);
    stack.rebind(family);
    if (deployer !== family) await deployer.stop();
  }
}

async function judged(
  stack: FaultStack,
  plan: CellPlan,
  sampler: ServeSampler,
  r: { oldRelease: string; newRelease: string; newCommit: string; deployer: ProviderHost },
): Promise<string> {
  const { phase, fault } = plan;
  const { oldRelease, newRelease, newCommit, deployer } = r;
  const server = stack.o.server;
  const log = (line: string) => note(phase, fault, line);
  const auditBefore = (await stack.audit()).length;
  const family = stack.host;
  const hostRestarts: { from: number; to: number }[] = [];
  const t0 = Date.now();
  stack.rebind(deployer);
  const deploy = stack.up();
  deploy.catch(() => undefined);
  const gatePid = await arrived(server, plan.point, deploy);
  const ctx: CellContext = {
    stack,
    server,
    sampler,
    gatePid,
    point: plan.point,
    oldRelease,
    newRelease,
    deployer,
    hostRestart: (from, to) => void hostRestarts.push({ from, to }),
  };
  log(`sync point "${plan.point}" (${plan.mode}) reached by pid ${gatePid} after ${Date.now() - t0} ms`);
  log(`fault: ${await plan.inject(ctx)}`);
  const err = await deploy.then(
    () => undefined,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  const deployEnded = Date.now();
  // Everything after the faulty deploy (Read, the next up()) goes through the family's host.
  stack.rebind(family);
  log(`the deploy ended after ${Date.now() - t0} ms: ${err ? `failed: ${head(err.message, 8)}` : "succeeded"}`);
  if (!plan.serverRestarts) {
    const lingering = await alive(server, gatePid);
    log(
      lingering
        ? `the interrupted ${plan.point} step still ran when the deploy ended`
        : `the interrupted ${plan.point} step was stopped by fleet by the time the deploy ended`,
    );
    if (plan.expectStopped) assert.ok(!lingering, `fleet left the interrupted ${plan.point} step running (an orphan)`);
  }
  await plan.recover(ctx);
  await disarm(server);

  // No process of the interrupted step lingers (an orphan could act after fleet gave up).
  if (!plan.serverRestarts) {
    const t = Date.now();
    assert.ok(
      await ended(server, gatePid),
      `the ${plan.point} step's process (pid ${gatePid}) still runs after the deploy ended`,
    );
    log(`no process of the step is left (checked ${Date.now() - t} ms after the fault was gone)`);
  }

  // 1. The server serves the old or the new release.
  const served = await stack.servedWithin(15_000);
  assert.ok(served, "the server serves nothing after the fault (waited 15 s)");
  assert.ok(
    [oldRelease, newRelease].includes(served.release),
    `the server serves ${served.release}, neither the old (${oldRelease}) nor the new (${newRelease}) release`,
  );

  // 2. What fleet reports matches the server.
  const live = await stack.live();
  const read = await stack.read();
  assert.ok(read, "a refresh (Read) finds the service");
  log(
    `after the fault: current=${live.current}, process runs ${live.runningRelease}, app reports ${live.servedRelease}, env=${live.envRelease}, unit ${live.active}; ` +
      `recorded state ${stack.recordedRelease()}, refresh says ${String(read["releaseId"])}; ${lockSummary(live)}`,
  );
  assert.equal(live.runningRelease, live.current, "the unit's process runs from the release `current` points at");
  assert.equal(live.servedRelease, live.current, "the running app reports the release `current` points at");
  assert.equal(
    live.envRelease,
    live.current,
    "the env file (what a restart would run) belongs to the `current` release",
  );
  // A refresh reports as deployed only the last release a confirmed gate passed, and what
  // `current` points at as live: a release the deploy left unconfirmed shows as drift.
  const readLive = read["live"] as { release?: string } | undefined;
  assert.equal(readLive?.release, live.current, "a refresh reports the release `current` points at as live");
  assert.ok(
    [oldRelease, newRelease].includes(String(read["releaseId"])),
    `a refresh reports the old or the new release as deployed, not ${String(read["releaseId"])}`,
  );
  assert.equal(read["releaseId"], live.verified, "a refresh reports the host's verified release as deployed");
  if (read["releaseId"] === live.current)
    assert.equal(read["commit"], live.revision, "a refresh reports the commit of that release");
  if (stack.recordedRelease() !== live.current) {
    assert.ok(err, "the deploy succeeded but its recorded state is not what the server runs");
    assert.match(
      err.message,
      /CRITICAL/,
      `the recorded state says ${stack.recordedRelease()} but the server runs ${live.current}, and the error did not say the outcome is uncertain`,
    );
  }

  // 3. No lock blocks the next run, or the one left names its holder.
  if (live.lock !== undefined) {
    for (const field of [/^who=\S+@\S+$/m, /^pid=\d+$/m, /^since=\S+$/m, /^token=[0-9a-f]+$/m]) {
      assert.match(live.lock, field, `the lock left behind names its holder (${field.source})`);
    }
  }

  // 4. The error names the phase and carries the evidence.
  if (err) {
    assert.match(err.message, plan.names, plan.namesWhat ?? `the error names the ${phase} phase`);
    assert.match(err.message, plan.evidence, "the error carries the evidence");
  }

  await plan.afterFault?.(stack, err, newRelease);

  // 5. A plain up() of the same inputs converges.
  const t1 = Date.now();
  let out: Props;
  try {
    out = await stack.up();
  } catch (e) {
    throw new assert.AssertionError({ message: `the next up() did not converge: ${head((e as Error).message, 12)}` });
  }
  const t2 = Date.now();
  log(`the next up() converged in ${t2 - t1} ms`);
  assert.equal(out["releaseId"], newRelease, "the next up() records the new release");
  const after = await stack.live();
  assert.equal(after.current, newRelease, "after the next up(), `current` is the new release");
  assert.equal(after.runningRelease, newRelease, "after the next up(), the process runs the new release");
  assert.equal(after.servedRelease, newRelease, "after the next up(), the app serves the new release");
  assert.equal(after.servedCommit, newCommit, "after the next up(), the app reports the new commit");
  assert.equal(after.envRelease, newRelease, "after the next up(), the env file is the new release's");
  assert.equal(after.lock, undefined, "after the next up(), no lock is left");
  assert.equal(
    (await server.exec(`test -s ${stack.dir}/current/build.txt`)).code,
    0,
    "the release that serves was built (build.txt)",
  );
  assert.ok((await stack.migrations()).includes(newRelease), "the serving release's migration is in the database");
  const refreshed = await stack.service.refresh();
  assert.equal(refreshed?.plainOutputs["releaseId"], newRelease, "a refresh after convergence agrees");
  const added = (await stack.audit()).slice(auditBefore);
  // A lock whose holder is provably gone is taken over in the next run's own script (logged as interrupted).
  const takenOver = added.some((l) => l.includes(` -> ${newRelease} interrupted `));
  await plan.afterConverged?.(stack, { oldRelease, newRelease, added });

  const sampled = await sampler.stop();
  log(
    `served during the cell: ${sampled.releases.join(", ")}; longest outage ${sampled.longestGapMs} ms` +
      ` (the failed deploy took ${deployEnded - t0} ms, the next one ${t2 - t1} ms)`,
  );
  for (const r of sampled.releases) {
    assert.ok([oldRelease, newRelease].includes(r), `the server served ${r}, neither the old nor the new release`);
  }
  const windows = merged([{ from: t0, to: deployEnded }, ...hostRestarts, { from: t1, to: t2 }]);
  for (const g of sampled.gaps) {
    const w = windows.find((x) => g.from >= x.from - 200 && g.to <= x.to + AFTER_DEPLOY_GRACE_MS);
    assert.ok(
      w,
      `the server served nothing for ${g.to - g.from} ms from ${g.from - t0} ms into the cell, outside a deploy's ` +
        `restart window (failed deploy: 0–${deployEnded - t0} ms, ` +
        hostRestarts.map((w) => `the host's own restart: ${w.from - t0}–${w.to - t0} ms, `).join("") +
        `next up(): ${t1 - t0}–${t2 - t0} ms, ` +
        `+${AFTER_DEPLOY_GRACE_MS} ms grace)`,
    );
  }
  log(`error: ${err ? err.message.split("\n")[0] : "none: the deploy absorbed the fault"}`);
  const lockText =
    live.lock === undefined
      ? "no lock"
      : takenOver
        ? "stale lock (taken over by the next run)"
        : "stale lock (broken by the next run)";
  return `${err ? "failed" : "absorbed"} → ${live.current === newRelease ? "new" : "old"}, ${lockText}, gap ${(sampled.longestGapMs / 1000).toFixed(1)} s`;
}
