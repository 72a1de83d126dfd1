/**
 * npm run drift [-- --stack prod] [--cwd <dir>]: the drift alarm. Runs `pulumi preview --refresh
 * --expect-no-changes --diff` (decisions/drift.ts); when the live state differs from what the
 * program wants, announces the resources that differ to the `fleet:notify` targets.
 *   0 in sync · 1 drift (announced) · 2 the check itself failed (CLI, backend, program)
 *   6 invalid config or usage (nothing ran)
 */
import { argsOrExit, parseCommandLine, USAGE_EXIT, type FlagSpec, type ScriptSpec } from "../config/cli-args";
import { teePulumi } from "../engine/tee";
import { parseFleetConfig, type FleetConfig } from "../config/schema";
import { isFleetError } from "../model/errors";
import { fleetConfigOf, secretsProblem } from "../config/stack-file";
import {
  DRIFT_EXIT,
  driftCommand,
  driftedResources,
  driftEvent,
  driftSummary,
  driftTargets,
  driftVerdict,
} from "../decisions/drift";
import { notifyAll } from "../providers/service/notify";
import { redact } from "../transport/redact";

const SPEC: ScriptSpec<Record<never, FlagSpec>> = {
  name: "drift",
  summary: "compare the stack's live state with what the program wants; announce drift to fleet:notify",
  usage: ["[--stack <name>] [--cwd <dir>]"],
  flags: {},
  positionals: 0,
  exitCodes: [
    `${DRIFT_EXIT.clean} in sync`,
    `${DRIFT_EXIT.drift} drift (announced to the fleet:notify targets)`,
    `${DRIFT_EXIT.error} the check itself failed (CLI, backend, program): drift is unknown`,
    `${USAGE_EXIT} invalid config or usage: nothing ran`,
  ],
};

/** Every secret value in the config, so that none reaches a notification. */
function secretsOf(cfg: FleetConfig): string[] {
  return [
    ...Object.values(cfg.secretEnv).flatMap((env) => Object.values(env)),
    ...Object.values(cfg.privateKeys),
    ...Object.values(cfg.dbPasswords),
    ...cfg.notify.map((t) => t.url),
  ].filter((s): s is string => typeof s === "string");
}

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const { stack, cwd } = args;
  let cfg: FleetConfig;
  try {
    const loaded = fleetConfigOf(stack, cwd);
    // The preview decrypts every secret of the stack, and the notify targets' URLs are secrets.
    if (loaded.unreadableSecrets.length > 0) {
      console.error(`drift: ${secretsProblem(loaded, loaded.unreadableSecrets)}`);
      return USAGE_EXIT;
    }
    cfg = parseFleetConfig(loaded.raw);
  } catch (err) {
    const config = isFleetError(err) && err.kind === "config";
    console.error(config ? (err as Error).message : `drift: ${(err as Error).message}`);
    return config ? USAGE_EXIT : DRIFT_EXIT.error;
  }
  const started = Date.now();
  const r = await teePulumi(driftCommand(stack), cwd);
  if (r.status === 127) {
    console.error(`drift: no Pulumi CLI: ${r.output} (tools/pulumi/ensure.sh says what to install)`);
    return DRIFT_EXIT.error;
  }
  const verdict = driftVerdict(r.status, r.output);
  if (verdict.kind === "clean") {
    console.log(`drift: stack ${stack} matches its live state`);
    return DRIFT_EXIT.clean;
  }
  if (verdict.kind === "error") {
    console.error(`drift: the preview of stack ${stack} failed (exit ${r.status}); drift is unknown`);
    return DRIFT_EXIT.error;
  }
  const secrets = secretsOf(cfg);
  const summary = redact(driftSummary(r.output), secrets);
  console.error(`drift: stack ${stack}: ${summary}`);
  const targets = driftTargets(cfg.notify, driftedResources(r.output));
  await notifyAll(targets, driftEvent(stack, summary, Date.now() - started), secrets);
  return DRIFT_EXIT.drift;
}

main().then((code) => process.exit(code));
