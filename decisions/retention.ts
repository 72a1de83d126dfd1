/** A release on the host, as the prepare step reports it. */
export interface RetainedRelease {
  readonly id: string;
  /** When it was last switched to (epoch ms); 0 for one that failed or never served. */
  readonly activatedAt: number;
}

export interface RetentionPolicy {
  /** How many releases to keep, counting the serving one. */
  readonly keep: number;
  /** The serving release: never deleted. */
  readonly current: string;
  /** The rollback target: never deleted. */
  readonly previous?: string;
}

/**
 * Which releases to delete: all but the `keep` most recently activated, and never the serving
 * release or the rollback target, whatever their age.
 */
export function releasesToDelete(releases: readonly RetainedRelease[], policy: RetentionPolicy): string[] {
  const protectedIds = new Set([policy.current, policy.previous].filter((x): x is string => !!x));
  const newestFirst = [...releases].sort((a, b) => b.activatedAt - a.activatedAt || a.id.localeCompare(b.id));
  const kept = new Set(newestFirst.slice(0, Math.max(policy.keep, 1)).map((r) => r.id));
  return newestFirst.filter((r) => !kept.has(r.id) && !protectedIds.has(r.id)).map((r) => r.id);
}

/** Parses `release=<id> <activatedAt> <deps>` lines. */
export function parseReleaseLines(lines: readonly string[]): RetainedRelease[] {
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter((parts) => parts[0])
    .map(([id, at]) => ({ id: id!, activatedAt: Number(at) || 0 }));
}
