import { z } from "zod";
import { line } from "./text";
import { HOST_ADDRESS_PATTERN } from "./network";
import { SAFE_PATH_PATTERN } from "./paths";

/** A `verifyTables` entry: `table` or `schema.table`, lowercase (names are interpolated into SQL). */
export const TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
export const tableName = z
  .string()
  .regex(TABLE_PATTERN, "must be table or schema.table (lowercase letters, digits, '_')");

/** Release ids and labels: they become part of file names and manifest fields (no spaces, commas, slashes). */
export const BACKUP_RELEASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const backupRelease = z
  .string()
  .regex(BACKUP_RELEASE_PATTERN, "must be a release id (letters, digits, '.', '_', '-')");

/** A backup id, as `backupId` makes them (`<name>-<timestamp>-<label>`, label joined by `+`). */
const BACKUP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,254}$/;
/** A backup to restore: an id, or "" for none. */
export const restoreId = z
  .string()
  .refine((id) => id === "" || BACKUP_ID_PATTERN.test(id), "must be a backup id (`<name>-<time>-<release>`)");

/** Where PostgreSQL is, seen from the backup host: a host name, an IP address or a socket directory. */
export const pgHost = z
  .string()
  .refine(
    (v) => HOST_ADDRESS_PATTERN.test(v) || (SAFE_PATH_PATTERN.test(v) && !v.split("/").includes("..")),
    "must be a host name, an IP address or a socket directory (an absolute path)",
  );

/** A PostgreSQL database or role name: one line (it goes into a pgpass line), at most 63 bytes (NAMEDATALEN). */
export const pgName = line
  .min(1)
  .refine((v) => Buffer.byteLength(v) <= 63, "must be at most 63 bytes (PostgreSQL's limit for names)");

/** One line: it is written into a pgpass line. */
export const pgPassword = line.min(1);

export const ONE_ENGINE = "give exactly one of postgres and sqlite";
/** A backup set names exactly one database: a PostgreSQL one or a SQLite file. */
export const hasOneEngine = (b: { readonly postgres?: unknown; readonly sqlite?: unknown }) =>
  !b.postgres !== !b.sqlite;

/** Backups kept by count (0: no count rule) and by age in days (0: no age rule). */
export const backupsKept = z.number().int().min(0);
export const backupDays = z.number().int().min(0);
