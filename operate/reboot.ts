/**
 * `npm run reboot` (issue 20): a rolling reboot. Every host is read first (its boot, its
 * services' deploy locks); any refusal reboots nothing. Then batch by batch: take every deploy
 * lock on the batch's hosts (all or none: a deploy that started since is a refusal), reboot, wait
 * for a new boot over a new SSH connection, then for each service's health gate, all within the
 * wait, then release the locks (whatever happened); a host that does not come back stops the run
 * before the next batch.
 */
import * as crypto from "crypto";
import * as os from "os";
import {
  bootScript,
  probedHealth,
  rebootHealthScript,
  rebootLockScript,
  rebootLocksReadScript,
  rebootRelockScript,
  rebootScript,
  rebootUnlockScript,
  type BootHold,
  type RebootHealthTarget,
  type RebootLockTarget,
} from "../commands/reboot";
import { decodeBase64, parseFacts } from "../commands/facts";
import { EXIT, type LockOwner } from "../commands/service";
import { statusScript } from "../commands/status";
import {
  backVerdict,
  rebootBatches,
  rebootRefusals,
  type BackVerdict,
  type BootIdentity,
  type HostReadiness,
  type ServiceHealthObservation,
  type SshObservation,
  type Waiting,
} from "../decisions/reboot";
import { isFleetError } from "../model/errors";
import { judge } from "../providers/service/gate";
import { healthSpec } from "../source/plan";
import type { SshConnection } from "../transport/connection";
import { exitError } from "../transport/errors";
import { redact } from "../transport/redact";
import { connectionKey, exec, presence, runScript, transportStats } from "../transport/ssh";
import { operatorConnection, placementsOf, servicesOn, type OperatorConfig } from "./targets";

export interface RebootRun {
  readonly hosts: readonly string[];
  readonly batch: number;
  readonly waitMs: number;
  /** The wait as the user wrote it, for messages. */
  readonly wait: string;
  /** Progress lines (redacted here). */
  readonly print: (line: string) => void;
}

export type RebootOutcome =
  | { readonly kind: "done" }
  | {
      readonly kind: "refused";
      readonly problems: readonly string[];
      /** Hosts rebooted before the refusal (a batch's locks were taken when it came). */
      readonly rebooted: readonly string[];
      readonly untouched: readonly string[];
    }
  | {
      readonly kind: "stopped";
      readonly notBack: readonly { readonly host: string; readonly waitingFor: Waiting }[];
      readonly untouched: readonly string[];
    }
  | { readonly kind: "failed"; readonly host: string; readonly error: string; readonly untouched: readonly string[] };

/** A host ready to reboot: its connection, its boot before, the services to wait for. */
interface Prepared {
  readonly host: string;
  readonly conn: SshConnection;
  readonly boot: BootIdentity;
  readonly services: readonly RebootHealthTarget[];
  readonly notDeployed: readonly string[];
  /** Every service's deploy lock on it, deployed or not (a first deploy waits too). */
  readonly locks: readonly RebootLockTarget[];
}

const POLL_MS = 1000;
const LOOK_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const firstLine = (err: unknown) => (err as Error).message.split("\n")[0]!;

function targetsOn(op: OperatorConfig, host: string): RebootHealthTarget[] {
  return servicesOn(op.cfg, host).map((service) => {
    const p = placementsOf(op.cfg, service, [host])[0]!;
    return {
      root: p.root,
      service,
      unitName: p.unitName,
      health: healthSpec(op.cfg.services[service]!.health, `services.${service}`),
      proxied: p.proxied,
    };
  });
}

