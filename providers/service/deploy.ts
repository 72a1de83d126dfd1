import type { ServiceSpec, ServiceState } from "../../model/service";
import { isConnectionError, isRemoteCommandError, remoteCommandError } from "../../transport/errors";
import { connectionKey, exec, runScript } from "../../transport/ssh";
import {
  EXIT,
  activateScript,
  breakLockScript,
  finalizeScript,
  installScript,
  layoutOf,
  prepareScript,
  rollbackScript,
  uploadCommand,
  type LockOwner,
} from "../../commands/service";
import { decodeBase64, parseFacts, type Facts } from "../../commands/facts";
import { renderEnvFile } from "../../commands/unit";
import { judgeHealth, type HealthVerdict, type ProbeOutcome } from "../../decisions/health";
import { parseReleaseLines, releasesToDelete } from "../../decisions/retention";
import { redact, tail } from "../../transport/redact";
import { packSource } from "../../source/pack";

/**
 * A deploy that did not go through; the message carries the evidence, secrets redacted.
 * A plain Error (see transport/errors.ts for why not a subclass).
 */
export function deployError(message: string, critical = false): Error & { critical: boolean } {
  return Object.assign(new Error(message), { name: "DeployError", critical });
}

function secretsOf(spec: ServiceSpec): string[] {
  return [spec.connection.privateKey, ...Object.values(spec.secretEnv)];
}

function sha256(text: string): string {
  const crypto = require("crypto") as typeof import("crypto");
  return crypto.createHash("sha256").update(text).digest("hex");
}

function lockOwner(spec: ServiceSpec): LockOwner {
  const os = require("os") as typeof import("os");
  const crypto = require("crypto") as typeof import("crypto");
  return {
    token: crypto.randomBytes(8).toString("hex"),
    who: `${os.userInfo().username}@${os.hostname()}`,
    machine: os.hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    release: spec.releaseId,
  };
}

/** Who is checking a lock: this machine, this process, and the lock tokens it holds right now. */
export interface LockChecker {
  readonly machine: string;
  readonly pid: number;
  readonly alive: (pid: number) => boolean;
  readonly heldTokens: readonly string[];
}

/**
 * A lock is stale only when provably so: taken on this machine by a process that is gone, or
 * by this very process for a deploy it no longer runs (a connection that died mid-deploy).
 */
export function lockIsStale(ownerText: string, me: LockChecker): boolean {
  const facts = parseFacts(ownerText).one;
  const pid = Number(facts["pid"]);
  if (facts["machine"] !== me.machine || !Number.isInteger(pid) || pid <= 0) return false;
  if (pid === me.pid) return !me.heldTokens.includes(facts["token"] ?? "");
  return !me.alive(pid);
}

/** Lock tokens of the deploys this process is running (shared by every provider copy). */
function heldTokens(): string[] {
  const g = globalThis as unknown as Record<string, string[] | undefined>;
  return (g["__fleetHeldLocks"] ??= []);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Takes the lock and inspects the host; breaks a stale lock when allowed. */
async function prepare(spec: ServiceSpec, owner: LockOwner): Promise<Facts> {
  const host = connectionKey(spec.connection);
  const secrets = secretsOf(spec);
  const unitSha = sha256(spec.unit);
  for (let attempt = 0; attempt < 2; attempt++) {
    const result = await runScript(
      spec.connection,
      prepareScript(spec, owner, unitSha),
      { step: "prepare", secrets, timeoutMs: spec.stepTimeoutMs },
      false,
    );
    if (result.code === 0) return parseFacts(result.stdout);
    if (result.code !== EXIT.locked) {
      throw remoteCommandError(
        host,
        "prepare",
        "checks and lock",
        result.code,
        result.stdout,
        result.stderr,
        `exit code ${result.code}`,
        secrets,
      );
    }
    const ownerText = result.stdout.replace(/^locked=1\n/, "");
    const os = require("os") as typeof import("os");
    const stale = lockIsStale(ownerText, {
      machine: os.hostname(),
      pid: process.pid,
      alive: processAlive,
      heldTokens: heldTokens(),
    });
    if (stale && spec.breakStaleLock && attempt === 0) {
      await runScript(spec.connection, breakLockScript(spec, ownerText), { step: "break-lock", secrets });
      console.error(`[${host}] ${spec.name}: broke a stale deploy lock:\n${ownerText.trim()}`);
      continue;
    }
    throw deployError(
      `[${host}] service "${spec.name}" is locked by another deploy:\n${indent(ownerText.trim() || "(no owner recorded)")}\n` +
        (stale
          ? `That deploy is gone (its process ended, or its connection died): set breakStaleLock: true to break this lock.`
          : `Wait for it to finish. If it died on another machine, remove ${layoutOf(spec).lock} on the host after checking.`),
    );
  }
  throw deployError(`[${host}] could not take the deploy lock of "${spec.name}"`);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => "    " + l)
    .join("\n");
}

