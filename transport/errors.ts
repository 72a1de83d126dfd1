import { fleetError, isFleetError, type FleetError } from "../model/errors";
import { redact, tail } from "./redact";

/**
 * The transport's failures as FleetErrors (model/errors.ts) with their evidence: what ran, where,
 * its exit code and the tail of its output, secrets redacted. Kind "failure": nothing switched
 * as far as the transport knows; the deploy re-classifies from the phase (providers/service/failure.ts).
 */

/** Lines of stdout/stderr kept in an error: enough to see why, short enough to read. */
const TAIL_LINES = 30;

/**
 * The `code` of a remote step that ran out of its time (`timeoutMs`), running or still waiting
 * for an SSH channel: kind "failure" like any failed step, told apart by this code, not its prose.
 */
export const STEP_TIMEOUT_CODE = "FLEET_STEP_TIMEOUT";

/** A remote step that ran and failed (non-zero exit, signal or timeout). */
export type RemoteStepFailure = FleetError & {
  readonly stage: "run";
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
};

/** The host could not be reached or refused us: nothing ran. */
export type ConnectionFailure = FleetError & { readonly stage: "connect"; readonly host: string };

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => "    " + line)
    .join("\n");
}

/** The last `fleet-phase: <name>` a script wrote on stderr (a protocol line of commands/, not prose). */
function lastPhase(stderr: string): string {
  return [...stderr.matchAll(/fleet-phase: (\S+)/g)].at(-1)?.[1] ?? "";
}

export function remoteStepFailed(
  host: string,
  step: string,
  command: string,
  exitCode: number | null,
  stdout: string,
  stderr: string,
  reason: string,
  secrets: readonly string[],
  /** A machine-readable cause, e.g. STEP_TIMEOUT_CODE. */
  code?: string,
): RemoteStepFailure {
  const clean = (text: string) => redact(tail(text, TAIL_LINES), secrets);
  const stdoutTail = clean(stdout);
  const stderrTail = clean(stderr);
  const cmd = redact(command, secrets);
  const summary = [
    `[${host}] step "${step}" failed: ${reason}`,
    `  command: ${cmd}`,
    stderrTail ? `  stderr (last ${TAIL_LINES} lines):\n${indent(stderrTail)}` : "",
    stdoutTail ? `  stdout (last ${TAIL_LINES} lines):\n${indent(stdoutTail)}` : "",
  ]
    .filter(Boolean)
    .join("\n");
  const hint = `Read the step's output above; fix its cause and deploy again (nothing after "${step}" ran).`;
  return fleetError("failure", summary, hint, {
    stage: "run",
    host,
    step,
    command: cmd,
    exitCode,
    stdoutTail,
    stderrTail,
    phase: lastPhase(stderr),
    code,
  }) as RemoteStepFailure;
}

/** A command that ran and exited non-zero, as a RemoteStepFailure naming the exit code. */
export function exitError(
  host: string,
  step: string,
  command: string,
  result: { code: number; stdout: string; stderr: string },
  secrets: readonly string[],
): RemoteStepFailure {
  return remoteStepFailed(
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

export function connectionFailed(host: string, message: string, code?: string): ConnectionFailure {
  return fleetError(
    "failure",
    `[${host}] ${message}`,
    "Check that the host is up and its address, port, user, key and host key are right; nothing ran on it.",
    { stage: "connect", host, code },
  ) as ConnectionFailure;
}

export function isRemoteStepFailure(err: unknown): err is RemoteStepFailure {
  return isFleetError(err) && err.stage === "run";
}

export function isConnectionFailure(err: unknown): err is ConnectionFailure {
  return isFleetError(err) && err.stage === "connect";
}
