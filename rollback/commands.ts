/**
 * Pure helpers of `npm run rollback`: the Pulumi command lines, the arguments, the table.
 *
 * The pins are written by the `pulumi up` that applies them (`--config`, saved to the stack file):
 * one CLI start, not one more per key as `config set --path` took, and every value stays a string
 * (`--path` stored "true" or "1234" as a boolean or an integer).
 */
import * as path from "path";
import { shq } from "../commands/quote";
import { backendOf } from "../config/backend";
import {
  parseCommandLine,
  usageProblem,
  USAGE_EXIT,
  type CommandLine,
  type Flags,
  type ScriptSpec,
} from "../config/cli-args";
import { serviceReleases, type HistoryEntry, type Pins } from "./history";

export const PINS_KEY = "fleet:pins";

/** The argv lists that pin `pins` in `stack` and deploy them, in order. */
export function pulumiCommands(pins: Pins, stack: string): string[][] {
  // One CLI run: `up --config` writes the pins to the stack file, then updates. The whole object
  // as one JSON string, which the SDK's `config.getObject` parses (every value stays a string).
  // No second preview: the pins printed above are the whole change, and `up` shows each step.
  return [
    ["pulumi", "up", "--stack", stack, "--yes", "--skip-preview", "--config", `${PINS_KEY}=${JSON.stringify(pins)}`],
  ];
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
  /** The project folder (where `pulumi` runs, and Pulumi.yaml names the project). */
  readonly cwd: string;
  readonly backendDir: string;
  readonly dryRun: boolean;
}

export const ROLLBACK_FLAGS = {
  list: { type: "boolean", help: "the stack's updates, with each host's release" },
  service: {
    type: "string",
    value: "name",
    help: "pin one service, on every host it runs on, to <release> (--service <name> <release>)",
  },
  unpin: { type: "boolean", help: "remove fleet:pins: the next pulumi up deploys the sources again" },
  "backend-dir": {
    type: "string",
    value: "dir",
    help: "the folder that holds the file backend's .pulumi/ (default: from $PULUMI_BACKEND_URL=file://…, else --cwd)",
  },
  "dry-run": { type: "boolean", help: "print the pulumi commands instead of running them" },
} as const satisfies Flags;

export const ROLLBACK_SPEC: ScriptSpec<typeof ROLLBACK_FLAGS> = {
  name: "rollback",
  summary:
    "re-apply an earlier update by pinning each service to its release then (fleet:pins), from the file backend's history",
  usage: ["--list", "<version>", "--service <name> <release>", "--unpin"],
  flags: ROLLBACK_FLAGS,
  positionals: 1,
  exitCodes: [
    "0 done (or listed)",
    "1 a pinned release is no longer on a host: nothing was changed",
    "2 failed (the history could not be read, …); a failed pulumi command exits with its own code",
    `${USAGE_EXIT} invalid usage or config: nothing ran`,
    "127 the Pulumi CLI is not available: nothing was changed",
  ],
};

/**
 * Where the file backend lives, as config/backend.ts reads PULUMI_BACKEND_URL: its folder for
 * `file://`, the project folder when the variable is unset; another backend has no history here.
 */
export function defaultBackendDir(env: NodeJS.ProcessEnv, projectDir: string, home: string): string {
  const backend = backendOf({ PULUMI_BACKEND_URL: env["PULUMI_BACKEND_URL"] }, projectDir, home);
  if (backend.dir) return backend.dir;
  if (!backend.fromEnv) return projectDir;
  throw new Error(
    `the stack's backend is ${backend.description}: rollback reads a file backend's history on this machine; ` +
      `give --backend-dir <the folder that holds .pulumi/>`,
  );
}

export function parseRollbackArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  home: string,
): CommandLine<RollbackArgs> {
  const line = parseCommandLine(ROLLBACK_SPEC, argv, env, cwd);
  if (line.kind !== "run") return line;
  const { flags, positionals, stack } = line.args;
  const problem = (p: string) => usageProblem(ROLLBACK_SPEC.name, p);
  let backendDir = flags["backend-dir"] ? path.resolve(line.args.cwd, flags["backend-dir"]) : undefined;
  try {
    backendDir ??= defaultBackendDir(env, line.args.cwd, home);
  } catch (e) {
    return problem((e as Error).message);
  }
  const common = { stack, cwd: line.args.cwd, backendDir, dryRun: flags["dry-run"] };
  const service = flags.service;
  const modes = [flags.list, flags.unpin, service !== undefined].filter(Boolean).length;
  if (modes > 1) return problem("give one of --list, --unpin, --service <name> <release> and <version>");
  if (flags.list || flags.unpin) {
    if (positionals.length > 0) return problem(`unexpected argument ${JSON.stringify(positionals[0])}`);
    return { kind: "run", args: { mode: flags.list ? "list" : "unpin", ...common } };
  }
  if (service !== undefined) {
    if (positionals.length !== 1) return problem(`--service ${service} needs the release: --service <name> <release>`);
    return {
      kind: "run",
      args: { mode: "service", service: { name: service, releaseId: positionals[0]! }, ...common },
    };
  }
  if (positionals.length === 0) return problem("give --list, --unpin, --service <name> <release> or a <version>");
  const version = Number(positionals[0]);
  if (!/^\d+$/.test(positionals[0]!) || !Number.isSafeInteger(version) || version < 1)
    return problem(`not a version number: ${positionals[0]}`);
  return { kind: "run", args: { mode: "version", version, ...common } };
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
 * built from, from the newest update in which any of its hosts had it. The other services keep
 * the pins they have (`current`): pinning one service must not unpin the rest, which would then
 * deploy from their sources.
 */
export function pinOneService(
  entries: readonly HistoryEntry[],
  name: string,
  releaseId: string,
  current: Pins = {},
): Pins {
  for (const e of [...entries].reverse()) {
    const seen = serviceReleases(e.releases, name).find((r) => r.releaseId === releaseId);
    if (seen) return { ...current, [name]: { releaseId, commit: seen.commit } };
  }
  return { ...current, [name]: { releaseId, commit: releaseId } };
}
