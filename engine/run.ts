/**
 * `npm run pulumi -- <args>`: the real Pulumi CLI, run in the project folder with the user's own
 * arguments. With a CLI from Pulumi's installer (it has the Node.js language host) this is plain
 * `pulumi <args>`. A CLI built from source has no language host (the Go module proxy does not
 * serve it, see tools/pulumi/ensure.sh); then, for the commands that run the program (up,
 * preview, refresh, destroy), this process hosts the program in Pulumi's own language server,
 * the one the Automation API uses for inline programs, and passes `--client=<its address>`.
 * Either way the engine, the state, the diff display and the exit code are the CLI's.
 *
 * Start-up is on the deploy path, so the CLI is started first and the SDK loaded while it starts
 * (engine/language-server.ts); from build/launch.js this file runs as a bundle, without tsx.
 */
import { traceEvent } from "../observe/trace";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { cliEnv, PROJECT_DIR, pulumiCli } from "./cli";
import { runsProgram, withClient } from "./commands";
import { isFleetError } from "../model/errors";
import { hostProgram, type HostedProgram } from "./language-server";

traceEvent("runner-start");

/** Set by build/bundle.ts in the bundles it builds (dist/program.js is then the program). */
declare const FLEET_BUNDLED: unknown;

/** The project folder: the working directory when it holds a Pulumi.yaml (scripts' --cwd), else this checkout. */
function projectDir(cwd: string): string {
  return fs.existsSync(path.join(cwd, "Pulumi.yaml")) ? path.resolve(cwd) : PROJECT_DIR;
}

/** The program's module: this checkout's prebuilt bundle, else `<dir>/index.ts` (through tsx). */
function programEntry(dir: string): string {
  if (typeof FLEET_BUNDLED !== "undefined" && path.resolve(dir) === PROJECT_DIR) {
    return path.join(PROJECT_DIR, "dist", "program.js");
  }
  if (!require.extensions[".ts"]) require("tsx/cjs/api").register();
  return path.join(dir, "index.ts");
}

/** The program's errors that the SDK has logged in full (FleetErrors, thrown as RunErrors). */
const reported = new WeakSet<object>();

/** The program, evaluated afresh at each run (`pulumi up` runs it for preview, then for the update). */
function freshProgram(dir: string): () => Promise<Record<string, unknown>> {
  const entry = programEntry(dir);
  return async () => {
    traceEvent("program-start");
    const nodeModules = `${path.sep}node_modules${path.sep}`;
    for (const id of Object.keys(require.cache)) {
      if (id.startsWith(dir + path.sep) && !id.includes(nodeModules)) delete require.cache[id];
    }
    try {
      const exports = { ...(require(entry) as Record<string, unknown>) };
      traceEvent("program-loaded");
      return exports;
    } catch (err) {
      // A FleetError's message says everything (the fields, the fix, the outcome marker): the SDK
      // prints a RunError's message alone, not as an "Unhandled exception" with a stack.
      if (!isFleetError(err)) throw err;
      const { RunError } = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
      const run = new RunError(err.message);
      reported.add(run);
      throw run;
    }
  };
}

export interface RunOptions {
  /** Where the command runs (the project folder when it has a Pulumi.yaml). Default: the working directory. */
  readonly cwd?: string;
  /** Also given everything the CLI prints (which still reaches this process's stdout and stderr). */
  readonly onOutput?: (chunk: Buffer) => void;
}

/** Runs one `pulumi` command line to its end; resolves with the CLI's exit status. */
export async function runPulumi(args: readonly string[], opts: RunOptions = {}): Promise<number> {
  const cli = pulumiCli();
  const dir = projectDir(opts.cwd ?? process.cwd());
  let hosted: HostedProgram | undefined;
  let argv = [...args];
  if (!cli.languageHost && runsProgram(args)) {
    hosted = await hostProgram(
      freshProgram(dir),
      (err) => typeof err === "object" && err !== null && reported.has(err),
      // The CLI's first call (about) comes ~0.2 s after its start, and it works ~0.2 s more before
      // it runs the program: time to load the SDK the program needs (~0.3 s), not before (it would
      // hold that first answer back).
      () => require("@pulumi/pulumi"),
    );
    argv = withClient(args, hosted.address);
  }
  traceEvent("cli-spawn", { args: argv.slice(0, 1) });
  const { onOutput } = opts;
  const child = spawn(cli.pulumi, argv, {
    cwd: dir,
    env: cliEnv(cli),
    stdio: onOutput ? ["inherit", "pipe", "pipe"] : "inherit",
  });
  if (onOutput) {
    child.stdout!.on("data", (d: Buffer) => (onOutput(d), process.stdout.write(d)));
    child.stderr!.on("data", (d: Buffer) => (onOutput(d), process.stderr.write(d)));
  }
  hosted?.load();
  // Ctrl-C reaches the CLI through the terminal's process group; here it only must not kill us
  // before the CLI has finished cancelling (it still talks to the hosted program).
  const ignore = () => undefined;
  const forward = () => child.kill("SIGTERM");
  process.on("SIGINT", ignore);
  process.on("SIGTERM", forward);
  const code = await new Promise<number>((resolve) => {
    child.on("error", (err) => {
      console.error(`pulumi: cannot run ${cli.pulumi}: ${err.message}`);
      resolve(127);
    });
    child.on("close", (status, signal) => resolve(status ?? (signal ? 128 + 15 : 1)));
  });
  traceEvent("cli-exit", { code });
  process.off("SIGINT", ignore);
  process.off("SIGTERM", forward);
  await hosted?.close(code !== 0);
  return code;
}
