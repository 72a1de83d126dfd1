/**
 * The operator scripts' command lines (`npm run deploy|status|drift|rollback|restore -- …`), parsed
 * with node:util parseArgs, with the same common flags everywhere: `--stack`/`-s` (a stack name,
 * as the Pulumi CLI takes it), `--cwd`/`-C` (the project folder, as the CLI's `--cwd`) and
 * `--help`/`-h`. Pure: argv, the environment and the working directory are arguments.
 *
 * parseArgs runs non-strict (with its tokens) so that problems are judged here, by kind, and each
 * one names its flag: an unknown option, a value missing or given to a switch, a flag given twice,
 * an argument too many.
 */
import * as path from "path";
import { parseArgs } from "node:util";
import { EXIT_CODES } from "../decisions/outcome";

/**
 * Invalid usage exits like invalid config (`npm run deploy` documents 6): nothing ran. Every
 * operator script uses it, for both.
 */
export const USAGE_EXIT = EXIT_CODES.config;

export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** The value's name in --help: `--stack <name>`. */
  readonly value?: string;
  readonly help: string;
}

export type Flags = Readonly<Record<string, FlagSpec>>;

export const COMMON_FLAGS = {
  stack: { type: "string", short: "s", value: "name", help: "the stack (default: $PULUMI_STACK, else dev)" },
  cwd: {
    type: "string",
    short: "C",
    value: "dir",
    help: "the project folder, with Pulumi.yaml and Pulumi.<stack>.yaml (default: the current folder)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies Flags;

export interface ScriptSpec<F extends Flags> {
  /** As in `npm run <name>`. */
  readonly name: string;
  /** One line: what the script does. */
  readonly summary: string;
  /** What follows `npm run <name> --`, one way of calling it per line. */
  readonly usage: readonly string[];
  /** The script's own flags (the common ones are added). */
  readonly flags: F;
  /** How many positional arguments it takes at most. */
  readonly positionals: number;
  /** `<code> <meaning>`, one per line, for --help. */
  readonly exitCodes: readonly string[];
  /**
   * Keeps what follows `--` as `rest`, untouched (a remote command's argv, `--help` included),
   * instead of counting it as positionals.
   */
  readonly rest?: boolean;
}

type FlagValues<F extends Flags> = {
  readonly [K in keyof F]: F[K]["type"] extends "string" ? string | undefined : boolean;
};

export interface ScriptArgs<F extends Flags> {
  readonly stack: string;
  /** Absolute. */
  readonly cwd: string;
  readonly flags: FlagValues<F>;
  readonly positionals: readonly string[];
  /** What followed `--`, when the spec keeps it (`rest: true`); else empty. */
  readonly rest: readonly string[];
}

export type CommandLine<T> =
  | { readonly kind: "run"; readonly args: T }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "usage"; readonly problem: string };

function flagLabel(name: string, f: FlagSpec): string {
  return `${f.short ? `-${f.short}, ` : "    "}--${name}${f.value ? ` <${f.value}>` : ""}`;
}

export function helpText<F extends Flags>(spec: ScriptSpec<F>): string {
  const flags: [string, FlagSpec][] = [...Object.entries(spec.flags), ...Object.entries(COMMON_FLAGS)];
  const width = Math.max(...flags.map(([n, f]) => flagLabel(n, f).length));
  return [
    `npm run ${spec.name}: ${spec.summary}`,
    "",
    "usage:",
    ...spec.usage.map((u) => `  npm run ${spec.name} -- ${u}`),
    "",
    "options:",
    ...flags.map(([n, f]) => `  ${flagLabel(n, f).padEnd(width)}  ${f.help}`),
    "",
    "exit codes:",
    ...spec.exitCodes.map((c) => `  ${c}`),
  ].join("\n");
}

/** A usage problem, pointing at --help. */
export function usageProblem(name: string, problem: string): CommandLine<never> {
  return { kind: "usage", problem: `${name}: ${problem} (see npm run ${name} -- --help)` };
}

/** argv (without node and the script) against the spec: the arguments, the help, or the problem. */
export function parseCommandLine<F extends Flags>(
  spec: ScriptSpec<F>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): CommandLine<ScriptArgs<F>> {
  const all: Flags = { ...spec.flags, ...COMMON_FLAGS };
  const options = Object.fromEntries(
    Object.entries(all).map(([n, f]) => [n, f.short ? { type: f.type, short: f.short } : { type: f.type }]),
  );
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) return { kind: "help", text: helpText(spec) };
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  const rest: string[] = [];
  const problem = (p: string) => usageProblem(spec.name, p);
  let afterTerminator = false;
  for (const t of tokens) {
    if (t.kind === "option-terminator") afterTerminator = true;
    if (t.kind === "positional" && afterTerminator && spec.rest) {
      rest.push(t.value);
      continue;
    }
    if (t.kind === "positional") {
      positionals.push(t.value);
      if (positionals.length > spec.positionals) return problem(`unexpected argument ${JSON.stringify(t.value)}`);
      continue;
    }
    if (t.kind !== "option") continue;
    const f = Object.hasOwn(all, t.name) ? all[t.name]! : undefined;
    if (!f) return problem(`unknown option ${t.rawName}`);
    if (t.name in values) return problem(`${t.rawName} is given twice`);
    if (f.type === "boolean") {
      if (t.inlineValue) return problem(`${t.rawName} takes no value`);
      values[t.name] = true;
    } else {
      // A value that looks like a flag is one the user forgot (`--stack --list`); `--x=-v` still works.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith("-")) || t.value === "")
        return problem(`${t.rawName} needs a value: ${flagLabel(t.name, f).trim()}`);
      values[t.name] = t.value;
    }
  }
  for (const [n, f] of Object.entries(all)) if (f.type === "boolean") values[n] ??= false;
  return {
    kind: "run",
    args: {
      stack: (values["stack"] as string | undefined) ?? env["PULUMI_STACK"] ?? "dev",
      cwd: path.resolve(cwd, (values["cwd"] as string | undefined) ?? "."),
      flags: values as FlagValues<F>,
      positionals,
      rest,
    },
  };
}

/**
 * For a script's main: the arguments, or the exit code once the help (0) or the usage problem
 * (USAGE_EXIT) is printed.
 */
export function argsOrExit<T>(line: CommandLine<T>): T | number {
  if (line.kind === "run") return line.args;
  if (line.kind === "help") {
    console.log(line.text);
    return 0;
  }
  console.error(line.problem);
  return USAGE_EXIT;
}
