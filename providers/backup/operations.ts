import type { BackupEntry, BackupSpec, BackupState, BackupTarget, RestoreRecord } from "../../model/backup";
import {
  BACKUP_EXIT,
  backupId,
  backupPath,
  backupScript,
  deleteBackupsScript,
  listScript,
  moveBackupsScript,
  parseCounts,
  parseManifestLine,
  pruneScript,
  releaseLabel,
  restoreScript,
  type BackupDirSpec,
  type BackupSetSpec,
} from "../../commands/backup";
import { parseFacts, type Facts } from "../../commands/facts";
import { backupsToDelete, newestFirstOrder, type BackupRecord } from "../../decisions/backup-retention";
import type { SshConnection } from "../../transport/connection";
import { remoteStepFailed } from "../../transport/errors";
import { fleetError, type FleetError } from "../../model/errors";
import { connectionKey, runScript, type ExecResult } from "../../transport/ssh";

/**
 * The backup operations, shared by the dynamic provider and `scripts/restore.ts`: each one is a
 * script from commands/backup.ts run over the pooled SSH connection, plus the pure retention
 * decision. Plain functions only (serialized by value with the provider).
 */

export function targetOf(spec: Pick<BackupSpec, "engine" | "postgres" | "sqlite">): BackupTarget {
  if (spec.engine === "postgres" && spec.postgres) return { engine: "postgres", postgres: spec.postgres };
  if (spec.engine === "sqlite" && spec.sqlite) return { engine: "sqlite", sqlite: spec.sqlite };
  throw fleetError(
    "config",
    `engine "${spec.engine}" needs its ${spec.engine} settings`,
    `Add the backup's ${spec.engine} block to its config.`,
  );
}

function setOf(spec: BackupSpec): BackupSetSpec {
  return { backupsDir: spec.backupsDir, engine: spec.engine, target: targetOf(spec), verifyTables: spec.verifyTables };
}

/** Everything redacted from error text: the SSH key and the database password. */
function secretsOf(spec: { connection: SshConnection; postgres?: { password?: string } }): string[] {
  return [spec.connection.privateKey, spec.postgres?.password ?? ""].filter(Boolean);
}

/** Fails with the script's exit code and output tail, under a message saying what it means. */
function failed(spec: BackupSpec, step: string, result: ExecResult, meaning: string): FleetError {
  const evidence = remoteStepFailed(
    connectionKey(spec.connection),
    step,
    `/bin/sh -s <<'script' (${step})`,
    result.code,
    result.stdout,
    result.stderr,
    `exit code ${result.code}`,
    secretsOf(spec),
  );
  const { host, stage, command, exitCode, stdoutTail, stderrTail, phase } = evidence;
  return fleetError(
    "failure",
    `backup set "${spec.name}" in ${spec.backupsDir}: ${meaning}\n${evidence.summary}`,
    evidence.hint,
    {
      host,
      stage,
      step,
      command,
      exitCode,
      stdoutTail,
      stderrTail,
      phase,
    },
  );
}

/** The verified backups a script listed (`backup=<manifest line>` facts), oldest first. */
export function entriesOf(facts: Facts): BackupEntry[] {
  const entries = (facts.all["backup"] ?? []).map(parseManifestLine).filter((e): e is BackupEntry => !!e);
  return newestFirstOrder(entries.map(recordOf))
    .reverse()
    .map((r) => entries.find((e) => e.id === r.id)!);
}

