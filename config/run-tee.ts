import { spawn } from "child_process";

/** Runs a command (the Pulumi CLI), passing its output through, and returns its status and output. */
export function runTee(cmd: string, args: string[], cwd?: string): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...(cwd ? { cwd } : {}) });
    let output = "";
    const tee = (stream: NodeJS.WriteStream) => (d: Buffer) => {
      output += d.toString("utf8");
      stream.write(d);
    };
    child.stdout.on("data", tee(process.stdout));
    child.stderr.on("data", tee(process.stderr));
    child.on("error", (err) => resolve({ status: 127, output: `cannot run ${cmd}: ${err.message}` }));
    child.on("close", (status) => resolve({ status: status ?? 1, output }));
  });
}
