import type { ServiceSpec, ServiceState } from "../../model/service";
import { fleetError, isFleetError, summaryOf } from "../../model/errors";
import { exitError, isRemoteStepFailure } from "../../transport/errors";
import { connectionKey, exec, presence, runScript } from "../../transport/ssh";
import {
  EXIT,
  activateScript,
  fastActivateScript,
  installScript,
  layoutOf,
  prepareScript,
  uploadCommand,
  type ActivatePlan,
  type LockOwner,
} from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { parseReleaseLines, releasesToDelete, type RetainedRelease } from "../../decisions/retention";
import { redact } from "../../transport/redact";
import { sharedPack } from "../../source/pack";
import { ensureImageOnHost, hostPlace, pruneImages } from "../image/host-images";
import { recordReleaseImagesScript } from "../../commands/image";
import { shq } from "../../commands/quote";
import { header } from "../../commands/service-shell";
import { proxySwitchScript } from "../../commands/service-proxy";
import { judge } from "./gate";
import { notifyAll } from "./notify";
import type { NotifyEvent } from "../../model/notify";
import { heldTokens, lockOwner, runLocked, secretsOf } from "./lock";
import { deployContext, finish, type DeployContext } from "./context";
import { failStep, rollBackAndFail } from "./failure";
import { runHook, warnHook } from "./hooks";

export { lockIsStale } from "./lock";

/** What the provider knows from state: the releases the host kept after the last deploy. */
export interface DeployHint {
  readonly retained?: readonly string[];
}

/**
 * Deploys `spec` to its host in as few round trips as the work allows, and returns the state to
 * record only when the new release is serving and healthy.
 * - A release the host still has (a rollback, a re-apply): one round trip to the gate (checks,
 *   lock, switch, restart, health probe), falling back to the full path if it turns out to be gone.
 * - Otherwise: prepare (checks, lock, inspect) → upload → install (new dependency set only) →
 *   stage/build/migrate + switch + restart + health probe.
 * - Then the gate is judged here, once (decisions/health.ts), before anything is finalized:
 *   passed → finalize (retention, audit line, unlock); failed → rollback + the previous
 *   release's gate → finalize → fail with the evidence.
 */
export async function deployService(spec: ServiceSpec, hint: DeployHint = {}): Promise<ServiceState> {
  // The lock records this process's presence on the host: if it dies, the next deploy can tell.
  const owner = { ...lockOwner(spec), presence: await presence(spec.connection).catch(() => undefined) };
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
    const event = isFleetError(err) && (err.kind === "rollback" || err.kind === "critical") ? err.kind : "failure";
    const from = isFleetError(err) ? (err.from ?? "") : "";
    await announce(event, from, redact((err as Error).message, secretsOf(spec)).slice(0, 3000));
    throw err;
  } finally {
    held.splice(held.indexOf(owner.token), 1);
  }
}

/** The releases the host keeps once this deploy has finished, and those it deletes then. */
interface Retention {
  readonly retained: readonly RetainedRelease[];
  readonly deleteReleases: readonly string[];
}

/** The new release is switched to and restarted; the health probe's evidence waits for its verdict. */
interface Activation {
  /** The activation's output: the probe's evidence, read by the gate (gate.ts). */
  readonly probeOutput: string;
  /** The release that served before the switch ("" for none). */
  readonly previousReleaseId: string;
  /** The new release ran its migrations. */
  readonly migrated: boolean;
  /** The dependency set was installed by this deploy. */
  readonly depsReinstalled: boolean;
  readonly retention: Retention;
}

async function deployHoldingToken(spec: ServiceSpec, owner: LockOwner, hint: DeployHint): Promise<ServiceState> {
  const ctx = deployContext(spec, owner);
  const activation = (await activateRetained(ctx, hint)) ?? (await activateFromSource(ctx));
  // The one verdict on the gate. Nothing is finalized before it: the host holds the lock until then.
  const gate = judge(spec, activation.probeOutput, spec.commit);
  if (!gate.verdict.ok) return rollBackAndFail(ctx, gate, activation);
  if (spec.proxy) await switchProxy(ctx, activation);
  const hookNote = await afterServing(ctx, activation);
  await finalizeServing(ctx, activation, hookNote);
  if (spec.source.kind === "image") await keepImages(spec, activation.previousReleaseId);
  return servingState(spec, activation);
}

function activatePlan(ctx: DeployContext, stage: boolean): ActivatePlan {
  return {
    stage,
    envFile: ctx.envFile,
    token: ctx.owner.token,
    watchdogDeadlineMs: ctx.watchdogDeadlineMs,
  };
}

function activationOf(
  stdout: string,
  current: string,
  rest: Pick<Activation, "depsReinstalled" | "retention">,
): Activation {
  const facts = parseFacts(stdout).one;
  return {
    probeOutput: stdout,
    previousReleaseId: facts["previous"] ?? current,
    migrated: facts["migrated"] === "1",
    ...rest,
  };
}