/** Reads one host: its boot, and each service's lock and whether it is deployed there. */
async function prepare(op: OperatorConfig, host: string): Promise<{ readiness: HostReadiness; prepared?: Prepared }> {
  let conn: SshConnection;
  try {
    conn = operatorConnection(op, host);
  } catch (err) {
    if (isFleetError(err) && err.kind === "config") return { readiness: { host, problem: err.summary, locked: [] } };
    throw err;
  }
  try {
    const boot = await look(conn, LOOK_TIMEOUT_MS);
    if (!boot.ok) return { readiness: { host, problem: `unreachable: ${boot.error}`, locked: [] } };
    const services: RebootHealthTarget[] = [];
    const notDeployed: string[] = [];
    const targets = targetsOn(op, host);
    for (const t of targets) {
      const r = await exec(conn, "/bin/sh -s", {
        step: "reboot-status",
        stdin: statusScript({
          root: t.root,
          name: t.service,
          unitName: t.unitName,
          healthUrl: t.health.url,
          ...(t.proxied ? { proxied: true } : {}),
        }),
        timeoutMs: 20_000,
        secrets: op.secrets,
      });
      const f = parseFacts(r.stdout).one;
      if (f["deployed"] !== "1") notDeployed.push(t.service);
      else services.push(t);
    }
    const locks = targets.map(({ root, service, unitName }) => ({ root, service, unitName }));
    const held = await exec(conn, "/bin/sh -s", {
      step: "reboot-locks",
      stdin: rebootLocksReadScript(locks),
      timeoutMs: 20_000,
      secrets: op.secrets,
    });
    const locked = (parseFacts(held.stdout).all["held"] ?? []).map((line) => {
      const [service = "", holder] = line.split(" ");
      return { service, holder: decodeBase64(holder).trim() };
    });
    return { readiness: { host, locked }, prepared: { host, conn, boot: boot.boot, services, notDeployed, locks } };
  } catch (err) {
    return { readiness: { host, problem: `could not be read: ${firstLine(err)}`, locked: [] } };
  }
}

/** Who the reboot is in the locks it takes: a deploy's owner, release `reboot`; one token per run. */
function rebootOwner(): LockOwner {
  return {
    who: `${os.userInfo().username}@${os.hostname()}`,
    machine: os.hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    release: "reboot",
    token: crypto.randomBytes(8).toString("hex"),
  };
}

const sayFor = (run: RebootRun, host: string, secrets: readonly string[]) => (line: string) =>
  run.print(redact(`${host}: ${line}`, secrets));

/**
 * Takes every deploy lock on the host for the reboot (all or none), naming this process's
 * presence there. A lock someone else holds: the host's refusal (nothing taken); a failure throws.
 */
async function lockHost(
  p: Prepared,
  owner: LockOwner,
  run: RebootRun,
  secrets: readonly string[],
): Promise<HostReadiness | undefined> {
  if (p.locks.length === 0) return undefined;
  const here = await presence(p.conn).catch(() => undefined);
  const script = rebootLockScript(p.locks, { ...owner, ...(here ? { presence: here } : {}) });
  const r = await runScript(p.conn, script, { step: "reboot-lock", timeoutMs: 30_000, secrets }, false);
  const f = parseFacts(r.stdout);
  if (r.code === EXIT.locked)
    return {
      host: p.host,
      locked: [{ service: f.one["held"] ?? "?", holder: decodeBase64(f.one["held_by"]).trim() }],
    };
  if (r.code !== 0) throw exitError(connectionKey(p.conn), "reboot-lock", "/bin/sh -s (reboot-lock)", r, secrets);
  const say = sayFor(run, p.host, secrets);
  for (const s of f.all["took_over"] ?? []) say(`took over ${s}'s deploy lock from a reboot that is gone`);
  say(`holding the deploy locks of ${(f.all["took"] ?? []).join(", ")}`);
  return undefined;
}

/** Once the host is back: the locks name this process's presence on the new boot; the boot hold ends. */
async function relockHost(p: Prepared, hold: BootHold, run: RebootRun, secrets: readonly string[]): Promise<void> {
  const say = sayFor(run, p.host, secrets);
  try {
    const here = await presence(p.conn).catch(() => undefined);
    const step = { step: "reboot-relock", timeoutMs: 30_000, secrets };
    const r = await runScript(p.conn, rebootRelockScript(hold, here), step, false);
    if (r.code !== 0) throw exitError(connectionKey(p.conn), "reboot-relock", "/bin/sh -s (reboot-relock)", r, secrets);
    const lost = parseFacts(r.stdout).all["lost"] ?? [];
    if (lost.length > 0)
      say(`the deploy locks of ${lost.join(", ")} are no longer this reboot's: taken over while it booted`);
    if (!here) say("no presence on the new boot: the boot hold keeps the deploy locks until they are released");
  } catch (err) {
    say(`could not name this run in its deploy locks again (${firstLine(err)}): the boot hold keeps them`);
  }
}

