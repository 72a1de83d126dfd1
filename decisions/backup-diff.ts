import { differs, pick } from "./diff-keys";

/** Another target or place for the backups: a new backup set, so a replacement. */
export const BACKUP_REPLACE_KEYS = [
  "name",
  "backupsDir",
  "engine",
  "connection.host",
  "connection.port",
  "postgres.host",
  "postgres.port",
  "postgres.database",
  "sqlite.path",
] as const;

/** A new backup is due (or a restore is asked for): an update. */
export const BACKUP_UPDATE_KEYS = ["trigger", "releases", "restore"] as const;

/**
 * Recorded by an update that does no remote work: `read` and `delete` get only the stored
 * OUTPUTS, and a no-change step keeps the old ones, so a rotated key or a new
 * `deleteBackupsOnDestroy` would otherwise never reach `pulumi refresh` / `pulumi destroy`.
 */
export const BACKUP_RECORD_KEYS = [
  "connection.user",
  "connection.privateKey",
  "connection.hostKey",
  "deleteBackupsOnDestroy",
] as const;

export interface BackupDiff {
  readonly changes: boolean;
  readonly replaces: string[];
  readonly changedKeys: string[];
}

/**
 * The DatabaseBackup diff. `olds` are the old OUTPUTS (all the dynamic provider gets), which echo
 * the inputs. Another host, engine or database (or backups dir, or name) is a replacement; a new
 * trigger or release list is an update (a new backup); so is any change of `restore`, to empty
 * included: the engine keeps the old outputs on a no-change step, so "" must be recorded for a
 * later change back to the same id to be seen; and so are the BACKUP_RECORD_KEYS. Anything else
 * (keep, keepDays, protectReleases, verifyTables, the password, timeouts) is no change: the
 * next backup uses the new values.
 */
export function diffBackup(olds: unknown, news: unknown): BackupDiff {
  const replaces = [...new Set(BACKUP_REPLACE_KEYS.filter((k) => differs(olds, news, k)).map((k) => k.split(".")[0]!))];
  const updates = [...BACKUP_UPDATE_KEYS, ...BACKUP_RECORD_KEYS].filter((k) => differs(olds, news, k));
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    changedKeys: [...BACKUP_REPLACE_KEYS.filter((k) => differs(olds, news, k)), ...updates],
  };
}

/** What an update must do, from the old outputs and the new inputs. */
export interface BackupPlan {
  /** Take a backup now (the trigger or the releases changed). */
  readonly backup: boolean;
  /** Restore this backup id ("" for none): `restore` changed to a non-empty value. */
  readonly restore: string;
}

export function planBackupUpdate(olds: unknown, news: unknown): BackupPlan {
  const restore = pick(news, "restore");
  return {
    backup: differs(olds, news, "trigger") || differs(olds, news, "releases"),
    restore: typeof restore === "string" && restore !== "" && differs(olds, news, "restore") ? restore : "",
  };
}
