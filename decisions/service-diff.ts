import { differs, UNKNOWN as UNKNOWN_TEXT } from "./diff-keys";

export { UNKNOWN, canonical } from "./diff-keys";

/** Changing any of these moves the service elsewhere: a replacement. */
export const REPLACE_KEYS = ["name", "root", "unitName", "connection.host", "connection.port"] as const;

/** Changing any of these is a new deploy on the same host: an update. */
export const UPDATE_KEYS = [
  "releaseId",
  "commit",
  "unit",
  "env",
  "secretEnv",
  "health",
  "install",
  "build",
  "migrate",
  "start",
  "runAs",
  "keepReleases",
  "pinned",
  // Behind the proxy: a route, TLS or maintenance change deploys (and switches) like a release.
  "proxy",
  // A new shared path is linked into the serving release by a deploy.
  "shared",
] as const;

/**
 * Recorded by an update that does no remote work: `read` and `delete` get only the stored
 * OUTPUTS, and a no-change step keeps the old ones, so a re-pinned host key (a rebuilt server) or
 * a rotated client key would otherwise never reach `pulumi refresh` / `pulumi destroy`.
 */
export const SERVICE_RECORD_KEYS = [
  "connection.user",
  "connection.privateKey",
  "connection.hostKey",
  // Hooks run at the next deploy, and delete reads deleteSharedOnDestroy from the stored outputs.
  "hooks",
  "deleteSharedOnDestroy",
  "hostName",
] as const;

export interface ServiceDiff {
  readonly changes: boolean;
  readonly replaces: string[];
  /**
   * Same address: the new one would collide with the old one (its folder, its unit, its port),
   * so delete first. Another address may still be the same machine (a name and its IP): the
   * delete then finds its folder taken over and leaves it (commands/service.ts deleteScript).
   */
  readonly deleteBeforeReplace: boolean;
  /** Every key that differs, for messages and tests. */
  readonly changedKeys: string[];
  /** Only SERVICE_RECORD_KEYS changed: the update records them and runs nothing on the host. */
  readonly recordOnly: boolean;
}

/**
 * The Service diff: a new release, unit, env, health, install, build or start is an update;
 * another host, root, name or unit name is a replacement; another user, client key or pinned
 * host key is an update that only records them (recordOnly); anything else (a timeout, the
 * source's local path) is no change at all. Unknown values count as changes.
 */
export function diffService(olds: unknown, news: unknown): ServiceDiff {
  const replaces = REPLACE_KEYS.filter((k) => differs(olds, news, k)).map((k) => k.split(".")[0]!);
  const updates: string[] = UPDATE_KEYS.filter((k) => differs(olds, news, k));
  if (liveDrift(olds)) updates.push("live.release");
  const records = SERVICE_RECORD_KEYS.filter((k) => differs(olds, news, k));
  const uniqueReplaces = [...new Set(replaces)];
  // A new unitName alone used to create first: the old resource's delete then removed the
  // folder the new one had just deployed to (issue 29).
  const sameHost = !differs(olds, news, "connection.host") && !differs(olds, news, "connection.port");
  return {
    changes: uniqueReplaces.length > 0 || updates.length > 0 || records.length > 0,
    replaces: uniqueReplaces,
    deleteBeforeReplace: uniqueReplaces.length > 0 && sameHost,
    changedKeys: [...REPLACE_KEYS.filter((k) => differs(olds, news, k)), ...updates, ...records],
    recordOnly: uniqueReplaces.length === 0 && updates.length === 0 && records.length > 0,
  };
}

/**
 * A refresh found `current` on another release than the deployed (last verified) one: a manual
 * switch, or a release an interrupted deploy left unconfirmed. The next up deploys (and gates)
 * the configured release again.
 */
export function liveDrift(olds: unknown): boolean {
  if (typeof olds !== "object" || olds === null) return false;
  const o = olds as { releaseId?: unknown; live?: { release?: unknown } };
  const live = o.live?.release;
  return typeof live === "string" && live !== "" && live !== o.releaseId;
}

/**
 * Whether Check should open the host's connection ahead of Update: only when a deploy will
 * follow (a new resource, or a diff with changes) and the connection is fully known. The SSH
 * handshake (~0.1–0.2 s) then overlaps the engine's Check→Diff→Update steps; a run that changes
 * nothing opens no connection.
 */
export function shouldPrewarm(oldInputs: Record<string, unknown>, news: Record<string, unknown>): boolean {
  const connection = news["connection"];
  if (typeof connection !== "object" || connection === null) return false;
  if (JSON.stringify(connection).includes(UNKNOWN_TEXT)) return false;
  if (Object.keys(oldInputs).length === 0) return true;
  const d = diffService(oldInputs, news);
  return d.changes && !d.recordOnly;
}
