/**
 * One fault family's "stack": a DatabaseBackup of a PostgreSQL database on the db server and a
 * Service that it protects (`restoreOnRollback`), deployed as the engine orders them (backup
 * first; the service only if the backup succeeded), through Pulumi's dynamic-provider host.
 * The service has every phase: install (when requirements.txt changes), build, migrate (psql
 * against the db server, recording its release), switch, restart, health (with the version
 * check). Each user command passes its fault gate first (see inject.ts).
 *
 * What the assertions read comes from the servers themselves (docker exec, the app over HTTP,
 * psql on the db server), never from fleet's own answers.
 */
import { strict as assert } from "assert";
import * as path from "path";
import { shippedProvider } from "../../../providers/ship";
import { watchdogUnit } from "../../../commands/watchdog";
import { GitApp } from "../../support/git-app";
import { ProviderHost, SimulatedResource, secret, type Props } from "../../support/provider-host";
import { serviceInputs } from "../../support/service-inputs";
import type { PostgresServer } from "../../support/fleet";
import { sleep, type Server } from "./servers";

const PYAPP = path.resolve(__dirname, "..", "..", "fixtures", "apps", "pyapp");

const MIGRATION =
  "CREATE TABLE IF NOT EXISTS schema_migrations (release text PRIMARY KEY);\n" +
  "INSERT INTO schema_migrations VALUES (:'release') ON CONFLICT DO NOTHING;\n";

export interface StackOptions {
  /** Service name on the host (also names the database and the backup set). */
  readonly name: string;
  readonly server: Server;
  readonly db: Server;
  readonly pg: PostgresServer;
  readonly port: number;
  readonly root: string;
  readonly stepTimeoutMs?: number;
  readonly healthTimeout?: string;
  readonly connectTimeoutMs?: number;
  readonly minFreeDiskMb?: number;
  /** The service's account (default: the connection's user, root). */
  readonly runAs?: string;
  /** Shared entries (`shared:`), linked into each release. */
  readonly shared?: { readonly dirs: readonly string[]; readonly files: Readonly<Record<string, string>> };
}

/** What the server itself says, read without fleet. */
export interface Live {
  /** Release `current` points at ("" if none). */
  readonly current: string;
  /** The commit fleet recorded for that release (its root-owned mark; REVISION is the service user's file). */
  readonly revision: string;
  /** The release dir the unit's main process runs from (its cwd): the code that really runs. */
  readonly runningRelease: string;
  /** FLEET_RELEASE in the env file: what a restart of the unit would run as. */
  readonly envRelease: string;
  /** The release the running app reports on /api/version ("" if it does not answer). */
  readonly servedRelease: string;
  readonly servedCommit: string;
  /** `.lock/owner` if a lock dir exists, else undefined. */
  readonly lock: string | undefined;
  readonly active: string;
  /** The last release a confirmed gate passed (`verified` on the host). */
  readonly verified: string;
}

export class FaultStack {
  readonly app: GitApp;
  readonly service: SimulatedResource;
  readonly backup: SimulatedResource;
  private readonly role: string;
  private readonly password: string;
  private cell = "setup";

  constructor(
    private hostNow: ProviderHost,
    readonly o: StackOptions,
  ) {
    this.app = new GitApp(PYAPP);
    this.app.commit("deps and migrations", { "requirements.txt": "fleet-faults==1\n", "migrate.sql": MIGRATION });
    this.role = `faults_${o.name.replace(/[^a-z0-9]/g, "_")}`;
    this.password = `F-${o.name}-pw`;
    this.service = new SimulatedResource(hostNow, shippedProvider("service"), {
      name: o.name,
      additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
    });
    this.backup = new SimulatedResource(hostNow, shippedProvider("backup"), {
      name: `${o.name}-db`,
      additionalSecretOutputs: ["connection"],
    });
  }

  /** The provider host the stack's resources talk to (its "deployer"). */
  get host(): ProviderHost {
    return this.hostNow;
  }

  /** Later calls of both resources go to `host`; what they recorded stays. */
  rebind(host: ProviderHost): void {
    this.hostNow = host;
    this.service.rebind(host);
    this.backup.rebind(host);
  }

  get dir(): string {
    return `${this.o.root}/${this.o.name}`;
  }
  get backupsDir(): string {
    return `${this.o.root}/${this.o.name}-backups`;
  }

