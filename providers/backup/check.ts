import { TABLE_PATTERN } from "../../commands/backup-engines";
import { UNKNOWN } from "../../decisions/service-diff";
import { NAME_PATTERN } from "../service/check";

export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

/** Release ids and labels: they become part of file names and manifest fields (no spaces, commas, slashes). */
export const BACKUP_RELEASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A backup id, as `backupId` makes them (`<name>-<timestamp>-<label>`, label joined by `+`). */
export const BACKUP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,254}$/;
/** Absolute paths that are safe inside sqlite dot-commands and the scripts' double quotes. */
export const SAFE_PATH_PATTERN = /^\/[A-Za-z0-9_./@+-]*$/;

/**
 * The backup provider's own validation of its inputs (the component and the restore CLI are
 * the first line). Runs in preview too, so unknown values pass.
 */
export function checkBackupInputs(news: Record<string, unknown>): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const known = (v: unknown) => v !== UNKNOWN && v !== undefined;
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  const str = (obj: Record<string, unknown>, key: string, prefix: string, pattern: RegExp, what: string) => {
    const v = obj[key];
    if (known(v) && (typeof v !== "string" || !pattern.test(v)))
      fail(prefix + key, `${what}; got ${JSON.stringify(v)}`);
  };
  const path = (obj: Record<string, unknown>, key: string, prefix: string) => {
    str(obj, key, prefix, SAFE_PATH_PATTERN, "must be an absolute path of letters, digits and _ . / @ + -");
    const v = obj[key];
    if (typeof v === "string" && (v === "/" || v.split("/").includes("..")))
      fail(prefix + key, "must not be / or contain '..'");
  };
  const int = (key: string, min: number) => {
    const v = news[key];
    if (known(v) && (typeof v !== "number" || !Number.isInteger(v) || v < min))
      fail(key, `must be an integer of at least ${min}; got ${JSON.stringify(v)}`);
  };
  const list = (key: string, pattern: RegExp, what: string) => {
    const v = news[key];
    if (!known(v)) return;
    if (!Array.isArray(v)) {
      fail(key, "must be a list of strings");
      return;
    }
    v.forEach((item, i) => {
      if (known(item) && (typeof item !== "string" || !pattern.test(item)))
        fail(`${key}[${i}]`, `${what}; got ${JSON.stringify(item)}`);
    });
  };

  str(
    news,
    "name",
    "",
    NAME_PATTERN,
    "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'",
  );
  path(news, "backupsDir", "");
  int("keep", 0);
  int("keepDays", 0);
  int("stepTimeoutMs", 1);
  list("releases", BACKUP_RELEASE_PATTERN, "must be a release id (letters, digits, '.', '_', '-')");
  list("protectReleases", BACKUP_RELEASE_PATTERN, "must be a release id (letters, digits, '.', '_', '-')");
  list("verifyTables", TABLE_PATTERN, "must be `table` or `schema.table` in lowercase letters, digits and '_'");
  const restore = news["restore"];
  if (known(restore) && restore !== "") str(news, "restore", "", BACKUP_ID_PATTERN, "must be a backup id or empty");

  const engine = news["engine"];
  if (known(engine) && engine !== "postgres" && engine !== "sqlite") {
    fail("engine", `must be "postgres" or "sqlite"; got ${JSON.stringify(engine)}`);
  }
  const pg = news["postgres"];
  const sqlite = news["sqlite"];
  if (engine === "postgres") {
    if (pg === undefined)
      fail("postgres", 'engine "postgres" needs postgres: { host, port, database, user, password }');
    else if (pg === UNKNOWN) return failures;
    else if (typeof pg !== "object" || pg === null) fail("postgres", "must be an object");
    else {
      const p = pg as Record<string, unknown>;
      for (const key of ["host", "database", "user", "password"]) {
        if (known(p[key]) && (typeof p[key] !== "string" || !p[key] || /[\0\n]/.test(p[key])))
          fail(`postgres.${key}`, "must be a non-empty one-line string");
      }
      if (known(p["port"]) && (typeof p["port"] !== "number" || !Number.isInteger(p["port"]) || p["port"] < 1))
        fail("postgres.port", "must be a port number");
    }
    if (known(sqlite)) fail("sqlite", 'only for engine "sqlite"');
  } else if (engine === "sqlite") {
    if (sqlite === undefined) fail("sqlite", 'engine "sqlite" needs sqlite: { path }');
    else if (sqlite === UNKNOWN) return failures;
    else if (typeof sqlite !== "object" || sqlite === null) fail("sqlite", "must be an object");
    else path(sqlite as Record<string, unknown>, "path", "sqlite.");
    if (known(pg)) fail("postgres", 'only for engine "postgres"');
  }
  return failures;
}
