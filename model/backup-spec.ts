import { z } from "zod";
import type { Covers } from "./rules/issues";
import type { BackupSpec } from "./backup";
import {
  backupDays,
  backupRelease,
  backupsKept,
  hasOneEngine,
  pgHost,
  pgName,
  pgPassword,
  restoreId,
  tableName,
} from "./rules/backup";
import { timeoutMs } from "./rules/duration";
import { name } from "./rules/names";
import { port, sshConnection } from "./rules/network";
import { safeAbsolutePath } from "./rules/paths";

/**
 * The backup provider's inputs (BackupSpec), checked with the rules config/schema.ts uses for
 * `fleet:backups`: providers/backup/check.ts runs it, so direct users of DatabaseBackup and the
 * restore CLI get the config's verdicts.
 */
export const backupSpecSchema = z
  .object({
    name,
    connection: sshConnection,
    engine: z.enum(["postgres", "sqlite"]),
    postgres: z.object({ host: pgHost, port, database: pgName, user: pgName, password: pgPassword }).optional(),
    sqlite: z.object({ path: safeAbsolutePath }).optional(),
    backupsDir: safeAbsolutePath,
    keep: backupsKept,
    keepDays: backupDays,
    protectReleases: z.array(backupRelease),
    verifyTables: z.array(tableName),
    releases: z.array(backupRelease),
    trigger: z.string(),
    restore: restoreId,
    stepTimeoutMs: timeoutMs,
    deleteBackupsOnDestroy: z.boolean(),
  })
  .superRefine((b, ctx) => {
    const other = b.engine === "postgres" ? "sqlite" : "postgres";
    if (b[b.engine] === undefined)
      ctx.addIssue({
        code: "custom",
        path: [b.engine],
        message: `engine "${b.engine}" needs ${b.engine === "postgres" ? "postgres: { host, port, database, user, password }" : "sqlite: { path }"}`,
      });
    else if (!hasOneEngine(b)) ctx.addIssue({ code: "custom", path: [other], message: `only for engine "${other}"` });
  });

/** A compile error naming any field of BackupSpec without a rule here (or a rule for no field). */
export const BACKUP_SPEC_COVERED: Covers<BackupSpec, z.input<typeof backupSpecSchema>> = true;
