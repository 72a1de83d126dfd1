import type { SshConnection } from "./connection";

/** The database engines DatabaseBackup knows. */
export type BackupEngine = "postgres" | "sqlite";

/** A PostgreSQL database, reached from the backup host over the network (or a local socket path). */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Always a Pulumi secret; reaches the host only inside a 0600 PGPASSFILE written by a script on stdin. */
  readonly password: string;
}

/** A SQLite database file on the backup host. */
export interface SqliteTarget {
  readonly path: string;
}

/** The database half of the inputs: what the builders need to reach it. */
export type BackupTarget =
  | { readonly engine: "postgres"; readonly postgres: PostgresTarget }
  | { readonly engine: "sqlite"; readonly sqlite: SqliteTarget };

/** The backup dynamic provider's inputs. Plain data only (serialized into state). */
export interface BackupSpec {
  /** Names the backup set: files are `<name>-<UTC timestamp>-<release>.<ext>`. */
  readonly name: string;
  /** The host that runs the backup and keeps the files (for postgres: any host with the client). */
  readonly connection: SshConnection;
  readonly engine: BackupEngine;
  readonly postgres?: PostgresTarget;
  readonly sqlite?: SqliteTarget;
  /** Absolute directory of the backups and their manifest on that host. */
  readonly backupsDir: string;
  /** Keep the `keep` newest backups (0: no count rule). */
  readonly keep: number;
  /** Keep backups younger than this many days (0: no age rule). */
  readonly keepDays: number;
  /** Backups taken for these releases are never pruned. */
  readonly protectReleases: readonly string[];
  /** Tables whose row counts are recorded at backup time and checked after a restore. */
  readonly verifyTables: readonly string[];
  /** The releases about to be deployed: a change means a new backup, named after them. */
  readonly releases: readonly string[];
  /** Any string; a change forces a new backup. */
  readonly trigger: string;
  /** A backup id to restore when this changes to a non-empty value; "" for none. */
  readonly restore: string;
  /** Per remote step timeout, in ms. */
  readonly stepTimeoutMs: number;
  /** Remove the backup files on destroy. Default false: backups outlive the resource. */
  readonly deleteBackupsOnDestroy: boolean;
}

/** One verified backup, as a manifest line records it. */
export interface BackupEntry {
  readonly id: string;
  readonly sha256: string;
  readonly size: number;
  /** ISO 8601 UTC. */
  readonly time: string;
  readonly releases: string[];
  /** Row counts of `verifyTables` inside the backup. */
  readonly counts: Record<string, number>;
}

/** The last restore this resource performed. */
export interface RestoreRecord {
  readonly id: string;
  /** The backup of the database taken just before the restore overwrote it. */
  readonly safetyBackupId: string;
  readonly at: string;
  readonly counts: Record<string, number>;
}

/**
 * What the provider records: the inputs it diffs on (the password left out: it is not needed
 * after the operation and must be in no output), plus the latest backup and what is retained.
 */
export interface BackupState extends Omit<BackupSpec, "postgres"> {
  readonly postgres?: Omit<PostgresTarget, "password">;
  readonly latestId: string;
  readonly latestPath: string;
  readonly latestSize: number;
  readonly latestSha256: string;
  readonly latestTime: string;
  /** Retained backup ids, oldest first. */
  readonly retained: string[];
  readonly lastRestore?: RestoreRecord;
}

/** A backup a Service restores when it rolls back a release that ran migrations. */
export interface RestorePoint {
  readonly backup: BackupSpec;
  /** The backup taken before the deploy. */
  readonly backupId: string;
}

/**
 * The folder under fleet's root that holds every backup set's default directory. A service's
 * folder is `<root>/<service name>` (commands/layout.ts) and a service name never starts with
 * '.' (NAME_PATTERN, model/rules/names.ts), so no service under the same root has this folder.
 * (A service under another root may still hold it, `/srv` + `fleet`: config/schema.ts refuses that.)
 */
export const BACKUPS_FOLDER = ".backups";

/**
 * `<root>/.backups/<name>`, the default backups directory. It used to be `<root>/<name>/backups`,
 * inside the folder of a service of the same name: deleting that service (`rm -rf` of its
 * folder) deleted the backups too, whatever `deleteBackupsOnDestroy` said
 * (security issue "a service's own account never becomes root"). An existing set moves from
 * there on its next update (decisions/backup-diff.ts, BACKUP_MOVE_KEYS).
 */
export function defaultBackupsDir(root: string, name: string): string {
  return `${root.replace(/\/+$/, "")}/${BACKUPS_FOLDER}/${name}`;
}

/**
 * Whether `dir` is `serviceDir` or inside it (plain path prefixes: both absolute and normalized,
 * as fleetRoot and safeAbsolutePath make them). Removing a service removes its folder.
 */
export function isInsideDir(dir: string, serviceDir: string): boolean {
  const d = dir.replace(/\/+$/, "");
  const s = serviceDir.replace(/\/+$/, "");
  return d === s || d.startsWith(`${s}/`);
}
