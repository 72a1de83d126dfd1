/** A verified backup, as its manifest line records it (issue #5). */
export interface BackupRecord {
  readonly id: string;
  /** When it was taken, epoch ms. */
  readonly takenAt: number;
  /** The releases it was taken for (about to be deployed when it ran); empty for none. */
  readonly releases: readonly string[];
}

export interface BackupRetentionPolicy {
  /** Keep the `keep` newest backups. 0 or undefined: this rule keeps nothing by itself. */
  readonly keep?: number;
  /** Keep every backup younger than this many days. 0 or undefined: this rule keeps nothing by itself. */
  readonly keepDays?: number;
  /** Now, epoch ms (passed in: decisions are pure). */
  readonly now: number;
  /** Backups taken for any of these releases are never deleted (a retained release may need its data back). */
  readonly protectReleases?: readonly string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Which backups to delete. A backup is kept when any rule keeps it (like restic's
 * `--keep-last` with `--keep-within`): among the `keep` newest, or younger than `keepDays`, or
 * taken for a protected release, or the newest one (the manifest lists only verified backups,
 * so the newest listed is the newest verified, and there is always one to restore). With no
 * `keep` and no `keepDays` nothing is deleted: an unset policy never deletes data.
 */
export function backupsToDelete(backups: readonly BackupRecord[], policy: BackupRetentionPolicy): string[] {
  const keep = policy.keep ?? 0;
  const keepDays = policy.keepDays ?? 0;
  if (keep <= 0 && keepDays <= 0) return [];
  const newestFirst = newestFirstOrder(backups);
  const protectedReleases = new Set(policy.protectReleases ?? []);
  const kept = new Set<string>();
  newestFirst.forEach((b, i) => {
    if (i === 0) kept.add(b.id);
    if (keep > 0 && i < keep) kept.add(b.id);
    if (keepDays > 0 && policy.now - b.takenAt < keepDays * DAY_MS) kept.add(b.id);
    if (b.releases.some((r) => protectedReleases.has(r))) kept.add(b.id);
  });
  return newestFirst.filter((b) => !kept.has(b.id)).map((b) => b.id);
}

/** Newest first; ties (same millisecond) broken by id, descending, so the order is total. */
export function newestFirstOrder(backups: readonly BackupRecord[]): BackupRecord[] {
  return [...backups].sort((a, b) => b.takenAt - a.takenAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** The newest verified backup, if any. */
export function newestBackup(backups: readonly BackupRecord[]): BackupRecord | undefined {
  return newestFirstOrder(backups)[0];
}
