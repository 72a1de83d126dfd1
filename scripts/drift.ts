/**
 * npm run drift [-- --stack prod]: the drift alarm. Runs `pulumi preview --refresh
 * --expect-no-changes --diff` (decisions/drift.ts); when the live state differs from what the
 * program wants, announces the resources that differ to the `fleet:notify` targets.
 *   0 in sync · 1 drift (announced) · 2 the check itself failed (config, CLI, backend, program)
 */
import { runTee } from "../config/run-tee";
import { FleetConfigError, parseFleetConfig, type FleetConfig } from "../config/schema";
import { fleetConfigOf } from "../config/stack-file";
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
  const i = process.argv.indexOf("--stack");
  const stack = i > 0 ? process.argv[i + 1]! : (process.env["PULUMI_STACK"] ?? "dev");
  let cfg: FleetConfig;
  try {
    cfg = parseFleetConfig(fleetConfigOf(stack));
  } catch (err) {
    console.error(err instanceof FleetConfigError ? err.message : `drift: ${(err as Error).message}`);
    return DRIFT_EXIT.error;
  }
  const started = Date.now();
  const r = await runTee("pulumi", driftCommand(stack));
  if (r.status === 127) {
    console.error("drift: the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/");
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
