import type { ServiceSpec, ServiceState } from "../../model/service";
import { exitError, isConnectionError, isRemoteCommandError } from "../../transport/errors";
import { connectionKey, exec, runScript, type ExecResult } from "../../transport/ssh";
import {
  activateScript,
  fastActivateScript,
  finalizeScript,
  installScript,
  layoutOf,
  prepareScript,
  rollbackScript,
  uploadCommand,
  type ActivatePlan,
  type AuditEntry,
  type LockOwner,
} from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { renderEnvFile } from "../../commands/unit";
import { parseReleaseLines, releasesToDelete, type RetainedRelease } from "../../decisions/retention";
import { redact } from "../../transport/redact";
import { sharedPack } from "../../source/pack";
import { restoreBackup } from "../backup/operations";
import { ensureImageOnHost, hostPlace, pruneImages } from "../image/host-images";
import { recordReleaseImagesScript } from "../../commands/image";
import { shq } from "../../commands/quote";
import { evidence, judge } from "./gate";
import { notifyAll } from "./notify";
import type { NotifyEvent } from "../../model/notify";
import { deployError, heldTokens, lockOwner, runLocked, secretsOf } from "./lock";

export { deployError } from "./lock";
export { lockIsStale } from "./lock";

/** What the provider knows from state: the releases the host kept after the last deploy. */
export interface DeployHint {
  readonly retained?: readonly string[];
}

/** The phase a failed script reached, from its `fleet-phase:` lines. */
function failedPhase(err: unknown): string {
  if (!isRemoteCommandError(err)) return "";
  // From all of stderr: a step's own output (a long build log, systemctl status) can push the
  // marker out of the tail, and a restart failure would then not be rolled back.
  return err.phase;
}

/**
 * Deploys `spec` to its host in as few round trips as the work allows, and returns the state to
 * record only when the new release is serving and healthy.
 * - A release the host still has (a rollback, a re-apply): one round trip (checks, lock, switch,
 *   restart, health gate, finalize), falling back to the full path if it turns out to be gone.
 * - Otherwise: prepare (checks, lock, inspect) → upload → install (new dependency set only) →
 *   stage/build/migrate + switch + restart + gate + finalize.
 * - A failed gate: rollback + the previous release's gate → finalize → fail with the evidence.
 */
export async function deployService(spec: ServiceSpec, hint: DeployHint = {}): Promise<ServiceState> {
  const owner = lockOwner(spec);
  const held = heldTokens();
  held.push(owner.token);
  const started = Date.now();
  const announce = (event: NotifyEvent["event"], from: string, message: string) =>
    notifyAll(
      spec.notify ?? [],
      {
        event,
        service: spec.name,
        host: spec.host,
        from,
        to: spec.releaseId,
        commit: spec.commit,
        durationMs: Date.now() - started,
        message,
      },
      secretsOf(spec),
    );
  try {
    const state = await deployHoldingToken(spec, owner, hint);
    await announce("success", state.previousReleaseId, "");
    return state;
  } catch (err) {
    const e = err as Error & { kind?: NotifyEvent["event"]; from?: string };
    await announce(e.kind ?? "failure", e.from ?? "", redact(e.message, secretsOf(spec)).slice(0, 3000));
    throw err;
  } finally {
    held.splice(held.indexOf(owner.token), 1);
  }
}

