/**
 * `npm run restore -- <backup-id> --config <file> --yes` (issue #5): restores a DatabaseBackup
 * backup by hand, through the same code the provider runs (providers/backup/operations.ts):
 * manifest + sha256 check, verification, a safety backup, the restore, the row-count check.
 * `--list` lists the verified backups instead. Thin on purpose: no logic of its own.
 *
 * The config file (YAML or JSON) names the host and the database:
 *   host: { address, port?, user, privateKeyFile, hostKey? , knownHostsFile? }
 *     or host: <name>: that host of the stack's fleet:hosts (--stack), connected as the program does
 *   name: appdb                    # the DatabaseBackup's name
 *   engine: postgres | sqlite
 *   postgres: { host, port?, database, user }   # password: $FLEET_DB_PASSWORD, never argv
 *   sqlite: { path }
 *   backupsDir?: …                 # default /srv/fleet/.backups/<name>
 *   verifyTables?: [ … ]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { defaultBackupsDir } from "../commands/backup";
import {
  argsOrExit,
  parseCommandLine,
  usageProblem,
  USAGE_EXIT,
  type Flags,
  type ScriptArgs,
  type ScriptSpec,
} from "../config/cli-args";
import { connectionFor } from "../config/connections";
import { parseFleetConfig } from "../config/schema";
import { isFleetError } from "../model/errors";
import { fleetConfigOf, secretsProblem, unreadableKeyFor, wholeFleetSecrets } from "../config/stack-file";
import type { BackupSpec } from "../model/backup";
import { checkBackupInputs } from "../providers/backup/check";
import { listBackups, restoreBackup } from "../providers/backup/operations";
import type { SshConnection } from "../transport/connection";
import { hostKeyFromKnownHosts } from "../transport/known-hosts";
import { closeAll } from "../transport/ssh";

const FLAGS = {
  config: {
    type: "string",
    value: "file",
    help: "the restore config (YAML or JSON): host, name, engine, postgres or sqlite, … (relative to --cwd)",
  },
  list: { type: "boolean", help: "list the verified backups instead of restoring" },
  yes: { type: "boolean", help: "restore (without it, says what it would do and exits)" },
} as const satisfies Flags;

const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "restore",
  summary: "restore a database backup by hand (a safety backup is taken first), or list the backups",
  usage: ["<backup-id> --config <file> --yes", "--list --config <file>"],
  flags: FLAGS,
  positionals: 1,
  exitCodes: [
    "0 restored (or listed)",
    "1 failed",
    `${USAGE_EXIT} invalid config or usage, or no --yes: nothing was restored`,
  ],
};

type Raw = Record<string, any>;

function readYaml(file: string): Raw {
  return (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as Raw;
}

function expand(file: string): string {
  return file.startsWith("~/") ? os.homedir() + file.slice(1) : file;
}

/** The connection: the config file's own host, or the named host of the stack (as index.ts connects). */
function connectionOf(cfg: Raw, args: ScriptArgs<typeof FLAGS>): SshConnection | { problem: string } {
  const named: unknown = cfg["host"];
  if (typeof named === "string") {
    const h = named;
    const loaded = fleetConfigOf(args.stack, args.cwd);
    const whole = wholeFleetSecrets(loaded.unreadableSecrets);
    if (whole.length > 0) return { problem: secretsProblem(loaded, whole) };
    const fleet = parseFleetConfig(loaded.raw);
    if (!Object.hasOwn(fleet.hosts, h))
      return { problem: `host: "${h}" is not in fleet:hosts of stack ${args.stack} (${loaded.source}); check --stack` };
    const secret = unreadableKeyFor(h, fleet, loaded.unreadableSecrets);
    if (secret)
      return {
        problem: secretsProblem(loaded, [secret], "give host: { address, user, privateKeyFile, … } in --config"),
      };
    return connectionFor(h, fleet);
  }
  const h = named as Raw | undefined;
  if (!h?.address || !h.privateKeyFile) throw new Error("host needs address and privateKeyFile");
  const port = Number(h.port ?? 22);
  const hostKey =
    h.hostKey ??
    hostKeyFromKnownHosts(fs.readFileSync(expand(h.knownHostsFile ?? "~/.ssh/known_hosts"), "utf8"), h.address, port);
  if (!hostKey) throw new Error(`no pinned host key for ${h.address}:${port} (hostKey or knownHostsFile)`);
  return {
    host: h.address,
    port,
    user: h.user ?? "root",
    privateKey: fs.readFileSync(expand(h.privateKeyFile), "utf8"),
    hostKey,
  };
}

