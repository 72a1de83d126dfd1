import type { z } from "zod";

/** Plain path parts print as they are; any other (spaces, controls, quotes) as a JSON string. */
export const PLAIN_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/;

/**
 * A field's path as problems name it: `services.web.env.PORT`, `services["a b"].host`. List
 * items are `.0` in config problems and `[0]` for the providers (Pulumi's property paths).
 */
export function formatFieldPath(path: readonly (string | number | symbol)[], items: "dot" | "bracket" = "dot"): string {
  let out = "";
  for (const seg of path) {
    const s = typeof seg === "symbol" ? String(seg) : seg;
    if (typeof s === "number" && items === "bracket") out += `[${s}]`;
    else if (typeof s === "number" || PLAIN_SEGMENT.test(s)) out += `${out ? "." : ""}${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** An issue's message; a bad record key's own message says what a name must be ("Invalid key in record" does not). */
export function issueMessage(issue: z.core.$ZodIssue): string {
  return issue.code === "invalid_key" && issue.issues.length > 0
    ? issue.issues.map((i) => i.message).join("; ")
    : issue.message;
}

/** `true` when a schema's fields `S` are exactly the fields of `T`; otherwise the odd field names. */
export type Covers<T, S> = [Exclude<keyof T, keyof S> | Exclude<keyof S, keyof T>] extends [never]
  ? true
  : Exclude<keyof T, keyof S> | Exclude<keyof S, keyof T>;
