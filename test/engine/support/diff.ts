/**
 * Reading the Pulumi CLI's `--diff` display (preview, up, refresh) as a user reads it: one header
 * per step (`~ pulumi-nodejs:dynamic/fleet:ServiceRelease: (update)`), its `[urn=…]`, then the
 * properties, changed ones marked `~`, `+` or `-` with `old => new`. Written for these tests,
 * independent of fleet's own parser in decisions/drift.ts.
 */

export interface Step {
  /** create, update, delete, replace, same, refresh, … */
  readonly op: string;
  readonly type: string;
  /** The resource's name: the URN's last part ("" when the display printed no URN). */
  readonly name: string;
  /** The step's property lines, as printed. */
  readonly lines: readonly string[];
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const HEADER = /^\s*(?:[~+\-=<>]{1,2}\s+)?([A-Za-z0-9_.-]+:[A-Za-z0-9_./$:-]*): \(([a-z-]+)\)\s*$/;

export function steps(output: string): Step[] {
  const lines = output.replace(ANSI, "").split(/\r?\n/);
  const found: Step[] = [];
  let current: { op: string; type: string; name: string; lines: string[] } | undefined;
  for (const line of lines) {
    const h = HEADER.exec(line);
    if (h) {
      current = { op: h[2]!, type: h[1]!, name: "", lines: [] };
      found.push(current);
      continue;
    }
    if (!current) continue;
    if (/^\S/.test(line) || /^\s*--outputs:--/.test(line)) {
      current = undefined; // "Resources:", "Outputs:", the stack's own outputs
      continue;
    }
    const urn = /^\s*\[urn=(urn:pulumi:[^\]]+)\]\s*$/.exec(line);
    if (urn) current.name = urn[1]!.split("::").pop()!;
    else current.lines.push(line);
  }
  return found;
}

/** The steps that change something (everything but `same`). */
export function changes(output: string): Step[] {
  return steps(output).filter((s) => s.op !== "same");
}

/** The properties a step marks as changed, by name (`releaseId` → `"a" => "b"`). */
export function changedProperties(step: Step): Record<string, string> {
  const props: Record<string, string> = {};
  for (const line of step.lines) {
    const m = /^\s*[~+-]\s+([A-Za-z0-9_]+)\s*: (.*)$/.exec(line);
    if (m && line.trimStart().match(/^[~+-]\s/)) props[m[1]!] = m[2]!.trim();
  }
  return props;
}

/** The `Resources:` summary's counts (`{ "to update": 1, unchanged: 3 }`). */
export function resourceCounts(output: string): Record<string, number> {
  const lines = output.replace(ANSI, "").split(/\r?\n/);
  const start = lines.findIndex((l) => /^Resources:\s*$/.test(l));
  const counts: Record<string, number> = {};
  if (start < 0) return counts;
  for (const l of lines.slice(start + 1)) {
    const m = /^\s+(?:[~+\-]{1,2}\s+)?(\d+) (.+?)\s*$/.exec(l);
    if (!m) break;
    counts[m[2]!] = Number(m[1]);
  }
  return counts;
}

/**
 * What a command did rather than what it previewed first: `up`, `refresh` and `destroy` print a
 * preview, then the run (`Updating (…)`, `Refreshing (…)`, `Destroying (…)`). The whole output
 * when there is no such part (a preview).
 */
export function applied(output: string): string {
  const lines = output.replace(ANSI, "").split(/\r?\n/);
  const starts = lines.flatMap((l, i) => (/^(Updating|Refreshing|Destroying) \(/.test(l) ? [i] : []));
  const at = starts.length > 0 ? starts[starts.length - 1]! : -1;
  return at < 0 ? output : lines.slice(at).join("\n");
}
