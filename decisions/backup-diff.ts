import { differs, pick } from "./diff-keys";

/** Another target for the backups: a new backup set, so a replacement. */
export const BACKUP_REPLACE_KEYS = [
  "name",
  "engine",
  "connection.host",
  "connection.port",
  "postgres.host",
  "postgres.port",
  "postgres.database",
  "sqlite.path",
] as const;

/**
 * The same set in another place: an update that moves its backups there first. A replacement
 * (create-before-delete) would start an empty set and leave the backups behind, unlisted and
 * still wherever they were: under the old default `<root>/<name>/backups`, inside the folder of
 * a service named like the set, which that service's delete removes (security issue "a
 * service's own account never becomes root"), and with `deleteBackupsOnDestroy` deleted by the
 * replacement itself. With another name, host or database too, it stays a replacement.
 */
export const BACKUP_MOVE_KEYS = ["backupsDir"] as const;

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
 * the inputs. Another host, engine, database or name is a replacement; another backups dir alone
 * is an update that moves the backups there (BACKUP_MOVE_KEYS); a new trigger or release list
 * is an update (a new backup); so is any change of `restore`, to empty
 * included: the engine keeps the old outputs on a no-change step, so "" must be recorded for a
 * later change back to the same id to be seen; and so are the BACKUP_RECORD_KEYS. Anything else
 * (keep, keepDays, protectReleases, verifyTables, the password, timeouts) is no change: the
 * next backup uses the new values.
 */
export function diffBackup(olds: unknown, news: unknown): BackupDiff {
  const replaces = [...new Set(BACKUP_REPLACE_KEYS.filter((k) => differs(olds, news, k)).map((k) => k.split(".")[0]!))];
  const updates = [...BACKUP_MOVE_KEYS, ...BACKUP_UPDATE_KEYS, ...BACKUP_RECORD_KEYS].filter((k) =>
    differs(olds, news, k),
  );
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    changedKeys: [...BACKUP_REPLACE_KEYS.filter((k) => differs(olds, news, k)), ...updates],
  };
}

/** What an update must do, from the old outputs and the new inputs. */
export interface BackupPlan {
  /** Move the set's backups from this directory into the new backupsDir first ("" for none). */
  readonly moveFrom: string;
  /** Take a backup now (the trigger or the releases changed). */
  readonly backup: boolean;
  /** Restore this backup id ("" for none): `restore` changed to a non-empty value. */
  readonly restore: string;
}

export function planBackupUpdate(olds: unknown, news: unknown): BackupPlan {
  const restore = pick(news, "restore");
  const from = pick(olds, "backupsDir");
  return {
    moveFrom: typeof from === "string" && from !== "" && differs(olds, news, "backupsDir") ? from : "",
    backup: differs(olds, news, "trigger") || differs(olds, news, "releases"),
    restore: typeof restore === "string" && restore !== "" && differs(olds, news, "restore") ? restore : "",
  };
}
