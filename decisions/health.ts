import type { HealthSpec } from "../model/service";

/**
 * What the probe saw on the host (commands/service.ts, probeLines): evidence, not a verdict. The
 * probe polls until the health URL answers as expected (`result`), then until the version
 * endpoint answers at all; it reads nothing inside the version body.
 */
export interface ProbeOutcome {
  /** How the health URL's poll ended: its expected status (and body) seen, the deadline, or the process gone. */
  readonly result: "ok" | "timeout" | "exited";
  readonly status: string;
  readonly body: string;
  readonly curlError: string;
  readonly versionStatus?: string;
  readonly versionBody?: string;
  readonly active: string;
  readonly journal: string;
  /** systemd's restart counter: right after fleet's restart, and at the end of the probe. */
  readonly restarts?: { readonly baseline: number; readonly now: number };
}

export interface HealthVerdict {
  readonly ok: boolean;
  /** Which check failed, in words a user can act on. */
  readonly failedCheck?: string;
}

/** Reads a dotted field ("build.commit") from a JSON body; undefined if absent or not JSON. */
export function jsonField(body: string, field: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const part of field.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** A reported commit matches if equal, or if one is a prefix (≥ 7 chars) of the other. */
export function commitMatches(reported: string, expected: string): boolean {
  const a = reported.trim().toLowerCase();
  const b = expected.trim().toLowerCase();
  if (!a || !b) return false;
  if (a === b) return true;
  return Math.min(a.length, b.length) >= 7 && (a.startsWith(b) || b.startsWith(a));
}

/**
 * The health gate's verdict on one probe outcome: the only one. The deploying side finalizes
 * (retention, the audit line, the unlock) or rolls back on it, and on nothing else.
 */
export function judgeHealth(outcome: ProbeOutcome, health: HealthSpec, expectedCommit: string): HealthVerdict {
  if (outcome.result === "exited") {
    const restarts = outcome.restarts
      ? `, restarted ${outcome.restarts.now - outcome.restarts.baseline} time(s) by systemd`
      : "";
    return {
      ok: false,
      failedCheck: `the service exited during the health check (systemd state: ${outcome.active || "unknown"}${restarts})`,
    };
  }
  if (outcome.result === "timeout") {
    const saw =
      outcome.status === "000"
        ? `no HTTP answer (${outcome.curlError.trim() || "connection failed"})`
        : `HTTP ${outcome.status}`;
    return {
      ok: false,
      failedCheck: `${health.url} did not answer ${health.expectStatus}${health.bodyContains !== undefined ? " with the expected body" : ""} within ${health.timeoutMs} ms; last: ${saw}`,
    };
  }
  if (health.version) {
    if (outcome.versionStatus !== "200") {
      return {
        ok: false,
        failedCheck: `version endpoint ${health.version.url} answered HTTP ${outcome.versionStatus ?? "nothing"}`,
      };
    }
    const reported = jsonField(outcome.versionBody ?? "", health.version.field);
    if (typeof reported !== "string" || !commitMatches(reported, expectedCommit)) {
      return {
        ok: false,
        failedCheck: `version endpoint ${health.version.url} reports ${health.version.field}=${JSON.stringify(reported ?? null)}, expected ${expectedCommit}`,
      };
    }
  }
  return { ok: true };
}
