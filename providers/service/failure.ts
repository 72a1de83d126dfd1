import type { ServiceSpec } from "../../model/service";
import {
  isConnectionFailure,
  isRemoteStepFailure,
  type ConnectionFailure,
  type RemoteStepFailure,
} from "../../transport/errors";
import { connectionKey, runScript } from "../../transport/ssh";
import { EXIT, rollbackScript, stopForRestoreScript } from "../../commands/service";
import { exitError } from "../../transport/errors";
import { parseFacts } from "../../commands/facts";
import { redact } from "../../transport/redact";
import { restoreBackup } from "../backup/operations";
import { evidence, judge, type Gate } from "./gate";
import { secretsOf } from "./lock";
import { fleetError, summaryOf, type FleetErrorEvidence, type OutcomeKind } from "../../model/errors";
import { finish, type DeployContext } from "./context";
import { afterRollback } from "./hooks";

/**
 * The phases from which on the activation may have changed what serves: a failure there is undone.
 * (An array: Pulumi's closure serializer captures a module-level Set as a plain object.)
 */
const SWITCHED_PHASES: readonly string[] = ["switch", "restart", "health", "proxy", "drain", "finalize"];

/** The phase a failed script reached, from its `fleet-phase:` lines. */
function failedPhase(err: unknown): string {
  if (!isRemoteStepFailure(err)) return "";
  // From all of stderr: a step's own output (a long build log, systemctl status) can push the
  // marker out of the tail, and a restart failure would then not be rolled back.
  return err.phase;
}

/** The evidence of a transport failure, to carry on in the deploy's own failure. */
function evidenceOf(err: RemoteStepFailure | ConnectionFailure): FleetErrorEvidence {
  const { host, stage, step, command, exitCode, stdoutTail, stderrTail, phase, code } = err;
  return { host, stage, step, command, exitCode, stdoutTail, stderrTail, phase, code };
}

/** What the rollback after a failed step did. */
type StepRollback =
  | { readonly kind: "untouched" }
  | { readonly kind: "restored"; readonly release: string; readonly byHost: boolean }
  | { readonly kind: "lockLost"; readonly last: string }
  | { readonly kind: "failed"; readonly reason: string };

/** Why a deploy whose lock another deploy took over changes nothing more on the host. */
function lockLostOutcome(last: string): string {
  return (
    "this deploy's lock was taken over by another deploy (its connection had dropped), so it did not roll back: " +
    `the host is that deploy's now${last ? `; deploy.log's last line: ${last}` : ""}`
  );
}

function describeStepRollback(r: StepRollback): string {
  switch (r.kind) {
    case "untouched":
      return "the switch had not changed anything yet, so the serving release was not touched";
    case "restored":
      return r.byHost
        ? `the host's watchdog had already rolled back to ${r.release} by itself (no decision reached it in time)`
        : `rolled back to ${r.release} (previous release restored)`;
    case "lockLost":
      return lockLostOutcome(r.last);
    case "failed":
      return `CRITICAL: rollback failed: ${r.reason}`;
  }
}

/**
 * Runs the deploying side's rollback. Its stdout is the restored release's probe, or, when the
 * host's watchdog had already reverted (EXIT.reverted, `by_host=1`), the watchdog's.
 */
async function runRollback(
  spec: ServiceSpec,
  token: string,
  unstage: boolean,
): Promise<{ stdout: string; byHost: boolean; lockLost: boolean }> {
  const secrets = secretsOf(spec);
  const script = rollbackScript(spec, token, unstage ? { unstage } : {});
  const timeoutMs = spec.stepTimeoutMs + spec.health.timeoutMs + 60_000;
  const r = await runScript(spec.connection, script, { step: "rollback", secrets, timeoutMs }, false);
  if (r.code !== 0 && r.code !== EXIT.reverted && r.code !== EXIT.lockLost)
    throw exitError(connectionKey(spec.connection), "rollback", "/bin/sh -s (rollback)", r, secrets);
  return { stdout: r.stdout, byHost: r.code === EXIT.reverted, lockLost: r.code === EXIT.lockLost };
}

async function rollBackStep(spec: ServiceSpec, token: string): Promise<StepRollback> {
  try {
    const r = await runRollback(spec, token, false);
    if (r.lockLost) return { kind: "lockLost", last: parseFacts(r.stdout).one["last"] ?? "" };
    const restored = parseFacts(r.stdout).one["restored"] ?? "?";
    return restored === "none" ? { kind: "untouched" } : { kind: "restored", release: restored, byHost: r.byHost };
  } catch (e) {
    return { kind: "failed", reason: summaryOf(e) };
  }
}

