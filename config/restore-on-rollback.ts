/**
 * `restoreOnRollback: true` on a service restores, after an automatic rollback that followed a
 * migration, the pre-deploy backup of the backup set that protects the service. Exactly one set
 * may protect it: the restore must know which database to give back.
 */

const obj = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The backup sets whose `protects` names `service`, in config order. Reads raw config defensively. */
export function backupsProtecting(backups: unknown, service: string): string[] {
  return Object.entries(obj(backups))
    .filter(([, b]) => {
      const protects = obj(b)["protects"];
      return Array.isArray(protects) && protects.includes(service);
    })
    .map(([name]) => name);
}

/** A problem with a field's path (formatted by the schema) and what to do. */
export interface PathProblem {
  readonly path: readonly string[];
  readonly message: string;
}

/** Services with `restoreOnRollback: true` that no backup set, or more than one, protects. */
export function restoreOnRollbackProblems(raw: unknown): PathProblem[] {
  const cfg = obj(raw);
  const problems: PathProblem[] = [];
  for (const [service, s] of Object.entries(obj(cfg["services"]))) {
    if (obj(s)["restoreOnRollback"] !== true) continue;
    const by = backupsProtecting(cfg["backups"], service);
    const path = ["services", service, "restoreOnRollback"];
    const q = JSON.stringify(service);
    if (by.length === 0)
      problems.push({
        path,
        message: `no backup set protects ${q}: add it to the protects of the fleet:backups entry of its database`,
      });
    else if (by.length > 1)
      problems.push({
        path,
        message: `${by.length} backup sets protect ${q} (${by.map((b) => JSON.stringify(b)).join(", ")}); a rollback restores one: keep the service in the protects of one set only`,
      });
  }
  return problems;
}

/** The backup set a service's `restoreOnRollback` restores, or undefined without it (validation makes it unique). */
export function restoreBackupOf(
  cfg: {
    readonly services: Readonly<Record<string, { readonly restoreOnRollback?: boolean }>>;
    readonly backups: unknown;
  },
  service: string,
): string | undefined {
  if (cfg.services[service]?.restoreOnRollback !== true) return undefined;
  const by = backupsProtecting(cfg.backups, service);
  if (by.length !== 1)
    throw new Error(`services.${service}.restoreOnRollback: needs exactly one backup set protecting it`);
  return by[0];
}
