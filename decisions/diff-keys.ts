/** Pulumi's marker for a value not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The value at a dotted path ("connection.host"), or undefined. */
export function pick(obj: unknown, path: string): unknown {
  let value: unknown = obj;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return value === UNKNOWN ? UNKNOWN : undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function containsUnknown(value: unknown): boolean {
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

/** Whether `key` differs between old outputs and new inputs; an unknown new value counts as different. */
export function differs(olds: unknown, news: unknown, key: string): boolean {
  const next = pick(news, key);
  return containsUnknown(next) || canonical(pick(olds, key)) !== canonical(next);
}
