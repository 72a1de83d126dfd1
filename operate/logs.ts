/**
 * `npm run logs` (issue 20): a service's journal from every host it runs on, all hosts at once,
 * each line prefixed by its host and redacted of the stack's secrets as it streams. Following
 * (`-f`) ends when `stop` aborts (Ctrl-C): each host's input is ended, which kills its journalctl
 * (commands/operate.ts logsScript).
 */
import { asRoot, logsScript } from "../commands/operate";
import { summaryOf } from "../model/errors";
import { redact } from "../transport/redact";
import { execStream } from "../transport/ssh";
import { hostPrefix, LineWriter } from "./lines";
import { operatorConnection, placementsOf, type OperatorConfig, type Placement } from "./targets";

export interface LogsRequest {
  readonly service: string;
  /** Only these hosts (each checked against the config); all of the service's when absent. */
  readonly hosts?: readonly string[];
  readonly lines: number;
  /** In journalctl's form (commands/operate.ts journalSince). */
  readonly since?: string;
  readonly follow: boolean;
}

export interface LogsOutput {
  readonly stdout: (bytes: Buffer) => void;
  readonly stderr: (bytes: Buffer) => void;
}

/** One host's outcome: read (or followed until stopped), or why not. */
export interface HostLogsResult {
  readonly host: string;
  readonly ok: boolean;
  readonly problem?: string;
}

/** The placements to read; throws the config error (unknown service or host) before anything connects. */
export function logsPlacements(op: OperatorConfig, req: LogsRequest): Placement[] {
  return placementsOf(op.cfg, req.service, req.hosts);
}

/** Streams every placement's journal at once; resolves when all have ended. */
export async function streamLogs(
  op: OperatorConfig,
  req: LogsRequest,
  out: LogsOutput,
  stop?: AbortSignal,
): Promise<HostLogsResult[]> {
  const placements = logsPlacements(op, req);
  const hosts = placements.map((p) => p.host);
  return Promise.all(placements.map((p) => hostLogs(op, req, p, hostPrefix(p.host, hosts), out, stop)));
}

async function hostLogs(
  op: OperatorConfig,
  req: LogsRequest,
  p: Placement,
  prefix: string,
  out: LogsOutput,
  stop?: AbortSignal,
): Promise<HostLogsResult> {
  const stdout = new LineWriter(out.stdout, op.secrets, prefix);
  const stderr = new LineWriter(out.stderr, op.secrets, prefix);
  const failed = (why: string): HostLogsResult => {
    const problem = redact(why, op.secrets);
    out.stderr(Buffer.from(`logs: ${p.host}: ${problem}\n`, "utf8"));
    return { host: p.host, ok: false, problem };
  };
  try {
    const conn = operatorConnection(op, p.host);
    const script = logsScript({
      unitName: p.unitName,
      proxied: p.proxied,
      lines: req.lines,
      follow: req.follow,
      ...(req.since === undefined ? {} : { since: req.since }),
    });
    const result = await execStream(conn, asRoot(conn.user, script), {
      step: "logs",
      onStdout: (d) => stdout.push(d),
      onStderr: (d) => stderr.push(d),
      ...(req.follow && stop ? { signal: stop } : {}),
      secrets: op.secrets,
    });
    stdout.flush();
    stderr.flush();
    // Stopped by us: however journalctl ended (killed: 143), that is the clean end of a follow.
    if (req.follow && stop?.aborted) return { host: p.host, ok: true };
    if (result.code === 0) return { host: p.host, ok: true };
    return failed(
      result.code === null ? `journalctl was killed (${result.signal})` : `journalctl exited ${result.code}`,
    );
  } catch (err) {
    stdout.flush();
    stderr.flush();
    return failed(`cannot read its journal: ${summaryOf(err)}`);
  }
}
