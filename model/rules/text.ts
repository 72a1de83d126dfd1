import { z } from "zod";

/**
 * Text every host, shell and systemd can take as given. Shared by the config schema and the
 * providers' checks: one rule, one verdict.
 */

/**
 * Linux's limit for one argument or environment entry (MAX_ARG_STRLEN, with its NUL): a longer
 * command or variable makes the exec fail with E2BIG.
 */
export const MAX_ARG_BYTES = 131_071;
export const fitsExec = (v: string) => Buffer.byteLength(v) <= MAX_ARG_BYTES;
export const TOO_LONG = `must be at most ${MAX_ARG_BYTES} bytes (Linux's limit for one argument or environment entry)`;

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
export const NONCHARACTER =
  "must not contain Unicode noncharacters (U+FDD0–U+FDEF, U+FFFE, U+FFFF, …): systemd refuses text holding them";

/** One line of text (no newline, no NUL). */
export const line = z.string().regex(/^[^\n\r\0]*$/, "must be a single line");

/** A non-empty single line that fits one exec argument; `what` names it in the messages. */
export const oneLine = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .regex(/^[^\n\r\0]*$/, `${what} must be a single line`)
    .refine(fitsExec, TOO_LONG);

/** A shell command run as `sh -c <command>`. */
export const command = z.string().min(1).refine(fitsExec, TOO_LONG);

/** A problem at a field's path (segments as the data has them). */
export interface FieldProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Strings no host can receive as given, anywhere in `value`: a NUL byte (no shell word, C
 * string, file or unit can hold one) and a lone UTF-16 surrogate (it has no UTF-8 form; it
 * would arrive as U+FFFD). Keys included, each reported at its path; and the key "__proto__",
 * which sets an object's prototype when assigned (zod's records drop it): it would be lost.
 */
export function unrepresentable(value: unknown, path: readonly (string | number)[] = []): FieldProblem[] {
  const check = (s: string, at: readonly (string | number)[]): FieldProblem[] => {
    if (s.includes("\0")) return [{ path: at, message: "must not contain a NUL byte (no host can receive one)" }];
    if (LONE_SURROGATE.test(s))
      return [{ path: at, message: "must be valid Unicode (a lone surrogate has no UTF-8 form)" }];
    return [];
  };
  if (typeof value === "string") return check(value, path);
  if (Array.isArray(value)) return value.flatMap((v, i) => unrepresentable(v, [...path, i]));
  if (value && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => [
      ...check(k, [...path, k]),
      ...(k === "__proto__" ? [{ path: [...path, k], message: '"__proto__" cannot be a name' }] : []),
      ...unrepresentable(v, [...path, k]),
    ]);
  return [];
}