  /** Removes what an earlier run left (unit, files, database) and creates the database. */
  async prepare(): Promise<void> {
    const u = this.o.name;
    await this.o.server.sh(
      `/usr/bin/systemctl stop ${this.watchdogUnit} 2>/dev/null; systemctl disable --now ${u} 2>/dev/null; rm -f /etc/systemd/system/${u}.service; /usr/bin/systemctl daemon-reload; ` +
        `systemctl reset-failed ${u} 2>/dev/null; rm -rf ${this.dir} ${this.backupsDir}; true`,
    );
    await this.psql(
      `DROP DATABASE IF EXISTS ${this.role} WITH (FORCE); DROP ROLE IF EXISTS ${this.role}; ` +
        `CREATE ROLE ${this.role} LOGIN PASSWORD '${this.password}'; CREATE DATABASE ${this.role} OWNER ${this.role};`,
      "postgres",
    );
    await this.psql(
      `SET ROLE ${this.role}; CREATE TABLE schema_migrations (release text PRIMARY KEY); CREATE TABLE tasks (id int PRIMARY KEY, title text); INSERT INTO tasks VALUES (1, 'first');`,
    );
  }

  async dispose(): Promise<void> {
    await this.service.destroy().catch(() => undefined);
    await this.psql(
      `DROP DATABASE IF EXISTS ${this.role} WITH (FORCE); DROP ROLE IF EXISTS ${this.role};`,
      "postgres",
    ).catch(() => undefined);
    await this.o.server.exec(`rm -rf ${this.dir} ${this.backupsDir}`);
  }

  /** SQL as the postgres superuser on the db server. */
  psql(sql: string, database = this.role): Promise<string> {
    return this.o.db.sh(`cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d ${database}`, sql);
  }

  async migrations(): Promise<string[]> {
    return (await this.psql("SELECT release FROM schema_migrations ORDER BY release")).split("\n").filter(Boolean);
  }

  /** A new release for the next cell: `files` change in a new commit; the cell's tag changes the unit. */
  newRelease(cell: string, files: Record<string, string | null> = {}): string {
    this.cell = cell;
    return this.app.commit(`cell ${cell}`, { [`cells/${cell}.txt`]: `${cell}\n`, ...files });
  }

  serviceProps(): Props {
    const o = this.o;
    const connection = o.server.connection(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {});
    const base = serviceInputs({
      name: o.name,
      connection,
      root: o.root,
      source: { git: this.app.dir, ref: "main" },
      install: {
        run: "/usr/local/bin/fault-gate install && python3 -m venv --without-pip .venv && cp requirements.txt .venv/installed.txt",
        when: ["requirements.txt"],
      },
      build: "/usr/local/bin/fault-gate build && date +%s%N > build.txt",
      migrate:
        '/usr/local/bin/fault-gate migrate && echo "migrating $FLEET_RELEASE" > migrate.log && ' +
        'psql -X -q -v ON_ERROR_STOP=1 -v release="$FLEET_RELEASE" -f migrate.sql',
      // The cell's tag makes every cell's unit new: the switch then runs its daemon-reload.
      start: `/usr/local/bin/fault-gate start || exit 3; exec python3 app.py # ${this.cell}`,
      env: {
        APP_HOST: o.server.address,
        APP_PORT: String(o.port),
        PGHOST: o.pg.host,
        PGPORT: String(o.pg.port),
        PGUSER: this.role,
        PGDATABASE: this.role,
      },
      secretEnv: { PGPASSWORD: this.password },
      health: {
        url: `http://${o.server.address}:${o.port}/api/health`,
        version: { url: `http://${o.server.address}:${o.port}/api/version`, field: "commit" },
        timeout: o.healthTimeout ?? "8s",
        interval: "50ms",
      },
      keepReleases: 3,
      breakStaleLock: true,
      minFreeDiskMb: o.minFreeDiskMb ?? 16,
      ...(o.runAs ? { runAs: o.runAs } : {}),
      ...(o.shared ? { shared: o.shared } : {}),
    });
    return { ...base, stepTimeoutMs: o.stepTimeoutMs ?? 60_000 };
  }