/**
 * The fast path, for a release the host kept (per state): one script takes the lock, switches
 * and probes. Undefined when not taken, or when the host no longer has the release (`fast=0`).
 */
async function activateRetained(ctx: DeployContext, hint: DeployHint): Promise<Activation | undefined> {
  const { spec } = ctx;
  if (!hint.retained?.includes(spec.releaseId)) return undefined;
  const fast = await runLocked(
    spec,
    fastActivateScript(spec, ctx.owner, activatePlan(ctx, false)),
    "switch",
    ctx.activationTimeoutMs,
  ).catch((err: unknown) => failStep(ctx, err, { current: "" }));
  const facts = parseFacts(fast.stdout).one;
  if (facts["fast"] === "0") return undefined;
  // A switch between retained releases deletes none: the host keeps what state says it has.
  const retained = hint.retained.map((id) => ({ id, activatedAt: 0 }));
  return activationOf(fast.stdout, facts["current"] ?? "", {
    depsReinstalled: false,
    retention: { retained, deleteReleases: [] },
  });
}

/** What the prepare step found on the host (it holds the lock from then on). */
interface HostInventory {
  /** The serving release ("" for none). */
  readonly current: string;
  readonly releasePresent: boolean;
  readonly depsPresent: boolean;
  readonly retention: Retention;
}

async function inspectHost(ctx: DeployContext): Promise<HostInventory> {
  const { spec } = ctx;
  const facts = parseFacts(
    (await runLocked(spec, prepareScript(spec, ctx.owner), "prepare", spec.stepTimeoutMs)).stdout,
  );
  const current = facts.one["current"] ?? "";
  const retained = [
    ...parseReleaseLines(facts.all["release"] ?? []).filter((r) => r.id !== spec.releaseId),
    { id: spec.releaseId, activatedAt: Date.now() },
  ];
  const deleteReleases = releasesToDelete(retained, {
    keep: spec.keepReleases,
    current: spec.releaseId,
    previous: current && current !== spec.releaseId ? current : undefined,
  });
  return {
    current,
    releasePresent: facts.one["release_present"] === "1",
    depsPresent: facts.one["deps_present"] === "1",
    retention: { retained, deleteReleases },
  };
}

/** The full path: prepare, then bring the release and its dependencies, then stage, switch and probe. */
async function activateFromSource(ctx: DeployContext): Promise<Activation> {
  const { spec } = ctx;
  const host = await inspectHost(ctx);
  if (spec.pinned && !host.releasePresent) {
    await finish(ctx, { result: "failed", from: host.current, note: "pinned release is gone" }).catch(() => undefined);
    throw fleetError(
      "failure",
      `[${connectionKey(spec.connection)}] service "${spec.name}": release ${spec.releaseId} is pinned (a rollback), but the host no longer has it; nothing was changed.`,
      `Deploy it from source instead: set the service's source ref to ${spec.commit}, remove the pin (npm run rollback -- --unpin), and run pulumi up.`,
      { host: connectionKey(spec.connection) },
    );
  }
  try {
    if (!host.releasePresent) await bringRelease(ctx);
    const depsReinstalled = await installDeps(ctx, host);
    const result = await runScript(spec.connection, activateScript(spec, activatePlan(ctx, !host.releasePresent)), {
      step: spec.build && !host.releasePresent ? "build and switch" : "switch",
      secrets: ctx.secrets,
      timeoutMs: ctx.activationTimeoutMs,
    });
    return activationOf(result.stdout, host.current, { depsReinstalled, retention: host.retention });
  } catch (err) {
    return failStep(ctx, err, { current: host.current });
  }
}

/** Puts the release's files into the host's staging directory (and its image, for an image source). */
async function bringRelease(ctx: DeployContext): Promise<void> {
  const { spec } = ctx;
  if (spec.source.kind === "image") {
    const s = spec.source;
    await ensureImageOnHost(spec.connection, {
      imageId: s.imageId,
      tags: s.tags,
      dockerHost: s.dockerHost,
      timeoutMs: spec.stepTimeoutMs,
    });
  }
  await upload(spec, ctx.secrets);
}