async function deployHoldingToken(spec: ServiceSpec, owner: LockOwner, hint: DeployHint): Promise<ServiceState> {
  const started = Date.now();
  const secrets = secretsOf(spec);
  const envFile = renderEnvFile({ ...spec.env, ...spec.secretEnv }, spec.releaseId, spec.commit);
  const audit = (result: AuditEntry["result"], from?: string, note?: string): AuditEntry => ({
    who: owner.who,
    to: spec.releaseId,
    result,
    ...(from !== undefined ? { from } : {}),
    ...(note ? { note } : {}),
  });
  const finish = (result: AuditEntry["result"], from: string, note = "") =>
    runScript(
      spec.connection,
      finalizeScript(spec, {
        deleteReleases: [],
        audit: audit(result, from, note),
        elapsedBeforeMs: Date.now() - started,
      }),
      { step: "finalize", secrets, timeoutMs: spec.stepTimeoutMs },
    );
  const activationTimeout = spec.stepTimeoutMs + spec.health.timeoutMs;

  let activated: ExecResult | undefined;
  let current = "";
  let retained: RetainedRelease[] = (hint.retained ?? []).map((id) => ({ id, activatedAt: 0 }));
  let deleteReleases: string[] = [];
  let depsReinstalled = false;

  if (hint.retained?.includes(spec.releaseId)) {
    const plan: ActivatePlan = {
      stage: false,
      envFile,
      onSuccess: { deleteReleases: [], audit: audit("ok"), elapsedBeforeMs: Date.now() - started },
    };
    const fast = await runLocked(spec, fastActivateScript(spec, owner, plan), "switch", activationTimeout).catch(
      (err: unknown) => failBeforeServing(spec, err, "", finish),
    );
    if (parseFacts(fast.stdout).one["fast"] !== "0") {
      activated = fast;
      current = parseFacts(fast.stdout).one["current"] ?? "";
    }
  }

  if (!activated) {
    const facts = parseFacts((await runLocked(spec, prepareScript(spec, owner), "prepare", spec.stepTimeoutMs)).stdout);
    current = facts.one["current"] ?? "";
    const releasePresent = facts.one["release_present"] === "1";
    if (spec.pinned && !releasePresent) {
      await finish("failed", current, "pinned release is gone").catch(() => undefined);
      throw deployError(
        `[${connectionKey(spec.connection)}] service "${spec.name}": release ${spec.releaseId} is pinned (a rollback), but the host no longer has it; nothing was changed. ` +
          `Deploy it from source instead: set the service's source ref to ${spec.commit}, remove the pin (npm run rollback -- --unpin), and run pulumi up.`,
      );
    }
    const depsPresent = facts.one["deps_present"] === "1";
    retained = [
      ...parseReleaseLines(facts.all["release"] ?? []).filter((r) => r.id !== spec.releaseId),
      { id: spec.releaseId, activatedAt: Date.now() },
    ];
    deleteReleases = releasesToDelete(retained, {
      keep: spec.keepReleases,
      current: spec.releaseId,
      previous: current && current !== spec.releaseId ? current : undefined,
    });
    try {
      if (!releasePresent && spec.source.kind === "image") {
        const s = spec.source;
        await ensureImageOnHost(spec.connection, {
          imageId: s.imageId,
          tags: s.tags,
          dockerHost: s.dockerHost,
          timeoutMs: spec.stepTimeoutMs,
        });
      }
      if (!releasePresent) await upload(spec, secrets);
      if (spec.install && !depsPresent) {
        await runScript(spec.connection, installScript(spec, !releasePresent), {
          step: "install",
          secrets,
          timeoutMs: spec.stepTimeoutMs,
        });
        depsReinstalled = true;
      }
      activated = await runScript(
        spec.connection,
        activateScript(spec, {
          stage: !releasePresent,
          envFile,
          onSuccess: { deleteReleases, audit: audit("ok"), elapsedBeforeMs: Date.now() - started },
        }),
        { step: spec.build && !releasePresent ? "build and switch" : "switch", secrets, timeoutMs: activationTimeout },
      );
    } catch (err) {
      return failBeforeServing(spec, err, current, finish);
    }
  }

  const out = parseFacts(activated.stdout).one;
  const previousReleaseId = out["previous"] ?? current;
  const gate = judge(spec, activated.stdout, spec.commit);
  if (gate.verdict.ok) {
    // The host finished already when its own check agreed; otherwise finish from here.
    if (out["finalized"] !== "1") await finish("ok", previousReleaseId);
    const layout = layoutOf(spec);
    if (spec.source.kind === "image") await keepImages(spec, previousReleaseId);
    return JSON.parse(
      JSON.stringify({
        ...spec,
        host: spec.connection.host,
        path: `${layout.releases}/${spec.releaseId}`,
        deployedAt: new Date().toISOString(),
        depsReinstalled,
        previousReleaseId: previousReleaseId === spec.releaseId ? "" : previousReleaseId,
        retainedReleases: [...new Set(retained.map((r) => r.id).filter((id) => !deleteReleases.includes(id)))].sort(),
      }),
    ) as ServiceState;
  }
  if (out["finalized"] === "1") {
    // The host's quick check passed but the real one did not: take the lock back to roll back.
    await runLocked(spec, prepareScript(spec, owner), "prepare", spec.stepTimeoutMs);
  }
  return rollBackAndFail(spec, gate, out["migrated"] === "1", previousReleaseId, finish);
}

