import { emitBytes, shq } from "./quote";
import type { BackupTarget, PostgresTarget } from "../model/backup";

/**
 * The engine-specific shell of DatabaseBackup (issue #5): how to dump, verify, restore and
 * count rows, for PostgreSQL and SQLite. Fragments only; commands/backup.ts assembles them into
 * scripts, which provide the shell functions used here (`fail`, `verify_fail`, `tailof`) and `$T`,
 * a 0700 temp directory removed on exit. Every value goes through commands/quote.ts.
 *
 * Row counts are read from the backup itself, never from the live database at another moment,
 * so they are exactly what a restore must give back, even while the app writes.
 */

/** File extension of a backup: `pg_dump -Fc` output is compressed already; SQLite copies are gzipped. */
export const BACKUP_EXT = { postgres: "dump", sqlite: "sqlite.gz" } as const;

export const BACKUP_EXIT = {
  missingTool: 68,
  locked: 75,
  dumpFailed: 80,
  verifyFailed: 81,
  exists: 82,
  notFound: 83,
  corrupt: 84,
  restoreFailed: 85,
  countsMismatch: 86,
} as const;

/** `"schema"."table"` for SQL; TABLE_PATTERN (model/rules/backup.ts) already keeps quotes out. */
function sqlName(table: string): string {
  return table
    .split(".")
    .map((part) => `"${part}"`)
    .join(".");
}

/** A pgpass line: `*:*:*:user:password`, with `\` and `:` escaped as libpq requires. */
export function pgpassLine(pg: Pick<PostgresTarget, "user" | "password">): string {
  const esc = (s: string) => s.replace(/[\\:]/g, (c) => "\\" + c);
  return `*:*:*:${esc(pg.user)}:${esc(pg.password)}\n`;
}

export function requiredTools(target: BackupTarget): string[] {
  return target.engine === "postgres" ? ["pg_dump", "pg_restore", "psql"] : ["sqlite3", "gzip"];
}

/**
 * The connection environment. The password is written to `$T/pgpass` (0600, inside the 0700
 * temp dir, removed on exit) from base64 by the shell's builtin printf: it never appears in any
 * process's argv or environment, so `ps` cannot show it.
 */
export function connectionEnv(target: BackupTarget): string[] {
  if (target.engine !== "postgres") return [];
  const pg = target.postgres;
  return [
    `(umask 077 && ${emitBytes(pgpassLine(pg))} > "$T/pgpass")`,
    `PGPASSFILE="$T/pgpass"; PGHOST=${shq(pg.host)}; PGPORT=${shq(String(pg.port))}; PGUSER=${shq(pg.user)}; PGDATABASE=${shq(pg.database)}`,
    `PGAPPNAME=fleet-backup; PGCONNECT_TIMEOUT=15`,
    `export PGPASSFILE PGHOST PGPORT PGUSER PGDATABASE PGAPPNAME PGCONNECT_TIMEOUT`,
  ];
}

/**
 * The scripts run as root, and an SQLite database's folder is one its app's user can write
 * (SQLite creates its `-wal`, `-shm` and `-journal` files there): root never follows a link in
 * it (issue 29, docs/security.md). A database path that is a link is refused before sqlite3
 * opens it; sqlite3 itself opens the files next to it with O_NOFOLLOW.
 */
function refuseLink(db: string, path: string, code: number, doing: string): string {
  return `[ ! -L ${db} ] || fail ${code} ${shq(`refusing to ${doing} ${path}: it is a symbolic link, and root never follows a link in a folder the app's user can write; set sqlite.path to the database file itself`)}`;
}

/**
 * An SQLite `-wal`, `-shm` or `-journal` file that sqlite3 created here as root would belong to
 * root, and an app running as another user could not open its database any more. Such files get
 * the database's owner back: only regular files (find does not follow a starting point that is
 * a link), only root's (what sqlite3 may have created), only with one link (never a hard link to
 * a file elsewhere), and `chown -h`. The owner is read with `stat` (no -L): a link planted in the
 * database's place since the check is the planter's own.
 */
function keepOwner(db: string): string {
  return `o=$(stat -c %u:%g ${db}) && find ${db}-wal ${db}-shm ${db}-journal -maxdepth 0 -type f -user 0 -links 1 -exec chown -h "$o" {} + 2>/dev/null || true`;
}

