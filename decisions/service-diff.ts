/** Pulumi's marker for a value not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

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
] as const;

export interface ServiceDiff {
  readonly changes: boolean;
  readonly replaces: string[];
  /** Same host and unit: the new one would collide with the old one, so delete first. */
  readonly deleteBeforeReplace: boolean;
  /** Every key that differs, for messages and tests. */
  readonly changedKeys: string[];
}

function pick(obj: unknown, path: string): unknown {
  let value: unknown = obj;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/** JSON with sorted keys, so that key order never looks like a change. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

function differs(olds: unknown, news: unknown, key: string): boolean {
  const next = pick(news, key);
  return containsUnknown(next) || canonical(pick(olds, key)) !== canonical(next);
}

/**
 * The Service diff: a new release, unit, env, health, install, build or start is an update;
 * another host, root, name or unit name is a replacement; anything else (a rotated key, a
 * timeout, the source's local path) is no change at all. Unknown values count as changes.
 */
export function diffService(olds: unknown, news: unknown): ServiceDiff {
  const replaces = REPLACE_KEYS.filter((k) => differs(olds, news, k)).map((k) => k.split(".")[0]!);
  const updates = UPDATE_KEYS.filter((k) => differs(olds, news, k));
  const uniqueReplaces = [...new Set(replaces)];
  const sameHost =
    !differs(olds, news, "connection.host") &&
    !differs(olds, news, "connection.port") &&
    !differs(olds, news, "unitName");
  return {
    changes: uniqueReplaces.length > 0 || updates.length > 0,
    replaces: uniqueReplaces,
    deleteBeforeReplace: uniqueReplaces.length > 0 && sameHost,
    changedKeys: [...REPLACE_KEYS.filter((k) => differs(olds, news, k)), ...updates],
  };
}
