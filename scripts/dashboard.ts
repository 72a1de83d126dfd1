/**
 * npm run dashboard -- --stack prod [--port 8377 | --listen <addr:port>]: the deployment dashboard
 * (issue 21) in a browser: the fleet (service × host: release, health, lock, last deploy, drift),
 * the stack's history with a chart of deploy durations, and the actions (preview, deploy, roll
 * back, pin, tail logs), which run `npm run deploy` / `npm run rollback` / the CLI as child
 * processes. Loopback only, unless --listen: then a token is required (printed here, or given in
 * $FLEET_DASHBOARD_TOKEN), and off loopback HTTPS (--tls-cert, --tls-key): without them it refuses.
 */
import * as fs from "fs";
import * as os from "os";
import * as tls from "tls";
import { argsOrExit, parseCommandLine, usageProblem, USAGE_EXIT, type ScriptSpec } from "../config/cli-args";
import { projectNameOf } from "../config/stack-file";
import { loadOperatorConfig } from "../operate/targets";
import { defaultBackendDir } from "../rollback/commands";
import { runOperatorScript } from "../operate/main";
import { listenOf, newToken, servingOf, TOKEN_ENV } from "../dashboard/auth";
import { Dashboard } from "../dashboard/server";

const FLAGS = {
  port: { type: "string", short: "p", value: "n", help: "the port on 127.0.0.1 (default: 8377); no token needed" },
  listen: {
    type: "string",
    value: "addr:port",
    help: `listen there instead (e.g. 0.0.0.0:8377): a token is then required, $${TOKEN_ENV} or one printed at start; off loopback, HTTPS only (--tls-cert, --tls-key)`,
  },
  "tls-cert": {
    type: "string",
    value: "file",
    help: "serve HTTPS with this certificate (PEM, its chain after it); required with --listen off loopback",
  },
  "tls-key": { type: "string", value: "file", help: "the certificate's private key (PEM)" },
} as const;

const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "dashboard",
  summary: "the deployment dashboard in a browser: the fleet, the history, and deploy / roll back / pin / logs",
  usage: [
    "[--stack <name>] [--port 8377]",
    "--listen <addr:port> [--tls-cert <file> --tls-key <file>] [--stack <name>]",
  ],
  flags: FLAGS,
  positionals: 0,
  exitCodes: [
    "0 stopped (Ctrl-C)",
    "1 could not listen, or failed",
    `${USAGE_EXIT} invalid config or usage (--listen off loopback without --tls-cert and --tls-key, or a certificate or key that cannot be read): nothing was served`,
  ],
};

async function main(): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, process.argv.slice(2), process.env, process.cwd()));
  if (typeof args === "number") return args;
  const listen = listenOf(args.flags.listen, args.flags.port);
  if (typeof listen === "string") return argsOrExit(usageProblem(SPEC.name, listen));
  // Before anything else, and before any listen: off loopback, HTTPS or nothing.
  const serving = servingOf(listen, { cert: args.flags["tls-cert"], key: args.flags["tls-key"] });
  if (serving.kind === "refuse") return argsOrExit(usageProblem(SPEC.name, serving.why));
  let pem: { cert: Buffer; key: Buffer } | undefined;
  if (serving.kind === "tls") {
    try {
      pem = { cert: fs.readFileSync(serving.cert), key: fs.readFileSync(serving.key) };
      tls.createSecureContext(pem);
    } catch (err) {
      const why = (err as Error).message;
      return argsOrExit(usageProblem(SPEC.name, `--tls-cert ${serving.cert} --tls-key ${serving.key}: ${why}`));
    }
  }
  const given = process.env[TOKEN_ENV];
  const token = listen.tokenRequired ? given || newToken() : "";
  let backendDir: string | undefined;
  try {
    // Where `npm run rollback` reads the history: the same rule, so update N is the same N.
    backendDir = defaultBackendDir(process.env, args.cwd, os.homedir());
  } catch {
    backendDir = undefined; // not a file backend: no history on this machine
  }
  const dashboard = new Dashboard({
    listen,
    token,
    ...(pem ? { tls: pem } : {}),
    where: { stack: args.stack, project: projectNameOf(args.cwd), backendDir },
    cwd: args.cwd,
    env: process.env,
    loadConfig: () => loadOperatorConfig("dashboard", args.stack, args.cwd),
  });
  const url = await dashboard.listen();
  if (!listen.tokenRequired) console.log(`dashboard: stack ${args.stack} at ${url} (loopback only)`);
  else if (given)
    console.log(`dashboard: stack ${args.stack} at ${url} (token from $${TOKEN_ENV}: open ${url}?token=…)`);
  else console.log(`dashboard: stack ${args.stack} at ${url}?token=${token}`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await dashboard.close();
  return 0;
}

runOperatorScript("dashboard", main);
