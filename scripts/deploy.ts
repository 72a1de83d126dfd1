/**
 * npm run deploy [-- --stack prod]: the pre-deploy checks (fleet:checks), then `pulumi preview`,
 * then `pulumi up`, with an exit code per outcome (decisions/outcome.ts):
 *   0 deployed · 1 checks failed · 2 build or image failed · 3 deploy failed, nothing switched
 *   4 health failed, rolled back automatically · 5 rollback failed too (critical) · 6 bad config
 */
import { runTee } from "../config/run-tee";
import { spawnSync } from "child_process";
import { FleetConfigError, parseFleetConfig } from "../config/schema";
import { fleetConfigOf } from "../config/stack-file";
import { EXIT_CODES, outcomeOf } from "../decisions/outcome";

async function main(): Promise<number> {
  const i = process.argv.indexOf("--stack");
  const stack = i > 0 ? process.argv[i + 1]! : (process.env["PULUMI_STACK"] ?? "dev");
  let checks;
  try {
    checks = parseFleetConfig(fleetConfigOf(stack)).checks;
  } catch (err) {
    console.error(err instanceof FleetConfigError ? err.message : `deploy: ${(err as Error).message}`);
    return err instanceof FleetConfigError ? EXIT_CODES.config : EXIT_CODES.failure;
  }
  for (const check of checks) {
    console.log(`deploy: check "${check.name}": ${check.run}`);
    const r = spawnSync("/bin/sh", ["-c", check.run], { cwd: check.cwd ?? process.cwd(), stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`deploy: check "${check.name}" failed (exit ${r.status ?? r.signal}); nothing was deployed`);
      return EXIT_CODES.checks;
    }
  }
  for (const args of [
    ["preview", "--stack", stack, "--diff", "--non-interactive"],
    ["up", "--stack", stack, "--yes", "--skip-preview", "--non-interactive"],
  ]) {
    const r = await runTee("pulumi", args);
    if (r.status === 127) {
      console.error("deploy: the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/");
      return EXIT_CODES.failure;
    }
    const outcome = outcomeOf(r.status, r.output);
    if (outcome.code !== 0) {
      console.error(`deploy: pulumi ${args[0]} failed: ${outcome.kind} (exit ${outcome.code})`);
      return outcome.code;
    }
  }
  return EXIT_CODES.ok;
}

main().then((code) => process.exit(code));
