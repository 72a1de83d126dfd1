/**
 * The host-side scripts of `npm run reboot` (issue 20): the boot identity, the reboot itself, and
 * one service's health probe after a boot. Pure builders; quoting via commands/quote.ts.
 */
import { shq } from "./quote";
import { serviceLayout } from "./layout";
import { proxyLayout } from "./proxy";
import { instanceProbeTarget } from "./service-proxy";
import { probeLines } from "./service-shell";
import type { HealthSpec } from "../model/service";

/**
 * Prints `boot=<kernel boot id> <PID 1's start time>` (decisions/reboot.ts BootIdentity: a
 * container shares its host's kernel boot id, its PID 1 is new on each of its boots).
 */
export const BOOT_LINE = `echo "boot=$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)"`;

export function bootScript(): string {
  return `${BOOT_LINE}\n`;
}

/**
 * Prints the boot identity, then reboots a second later, from systemd (a transient timer), not
 * from this session: the command returns and its channel closes before sshd goes down, so the
 * session closing under it is no error. Without systemd-run, a detached shell does the same.
 */
export function rebootScript(): string {
  return [
    "set -eu",
    BOOT_LINE,
    `if command -v systemd-run >/dev/null 2>&1; then`,
    `  systemd-run --quiet --on-active=1 --timer-property=AccuracySec=100ms /bin/systemctl reboot`,
    `else`,
    `  nohup /bin/sh -c 'sleep 1; systemctl reboot' </dev/null >/dev/null 2>&1 &`,
    `fi`,
    `echo scheduled=1`,
    "",
  ].join("\n");
}

/** One service on one host, as the probe after a boot needs it. */
export interface RebootHealthTarget {
  readonly root: string;
  readonly service: string;
  readonly unitName: string;
  readonly health: HealthSpec;
  /** Behind the proxy: the serving instance (its port) is probed, as the deploy's gate does. */
  readonly proxied: boolean;
}

/** The health spec one probe polls with (and is judged by): its deadline `timeoutMs`. */
export function probedHealth(health: HealthSpec, timeoutMs: number): HealthSpec {
  return { ...health, timeoutMs: Math.max(0, Math.floor(timeoutMs)) };
}

/**
 * The deploy's health probe (commands/service-shell.ts probeLines) run once against the serving
 * release, polling for at most `timeoutMs`; prints its facts plus `commit=` (the serving
 * release's REVISION, for a version check). The probe watches a started process (`$pid`): after
 * a boot the unit may not have started yet, so it watches this shell instead, and polls until
 * healthy or the deadline rather than calling a unit that is still starting "exited".
 */
export function rebootHealthScript(t: RebootHealthTarget, timeoutMs: number): string {
  const layout = serviceLayout(t.root, t.service, t.unitName);
  const D = shq(layout.dir);
  const spec = { unitName: t.unitName, health: probedHealth(t.health, timeoutMs) };
  return [
    `phase() { :; }`,
    `started=$(date +%s); pid=$$; echo restarts=0`,
    `cur=$(readlink ${D}/current 2>/dev/null || true)`,
    `[ -n "$cur" ] && [ -f ${D}/"$cur"/REVISION ] && echo "commit=$(cat ${D}/"$cur"/REVISION)"`,
    ...(t.proxied
      ? [
          `sp=$(cat ${shq(proxyLayout(layout.dir).servingFile)} 2>/dev/null || true)`,
          ...probeLines(spec, instanceProbeTarget(spec, "$sp")),
        ]
      : probeLines(spec)),
    "",
  ].join("\n");
}
