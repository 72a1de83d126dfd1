import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as path from "path";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");

/**
 * Seed 000: AETHER (a Python service with a SQLite database on a Raspberry Pi), as
 * Pulumi.prod.yaml expresses it (`aether-core` + the `aether-db` backup set), walked end to end
 * on a real server (web1) through Pulumi's dynamic-provider host. The engine's part is played by
 * the test: each deploy first updates the BackupSet with `releases` = the release about to
 * deploy (the Service depends on it), then the Service. Everything asserted is read back from web1.
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-scenarios";
const HOST = "web1";
const NAME = "sc-aether";
const PORT = 18801;
const DATA = `${ROOT}/${NAME}-data`;
const DB = `${DATA}/aether.db`;
const BACKUPS = `${ROOT}/${NAME}-backups`;
const COUNTER = `/tmp/fleet-scenarios-installs-${NAME}`;

async function sh(command: string): Promise<string> {
  const r = await sshRun(HOST, command);
  if (r.code !== 0) throw new Error(`ssh ${HOST} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function get(address: string, route: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://${address}:${PORT}${route}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The backup manifest's lines: `id sha256 size time releases counts`. */
async function manifest(): Promise<{ id: string; releases: string }[]> {
  const text = await sh(`cat ${BACKUPS}/manifest 2>/dev/null || true`);
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [id, , , , releases] = l.split(" ");
      return { id: id!, releases: releases! };
    });
}