/** Releases the reboot's locks on the host (only its own) and ends the boot hold; never throws. */
async function unlockHost(p: Prepared, hold: BootHold, run: RebootRun, secrets: readonly string[]): Promise<void> {
  if (hold.targets.length === 0) return;
  const say = sayFor(run, p.host, secrets);
  try {
    const step = { step: "reboot-unlock", timeoutMs: 30_000, secrets };
    const r = await runScript(p.conn, rebootUnlockScript(hold), step, false);
    if (r.code !== 0) throw exitError(connectionKey(p.conn), "reboot-unlock", "/bin/sh -s (reboot-unlock)", r, secrets);
    const released = parseFacts(r.stdout).all["released"] ?? [];
    if (released.length > 0) say(`released the deploy locks of ${released.join(", ")}`);
  } catch (err) {
    say(
      `could not release its deploy locks (${firstLine(err)}): a deploy takes them over once this run has ended, ` +
        `and a boot after the wait (${run.wait}) releases them`,
    );
  }
}

/** One look at the host's boot over SSH (a new connection once the pool has dropped the dead one). */
async function look(conn: SshConnection, timeoutMs: number): Promise<SshObservation> {
  try {
    const r = await exec(conn, "/bin/sh -s", { step: "reboot-boot", stdin: bootScript(), timeoutMs });
    const boot = parseFacts(r.stdout).one["boot"];
    return boot && r.code === 0 ? { ok: true, boot } : { ok: false, error: `no boot id (exit ${r.code})` };
  } catch (err) {
    return { ok: false, error: firstLine(err) };
  }
}

/** One probe of one service on the new boot, judged by the deploy's own verdict. */
async function probe(
  p: Prepared,
  t: RebootHealthTarget,
  timeoutMs: number,
  secrets: readonly string[],
): Promise<ServiceHealthObservation> {
  try {
    const health = probedHealth(t.health, timeoutMs);
    const r = await exec(p.conn, "/bin/sh -s", {
      step: "reboot-health",
      stdin: rebootHealthScript(t, timeoutMs),
      timeoutMs: timeoutMs + 15_000,
      secrets,
    });
    const commit = parseFacts(r.stdout).one["commit"] ?? "";
    const gate = judge({ health }, r.stdout, commit);
    return { service: t.service, verdict: gate.verdict, status: gate.outcome.status };
  } catch (err) {
    return { service: t.service, verdict: { ok: false, failedCheck: `probe failed: ${firstLine(err)}` } };
  }
}

/** Reboots one host and waits until it is back (backVerdict) or the deadline; the last verdict. */
async function rebootAndWait(
  p: Prepared,
  hold: BootHold,
  run: RebootRun,
  secrets: readonly string[],
): Promise<BackVerdict> {
  const say = sayFor(run, p.host, secrets);
  const started = Date.now();
  const deadline = started + run.waitMs;
  const key = connectionKey(p.conn);
  const openedBefore = transportStats().opened[key] ?? 0;
  say("rebooting");
  let refused: string | undefined;
  try {
    const script = rebootScript(hold.targets.length > 0 ? hold : undefined);
    const r = await runScript(p.conn, script, { step: "reboot", timeoutMs: 30_000, secrets }, false);
    if (r.code !== 0) refused = `the reboot command failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`;
  } catch (err) {
    // The session closing under the reboot is expected; whether it rebooted, the boot id tells.
    say(`the reboot command's session ended (${firstLine(err)})`);
  }
  if (refused) throw new Error(refused);
  let seenDown = false;
  let ssh: SshObservation = { ok: true, boot: p.boot };
  let health: ServiceHealthObservation[] = p.services.map((t) => ({ service: t.service }));
  let verdict = backVerdict(p.boot, ssh, health);
  while (Date.now() < deadline) {
    ssh = await look(p.conn, Math.min(LOOK_TIMEOUT_MS, Math.max(deadline - Date.now(), 1)));
    verdict = backVerdict(p.boot, ssh, health);
    if (!ssh.ok && !seenDown) {
      seenDown = true;
      say("down");
    }
    if (ssh.ok && ssh.boot !== p.boot) break;
    await sleep(POLL_MS);
  }
  if (!ssh.ok || ssh.boot === p.boot) return verdict;
  const opened = (transportStats().opened[key] ?? 0) - openedBefore;
  say(`back after ${Math.round((Date.now() - started) / 1000)} s (new boot, ${opened} new SSH connection(s))`);
  if (hold.targets.length > 0) await relockHost(p, hold, run, secrets);
  for (const t of p.services) {
    let last: ServiceHealthObservation = { service: t.service };
    while (Date.now() < deadline) {
      last = await probe(p, t, Math.min(t.health.timeoutMs, Math.max(deadline - Date.now(), 0)), secrets);
      if (last.verdict?.ok) break;
      if (Date.now() < deadline) await sleep(Math.min(POLL_MS, Math.max(deadline - Date.now(), 0)));
    }
    health = health.map((h) => (h.service === t.service ? last : h));
    verdict = backVerdict(p.boot, ssh, health);
    if (!last.verdict?.ok) return verdict;
    say(`${t.service} healthy (HTTP ${last.status ?? "?"})`);
  }
  for (const s of p.notDeployed) say(`${s} is not deployed here: not checked`);
  return verdict;
}

