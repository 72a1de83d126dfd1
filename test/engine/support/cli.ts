/**
 * Running fleet's command lines as users do, for the engine tests: `npm run pulumi -- <args>`
 * (engine/run.ts: the real Pulumi CLI, with the program hosted for it) and `npm run <script> --
 * <args>` (the operator scripts), in the project folder. Nothing is redacted: the secrets tests
 * search this output.
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { runnerArgv } from "../../../engine/invoke";

/** The project folder: where `Pulumi.yaml` is and where users run the CLI. */
export const PROJECT_DIR = path.resolve(__dirname, "..", "..", "..");

export interface CliResult {
  /** The exit status; 128 + n when killed by signal n. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time, in ms. */
  readonly ms: number;
}

/** Both streams, for assertions on what a user sees. */
export const outputOf = (r: CliResult): string => `${r.stdout}\n${r.stderr}`;

export interface RunOptions {
  /** Added to (and winning over) `baseEnv`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The environment `env` is added to. Default: this process's. */
  readonly baseEnv?: NodeJS.ProcessEnv;
  /** Where the command runs. Default: PROJECT_DIR. */
  readonly cwd?: string;
  /** Kill the whole process tree and fail after this long. Default 240 s. */
  readonly timeoutMs?: number;
}

/** A command started in its own process group (so a test can kill its whole tree). */
export interface Started {
  readonly child: ChildProcess;
  /** The process group: the command and every process it started. */
  readonly pgid: number;
  readonly done: Promise<CliResult>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Starts `cmd args` (in PROJECT_DIR unless told) in a new process group, collecting its output. */
export function start(cmd: string, args: readonly string[], opts: RunOptions = {}): Started {
  const t0 = Date.now();
  const cwd = opts.cwd ?? PROJECT_DIR;
  const child = spawn(cmd, args, {
    cwd,
    env: { ...(opts.baseEnv ?? process.env), ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const pgid = child.pid!;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on("data", (d: Buffer) => out.push(d));
  child.stderr!.on("data", (d: Buffer) => err.push(d));
  const timeoutMs = opts.timeoutMs ?? 240_000;
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(pgid, "SIGKILL");
      reject(
        new Error(
          `\`${cmd} ${args.join(" ")}\` (in ${cwd}) gave no result after ${timeoutMs} ms (killed). Output so far:\n` +
            `${Buffer.concat(out).toString("utf8").slice(-3000)}\n${Buffer.concat(err).toString("utf8").slice(-3000)}`,
        ),
      );
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: Date.now() - t0,
      });
    });
  });
  return { child, pgid, done };
}

/** Every process below `pid` (children first found through /proc's parent pids). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      found.push(c);
      queue.push(c);
    }
  }
  return found;
}

/**
 * What the deploying machine dying does to a command: every process it started ends at once,
 * in whatever process group it runs (Pulumi starts its plugins in groups of their own, so a
 * group kill would leave the provider finishing its step). Stopped first, so none reacts.
 */
export function killTree(pid: number): void {
  const all = [pid, ...descendants(pid)];
  for (const p of all) signalQuietly(p, "SIGSTOP");
  for (const p of all) signalQuietly(p, "SIGKILL");
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  return start(cmd, args, opts).done;
}

/** `npm run pulumi -- <args>`: what `npm run pulumi` runs (package.json), with the user's arguments. */
export function pulumiArgv(args: readonly string[]): [string, string[]] {
  return runnerArgv(args);
}

/** `npm run <script> -- <args>`, through npm itself (its PATH, its exit code). */
export function npmArgv(script: string, args: readonly string[]): [string, string[]] {
  return ["npm", ["run", script, "--", ...args]];
}
