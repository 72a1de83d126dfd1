/**
 * npm run reboot [-- --hosts web1,web2] [--batch 1] [--wait 5m]: a rolling reboot of the stack's
 * hosts (issue 20). Thin: the decisions are in decisions/reboot.ts, the host scripts in
 * commands/reboot.ts, the run in operate/reboot.ts.
 */
import { argsOrExit, parseCommandLine, USAGE_EXIT, type ScriptSpec } from "../config/cli-args";
import { DEFAULT_WAIT, rebootOptions, stoppedReport } from "../decisions/reboot";
import { rollingReboot } from "../operate/reboot";
import { listFlag, loadOperatorConfig, selectHosts } from "../operate/targets";
import { runOperatorScript } from "../operate/main";

/** A host did not come back within --wait. */
const NOT_BACK_EXIT = 2;
/** Refused before anything was rebooted. */
const REFUSED_EXIT = 3;

const SPEC = {
  name: "reboot",
  summary:
    "a rolling reboot: host by host (or --batch at a time), each back on a new boot with every service healthy before the next",
  usage: ["[--hosts <h1,h2>] [--batch <n>] [--wait <duration>] [--stack <name>] [--cwd <dir>]"],
  flags: {
    hosts: { type: "string", value: "h1,h2", help: "only these hosts (default: all of the stack's), in config order" },
    batch: { type: "string", value: "n", help: "hosts rebooted at a time (default 1)" },
    wait: {
      type: "string",
      value: "duration",
      help: `how long a batch may take to come back, SSH and health (default ${DEFAULT_WAIT})`,
    },
  },
  positionals: 0,
  exitCodes: [
    "0 every host rebooted, came back and every service on it passed its health gate",
    "1 failed (a reboot command failed, or an unexpected error): later hosts were not rebooted",
    `${NOT_BACK_EXIT} a host did not come back (SSH, a new boot, or a service's health) within --wait: later hosts were not rebooted`,
    `${REFUSED_EXIT} refused: a deploy is running on a host, or a host cannot be reached or read (nothing rebooted); or a deploy took a lock of the next batch's hosts during the run (that batch and later ones not rebooted)`,
    `${USAGE_EXIT} invalid config or usage (an unknown host names the known ones): nothing was rebooted`,
  ],
} as const satisfies ScriptSpec<Record<string, { type: "string"; value: string; help: string }>>;

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const options = rebootOptions(args.flags.batch, args.flags.wait);
  const op = loadOperatorConfig("reboot", args.stack, args.cwd);
  const hosts = selectHosts(op.cfg, listFlag(args.flags.hosts));
  const outcome = await rollingReboot(op, {
    hosts,
    ...options,
    wait: args.flags.wait ?? DEFAULT_WAIT,
    print: (line) => console.log(line),
  });
  switch (outcome.kind) {
    case "done":
      console.log(`reboot: done: ${hosts.join(", ")} rebooted and healthy`);
      return 0;
    case "refused":
      console.error(
        [
          outcome.rebooted.length === 0 ? "reboot: refused, nothing was rebooted:" : "reboot: refused:",
          ...outcome.problems.map((p) => `  ${p}`),
          ...(outcome.rebooted.length === 0
            ? []
            : [
                `reboot: stopped; rebooted: ${outcome.rebooted.join(", ")}; not rebooted: ${outcome.untouched.join(", ")}`,
              ]),
        ].join("\n"),
      );
      return REFUSED_EXIT;
    case "stopped":
      console.error(stoppedReport(outcome.notBack, outcome.untouched, args.flags.wait ?? DEFAULT_WAIT));
      return NOT_BACK_EXIT;
    case "failed":
      console.error(`reboot: ${outcome.error}`);
      console.error(`reboot: stopped; not rebooted: ${outcome.untouched.join(", ") || "none"}`);
      return 1;
    default: {
      const never: never = outcome;
      return never;
    }
  }
}

runOperatorScript("reboot", main);
