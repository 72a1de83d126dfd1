import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import { load } from "js-yaml";
import type { AddressInfo } from "net";
import * as path from "path";
import type { SshConnection } from "../../transport/connection";
import { parseFleetConfig } from "../../config/schema";
import { restoreBackupOf } from "../../config/restore-on-rollback";
import { connectionFor, postgres, sh, sshRun, superuserPsql, type PostgresServer } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");

/**
 * Seed 004: Server Agent vNext (a service + PostgreSQL on a VPS), as Pulumi.prod.yaml expresses
 * it (`server-agent` with `migrate`, the `server-agent-db` backup set, `fleet:notify`), walked on
 * real servers through Pulumi's dynamic-provider host: the service on web1, its database on the
 * db server (127.0.0.14), dumped from web1 over the network before each deploy. The database
 * password reaches the migration only through the service's secretEnv (PGPASSWORD). Outcomes
 * are announced to a webhook receiver on loopback. The service and its backup set are stack
 * config, parsed by the schema as index.ts does; `restoreOnRollback` is Pulumi.prod.yaml's own
 * (server-agent's), and the set it restores is the one config says (the set protecting it).
 *
 * Not here (see test/scenarios/README.md): the Docker image source (test/real/image-docker.test.ts),
 * the pre-deploy checks and exit codes (test/unit/deploy-command.test.ts, test/real/outcome.test.ts).
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-scenarios";
const HOST = "web1";
const NAME = "sc-agent";
const PORT = 18820;
const TAG = randomBytes(3).toString("hex");
const ROLE = `sc_agent_${TAG}`;
const DB = ROLE;
const PASSWORD = `ScAgent-${TAG}-S3cret`;
const BACKUPS = `${ROOT}/${NAME}-backups`;

const psql = (sql: string, database = DB): Promise<string> => superuserPsql(sql, database);

/** Pulumi.prod.yaml's Server Agent service entry. */
function prodServerAgent(): Record<string, unknown> {
  const stack = load(fs.readFileSync(path.resolve(__dirname, "..", "..", "Pulumi.prod.yaml"), "utf8")) as {
    config: Record<string, Record<string, Record<string, unknown>>>;
  };
  return stack.config["fleet:services"]!["server-agent"]!;
}

/** A webhook receiver on loopback that records what it is sent. */
async function receiver(): Promise<{ url: string; received: Record<string, unknown>[]; close: () => Promise<void> }> {
  const received: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString("utf8")));
    req.on("end", () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => new Promise((r) => server.close(() => r())) };
}

/** The migration each commit carries: idempotent, recording the release that ran it. */
const MIGRATION_1 =
  "CREATE TABLE IF NOT EXISTS schema_migrations (release text PRIMARY KEY);\n" +
  "INSERT INTO schema_migrations VALUES (:'release') ON CONFLICT DO NOTHING;\n";
const MIGRATION_2 =
  MIGRATION_1 +
  "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS priority int;\n" +
  "UPDATE tasks SET title = title || ' (migrated)';\n";

