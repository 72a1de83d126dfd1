import { spawn } from "child_process";
import { pulumiCli } from "./cli";
import { runsProgram } from "./commands";
import { pulumiInvocation, type Invocation } from "./invoke";
import { runPulumi } from "./run";

/**
 * Runs one `pulumi` command line (engine/invoke.ts), passing its output through, and returns its
 * status and output; 127 when no CLI can be had (ensure.sh said why on stderr). A command that
 * runs the program is hosted in this process (engine/run.ts) rather than in a second node
 * process: the operator scripts then start node once, not twice (~0.2 s).
 */
export async function teePulumi(args: string[], cwd?: string): Promise<{ status: number; output: string }> {
  let run: Invocation;
  let hosted: boolean;
  try {
    hosted = !pulumiCli().languageHost && runsProgram(args);
    run = pulumiInvocation(args);
  } catch (err) {
    return { status: 127, output: (err as Error).message };
  }
  if (hosted) {
    let output = "";
    const status = await runPulumi(args, {
      ...(cwd ? { cwd } : {}),
      onOutput: (d) => (output += d.toString("utf8")),
    });
    return { status, output };
  }
  return await new Promise((resolve) => {
    const child = spawn(run.command, run.args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: run.env,
      ...(cwd ? { cwd } : {}),
    });
    let output = "";
    const tee = (stream: NodeJS.WriteStream) => (d: Buffer) => {
      output += d.toString("utf8");
      stream.write(d);
    };
    child.stdout.on("data", tee(process.stdout));
    child.stderr.on("data", tee(process.stderr));
    child.on("error", (err) => resolve({ status: 127, output: `cannot run ${run.command}: ${err.message}` }));
    child.on("close", (status) => resolve({ status: status ?? 1, output }));
  });
}
