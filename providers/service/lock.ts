import type { ServiceSpec } from "../../model/service";
import { EXIT, breakLockScript, layoutOf, type LockOwner } from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { exitError } from "../../transport/errors";
import { connectionKey, runScript, type ExecResult } from "../../transport/ssh";
import { fleetError } from "../../model/errors";

export function secretsOf(spec: ServiceSpec): string[] {
  return [
    spec.connection.privateKey,
    ...Object.values(spec.secretEnv),
    ...(spec.notify ?? []).map((t) => t.url),
    ...(spec.restoreOnRollback?.backup.postgres?.password ? [spec.restoreOnRollback.backup.postgres.password] : []),
  ];
}

export function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => "    " + l)
    .join("\n");
}

/** Who this deploy is, written into the lock so a refused deploy can name it. */
export function lockOwner(spec: ServiceSpec): LockOwner {
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
export function heldTokens(): string[] {
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

/**
 * Runs a script that starts by taking the lock. A held lock is refused with its holder's
 * details; a stale one is broken (compare-and-delete) and the script retried, when allowed.
 */
export async function runLocked(
  spec: ServiceSpec,
  script: string,
  step: string,
  timeoutMs: number,
): Promise<ExecResult> {
  const host = connectionKey(spec.connection);
  const secrets = secretsOf(spec);
  for (let attempt = 0; attempt < 2; attempt++) {
    const result = await runScript(spec.connection, script, { step, secrets, timeoutMs }, false);
    if (result.code === 0) {
      const took = parseFacts(result.stdout).one;
      if (took["took_over"] === "1") {
        console.error(
          `[${host}] ${spec.name}: took over the lock of a deploy that is gone (${took["stale_who"] ?? "?"}, release ` +
            `${took["stale_release"] ?? "?"}, since ${took["stale_since"] ?? "?"}): its connection had ended; deploy.log has it as interrupted.`,
        );
      }
      return result;
    }
    if (result.code !== EXIT.locked) throw exitError(host, step, `/bin/sh -s (${step})`, result, secrets);
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
    throw fleetError(
      "failure",
      `[${host}] service "${spec.name}" is locked by another deploy:\n${indent(ownerText.trim() || "(no owner recorded)")}`,
      stale
        ? `That deploy is gone (its process ended, or its connection died): set breakStaleLock: true to break this lock.`
        : `Wait for it to finish. If it died on another machine, remove ${layoutOf(spec).lock} on the host after checking.`,
      { host },
    );
  }
  throw fleetError(
    "failure",
    `[${host}] could not take the deploy lock of "${spec.name}"`,
    "Another deploy took it again right after its stale lock was broken: wait for that one and deploy again.",
    { host },
  );
}