/** The rolling reboot: refusals first, then batch by batch; stops at the first host not back. */
export async function rollingReboot(op: OperatorConfig, run: RebootRun): Promise<RebootOutcome> {
  const read = await Promise.all(run.hosts.map((h) => prepare(op, h)));
  const problems = rebootRefusals(read.map((r) => r.readiness));
  if (problems.length > 0) return { kind: "refused", problems, rebooted: [], untouched: run.hosts };
  const prepared = new Map(read.map((r) => [r.prepared!.host, r.prepared!]));
  const batches = rebootBatches(run.hosts, run.batch);
  const owner = rebootOwner();
  const rebooted: string[] = [];
  for (const [i, batch] of batches.entries()) {
    const untouched = batches.slice(i + 1).flat();
    const hosts = batch.map((h) => prepared.get(h)!);
    const holds = new Map(hosts.map((p) => [p.host, { targets: p.locks, token: owner.token, waitMs: run.waitMs }]));
    const unlockAll = () => Promise.all(hosts.map((p) => unlockHost(p, holds.get(p.host)!, run, op.secrets)));
    // The batch's locks, all or none: a deploy that started since the read refuses the batch.
    const locking = await Promise.allSettled(hosts.map((p) => lockHost(p, owner, run, op.secrets)));
    const refusals = locking.flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value] : []));
    const lockFailed = locking.flatMap((r, j) => (r.status === "rejected" ? [{ host: batch[j]!, err: r.reason }] : []));
    if (refusals.length > 0 || lockFailed.length > 0) {
      await unlockAll();
      if (refusals.length > 0)
        return { kind: "refused", problems: rebootRefusals(refusals), rebooted, untouched: [...batch, ...untouched] };
      return {
        kind: "failed",
        host: lockFailed.map((f) => f.host).join(", "),
        error: redact(lockFailed.map((f) => `${f.host}: ${firstLine(f.err)}`).join("; "), op.secrets),
        untouched: [...batch, ...untouched],
      };
    }
    // Every host of the batch is waited for (settled), so none is left rebooting unobserved; its
    // locks are released after its health ran, or after it failed.
    const settled = await Promise.allSettled(
      hosts.map((p) => rebootAndWait(p, holds.get(p.host)!, run, op.secrets)),
    ).finally(unlockAll);
    rebooted.push(...batch);
    const failed = settled.flatMap((r, j) => (r.status === "rejected" ? [{ host: batch[j]!, err: r.reason }] : []));
    if (failed.length > 0) {
      const error = failed.map((f) => `${f.host}: ${firstLine(f.err)}`).join("; ");
      return {
        kind: "failed",
        host: failed.map((f) => f.host).join(", "),
        error: redact(error, op.secrets),
        untouched,
      };
    }
    const notBack = batch.flatMap((host, j) => {
      const v = (settled[j] as PromiseFulfilledResult<BackVerdict>).value;
      return v.back ? [] : [{ host, waitingFor: v.waitingFor }];
    });
    if (notBack.length > 0) return { kind: "stopped", notBack, untouched };
  }
  return { kind: "done" };
}