  private backupSpec(release: string): Props {
    const o = this.o;
    return {
      name: `${o.name}-db`,
      connection: o.server.connection(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      engine: "postgres",
      postgres: { host: o.pg.host, port: o.pg.port, database: this.role, user: this.role, password: this.password },
      backupsDir: this.backupsDir,
      keep: 3,
      keepDays: 0,
      protectReleases: [],
      verifyTables: ["schema_migrations"],
      releases: [release],
      trigger: "",
      restore: "",
      stepTimeoutMs: o.stepTimeoutMs ?? 60_000,
      deleteBackupsOnDestroy: true,
    };
  }

  /**
   * One `pulumi up` of the stack: the backup set (for the release about to deploy), then the
   * service with `restoreOnRollback` pointing at that backup. A failed backup stops the service.
   */
  async up(): Promise<Props> {
    const inputs = this.serviceProps();
    const spec = this.backupSpec(String(inputs["releaseId"]));
    const taken = await this.backup.up({
      ...spec,
      connection: secret(spec["connection"]),
      postgres: { ...(spec["postgres"] as Props), password: secret(this.password) },
    });
    const backupId = String(taken.state!.plainOutputs["latestId"]);
    const { state } = await this.service.up({ ...inputs, restoreOnRollback: secret({ backup: spec, backupId }) });
    return state!.plainOutputs;
  }

  /** `pulumi refresh` of the service as a Read RPC, without recording it (the next up() stays plain). */
  async read(): Promise<Props | undefined> {
    const s = this.service.state;
    if (!s) return undefined;
    const r = await this.host.read(s.id, s.outputs, s.inputs, this.service.urn);
    return r.id ? r.outputs : undefined;
  }

  /** The recorded (engine) state's release. */
  recordedRelease(): string {
    return String(this.service.state?.plainOutputs["releaseId"] ?? "");
  }

  async served(): Promise<{ release: string; commit: string } | undefined> {
    try {
      const res = await fetch(`http://${this.o.server.address}:${this.o.port}/api/version`, {
        signal: AbortSignal.timeout(1500),
      });
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { release?: string; commit?: string };
      return { release: body.release ?? "", commit: body.commit ?? "" };
    } catch {
      return undefined;
    }
  }

  /** Waits until the app answers /api/version (a restart window), or `timeoutMs`. */
  async servedWithin(timeoutMs: number): Promise<{ release: string; commit: string } | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.served();
      if (s || Date.now() > deadline) return s;
      await sleep(100);
    }
  }

  async live(): Promise<Live> {
    const d = this.dir;
    const out = await this.o.server.sh(
      `cur=$(readlink ${d}/current 2>/dev/null || true); echo "current=\${cur##*/}"; ` +
        // The release tree is the service's account's: root never reads a file in it that may be a
        // link (security issue 29); fleet's own record of the commit is root's, in .marks/.
        `m=${d}/.marks/\${cur##*/}/commit; echo "revision=$([ -n "$cur" ] && [ -f "$m" ] && [ ! -L "$m" ] && head -n 1 "$m")"; ` +
        `echo "verified=$(cat ${d}/verified 2>/dev/null)"; ` +
        `echo "env=$(sed -n 's/^FLEET_RELEASE="\\(.*\\)"$/\\1/p' ${d}/shared/env 2>/dev/null)"; ` +
        `echo "active=$(/usr/bin/systemctl is-active ${this.o.name} 2>/dev/null)"; ` +
        `pid=$(/usr/bin/systemctl show -p MainPID --value ${this.o.name} 2>/dev/null); ` +
        // Root without CAP_SYS_PTRACE (a container's) cannot read another account's /proc/<pid>/cwd: its owner can.
        `run=$(readlink /proc/\${pid:-0}/cwd 2>/dev/null || ${
          this.o.runAs ? `runuser -u ${this.o.runAs} -- readlink /proc/\${pid:-0}/cwd 2>/dev/null || ` : ""
        }true); echo "running=\${run##*/}"; ` +
        `if [ -d ${d}/.lock ]; then echo lock=1; sed 's/^/owner./' ${d}/.lock/owner 2>/dev/null; fi; true`,
    );
    const facts: Record<string, string> = {};
    const owner: string[] = [];
    for (const line of out.split("\n")) {
      const eq = line.indexOf("=");
      if (eq < 0) continue;
      if (line.startsWith("owner.")) owner.push(line.slice("owner.".length));
      else facts[line.slice(0, eq)] = line.slice(eq + 1);
    }
    const served = await this.served();
    return {
      current: facts["current"] ?? "",
      runningRelease: facts["running"] ?? "",
      revision: facts["revision"] ?? "",
      envRelease: facts["env"] ?? "",
      servedRelease: served?.release ?? "",
      servedCommit: served?.commit ?? "",
      lock: facts["lock"] === "1" ? owner.join("\n") : undefined,
      verified: facts["verified"] ?? "",
      active: facts["active"] ?? "",
    };
  }

  /** What deploy.log's last line says (the audit trail). */
  async lastAudit(): Promise<string> {
    return (await this.o.server.exec(`tail -1 ${this.dir}/deploy.log 2>/dev/null`)).stdout.trim();
  }

  /** The service's watchdog unit (commands/watchdog.ts). */
  get watchdogUnit(): string {
    return watchdogUnit({ unitName: String(this.serviceProps()["unitName"]) });
  }

  /** True while the host's watchdog for this service runs. */
  async watchdogActive(): Promise<boolean> {
    return (await this.o.server.exec(`/usr/bin/systemctl is-active --quiet ${this.watchdogUnit}`)).code === 0;
  }

  /**
   * What the host shows about its watchdog (for a failed assertion): `current`, deploy.log's tail,
   * the lock, and the watchdog unit's status and journal.
   */
  async watchdogReport(): Promise<string> {
    const unit = this.watchdogUnit;
    const r = await this.o.server.exec(
      `cd ${this.dir} || exit 0; echo "current=$(readlink current)"; echo "verified=$(cat verified 2>/dev/null)"; ` +
        `echo "--- deploy.log (tail)"; tail -n 4 deploy.log; echo "--- .lock"; ls -A .lock 2>&1; cat .lock/owner 2>&1; ` +
        `echo "decided by: $(cat .lock/decided/by 2>&1)"; echo "--- systemctl status ${unit}"; ` +
        `/usr/bin/systemctl status ${unit} --no-pager 2>&1 | head -n 12; echo "--- journalctl -u ${unit}"; ` +
        `journalctl -u ${unit} --no-pager -n 20 2>&1; echo "--- .watchdog.out"; tail -n 20 .watchdog.out 2>&1`,
    );
    return r.stdout.trim();
  }

  /** deploy.log's lines, oldest first. */
  async audit(): Promise<string[]> {
    return (await this.o.server.exec(`cat ${this.dir}/deploy.log 2>/dev/null`)).stdout.split("\n").filter(Boolean);
  }
}

