/**
 * `npm run exec` (issue 20): a one-off command on a host, in the serving release's directory,
 * with the service's environment and as its user (commands/operate.ts execScript). Interactive
 * (a PTY, raw bytes both ways) when stdin is a terminal; otherwise piped, output redacted of the
 * stack's secrets. `--all-hosts` runs it on each host in turn, prefixed, then sums up.
 */
import { constants } from "os";
import type { Readable } from "stream";
import { asRoot, currentDir, deployedCheck, execScript, type ExecTarget } from "../commands/operate";
import { fleetError, isFleetError, summaryOf } from "../model/errors";
import { redact } from "../transport/redact";
import { exec, execStream, type StreamResult } from "../transport/ssh";
import type { SshConnection } from "../transport/connection";
import { hostPrefix, LineWriter } from "./lines";
import { operatorConnection, placementsOf, type OperatorConfig, type Placement } from "./targets";

export interface ExecRequest {
  readonly service: string;
  readonly host?: string;
  readonly allHosts: boolean;
  /** The remote command, one element per argument, byte-exact. */
  readonly argv: readonly string[];
}

/** The local side: a process's stdio, or a test's. */
export interface ExecIo {
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout: (bytes: Buffer) => void;
  readonly stderr: (bytes: Buffer) => void;
  /** The terminal's size and $TERM, for the PTY. */
  readonly terminal?: () => { rows: number; cols: number; term: string };
  /** Subscribes to terminal resizes (SIGWINCH); returns the unsubscribe. */
  readonly onResize?: (listener: () => void) => () => void;
}

/** Exit code when fleet could not run the command at all (as ssh uses 255). */
export const NOT_RUN_EXIT = 255;

/**
 * Where to run: one placement, or each with `--all-hosts`. Several hosts without `--host` or
 * `--all-hosts` is a usage error naming them; so are an unknown service or host.
 */
export function execPlacements(op: OperatorConfig, req: ExecRequest): Placement[] {
  const placements = placementsOf(op.cfg, req.service, req.host === undefined ? undefined : [req.host]);
  if (placements.length > 1 && !req.allHosts)
    throw fleetError(
      "config",
      `service "${req.service}" runs on ${placements.map((p) => p.host).join(", ")}: exec runs on one host`,
      "Name one with --host <h>, or run it on each in turn with --all-hosts.",
    );
  return placements;
}

function targetOf(p: Placement): ExecTarget {
  return { root: p.root, service: p.service, unitName: p.unitName, runAs: p.runAs, proxied: p.proxied };
}

/** The connection, once the host is known to serve the service; a fleetError naming the host otherwise. */
async function deployedConnection(op: OperatorConfig, p: Placement): Promise<SshConnection> {
  const conn = operatorConnection(op, p.host);
  const check = await exec(conn, asRoot(conn.user, deployedCheck(targetOf(p))), { step: "exec", timeoutMs: 30_000 });
  if (check.code !== 0)
    throw fleetError(
      "failure",
      `service "${p.service}" is not deployed on host "${p.host}": there is no ${currentDir(targetOf(p))}` +
        (check.stderr.trim() ? ` (${redact(check.stderr.trim(), op.secrets)})` : ""),
      "Deploy it there first (npm run status shows where it serves).",
      { host: p.host },
    );
  return conn;
}

/** A remote exit as a local exit code: the code, or 128 + the signal's number. */
export function exitCodeOf(result: StreamResult): number {
  if (result.code !== null) return result.code;
  const n = result.signal ? constants.signals[`SIG${result.signal}` as keyof typeof constants.signals] : undefined;
  return n === undefined ? NOT_RUN_EXIT : 128 + n;
}

/** Runs the command on the one host: interactive with a PTY when stdin is a terminal. */
export async function execOne(op: OperatorConfig, p: Placement, argv: readonly string[], io: ExecIo): Promise<number> {
  const conn = await deployedConnection(op, p);
  const command = asRoot(conn.user, execScript(targetOf(p), argv));
  if (io.stdin.isTTY && io.terminal) return execInTerminal(conn, command, io);
  const stdout = new LineWriter(io.stdout, op.secrets);
  const stderr = new LineWriter(io.stderr, op.secrets);
  const result = await execStream(conn, command, {
    step: "exec",
    stdin: io.stdin,
    onStdout: (d) => stdout.push(d),
    onStderr: (d) => stderr.push(d),
    secrets: op.secrets,
  });
  stdout.flush();
  stderr.flush();
  io.stdin.pause();
  return exitCodeOf(result);
}

/**
 * With a PTY, like `ssh -t`: the local terminal raw (Ctrl-C, arrows and the like go to the remote
 * program), resizes passed on, the terminal restored however it ends. The bytes pass through
 * raw, not redacted: a terminal stream cut into lines would break full-screen programs, and an
 * operator who opens a shell there can read the env file anyway.
 */
async function execInTerminal(conn: SshConnection, command: string, io: ExecIo): Promise<number> {
  const stdin = io.stdin;
  const raw = typeof stdin.setRawMode === "function";
  let unsubscribe = () => undefined as void;
  if (raw) stdin.setRawMode!(true);
  try {
    const result = await execStream(conn, command, {
      step: "exec",
      stdin,
      pty: io.terminal!(),
      onStdout: io.stdout,
      onStderr: io.stderr,
      onStart: (control) => {
        if (io.onResize)
          unsubscribe = io.onResize(() => {
            const t = io.terminal!();
            control.resize(t.rows, t.cols);
          });
      },
    });
    return exitCodeOf(result);
  } finally {
    unsubscribe();
    if (raw) stdin.setRawMode!(false);
    stdin.pause();
  }
}

/** One host's line in the `--all-hosts` summary. */
export interface HostExecResult {
  readonly host: string;
  /** The command's exit code, or undefined when it could not run there. */
  readonly code?: number;
  readonly problem?: string;
}

/** Runs the command on each placement in turn, without stdin, each line prefixed by its host. */
export async function execEach(
  op: OperatorConfig,
  placements: readonly Placement[],
  argv: readonly string[],
  io: ExecIo,
): Promise<HostExecResult[]> {
  const hosts = placements.map((p) => p.host);
  const results: HostExecResult[] = [];
  for (const p of placements) {
    const prefix = hostPrefix(p.host, hosts);
    const stdout = new LineWriter(io.stdout, op.secrets, prefix);
    const stderr = new LineWriter(io.stderr, op.secrets, prefix);
    try {
      const conn = await deployedConnection(op, p);
      const result = await execStream(conn, asRoot(conn.user, execScript(targetOf(p), argv)), {
        step: "exec",
        onStdout: (d) => stdout.push(d),
        onStderr: (d) => stderr.push(d),
        secrets: op.secrets,
      });
      results.push({ host: p.host, code: exitCodeOf(result) });
    } catch (err) {
      if (isFleetError(err) && err.kind === "config") throw err;
      const problem = redact(summaryOf(err), op.secrets);
      io.stderr(Buffer.from(`exec: ${p.host}: ${problem}\n`, "utf8"));
      results.push({ host: p.host, problem });
    } finally {
      stdout.flush();
      stderr.flush();
    }
  }
  return results;
}

/** The summary after `--all-hosts`: one line per host, its exit code or why it did not run. */
export function formatSummary(results: readonly HostExecResult[]): string {
  const width = Math.max(...results.map((r) => r.host.length));
  return results
    .map((r) => `${r.host.padEnd(width)} → ${r.code !== undefined ? `exit ${r.code}` : `not run: ${r.problem}`}`)
    .join("\n");
}
