/**
 * The drift alarm's decisions: which command finds drift, whether a run found it, which resources
 * differ (read from the CLI's `--diff` output), and the notification that announces it. The CLI
 * is `pulumi preview --refresh --expect-no-changes`: the refresh reads each resource's live state
 * (for fleet's services: the release `current` points at on the host), and the preview then
 * proposes the changes that would bring it back. Any proposed change is drift.
 */
import type { NotifyEvent, NotifyTarget } from "../model/notify";
import { CODE_PROVIDER_PACKAGE, CODE_PROVIDER_PREFIX } from "../model/shipped-code";

/** `npm run drift` exit codes: 0 in sync, 1 drift (announced), 2 the check itself failed. */
export const DRIFT_EXIT = { clean: 0, drift: 1, error: 2 } as const;

/**
 * The Pulumi CLI's exit code for `--expect-no-changes` when changes were proposed (its exit-code
 * taxonomy, `ExitNoChanges = 7`). Older CLIs exit 255 instead; the message tells them apart.
 */
export const PULUMI_EXIT_NO_CHANGES = 7;

/** Matches every wording of that error across CLI versions. */
const NO_CHANGES_EXPECTED = /no changes were expected(?: for \S+)? but changes (?:were proposed|occurred)/;

/** The arguments of the drift check, as the CLI takes them. */
export function driftCommand(stack: string): string[] {
  return ["preview", "--refresh", "--expect-no-changes", "--stack", stack, "--non-interactive", "--diff"];
}

export type DriftVerdict = { kind: "clean" } | { kind: "drift" } | { kind: "error" };

/**
 * Drift only when the CLI says changes were proposed; any other failure is a failed check. A
 * new fleet version alone proposes its code provider (created, and the old one deleted: see
 * docs/state.md): that is fleet's own code, not the hosts, and the next up records it.
 */
export function driftVerdict(status: number, output: string): DriftVerdict {
  if (status === 0) return { kind: "clean" };
  if (status === PULUMI_EXIT_NO_CHANGES || NO_CHANGES_EXPECTED.test(stripAnsi(output))) {
    const changed = driftedResources(output);
    return changed.length > 0 && changed.every(isCodeProviderStep) ? { kind: "clean" } : { kind: "drift" };
  }
  return { kind: "error" };
}

/** A step of the provider resource that carries fleet's code (components/shipped-resource.ts). */
function isCodeProviderStep(r: DriftedResource): boolean {
  return r.type === `pulumi:providers:${CODE_PROVIDER_PACKAGE}` && r.name.startsWith(CODE_PROVIDER_PREFIX);
}

export interface DriftedResource {
  /** The step the preview proposes: update, replace, create, delete, … */
  readonly op: string;
  readonly type: string;
  /** The resource's logical name (from its URN), or its type when the URN was not printed. */
  readonly name: string;
}

/** Steps that change nothing, and so are not drift. */
const NO_CHANGE_OPS = new Set(["same", "read", "read-replacement", "discard", "discard-replaced"]);

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
// Pulumi's own colour markup (`<{%reset%}>`, `<{%fg 13%}>`) when the output is captured raw.
const MARKUP = /<\{%[^%]*%\}>/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, "").replace(MARKUP, "");
}

/**
 * The resources a `pulumi preview --diff` output proposes to change. The diff display prints one
 * header per step, `<symbol> <type>: (<op>)`, followed by `[id=…]`, `[urn=…]` and the property
 * diff; the name is the URN's last part (`urn:pulumi:<stack>::<project>::<type>::<name>`).
 */
