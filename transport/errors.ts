import { redact, tail } from "./redact";

/**
 * Errors as plain `Error` objects with fields, built by functions. Not subclasses: Pulumi's
 * closure serializer rewrites `super(msg)` to `Error.call(this, msg)`, which leaves `message`
 * empty, so a subclassed error reaches the user as "undefined" from inside the provider host.
 */

/** Lines of stdout/stderr kept in an error: enough to see why, short enough to read. */
const TAIL_LINES = 30;

/** A remote step that ran and failed (non-zero exit, signal or timeout). */
export interface RemoteCommandError extends Error {
  readonly name: "RemoteCommandError";
  readonly host: string;
  readonly step: string;
  readonly command: string;
  readonly exitCode: number | null;
  readonly stdoutTail: string;
  readonly stderrTail: string;
  /**
   * The last phase the script named (`fleet-phase: <name>` on stderr), read from all of stderr:
   * the tail may have lost it under a step's own output. "" if it named none.
   */
  readonly phase: string;
}

/** The host could not be reached or refused us: nothing ran. */
export interface ConnectionError extends Error {
  readonly name: "ConnectionError";
  readonly host: string;
  readonly code?: string;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => "    " + line)
    .join("\n");
}

export function remoteCommandError(
  host: string,
  step: string,
  command: string,
  exitCode: number | null,
  stdout: string,
  stderr: string,
  reason: string,
  secrets: readonly string[],
): RemoteCommandError {
  const clean = (text: string) => redact(tail(text, TAIL_LINES), secrets);
  const stdoutTail = clean(stdout);
  const stderrTail = clean(stderr);
  const cmd = redact(command, secrets);
  const message = [
    `[${host}] step "${step}" failed: ${reason}`,
    `  command: ${cmd}`,
    stderrTail ? `  stderr (last ${TAIL_LINES} lines):\n${indent(stderrTail)}` : "",
    stdoutTail ? `  stdout (last ${TAIL_LINES} lines):\n${indent(stdoutTail)}` : "",
  ]
    .filter(Boolean)
    .join("\n");
  return Object.assign(new Error(message), {
    name: "RemoteCommandError" as const,
    host,
    step,
    command: cmd,
    exitCode,
    stdoutTail,
    stderrTail,
    phase: [...stderr.matchAll(/fleet-phase: (\S+)/g)].at(-1)?.[1] ?? "",
  });
}

/** A command that ran and exited non-zero, as a RemoteCommandError naming the exit code. */
export function exitError(
  host: string,
  step: string,
  command: string,
  result: { code: number; stdout: string; stderr: string },
  secrets: readonly string[],
): RemoteCommandError {
  return remoteCommandError(
    host,
    step,
    command,
    result.code,
    result.stdout,
    result.stderr,
    `exit code ${result.code}`,
    secrets,
  );
}

export function connectionError(host: string, message: string, code?: string): ConnectionError {
  return Object.assign(new Error(`[${host}] ${message}`), {
    name: "ConnectionError" as const,
    host,
    ...(code ? { code } : {}),
  });
}

export function isRemoteCommandError(err: unknown): err is RemoteCommandError {
  return err instanceof Error && err.name === "RemoteCommandError";
}

export function isConnectionError(err: unknown): err is ConnectionError {
  return err instanceof Error && err.name === "ConnectionError";
}
