import type { Readable } from "stream";
import type { ExecResult } from "../../transport/ssh";
import { exitError, remoteStepFailed } from "../../transport/errors";

/**
 * Commands on the deploying machine: the Docker CLI that builds, validates and saves images
 * (talking to the local engine, or to DOCKER_HOST). Modules are required inside functions:
 * this code is serialized into the dynamic provider.
 */

export interface LocalOptions {
  /** Names the step in errors. */
  readonly step: string;
  /** DOCKER_HOST for the CLI; "" means the CLI's default engine. */
  readonly dockerHost: string;
  readonly stdin?: string | Readable;
  readonly timeoutMs: number;
  /** Shown in errors instead of the command. */
  readonly describe?: string;
}

/** How errors name the build engine. */
export function engineName(dockerHost: string): string {
  return dockerHost ? `build engine ${dockerHost}` : "build engine (local)";
}

function environment(dockerHost: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (dockerHost) env["DOCKER_HOST"] = dockerHost;
  return env;
}

/** Runs `command` with /bin/sh on this machine; resolves with its exit code, never throws on exit != 0. */
export function execLocal(command: string, opts: LocalOptions): Promise<ExecResult> {
  const { spawn } = require("child_process") as typeof import("child_process");
  const { PassThrough } = require("stream") as typeof import("stream");
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", command], {
      env: environment(opts.dockerHost),
      stdio: ["pipe", "pipe", "pipe"],
    });
    // Piped at once: Node drops a child's unread output when the child exits.
    const out = new PassThrough();
    const err = new PassThrough();
    child.stdout!.pipe(out);
    child.stderr!.pipe(err);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    out.on("data", (d: Buffer) => stdout.push(d));
    err.on("data", (d: Buffer) => stderr.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`[${engineName(opts.dockerHost)}] step "${opts.step}" could not start /bin/sh: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const result = {
        code: code ?? -1,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      };
      if (timedOut) {
        reject(
          remoteStepFailed(
            engineName(opts.dockerHost),
            opts.step,
            opts.describe ?? command,
            null,
            result.stdout,
            result.stderr,
            `timed out after ${opts.timeoutMs} ms`,
            [],
          ),
        );
      } else resolve(result);
    });
    child.stdin!.on("error", () => undefined); // the command may exit before reading its input
    if (opts.stdin === undefined) child.stdin!.end();
    else if (typeof opts.stdin === "string") child.stdin!.end(opts.stdin);
    else opts.stdin.pipe(child.stdin!);
  });
}

/** Like `execLocal`, but a non-zero exit becomes a RemoteStepFailure with the output's tail. */
export async function execLocalChecked(command: string, opts: LocalOptions): Promise<ExecResult> {
  const result = await execLocal(command, opts);
  if (result.code !== 0) throw exitError(engineName(opts.dockerHost), opts.step, opts.describe ?? command, result, []);
  return result;
}

/** A shell script on this machine (sent on stdin, like transport.runScript does on hosts). */
export function runLocalScript(script: string, opts: Omit<LocalOptions, "stdin">): Promise<ExecResult> {
  return execLocalChecked("/bin/sh -s", { ...opts, stdin: script, describe: opts.describe ?? `sh (${opts.step})` });
}

/** A command's stdout as a stream (e.g. `docker save`), and a promise that settles when it ends. */
export function streamLocal(
  command: string,
  dockerHost: string,
  step: string,
): { stream: Readable; done: Promise<void> } {
  const { spawn } = require("child_process") as typeof import("child_process");
  const { PassThrough } = require("stream") as typeof import("stream");
  const child = spawn("/bin/sh", ["-c", command], { env: environment(dockerHost), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const stream = new PassThrough();
  child.stdout!.pipe(stream);
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`[${engineName(dockerHost)}] ${step}: ${e.message}`)));
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(remoteStepFailed(engineName(dockerHost), step, command, code, "", stderr, `exit code ${code}`, [])),
    );
  });
  return { stream, done };
}