export function driftedResources(output: string): DriftedResource[] {
  const lines = stripAnsi(output).split(/\r?\n/);
  const found: DriftedResource[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const header =
      /^\s*(?:\+-|\+\+|--|>>|<<|=>|\+|-|~|>|<|=)?\s*([A-Za-z0-9_.-]+:[A-Za-z0-9_./$:-]*): \(([a-z-]+)\)\s*$/.exec(
        lines[i]!,
      );
    if (!header) continue;
    const [, type, op] = header as unknown as [string, string, string];
    if (NO_CHANGE_OPS.has(op) || type === "pulumi:pulumi:Stack") continue;
    let name = type;
    for (let j = i + 1; j < Math.min(lines.length, i + 5); j++) {
      const urn = /^\s*\[urn=(urn:pulumi:[^\]]+)\]\s*$/.exec(lines[j]!);
      if (urn) {
        name = urn[1]!.split("::").slice(3).join("::") || type;
        break;
      }
    }
    const key = `${op} ${type} ${name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    found.push({ op, type, name });
  }
  // A refresh step says the recorded state moved; the step after it says what the program wants.
  // List the latter when there are any, the refreshes alone otherwise.
  const changes = found.filter((r) => r.op !== "refresh");
  return changes.length > 0 ? changes : found;
}

/** The `Resources:` block's counts (`~ 1 to update`), without the unchanged line. */
function resourceCounts(output: string): string[] {
  const lines = stripAnsi(output).split(/\r?\n/);
  const start = lines.findIndex((l) => /^\s*Resources:\s*$/.test(l));
  if (start < 0) return [];
  const counts: string[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^\s*(?:\S{1,2}\s+)?(\d+ to [a-z-]+|\d+ unchanged)\s*$/.exec(l);
    if (!m) break;
    if (!m[1]!.endsWith("unchanged")) counts.push(m[1]!);
  }
  return counts;
}

/**
 * A human list of what differs: one line per resource (`update  aether-core-release
 * (pulumi-nodejs:dynamic/fleet:ServiceRelease)`), or the CLI's counts when no step was printed.
 */
export function driftSummary(output: string): string {
  const resources = driftedResources(output);
  if (resources.length > 0) {
    const width = Math.max(...resources.map((r) => r.op.length));
    const noun = resources.length === 1 ? "resource differs" : "resources differ";
    return [
      `${resources.length} ${noun} from the live state:`,
      ...resources.map((r) => `  ${r.op.padEnd(width)}  ${r.name}${r.name === r.type ? "" : ` (${r.type})`}`),
    ].join("\n");
  }
  const counts = resourceCounts(output);
  return counts.length > 0
    ? `the live state differs: ${counts.join(", ")} (see the job's log for the diff)`
    : "the live state differs (the preview listed no resources; see the job's log for the diff)";
}

/**
 * The notification for a drifted stack. NotifyEvent has no drift kind, so it travels as a
 * `failure` (targets that announce failures get it) with service "drift" and host "(stack)".
 */
export function driftEvent(stack: string, summary: string, durationMs: number): NotifyEvent {
  return {
    event: "failure",
    service: "drift",
    host: "(stack)",
    from: stack,
    to: "live state differs",
    commit: "",
    durationMs,
    message: `drift on stack ${stack}: ${summary}\nnpm run deploy -- --stack ${stack} puts the program's state back; or change the program to match.`,
  };
}

/** A `fleet:notify` entry as the schema gives it: a target, maybe limited to some services. */
export type ConfiguredTarget = NotifyTarget & { readonly services?: readonly string[] };

/**
 * Who hears about drift: every target without a `services` filter, and a filtered target when a
 * drifted resource belongs to one of its services (named `<service>`, `<service>-…` or
 * `<service>@<host>…`, as fleet names them).
 */
export function driftTargets(
  targets: readonly ConfiguredTarget[],
  drifted: readonly DriftedResource[],
): NotifyTarget[] {
  const belongs = (svc: string) =>
    drifted.some((r) => r.name === svc || r.name.startsWith(`${svc}-`) || r.name.startsWith(`${svc}@`));
  return targets
    .filter((t) => !t.services || t.services.some(belongs))
    .map(({ services: _services, ...target }) => target);
}
