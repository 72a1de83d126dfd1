import { OUTCOME_MARKER_PATTERN, type OutcomeKind } from "../model/errors";

/**
 * How a deploy ended, as `npm run deploy` reports it in its exit code. fleet's errors
 * (model/errors.ts) end with their kind serialized as a marker line (`(fleet outcome: rollback)`),
 * which survives the Pulumi CLI's output: the wrapper reads fleet's own classification back, it
 * does not guess from the wording. This is the one place that reads error text.
 */

export const EXIT_CODES: Record<OutcomeKind | "ok", number> = {
  ok: 0,
  /** The pre-deploy checks (the apps' tests) failed: nothing was deployed. */
  checks: 1,
  /** An install, build or image build/validation failed: nothing switched. */
  build: 2,
  /** A deploy failed with nothing switched (lock held, host unreachable, a step failed). */
  failure: 3,
  /** A release failed its health gate and was rolled back automatically. */
  rollback: 4,
  /** The rollback failed too, or the previous release is not healthy: look now. */
  critical: 5,
  /** The configuration is invalid: nothing ran. */
  config: 6,
};

/** Worst first: when several resources fail in one run, the exit code names the worst. */
const SEVERITY: OutcomeKind[] = ["critical", "rollback", "failure", "build", "config", "checks"];

/** The exit code for a CLI run from its status and output; an unmarked failure is a failed deploy. */
export function outcomeOf(cliStatus: number, output: string): { kind: OutcomeKind | "ok"; code: number } {
  if (cliStatus === 0) return { kind: "ok", code: 0 };
  const found = new Set([...output.matchAll(OUTCOME_MARKER_PATTERN)].map((m) => m[1]));
  const kind = SEVERITY.find((k) => found.has(k)) ?? "failure";
  return { kind, code: EXIT_CODES[kind] };
}