/** The provider's inputs, as the component would build them. */
export function specOf(cfg: Raw, connection: SshConnection, password: string | undefined): BackupSpec {
  const pg = cfg["postgres"] as Raw | undefined;
  if (pg && !password) throw new Error("the database password comes from $FLEET_DB_PASSWORD (never from argv); set it");
  const spec: BackupSpec = {
    name: cfg["name"],
    connection,
    engine: cfg["engine"],
    ...(pg
      ? {
          postgres: {
            host: pg["host"],
            port: Number(pg["port"] ?? 5432),
            database: pg["database"],
            user: pg["user"],
            password: password ?? "",
          },
        }
      : {}),
    ...(cfg["sqlite"] ? { sqlite: { path: cfg["sqlite"]["path"] } } : {}),
    backupsDir: cfg["backupsDir"] ?? defaultBackupsDir(cfg["root"] ?? "/srv/fleet", cfg["name"]),
    keep: 0,
    keepDays: 0,
    protectReleases: [],
    verifyTables: cfg["verifyTables"] ?? [],
    releases: [],
    trigger: "",
    restore: "",
    stepTimeoutMs: 30 * 60_000,
    deleteBackupsOnDestroy: false,
  };
  const problems = checkBackupInputs(spec as unknown as Record<string, unknown>);
  if (problems.length) throw new Error(problems.map((p) => `${p.property}: ${p.reason}`).join("\n"));
  return spec;
}

async function main(argv: string[]): Promise<number> {
  const args = argsOrExit(parseCommandLine(SPEC, argv, process.env, process.cwd()));
  if (typeof args === "number") return args;
  const { list, yes } = args.flags;
  const id = args.positionals[0];
  if (!args.flags.config || (!id && !list) || (id && list)) {
    const problem = !args.flags.config
      ? "--config <file> is required"
      : id
        ? `give a backup id or --list, not both`
        : "give the backup id to restore, or --list";
    return argsOrExit(usageProblem(SPEC.name, problem));
  }
  const cfg = readYaml(path.resolve(args.cwd, args.flags.config));
  const connection = connectionOf(cfg, args);
  if ("problem" in connection) {
    console.error(`restore: ${connection.problem}`);
    return USAGE_EXIT;
  }
  const spec = specOf(cfg, connection, process.env["FLEET_DB_PASSWORD"]);
  if (list) {
    for (const e of (await listBackups(spec)) ?? []) {
      const counts = Object.entries(e.counts)
        .map(([t, n]) => `${t}=${n}`)
        .join(",");
      console.log(`${e.id}  ${e.time}  ${e.size} bytes  releases=${e.releases.join(",") || "-"}  ${counts}`);
    }
    return 0;
  }
  if (!yes) {
    console.error(
      `would restore ${id} into ${spec.engine} ${spec.postgres?.database ?? spec.sqlite?.path} via ${spec.connection.host} (a safety backup is taken first); add --yes to do it`,
    );
    return USAGE_EXIT;
  }
  const { record } = await restoreBackup(spec, id!);
  console.log(`restored ${record.id}; safety backup of the previous database: ${record.safetyBackupId}`);
  for (const [t, n] of Object.entries(record.counts)) console.log(`  ${t}: ${n} rows (as recorded at backup time)`);
  return 0;
}

// Run as a command (tsx, or its bundle from build/launch.js), not when a test imports it.
if (require.main === module || (globalThis as Record<string, unknown>)["fleetEntry"] === __filename) {
  main(process.argv.slice(2))
    .then(
      (code) => (process.exitCode = code),
      (err: Error) => {
        console.error(err.message);
        process.exitCode = isFleetError(err) && err.kind === "config" ? USAGE_EXIT : 1;
      },
    )
    .finally(() => closeAll());
}
