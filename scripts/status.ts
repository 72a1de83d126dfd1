/**
 * npm run status [-- --stack <name>]: each service's live release, health and last deploy line,
 * per host, read over SSH. Config comes from `pulumi config --json --show-secrets` when the CLI
 * runs, else from Pulumi.<stack>.yaml (then secret values, e.g. fleet:privateKeys, are not available).
 */
import { parseFleetConfig, FleetConfigError } from "../config/schema";
import { fleetConfigOf } from "../config/stack-file";
import { collectStatus, formatStatus } from "../status/collect";
import { closeAll } from "../transport/ssh";

async function main(): Promise<void> {
  const i = process.argv.indexOf("--stack");
  const stack = i > 0 ? process.argv[i + 1]! : (process.env["PULUMI_STACK"] ?? "dev");
  const cfg = parseFleetConfig(fleetConfigOf(stack));
  console.log(formatStatus(await collectStatus(cfg)));
  await closeAll();
}

main().catch((err) => {
  console.error(err instanceof FleetConfigError ? err.message : `status: ${(err as Error).message}`);
  process.exit(1);
});