export interface StepFailure {
  /** The release that served before this deploy ("" for none). */
  readonly current: string;
  /**
   * The step ran after the switch whatever phase it names (the finalize of a release that
   * passed its gate): undo the switch even when the failure names no phase (a lost connection).
   */
  readonly afterSwitch?: boolean;
}

/**
 * A step failed before the new release was recorded as serving: restore if the switch had
 * begun, record, fail with the step's evidence. Anything but a remote step's failure or a lost
 * connection (a refused lock) is rethrown as it is: nothing was started, so nothing is undone.
 */
export async function failStep(ctx: DeployContext, err: unknown, at: StepFailure): Promise<never> {
  if (!isRemoteStepFailure(err) && !isConnectionFailure(err)) throw err;
  const { spec } = ctx;
  const { current } = at;
  const host = connectionKey(spec.connection);
  const phase = failedPhase(err);
  const step = isRemoteStepFailure(err) ? err.step : "";
  // A switch stopped part-way may have written the new env and unit already: undo it too.
  const switched = at.afterSwitch === true || SWITCHED_PHASES.includes(phase);
  const rollback = switched ? await rollBackStep(spec, ctx.owner.token) : undefined;
  if (rollback?.kind === "restored" && !rollback.byHost) await afterRollback(ctx, spec.releaseId);
  const rolledBack = rollback ? `; ${describeStepRollback(rollback)}` : "";
  // The upload names no phase of its own (it is tar, not a script): its step is the phase.
  const where = phase || (step === "upload" ? "upload" : "");
  if (!isConnectionFailure(err) && rollback?.kind !== "lockLost") {
    await finish(ctx, {
      result: "failed",
      from: current,
      note: `failed at ${phase || step || "connect"}${rolledBack}`,
    }).catch((e) => console.error(`[${host}] could not finalize after failure: ${summaryOf(e)}`));
  }
  const kind: OutcomeKind =
    rollback?.kind === "failed"
      ? "critical"
      : rollback?.kind === "restored"
        ? "rollback"
        : phase === "build" || phase === "install" || step === "install"
          ? "build"
          : "failure";
  throw fleetError(
    kind,
    `[${host}] service "${spec.name}": deploy of ${spec.releaseId} failed${where ? ` in its ${where} phase` : ""} before serving it; ` +
      `${rollback ? describeStepRollback(rollback) : `the serving release (${current || "none"}) was not touched`}.` +
      (phase === "migrate" ? " The migration failed: whatever it applied before failing stays applied." : "") +
      `\n${err.summary}`,
    kind === "critical"
      ? "Look at the host now: it may be serving a half-switched release; run npm run status, then fix it by hand or roll back."
      : err.hint,
    { ...evidenceOf(err), from: current },
  );
}

/** What the deploy learned from the activation that the rollback after a failed gate needs. */
export interface GateFailure {
  /** The release that served before the switch ("" for none). */
  readonly previousReleaseId: string;
  /** The new release ran its migrations. */
  readonly migrated: boolean;
}

/** Where the rollback after a failed gate left the host. */
interface GateRollback {
  readonly critical: boolean;
  /** A previous release was put back (and the lock is still this deploy's): postRollback runs. */
  readonly restored?: boolean;
  /** What the user reads about it. */
  readonly outcome: string;
}

/** The gate failed: put the previous release back, prove it serves, record, and fail loudly. */
export async function rollBackAndFail(ctx: DeployContext, gate: Gate, at: GateFailure): Promise<never> {
  const { spec, secrets } = ctx;
  const host = connectionKey(spec.connection);
  const failure = `${gate.verdict.failedCheck}\n${evidence(gate.outcome, secrets)}`;
  // With restoreOnRollback, a release that migrated gives the database back first: stop it (no
  // writes during the restore), restore the pre-deploy backup, then start the previous release.
  const database = at.migrated && spec.restoreOnRollback ? await restoreDatabase(spec, ctx.owner.token) : undefined;
  const back = await rollBackGate(ctx, at.migrated, database);
  if (back.restored && !back.critical) await afterRollback(ctx, spec.releaseId);
  const critical = back.critical || (database?.ok === false && !database.lockLost);
  const outcome = database && !database.ok ? `${back.outcome}\n${database.message}` : back.outcome;
  await finish(ctx, {
    result: critical ? "critical" : "rolled-back",
    from: at.previousReleaseId,
    note: failure.split("\n")[0] ?? "",
  }).catch(() => undefined);
  throw fleetError(
    critical ? "critical" : "rollback",
    `[${host}] service "${spec.name}": release ${spec.releaseId} (commit ${spec.commit}) failed its health gate: ${failure}\n${outcome}`,
    critical
      ? "Look at the host now: it may not be serving a healthy release; run npm run status, then fix it by hand or roll back."
      : `Fix what the failed check shows in commit ${spec.commit} and deploy again; the previous release keeps serving.`,
    { host, from: at.previousReleaseId },
  );
}

