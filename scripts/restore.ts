/**
 * `npm run restore -- <backup-id> --config <file> --yes` (issue #5): restores a DatabaseBackup
 * backup by hand, through the same code the provider runs (providers/backup/operations.ts):
 * manifest + sha256 check, verification, a safety backup, the restore, the row-count check.
 * `--list` lists the verified backups instead. Thin on purpose: no logic of its own.
 *
 * The config file (YAML or JSON) names the host and the database:
 *   host: { address, port?, user, privateKeyFile, hostKey? , knownHostsFile? }
 *     or host: <name> with --stack Pulumi.<stack>.yaml (its fleet:hosts entry; privateKeyFile needed)
 *   name: appdb                    # the DatabaseBackup's name
 *   engine: postgres | sqlite
 *   postgres: { host, port?, database, user }   # password: $FLEET_DB_PASSWORD, never argv
 *   sqlite: { path }
 *   backupsDir?: …                 # default /srv/fleet/<name>/backups
 *   verifyTables?: [ … ]
 */
import * as fs from "fs";
import * as os from "os";
import * as yaml from "js-yaml";
import { defaultBackupsDir } from "../commands/backup";
import type { BackupSpec } from "../model/backup";
import { checkBackupInputs } from "../providers/backup/check";
import { listBackups, restoreBackup } from "../providers/backup/operations";
import type { SshConnection } from "../transport/connection";
import { hostKeyFromKnownHosts } from "../transport/known-hosts";
import { closeAll } from "../transport/ssh";

const USAGE = `usage: npm run restore -- <backup-id> --config <file> [--stack <Pulumi.stack.yaml>] --yes
       npm run restore -- --list --config <file> [--stack <Pulumi.stack.yaml>]`;

type Raw = Record<string, any>;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function readYaml(file: string): Raw {
  return (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as Raw;
}

function expand(file: string): string {
  return file.startsWith("~/") ? os.homedir() + file.slice(1) : file;
}

function connectionOf(cfg: Raw, stackFile: string | undefined): SshConnection {
  let h: Raw = cfg["host"];
  if (typeof h === "string") {
    if (!stackFile) throw new Error(`host: "${h}" names a stack host; give --stack <Pulumi.<stack>.yaml>`);
    h = readYaml(stackFile)["config"]?.["fleet:hosts"]?.[h];
    if (!h) throw new Error(`${stackFile}: no fleet:hosts.${String(cfg["host"])}`);
  }
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

async function main(args: string[]): Promise<number> {
  const configFile = flag(args, "--config");
  const id = args.find((a, i) => !a.startsWith("--") && !["--config", "--stack"].includes(args[i - 1] ?? ""));
  const list = args.includes("--list");
  if (!configFile || (!id && !list)) {
    console.error(USAGE);
    return 2;
  }
  const cfg = readYaml(configFile);
  const spec = specOf(cfg, connectionOf(cfg, flag(args, "--stack")), process.env["FLEET_DB_PASSWORD"]);
  if (list) {
    for (const e of (await listBackups(spec)) ?? []) {
      const counts = Object.entries(e.counts)
        .map(([t, n]) => `${t}=${n}`)
        .join(",");
      console.log(`${e.id}  ${e.time}  ${e.size} bytes  releases=${e.releases.join(",") || "-"}  ${counts}`);
    }
    return 0;
  }
  if (!args.includes("--yes")) {
    console.error(
      `would restore ${id} into ${spec.engine} ${spec.postgres?.database ?? spec.sqlite?.path} via ${spec.connection.host} (a safety backup is taken first); add --yes to do it`,
    );
    return 2;
  }
  const { record } = await restoreBackup(spec, id!);
  console.log(`restored ${record.id}; safety backup of the previous database: ${record.safetyBackupId}`);
  for (const [t, n] of Object.entries(record.counts)) console.log(`  ${t}: ${n} rows (as recorded at backup time)`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2))
    .then(
      (code) => (process.exitCode = code),
      (err: Error) => {
        console.error(err.message);
        process.exitCode = 1;
      },
    )
    .finally(() => closeAll());
}
