/**
 * `npm run rollback` (issue 7): re-apply an earlier update by pinning each service to the release
 * it had then (`fleet:pins`), from the file backend's history. Thin on purpose: the logic is in
 * rollback/history.ts and rollback/commands.ts; this file only reads argv and runs `pulumi`.
 *
 *   npm run rollback -- --list                        the updates, with each host's release
 *   npm run rollback -- <version>                     pin every service to that update's release, pulumi up
 *   npm run rollback -- --service <name> <release>    pin one service (on all its hosts; other pins kept), pulumi up
 *   npm run rollback -- --unpin                       remove fleet:pins (next pulumi up deploys the sources)
 *   npm run rollback -- --help                        all options and exit codes
 */
import { pulumiCli } from "../engine/cli";
import { teePulumi } from "../engine/tee";
import * as os from "os";
import { argsOrExit } from "../config/cli-args";
import { fleetConfigOf, projectNameOf } from "../config/stack-file";
import { pinsSchema } from "../config/schema";
import { listHistory, missingReleases, pinsForVersion, readCurrentReleases, type Pins } from "../rollback/history";
import {
  historyTable,
  parseRollbackArgs,
  pinOneService,
  pulumiCommands,
  shellLine,
  unpinCommands,
  type RollbackArgs,
} from "../rollback/commands";

/** The CLI, or why not (tools/pulumi/ensure.sh has printed how to get one). */
function pulumiMissing(): string | undefined {
  try {
    pulumiCli();
    return undefined;
  } catch (err) {
    return `${(err as Error).message}. Nothing was changed.`;
  }
}

async function run(commands: string[][], { dryRun, cwd }: RollbackArgs): Promise<number> {
  const missing = dryRun ? undefined : pulumiMissing();
  if (missing) {
    console.error(`rollback: ${missing}`);
    return 127;
  }
  for (const argv of commands) {
    console.log(`$ ${shellLine(argv)}`);
    if (dryRun) continue;
    const started = Date.now();
    const r = await teePulumi(argv.slice(1), cwd);
    if (argv[1] === "up") console.log(`(pulumi up took ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    if (r.status !== 0) {
      console.error(`rollback: \`${shellLine(argv)}\` failed (exit ${r.status})`);
      return r.status;
    }
  }
  return 0;
}

function applyPins(pins: Pins, args: RollbackArgs): Promise<number> | number {
  const missing = missingReleases(pins, readCurrentReleases(args.backendDir, projectNameOf(args.cwd), args.stack));
  if (missing.length > 0) {
    for (const m of missing) console.error(m.message);
    console.error("rollback: nothing was changed.");
    return 1;
  }
  console.log(`pins: ${JSON.stringify(pins)}`);
  return run(pulumiCommands(pins, args.stack), args);
}

/** The stack's `fleet:pins` now (an unreadable or invalid value is an error: nothing is changed). */
function currentPins(args: RollbackArgs): Pins {
  const raw = fleetConfigOf(args.stack, args.cwd).raw["pins"] ?? {};
  const parsed = pinsSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `the stack's fleet:pins is not valid (${parsed.error.issues[0]?.message}); fix or remove it (npm run rollback -- --unpin)`,
    );
  return parsed.data;
}

function main(): Promise<number> | number {
  const args = argsOrExit(parseRollbackArgs(process.argv.slice(2), process.env, process.cwd(), os.homedir()));
  if (typeof args === "number") return args;
  if (args.mode === "unpin") return run(unpinCommands(args.stack), args);
  const entries = listHistory(args.backendDir, projectNameOf(args.cwd), args.stack);
  if (args.mode === "list") {
    console.log(historyTable(entries));
    return 0;
  }
  if (args.mode === "service")
    return applyPins(pinOneService(entries, args.service!.name, args.service!.releaseId, currentPins(args)), args);
  return applyPins(pinsForVersion(entries, args.version!), args);
}

Promise.resolve()
  .then(main)
  .then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`rollback: ${(e as Error).message}`);
      process.exit(2);
    },
  );
