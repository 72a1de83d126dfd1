import { UNKNOWN } from "../../decisions/service-diff";

export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

/** Names that become paths and unit names: no slashes, no leading dot or dash. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,63}$/;
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const RELEASE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{5,63}$/;

/**
 * Unicode noncharacters (U+FDD0–U+FDEF, U+FFFE/U+FFFF in every plane): systemd's UTF-8 check
 * refuses them, so an EnvironmentFile holding one fails the unit's start ("Failed to load
 * environment files: Invalid argument") and a unit line holding one is dropped.
 */
export function hasNoncharacter(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) === 0xfffe) return true;
  }
  return false;
}

/** Suffixes systemctl takes as the unit's type: `systemctl restart x.socket` is not `x.socket.service`. */
const UNIT_TYPE_SUFFIX = /\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;

/**
 * Why `name` cannot name fleet's systemd unit (`<name>.service`, addressed as `<name>` by
 * systemctl), or undefined. A trailing `@` names a template, which cannot be started, and a
 * unit-type suffix makes systemctl act on another unit (`cron.service` → cron itself).
 */
export function unitNameProblem(name: string): string | undefined {
  if (name.endsWith("@")) return "must not end with '@' (that names a systemd template, which cannot run)";
  const suffix = UNIT_TYPE_SUFFIX.exec(name);
  if (suffix)
    return `must not end with ".${suffix[1]}": systemctl would take it as that unit, not fleet's ${name}.service`;
  return undefined;
}

/**
 * The provider's own validation (zod in index.ts is the first line; this one protects direct
 * users of the component). Runs in preview too, so unknown values pass.
 */
export function checkServiceInputs(news: Record<string, unknown>): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const known = (v: unknown) => v !== UNKNOWN && v !== undefined;
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  const str = (key: string, pattern: RegExp, what: string) => {
    const v = news[key];
    if (known(v) && (typeof v !== "string" || !pattern.test(v))) fail(key, `${what}; got ${JSON.stringify(v)}`);
  };
  str("name", NAME_PATTERN, "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'");
  str("unitName", NAME_PATTERN, "must be a plain systemd unit name (letters, digits, '_', '.', '@', '-')");
  const unitName = news["unitName"];
  const unitProblem = typeof unitName === "string" ? unitNameProblem(unitName) : undefined;
  if (unitProblem) fail("unitName", unitProblem);
  str("runAs", /^[a-z_][a-z0-9_-]*$/, "must be a Unix user name");
  str("releaseId", RELEASE_ID_PATTERN, "must be a release id (lowercase letters, digits, '-')");
  str("root", /^\/[A-Za-z0-9_./-]*$/, "must be an absolute path without spaces or quotes");
  const root = news["root"];
  if (known(root) && typeof root === "string" && (root === "/" || root.split("/").includes(".."))) {
    fail("root", "must not be / or contain '..'");
  }
  for (const key of ["env", "secretEnv"]) {
    const env = news[key];
    if (!known(env)) continue;
    if (typeof env !== "object" || env === null) {
      fail(key, "must be a map of strings");
      continue;
    }
    for (const [k, v] of Object.entries(env)) {
      if (!ENV_KEY_PATTERN.test(k))
        fail(`${key}.${k}`, "environment variable names are letters, digits and '_', not starting with a digit");
      if (known(v) && (typeof v !== "string" || v.includes("\0")))
        fail(`${key}.${k}`, "must be a string without NUL bytes");
      else if (typeof v === "string" && hasNoncharacter(v))
        fail(`${key}.${k}`, "must not contain Unicode noncharacters (systemd refuses the environment file)");
      if (k.startsWith("FLEET_"))
        fail(`${key}.${k}`, "FLEET_* variables are set by fleet (FLEET_RELEASE, FLEET_COMMIT)");
    }
  }
  const start = news["start"];
  if (known(start) && (typeof start !== "string" || !start.trim() || /[\n\r\0]/.test(start))) {
    fail("start", "must be a one-line shell command");
  }
  const keep = news["keepReleases"];
  if (known(keep) && (typeof keep !== "number" || !Number.isInteger(keep) || keep < 2)) {
    fail("keepReleases", "must be an integer of at least 2 (the serving release and the rollback target)");
  }
  const health = news["health"] as Record<string, unknown> | undefined;
  if (known(health) && health) {
    for (const key of ["url"]) {
      const url = health[key];
      if (known(url) && (typeof url !== "string" || !/^https?:\/\/[\x21-\x7e]{1,8184}$/.test(url)))
        fail(`health.${key}`, "must be an http(s) URL (printable ASCII, at most 8192 characters)");
    }
    // grep -F takes each line of a multi-line pattern as its own pattern: any line would match.
    const body = health["bodyContains"];
    if (known(body) && (typeof body !== "string" || /[\n\0]/.test(body)))
      fail("health.bodyContains", "must be a single line (the body is searched line by line)");
  }
  return failures;
}
