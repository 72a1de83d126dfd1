import type * as pulumi from "@pulumi/pulumi";
import type { BackupSpec, BackupState } from "../../model/backup";
import { diffBackup, planBackupUpdate } from "../../decisions/backup-diff";
import { checkBackupInputs } from "./check";
import { backupSetId, deleteBackups, listBackups, moveBackups, restoreBackup, stateOf, takeBackup } from "./operations";

/**
 * The DatabaseBackup dynamic provider (issue #5): thin; the operations live in operations.ts,
 * the scripts in commands/backup.ts, the decisions in decisions/. Serialized by value into
 * state, so it captures only plain functions; ssh2 and crypto are required inside them.
 */
export const backupProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkBackupInputs(news) };
  },

  async diff(_id: string, olds: BackupState, news: BackupSpec) {
    const d = diffBackup(olds, news);
    // Create-before-delete: the new set takes its first backup before the old resource goes.
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: false };
  },

  /** Takes the first backup. A `restore` set at create is only recorded: restores act on a change. */
  async create(inputs: BackupSpec) {
    const { retained } = await takeBackup(inputs);
    return { id: backupSetId(inputs), outs: stateOf(inputs, retained) };
  },

  /**
   * Another backupsDir: the backups move there first (they stay one set, with one manifest). A
   * new trigger or release list: a backup. `restore` changed to a backup id: a restore (safety
   * backup first). Both: the backup, then the restore. Anything else: no remote work.
   */
  async update(_id: string, olds: BackupState, news: BackupSpec) {
    const plan = planBackupUpdate(olds, news);
    let retained;
    let lastRestore = olds.lastRestore;
    if (plan.moveFrom) retained = await moveBackups(news, plan.moveFrom);
    if (plan.backup) retained = (await takeBackup(news)).retained;
    if (plan.restore) {
      const restored = await restoreBackup(news, plan.restore);
      retained = restored.retained;
      lastRestore = restored.record;
    }
    if (retained) return { outs: stateOf(news, retained, lastRestore) };
    const kept = stateOf(news, [], lastRestore);
    return {
      outs: {
        ...kept,
        latestId: olds.latestId,
        latestPath: olds.latestPath,
        latestSize: olds.latestSize,
        latestSha256: olds.latestSha256,
        latestTime: olds.latestTime,
        retained: olds.retained,
      },
    };
  },

  /** `pulumi refresh`: the verified backups listed in the manifest whose files still exist. */
  async read(id: string, props: BackupState) {
    const entries = await listBackups(props);
    if (!entries) return { id: "", props: {} };
    return { id, props: stateOf(props, entries, props.lastRestore) };
  },

  /**
   * Backups outlive the resource: destroying a DatabaseBackup (or replacing it) removes nothing
   * from the host unless `deleteBackupsOnDestroy` is set, because the backups are the data you
   * may still need after the program that made them is gone.
   */
  async delete(_id: string, props: BackupState) {
    if (props.deleteBackupsOnDestroy) await deleteBackups(props);
  },
};