function recordOf(e: BackupEntry): BackupRecord {
  return { id: e.id, takenAt: Date.parse(e.time) || 0, releases: e.releases };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Takes a verified backup, then applies retention. The id carries the time to the second: if
 * that name exists already (two backups within one second), the next second is used. Backups of
 * one set queue on the host's lock, so N started together need up to N attempts.
 */
export async function takeBackup(spec: BackupSpec): Promise<{ id: string; retained: BackupEntry[] }> {
  const run = (id: string, time: string) =>
    runScript(
      spec.connection,
      backupScript(setOf(spec), { id, time, releases: spec.releases }),
      { step: "backup", secrets: secretsOf(spec), timeoutMs: spec.stepTimeoutMs },
      false,
    );
  let result: ExecResult | undefined;
  for (let attempt = 0; attempt < 10; attempt++) {
    const now = new Date();
    result = await run(backupId(spec.name, now, releaseLabel(spec.releases)), now.toISOString());
    if (result.code !== BACKUP_EXIT.exists) break;
    await sleep(1010 - (Date.now() % 1000));
  }
  if (!result || result.code !== 0) {
    const meaning =
      result?.code === BACKUP_EXIT.verifyFailed
        ? "the new backup failed verification: it was deleted and not recorded"
        : "the backup failed: nothing was recorded";
    throw failed(spec, "backup", result!, `${meaning} (the earlier backups are untouched)`);
  }
  const facts = parseFacts(result.stdout);
  return { id: facts.one["id"] ?? "", retained: await applyRetention(spec, entriesOf(facts)) };
}

/** This set's own entries: a backupsDir shared with another set must not prune that set's backups. */
function ownEntries(name: string, entries: BackupEntry[]): BackupEntry[] {
  const prefix = `${name}-`;
  return entries.filter((e) => e.id.startsWith(prefix) && /^\d{8}T\d{6}Z-/.test(e.id.slice(prefix.length)));
}

/** Deletes what the retention decision says may go; returns what is left. */
async function applyRetention(spec: BackupSpec, all: BackupEntry[]): Promise<BackupEntry[]> {
  const entries = ownEntries(spec.name, all);
  const doomed = backupsToDelete(entries.map(recordOf), {
    keep: spec.keep,
    keepDays: spec.keepDays,
    now: Date.now(),
    protectReleases: spec.protectReleases,
  });
  if (doomed.length === 0) return entries;
  const result = await runScript(spec.connection, pruneScript(spec, doomed), {
    step: "prune",
    secrets: secretsOf(spec),
    timeoutMs: spec.stepTimeoutMs,
  });
  return ownEntries(spec.name, entriesOf(parseFacts(result.stdout)));
}

const RESTORE_MEANING: Record<number, string> = {
  [BACKUP_EXIT.notFound]: "restore refused: no such verified backup; the database was not touched",
  [BACKUP_EXIT.corrupt]: "restore refused: the backup is corrupt; the database was not touched",
  [BACKUP_EXIT.restoreFailed]: "the restore failed",
  [BACKUP_EXIT.countsMismatch]: "the restore ran, but its row counts differ from the backup's",
};

/**
 * Restores backup `id` (after a safety backup of the current database, see restoreScript).
 * A restore deletes nothing: retention waits for the next backup, so neither the restored
 * backup nor the safety backup can be pruned by it.
 */
export async function restoreBackup(
  spec: BackupSpec,
  id: string,
): Promise<{ record: RestoreRecord; retained: BackupEntry[] }> {
  let now = new Date();
  let result: ExecResult | undefined;
  // The safety backup's id carries the second: two restores within one second (or a backup
  // just before) would collide. The script refuses before touching the database; next second.
  for (let attempt = 0; attempt < 10; attempt++) {
    now = new Date();
    const safety = { id: backupId(spec.name, now, "pre-restore"), time: now.toISOString(), releases: [] };
    result = await runScript(
      spec.connection,
      restoreScript(setOf(spec), id, safety),
      { step: "restore", secrets: secretsOf(spec), timeoutMs: spec.stepTimeoutMs },
      false,
    );
    if (result.code !== BACKUP_EXIT.exists) break;
    await sleep(1010 - (Date.now() % 1000));
  }
  result = result!;
  const facts = parseFacts(result.stdout);
  if (result.code !== 0) {
    const meaning = RESTORE_MEANING[result.code] ?? "the restore failed";
    const taken = facts.one["id"] ? ` The safety backup ${facts.one["id"]} holds the database as it was before.` : "";
    throw failed(spec, "restore", result, `${meaning} (backup ${id}).${taken}`);
  }
  return {
    record: {
      id,
      safetyBackupId: facts.one["id"] ?? "",
      at: now.toISOString(),
      counts: parseCounts(facts.all["restored_count"] ?? []),
    },
    retained: ownEntries(spec.name, entriesOf(facts)),
  };
}

/**
 * Moves this set's backups from `from` into `spec.backupsDir` (a changed backupsDir); returns
 * what the new directory then holds of the set. Resumes where an interrupted move stopped.
 */
export async function moveBackups(spec: BackupSpec, from: string): Promise<BackupEntry[]> {
  const result = await runScript(
    spec.connection,
    moveBackupsScript({ backupsDir: spec.backupsDir, engine: spec.engine }, spec.name, from),
    { step: "move", secrets: secretsOf(spec), timeoutMs: spec.stepTimeoutMs },
    false,
  );
  if (result.code !== 0)
    throw failed(
      spec,
      "move",
      result,
      `moving its backups from ${from} failed: those not moved are still there, in its manifest; run pulumi up again to finish the move`,
    );
  return ownEntries(spec.name, entriesOf(parseFacts(result.stdout)));
}

/** The verified backups on the host whose files exist; undefined when there is no manifest. */
export async function listBackups(
  spec: BackupDirSpec & { name: string; connection: SshConnection; stepTimeoutMs: number },
): Promise<BackupEntry[] | undefined> {
  const result = await runScript(spec.connection, listScript(spec), {
    step: "list",
    secrets: [spec.connection.privateKey],
    timeoutMs: spec.stepTimeoutMs,
  });
  const facts = parseFacts(result.stdout);
  return facts.one["exists"] === "1" ? ownEntries(spec.name, entriesOf(facts)) : undefined;
}

export async function deleteBackups(
  spec: BackupDirSpec & { connection: SshConnection; stepTimeoutMs: number },
): Promise<string[]> {
  const result = await runScript(spec.connection, deleteBackupsScript(spec), {
    step: "delete-backups",
    secrets: [spec.connection.privateKey],
    timeoutMs: spec.stepTimeoutMs,
  });
  return parseFacts(result.stdout).all["deleted"] ?? [];
}

/**
 * The outputs: the inputs without the password (no output may hold it; nothing after the
 * operation needs it), the newest verified backup, the retained ids (oldest first). JSON round
 * trip: outputs must not contain `undefined`.
 */
export function stateOf(
  spec: BackupSpec | BackupState,
  retained: readonly BackupEntry[],
  lastRestore?: RestoreRecord,
): BackupState {
  const latest = retained[retained.length - 1];
  const { postgres, ...rest } = spec;
  const pg = postgres
    ? { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user }
    : undefined;
  const state = {
    ...rest,
    postgres: pg,
    latestId: latest?.id ?? "",
    latestPath: latest ? backupPath(spec, latest.id) : "",
    latestSize: latest?.size ?? 0,
    latestSha256: latest?.sha256 ?? "",
    latestTime: latest?.time ?? "",
    retained: retained.map((e) => e.id),
    lastRestore,
  };
  return JSON.parse(JSON.stringify(state)) as BackupState;
}

/** The resource id: where the backup set lives. */
export function backupSetId(spec: BackupSpec): string {
  return `${spec.connection.host}:${spec.connection.port ?? 22}:${spec.backupsDir}`;
}