/** Dumps the live database into `out` (a file in `$T`); a failure exits with the tool's evidence. */
export function dumpLines(target: BackupTarget, out: string): string[] {
  if (target.engine === "postgres") {
    return [
      `pg_dump -Fc --no-password -f ${out} 2>"$T/dump.err" || { rc=$?; echo "pg_dump failed (exit $rc):" >&2; tailof "$T/dump.err"; exit ${BACKUP_EXIT.dumpFailed}; }`,
    ];
  }
  const db = shq(target.sqlite.path);
  return [
    refuseLink(db, target.sqlite.path, BACKUP_EXIT.dumpFailed, "back up"),
    `[ -f ${db} ] || fail ${BACKUP_EXIT.notFound} ${shq(`no SQLite database at ${target.sqlite.path}`)}`,
    // The online backup API first: a consistent page copy while the app keeps writing. But it
    // restarts whenever another connection commits, and the sqlite3 CLI gives up on the first
    // busy lock: against an app committing continuously it fails ("database is locked", measured
    // on the test servers). Then VACUUM INTO, which copies one consistent snapshot in a single
    // read transaction (writers wait for it, as for any reader, instead of restarting it).
    `if sqlite3 -bail -cmd '.timeout 30000' ${db} ".backup '$T/copy.sqlite'" 2>"$T/dump.err"; then echo sqlite_method=backup; LOG_NOTE=" method=backup"; else`,
    `  rm -f "$T/copy.sqlite"; echo sqlite_method=vacuum-into; LOG_NOTE=" method=vacuum-into"`,
    `  sqlite3 -bail -cmd '.timeout 30000' ${db} "VACUUM INTO '$T/copy.sqlite'" 2>>"$T/dump.err" || { rc=$?; echo "sqlite3 .backup and VACUUM INTO failed (exit $rc):" >&2; tailof "$T/dump.err"; exit ${BACKUP_EXIT.dumpFailed}; }`,
    `fi`,
    `gzip -6 -c "$T/copy.sqlite" > ${out}`,
    `rm -f "$T/copy.sqlite"`,
    keepOwner(db),
  ];
}

/**
 * Verifies the archive `file` and writes the row counts it holds to `counts` as
 * `count=<table> <n>` lines. PostgreSQL: `pg_restore --list` reads the table of contents, then
 * `pg_restore --data-only` decompresses every data block (the counts come from its COPY blocks).
 * SQLite: decompress to a temp copy and run `PRAGMA integrity_check` on it.
 */