/** Streams the packed release into the host's staging directory over the pooled connection. */
async function upload(spec: ServiceSpec, secrets: string[]): Promise<void> {
  const packed = await sharedPack(spec.source, spec.releaseId);
  const [uploaded] = await Promise.all([
    exec(spec.connection, uploadCommand(spec), {
      step: "upload",
      stdin: packed.stream,
      secrets,
      timeoutMs: spec.stepTimeoutMs,
    }),
    packed.done,
  ]);
  if (uploaded.code !== 0)
    throw exitError(connectionKey(spec.connection), "upload", uploadCommand(spec), uploaded, secrets);
}

type Finish = (result: AuditEntry["result"], from: string, note?: string) => Promise<unknown>;

/** A step failed before the new release served: restore if the switch had begun, record, fail. */
async function failBeforeServing(spec: ServiceSpec, err: unknown, current: string, finish: Finish): Promise<never> {
  if (!isRemoteCommandError(err) && !isConnectionError(err)) throw err; // a refusal (lock): nothing to undo
  const host = connectionKey(spec.connection);
  const phase = failedPhase(err);
  // A switch stopped part-way may have written the new env and unit already: undo it too.
  const switched = phase === "switch" || phase === "restart" || phase === "health" || phase === "finalize";
  const rollback = switched ? await rollbackQuietly(spec) : "";
  const touched = switched && !rollback.includes("had not changed anything");
  // The upload names no phase of its own (it is tar, not a script): its step is the phase.
  const where = phase || (isRemoteCommandError(err) && err.step === "upload" ? "upload" : "");
  if (!isConnectionError(err)) {
    await finish(
      "failed",
      current,
      `failed at ${phase || (isRemoteCommandError(err) ? err.step : "") || "connect"}${rollback}`,
    ).catch((e) => console.error(`[${host}] could not finalize after failure: ${(e as Error).message}`));
  }
  const e = err instanceof Error ? err : new Error(String(err));
  throw deployError(
    `[${host}] service "${spec.name}": deploy of ${spec.releaseId} failed${where ? ` in its ${where} phase` : ""} before serving it; ` +
      `${switched ? rollback.slice(2) : `the serving release (${current || "none"}) was not touched`}.` +
      (phase === "migrate" ? " The migration failed: whatever it applied before failing stays applied." : "") +
      `\n${e.message}`,
    rollback.includes("CRITICAL")
      ? "critical"
      : touched
        ? "rollback"
        : phase === "build" || phase === "install" || (isRemoteCommandError(err) && err.step === "install")
          ? "build"
          : "failure",
    current,
  );
}

async function rollbackQuietly(spec: ServiceSpec): Promise<string> {
  try {
    const r = await runScript(spec.connection, rollbackScript(spec), { step: "rollback", secrets: secretsOf(spec) });
    const restored = parseFacts(r.stdout).one["restored"] ?? "?";
    if (restored === "none") return "; the switch had not changed anything yet, so the serving release was not touched";
    return `; rolled back to ${restored} (previous release restored)`;
  } catch (e) {
    return `; CRITICAL: rollback failed: ${(e as Error).message}`;
  }
}