function parseProbe(stdout: string, restartsBaseline: number): ProbeOutcome {
  const f = parseFacts(stdout).one;
  return {
    result: (f["result"] as ProbeOutcome["result"]) ?? "timeout",
    status: f["status"] ?? "000",
    body: decodeBase64(f["body"]),
    curlError: decodeBase64(f["curl_error"]),
    versionStatus: f["version_status"],
    versionBody: f["version_body"] !== undefined ? decodeBase64(f["version_body"]) : undefined,
    active: f["active"] ?? "",
    journal: decodeBase64(f["journal"]),
    restarts: { baseline: restartsBaseline, now: Number(f["restarts_now"] ?? restartsBaseline) },
  };
}

interface Gate {
  readonly outcome: ProbeOutcome;
  readonly verdict: HealthVerdict;
}

/** The health verdict on a script's probe output (activate, or rollback). */
function judge(spec: ServiceSpec, stdout: string, commit: string): Gate {
  const outcome = parseProbe(stdout, Number(parseFacts(stdout).one["restarts"] ?? 0));
  return { outcome, verdict: judgeHealth(outcome, spec.health, commit) };
}

function evidence(outcome: ProbeOutcome, secrets: string[]): string {
  const parts = [`  last response: HTTP ${outcome.status} ${JSON.stringify(outcome.body.slice(0, 500))}`];
  if (outcome.versionBody !== undefined)
    parts.push(`  version response: ${JSON.stringify(outcome.versionBody.slice(0, 500))}`);
  if (outcome.journal) parts.push(`  journal (last 50 lines):\n${indent(tail(outcome.journal, 50))}`);
  return redact(parts.join("\n"), secrets);
}

/** The phase a failed script reached, from its `fleet-phase:` lines. */
function failedPhase(err: unknown): string {
  if (!isRemoteCommandError(err)) return "";
  const phases = [...err.stderrTail.matchAll(/fleet-phase: (\S+)/g)];
  return phases.length ? phases[phases.length - 1]![1]! : "";
}

function auditLine(owner: LockOwner, from: string, to: string, result: string, started: number, note = ""): string {
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  const clean = note.replace(/\s+/g, " ").slice(0, 300);
  return `${new Date().toISOString()} ${owner.who} ${from || "-"} -> ${to} ${result} ${seconds}s${clean ? " " + clean : ""}`;
}

/**
 * Deploys `spec` to its host in as few round trips as the work allows: prepare (checks, lock) →
 * upload → install (only for a new dependency set) → stage/build + switch + restart + health
 * gate → finalize (retention, audit line, unlock). On a failed gate: rollback + health of the
 * previous release → finalize → fail with the evidence.
 * Returns the state to record only when the new release is serving and healthy.
 */
export async function deployService(spec: ServiceSpec): Promise<ServiceState> {
  const owner = lockOwner(spec);
  const held = heldTokens();
  held.push(owner.token);
  try {
    return await deployHoldingToken(spec, owner);
  } finally {
    held.splice(held.indexOf(owner.token), 1);
  }
}

