/**
 * A file backend's stack lock (`.pulumi/locks/<org>/<project>/<stack>/<id>.json`, written by the
 * CLI for the length of an update: pid, username, hostname, timestamp). A `pulumi up` that was
 * killed leaves its lock, and every later update of the stack is refused until `pulumi cancel`.
 * Pure: whether the holder is alive is asked of the caller.
 */
export interface StackLockOwner {
  readonly pid: number;
  readonly username: string;
  readonly hostname: string;
  readonly timestamp: string;
}

export type StackLockVerdict =
  | { readonly kind: "stale"; readonly owner: StackLockOwner; readonly why: string }
  | { readonly kind: "held"; readonly owner: StackLockOwner; readonly why: string };

/**
 * Stale only when its holder ran on this machine and that process is gone; a holder on another
 * machine, or an alive one, keeps the lock (fleet cannot tell whether it still works).
 */
export function judgeStackLock(
  owner: StackLockOwner,
  here: { readonly hostname: string; readonly alive: (pid: number) => boolean },
): StackLockVerdict {
  const who = `${owner.username}@${owner.hostname} (pid ${owner.pid}, since ${owner.timestamp})`;
  if (owner.hostname !== here.hostname) return { kind: "held", owner, why: `${who} holds it from another machine` };
  if (here.alive(owner.pid)) return { kind: "held", owner, why: `${who} is still running` };
  return { kind: "stale", owner, why: `${who} is gone: a killed or crashed pulumi left it` };
}

/** The lock file's content, or undefined when it is not a CLI lock. */
export function parseStackLock(text: string): StackLockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<StackLockOwner>;
    if (typeof v.pid === "number" && typeof v.hostname === "string")
      return {
        pid: v.pid,
        username: String(v.username ?? ""),
        hostname: v.hostname,
        timestamp: String(v.timestamp ?? ""),
      };
  } catch {
    // not JSON
  }
  return undefined;
}
