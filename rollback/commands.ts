/**
 * Pure helpers of `npm run rollback`: the Pulumi command lines, the arguments, the table.
 *
 * The CLI has no `config set --json` (pulumi/pulumi pkg/cmd/pulumi/config/config_set.go: only
 * --path, --plaintext, --secret; `set-all --json` exists only in recent CLIs), so pins are set one
 * key at a time with `--path`. With --path the CLI stores "true"/"false" as booleans and digits
 * not starting with 0 as integers (sdk/go/common/resource/config/map.go adjustObjectValue); a
 * release id or commit like that could not be pinned as a string that way, so then the whole
 * object is set as one JSON string, which the SDK's `config.requireObject` parses the same way.
 * `config rm` of an absent key succeeds (map.go Remove without --path is a plain delete).
 */
import { shq } from "../commands/quote";
import { serviceReleases, type HistoryEntry, type Pins } from "./history";

export const PINS_KEY = "fleet:pins";

/** Would `config set --path` store this value as something else than this string? */
function coercedByPath(value: string): boolean {
  return value === "true" || value === "false" || (/^\d+$/.test(value) && !(value.length > 1 && value[0] === "0"));
}

/** A --path segment: `name`, or `["na.me"]` when the name is not a plain identifier. */
function segment(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}

/** The argv lists that pin `pins` in `stack` and deploy them, in order. */
export function pulumiCommands(pins: Pins, stack: string): string[][] {
  const st = ["--stack", stack];
  const values = Object.values(pins).flatMap((p) => [p.releaseId, p.commit]);
  const set = values.some(coercedByPath)
    ? [["pulumi", "config", "set", PINS_KEY, JSON.stringify(pins), ...st]]
    : Object.entries(pins).flatMap(([service, p]) =>
        (["releaseId", "commit"] as const).map((k) => [
          "pulumi",
          "config",
          "set",
          "--path",
          `${PINS_KEY}${segment(service)}.${k}`,
          p[k],
          ...st,
        ]),
      );
  return [["pulumi", "config", "rm", PINS_KEY, ...st], ...set, ["pulumi", "up", ...st, "--yes"]];
}

/** Unpinning: the services deploy from their sources again at the next `pulumi up`. */
export function unpinCommands(stack: string): string[][] {
  return [["pulumi", "config", "rm", PINS_KEY, "--stack", stack]];
}

export function shellLine(argv: readonly string[]): string {
  return argv.map(shq).join(" ");
}

export interface RollbackArgs {
  readonly mode: "list" | "version" | "service" | "unpin";
  readonly version?: number;
  readonly service?: { readonly name: string; readonly releaseId: string };
  readonly stack: string;
  readonly backendDir: string;
  readonly dryRun: boolean;
}

export const USAGE = `usage: npm run rollback -- --list
       npm run rollback -- <version>
       npm run rollback -- --service <name> <release>
       npm run rollback -- --unpin
options: --stack <stack> (default $PULUMI_STACK or dev), --backend-dir <dir> (default from
         $PULUMI_BACKEND_URL=file://…, else the project folder), --dry-run (print the commands)`;

/** Where the file backend lives: `file://` URL (`~` expanded), else the project folder. */
export function defaultBackendDir(env: NodeJS.ProcessEnv, projectDir: string, home: string): string {
  const url = env["PULUMI_BACKEND_URL"];
  if (url?.startsWith("file://")) {
    const p = decodeURIComponent(url.slice("file://".length).split("?")[0]!);
    return p === "~" || p.startsWith("~/") ? home + p.slice(1) : p;
  }
  return projectDir;
}

export function parseArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  projectDir: string,
  home: string,
): RollbackArgs {
  const rest = [...argv];
  const take = (flag: string, n: number): string[] | undefined => {
    const i = rest.indexOf(flag);
    if (i < 0) return undefined;
    const vals = rest.splice(i, n + 1).slice(1);
    if (vals.length !== n || vals.some((v) => v.startsWith("--")))
      throw new Error(`${flag} needs ${n} value(s)\n${USAGE}`);
    return vals;
  };
  const stack = take("--stack", 1)?.[0] ?? env["PULUMI_STACK"] ?? "dev";
  const backendDir = take("--backend-dir", 1)?.[0] ?? defaultBackendDir(env, projectDir, home);
  const service = take("--service", 2);
  const flags = (["--dry-run", "--list", "--unpin"] as const).map((f) => {
    const i = rest.indexOf(f);
    if (i >= 0) rest.splice(i, 1);
    return i >= 0;
  });
  const [dryRun, list, unpin] = flags as [boolean, boolean, boolean];
  const common = { stack, backendDir, dryRun };
  const unknown = rest.filter((a) => a.startsWith("-"));
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(" ")}\n${USAGE}`);
  const modes = [list, unpin, service !== undefined, rest.length > 0].filter(Boolean).length;
  if (modes !== 1 || rest.length > 1) throw new Error(USAGE);
  if (list) return { mode: "list", ...common };
  if (unpin) return { mode: "unpin", ...common };
  if (service) return { mode: "service", service: { name: service[0]!, releaseId: service[1]! }, ...common };
  const version = Number(rest[0]);
  if (!Number.isInteger(version) || version < 1) throw new Error(`not a version number: ${rest[0]}\n${USAGE}`);
  return { mode: "version", version, ...common };
}

/**
 * `--list`: one line per update: version, time, git head, result, and each resource's release
 * (`web=…` for a service on one host, `api@web1=… api@web2=…` for one on several).
 */
export function historyTable(entries: readonly HistoryEntry[]): string {
  const rows = entries.map((e) => [
    String(e.version),
    new Date(e.startTime * 1000).toISOString().replace(".000Z", "Z"),
    e.gitHead ? e.gitHead.slice(0, 8) : "-",
    e.kind === "update" ? e.result : `${e.kind} ${e.result}`,
    Object.values(e.releases)
      .sort((a, b) => a.resource.localeCompare(b.resource))
      .map((r) => `${r.resource}=${r.releaseId}`)
      .join(" ") || "-",
  ]);
  const all = [["VERSION", "TIME", "GIT HEAD", "RESULT", "SERVICES"], ...rows];
  const widths = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  return all
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  "))
    .join("\n");
}

/**
 * `--service <name> <release>`: one release on every host of the service, with the commit it was
 * built from, from the newest update in which any of its hosts had it.
 */
export function pinOneService(entries: readonly HistoryEntry[], name: string, releaseId: string): Pins {
  for (const e of [...entries].reverse()) {
    const seen = serviceReleases(e.releases, name).find((r) => r.releaseId === releaseId);
    if (seen) return { [name]: { releaseId, commit: seen.commit } };
  }
  return { [name]: { releaseId, commit: releaseId } };
}
