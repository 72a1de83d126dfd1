/**
 * `npm run reboot` (issue 20): a rolling reboot. Every host is read first (its boot, its
 * services' deploy locks); any refusal reboots nothing. Then batch by batch: reboot, wait for a
 * new boot over a new SSH connection, then for each service's health gate, all within the wait;
 * a host that does not come back stops the run before the next batch.
 */
import {
  bootScript,
  probedHealth,
  rebootHealthScript,
  rebootScript,
  type RebootHealthTarget,
} from "../commands/reboot";
import { decodeBase64, parseFacts } from "../commands/facts";
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
import { redact } from "../transport/redact";
import { connectionKey, exec, runScript, transportStats } from "../transport/ssh";
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
  | { readonly kind: "refused"; readonly problems: readonly string[] }
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
    const locked: { service: string; holder: string }[] = [];
    for (const t of targetsOn(op, host)) {
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
      const holder = decodeBase64(f["locked"]).trim();
      if (f["locked"] !== undefined) locked.push({ service: t.service, holder });
    }
    return { readiness: { host, locked }, prepared: { host, conn, boot: boot.boot, services, notDeployed } };
  } catch (err) {
    return { readiness: { host, problem: `could not be read: ${firstLine(err)}`, locked: [] } };
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
async function rebootAndWait(p: Prepared, run: RebootRun, secrets: readonly string[]): Promise<BackVerdict> {
  const say = (line: string) => run.print(redact(`${p.host}: ${line}`, secrets));
  const started = Date.now();
  const deadline = started + run.waitMs;
  const key = connectionKey(p.conn);
  const openedBefore = transportStats().opened[key] ?? 0;
  say("rebooting");
  let refused: string | undefined;
  try {
    const r = await runScript(p.conn, rebootScript(), { step: "reboot", timeoutMs: 30_000, secrets }, false);
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
  if (problems.length > 0) return { kind: "refused", problems };
  const prepared = new Map(read.map((r) => [r.prepared!.host, r.prepared!]));
  const batches = rebootBatches(run.hosts, run.batch);
  for (const [i, batch] of batches.entries()) {
    const untouched = batches.slice(i + 1).flat();
    // Every host of the batch is waited for (settled), so none is left rebooting unobserved.
    const settled = await Promise.allSettled(batch.map((h) => rebootAndWait(prepared.get(h)!, run, op.secrets)));
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
