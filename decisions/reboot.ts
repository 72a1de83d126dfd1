/**
 * The decisions of `npm run reboot` (issue 20): which hosts go down together, whether a host is
 * back (a new boot, SSH, every service's health), and how a stopped run is reported. Pure.
 */
import { parseDuration } from "../model/duration";
import { fleetError } from "../model/errors";
import { timeout } from "../model/rules/duration";
import type { HealthVerdict } from "./health";

export const DEFAULT_WAIT = "5m";

export interface RebootOptions {
  readonly batch: number;
  /** How long one batch may take to come back (SSH and health), in ms. */
  readonly waitMs: number;
}

/** `--batch` and `--wait` as given (undefined: the defaults), checked; a bad value is a usage problem. */
export function rebootOptions(batch: string | undefined, wait: string | undefined): RebootOptions {
  const problems: string[] = [];
  const size = batch === undefined ? 1 : /^\d+$/.test(batch) ? Number(batch) : NaN;
  if (!Number.isSafeInteger(size) || size < 1) problems.push(`--batch: "${batch}" is not a whole number of hosts ≥ 1`);
  const waitText = wait ?? DEFAULT_WAIT;
  const checked = timeout.safeParse(waitText);
  if (!checked.success) problems.push(`--wait: "${waitText}" ${checked.error.issues[0]!.message}`);
  if (problems.length > 0)
    throw fleetError("config", `reboot: ${problems.join("; ")}`, 'e.g. --batch 2 --wait 10m (durations: "90s", "5m")');
  return { batch: size, waitMs: parseDuration(waitText, "--wait") };
}

/** The hosts in batches of `size`, in the order given (config order). */
export function rebootBatches(hosts: readonly string[], size: number): string[][] {
  if (!Number.isSafeInteger(size) || size < 1) throw new Error(`batch size must be a whole number ≥ 1, not ${size}`);
  const batches: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) batches.push(hosts.slice(i, i + size));
  return batches;
}

/**
 * Which boot a host is on: the kernel's boot id and PID 1's start time (`boot_id pid1start`).
 * The boot id alone changes with every real boot, but a container shares its host's kernel: there
 * only PID 1's start time (clock ticks since the kernel booted) tells its boots apart.
 */
export type BootIdentity = string;

/** What one look at the host saw. */
export type SshObservation =
  { readonly ok: true; readonly boot: BootIdentity } | { readonly ok: false; readonly error: string };

/** The last health verdict of one service on the new boot (none yet: not probed). */
export interface ServiceHealthObservation {
  readonly service: string;
  readonly verdict?: HealthVerdict;
  /** The last HTTP status the probe saw ("000": no answer). */
  readonly status?: string;
}

/** What a host that is not back yet is waiting for. */
export type Waiting =
  | { readonly kind: "ssh"; readonly last: string }
  | { readonly kind: "boot" }
  | { readonly kind: "health"; readonly service: string; readonly last: string };

export type BackVerdict = { readonly back: true } | { readonly back: false; readonly waitingFor: Waiting };

/**
 * The verdict of "back": SSH answers, on another boot than before the reboot (the same boot is a
 * host that has not gone down yet, or never will), and every service passed its health gate.
 */
export function backVerdict(
  bootBefore: BootIdentity,
  ssh: SshObservation,
  health: readonly ServiceHealthObservation[],
): BackVerdict {
  if (!ssh.ok) return { back: false, waitingFor: { kind: "ssh", last: ssh.error } };
  if (ssh.boot === bootBefore) return { back: false, waitingFor: { kind: "boot" } };
  for (const h of health) {
    if (h.verdict?.ok) continue;
    const last = h.verdict
      ? `${h.verdict.failedCheck ?? "not healthy"}${h.status ? ` (last status ${h.status})` : ""}`
      : "not probed yet";
    return { back: false, waitingFor: { kind: "health", service: h.service, last } };
  }
  return { back: true };
}

/** The words for what a host was waiting for. */
export function describeWaiting(w: Waiting): string {
  switch (w.kind) {
    case "ssh":
      return `SSH to answer again (last: ${w.last})`;
    case "boot":
      return "a new boot (SSH still answers on the boot from before the reboot: it never went down)";
    case "health":
      return `service ${w.service}'s health (last: ${w.last})`;
    default: {
      const never: never = w;
      return never;
    }
  }
}

/** Why the run stopped: the hosts that did not come back within the wait, and those left untouched. */
export function stoppedReport(
  notBack: readonly { readonly host: string; readonly waitingFor: Waiting }[],
  untouched: readonly string[],
  wait: string,
): string {
  return [
    ...notBack.map(
      (n) => `reboot: ${n.host} did not come back within ${wait}: waiting for ${describeWaiting(n.waitingFor)}`,
    ),
    `reboot: stopped; not rebooted: ${untouched.length ? untouched.join(", ") : "none (it was the last batch)"}`,
  ].join("\n");
}

/** What may stop a host from being rebooted, read before anything is rebooted. */
export interface HostReadiness {
  readonly host: string;
  /** Cannot be reached or read (an hcloud host, a key only known as ciphertext, unreachable). */
  readonly problem?: string;
  /** Services whose deploy lock is held on it, with the holder. */
  readonly locked: readonly { readonly service: string; readonly holder: string }[];
}

/** The refusals: nothing is rebooted while any host is locked by a deploy or cannot be read. */
export function rebootRefusals(hosts: readonly HostReadiness[]): string[] {
  return hosts.flatMap((h) => [
    ...(h.problem ? [`${h.host}: ${h.problem}`] : []),
    ...h.locked.map((l) => `${h.host}: a deploy of ${l.service} is running (lock held by ${l.holder || "unknown"})`),
  ]);
}
