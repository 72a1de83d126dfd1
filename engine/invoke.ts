/**
 * How to run one `pulumi` command line from fleet's scripts: the CLI itself, or, for a command
 * that runs the program when the CLI has no Node.js language host, engine/run.ts (which hosts the
 * program and passes `--client`). Each call is a fresh process, as when a user types the command.
 */
import * as path from "path";
import { cliEnv, PROJECT_DIR, pulumiCli } from "./cli";
import { runsProgram } from "./commands";

export interface Invocation {
  readonly command: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** How package.json's `npm run pulumi` starts the runner (build/launch.js: a prebuilt bundle, no tsx). */
export const LAUNCHER = path.join(PROJECT_DIR, "build", "launch.js");

/** `node build/launch.js pulumi <args>`: engine/run.ts as `npm run pulumi -- <args>` runs it. */
export function runnerArgv(args: readonly string[]): [string, string[]] {
  return [process.execPath, [LAUNCHER, "pulumi", ...args]];
}

/** Throws (after ensure.sh has said why on stderr) when no CLI can be had. */
export function pulumiInvocation(args: readonly string[], base: NodeJS.ProcessEnv = process.env): Invocation {
  const cli = pulumiCli();
  const env = cliEnv(cli, base);
  if (cli.languageHost || !runsProgram(args)) return { command: cli.pulumi, args: [...args], env };
  const [command, argv] = runnerArgv(args);
  return { command, args: argv, env };
}