export function verifyLines(
  target: BackupTarget,
  file: string,
  counts: string,
  tables: readonly string[],
  requireTables: boolean,
): string[] {
  const lines =
    target.engine === "postgres"
      ? [
          `pg_restore --list ${file} > "$T/toc" 2>"$T/verify.err" || verify_fail "pg_restore --list" $? "$T/verify.err"`,
          `{ pg_restore --data-only -f - ${file} 2>"$T/verify.err"; echo $? > "$T/verify.rc"; } | awk ${shq(COUNT_COPY_ROWS)} > ${counts}`,
          `rc=$(cat "$T/verify.rc"); [ "$rc" = 0 ] || verify_fail "pg_restore --data-only (reading every data block)" "$rc" "$T/verify.err"`,
        ]
      : [
          `gzip -dc ${file} > "$T/check.sqlite" 2>"$T/verify.err" || verify_fail "gzip -d" $? "$T/verify.err"`,
          `sqlite3 -bail "$T/check.sqlite" 'PRAGMA integrity_check' > "$T/verify.out" 2>&1 || verify_fail "PRAGMA integrity_check" $? "$T/verify.out"`,
          `[ "$(cat "$T/verify.out")" = ok ] || verify_fail "PRAGMA integrity_check (not ok)" 1 "$T/verify.out"`,
          `: > ${counts}`,
          ...tables.map((t) => {
            const q = shq(`SELECT count(*) FROM ${sqlName(t)}`);
            // Without requireTables a missing table is skipped (its count is then not recorded).
            const skip = requireTables
              ? ""
              : `sqlite3 "$T/check.sqlite" ${shq(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${t.split(".").pop()}'`)} | grep -q 1 && `;
            return `if ${skip}n=$(sqlite3 -bail "$T/check.sqlite" ${q} 2>"$T/verify.err"); then echo "count=${t} $n" >> ${counts}; ${requireTables ? `else verify_fail ${shq(`count(*) of ${t}`)} $? "$T/verify.err"; ` : ""}fi`;
          }),
          `rm -f "$T/check.sqlite"`,
        ];
  // Every verify table must be in the backup: a backup without them cannot prove a restore.
  const present = (requireTables ? tables : []).map(
    (t) =>
      `grep -q ${shq(`^count=${t} `)} ${counts} || { echo ${shq(`table ${t} is not in the backup`)} > "$T/verify.err"; verify_fail ${shq(`verifyTables: ${t}`)} 1 "$T/verify.err"; }`,
  );
  return [...lines, ...present];
}

/**
 * Counts the rows of each COPY block of `pg_restore --data-only` output (one line per row: COPY
 * text format escapes newlines), as `count=<table> <n>`, without the `public.` schema.
 */
export const COUNT_COPY_ROWS = [
  `!inside && /^COPY .* FROM stdin;$/ { t = $2; sub(/^public\\./, "", t); gsub(/"/, "", t); n = 0; inside = 1; next }`,
  `inside && $0 == "\\\\." { print "count=" t " " n; inside = 0; next }`,
  `inside { n++ }`,
].join("\n");

/**
 * Restores the archive `file` over the live database.
 * PostgreSQL: `pg_restore --clean --if-exists --no-owner --single-transaction`: all or nothing,
 * so a failed restore leaves the database as it was.
 * SQLite: `.restore` through the backup API, not a rename over the file. The app keeps its file
 * open: a rename would leave it writing to the old, unlinked inode (lost writes) next to a
 * `-wal`/`-shm` that belong to the old database; `.restore` writes the pages in place under
 * SQLite's own locks, so open connections see the restored database.
 */
export function restoreLines(target: BackupTarget, file: string): string[] {
  const failed = (what: string, note: string) =>
    `{ rc=$?; echo "${what} failed (exit $rc); ${note}" >&2; tailof "$T/restore.err"; exit ${BACKUP_EXIT.restoreFailed}; }`;
  if (target.engine === "postgres") {
    // -d takes a connection string when its value holds '=' (or starts postgres://): the name
    // goes in as a quoted dbname, so a database called "a=b" is that database, not options.
    const dbname = `dbname='${target.postgres.database.replace(/[\\']/g, (c) => "\\" + c)}'`;
    return [
      `pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --no-password -d ${shq(dbname)} ${file} 2>"$T/restore.err" || ${failed("pg_restore", "it ran in one transaction, so the database was left as it was")}`,
    ];
  }
  const db = shq(target.sqlite.path);
  return [
    refuseLink(db, target.sqlite.path, BACKUP_EXIT.restoreFailed, "restore into"),
    `gzip -dc ${file} > "$T/restore.sqlite"`,
    `sqlite3 -bail -cmd '.timeout 30000' ${db} ".restore '$T/restore.sqlite'" 2>"$T/restore.err" || ${failed("sqlite3 .restore", "it runs as one transaction, so the database was left as it was; if the app keeps it busy, stop the app's writers and retry")}`,
    `rm -f "$T/restore.sqlite"`,
    keepOwner(db),
  ];
}

/** Writes `count=<table> <n>` for the live database (after a restore) to `counts`. */
export function liveCountLines(target: BackupTarget, counts: string, tables: readonly string[]): string[] {
  const count = (t: string) =>
    target.engine === "postgres"
      ? `psql -X -A -t -q -v ON_ERROR_STOP=1 --no-password -c ${shq(`SELECT count(*) FROM ${sqlName(t)}`)}`
      : `sqlite3 -bail -cmd '.timeout 30000' ${shq(target.sqlite.path)} ${shq(`SELECT count(*) FROM ${sqlName(t)}`)}`;
  const integrity =
    target.engine === "sqlite"
      ? [
          refuseLink(shq(target.sqlite.path), target.sqlite.path, BACKUP_EXIT.restoreFailed, "count the rows of"),
          `r=$(sqlite3 -cmd '.timeout 30000' ${shq(target.sqlite.path)} 'PRAGMA integrity_check' 2>&1) || true`,
          `[ "$r" = ok ] || { echo "the restored database fails PRAGMA integrity_check: $r" >&2; exit ${BACKUP_EXIT.countsMismatch}; }`,
        ]
      : [];
  return [
    ...integrity,
    `: > ${counts}`,
    ...tables.map(
      (t) =>
        `n=$(${count(t)} 2>"$T/count.err") || { rc=$?; echo ${shq(`counting ${t} after the restore failed`)}" (exit $rc):" >&2; tailof "$T/count.err"; exit ${BACKUP_EXIT.countsMismatch}; }; echo "count=${t} $n" >> ${counts}`,
    ),
  ];
}