/** Installs the dependency set when the host lacks it; true when it did. */
async function installDeps(ctx: DeployContext, host: HostInventory): Promise<boolean> {
  const { spec } = ctx;
  if (!spec.install || host.depsPresent) return false;
  await runScript(spec.connection, installScript(spec, !host.releasePresent), {
    step: "install",
    secrets: ctx.secrets,
    timeoutMs: spec.stepTimeoutMs,
  });
  return true;
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

/**
 * Behind the proxy, the gate was probed on the new instance's own port: only now does the proxy
 * switch to it. A failure here is undone like one after the switch (the route and the socket
 * back to the old instance, which never stopped).
 */
async function switchProxy(ctx: DeployContext, activation: Activation): Promise<void> {
  const { spec } = ctx;
  const script = header(layoutOf(spec), spec.runAs) + proxySwitchScript(spec, layoutOf(spec), ctx.owner.token);
  await runScript(spec.connection, script, {
    step: "proxy switch",
    secrets: ctx.secrets,
    timeoutMs: spec.stepTimeoutMs + spec.health.timeoutMs,
  }).catch((err: unknown) => {
    if (isRemoteStepFailure(err) && err.exitCode === EXIT.lockLost)
      throw revertedByHost(ctx, err.stdoutTail, activation.previousReleaseId);
    return failStep(ctx, err, { current: activation.previousReleaseId, afterSwitch: true });
  });
}

/**
 * The release serves and passed its gate: its postDeploy hook runs, still holding the lock; a
 * pinned deploy (`npm run rollback`) runs postRollback instead. A failure warns (its note goes
 * to the audit line) unless `rollbackOnFailure`: then it is undone like a step after the switch.
 */
async function afterServing(ctx: DeployContext, activation: Activation): Promise<string | undefined> {
  const { spec } = ctx;
  const previous = activation.previousReleaseId === spec.releaseId ? "" : activation.previousReleaseId;
  const hooks = spec.hooks;
  const hook = spec.pinned
    ? hooks?.postRollback !== undefined
      ? { hook: "post-rollback" as const, run: hooks.postRollback, rollbackOnFailure: false }
      : undefined
    : hooks?.postDeploy
      ? { hook: "post-deploy" as const, ...hooks.postDeploy }
      : undefined;
  if (!hook) return undefined;
  const outcome = await runHook(ctx, { hook: hook.hook, run: hook.run, previous, decide: true });
  if (outcome.kind === "lostLock") throw revertedByHost(ctx, outcome.stdout, activation.previousReleaseId);
  if (outcome.kind !== "ok" && hook.rollbackOnFailure) {
    const failure =
      outcome.kind === "failed"
        ? outcome.failure
        : exitError(
            connectionKey(spec.connection),
            "postDeploy hook",
            hook.run,
            { code: 1, stdout: "", stderr: outcome.message },
            ctx.secrets,
          );
    return failStep(ctx, failure, { current: activation.previousReleaseId, afterSwitch: true });
  }
  return warnHook(ctx, hook.hook, outcome);
}

/**
 * The gate passed: retention, the audit line, the lock released. A failure here is undone like
 * one inside the switch: what serves was not recorded, so the previous release is put back.
 */
async function finalizeServing(ctx: DeployContext, activation: Activation, note?: string): Promise<void> {
  await finish(ctx, {
    result: "ok",
    from: activation.previousReleaseId,
    deleteReleases: activation.retention.deleteReleases,
    ...(note ? { note } : {}),
  }).catch((err: unknown) => {
    if (isRemoteStepFailure(err) && (err.exitCode === EXIT.reverted || err.exitCode === EXIT.lockLost))
      throw revertedByHost(ctx, err.stdoutTail, activation.previousReleaseId);
    return failStep(ctx, err, { current: activation.previousReleaseId, afterSwitch: true });
  });
}

/**
 * The gate passed, but the confirmation came after the host's watchdog deadline: the host had put
 * the previous release back by itself (and released the lock), so this release is not recorded.
 */
function revertedByHost(ctx: DeployContext, finalizeOutput: string, previous: string): Error {
  const { spec } = ctx;
  const host = connectionKey(spec.connection);
  const last = parseFacts(finalizeOutput).one["last"];
  return fleetError(
    "rollback",
    `[${host}] service "${spec.name}": release ${spec.releaseId} passed its health gate, but the confirmation reached the host after its watchdog's deadline (${Math.round(ctx.watchdogDeadlineMs / 1000)} s from the switch): ` +
      `the host had reverted to ${previous || "the previous release"} by itself.` +
      (last ? `\n  deploy.log: ${last}` : ""),
    "Deploy again: the release is kept on the host, so the next pulumi up only switches. If the connection to this host is that slow, look at it first.",
    { host, from: previous },
  );
}

/** The state to record for a release that serves and passed its gate. */
function servingState(spec: ServiceSpec, activation: Activation): ServiceState {
  const { previousReleaseId, retention } = activation;
  const kept = retention.retained.map((r) => r.id).filter((id) => !retention.deleteReleases.includes(id));
  return JSON.parse(
    JSON.stringify({
      ...spec,
      host: spec.connection.host,
      path: `${layoutOf(spec).releases}/${spec.releaseId}`,
      deployedAt: new Date().toISOString(),
      depsReinstalled: activation.depsReinstalled,
      previousReleaseId: previousReleaseId === spec.releaseId ? "" : previousReleaseId,
      retainedReleases: [...new Set(kept)].sort(),
    }),
  ) as ServiceState;
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
      `warning: [${connectionKey(spec.connection)}] ${spec.name}: image retention skipped: ${redact(summaryOf(err), secretsOf(spec))}`,
    );
  }
}