describe("scenario Server Agent: PostgreSQL backup, migrations, health, rollback with restore, notifications (real servers web1 + db)", function () {
  this.timeout(180_000);
  let connection: SshConnection;
  let pg: PostgresServer;
  before(() => {
    connection = connectionFor(HOST);
    pg = postgres();
  });
  const app = new GitApp(PYAPP);
  let host: ProviderHost;
  let service: SimulatedResource;
  let backup: SimulatedResource;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let good = "";

  /** The stack config of this scenario, validated by the schema as index.ts validates it. */
  const stack = () =>
    parseFleetConfig({
      hosts: {
        [HOST]: {
          address: connection.host,
          user: connection.user,
          privateKeyFile: "/unused",
          hostKey: "ssh-ed25519 AAAA",
        },
      },
      services: {
        [NAME]: {
          host: HOST,
          source: { git: app.dir, ref: "main" },
          start: "python3 app.py",
          migrate: 'psql -X -q -v ON_ERROR_STOP=1 -v release="$FLEET_RELEASE" -f migrate.sql',
          env: { APP_HOST: connection.host, APP_PORT: String(PORT), PGHOST: pg.host, PGUSER: ROLE, PGDATABASE: DB },
          health: {
            url: `http://${connection.host}:${PORT}/api/health`,
            bodyContains: '"status": "ok"',
            version: { url: `http://${connection.host}:${PORT}/api/version`, field: "commit" },
            timeout: "6s",
            interval: "50ms",
          },
          keepReleases: 3,
          root: ROOT,
          restoreOnRollback: prodServerAgent()["restoreOnRollback"],
        },
      },
      backups: {
        [`${NAME}-db`]: {
          host: HOST,
          postgres: { host: pg.host, port: pg.port, database: DB, user: ROLE },
          protects: [NAME],
          keep: 7,
          keepDays: 7,
          verifyTables: ["tasks"],
        },
      },
      secretEnv: { [NAME]: { PGPASSWORD: PASSWORD } },
      dbPasswords: { [`${NAME}-db`]: PASSWORD },
    });
  /** The backup set a rollback of the service restores, as index.ts finds it. */
  const restoreFrom = () => restoreBackupOf(stack(), NAME);

  const backupSpec = (release: string) => {
    const cfg = stack();
    const db = cfg.backups[`${NAME}-db`]!;
    return {
      name: `${NAME}-db`,
      connection,
      engine: "postgres",
      postgres: { ...db.postgres!, password: cfg.dbPasswords[`${NAME}-db`]! },
      backupsDir: BACKUPS,
      keep: db.keep,
      keepDays: db.keepDays,
      protectReleases: [] as string[],
      verifyTables: db.verifyTables,
      releases: [release],
      trigger: "",
      restore: "",
      stepTimeoutMs: 60_000,
      deleteBackupsOnDestroy: true,
    };
  };

  const serviceCase = (): Props => {
    const cfg = stack();
    const agent = cfg.services[NAME]!;
    return serviceInputs({
      name: NAME,
      connection,
      root: agent.root,
      source: { git: agent.source.git!, ref: agent.source.ref },
      start: agent.start,
      migrate: agent.migrate,
      env: agent.env,
      secretEnv: cfg.secretEnv[NAME],
      health: agent.health,
      keepReleases: agent.keepReleases,
    });
  };

  /**
   * One `pulumi up` as the engine orders it: the backup set (releases = the release about to
   * deploy), then the service with, as config says (`restoreOnRollback`), the restore point of
   * that backup.
   */
  async function deploy(): Promise<{ backupId: string; run: Promise<Props> }> {
    const inputs = serviceCase();
    const spec = backupSpec(String(inputs["releaseId"]));
    const taken = await backup.up({
      ...spec,
      connection: secret(spec.connection),
      postgres: { ...spec.postgres, password: secret(PASSWORD) },
    });
    const backupId = String(taken.state!.plainOutputs["latestId"]);
    const run = service
      .up({
        ...inputs,
        ...(restoreFrom() === spec.name ? { restoreOnRollback: secret({ backup: spec, backupId }) } : {}),
        notify: secret([{ kind: "webhook", url: hook.url }]),
      })
      .then((r) => r.state!.plainOutputs);
    return { backupId, run };
  }

  const served = async () =>
    ((await (await fetch(`http://${connection.host}:${PORT}/api/version`)).json()) as { commit: string }).commit;
  const titles = () => psql("SELECT title FROM tasks ORDER BY id");
  const migrations = () => psql("SELECT release FROM schema_migrations ORDER BY release");
  const priorityColumn = () =>
    psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'priority'");

  before(async function () {
    this.timeout(60_000);
    await sh(
      HOST,
      `systemctl disable --now ${NAME} 2>/dev/null; rm -f /etc/systemd/system/${NAME}.service; systemctl daemon-reload; ` +
        `rm -rf ${ROOT}/${NAME} ${BACKUPS}`,
    );
    await psql(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'; CREATE DATABASE ${DB} OWNER ${ROLE};`, "postgres");
    await psql(
      `SET ROLE ${ROLE}; CREATE TABLE tasks (id int PRIMARY KEY, title text);
       INSERT INTO tasks VALUES (1, 'first task'), (2, 'second task');`,
    );
    app.commit("migrations", { "migrate.sql": MIGRATION_1 });
    hook = await receiver();
    host = await ProviderHost.start();
    service = new SimulatedResource(host, serviceProvider, {
      name: NAME,
      additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
    });
    backup = new SimulatedResource(host, backupProvider, {
      name: `${NAME}-db`,
      additionalSecretOutputs: ["connection"],
    });
  });

  after(async function () {
    this.timeout(60_000);
    await service?.destroy().catch(() => undefined);
    await backup?.destroy().catch(() => undefined);
    await host?.stop();
    await hook?.close();
    await psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE); DROP ROLE IF EXISTS ${ROLE};`, "postgres").catch((e) =>
      console.error(`cleanup: ${(e as Error).message}`),
    );
    await sshRun(HOST, `rm -rf ${BACKUPS}`);
  });

  it("first deploy: a verified 0600 pg_dump from web1, the migration with the secret password, start, health, a success notification", async () => {
    const { backupId, run } = await deploy();
    const state = await run;
    good = app.head();
    const release = good.slice(0, 12);
    assert.match(backupId, new RegExp(`^${NAME}-db-\\d{8}T\\d{6}Z-${release}$`));
    assert.equal(await sh(HOST, `stat -c %a ${BACKUPS}/${backupId}.dump`), "600");
    assert.match(await sh(HOST, `pg_restore --list ${BACKUPS}/${backupId}.dump`), /TABLE DATA public tasks/);
    assert.match(await sh(HOST, `grep '^${backupId} ' ${BACKUPS}/manifest`), /tasks=2$/);
    assert.equal(await migrations(), release, "the migration ran with FLEET_RELEASE of the new release");
    assert.equal(await served(), good);
    assert.equal(state["releaseId"], release);
    const ok = hook.received.find((r) => r["event"] === "success");
    assert.ok(ok, JSON.stringify(hook.received));
    assert.equal(ok["service"], NAME);
    assert.equal(ok["to"], release);
    assert.ok(!service.plainStateJson().includes(PASSWORD), "the password is secret in state");
    assert.ok(!(await sh(HOST, `cat ${ROOT}/${NAME}/deploy.log`)).includes(PASSWORD), "and in no log line");
  });

  it("a migration that fails: nothing switched, the old release serves, a failure notification", async () => {
    app.commit("broken migration", { "migrate.sql": MIGRATION_1 + "ALTER TABLE nope ADD COLUMN x int;\n" });
    const { run } = await deploy();
    await assert.rejects(run, (err: Error) => {
      assert.match(err.message, /relation "nope" does not exist/);
      assert.match(err.message, /The migration failed: whatever it applied before failing stays applied/);
      return true;
    });
    assert.equal(await served(), good);
    assert.equal(
      (await migrations()).split("\n").length,
      2,
      "its statements before the error stay applied (no restore)",
    );
    assert.equal(await titles(), "first task\nsecond task");
    const failed = hook.received.find((r) => r["event"] === "failure");
    assert.ok(failed, JSON.stringify(hook.received.map((r) => r["event"])));
  });

  it("a migration, then a failing health gate: automatic rollback and the pre-deploy backup restored; a rollback notification", async () => {
    assert.equal(restoreFrom(), `${NAME}-db`, "config: restoreOnRollback restores the set protecting the service");
    const recorded = await migrations();
    const bad = app.commit("migrate then break", { "migrate.sql": MIGRATION_2, "mode.txt": "unhealthy\n" });
    const { backupId, run } = await deploy();
    await assert.rejects(run, (err: Error) => {
      assert.match(err.message, new RegExp(`release ${bad.slice(0, 12)} .* failed its health gate`));
      assert.match(err.message, /Rolled back automatically/);
      assert.match(err.message, new RegExp(`The database was restored from the pre-deploy backup ${backupId}`));
      return true;
    });
    assert.equal(await served(), good, "the old commit serves");
    assert.equal(await titles(), "first task\nsecond task", "the migrated rows are back as before");
    assert.equal(await priorityColumn(), "0", "the migrated column is gone");
    assert.equal(await migrations(), recorded, "this release's migration record is gone with the restore");
    const rolled = hook.received.find((r) => r["event"] === "rollback");
    assert.ok(rolled, JSON.stringify(hook.received.map((r) => r["event"])));
    assert.equal(rolled["from"], good.slice(0, 12));
    assert.match(String(rolled["message"]), /Rolled back automatically/);
  });

  it("the fixed release migrates and serves; the migration stays applied", async () => {
    const fixed = app.commit("fix", { "mode.txt": null });
    const { run } = await deploy();
    await run;
    assert.equal(await served(), fixed);
    assert.equal(await priorityColumn(), "1");
    assert.equal(await titles(), "first task (migrated)\nsecond task (migrated)");
    assert.ok((await migrations()).includes(fixed.slice(0, 12)));
    assert.equal(hook.received.filter((r) => r["event"] === "success").length, 2);
  });

  it("destroy removes the service and its backups on web1", async () => {
    await service.destroy();
    await backup.destroy();
    assert.equal(await sh(HOST, `test -e ${ROOT}/${NAME} && echo yes || echo no`), "no");
    assert.equal(await sh(HOST, `ls ${BACKUPS} 2>/dev/null | grep -c dump || true`), "0");
  });
});