/** A time the app answered nothing (ms since the epoch): from the first unanswered probe to the next answered one. */
export interface Gap {
  readonly from: number;
  readonly to: number;
}

/**
 * Samples what the app serves (every 100 ms) while a cell runs: which releases it served, and
 * when it served nothing, outside the excused windows (a server that is down on purpose).
 */
export class ServeSampler {
  private running = true;
  private readonly seen = new Set<string>();
  private gapStart: number | undefined;
  private readonly closed: Gap[] = [];
  private excused = false;
  private readonly loop: Promise<void>;

  constructor(private readonly stack: FaultStack) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      // The probe's send time: a probe of a hung server takes its whole timeout to fail.
      const sent = Date.now();
      const s = await this.stack.served();
      if (s) {
        this.seen.add(s.release);
        if (this.gapStart !== undefined) this.closed.push({ from: this.gapStart, to: sent });
        this.gapStart = undefined;
      } else if (!this.excused && this.gapStart === undefined) {
        this.gapStart = sent;
      }
      await sleep(100);
    }
  }

  /** While excused (the server is down on purpose), serving nothing does not count. */
  excuse(on: boolean): void {
    this.excused = on;
    this.gapStart = undefined;
  }

  /** What was sampled so far (the sampler goes on). */
  snapshot(): { releases: string[]; gaps: Gap[] } {
    const open = this.gapStart !== undefined ? [{ from: this.gapStart, to: Date.now() }] : [];
    return { releases: [...this.seen].sort(), gaps: [...this.closed, ...open] };
  }

  /** Idempotent: a failed cell stops its sampler in a finally. */
  async stop(): Promise<{ releases: string[]; gaps: Gap[]; longestGapMs: number }> {
    this.running = false;
    await this.loop;
    const gaps = [...this.closed, ...(this.gapStart !== undefined ? [{ from: this.gapStart, to: Date.now() }] : [])];
    return {
      releases: [...this.seen].sort(),
      gaps,
      longestGapMs: Math.max(0, ...gaps.map((g) => g.to - g.from)),
    };
  }
}

export { assert };