/** Runs the rollback (the previous release's own gate included) and judges where it left the host. */
async function rollBackGate(ctx: DeployContext, migrated: boolean, database?: DatabaseRestore): Promise<GateRollback> {
  const { spec, secrets } = ctx;
  // A release whose migrations were undone with the database must migrate again if deployed again.
  const rolled = await runRollback(spec, ctx.owner.token, database?.ok === true).then(
    (r) => r,
    (e: Error) => ({ error: e }),
  );
  if ("error" in rolled) {
    return {
      critical: true,
      outcome: `CRITICAL: the rollback itself failed, the host may be serving the broken release:\n${redact(summaryOf(rolled.error), secrets)}`,
    };
  }
  const facts = parseFacts(rolled.stdout).one;
  if (rolled.lockLost) return { critical: false, outcome: `Not rolled back: ${lockLostOutcome(facts["last"] ?? "")}.` };
  const restored = facts["restored"] ?? "";
  const restoredCommit = facts["restored_commit"] ?? "";
  if (restored === "nothing") {
    return { critical: false, outcome: "There was no previous release: the service was stopped and its unit removed." };
  }
  const back = judge(spec, rolled.stdout, restoredCommit || spec.commit);
  // A previous release without REVISION (deployed by hand) cannot be version-checked.
  if (back.verdict.ok || (!restoredCommit && back.outcome.result === "ok")) {
    let outcome = rolled.byHost
      ? `Rolled back automatically by the host's watchdog (this side decided too late): ${restored} is serving and healthy again.`
      : `Rolled back automatically: ${restored} is serving and healthy again.`;
    if (database) outcome += ` ${database.message}`;
    else if (migrated)
      outcome += ` The migrations ${spec.releaseId} ran (${spec.migrate}) stay applied: the database was not rolled back.`;
    return { critical: false, outcome, restored: !rolled.byHost };
  }
  return {
    critical: true,
    outcome: `CRITICAL: rolled back to ${restored}, but it is not healthy either: ${back.verdict.failedCheck}\n${evidence(back.outcome, secrets)}`,
  };
}

interface DatabaseRestore {
  readonly ok: boolean;
  /** Not attempted: the lock is no longer this deploy's. */
  readonly lockLost?: boolean;
  readonly message: string;
}

/** Stops the failed release and restores the pre-deploy backup; never throws (the rollback goes on). */
async function restoreDatabase(spec: ServiceSpec, token: string): Promise<DatabaseRestore> {
  const point = spec.restoreOnRollback!;
  const secrets = secretsOf(spec);
  try {
    const stop = await runScript(
      spec.connection,
      stopForRestoreScript(spec, token),
      { step: "stop for restore", secrets },
      false,
    );
    if (stop.code === EXIT.lockLost)
      return {
        ok: false,
        lockLost: true,
        message: "The database was not restored: the lock is no longer this deploy's.",
      };
    if (stop.code !== 0)
      throw exitError(
        connectionKey(spec.connection),
        "stop for restore",
        "/bin/sh -s (stop for restore)",
        stop,
        secrets,
      );
    const { record } = await restoreBackup(point.backup, point.backupId);
    return {
      ok: true,
      message: `The database was restored from the pre-deploy backup ${record.id}; the migrated state is kept in the safety backup ${record.safetyBackupId}.`,
    };
  } catch (err) {
    return {
      ok: false,
      message: `CRITICAL: restoring the pre-deploy backup ${point.backupId} failed, so the previous release runs on the migrated database: ${redact(summaryOf(err), secrets)}`,
    };
  }
}
