/**
 * Which `pulumi` command lines run the program. Pure: the engine's runner (engine/run.ts) hosts
 * the program itself for these when the CLI has no Node.js language host.
 */

/** The CLI's commands that run (or may run) the program: they take `--client`. */
const PROGRAM_COMMANDS = new Set(["up", "update", "preview", "pre", "refresh", "destroy"]);

/** Global flags that take their value as the next argument (`pulumi -C dir up`). */
const GLOBAL_FLAGS_WITH_VALUE = new Set(["-C", "--cwd", "--color", "--tracing", "--profiling", "-v", "--verbose"]);

/** The command word of a `pulumi` argument list (`["--cwd", "x", "up", "--yes"]` → "up"). */
export function commandOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return undefined;
    if (!a.startsWith("-")) return a;
    if (GLOBAL_FLAGS_WITH_VALUE.has(a)) i++;
  }
  return undefined;
}

/** Does this command line run the program (and so need a language host or `--client`)? */
export function runsProgram(args: readonly string[]): boolean {
  const cmd = commandOf(args);
  return cmd !== undefined && PROGRAM_COMMANDS.has(cmd) && !args.includes("--help") && !args.includes("-h");
}

/** The argument list with the address of the language server that hosts the program. */
export function withClient(args: readonly string[], address: string): string[] {
  return [...args, `--client=${address}`];
}