async function deployHoldingToken(spec: ServiceSpec, owner: LockOwner): Promise<ServiceState> {
  const started = Date.now();
  const host = connectionKey(spec.connection);
  const secrets = secretsOf(spec);
  const facts = await prepare(spec, owner);
  const current = facts.one["current"] ?? "";
  const releasePresent = facts.one["release_present"] === "1";
  const depsPresent = facts.one["deps_present"] === "1";
  const unitChanged = facts.one["unit_sha"] !== facts.one["unit_wanted"];
  const retained = parseReleaseLines(facts.all["release"] ?? []);
  const finish = (result: string, deleteReleases: string[] = [], note = "") =>
    runScript(
      spec.connection,
      finalizeScript(spec, {
        deleteReleases,
        auditLine: auditLine(owner, current, spec.releaseId, result, started, note),
      }),
      { step: "finalize", secrets, timeoutMs: spec.stepTimeoutMs },
    );

  let gate: Gate;
  let previousReleaseId = current;
  let migrated = false;
  try {
    if (!releasePresent) {
      const packed = packSource(spec.source);
      const [uploaded] = await Promise.all([
        exec(spec.connection, uploadCommand(spec), {
          step: "upload",
          stdin: packed.stream,
          secrets,
          timeoutMs: spec.stepTimeoutMs,
        }),
        packed.done,
      ]);
      if (uploaded.code !== 0) {
        throw remoteCommandError(
          host,
          "upload",
          uploadCommand(spec),
          uploaded.code,
          uploaded.stdout,
          uploaded.stderr,
          `exit code ${uploaded.code}`,
          secrets,
        );
      }
    }
    if (spec.install && !depsPresent) {
      await runScript(spec.connection, installScript(spec, !releasePresent), {
        step: "install",
        secrets,
        timeoutMs: spec.stepTimeoutMs,
      });
    }
    // Stage, switch, restart and the health gate: one round trip.
    const activated = await runScript(
      spec.connection,
      activateScript(spec, {
        stage: !releasePresent,
        unitChanged,
        envFile: renderEnvFile({ ...spec.env, ...spec.secretEnv }, spec.releaseId, spec.commit),
      }),
      {
        step: spec.build && !releasePresent ? "build and switch" : "switch",
        secrets,
        timeoutMs: spec.stepTimeoutMs + spec.health.timeoutMs,
      },
    );
    previousReleaseId = parseFacts(activated.stdout).one["previous"] ?? current;
    migrated = parseFacts(activated.stdout).one["migrated"] === "1";
    gate = judge(spec, activated.stdout, spec.commit);
  } catch (err) {
    const phase = failedPhase(err);
    const switched = phase === "restart" || phase === "health";
    let note = `failed at ${phase || (isRemoteCommandError(err) ? err.step : "") || "connect"}`;
    const rollback = switched ? await rollbackQuietly(spec) : "";
    note += rollback;
    if (!isConnectionError(err)) {
      await finish("failed", [], note).catch((e) =>
        console.error(`[${host}] could not finalize after failure: ${(e as Error).message}`),
      );
    }
    throw prefixError(
      err,
      `[${host}] service "${spec.name}": deploy of ${spec.releaseId} failed before serving it; ${switched ? rollback.slice(2) : `the serving release (${current || "none"}) was not touched`}.` +
        (phase === "migrate" ? " The migration failed: whatever it applied before failing stays applied." : ""),
    );
  }

  if (gate.verdict.ok) {
    const releases = [
      ...retained.filter((r) => r.id !== spec.releaseId),
      { id: spec.releaseId, activatedAt: Date.now() },
    ];
    const deleteReleases = releasesToDelete(releases, {
      keep: spec.keepReleases,
      current: spec.releaseId,
      previous: previousReleaseId !== spec.releaseId ? previousReleaseId : undefined,
    });
    await finish("ok", deleteReleases);
    const layout = layoutOf(spec);
    return JSON.parse(
      JSON.stringify({
        ...spec,
        host: spec.connection.host,
        path: `${layout.releases}/${spec.releaseId}`,
        deployedAt: new Date().toISOString(),
        depsReinstalled: !!spec.install && !depsPresent,
        previousReleaseId: previousReleaseId === spec.releaseId ? "" : previousReleaseId,
        retainedReleases: releases
          .map((r) => r.id)
          .filter((id) => !deleteReleases.includes(id))
          .sort(),
      }),
    ) as ServiceState;
  }

  // The gate failed: put the previous release back and prove it serves, then fail loudly.
  const failure = `${gate.verdict.failedCheck}\n${evidence(gate.outcome, secrets)}`;
  const rolled = await runScript(spec.connection, rollbackScript(spec), {
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
        if (migrated)
          outcome += ` The migrations ${spec.releaseId} ran (${spec.migrate}) stay applied: the database was not rolled back.`;
      } else {
        critical = true;
        outcome = `CRITICAL: rolled back to ${restored}, but it is not healthy either: ${back.verdict.failedCheck}\n${evidence(back.outcome, secrets)}`;
      }
    }
  }
  await finish(critical ? "critical" : "rolled-back", [], failure.split("\n")[0] ?? "").catch(() => undefined);
  throw deployError(
    `[${host}] service "${spec.name}": release ${spec.releaseId} (commit ${spec.commit}) failed its health gate: ${failure}\n${outcome}`,
    critical,
  );
}

async function rollbackQuietly(spec: ServiceSpec): Promise<string> {
  try {
    const r = await runScript(spec.connection, rollbackScript(spec), { step: "rollback", secrets: secretsOf(spec) });
    return `; rolled back to ${parseFacts(r.stdout).one["restored"] ?? "?"} (previous release restored)`;
  } catch (e) {
    return `; CRITICAL: rollback failed: ${(e as Error).message}`;
  }
}

function prefixError(err: unknown, prefix: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  return deployError(`${prefix}\n${e.message}`);
}
