/**
 * bench/RESULTS.md holds bench:compare's report and, in a marked block, bench:zero-downtime's:
 * each bench rewrites only its own part.
 */
export const BLOCK_BEGIN = "<!-- zero-downtime:begin -->";
export const BLOCK_END = "<!-- zero-downtime:end -->";

/** The zero-downtime block of `text` (markers included), or "". */
export function zeroDowntimeBlock(text: string): string {
  const begin = text.indexOf(BLOCK_BEGIN);
  const end = text.indexOf(BLOCK_END);
  return begin >= 0 && end > begin ? text.slice(begin, end + BLOCK_END.length) + "\n" : "";
}

/** `text` with its zero-downtime block replaced by `block` (appended when it has none). */
export function withBlock(text: string, block: string): string {
  const wrapped = `${BLOCK_BEGIN}\n${block}\n${BLOCK_END}\n`;
  const old = zeroDowntimeBlock(text);
  if (old) return text.replace(old, wrapped);
  return `${text.replace(/\n*$/, "\n\n")}${wrapped}`;
}
