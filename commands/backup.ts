import { shq } from "./quote";
import {
  BACKUP_EXIT,
  BACKUP_EXT,
  connectionEnv,
  dumpLines,
  liveCountLines,
  requiredTools,
  restoreLines,
  verifyLines,
} from "./backup-engines";
import type { BackupEngine, BackupEntry, BackupTarget } from "../model/backup";

/**
 * Pure builders for DatabaseBackup (issue #5): every remote step as a POSIX sh script that
 * travels on stdin (transport.runScript), so nothing in it, the database password included,
 * shows in `ps`. Facts as `key=value` lines on stdout, phases as `fleet-phase:` on stderr.
 *
 * On the host, one directory per backup set (default `<root>/.backups/<name>`, 0700):
 *   <id>.dump | <id>.sqlite.gz   the backups, 0600
 *   manifest                     one line per VERIFIED backup: `id sha256 size time releases counts`
 *   .lock                        flock(1) lock: one backup/restore/prune at a time; the kernel
 *                                drops it when the holder dies, so it never goes stale
 *   .tmp-XXXXXX/                 work dir of the running script (pgpass, unverified dump)
 * A backup enters the manifest only after it passed verification, so "newest verified" and
 * retention are decided from the manifest alone.
 */

export { BACKUP_EXIT, BACKUP_EXT } from "./backup-engines";

/** Where a backup set lives: enough to list, prune or delete it (no database access). */
export interface BackupDirSpec {
  readonly backupsDir: string;
  readonly engine: BackupEngine;
}

/** What taking or restoring a backup needs: the database too. */
export interface BackupSetSpec extends BackupDirSpec {
  readonly target: BackupTarget;
  readonly verifyTables: readonly string[];
}

/** The backup about to be taken. */
export interface NewBackup {
  readonly id: string;
  /** ISO 8601 UTC, recorded in the manifest. */
  readonly time: string;
  readonly releases: readonly string[];
}

/** `<root>/.backups/<name>`, the default backups directory (model/backup.ts decides it). */
export { defaultBackupsDir } from "../model/backup";

/** `20261122T165722Z`: sortable, no characters a file name or shell would mind. */
export function backupTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** The release part of a backup's name: the releases joined by `+` ("none" without any), kept short. */
export function releaseLabel(releases: readonly string[]): string {
  if (releases.length === 0) return "none";
  const joined = releases.join("+");
  return joined.length <= 80 ? joined : `${releases[0]}+${releases.length - 1}more`;
}

/** `<name>-<UTC timestamp>-<release>`. */
export function backupId(name: string, date: Date, label: string): string {
  return `${name}-${backupTimestamp(date)}-${label}`;
}

export function backupPath(spec: BackupDirSpec, id: string): string {
  return `${dirOf(spec)}/${id}.${BACKUP_EXT[spec.engine]}`;
}

/** Parses a manifest line (`id sha256 size time releases counts`); undefined for a malformed one. */
export function parseManifestLine(line: string): BackupEntry | undefined {
  const [id, sha256, size, time, releases, counts, ...rest] = line.trim().split(/\s+/);
  if (!id || !sha256 || !/^[0-9a-f]{64}$/.test(sha256) || !size || !time || rest.length > 0) return undefined;
  const parsedCounts: Record<string, number> = {};
  for (const pair of counts && counts !== "-" ? counts.split(",") : []) {
    const eq = pair.lastIndexOf("=");
    if (eq > 0) parsedCounts[pair.slice(0, eq)] = Number(pair.slice(eq + 1));
  }
  return {
    id,
    sha256,
    size: Number(size),
    time,
    releases: releases && releases !== "-" ? releases.split(",") : [],
    counts: parsedCounts,
  };
}

/** Parses `count=<table> <n>` facts. */
export function parseCounts(lines: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const [table, n] = line.trim().split(/\s+/);
    if (table && n !== undefined && /^\d+$/.test(n)) counts[table] = Number(n);
  }
  return counts;
}

function dirOf(spec: Pick<BackupDirSpec, "backupsDir">): string {
  return spec.backupsDir.replace(/\/+$/, "");
}

/**
 * Shared preamble: strict mode, helpers, the tools, the backups dir (created 0700; its parents
 * 0755, so a service root created here stays traversable), the lock, a fresh work dir, and with
 * a `target`, the database connection.
 */
