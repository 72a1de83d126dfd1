import { spawnSync } from "child_process";
import * as fs from "fs";
import { load } from "js-yaml";

/**
 * A stack's config for the operator scripts (status, deploy): from `pulumi config --json
 * --show-secrets` when the CLI runs, else from Pulumi.<stack>.yaml (then secret values, e.g.
 * fleet:privateKeys, are not available).
 */
export function stackConfig(stack: string): Record<string, unknown> {
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

/** The `fleet:` keys of a stack's config, without the namespace (as index.ts reads them). */
export function fleetConfigOf(stack: string): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(stackConfig(stack))
      .filter(([k]) => k.startsWith("fleet:"))
      .map(([k, v]) => [k.slice("fleet:".length), v]),
  );
}
