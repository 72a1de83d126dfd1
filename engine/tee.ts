import { spawn } from "child_process";
import { pulumiInvocation, type Invocation } from "./invoke";

/**
 * Runs one `pulumi` command line (engine/invoke.ts), passing its output through, and returns its
 * status and output; 127 when no CLI can be had (ensure.sh said why on stderr).
 */
export function teePulumi(args: string[], cwd?: string): Promise<{ status: number; output: string }> {
  let run: Invocation;
  try {
    run = pulumiInvocation(args);
  } catch (err) {
    return Promise.resolve({ status: 127, output: (err as Error).message });
  }
  return new Promise((resolve) => {
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
