/**
 * npm run status [-- --stack <name>]: each service's live release, health and last deploy line,
 * per host, read over SSH. Config comes from `pulumi config --json --show-secrets` when the CLI
 * runs, else from Pulumi.<stack>.yaml (then secret values, e.g. fleet:privateKeys, are not available).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import { load } from "js-yaml";
import { parseFleetConfig, FleetConfigError } from "../config/schema";
import { collectStatus, formatStatus } from "../status/collect";
import { closeAll } from "../transport/ssh";

function stackConfig(stack: string): Record<string, unknown> {
  const cli = spawnSync("pulumi", ["config", "--json", "--show-secrets", "--stack", stack], { encoding: "utf8" });
  if (cli.status === 0) {
    const raw = JSON.parse(cli.stdout) as Record<string, { value?: string; objectValue?: unknown }>;
    return Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, v.objectValue ?? (v.value ? JSON.parse(v.value) : undefined)]),
    );
  }
  const file = `Pulumi.${stack}.yaml`;
  if (!fs.existsSync(file))
    throw new Error(`no Pulumi CLI answered and there is no ${file}: run from the project folder, or pass --stack`);
  return ((load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> }).config ?? {}) as Record<
    string,
    unknown
  >;
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--stack");
  const stack = i > 0 ? process.argv[i + 1]! : (process.env["PULUMI_STACK"] ?? "dev");
  const config = stackConfig(stack);
  const fleet = Object.fromEntries(
    Object.entries(config)
      .filter(([k]) => k.startsWith("fleet:"))
      .map(([k, v]) => [k.slice("fleet:".length), v]),
  );
  const cfg = parseFleetConfig(fleet);
  console.log(formatStatus(await collectStatus(cfg)));
  await closeAll();
}

main().catch((err) => {
  console.error(err instanceof FleetConfigError ? err.message : `status: ${(err as Error).message}`);
  process.exit(1);
});