describe("scenario AETHER: Python service from git + SQLite backup before each deploy (real server web1)", function () {
  this.timeout(180_000);
  let connection: SshConnection;
  before(() => (connection = connectionFor(HOST)));
  const app = new GitApp(PYAPP);
  let host: ProviderHost;
  let service: SimulatedResource;
  let backup: SimulatedResource;
  /** The service's outputs after each successful update, as that update's state records them. */
  const recorded: Props[] = [];
  const commits: string[] = [];

  const inputs = (over: Partial<ServiceCase> = {}): Props =>
    serviceInputs({
      name: NAME,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      install: {
        run: `python3 -m venv --without-pip .venv && cp requirements.txt .venv/installed.txt && echo run >> ${COUNTER}`,
        when: ["requirements.txt"],
      },
      start: ".venv/bin/python app.py",
      env: { APP_HOST: connection.host, APP_PORT: String(PORT), AETHER_DB: DB },
      health: {
        url: `http://${connection.host}:${PORT}/api/health`,
        version: { url: `http://${connection.host}:${PORT}/api/version`, field: "commit" },
        timeout: "8s",
        interval: "50ms",
      },
      keepReleases: 5,
      ...over,
    });

  const backupInputs = (release: string, over: Props = {}): Props => ({
    name: `${NAME}-db`,
    connection: secret(connection),
    engine: "sqlite",
    sqlite: { path: DB },
    backupsDir: BACKUPS,
    keep: 5,
    keepDays: 0,
    protectReleases: [],
    verifyTables: ["readings"],
    releases: [release],
    trigger: "",
    restore: "",
    stepTimeoutMs: 60_000,
    deleteBackupsOnDestroy: true,
    ...over,
  });

  /** One `pulumi up` as the engine orders it: the backup for the release about to deploy, then the service. */
  async function deploy(over: Partial<ServiceCase> = {}): Promise<{ backupId: string; state: Props }> {
    const svcInputs = inputs(over);
    const taken = await backup.up(backupInputs(String(svcInputs["releaseId"])));
    const { state } = await service.up(svcInputs);
    return { backupId: String(taken.state!.plainOutputs["latestId"]), state: state!.plainOutputs };
  }

  /** Keeps the outputs the update's state records (how the stack history remembers the release). */
  const record = (state: Props) => recorded.push(state);

  const served = async () => String((await get(connection.host, "/api/version")).body["commit"]);
  const installs = async () => Number(await sh(`cat ${COUNTER} 2>/dev/null | wc -l`));
  const rows = () => sh(`sqlite3 ${DB} 'select v from readings order by rowid'`);

  before(async function () {
    this.timeout(60_000);
    await sh(
      `systemctl disable --now ${NAME} 2>/dev/null; rm -f /etc/systemd/system/${NAME}.service; systemctl daemon-reload; ` +
        `rm -rf ${ROOT}/${NAME} ${DATA} ${BACKUPS} ${COUNTER} && mkdir -p ${DATA} && ` +
        `sqlite3 ${DB} "create table readings(v text); insert into readings values ('boot')"`,
    );
    app.commit("requirements", { "requirements.txt": "requests==2.31\n" });
    host = await ProviderHost.start();
    service = new SimulatedResource(host, serviceProvider, {
      name: NAME,
      additionalSecretOutputs: ["connection", "secretEnv"],
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
    await sshRun(HOST, `rm -rf ${DATA} ${BACKUPS} ${COUNTER}`);
  });

  it("first deploy: a verified 0600 backup for the release, then the release serves health and version = commit", async () => {
    commits.push(app.head());
    const release = commits[0]!.slice(0, 12);
    const { backupId, state } = await deploy();
    assert.match(backupId, new RegExp(`^${NAME}-db-\\d{8}T\\d{6}Z-${release}$`));
    assert.deepEqual(await manifest(), [{ id: backupId, releases: release }]);
    assert.equal(await sh(`stat -c %a $(ls ${BACKUPS}/${backupId}*)`), "600");
    assert.equal((await get(connection.host, "/api/health")).status, 200);
    assert.equal(await served(), commits[0]);
    assert.equal(state["releaseId"], release);
    assert.equal(await sh(`cat ${ROOT}/${NAME}/current/REVISION`), commits[0]);
    assert.equal(await sh(`systemctl is-active ${NAME}`), "active");
    assert.equal(await installs(), 1);
    record(state);
  });

  it("a change: a new backup first, then the new commit serves; the venv is reused (no install)", async () => {
    commits.push(app.commit("feature", { "feature.txt": "new\n" }));
    const { backupId, state } = await deploy();
    assert.equal(await served(), commits[1]);
    assert.equal(state["depsReinstalled"], false);
    assert.equal(await installs(), 1, "requirements.txt did not change: install must not run");
    assert.deepEqual(
      (await manifest()).map((l) => l.releases),
      [commits[0]!.slice(0, 12), commits[1]!.slice(0, 12)],
    );
    assert.match(backupId, new RegExp(`-${commits[1]!.slice(0, 12)}$`));
    record(state);
  });

  it("an unhealthy release is rolled back automatically: the old commit serves, after its backup was taken", async () => {
    const good = commits[1]!;
    const bad = app.commit("break health", { "mode.txt": "unhealthy\n" });
    const svcInputs = inputs();
    await backup.up(backupInputs(String(svcInputs["releaseId"])));
    await assert.rejects(service.up(svcInputs), (err: Error) => {
      assert.match(err.message, new RegExp(`release ${bad.slice(0, 12)} .* failed its health gate`));
      assert.match(err.message, new RegExp(`Rolled back automatically: ${good.slice(0, 12)} is serving and healthy`));
      return true;
    });
    assert.equal(await served(), good);
    assert.equal(await sh(`readlink ${ROOT}/${NAME}/current`), `releases/${good.slice(0, 12)}`);
    assert.match(
      await sh(`tail -1 ${ROOT}/${NAME}/deploy.log`),
      new RegExp(`${good.slice(0, 12)} -> ${bad.slice(0, 12)} rolled-back`),
    );
    assert.equal((await manifest()).at(-1)!.releases, bad.slice(0, 12), "the backup ran before the failed deploy");
    app.commit("fix", { "mode.txt": null });
  });

  // Reading the stack history and `npm run rollback` are the engine layer's (test/engine/rollback.test.ts,
  // history.test.ts): here, the pin update 1 recorded is re-applied.
  it("manual rollback to the first update's release: switch only (same inode, no install)", async () => {
    assert.deepEqual(
      recorded.map((o) => o["commit"]),
      [commits[0], commits[1]],
    );
    const pin = { releaseId: String(recorded[0]!["releaseId"]), commit: String(recorded[0]!["commit"]) };
    assert.equal(pin.releaseId, commits[0]!.slice(0, 12));
    assert.ok((recorded[1]!["retainedReleases"] as string[]).includes(pin.releaseId), "the host still keeps it");
    const file = `${ROOT}/${NAME}/releases/${pin.releaseId}/app.py`;
    const inode = await sh(`stat -c %i ${file}`);
    const installsBefore = await installs();
    const { state } = await deploy({ source: { git: app.dir, ref: pin.commit } });
    assert.equal(state["releaseId"], pin.releaseId);
    assert.equal(await served(), pin.commit);
    assert.equal(await sh(`stat -c %i ${file}`), inode, "the release was not uploaded again");
    assert.equal(await installs(), installsBefore, "nothing was installed");
  });

  it("manual rollback of the data: restore a retained backup (after a safety backup)", async () => {
    const first = (await manifest())[0]!.id;
    await sh(`sqlite3 ${DB} "insert into readings values ('after-deploy')"`);
    assert.equal(await rows(), "boot\nafter-deploy");
    const release = commits[0]!.slice(0, 12);
    const restored = await backup.up(backupInputs(release, { restore: first }));
    assert.equal(await rows(), "boot", "the data is as it was in the first backup");
    const safety = String((restored.state!.plainOutputs["lastRestore"] as Props)["safetyBackupId"]);
    assert.match(safety, new RegExp(`^${NAME}-db-\\d{8}T\\d{6}Z-pre-restore$`));
    await backup.up(backupInputs(release, { restore: "" }));
  });

  it("keep 5: after more deploys, 5 backups and 5 releases remain, the serving one among them", async () => {
    for (let i = 0; i < 4; i++) {
      const c = app.commit(`r${i}`, { "n.txt": `${i}\n` });
      await deploy();
      assert.equal(await served(), c);
    }
    const backups = await manifest();
    assert.equal(backups.length, 5, backups.map((b) => b.id).join(","));
    const dumps = (await sh(`ls ${BACKUPS} | grep -c '^${NAME}-db-' || true`)).trim();
    assert.equal(Number(dumps), 5, "5 backup files on disk");
    const releases = (await sh(`ls ${ROOT}/${NAME}/releases`)).split("\n");
    assert.equal(releases.length, 5, releases.join(","));
    assert.ok(releases.includes(app.head().slice(0, 12)));
  });

  it("destroy removes the unit, the service directory and the backups", async () => {
    await service.destroy();
    await backup.destroy();
    assert.equal(await sh(`test -e /etc/systemd/system/${NAME}.service && echo yes || echo no`), "no");
    assert.equal(await sh(`test -e ${ROOT}/${NAME} && echo yes || echo no`), "no");
    await assert.rejects(fetch(`http://${connection.host}:${PORT}/api/health`));
  });
});
