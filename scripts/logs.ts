/**
 * npm run logs -- <service> [--host h] [-n 100] [-f] [--since 10m]: the service's journal from
 * every host it runs on, each line prefixed by its host, secrets redacted (operate/logs.ts).
 */
import { argsOrExit, parseCommandLine, usageProblem, USAGE_EXIT, type ScriptSpec } from "../config/cli-args";
import { journalSince } from "../commands/operate";
import { streamLogs, logsPlacements, type LogsRequest } from "../operate/logs";
import { listFlag, loadOperatorConfig } from "../operate/targets";
import { runOperatorScript } from "../operate/main";

const FLAGS = {
  host: { type: "string", value: "host[,host]", help: "only these hosts (default: every host the service runs on)" },
  lines: { type: "string", short: "n", value: "count", help: "how many lines back per host (default: 100)" },
  follow: { type: "boolean", short: "f", help: "keep streaming new lines until Ctrl-C" },
  since: {
    type: "string",
    value: "when",
    help: "only lines since then: a duration (10m, 2h, 1d) or journalctl's forms (-10m, today, 2026-12-01 10:00)",
  },
} as const;

const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "logs",
  summary: "a service's journal lines from every host it runs on, each prefixed by its host, secrets redacted",
  usage: ["<service> [--host <h>] [-n 100] [-f] [--since 10m] [--stack <name>]"],
  flags: FLAGS,
  positionals: 1,
  exitCodes: [
    "0 every host's journal was read (with -f: followed until Ctrl-C)",
    "1 a host could not be reached or read (each says why; the others were read)",
    `${USAGE_EXIT} invalid config or usage: nothing connected`,
  ],
};

/** The request, or the usage problem (printed) as an exit code. */
function request(argv: readonly string[]): { req: LogsRequest; stack: string; cwd: string } | number {
  const args = argsOrExit(parseCommandLine(SPEC, argv, process.env, process.cwd()));
  if (typeof args === "number") return args;
  const usage = (problem: string) => argsOrExit(usageProblem(SPEC.name, problem));
  const service = args.positionals[0];
  if (!service) return usage("name the service: npm run logs -- <service>");
  const linesText = args.flags.lines ?? "100";
  if (!/^\d+$/.test(linesText)) return usage(`-n/--lines takes a count of lines, not ${JSON.stringify(linesText)}`);
  let since: string | undefined;
  if (args.flags.since !== undefined) {
    since = journalSince(args.flags.since);
    if (since === undefined)
      return usage(
        `--since takes a duration (10m, 2h, 1d) or one of journalctl's forms (-10m, "3 hours ago", today, ` +
          `"2026-12-01 10:00", @epoch), not ${JSON.stringify(args.flags.since)}`,
      );
  }
  const hosts = listFlag(args.flags.host);
  return {
    req: {
      service,
      lines: Number(linesText),
      follow: args.flags.follow,
      ...(hosts ? { hosts } : {}),
      ...(since === undefined ? {} : { since }),
    },
    stack: args.stack,
    cwd: args.cwd,
  };
}

async function main(): Promise<number> {
  const parsed = request(process.argv.slice(2));
  if (typeof parsed === "number") return parsed;
  const op = loadOperatorConfig("logs", parsed.stack, parsed.cwd);
  logsPlacements(op, parsed.req); // unknown service or host: a usage error before anything connects
  const stop = new AbortController();
  // Ctrl-C ends a follow cleanly on every host; a second one leaves at once.
  if (parsed.req.follow)
    process.on("SIGINT", () => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
    });
  const results = await streamLogs(
    op,
    parsed.req,
    { stdout: (b) => process.stdout.write(b), stderr: (b) => process.stderr.write(b) },
    stop.signal,
  );
  return results.every((r) => r.ok) ? 0 : 1;
}

runOperatorScript("logs", main);