function preamble(spec: BackupDirSpec, step: string, subject: string, target?: BackupTarget): string[] {
  const tools = ["flock", "sha256sum", "base64", ...(target ? requiredTools(target) : [])];
  return [
    "set -eu",
    "umask 077",
    `B=${shq(dirOf(spec))}`,
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    `fail() { code=$1; shift; printf '%s\\n' "$*" >&2; exit "$code"; }`,
    `tailof() { tail -n 20 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true; }`,
    // Names what failed, with its exit code and output tail; drops the unverified file if any.
    `verify_fail() { echo "verification failed: $1 (exit $2); $VERIFY_NOTE" >&2; tailof "$3"; [ -z "$VERIFY_DROP" ] || rm -f "$VERIFY_DROP"; exit "$VERIFY_EXIT"; }`,
    `VERIFY_NOTE=; VERIFY_DROP=; VERIFY_EXIT=${BACKUP_EXIT.verifyFailed}`,
    `phase ${step}`,
    `for c in ${tools.join(" ")}; do command -v "$c" >/dev/null 2>&1 || fail ${BACKUP_EXIT.missingTool} "$c is not installed on $(hostname); the ${spec.engine} backup needs it"; done`,
    // -p: two first backups of a set at once both get here; the second's mkdir must not fail.
    `if [ ! -d "$B" ]; then (umask 022 && mkdir -p "\${B%/*}"); mkdir -p -m 700 "$B"; fi`,
    `exec 9>>"$B/.lock"`,
    `flock -w 120 9 || fail ${BACKUP_EXIT.locked} "another backup or restore of $B holds its lock (waited 120 s)"`,
    // Under the lock no other script runs here: any work dir left is from one that died.
    `rm -rf "$B"/.tmp-*`,
    `T=$(mktemp -d "$B/.tmp-XXXXXX")`,
    // backup.log: one line per attempt with its exit code, failures included (the trap runs on any exit).
    `LOG_STEP=${shq(step)}; LOG_SUBJECT=${shq(subject || "-")}; LOG_NOTE=`,
    `trap 'rc=$?; printf "%s %s %s exit=%s%s\\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$LOG_STEP" "$LOG_SUBJECT" "$rc" "$LOG_NOTE" >> "$B/backup.log"; rm -rf "$T"' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM`,
    ...(target ? connectionEnv(target) : []),
  ];
}

/**
 * Prints every manifest line whose file exists as `backup=<line>`, the others as `missing=<id>`.
 * printf, not echo: dash's echo expands backslash escapes (`\c` even ends the output).
 */
function manifestFacts(ext: string): string[] {
  return [
    `if [ -f "$B/manifest" ]; then while read -r id rest; do [ -n "$id" ] || continue`,
    `  if [ -f "$B/$id.${ext}" ]; then printf 'backup=%s %s\\n' "$id" "$rest"; else printf 'missing=%s\\n' "$id"; fi`,
    `done < "$B/manifest"; fi`,
  ];
}

/**
 * Takes one backup into `$T/new`, verifies it, and only then moves it into place (0600) and
 * appends its manifest line. A backup that fails verification is deleted and the script fails
 * with what failed, its exit code and output tail; the manifest is not touched.
 */
function takeBackupLines(spec: BackupSetSpec, backup: NewBackup, requireTables = true): string[] {
  const file = shq(`${backup.id}.${BACKUP_EXT[spec.engine]}`);
  const releases = backup.releases.length ? backup.releases.join(",") : "-";
  return [
    `F="$B"/${file}`,
    `[ ! -e "$F" ] || fail ${BACKUP_EXIT.exists} "backup $F exists already"`,
    "phase dump",
    ...dumpLines(spec.target, `"$T/new"`),
    "phase verify",
    `VERIFY_NOTE="the backup was deleted and not recorded"; VERIFY_DROP="$T/new"; VERIFY_EXIT=${BACKUP_EXIT.verifyFailed}`,
    ...verifyLines(spec.target, `"$T/new"`, `"$T/new.counts"`, spec.verifyTables, requireTables),
    `VERIFY_DROP=`,
    "phase record",
    `sha=$(sha256sum < "$T/new" | cut -c1-64); size=$(wc -c < "$T/new" | tr -d ' ')`,
    // Only the verify tables are recorded (a pg dump counts every table it holds).
    `awk -v keep=${shq(spec.verifyTables.join(" "))} 'BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; i++) want["count=" k[i]] = 1 } $1 in want' "$T/new.counts" > "$T/new.vcounts"`,
    `counts=$(awk '{ sub(/^count=/, "", $1); printf "%s%s=%s", (NR > 1 ? "," : ""), $1, $2 }' "$T/new.vcounts")`,
    `chmod 600 "$T/new" && mv "$T/new" "$F"`,
    `printf '%s %s %s %s %s %s\\n' ${shq(backup.id)} "$sha" "$size" ${shq(backup.time)} ${shq(releases)} "\${counts:--}" >> "$B/manifest"`,
    `chmod 600 "$B/manifest"`,
    `printf 'id=%s\\npath=%s\\nsha=%s\\nsize=%s\\ntime=%s\\n' ${shq(backup.id)} "$F" "$sha" "$size" ${shq(backup.time)}`,
    `sed 's/^/backup_/' "$T/new.vcounts"`,
  ];
}

