import * as pulumi from "@pulumi/pulumi";
import { ShippedResource } from "./shipped-resource";
import { defaultBackupsDir, type BackupSpec, type PostgresTarget, type RestorePoint } from "../model/backup";
import { parseDuration } from "../model/duration";
import { ONE_ENGINE, hasOneEngine } from "../model/rules/backup";
import type { SshConnection } from "../transport/connection";
import { Host } from "./host";
import { CHILD_SUFFIXES, childName, DYNAMIC_TYPES, TOKENS } from "./tokens";

export interface PostgresBackupArgs {
  /** Address of the PostgreSQL server, as seen from the backup host (it may be another machine). */
  readonly host: pulumi.Input<string>;
  /** Default 5432. */
  readonly port?: pulumi.Input<number>;
  readonly database: pulumi.Input<string>;
  readonly user: pulumi.Input<string>;
  /** Stored as a secret; reaches the host only in a 0600 PGPASSFILE written by a script on stdin. */
  readonly password: pulumi.Input<string>;
}

export interface DatabaseBackupArgs {
  /** The host that runs the backups and keeps the files: a Host, or an SSH connection. */
  readonly host: Host | pulumi.Input<SshConnection>;
  /** A PostgreSQL database, dumped with `pg_dump -Fc` from `host`. Exactly one of postgres and sqlite. */
  readonly postgres?: PostgresBackupArgs;
  /** A SQLite database file on `host`. Exactly one of postgres and sqlite. */
  readonly sqlite?: { readonly path: pulumi.Input<string> };
  /**
   * The release ids the protected services are ABOUT to deploy (known while the program runs,
   * from the same plan the Service makes: `plannedRelease` in ./service, pins included): a new
   * release means a new backup, named after it. The backup must run before the services switch,
   * so the services depend on the backup, never the other way round (their `releaseId` outputs
   * would be a cycle):
   *
   *     const web = { source: webSource, build, pin };
   *     const releases = [pulumi.output(plannedRelease("web", web)).releaseId];
   *     const db = new DatabaseBackup("appdb", { host, postgres, releases });
   *     new Service("web", { ...web, … }, { dependsOn: [db] });
   *
   * Default []: only `trigger` (and the first `pulumi up`) takes a backup.
   */
  readonly releases?: pulumi.Input<string>[];
  /** Any string; a change forces a new backup. Default "". */
  readonly trigger?: pulumi.Input<string>;
  /** Keep the `keep` newest backups. Default 5; 0 turns the count rule off. */
  readonly keep?: number;
  /** Also keep every backup younger than this many days. Default 0 (off). */
  readonly keepDays?: number;
  /** Backups taken for these releases are never pruned (e.g. the releases a service retains). Default []. */
  readonly protectReleases?: pulumi.Input<pulumi.Input<string>[]>;
  /** Tables (`table` or `schema.table`) whose row counts are recorded and checked after a restore. Default []. */
  readonly verifyTables?: string[];
  /** fleet's root directory on the host. Default "/srv/fleet". */
  readonly root?: string;
  /**
   * Where the backups and their manifest live; one DatabaseBackup per directory (retention only
   * ever prunes this set's files, but `deleteBackupsOnDestroy` empties the whole manifest).
   * Default `<root>/.backups/<name>`, in no service's folder (it used to be
   * `<root>/<name>/backups`, the folder of a service named like the set). Keep an explicit one
   * out of every service's folder (`<root>/<service>/`):
   * deleting a service removes its folder, backups included, whatever `deleteBackupsOnDestroy`
   * says. The stack config checks its sets (all in the default) against its services; this
   * component cannot see the services, so it is up to its caller.
   * Changing it (the new default included) moves the set's backups there on the next update.
   */
  readonly backupsDir?: string;
  /**
   * A backup id to restore: when this changes to a non-empty value, `pulumi up` takes a safety
   * backup of the current database, restores that backup and checks the row counts. Ignored at
   * create. Default "".
   */
  readonly restore?: pulumi.Input<string>;
  /** Limit for a single remote step (a dump, a restore). Default "30m". */
  readonly stepTimeout?: string;
  /** Delete the backup files when this resource is destroyed. Default false: backups outlive it. */
  readonly deleteBackupsOnDestroy?: boolean;
}

type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };
/** The dynamic resource's inputs; `postgres` stays a plain object so that only its password is secret. */
type BackupInputs = Inputs<Omit<BackupSpec, "postgres">> & { postgres?: Inputs<PostgresTarget> };

