/**
 * npm run exec -- <service> [--host h | --all-hosts] -- <command…>: a one-off command in the
 * serving release's directory, with the service's environment, as its user (operate/exec.ts).
 */
import { argsOrExit, parseCommandLine, usageProblem, USAGE_EXIT, type ScriptSpec } from "../config/cli-args";
import { execEach, execOne, execPlacements, formatSummary, NOT_RUN_EXIT, type ExecIo } from "../operate/exec";
import { loadOperatorConfig } from "../operate/targets";
import { runOperatorScript } from "../operate/main";

const FLAGS = {
  host: { type: "string", value: "host", help: "the host to run it on (needed when the service runs on several)" },
  "all-hosts": {
    type: "boolean",
    help: "run it on every host of the service in turn (no stdin, no terminal), then sum up",
  },
} as const;

const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "exec",
  summary:
    "a one-off command on a host, in the serving release's directory, with the service's environment and as its user",
  usage: [
    "<service> [--host <h>] [--stack <name>] -- <command…>",
    "<service> --all-hosts -- <command…>",
    "web -- bash    (stdin a terminal: an interactive shell)",
  ],
  flags: FLAGS,
  positionals: 1,
  rest: true,
  exitCodes: [
    "N the command's own exit code (128+n: killed by signal n)",
    "1 --all-hosts: the command failed or did not run on a host (see the summary)",
    `${USAGE_EXIT} invalid config or usage: nothing connected`,
    `${NOT_RUN_EXIT} it did not run: the host could not be reached, or the service is not deployed there`,
  ],
};

const io: ExecIo = {
  stdin: process.stdin,
  stdout: (b) => process.stdout.write(b),
  stderr: (b) => process.stderr.write(b),
  terminal: () => ({
    rows: process.stdout.rows || 24,
    cols: process.stdout.columns || 80,
    term: process.env["TERM"] || "xterm-256color",
  }),
  onResize: (listener) => {
    process.on("SIGWINCH", listener);
    return () => process.off("SIGWINCH", listener);
  },
};

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const usage = (problem: string) => argsOrExit(usageProblem(SPEC.name, problem));
  const service = args.positionals[0];
  if (!service) return usage("name the service: npm run exec -- <service> -- <command…>");
  if (args.rest.length === 0) return usage("give the command after --: npm run exec -- <service> -- <command…>");
  if (args.flags.host !== undefined && args.flags["all-hosts"])
    return usage("--host and --all-hosts exclude each other: name one host, or all");
  const op = loadOperatorConfig("exec", args.stack, args.cwd);
  const req = {
    service,
    allHosts: args.flags["all-hosts"],
    argv: args.rest,
    ...(args.flags.host === undefined ? {} : { host: args.flags.host }),
  };
  const placements = execPlacements(op, req); // usage errors before anything connects
  if (!req.allHosts) return execOne(op, placements[0]!, req.argv, io);
  const results = await execEach(op, placements, req.argv, io);
  console.error(`exec: ${req.argv.join(" ")}\n${formatSummary(results)}`);
  return results.every((r) => r.code === 0) ? 0 : 1;
}

runOperatorScript("exec", main, NOT_RUN_EXIT);
