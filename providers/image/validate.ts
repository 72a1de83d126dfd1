import {
  containerLogsCommand,
  containerStateCommand,
  removeContainerCommand,
  renderDockerEnvFile,
  validateRunCommand,
} from "../../commands/image";
import { tail } from "../../transport/redact";
import { execLocal } from "./local";
import type { DockerValidateSpec } from "./model";

/** What the validation run of a new image saw. */
export interface ValidationOutcome {
  readonly result: "ok" | "timeout" | "exited" | "not-started";
  /** Last HTTP status ("000": no answer). */
  readonly status: string;
  readonly body: string;
  /** The container's state at the end (`exited 3`), and its last 50 lines of output. */
  readonly state: string;
  readonly logs: string;
  readonly ms: number;
}

/** The validation container's name: one per image, so a re-run replaces a leftover. */
export function validationContainer(name: string, contentHash: string): string {
  return `fleet-validate-${name.replace(/[^A-Za-z0-9_.-]/g, "-")}-${contentHash.slice(0, 12)}`;
}

/**
 * Runs the new image once on the build engine (host networking) and probes its health URL from
 * this machine until it answers as expected, the container exits, or the timeout. The container
 * is removed afterwards; its output is kept in the outcome, as evidence.
 */
export async function runValidation(
  spec: DockerValidateSpec,
  image: string,
  container: string,
  dockerHost: string,
): Promise<ValidationOutcome> {
  const fs = require("fs") as typeof import("fs");
  const os = require("os") as typeof import("os");
  const path = require("path") as typeof import("path");
  const started = Date.now();
  const local = (command: string, step: string) => execLocal(command, { step, dockerHost, timeoutMs: 60_000 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-validate-"));
  const envFile = path.join(dir, "env");
  fs.writeFileSync(envFile, renderDockerEnvFile(spec.env), { mode: 0o600 });
  let status = "000";
  let body = "";
  let result: ValidationOutcome["result"] = "timeout";
  try {
    const start = await local(validateRunCommand(container, image, envFile), "validate: start");
    if (start.code !== 0) {
      result = "not-started";
      body = start.stderr;
    } else {
      const deadline = started + spec.timeoutMs;
      for (;;) {
        try {
          const res = await fetch(spec.url, { signal: AbortSignal.timeout(2000) });
          status = String(res.status);
          body = (await res.text()).slice(0, 4096);
        } catch {
          status = "000";
        }
        if (
          status === String(spec.expectStatus) &&
          (spec.bodyContains === undefined || body.includes(spec.bodyContains))
        ) {
          result = "ok";
          break;
        }
        const state = await local(containerStateCommand(container), "validate: state");
        if (!state.stdout.startsWith("running")) {
          result = "exited";
          break;
        }
        if (Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, spec.intervalMs));
      }
    }
    const state = (await local(containerStateCommand(container), "validate: state")).stdout.trim();
    const logs = (await local(containerLogsCommand(container, 50), "validate: logs")).stdout;
    return { result, status, body, state, logs, ms: Date.now() - started };
  } finally {
    await local(removeContainerCommand(container), "validate: cleanup").catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The failure message for an outcome that is not "ok": what was expected, what was seen, the logs. */
export function validationFailure(spec: DockerValidateSpec, outcome: ValidationOutcome): string {
  const expected = `HTTP ${spec.expectStatus}${spec.bodyContains !== undefined ? ` with ${JSON.stringify(spec.bodyContains)} in the body` : ""} from ${spec.url}`;
  const why =
    outcome.result === "not-started"
      ? `the container did not start: ${outcome.body.trim()}`
      : outcome.result === "exited"
        ? `the container exited before answering ${expected} (state: ${outcome.state})`
        : `no ${expected} within ${spec.timeoutMs} ms`;
  const last =
    outcome.status === "000" ? "no answer" : `HTTP ${outcome.status} ${JSON.stringify(outcome.body.slice(0, 500))}`;
  const logs = tail(outcome.logs, 50)
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
  return `validation failed: ${why}\n  last response: ${last}\n  container output (last 50 lines):\n${logs}`;
}
