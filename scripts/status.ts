/**
 * npm run status [-- --stack <name>] [--cwd <dir>]: each service's live release, health and last
 * deploy line, per host, read over SSH. Config comes from `pulumi config --json --show-secrets`
 * when the CLI answers, else from Pulumi.<stack>.yaml, whose secrets are only ciphertext: a host
 * whose key is such a secret is shown with what to do, the others are read.
 */
import { argsOrExit, parseCommandLine, USAGE_EXIT, type FlagSpec, type ScriptSpec } from "../config/cli-args";
import { parseFleetConfig } from "../config/schema";
import { fleetConfigOf, secretsProblem, unreadableKeyFor, wholeFleetSecrets } from "../config/stack-file";
import { collectStatus, formatStatus } from "../status/collect";
import { runOperatorScript } from "../operate/main";

const SPEC: ScriptSpec<Record<never, FlagSpec>> = {
  name: "status",
  summary: "each service's live release, health, last deploy line and lock holder, per host (over SSH)",
  usage: ["[--stack <name>] [--cwd <dir>]"],
  flags: {},
  positionals: 0,
  exitCodes: [
    "0 shown (a host that could not be read says why in its row)",
    "1 failed",
    `${USAGE_EXIT} invalid config or usage: nothing was read`,
  ],
};

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const loaded = fleetConfigOf(args.stack, args.cwd);
  const whole = wholeFleetSecrets(loaded.unreadableSecrets);
  if (whole.length > 0) {
    console.error(`status: ${secretsProblem(loaded, whole)}`);
    return USAGE_EXIT;
  }
  const cfg = parseFleetConfig(loaded.raw);
  const unreadable: Record<string, string> = {};
  for (const host of Object.keys(cfg.hosts)) {
    const secret = unreadableKeyFor(host, cfg, loaded.unreadableSecrets);
    if (!secret) continue;
    unreadable[host] = `not read: its key ${secret.path} is a secret (see above)`;
    console.error(`status: ${host}: ${secretsProblem(loaded, [secret], `give hosts.${host}.privateKeyFile instead`)}`);
  }
  console.log(formatStatus(await collectStatus(cfg, unreadable)));
  return 0;
}

runOperatorScript("status", main);