/** A backup (before a deploy): dump, verify, record; then lists the manifest for retention. */
export function backupScript(spec: BackupSetSpec, backup: NewBackup): string {
  return [
    ...preamble(spec, "backup", backup.id, spec.target),
    ...takeBackupLines(spec, backup),
    ...manifestFacts(BACKUP_EXT[spec.engine]),
    "",
  ].join("\n");
}

/**
 * Restores backup `id`, in one script under the lock:
 *  1. check: the file exists, the manifest lists it (it was verified), its sha256 still matches;
 *  2. verify the archive again (a corrupt file is refused before the database is touched);
 *  3. take a safety backup of the current database (verified and recorded like any other);
 *  4. restore; 5. count the rows of `verifyTables` in the live database and compare them with
 *     the counts recorded at backup time.
 */
export function restoreScript(spec: BackupSetSpec, id: string, safety: NewBackup): string {
  const ext = BACKUP_EXT[spec.engine];
  return [
    ...preamble(spec, "restore", id, spec.target),
    `S="$B"/${shq(`${id}.${ext}`)}; SID=${shq(id)}`,
    `line=$(awk -v id="$SID" '$1 == id' "$B/manifest" 2>/dev/null || true)`,
    `[ -n "$line" ] || fail ${BACKUP_EXIT.notFound} "backup $SID is not in $B/manifest (only verified backups are); refusing to restore it"`,
    `[ -f "$S" ] || fail ${BACKUP_EXIT.notFound} "backup $SID is listed, but $S is gone"`,
    `want=$(echo "$line" | cut -d' ' -f2); have=$(sha256sum < "$S" | cut -c1-64)`,
    `[ "$have" = "$want" ] || fail ${BACKUP_EXIT.corrupt} "backup $SID is corrupt: $S has sha256 $have, but $want was recorded when it was verified; refusing to restore it (the file is kept for inspection)"`,
    `echo "$line" | cut -d' ' -f6 | tr ',' '\\n' | sed -n 's/^\\(.*\\)=\\([0-9]*\\)$/count=\\1 \\2/p' > "$T/expected.counts"`,
    "phase restore-verify",
    `VERIFY_NOTE="refusing to restore backup $SID (the file is kept for inspection)"; VERIFY_DROP=; VERIFY_EXIT=${BACKUP_EXIT.corrupt}`,
    ...verifyLines(spec.target, `"$S"`, `"$T/source.counts"`, [], false),
    // The database about to be overwritten may lack a verify table (a migration dropped it, which
    // may be why we restore): the safety backup records what it has instead of refusing.
    "phase safety-backup",
    ...takeBackupLines(spec, safety, false),
    "phase restore-apply",
    ...restoreLines(spec.target, `"$S"`),
    "phase restore-counts",
    ...liveCountLines(spec.target, `"$T/live.counts"`, spec.verifyTables),
    `sed 's/^/restored_/' "$T/live.counts"; sed 's/^/expected_/' "$T/expected.counts"`,
    `while read -r k t n; do`,
    `  w=$(awk -v t="$t" '$1 == "count=" t { print $2 }' "$T/expected.counts")`,
    `  if [ -z "$w" ]; then echo "uncounted=$t"; continue; fi`,
    `  [ "$w" = "$n" ] || fail ${BACKUP_EXIT.countsMismatch} "after restoring $SID, table $t has $n rows, but the backup recorded $w; the safety backup ${safety.id} holds the database as it was before"`,
    `done <<EOF`,
    `$(sed 's/=/ /' "$T/live.counts")`,
    `EOF`,
    `echo "restored=$SID"`,
    ...manifestFacts(ext),
    "",
  ].join("\n");
}

/** Deletes the given backups (decided by decisions/backup-retention.ts) and their manifest lines. */
export function pruneScript(spec: BackupDirSpec, ids: readonly string[]): string {
  const ext = BACKUP_EXT[spec.engine];
  return [
    ...preamble(spec, "prune", ids.join(",")),
    // Ids come back from the host's manifest: quoted like any value, and handed to awk through
    // its environment (awk -v would expand backslash escapes in them).
    ...ids.map((id) => `rm -f ${shq(`${dirOf(spec)}/${id}.${ext}`)}; printf '%s\\n' ${shq(`deleted=${id}`)}`),
    `if [ -f "$B/manifest" ]; then`,
    `  DEL=${shq(ids.join(" "))} awk 'BEGIN { n = split(ENVIRON["DEL"], d, " "); for (i = 1; i <= n; i++) gone[d[i]] = 1 } !($1 in gone)' "$B/manifest" > "$B/manifest.tmp"`,
    `  chmod 600 "$B/manifest.tmp" && mv -f "$B/manifest.tmp" "$B/manifest"`,
    `fi`,
    ...manifestFacts(ext),
    "",
  ].join("\n");
}

