/** A duration as users write it: "250ms", "30s", "2m". */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m)$/;

/** Milliseconds in a duration string; throws with the accepted forms otherwise. */
export function parseDuration(value: string, field: string): number {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) throw new Error(`${field}: "${value}" is not a duration; write e.g. "500ms", "30s" or "2m"`);
  const n = Number(match[1]);
  return Math.round(match[2] === "ms" ? n : match[2] === "s" ? n * 1000 : n * 60_000);
}
