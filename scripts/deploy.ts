/**
 * npm run deploy [-- --stack prod] [--hosts web1,web2] [--services api] [--cwd <dir>]: the pre-deploy
 * checks (fleet:checks), then `pulumi up`, which previews (with the diff) and then applies, with
 * an exit code per outcome (decisions/outcome.ts). `--hosts`/`--services` (both: the
 * intersection) deploy only those resources and what they depend on, with `--target`
 * (operate/deploy-targets.ts):
 *   0 deployed · 1 checks failed · 2 build or image failed · 3 deploy failed, nothing switched
 *   4 health failed, rolled back automatically · 5 rollback failed too (critical)
 *   6 invalid config or usage (nothing ran)
 */
import * as path from "path";
import { teePulumi } from "../engine/tee";
import { stackLocks } from "../engine/stack-lock";
import { backendOf } from "../config/backend";
import { spawnSync } from "child_process";
import { argsOrExit, parseCommandLine, USAGE_EXIT, type ScriptSpec } from "../config/cli-args";
import { parseFleetConfig } from "../config/schema";
import { isFleetError } from "../model/errors";
import { fleetConfigOf, projectNameOf, secretsProblem } from "../config/stack-file";
import { EXIT_CODES, outcomeOf } from "../decisions/outcome";
import { componentLabel, deployTargets, type DeployTargets } from "../operate/deploy-targets";
import { listFlag } from "../operate/targets";

const FLAGS = {
  hosts: {
    type: "string",
    value: "host[,host]",
    help: "only these hosts' resources (their Host, the services on them) and what those need",
  },
  services: {
    type: "string",
    value: "service[,service]",
    help: "only these services (with --hosts: on those hosts) and what they need (Hosts, backups, images)",
  },
} as const;

const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "deploy",
  summary: "the stack's pre-deploy checks (fleet:checks), then pulumi up (its preview with the diff, then the update)",
  usage: ["[--stack <name>] [--cwd <dir>]", "[--hosts web1,web2] [--services api] [--stack <name>]"],
  flags: FLAGS,
  positionals: 0,
  exitCodes: [
    `${EXIT_CODES.ok} deployed`,
    `${EXIT_CODES.checks} checks failed: nothing was deployed`,
    `${EXIT_CODES.build} install, build or image failed: nothing switched`,
    `${EXIT_CODES.failure} deploy failed: nothing switched`,
    `${EXIT_CODES.rollback} health failed: rolled back automatically`,
    `${EXIT_CODES.critical} the rollback failed too: critical, look now`,
    `${USAGE_EXIT} invalid config or usage: nothing ran`,
  ],
};

/**
 * A `pulumi up` that was killed (a laptop that slept, a cancelled CI job) leaves the stack locked
 * and its operation pending. When the lock's holder ran here and is gone: `pulumi cancel` drops
 * the lock, and `pulumi refresh` records what the hosts serve now (the host finished or undid the
 * interrupted release by itself) and clears the pending operation, so that the deploy that follows
 * is a plain diff. A holder that is alive, or on another machine, is named and the deploy refused.
 */
async function clearStaleStackLock(stack: string, cwd: string): Promise<number> {
  let backend;
  try {
    backend = backendOf(process.env, cwd);
  } catch (err) {
    console.error((err as Error).message);
    return EXIT_CODES.config;
  }
  if (backend.kind !== "file" || !backend.dir) return 0;
  const locks = stackLocks(backend.dir, projectNameOf(cwd), stack);
  if (locks.length === 0) return 0;
  const held = locks.find((l) => l.kind === "held");
  if (held) {
    console.error(
      `deploy: stack ${stack} is locked: ${held.why}. Nothing was deployed; wait for it, or run \`npm run pulumi -- cancel --stack ${stack}\` once it is really gone.`,
    );
    return EXIT_CODES.failure;
  }
  for (const l of locks) console.log(`deploy: stack ${stack}'s lock is stale: ${l.why}; clearing it`);
  for (const args of [
    ["cancel", "--yes", "--stack", stack],
    ["refresh", "--yes", "--skip-preview", "--clear-pending-creates", "--stack", stack, "--non-interactive"],
  ]) {
    const r = await teePulumi(args, cwd);
    if (r.status !== 0) {
      console.error(`deploy: \`pulumi ${args.slice(0, 2).join(" ")}\` failed (exit ${r.status}); nothing was deployed`);
      return EXIT_CODES.failure;
    }
  }
  return 0;
}

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const { stack, cwd } = args;
  let checks;
  let targets: DeployTargets | undefined;
  try {
    const loaded = fleetConfigOf(stack, cwd);
    // pulumi preview and up decrypt every secret of the stack: without them they cannot run either.
    if (loaded.unreadableSecrets.length > 0) {
      console.error(`deploy: ${secretsProblem(loaded, loaded.unreadableSecrets)} Nothing was deployed.`);
      return EXIT_CODES.config;
    }
    const cfg = parseFleetConfig(loaded.raw);
    checks = cfg.checks;
    // Unknown names are usage errors: judged here, before any check or pulumi runs.
    const hosts = listFlag(args.flags.hosts);
    const services = listFlag(args.flags.services);
    if (hosts || services)
      targets = deployTargets(cfg, stack, projectNameOf(cwd), {
        ...(hosts ? { hosts } : {}),
        ...(services ? { services } : {}),
      });
  } catch (err) {
    console.error(isFleetError(err) ? err.message : `deploy: ${(err as Error).message}`);
    return isFleetError(err) ? EXIT_CODES[err.kind] : EXIT_CODES.failure;
  }
  for (const check of checks) {
    console.log(`deploy: check "${check.name}": ${check.run}`);
    const r = spawnSync("/bin/sh", ["-c", check.run], { cwd: path.resolve(cwd, check.cwd ?? "."), stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`deploy: check "${check.name}" failed (exit ${r.status ?? r.signal}); nothing was deployed`);
      return EXIT_CODES.checks;
    }
  }
  const lockCode = await clearStaleStackLock(stack, cwd);
  if (lockCode !== 0) return lockCode;
  // One `pulumi up`: it previews (shown with --diff), then applies, in one CLI process. A
  // separate `pulumi preview` first would start the CLI, the program and the provider host twice
  // more (~1.5 s), for the same preview.
  const targetArgs: string[] = [];
  if (targets) {
    console.log(
      `deploy: only ${targets.components.map((c) => `${componentLabel(c)}${c.selected ? "" : " (needed)"}`).join(", ")}, ` +
        `with their children (pulumi up --target); the rest of the stack is left as it is`,
    );
    for (const t of targets.targets) targetArgs.push("--target", t);
  }
  const r = await teePulumi(["up", "--stack", stack, "--yes", "--diff", "--non-interactive", ...targetArgs], cwd);
  if (r.status === 127) {
    console.error(`deploy: no Pulumi CLI: ${r.output} (tools/pulumi/ensure.sh says what to install)`);
    return EXIT_CODES.failure;
  }
  const outcome = outcomeOf(r.status, r.output);
  if (outcome.code !== 0) {
    console.error(`deploy: pulumi up failed: ${outcome.kind} (exit ${outcome.code})`);
    return outcome.code;
  }
  return EXIT_CODES.ok;
}

main().then((code) => process.exit(code));