/** `pulumi refresh`: the verified backups on the host; read-only, so no lock and nothing created. */
export function listScript(spec: BackupDirSpec): string {
  return [
    "set -eu",
    `B=${shq(dirOf(spec))}`,
    `[ -f "$B/manifest" ] || { echo exists=0; exit 0; }`,
    `echo exists=1`,
    ...manifestFacts(BACKUP_EXT[spec.engine]),
    "",
  ].join("\n");
}

/**
 * Removes this set's backups, manifest and lock, then the directory if nothing else is in it.
 * Only fleet's own files: backupsDir may be a directory the user shares with other things.
 */
export function deleteBackupsScript(spec: BackupDirSpec): string {
  const ext = BACKUP_EXT[spec.engine];
  return [
    ...preamble(spec, "delete-backups", "-"),
    `if [ -f "$B/manifest" ]; then while read -r id rest; do [ -n "$id" ] && rm -f "$B/$id.${ext}" && printf 'deleted=%s\\n' "$id"; done < "$B/manifest"; fi`,
    `trap - EXIT; rm -rf "$T"; rm -f "$B/manifest" "$B/.lock" "$B/backup.log"`,
    `rmdir "$B" 2>/dev/null || true`,
    "",
  ].join("\n");
}

/**
 * Moves backup set `name` from the directory `from` into `spec.backupsDir` (a changed
 * `backupsDir`, e.g. the old default `<root>/<name>/backups` becoming `<root>/.backups/<name>`):
 * under both locks, each of the set's own manifest lines (ids `<name>-<timestamp>-…`; a shared
 * directory keeps the other sets' lines) moves with its file. A file is moved before its line
 * is recorded, and both steps are skipped when already done, so an interrupted move resumes
 * when run again. `from` keeps the other sets' lines; emptied, it is removed (its parent, the
 * service's or the user's folder, stays). Lists the new directory's manifest.
 */
export function moveBackupsScript(spec: BackupDirSpec, name: string, from: string): string {
  const ext = BACKUP_EXT[spec.engine];
  const own = `"$N"-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-*`;
  return [
    ...preamble(spec, "move", from),
    `O=${shq(from.replace(/\/+$/, ""))}; N=${shq(name)}`,
    `if [ "$O" != "$B" ] && [ -d "$O" ] && ! [ "$O" -ef "$B" ]; then`,
    `  exec 8>>"$O/.lock"`,
    `  flock -w 120 8 || fail ${BACKUP_EXIT.locked} "another backup or restore of $O holds its lock (waited 120 s); nothing was moved"`,
    `  if [ -f "$O/manifest" ]; then`,
    `    : > "$O/manifest.tmp"`,
    `    while read -r id sha rest; do`,
    `      [ -n "$id" ] || continue`,
    `      case "$id" in ${own}) ;; *) printf '%s %s %s\\n' "$id" "$sha" "$rest" >> "$O/manifest.tmp"; continue ;; esac`,
    `      f="$id.${ext}"`,
    // Both copies (a cross-filesystem mv that died half-way): the one the manifest's sha256 vouches for stays.
    `      if [ -f "$O/$f" ]; then`,
    `        if [ -f "$B/$f" ] && [ "$(sha256sum < "$B/$f" | cut -c1-64)" = "$sha" ]; then rm -f "$O/$f"; else mv -f "$O/$f" "$B/$f"; fi`,
    `      fi`,
    `      if ! { [ -f "$B/manifest" ] && ID="$id" awk '$1 == ENVIRON["ID"] { found = 1 } END { exit !found }' "$B/manifest"; }; then`,
    `        printf '%s %s %s\\n' "$id" "$sha" "$rest" >> "$B/manifest"; chmod 600 "$B/manifest"`,
    `      fi`,
    `      printf 'moved=%s\\n' "$id"`,
    `    done < "$O/manifest"`,
    `    if [ -s "$O/manifest.tmp" ]; then chmod 600 "$O/manifest.tmp"; mv -f "$O/manifest.tmp" "$O/manifest"; else rm -f "$O/manifest.tmp" "$O/manifest"; fi`,
    `  fi`,
    `  if [ ! -f "$O/manifest" ]; then rm -rf "$O"/.tmp-*; rm -f "$O/.lock" "$O/backup.log"; rmdir "$O" 2>/dev/null || true; fi`,
    `fi`,
    ...manifestFacts(ext),
    "",
  ].join("\n");
}
