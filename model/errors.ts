/**
 * fleet's one error: a plain `Error` with fields, built by `fleetError`. Every layer throws it.
 *
 * Not a subclass: Pulumi's closure serializer rewrites `super(msg)` to `Error.call(this, msg)`,
 * which leaves `message` empty, so a subclassed error would reach the user as "undefined" from
 * inside the provider host. A plain Error with fields survives it, the esbuild bundle
 * (providers/ship.ts) and `instanceof Error` checks alike.
 *
 * Only the message text crosses the provider → engine → CLI boundary, so the message ends with
 * the hint and the outcome marker: the marker is the serialized `kind`, and `outcomeOf`
 * (decisions/outcome.ts) reading it back is the one place that looks at error text.
 */

/** How a run ended, as `npm run deploy` reports it in its exit code (decisions/outcome.ts). */
export type OutcomeKind = "checks" | "build" | "failure" | "rollback" | "critical" | "config";

/** The structured evidence of a failure, all optional: each failure fills what it knows. */
export interface FleetErrorEvidence {
  /** The host (or docker engine) it happened on. */
  readonly host?: string;
  /** Where a remote operation failed: reaching the host (nothing ran) or running a step on it. */
  readonly stage?: "connect" | "run";
  /** The step that ran (`upload`, `activate`, …). */
  readonly step?: string;
  /** What ran, secrets redacted. */
  readonly command?: string;
  /** Its exit code; null for a signal, a timeout or a command that never started. */
  readonly exitCode?: number | null;
  /** The last lines of its output, secrets redacted. */
  readonly stdoutTail?: string;
  readonly stderrTail?: string;
  /** The last phase the script named (`fleet-phase: <name>` on stderr), "" if none. */
  readonly phase?: string;
  /** A machine-readable cause: a socket error code, a Hetzner API error code. */
  readonly code?: string;
  /** An HTTP status (API failures). */
  readonly status?: number;
  /** Config problems, one per bad field, each starting with its field path. */
  readonly problems?: readonly string[];
  /** The release that served before a failed deploy ("" for none). */
  readonly from?: string;
}

export interface FleetError extends Error, FleetErrorEvidence {
  readonly name: "FleetError";
  readonly kind: OutcomeKind;
  /** What to do next, one sentence. */
  readonly hint: string;
  /** The message without the hint and the marker: what another failure quotes when it wraps this one. */
  readonly summary: string;
}

/** The marker line for a kind: the serialized kind, read back by `outcomeOf`. */
export function outcomeMarker(kind: OutcomeKind): string {
  return `(fleet outcome: ${kind})`;
}

/** The pattern `outcomeMarker` writes, for `outcomeOf` to read the kinds back (global: every marker). */
export const OUTCOME_MARKER_PATTERN = /\(fleet outcome: ([a-z]+)\)/g;

/** The one constructor: the message is the summary, then the hint, then the marker line. */
export function fleetError(
  kind: OutcomeKind,
  summary: string,
  hint: string,
  evidence: FleetErrorEvidence = {},
): FleetError {
  const message = [summary, hint, outcomeMarker(kind)].filter(Boolean).join("\n");
  const defined = Object.fromEntries(Object.entries(evidence).filter(([, v]) => v !== undefined));
  return Object.assign(new Error(message), { ...defined, name: "FleetError" as const, kind, hint, summary });
}

export function isFleetError(err: unknown): err is FleetError {
  return err instanceof Error && err.name === "FleetError" && typeof (err as { kind?: unknown }).kind === "string";
}

/** What a wrapping failure quotes of another: a FleetError's summary (its marker would compete), any other message. */
export function summaryOf(err: unknown): string {
  if (isFleetError(err)) return err.summary;
  return err instanceof Error ? err.message : String(err);
}
