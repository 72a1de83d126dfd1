import type { ServiceSpec } from "../../model/service";
import { finalizeScript, type AuditEntry, type LockOwner } from "../../commands/service";
import { renderEnvFile } from "../../commands/unit";
import { runScript } from "../../transport/ssh";
import { secretsOf } from "./lock";
import { watchdogDeadlineMs } from "../../decisions/watchdog";

/** What every step of one deploy shares. */
export interface DeployContext {
  readonly spec: ServiceSpec;
  readonly owner: LockOwner;
  readonly secrets: string[];
  /** The new release's env file (secrets included: it travels on stdin only). */
  readonly envFile: string;
  /** When the deploy began (ms since the epoch): the audit line carries its whole duration. */
  readonly started: number;
  /** The activation runs its steps and then the health gate: both budgets. */
  readonly activationTimeoutMs: number;
  /** From the switch on, how long the host's watchdog waits for this side's decision. */
  readonly watchdogDeadlineMs: number;
}

export function deployContext(spec: ServiceSpec, owner: LockOwner): DeployContext {
  return {
    spec,
    owner,
    secrets: secretsOf(spec),
    envFile: renderEnvFile({ ...spec.env, ...spec.secretEnv }, spec.releaseId, spec.commit),
    started: Date.now(),
    activationTimeoutMs: spec.stepTimeoutMs + spec.health.timeoutMs,
    watchdogDeadlineMs: watchdogDeadlineMs(spec.health.timeoutMs, spec.proxy !== undefined),
  };
}

/** How a deploy ends on the host: its audit line and, for a release that serves, retention. */
export interface Ending {
  readonly result: AuditEntry["result"];
  /** The release that served before this deploy ("" for none). */
  readonly from: string;
  readonly note?: string;
  readonly deleteReleases?: readonly string[];
}

/** The last step of every deploy: retention, the audit line, the lock released (see finalizeScript). */
export async function finish(ctx: DeployContext, ending: Ending): Promise<void> {
  const { spec } = ctx;
  await runScript(
    spec.connection,
    finalizeScript(spec, {
      deleteReleases: ending.deleteReleases ?? [],
      audit: {
        who: ctx.owner.who,
        from: ending.from,
        to: spec.releaseId,
        result: ending.result,
        ...(ending.note ? { note: ending.note } : {}),
      },
      elapsedBeforeMs: Date.now() - ctx.started,
      token: ctx.owner.token,
    }),
    { step: "finalize", secrets: ctx.secrets, timeoutMs: spec.stepTimeoutMs },
  );
}