/** The gate failed: put the previous release back, prove it serves, record, and fail loudly. */
async function rollBackAndFail(
  spec: ServiceSpec,
  gate: ReturnType<typeof judge>,
  migrated: boolean,
  previousReleaseId: string,
  finish: Finish,
): Promise<never> {
  const host = connectionKey(spec.connection);
  const secrets = secretsOf(spec);
  const failure = `${gate.verdict.failedCheck}\n${evidence(gate.outcome, secrets)}`;
  // With restoreOnRollback, a release that migrated gives the database back first: stop it (no
  // writes during the restore), restore the pre-deploy backup, then start the previous release.
  const database = migrated && spec.restoreOnRollback ? await restoreDatabase(spec) : undefined;
  // A release whose migrations were undone with the database must migrate again if deployed again.
  const rolled = await runScript(spec.connection, rollbackScript(spec, { unstage: database?.ok === true }), {
    step: "rollback",
    secrets,
    timeoutMs: spec.stepTimeoutMs + spec.health.timeoutMs,
  }).then(
    (r) => ({ stdout: r.stdout }),
    (e: Error) => ({ error: e }),
  );
  let outcome: string;
  let critical = false;
  if ("error" in rolled) {
    critical = true;
    outcome = `CRITICAL: the rollback itself failed, the host may be serving the broken release:\n${redact(rolled.error.message, secrets)}`;
  } else {
    const facts = parseFacts(rolled.stdout).one;
    const restored = facts["restored"] ?? "";
    const restoredCommit = facts["restored_commit"] ?? "";
    if (restored === "nothing") {
      outcome = "There was no previous release: the service was stopped and its unit removed.";
    } else {
      const back = judge(spec, rolled.stdout, restoredCommit || spec.commit);
      // A previous release without REVISION (deployed by hand) cannot be version-checked.
      if (back.verdict.ok || (!restoredCommit && back.outcome.result === "ok")) {
        outcome = `Rolled back automatically: ${restored} is serving and healthy again.`;
        if (database) outcome += ` ${database.message}`;
        else if (migrated)
          outcome += ` The migrations ${spec.releaseId} ran (${spec.migrate}) stay applied: the database was not rolled back.`;
      } else {
        critical = true;
        outcome = `CRITICAL: rolled back to ${restored}, but it is not healthy either: ${back.verdict.failedCheck}\n${evidence(back.outcome, secrets)}`;
      }
    }
  }
  if (database && !database.ok) {
    critical = true;
    outcome += `\n${database.message}`;
  }
  await finish(critical ? "critical" : "rolled-back", previousReleaseId, failure.split("\n")[0] ?? "").catch(
    () => undefined,
  );
  throw deployError(
    `[${host}] service "${spec.name}": release ${spec.releaseId} (commit ${spec.commit}) failed its health gate: ${failure}\n${outcome}`,
    critical ? "critical" : "rollback",
    previousReleaseId,
  );
}

/** Stops the failed release and restores the pre-deploy backup; never throws (the rollback goes on). */
async function restoreDatabase(spec: ServiceSpec): Promise<{ ok: boolean; message: string }> {
  const point = spec.restoreOnRollback!;
  const secrets = secretsOf(spec);
  try {
    await runScript(spec.connection, `systemctl stop ${shq(spec.unitName)}\n`, { step: "stop for restore", secrets });
    const { record } = await restoreBackup(point.backup, point.backupId);
    return {
      ok: true,
      message: `The database was restored from the pre-deploy backup ${record.id}; the migrated state is kept in the safety backup ${record.safetyBackupId}.`,
    };
  } catch (err) {
    return {
      ok: false,
      message: `CRITICAL: restoring the pre-deploy backup ${point.backupId} failed, so the previous release runs on the migrated database: ${redact((err as Error).message, secrets)}`,
    };
  }
}

/**
 * After an image release serves: record the images the retained releases use (image retention
 * never deletes those), then prune the GoldenImage's images on the host. Only ever warns.
 */
async function keepImages(spec: ServiceSpec, previousReleaseId: string): Promise<void> {
  if (spec.source.kind !== "image") return;
  const s = spec.source;
  try {
    const layout = layoutOf(spec);
    const previous = await runScript(
      spec.connection,
      `cat ${shq(`${layout.releases}/${previousReleaseId}/IMAGE`)} 2>/dev/null || true\n`,
      {
        step: "previous image",
        secrets: secretsOf(spec),
      },
    );
    await runScript(spec.connection, recordReleaseImagesScript(spec.name, layout.releases), {
      step: "record images",
      secrets: secretsOf(spec),
    });
    await pruneImages(hostPlace(spec.connection, spec.stepTimeoutMs), {
      name: s.name,
      keep: s.keep,
      history: s.history,
      protect: [s.imageId, ...previous.stdout.split("\n").filter(Boolean)],
    });
  } catch (err) {
    console.error(
      `warning: [${connectionKey(spec.connection)}] ${spec.name}: image retention skipped: ${redact((err as Error).message, secretsOf(spec))}`,
    );
  }
}
