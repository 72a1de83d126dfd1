import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { execFileSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { connectionFor, sshRun } from "../support/fleet";
import { CheckFailedError, ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");

/**
 * The Service provider against real servers (systemd + sshd test hosts), always through
 * Pulumi's own dynamic-provider host: serialized as the SDK does, called over gRPC with the
 * engine's request shapes. What the tests assert is read back from the servers.
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const NODEAPP = path.resolve(__dirname, "..", "fixtures", "apps", "nodeapp");
const ROOT = "/srv/fleet-test";

let host: ProviderHost;
let nextPort = 18200;

/** Removes what earlier runs of this file left on the servers: fleet units and the test root. */
async function wipe(hostName: string): Promise<void> {
  await sh(
    hostName,
    `for f in /etc/systemd/system/*.service; do grep -qx '# Managed by fleet. Local edits are overwritten on deploy.' "$f" 2>/dev/null || continue; ` +
      `u=$(basename "$f" .service); systemctl disable --now "$u" 2>/dev/null || true; rm -f "$f"; done; ` +
      `systemctl daemon-reload; rm -rf ${ROOT} /tmp/fleet-test-installs-*`,
  );
}

before(async function () {
  this.timeout(60_000);
  await Promise.all(["web1", "web2", "web3"].map(wipe));
  host = await ProviderHost.start();
});
after(async () => {
  await host?.stop();
});

async function sh(hostName: string, command: string): Promise<string> {
  const r = await sshRun(hostName, command);
  if (r.code !== 0) throw new Error(`ssh ${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** What the app itself reports, fetched from the test machine (host networking, loopback). */
async function appGet(address: string, port: number, route: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${address}:${port}${route}`);
  return { status: res.status, body: await res.json() };
}

interface PyCase {
  readonly resource: SimulatedResource;
  readonly app: GitApp;
  readonly name: string;
  readonly hostName: string;
  readonly address: string;
  readonly port: number;
  readonly inputs: (overrides?: Partial<ServiceCase>) => Props;
  readonly installs: () => Promise<number>;
}

/** A Python (AETHER-like) service from a git repo, with a venv installed when requirements change. */
function pyService(hostName: string, name: string, extra: Partial<ServiceCase> = {}): PyCase {
  const app = new GitApp(PYAPP);
  app.commit("requirements", { "requirements.txt": "requests==2.31\n" });
  const connection = connectionFor(hostName);
  const port = nextPort++;
  const counter = `/tmp/fleet-test-installs-${name}`;
  const inputs = (overrides: Partial<ServiceCase> = {}) =>
    serviceInputs({
      name,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      install: {
        run: `python3 -m venv --without-pip .venv && cp requirements.txt .venv/installed.txt && echo run >> ${counter}`,
        when: ["requirements.txt"],
      },
      start: ".venv/bin/python app.py",
      env: { APP_HOST: connection.host, APP_PORT: String(port) },
      health: {
        url: `http://${connection.host}:${port}/api/health`,
        version: { url: `http://${connection.host}:${port}/api/version`, field: "commit" },
        timeout: "8s",
        interval: "50ms",
      },
      ...extra,
      ...overrides,
    });
  const resource = new SimulatedResource(host, serviceProvider, {
    name,
    additionalSecretOutputs: ["connection", "secretEnv"],
  });
  const installs = async () => {
    const out = await sh(hostName, `cat ${counter} 2>/dev/null | wc -l`);
    return Number(out);
  };
  return { resource, app, name, hostName, address: connection.host, port, inputs, installs };
}

async function servedCommit(c: PyCase): Promise<string> {
  return (await appGet(c.address, c.port, "/api/version")).body.commit;
}

describe("Service provider on real servers (through Pulumi's provider host)", function () {
  this.timeout(120_000);

  describe("the AETHER-like Python app", () => {
    let svc: PyCase;
    let first: string;

    before(() => {
      svc = pyService("web1", "aether");
    });
    after(async () => {
      await svc.resource.destroy().catch(() => undefined);
    });

    it("first deploy serves, and the app reports the deployed commit", async () => {
      first = svc.app.head();
      const { op, state } = await svc.resource.up(svc.inputs());
      assert.equal(op, "create");
      assert.equal(await servedCommit(svc), first);
      assert.equal(state!.plainOutputs["commit"], first);
      assert.equal(state!.plainOutputs["releaseId"], first.slice(0, 12));
      assert.equal(state!.plainOutputs["host"], "127.0.0.11");
      assert.equal(state!.plainOutputs["path"], `${ROOT}/aether/releases/${first.slice(0, 12)}`);
      assert.equal(state!.plainOutputs["depsReinstalled"], true);
      assert.match(String(state!.plainOutputs["deployedAt"]), /^\d{4}-\d\d-\d\dT/);
      assert.equal(await sh("web1", `cat ${ROOT}/aether/current/REVISION`), first);
      assert.equal(await sh("web1", `systemctl is-active aether`), "active");
      assert.equal(await sh("web1", `stat -c %a ${ROOT}/aether/shared/env`), "600");
      assert.equal(await svc.installs(), 1);
    });

    it("a new commit is a new release: deps reused (install did not run), commit switched", async () => {
      const second = svc.app.commit("feature", { "feature.txt": "new\n" });
      const preview = await svc.resource.preview(svc.inputs());
      assert.equal(preview.op, "update", "preview shows an update, not a replace");
      const { state } = await svc.resource.up(svc.inputs());
      assert.equal(await servedCommit(svc), second);
      assert.equal(state!.plainOutputs["depsReinstalled"], false);
      assert.equal(await svc.installs(), 1, "install must not run again");
      const venvTarget = await sh("web1", `readlink ${ROOT}/aether/current/.venv`);
      assert.match(venvTarget, new RegExp(`^${ROOT}/aether/deps/[0-9a-f]{16}/.venv$`));
    });

    it("a changed lockfile makes the install run once", async () => {
      const third = svc.app.commit("bump deps", { "requirements.txt": "requests==2.32\n" });
      const { state } = await svc.resource.up(svc.inputs());
      assert.equal(state!.plainOutputs["depsReinstalled"], true);
      assert.equal(await svc.installs(), 2);
      assert.equal(await servedCommit(svc), third);
      svc.app.commit("no dep change", { "other.txt": "x\n" });
      await svc.resource.up(svc.inputs());
      assert.equal(await svc.installs(), 2, "same lockfile: install must not run");
    });

    it("nothing changed: no update at all", async () => {
      const preview = await svc.resource.preview(svc.inputs());
      assert.equal(preview.op, "same");
      const before = await sh("web1", `wc -l < ${ROOT}/aether/deploy.log`);
      const { op } = await svc.resource.up(svc.inputs());
      assert.equal(op, "same");
      assert.equal(await sh("web1", `wc -l < ${ROOT}/aether/deploy.log`), before, "no deploy attempt was made");
    });

    it("an unhealthy release is rolled back by itself; the update fails with the evidence; state is unchanged", async () => {
      const good = svc.app.head();
      const stateBefore = svc.resource.state!.plainOutputs;
      const bad = svc.app.commit("break health", { "mode.txt": "unhealthy\n" });
      await assert.rejects(svc.resource.up(svc.inputs()), (err: Error) => {
        assert.match(err.message, new RegExp(`release ${bad.slice(0, 12)} .* failed its health gate`));
        assert.match(err.message, /did not answer 200 within 8000 ms; last: HTTP 500/);
        assert.match(err.message, /last response: HTTP 500 .*broken/);
        assert.match(err.message, /journal \(last 50 lines\):[\s\S]*mode=unhealthy/);
        assert.match(
          err.message,
          new RegExp(`Rolled back automatically: ${good.slice(0, 12)} is serving and healthy again`),
        );
        return true;
      });
      assert.equal(await servedCommit(svc), good, "the old commit is still served");
      assert.equal(
        svc.resource.state!.plainOutputs["releaseId"],
        stateBefore["releaseId"],
        "state keeps the previous release",
      );
      assert.equal(await sh("web1", `readlink ${ROOT}/aether/current`), `releases/${good.slice(0, 12)}`);
      assert.match(
        await sh("web1", `tail -1 ${ROOT}/aether/deploy.log`),
        new RegExp(`${good.slice(0, 12)} -> ${bad.slice(0, 12)} rolled-back`),
      );
    });

    it("a release that exits at start is caught fast and rolled back", async () => {
      const good = await servedCommit(svc);
      svc.app.commit("crash at start", { "mode.txt": "crash\n" });
      const started = Date.now();
      await assert.rejects(
        svc.resource.up(svc.inputs()),
        /the service exited during the health check[\s\S]*crashing at start on purpose/,
      );
      assert.ok(Date.now() - started < 8000, "an exit is detected before the health timeout");
      assert.equal(await servedCommit(svc), good);
      svc.app.commit("fix", { "mode.txt": null });
    });

    it("a failing install never switches, and says which step failed with its exit code and output", async () => {
      const good = await servedCommit(svc);
      svc.app.commit("broken lockfile", { "requirements.txt": "this-will-fail\n" });
      const failing = svc.inputs({
        install: { run: "echo resolving $(cat requirements.txt) >&2; exit 3", when: ["requirements.txt"] },
      });
      await assert.rejects(svc.resource.up(failing), (err: Error) => {
        assert.match(err.message, /step "install" failed: exit code 3/);
        assert.match(err.message, /resolving this-will-fail/);
        assert.match(err.message, /was not touched/);
        return true;
      });
      assert.equal(await servedCommit(svc), good);
      assert.equal(
        await sh("web1", `test -d ${ROOT}/aether/.lock && echo held || echo free`),
        "free",
        "the lock is released",
      );
    });

    it("a failing build never switches", async () => {
      const good = await servedCommit(svc);
      svc.app.commit("restore lockfile", { "requirements.txt": "requests==2.32\n" });
      await assert.rejects(
        svc.resource.up(svc.inputs({ build: "echo compiling; echo 'syntax error' >&2; exit 2" })),
        (err: Error) => {
          assert.match(err.message, /step "build and switch" failed: exit code 2/);
          assert.match(err.message, /syntax error/);
          return true;
        },
      );
      assert.equal(await servedCommit(svc), good);
    });

    it("redeploying a retained release only switches: no upload, no install", async () => {
      await svc.resource.up(svc.inputs());
      const latest = svc.app.head();
      const target = first.slice(0, 12);
      const inodeBefore = await sh("web1", `stat -c %i ${ROOT}/aether/releases/${target}/app.py`);
      const installsBefore = await svc.installs();
      svc.app.git("checkout", "-q", first);
      const started = Date.now();
      const { state } = await svc.resource.up(svc.inputs({ source: { git: svc.app.dir, ref: first } }));
      const took = Date.now() - started;
      svc.app.git("checkout", "-q", "main");
      assert.equal(await servedCommit(svc), first);
      assert.equal(state!.plainOutputs["releaseId"], target);
      assert.equal(
        await sh("web1", `stat -c %i ${ROOT}/aether/releases/${target}/app.py`),
        inodeBefore,
        "the release was not uploaded again",
      );
      assert.equal(await svc.installs(), installsBefore, "nothing was installed");
      console.log(`      (switch to a retained release took ${took} ms)`);
      svc.app.git("checkout", "-q", "main");
      assert.notEqual(latest, first);
    });

    it("retention keeps keepReleases, never the serving one or the rollback target", async () => {
      const small = svc.inputs({ keepReleases: 2 });
      for (let i = 0; i < 3; i++) {
        svc.app.commit(`r${i}`, { "n.txt": `${i}\n` });
        await svc.resource.up(svc.inputs({ keepReleases: 2 }));
      }
      void small;
      const releases = (await sh("web1", `ls ${ROOT}/aether/releases`)).split("\n").sort();
      assert.equal(releases.length, 2, releases.join(","));
      const current = (await sh("web1", `readlink ${ROOT}/aether/current`)).replace("releases/", "");
      assert.ok(releases.includes(current));
      assert.deepEqual(svc.resource.state!.plainOutputs["retainedReleases"], releases);
      const depsSets = (await sh("web1", `ls ${ROOT}/aether/deps`)).split("\n");
      assert.equal(depsSets.length, 1, "deps sets no retained release uses are gone");
    });

    it("refresh reports a manual change of current, and the next deploy puts the release back", async () => {
      const releases = (await sh("web1", `ls ${ROOT}/aether/releases`)).split("\n");
      const deployed = svc.resource.state!.plainOutputs["releaseId"] as string;
      const other = releases.find((r) => r !== deployed)!;
      await sh("web1", `ln -sfn releases/${other} ${ROOT}/aether/current && systemctl restart aether`);
      const refreshed = await svc.resource.refresh();
      // Deployed stays the last release a confirmed gate passed; what `current` points at is live.
      assert.equal(refreshed!.plainOutputs["releaseId"], deployed);
      assert.equal((refreshed!.plainOutputs["live"] as any).release, other);
      assert.equal((refreshed!.plainOutputs["live"] as any).active, "active");
      const preview = await svc.resource.preview(svc.inputs({ keepReleases: 2 }));
      assert.equal(preview.op, "update", "drift shows as an update");
      await svc.resource.up(svc.inputs({ keepReleases: 2 }));
      assert.equal(await sh("web1", `readlink ${ROOT}/aether/current`), `releases/${deployed}`);
    });

    it("delete stops and removes the unit and the service directory", async () => {
      await svc.resource.destroy();
      assert.equal((await sshRun("web1", "systemctl is-active aether")).stdout.trim(), "inactive");
      assert.equal(await sh("web1", `test -e /etc/systemd/system/aether.service && echo yes || echo no`), "no");
      assert.equal(await sh("web1", `test -e ${ROOT}/aether && echo yes || echo no`), "no");
      await assert.rejects(fetch(`http://127.0.0.11:${svc.port}/api/health`));
    });
  });

  describe("migrations", () => {
    it("run with the new release's environment before the switch; a failed one leaves the old release serving", async () => {
      const db = `${ROOT}/migrating-data.db`;
      const svc = pyService("web2", "migrating", {
        migrate: `sqlite3 "$APP_DB" "create table if not exists m(release text); insert into m values ('$FLEET_RELEASE')"`,
      });
      const inputs = (over: Partial<ServiceCase> = {}) => {
        const i = svc.inputs(over);
        return { ...i, env: { ...(i["env"] as object), APP_DB: db } };
      };
      await sh("web2", `mkdir -p ${ROOT} && rm -f ${db}`);
      const { state } = await svc.resource.up(inputs());
      const first = state!.plainOutputs["releaseId"] as string;
      assert.equal(
        await sh("web2", `sqlite3 ${db} 'select release from m'`),
        first,
        "migrated with FLEET_RELEASE of the new release",
      );

      const good = await servedCommit(svc);
      svc.app.commit("bad migration", { "x.txt": "1\n" });
      await assert.rejects(
        svc.resource.up(inputs({ migrate: "echo 'ALTER TABLE nope' >&2; exit 5" })),
        (err: Error) => {
          assert.match(err.message, /exit code 5/);
          assert.match(err.message, /ALTER TABLE nope/);
          assert.match(err.message, /The migration failed: whatever it applied before failing stays applied/);
          return true;
        },
      );
      assert.equal(await servedCommit(svc), good, "the old release still serves");

      // A migration that succeeds, then a failed health gate: the code rolls back, the message says the DB did not.
      svc.app.commit("migrate then break", { "mode.txt": "unhealthy\n" });
      await assert.rejects(
        svc.resource.up(inputs()),
        /Rolled back automatically: .* The migrations \S+ ran .* stay applied: the database was not rolled back/,
      );
      assert.equal(await servedCommit(svc), good);
      await svc.resource.destroy();
      await sh("web2", `rm -f ${db}`);
    });
  });

  describe("restoreOnRollback", () => {
    it("a rollback after a migration restores the pre-deploy backup, and says so", async () => {
      const db = `${ROOT}/rr-data.db`;
      const backupsDir = `${ROOT}/rr-backups`;
      await sh(
        "web2",
        `mkdir -p ${ROOT} && rm -rf ${db} ${backupsDir} && sqlite3 ${db} "create table items(name text); insert into items values ('before')"`,
      );
      const backupSpec = {
        name: "rrdb",
        connection: connectionFor("web2"),
        engine: "sqlite",
        sqlite: { path: db },
        backupsDir,
        keep: 5,
        keepDays: 0,
        protectReleases: [],
        verifyTables: ["items"],
        releases: [] as string[],
        trigger: "",
        restore: "",
        stepTimeoutMs: 60_000,
        deleteBackupsOnDestroy: true,
      };
      const backup = new SimulatedResource(host, backupProvider, {
        name: "rrdb",
        additionalSecretOutputs: ["connection"],
      });
      const svc = pyService("web2", "rr", {
        migrate: `sqlite3 "$APP_DB" "insert into items values ('migrated-by-$FLEET_RELEASE')"`,
      });
      const withDb = (i: Props, point: unknown) => ({
        ...i,
        env: { ...(i["env"] as object), APP_DB: db },
        restoreOnRollback: secret(point),
      });

      // Deploy 1: a backup first (the engine orders it before the service), then the release.
      let taken = await backup.up({
        ...backupSpec,
        connection: secret(backupSpec.connection),
        releases: [svc.inputs()["releaseId"] as string],
      });
      let point = { backup: backupSpec, backupId: taken.state!.plainOutputs["latestId"] };
      await svc.resource.up(withDb(svc.inputs(), point));
      const good = await servedCommit(svc);
      const afterFirst = await sh("web2", `sqlite3 ${db} 'select name from items order by rowid'`);

      // Deploy 2: it migrates, then fails its health gate.
      svc.app.commit("migrate then break", { "mode.txt": "unhealthy\n" });
      taken = await backup.up({
        ...backupSpec,
        connection: secret(backupSpec.connection),
        releases: [svc.inputs()["releaseId"] as string],
      });
      point = { backup: backupSpec, backupId: taken.state!.plainOutputs["latestId"] };
      await assert.rejects(svc.resource.up(withDb(svc.inputs(), point)), (err: Error) => {
        assert.match(err.message, /Rolled back automatically/);
        assert.match(
          err.message,
          new RegExp(
            `The database was restored from the pre-deploy backup ${point.backupId}; the migrated state is kept in the safety backup \\S+`,
          ),
        );
        return true;
      });
      assert.equal(await servedCommit(svc), good);
      assert.equal(
        await sh("web2", `sqlite3 ${db} 'select name from items order by rowid'`),
        afterFirst,
        "the data is as it was before deploy 2",
      );
      await svc.resource.destroy();
      await backup.destroy();
      await sh("web2", `rm -f ${db}`);
    });
  });

  describe("locks", () => {
    it("a held lock refuses the deploy and names its holder; a stale one breaks only with the flag", async () => {
      const svc = pyService("web2", "locked");
      await svc.resource.up(svc.inputs());
      const first = svc.app.head();
      svc.app.commit("next", { "x.txt": "1\n" });
      const lock = `${ROOT}/locked/.lock`;
      await sh(
        "web2",
        `mkdir ${lock} && printf 'who=alice@laptop\\nmachine=laptop\\npid=4242\\nsince=2026-11-22T10:00:00Z\\nrelease=abc\\n' > ${lock}/owner`,
      );
      await assert.rejects(svc.resource.up(svc.inputs()), (err: Error) => {
        assert.match(err.message, /service "locked" is locked by another deploy/);
        assert.match(err.message, /who=alice@laptop/);
        assert.match(err.message, /since=2026-11-22T10:00:00Z/);
        return true;
      });
      // A lock from this machine whose process is gone: stale.
      await sh(
        "web2",
        `printf 'who=me\\nmachine=${os.hostname()}\\npid=999999\\nsince=x\\nrelease=y\\n' > ${lock}/owner`,
      );
      await assert.rejects(
        svc.resource.up(svc.inputs()),
        /That deploy is gone \(its process ended, or its connection died\): set breakStaleLock: true/,
      );
      assert.equal(await servedCommit(svc), first);
      await svc.resource.up(svc.inputs({ breakStaleLock: true }));
      assert.equal(await servedCommit(svc), svc.app.head());
      await svc.resource.destroy();
    });
  });

  describe("connections", () => {
    it("an unreachable host fails within the connect timeout, with a clear message", async () => {
      const svc = pyService("web1", "unreachable");
      const conn = { ...connectionFor("web1"), host: "127.0.0.99", connectTimeoutMs: 2000 };
      const started = Date.now();
      await assert.rejects(
        svc.resource.up(svc.inputs({ connection: conn })),
        /127\.0\.0\.99:22\] unreachable: gave up after \d+ attempt\(s\) in 2000 ms \(connect timeout\)/,
      );
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    });

    it("a host key mismatch is refused and shows the fingerprint it saw", async () => {
      const svc = pyService("web1", "mismatch");
      const conn = { ...connectionFor("web1"), hostKey: connectionFor("web2").hostKey };
      await assert.rejects(
        svc.resource.up(svc.inputs({ connection: conn })),
        /host key mismatch: the host presented SHA256:[A-Za-z0-9+/]+, but SHA256:[A-Za-z0-9+/]+ is pinned/,
      );
      assert.equal(
        await sh("web1", `test -e ${ROOT}/mismatch && echo yes || echo no`),
        "no",
        "nothing ran on the host",
      );
    });

    it("two services on one host share one SSH connection (counted on the wire)", async () => {
      // A fresh provider host: its pool starts empty, like a new `pulumi up`.
      const fresh = await ProviderHost.start();
      try {
        const a = pyService("web3", "pair-a");
        const b = pyService("web3", "pair-b");
        const ra = new SimulatedResource(fresh, serviceProvider, { name: "pair-a" });
        const rb = new SimulatedResource(fresh, serviceProvider, { name: "pair-b" });
        await Promise.all([ra.up(a.inputs()), rb.up(b.inputs())]);
        // The pooled connection stays open: count the provider host's TCP connections to web3's sshd.
        const ss = execFileSync("ss", ["-Htnp", "state", "established", "dst", `${a.address}:22`], {
          encoding: "utf8",
        });
        const mine = ss.split("\n").filter((l) => l.includes(`pid=${fresh.pid},`));
        assert.equal(mine.length, 1, `one SSH connection for both services; ss says:\n${ss}`);
        assert.equal(await servedCommit(a), a.app.head());
        assert.equal(await servedCommit(b), b.app.head());
        await ra.destroy();
        await rb.destroy();
      } finally {
        await fresh.stop();
      }
    });
  });

  describe("hostile input", () => {
    it("env values with quotes, $(), backticks, newlines and unicode arrive byte-exact", async () => {
      const hostile = {
        T_QUOTES: `it's "quoted"`,
        T_SUBST: "$(touch /tmp/pwned) and `id`",
        T_DOLLAR: "$HOME ${PATH} $$",
        T_NEWLINE: "line1\nline2",
        T_BACKSLASH: "a\\nb\\",
        T_UNICODE: "ünïcødé ✓",
        T_PERCENT: "100% %h",
      };
      // The start command goes through systemd's ExecStart quoting: $ and % must reach sh as typed.
      const svc = pyService("web2", "hostile", {
        secretEnv: { T_SECRET: "pa$$'w\"rd`x`" },
        start: `T_START='100% $HOME "q" \\n' exec .venv/bin/python app.py`,
      });
      const inputs = svc.inputs();
      (inputs["env"] as Record<string, string>) = { ...(inputs["env"] as Record<string, string>), ...hostile };
      await svc.resource.up(inputs);
      const env = (await appGet(svc.address, svc.port, "/api/env")).body as Record<string, string>;
      for (const [k, v] of Object.entries(hostile)) assert.equal(env[k], v, k);
      assert.equal(env["T_SECRET"], "pa$$'w\"rd`x`");
      assert.equal(env["T_START"], '100% $HOME "q" \\n', "ExecStart quoting: no systemd expansion of $ or %");
      assert.equal(await sh("web2", "test -e /tmp/pwned && echo yes || echo no"), "no");
      // The secret is in no plain state and no log line.
      assert.ok(!svc.resource.plainStateJson().includes("pa$$'w\"rd`x`"));
      assert.ok(!(await sh("web2", `cat ${ROOT}/hostile/deploy.log`)).includes("rd`x`"));
      await svc.resource.destroy();
    });

    it("hostile names and paths are rejected by check, before anything runs", async () => {
      const svc = pyService("web2", "fine");
      const inputs = { ...svc.inputs(), name: "../../etc", root: "/tmp/$(id)" };
      await assert.rejects(svc.resource.up(inputs as Props), (err: Error) => {
        assert.ok(err instanceof CheckFailedError, String(err));
        assert.match(err.message, /name/);
        assert.match(err.message, /root/);
        return true;
      });
    });
  });

  describe("one health verdict (the version field is judged once, on the deploying side, before anything is finalized)", () => {
    // A server whose version body is version-body.txt with @COMMIT@ replaced by FLEET_COMMIT.
    const JUDGE_APP = [
      "import os",
      "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer",
      'BODY = open("version-body.txt").read().replace("@COMMIT@", os.environ["FLEET_COMMIT"]).encode()',
      "class Handler(BaseHTTPRequestHandler):",
      "    def do_GET(self):",
      '        body = BODY if self.path == "/api/version" else b\'{"status": "ok"}\'',
      "        self.send_response(200)",
      '        self.send_header("Content-Length", str(len(body)))',
      "        self.end_headers()",
      "        self.wfile.write(body)",
      "    def log_message(self, *args):",
      "        pass",
      'ThreadingHTTPServer((os.environ["APP_HOST"], int(os.environ["APP_PORT"])), Handler).serve_forever()',
      "",
    ].join("\n");
    // Text matching (sed's greedy `.*"commit"`) reads the last "commit" on the line; the field is nested.commit.
    const versionBody = (nested: string, last: string) => `{"nested": {"commit": "${nested}"}, "commit": "${last}"}\n`;
    let svc: PyCase;
    const inputs = () =>
      svc.inputs({
        start: ".venv/bin/python judge.py",
        keepReleases: 2,
        health: {
          url: `http://${svc.address}:${svc.port}/api/health`,
          version: { url: `http://${svc.address}:${svc.port}/api/version`, field: "nested.commit" },
          timeout: "8s",
          interval: "50ms",
        },
      });
    const dir = `${ROOT}/judged`;
    const logLines = async () =>
      (await sh("web3", `cat ${dir}/deploy.log 2>/dev/null || true`)).split("\n").filter(Boolean);
    const nestedCommit = async () => (await appGet(svc.address, svc.port, "/api/version")).body.nested.commit;

    before(() => {
      svc = pyService("web3", "judged");
    });
    after(async () => {
      await svc.resource.destroy().catch(() => undefined);
    });

    it("a good release whose body text matching would misread is finalized once, with retention applied", async () => {
      const releases: string[] = [];
      for (let i = 0; i < 3; i++) {
        const commit = svc.app.commit(`good ${i}`, {
          "judge.py": JUDGE_APP,
          "version-body.txt": versionBody("@COMMIT@", "0000000"),
          "n.txt": `${i}\n`,
        });
        const before = (await logLines()).length;
        const { state } = await svc.resource.up(inputs());
        releases.push(state!.plainOutputs["releaseId"] as string);
        assert.equal(await nestedCommit(), commit);
        const lines = await logLines();
        assert.equal(lines.length, before + 1, `one deploy.log line per deploy:\n${lines.join("\n")}`);
        assert.match(lines.at(-1)!, new RegExp(` -> ${releases.at(-1)} ok `));
      }
      // Retention ran on the host, as the recorded state says it did.
      const onHost = (await sh("web3", `ls ${dir}/releases`)).split("\n").sort();
      assert.deepEqual(onHost, [...releases.slice(1)].sort());
      assert.deepEqual(svc.resource.state!.plainOutputs["retainedReleases"], onHost);
      assert.equal(await sh("web3", `test -d ${dir}/.lock && echo held || echo free`), "free");
    });

    it("a release whose nested field is wrong fails before anything is finalized: no ok line, no pruning, rolled back", async () => {
      const good = await nestedCommit();
      const retained = svc.resource.state!.plainOutputs["retainedReleases"] as string[];
      svc.app.commit("wrong nested commit", { "version-body.txt": versionBody("0000000", "@COMMIT@") });
      const bad = inputs()["releaseId"] as string;
      const before = (await logLines()).length;
      await assert.rejects(svc.resource.up(inputs()), (err: Error) => {
        assert.match(err.message, /failed its health gate: version endpoint .* reports nested\.commit="0000000"/);
        assert.match(err.message, /Rolled back automatically/);
        return true;
      });
      assert.equal(await nestedCommit(), good, "the previous release serves again");
      const lines = (await logLines()).slice(before);
      assert.equal(lines.length, 1, `one deploy.log line for the failed deploy:\n${lines.join("\n")}`);
      assert.match(lines[0]!, new RegExp(` -> ${bad} rolled-back `));
      const onHost = (await sh("web3", `ls ${dir}/releases`)).split("\n");
      for (const id of retained) assert.ok(onHost.includes(id), `retained release ${id} is still on the host`);
      assert.equal(await sh("web3", `test -d ${dir}/.lock && echo held || echo free`), "free");
    });
  });

  describe("the sinesiAI-like Node app", () => {
    it("installs node_modules once per package.json, links them into each release, and serves", async () => {
      const app = new GitApp(NODEAPP);
      const connection = connectionFor("web3");
      const port = nextPort++;
      const counter = "/tmp/fleet-test-installs-nodeapp";
      await sh("web3", `rm -f ${counter}`);
      const inputs = () =>
        serviceInputs({
          name: "nodeapp",
          connection,
          root: ROOT,
          source: { git: app.dir },
          install: {
            run: `mkdir -p node_modules/greet && printf 'module.exports = (n) => "hello " + n;\\n' > node_modules/greet/index.js && echo run >> ${counter}`,
            when: ["package.json"],
          },
          start: "node server.js",
          env: { APP_HOST: connection.host, APP_PORT: String(port) },
          health: {
            url: `http://${connection.host}:${port}/api/health`,
            bodyContains: "hello fleet",
            version: { url: `http://${connection.host}:${port}/api/version` },
            timeout: "8s",
          },
        });
      const resource = new SimulatedResource(host, serviceProvider, { name: "nodeapp" });
      await resource.up(inputs());
      assert.equal((await appGet(connection.host, port, "/api/health")).body.greeting, "hello fleet");
      app.commit("change server only", { "README.md": "hi\n" });
      await resource.up(inputs());
      assert.equal((await appGet(connection.host, port, "/api/version")).body.commit, app.head());
      assert.equal(await sh("web3", `wc -l < ${counter}`), "1");
      app.commit("new dependency version", {
        "package.json": '{"name":"nodeapp","version":"1.0.1","dependencies":{"greet":"1.0.1"}}\n',
      });
      await resource.up(inputs());
      assert.equal(await sh("web3", `wc -l < ${counter}`), "2");
      await resource.destroy();
    });
  });
});
