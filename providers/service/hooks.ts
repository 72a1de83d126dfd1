/**
 * Running a service's postDeploy and postRollback hooks (commands/service-hooks.ts) from the
 * deploying side. preSwitch runs inside the activation itself. A hook that only warns prints the
 * warning (with its exit code and output tail, redacted) and leaves a note for the audit line.
 */
import { EXIT } from "../../commands/service";
import { hookScript, type HookRun } from "../../commands/service-hooks";
import { summaryOf } from "../../model/errors";
import { exitError, type RemoteStepFailure } from "../../transport/errors";
import { redact } from "../../transport/redact";
import { connectionKey, runScript } from "../../transport/ssh";
import type { DeployContext } from "./context";

/** How a hook ended. `lostLock`: the lock was no longer this deploy's (the host's watchdog reverted). */
export type HookOutcome =
  | { readonly kind: "ok" }
  | { readonly kind: "failed"; readonly failure: RemoteStepFailure; readonly code: number }
  | { readonly kind: "unreachable"; readonly message: string }
  | { readonly kind: "lostLock"; readonly stdout: string };

const HOOK_FIELD = { "post-deploy": "postDeploy", "post-rollback": "postRollback" } as const;

/** Runs one hook script on the host, never throwing: the caller decides what its failure means. */
export async function runHook(ctx: DeployContext, hook: Omit<HookRun, "token">): Promise<HookOutcome> {
  const { spec, secrets } = ctx;
  const script = hookScript(spec, { ...hook, token: ctx.owner.token });
  const step = `${HOOK_FIELD[hook.hook]} hook`;
  try {
    const r = await runScript(spec.connection, script, { step, secrets, timeoutMs: spec.stepTimeoutMs }, false);
    if (r.code === 0) return { kind: "ok" };
    if (r.code === EXIT.lockLost || r.code === EXIT.reverted) return { kind: "lostLock", stdout: r.stdout };
    return {
      kind: "failed",
      code: r.code,
      failure: exitError(connectionKey(spec.connection), step, `${HOOK_FIELD[hook.hook]}: ${hook.run}`, r, secrets),
    };
  } catch (err) {
    return { kind: "unreachable", message: redact(summaryOf(err), secrets) };
  }
}

/** The warning for a hook that failed (and the audit line's note), or undefined when it did not. */
export function hookWarning(ctx: DeployContext, hook: HookRun["hook"], outcome: HookOutcome): string | undefined {
  const { spec } = ctx;
  const field = HOOK_FIELD[hook];
  const where = `[${connectionKey(spec.connection)}] service "${spec.name}"`;
  switch (outcome.kind) {
    case "ok":
      return undefined;
    case "failed":
      return `${where}: its ${field} hook failed (exit ${outcome.code}):\n${outcome.failure.summary}`;
    case "unreachable":
      return `${where}: its ${field} hook did not run to its end: ${outcome.message}`;
    case "lostLock":
      return `${where}: its ${field} hook did not run: the deploy lock was no longer this deploy's`;
  }
}

/** Prints a hook's warning; returns the audit line's note for it. */
export function warnHook(ctx: DeployContext, hook: HookRun["hook"], outcome: HookOutcome): string | undefined {
  const warning = hookWarning(ctx, hook, outcome);
  if (!warning) return undefined;
  console.error(`warning: ${warning}`);
  return `${HOOK_FIELD[hook]} hook failed${outcome.kind === "failed" ? ` (exit ${outcome.code})` : ""}`;
}

/** After a rollback that put `restoredFrom`'s predecessor back: the postRollback hook, if any (only warns). */
export async function afterRollback(ctx: DeployContext, rolledBackFrom: string): Promise<void> {
  const run = ctx.spec.hooks?.postRollback;
  if (run === undefined) return;
  const outcome = await runHook(ctx, { hook: "post-rollback", run, previous: rolledBackFrom, decide: false });
  warnHook(ctx, "post-rollback", outcome);
}
