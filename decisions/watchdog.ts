/**
 * How long the host's watchdog waits, from the switch, for the deploying side to decide an
 * activation before it reverts it by itself (commands/watchdog.ts). The margin covers what
 * follows the switch besides the health gate: the restart, the probe's round trip back to the
 * deploying side, its verdict and the finalize or rollback script reaching the host.
 */
export const WATCHDOG_MARGIN_MS = 20_000;

/**
 * Behind the proxy (`proxied`), two probes may each take the health timeout before the decision:
 * the gate on the new instance's port, then the switch's probe through the proxy.
 */
export function watchdogDeadlineMs(healthTimeoutMs: number, proxied = false): number {
  return Math.max(0, healthTimeoutMs) * (proxied ? 2 : 1) + WATCHDOG_MARGIN_MS;
}
