/**
 * `npm run pulumi -- <args>`: the real Pulumi CLI, run in the project folder with the user's own
 * arguments. With a CLI from Pulumi's installer (it has the Node.js language host) this is plain
 * `pulumi <args>`. A CLI built from source has no language host (the Go module proxy does not
 * serve it, see tools/pulumi/ensure.sh); then, for the commands that run the program (up,
 * preview, refresh, destroy), this process hosts the program in Pulumi's own language server,
 * the one the Automation API uses for inline programs, and passes `--client=<its address>`.
 * Either way the engine, the state, the diff display and the exit code are the CLI's.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { cliEnv, PROJECT_DIR, pulumiCli } from "./cli";
import { runsProgram, withClient } from "./commands";
import { RunError } from "@pulumi/pulumi";
import { isFleetError } from "../model/errors";
import { hostProgram, type HostedProgram } from "./language-server";
import { traceEvent } from "../observe/trace";

traceEvent("runner-start");

/** The project folder: the working directory when it holds a Pulumi.yaml (scripts' --cwd), else this checkout. */
function projectDir(): string {
  return fs.existsSync(path.join(process.cwd(), "Pulumi.yaml")) ? process.cwd() : PROJECT_DIR;
}

/** The program's errors that the SDK has logged in full (FleetErrors, thrown as RunErrors). */
const reported = new WeakSet<object>();

/** The program: index.ts, evaluated afresh at each run (`pulumi up` runs it for preview, then for the update). */
function freshProgram(dir: string): () => Promise<Record<string, unknown>> {
  const entry = path.join(dir, "index.ts");
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
      const run = new RunError(err.message);
      reported.add(run);
      throw run;
    }
  };
}

export async function runPulumi(args: readonly string[]): Promise<number> {
  const cli = pulumiCli();
  const dir = projectDir();
  let hosted: HostedProgram | undefined;
  let argv = [...args];
  if (!cli.languageHost && runsProgram(args)) {
    hosted = await hostProgram(
      freshProgram(dir),
      (err) => typeof err === "object" && err !== null && reported.has(err),
    );
    argv = withClient(args, hosted.address);
  }
  traceEvent("cli-spawn", { args: argv.slice(0, 1) });
  const child = spawn(cli.pulumi, argv, { cwd: dir, env: cliEnv(cli), stdio: "inherit" });
  // Ctrl-C reaches the CLI through the terminal's process group; here it only must not kill us
  // before the CLI has finished cancelling (it still talks to the hosted program).
  const ignore = () => undefined;
  process.on("SIGINT", ignore);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  const code = await new Promise<number>((resolve) => {
    child.on("error", (err) => {
      console.error(`pulumi: cannot run ${cli.pulumi}: ${err.message}`);
      resolve(127);
    });
    child.on("close", (status, signal) => resolve(status ?? (signal ? 128 + 15 : 1)));
  });
  traceEvent("cli-exit", { code });
  process.off("SIGINT", ignore);
  await hosted?.close(code !== 0);
  return code;
}

if (require.main === module) {
  runPulumi(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`pulumi: ${err.message}`);
      process.exit(127);
    },
  );
}