/** The dynamic resource behind a DatabaseBackup: one backup set (a directory and its manifest). */
export class BackupSet extends ShippedResource {
  declare readonly latestId: pulumi.Output<string>;
  declare readonly latestPath: pulumi.Output<string>;
  declare readonly latestSize: pulumi.Output<number>;
  declare readonly latestSha256: pulumi.Output<string>;
  declare readonly latestTime: pulumi.Output<string>;
  declare readonly retained: pulumi.Output<string[]>;

  constructor(name: string, inputs: BackupInputs, opts?: pulumi.CustomResourceOptions) {
    const outputsOnly = {
      latestId: undefined,
      latestPath: undefined,
      latestSize: undefined,
      latestSha256: undefined,
      latestTime: undefined,
      retained: undefined,
      lastRestore: undefined,
    };
    super(
      "backup",
      DYNAMIC_TYPES.backupSet,
      name,
      { ...inputs, ...outputsOnly },
      { ...opts, additionalSecretOutputs: ["connection"] },
    );
  }
}

/**
 * A verified, rotated backup of one database, taken before every deploy of the services it
 * protects, and restorable (`restore`, or `npm run restore -- <id>`). Backups are files on the
 * host named `<name>-<UTC timestamp>-<release>.<ext>` (0600) with a manifest of the verified ones.
 */
export class DatabaseBackup extends pulumi.ComponentResource {
  readonly latestId: pulumi.Output<string>;
  readonly latestPath: pulumi.Output<string>;
  readonly latestSize: pulumi.Output<number>;
  readonly latestSha256: pulumi.Output<string>;
  readonly latestTime: pulumi.Output<string>;
  readonly retained: pulumi.Output<string[]>;
  /**
   * What a Service with `restoreOnRollback` needs: this set's spec (a secret: it holds the
   * connection and the password) and the backup taken before the deploy.
   */
  readonly restorePoint: pulumi.Output<RestorePoint>;

  constructor(name: string, args: DatabaseBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TOKENS.databaseBackup, name, {}, opts);
    if (!hasOneEngine(args)) {
      throw new pulumi.ResourceError(`backups.${name}: ${ONE_ENGINE}`, this);
    }
    const root = args.root ?? "/srv/fleet";
    const connection = pulumi.secret(args.host instanceof Host ? args.host.connection : pulumi.output(args.host));
    const pg = args.postgres;
    const inputs: BackupInputs = {
      name,
      connection,
      engine: pg ? "postgres" : "sqlite",
      // A plain object (pulumi.output() would make all of it secret): only the password is
      // secret, so that preview shows which database moves where.
      ...(pg
        ? {
            postgres: {
              host: pg.host,
              port: pg.port ?? 5432,
              database: pg.database,
              user: pg.user,
              password: pulumi.secret(pg.password),
            },
          }
        : {}),
      ...(args.sqlite ? { sqlite: pulumi.output({ path: args.sqlite.path }) } : {}),
      backupsDir: args.backupsDir ?? defaultBackupsDir(root, name),
      keep: args.keep ?? 5,
      keepDays: args.keepDays ?? 0,
      protectReleases: pulumi.output(args.protectReleases ?? []),
      verifyTables: args.verifyTables ?? [],
      releases: pulumi.output(args.releases ?? []),
      trigger: args.trigger ?? "",
      restore: args.restore ?? "",
      stepTimeoutMs: parseDuration(args.stepTimeout ?? "30m", `backups.${name}.stepTimeout`),
      deleteBackupsOnDestroy: args.deleteBackupsOnDestroy ?? false,
    };
    // A Host's bootstrap (directories, tools) comes first.
    const set = new BackupSet(childName(name, CHILD_SUFFIXES.databaseBackup.set), inputs, {
      parent: this,
      dependsOn: args.host instanceof Host ? [args.host] : [],
    });

    this.restorePoint = pulumi.secret(
      pulumi.all([pulumi.output(inputs as Record<string, unknown>), set.latestId]).apply(([spec, backupId]) => ({
        backup: spec as unknown as BackupSpec,
        backupId,
      })),
    );
    this.latestId = set.latestId;
    this.latestPath = set.latestPath;
    this.latestSize = set.latestSize;
    this.latestSha256 = set.latestSha256;
    this.latestTime = set.latestTime;
    this.retained = set.retained;
    this.registerOutputs({
      latestId: this.latestId,
      latestPath: this.latestPath,
      latestSize: this.latestSize,
      latestSha256: this.latestSha256,
      latestTime: this.latestTime,
      retained: this.retained,
    });
  }
}
