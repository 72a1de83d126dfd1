import { z } from "zod";

/** Names that become paths and unit names: no slashes, no leading dot or dash. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,63}$/;

/**
 * Names that are properties of every JavaScript object: a lookup by such a name (`pins[name]`,
 * `hosts[host]`) finds Object.prototype's member where no entry exists.
 */
const OBJECT_MEMBERS = new Set(Object.getOwnPropertyNames(Object.prototype));

/** A host, service, backup or image name. */
export const name = z
  .string()
  .regex(NAME_PATTERN, "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'")
  .refine((v) => !OBJECT_MEMBERS.has(v), "must not be a JavaScript object member name (constructor, toString, …)");

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

/** A systemd unit name (without `.service`); a service's name is its unit's by default. */
export const unitName = name.superRefine((v, ctx) => {
  const problem = unitNameProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A Unix account name as Debian's useradd takes it (at most 32 characters). */
export const unixUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name (lowercase letters, digits, '_', '-')");

/** A release id as decisions/release-id.ts makes them: a directory name under `releases/`. */
export const RELEASE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{5,63}$/;
export const releaseId = z.string().regex(RELEASE_ID_PATTERN, "must be a release id (lowercase letters, digits, '-')");

/** A git commit, or a release id: it lands in REVISION and in facts the deploy reads back. */
export const commitId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be a commit id (letters, digits, '.', '_', '-')");
