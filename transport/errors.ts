import { redact, tail } from "./redact";

/** Lines of stdout/stderr kept in an error: enough to see why, short enough to read. */
const TAIL_LINES = 30;

/** A remote step that ran and failed (non-zero exit, signal or timeout). */
export class RemoteCommandError extends Error {
  constructor(
    readonly host: string,
    readonly step: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdoutTail: string,
    readonly stderrTail: string,
    readonly reason: string,
  ) {
    super(
      [
        `[${host}] step "${step}" failed: ${reason}`,
        `  command: ${command}`,
        stderrTail ? `  stderr (last ${TAIL_LINES} lines):\n${indent(stderrTail)}` : "",
        stdoutTail ? `  stdout (last ${TAIL_LINES} lines):\n${indent(stdoutTail)}` : "",
      ]
        .filter(Boolean)
        .join("\n"),
    );
    this.name = "RemoteCommandError";
  }

  static from(
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
    return new RemoteCommandError(
      host,
      step,
      redact(command, secrets),
      exitCode,
      clean(stdout),
      clean(stderr),
      reason,
    );
  }
}

/** The host could not be reached or refused us: nothing ran. */
export class ConnectionError extends Error {
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(`[${host}] ${message}`);
    this.name = "ConnectionError";
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => "    " + line)
    .join("\n");
}
