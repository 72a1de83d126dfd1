/**
 * Finding the Pulumi CLI (tools/pulumi/ensure.sh: PATH, a build from source with Go, or the npm
 * package) and the environment it runs in. One place, used by `npm run pulumi`, the operator
 * scripts, the demo and the engine tests.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export const PROJECT_DIR = path.resolve(__dirname, "..");

export interface PulumiCli {
  /** The folder that holds `pulumi` (and, from Pulumi's installer, its language hosts). */
  readonly binDir: string;
  readonly pulumi: string;
  /**
   * Whether `pulumi-language-nodejs` is there. Without it (a CLI built from source: the module
   * proxy does not serve the language host) the program runs through Pulumi's Automation API
   * language server instead (engine/run.ts).
   */
  readonly languageHost: boolean;
}

/** Per FLEET_PULUMI_BIN_DIR and PATH: what ensure.sh finds depends on them. */
const found = new Map<string, PulumiCli>();

/** Finds or builds the CLI once per process and environment; progress goes to stderr. Throws with what to install. */
export function pulumiCli(): PulumiCli {
  const key = `${process.env["FLEET_PULUMI_BIN_DIR"] ?? ""}\0${process.env["PATH"] ?? ""}`;
  const known = found.get(key);
  if (known) return known;
  let binDir: string;
  try {
    binDir = execFileSync("bash", [path.join(PROJECT_DIR, "tools/pulumi/ensure.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .pop()!;
  } catch {
    throw new Error("the Pulumi CLI is not available (tools/pulumi/ensure.sh said why, above)");
  }
  const languageHost = fs.existsSync(path.join(binDir, "pulumi-language-nodejs"));
  const cli = { binDir, pulumi: path.join(binDir, "pulumi"), languageHost };
  found.set(key, cli);
  return cli;
}

/**
 * The engine's default is 4 steps per CPU: 8 on a 2-core laptop, so a service on 10 hosts would
 * deploy in two waves. fleet's steps wait on hosts, not on this machine's CPUs; the rollout's
 * batches (decisions/rollout.ts) say what may run at once, and the transport keeps each host's
 * connection within its sessions (MAX_COMMANDS_PER_CONNECTION). `--parallel` or PULUMI_PARALLEL
 * still win.
 */
export const DEFAULT_PARALLEL = 64;

/**
 * The CLI's environment: its folder first on PATH (the engine finds plugins there, including the
 * dynamic-provider shim), no update check, and no plugin downloads unless the caller allows them
 * (nothing but package registries is reachable from fleet's machines; hcloud and docker load
 * only when a resource uses them), and enough parallel steps for every host at once (below).
 */
export function cliEnv(cli: PulumiCli, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    PATH: `${cli.binDir}${path.delimiter}${base["PATH"] ?? ""}`,
    PULUMI_SKIP_UPDATE_CHECK: base["PULUMI_SKIP_UPDATE_CHECK"] ?? "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: base["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] ?? "true",
    PULUMI_PARALLEL: base["PULUMI_PARALLEL"] ?? String(DEFAULT_PARALLEL),
  };
}
