import { strict as assert } from "assert";
import { randomBytes } from "crypto";
import * as os from "os";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { connectionFor, postgres, sh, sshRun, type PostgresServer } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderError, ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");

/**
 * Concurrency (issue #10): two deploys of one service at once, two backups of one database at
 * once, on real servers (web1, db) through Pulumi's provider host. Two `pulumi up`s on one
 * machine are two provider hosts (two processes); two resources of one program are one host.
 *
 * A service deploy holds `<service>/.lock/` (mkdir) from its first script to its last: the other
 * deploy must be refused at once, naming the holder, with nothing of it left on the host, and
 * must converge when run again. A backup set is serialized by flock(1) on `<backups>/.lock`
 * (commands/backup.ts): the second backup waits for the first, and both must come out whole.
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-conc";
const HOST = "web1";
const TAG = randomBytes(3).toString("hex");
/** Long enough that the other deploy's first script certainly runs while this one holds the lock. */
const BUILD = "sleep 2";

function psql(sql: string, database: string): Promise<string> {
  return sh("db", `cd / && sudo -u postgres psql -X -q -A -t -v ON_ERROR_STOP=1 -d ${database}`, sql);
}

interface Outcome<T> {
  readonly index: number;
  readonly value?: T;
  readonly error?: unknown;
  /** When it settled, ms since the start of the race. */
  readonly at: number;
}

/** Starts every run in the same tick (or after its delay) and records how and when each ended. */
async function race<T>(runs: (() => Promise<T>)[], delaysMs: number[] = []): Promise<Outcome<T>[]> {
  const t0 = Date.now();
  return Promise.all(
    runs.map(async (run, index) => {
      if (delaysMs[index]) await new Promise((r) => setTimeout(r, delaysMs[index]));
      try {
        const value = await run();
        return { index, value, at: Date.now() - t0 };
      } catch (error) {
        return { index, error, at: Date.now() - t0 };
      }
    }),
  );
}

/** Exactly one run won: returns [winner, first loser, every loser]. */
function oneWinner<T>(outcomes: Outcome<T>[]): [Outcome<T>, Outcome<T>, Outcome<T>[]] {
  const won = outcomes.filter((o) => !o.error);
  const lost = outcomes.filter((o) => o.error);
  assert.equal(
    won.length,
    1,
    `exactly one of the concurrent runs must win; ${won.length} did. Errors: ${lost.map((o) => (o.error as Error).message).join("\n---\n")}`,
  );
  return [won[0]!, lost[0]!, lost];
}

/** One service on web1: the pyapp, with a 2 s build so that deploys overlap. */
function concService(name: string, port: number, extra: Partial<ServiceCase> = {}) {
  const app = new GitApp(PYAPP);
  const connection = connectionFor(HOST);
  const dir = `${ROOT}/${name}`;
  const inputs = (ref = "main", over: Partial<ServiceCase> = {}): Props =>
    serviceInputs({
      name,
      connection,
      root: ROOT,
      source: { git: app.dir, ref },
      build: BUILD,
      start: "python3 app.py",
      env: { APP_HOST: connection.host, APP_PORT: String(port) },
      health: {
        url: `http://${connection.host}:${port}/api/health`,
        version: { url: `http://${connection.host}:${port}/api/version`, field: "commit" },
        timeout: "10s",
        interval: "50ms",
      },
      ...extra,
      ...over,
    });
  const served = async () =>
    ((await (await fetch(`http://${connection.host}:${port}/api/version`)).json()) as { commit: string }).commit;
  /** The release id fleet gives `ref` (the commit, plus a hash of the build command). */
  const release = (ref: string) => String(inputs(ref)["releaseId"]);
  return { app, dir, inputs, served, name, release };
}

/** What a refused deploy must say: locked, and by whom (the winner's process on this machine). */
function assertRefusedNamingHolder(err: unknown, name: string, holderPid: number, release: string): void {
  assert.ok(err instanceof ProviderError, `a provider error, not ${String(err)}`);
  const m = err.message;
  assert.match(m, new RegExp(`service "${name}" is locked by another deploy:`));
  assert.match(m, new RegExp(`^\\s+who=\\S+@${os.hostname()}$`, "m"), `the holder's user@machine:\n${m}`);
  assert.match(m, new RegExp(`^\\s+machine=${os.hostname()}$`, "m"));
  assert.match(m, new RegExp(`^\\s+pid=${holderPid}$`, "m"), `the holder's process (${holderPid}):\n${m}`);
  assert.match(m, new RegExp(`^\\s+release=${release}$`, "m"), `the release the holder deploys:\n${m}`);
  assert.match(m, /^\s+since=\d{4}-\d\d-\d\dT/m);
  assert.match(m, /Wait for it to finish/, "a live holder is never called stale");
}

/** The host shows exactly one finished deploy of `release`: nothing of the refused one. */
async function assertCleanlyDeployed(
  svc: ReturnType<typeof concService>,
  commit: string,
  releases: string[],
  logLines: number,
): Promise<void> {
  const release = svc.release(commit);
  assert.equal(await svc.served(), commit, "the winner's commit serves");
  assert.equal(await sh(HOST, `readlink ${svc.dir}/current`), `releases/${release}`);
  assert.equal(await sh(HOST, `cat ${svc.dir}/current/REVISION`), commit);
  assert.equal(await sh(HOST, `systemctl is-active ${svc.name}`), "active");
  const entries = (await sh(HOST, `ls -A ${svc.dir}`)).split("\n").sort();
  assert.deepEqual(
    entries.filter((e) => [".lock", ".staging", ".migrate-env", "current.tmp", ".current.tmp"].includes(e)),
    [],
    `no lock, staging or temp left in ${svc.dir}: ${entries.join(" ")}`,
  );
  assert.deepEqual((await sh(HOST, `ls ${svc.dir}/releases`)).split("\n").sort(), [...releases].sort());
  for (const r of releases) {
    assert.equal(
      (await sh(HOST, `cat ${svc.dir}/releases/${r}/REVISION`)).slice(0, 12),
      r.slice(0, 12),
      `${r} is complete`,
    );
  }
  const log = (await sh(HOST, `cat ${svc.dir}/deploy.log`)).split("\n");
  assert.equal(log.length, logLines, `deploy.log:\n${log.join("\n")}`);
  assert.ok(
    log.every((l) => / ok \d+\.\d{3}s/.test(l)),
    `every recorded attempt succeeded (a refused one records nothing):\n${log.join("\n")}`,
  );
}

describe("faults: concurrency (web1 + db, through Pulumi's provider host)", function () {
  this.timeout(300_000);
  const hosts: ProviderHost[] = [];
  const names: string[] = [];
  let nextPort = 18880;

  async function startHost(): Promise<ProviderHost> {
    const h = await ProviderHost.start();
    hosts.push(h);
    return h;
  }
  const serviceResource = (h: ProviderHost, name: string) =>
    new SimulatedResource(h, serviceProvider, {
      name,
      additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
    });

  before(async function () {
    this.timeout(60_000);
    await sh(
      HOST,
      `for u in $(ls /etc/systemd/system | sed -n 's/^\\(fconc-[a-z0-9-]*\\)\\.service$/\\1/p'); do systemctl disable --now $u 2>/dev/null; rm -f /etc/systemd/system/$u.service; done; systemctl daemon-reload; rm -rf ${ROOT}`,
    );
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(hosts.map((h) => h.stop()));
    await sshRun(
      HOST,
      `for u in ${names.join(" ")}; do systemctl disable --now $u 2>/dev/null; rm -f /etc/systemd/system/$u.service; done; systemctl daemon-reload; rm -rf ${ROOT}`,
    );
  });

  describe("two deploys of one service at once", () => {
    it("two `pulumi up`s (two provider hosts), same inputs: one wins, the other is refused naming the winner; the next deploy converges", async () => {
      const name = `fconc-a-${TAG}`;
      names.push(name);
      const svc = concService(name, nextPort++);
      const [h1, h2] = await Promise.all([startHost(), startHost()]);
      const rs = [serviceResource(h1, name), serviceResource(h2, name)];
      const commit = svc.app.head();
      const release = svc.release(commit);

      const outcomes = await race(rs.map((r) => () => r.up(svc.inputs())));
      const [won, lost] = oneWinner(outcomes);
      const winnerHost = [h1, h2][won.index]!;
      assertRefusedNamingHolder(lost.error, name, winnerHost.pid, release);
      assert.ok(won.at >= 2000, `the winner built for 2 s (${won.at} ms)`);
      assert.ok(lost.at < won.at, `the loser was refused while the winner deployed (${lost.at} < ${won.at} ms)`);
      assert.equal(rs[lost.index]!.state, undefined, "the refused create recorded nothing in its state");
      await assertCleanlyDeployed(svc, commit, [release], 1);

      // The refused `pulumi up`, run again: same release, already there (no upload, no build).
      const again = await rs[lost.index]!.up(svc.inputs());
      assert.equal(again.op, "create");
      assert.equal(again.state!.plainOutputs["releaseId"], release);
      await assertCleanlyDeployed(svc, commit, [release], 2);
    });

    it("one program with four resources for one service (one provider host): one deploys; the three refused name it; its live lock is not broken, even with breakStaleLock", async () => {
      const name = `fconc-b-${TAG}`;
      names.push(name);
      const svc = concService(name, nextPort++, { breakStaleLock: true });
      const h = await startHost();
      // Four at once from one process: their lock attempts land within milliseconds of the
      // winner's mkdir, before it has written who it is.
      const rs = [0, 1, 2, 3].map(() => serviceResource(h, name));
      const commit = svc.app.head();
      const release = svc.release(commit);

      const [won, , lost] = oneWinner(await race(rs.map((r) => () => r.up(svc.inputs()))));
      assert.equal(lost.length, 3);
      for (const l of lost) {
        assertRefusedNamingHolder(l.error, name, h.pid, release);
        assert.ok(l.at < won.at, `refused while the other deployed (${l.at} < ${won.at} ms)`);
      }
      assert.doesNotMatch(h.logs(), /broke a stale deploy lock/, "the live lock was not broken");
      await assertCleanlyDeployed(svc, commit, [release], 1);
      await rs[lost[0]!.index]!.up(svc.inputs());
      await assertCleanlyDeployed(svc, commit, [release], 2);
    });

    it("two engineers, two commits, the second starting mid-build: the first's commit serves untouched; the second converges to its own", async () => {
      const name = `fconc-c-${TAG}`;
      names.push(name);
      const svc = concService(name, nextPort++);
      const first = svc.app.head();
      const second = svc.app.commit("second engineer", { "feature.txt": "b\n" });
      const [h1, h2] = await Promise.all([startHost(), startHost()]);
      const r1 = serviceResource(h1, name);
      const r2 = serviceResource(h2, name);

      // The second starts 1 s into the first's 2 s build.
      const outcomes = await race([() => r1.up(svc.inputs(first)), () => r2.up(svc.inputs(second))], [0, 1000]);
      const [won, lost] = oneWinner(outcomes);
      assert.equal(won.index, 0, "the deploy that took the lock first wins");
      assertRefusedNamingHolder(lost.error, name, h1.pid, svc.release(first));
      assert.ok(lost.at < won.at, `refused mid-build (${lost.at} < ${won.at} ms)`);
      await assertCleanlyDeployed(svc, first, [svc.release(first)], 1);

      await r2.up(svc.inputs(second));
      await assertCleanlyDeployed(svc, second, [svc.release(first), svc.release(second)], 2);
    });

    it("two rollbacks to a retained release at once (the one-round-trip switch path): one switches, the other is refused and then converges", async () => {
      const name = `fconc-d-${TAG}`;
      names.push(name);
      // A slow start keeps the switch's lock held through a ~1 s health gate.
      const svc = concService(name, nextPort++, { start: "sleep 1 && exec python3 app.py" });
      const first = svc.app.head();
      const [h1, h2] = await Promise.all([startHost(), startHost()]);
      const r1 = serviceResource(h1, name);
      const r2 = serviceResource(h2, name);
      await r1.up(svc.inputs(first));
      const second = svc.app.commit("second", { "feature.txt": "2\n" });
      await r1.up(svc.inputs(second));
      await r2.up(svc.inputs(second)); // r2 learns the retained releases from the host
      const both = [svc.release(first), svc.release(second)];
      for (const r of [r1, r2]) assert.deepEqual(r.state!.plainOutputs["retainedReleases"], [...both].sort());
      const before = Number(await sh(HOST, `wc -l < ${svc.dir}/deploy.log`));

      const [won, lost] = oneWinner(await race([r1, r2].map((r) => () => r.up(svc.inputs(first)))));
      assertRefusedNamingHolder(lost.error, name, [h1, h2][won.index]!.pid, svc.release(first));
      assert.ok(lost.at < won.at, `refused while the other switched (${lost.at} < ${won.at} ms)`);
      await assertCleanlyDeployed(svc, first, both, before + 1);
      await [r1, r2][lost.index]!.up(svc.inputs(first));
      await assertCleanlyDeployed(svc, first, both, before + 2);
    });
  });

  describe("two backups of one database at once", () => {
    let pg: PostgresServer;
    before(() => (pg = postgres()));
    const role = `fconc_${TAG}`;
    let dir = "";
    const spec = (over: Props = {}): Props => ({
      name: `fconcdb-${TAG}`,
      connection: secret(connectionFor(HOST)),
      engine: "postgres",
      postgres: { host: pg.host, port: pg.port, database: role, user: role, password: secret(`Conc-${TAG}-pw`) },
      backupsDir: dir,
      keep: 10,
      keepDays: 0,
      protectReleases: [],
      verifyTables: ["items"],
      releases: ["rel-aaaaaa"],
      trigger: "",
      restore: "",
      stepTimeoutMs: 120_000,
      deleteBackupsOnDestroy: true,
      ...over,
    });
    const backupResource = (h: ProviderHost) =>
      new SimulatedResource(h, backupProvider, { name: `fconcdb-${TAG}`, additionalSecretOutputs: ["connection"] });
    const rows = () => psql("SELECT count(*) FROM items", role);

    /** Holds an exclusive lock on `items` for `seconds`: a pg_dump started meanwhile waits for it. */
    function lockTable(seconds: number): Promise<string> {
      return psql(`BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(${seconds}); COMMIT;`, role);
    }

    /** Counts, every ~50 ms on web1, the pg_dump / pg_restore processes writing into `dir`. */
    function watchDumps(): { stop: () => Promise<number> } {
      const script =
        `stop=/tmp/fconc-watch-${TAG}; rm -f $stop; max=0; i=0; ` +
        `while [ ! -e $stop ] && [ $i -lt 3000 ]; do ` +
        // Not anchored: pg_dump is Debian's perl wrapper, then the real binary (same process).
        `n=$(ps -ww -eo args | grep -E 'pg_(dump|restore) .*${dir}' | grep -v grep | wc -l); [ $n -gt $max ] && max=$n; ` +
        `i=$((i+1)); sleep 0.05; done; rm -f $stop; echo max=$max`;
      const run = sh(HOST, "sh -s", script);
      return {
        stop: async () => {
          await sh(HOST, `touch /tmp/fconc-watch-${TAG}`);
          return Number(/max=(\d+)/.exec(await run)?.[1] ?? -1);
        },
      };
    }

    async function manifest(): Promise<{ id: string; sha256: string; counts: string }[]> {
      return (await sh(HOST, `cat ${dir}/manifest`))
        .split("\n")
        .filter(Boolean)
        .map((l) => {
          const [id, sha256, , , , counts] = l.split(" ");
          return { id: id!, sha256: sha256!, counts: counts! };
        });
    }

    /** Every manifest line names a whole, verified file; nothing half-written is left. */
    async function assertBackupsWhole(expected: number): Promise<string[]> {
      const lines = await manifest();
      assert.equal(lines.length, expected, `manifest:\n${lines.map((l) => l.id).join("\n")}`);
      assert.equal(new Set(lines.map((l) => l.id)).size, lines.length, "distinct ids");
      for (const l of lines) {
        assert.equal(await sh(HOST, `sha256sum < ${dir}/${l.id}.dump | cut -c1-64`), l.sha256, `${l.id} is whole`);
        assert.match(await sh(HOST, `pg_restore --list ${dir}/${l.id}.dump`), /TABLE DATA public items/);
        assert.equal(await sh(HOST, `stat -c %a ${dir}/${l.id}.dump`), "600");
      }
      assert.equal(await sh(HOST, `ls -d ${dir}/.tmp-* 2>/dev/null || true`), "", "no work dir left");
      const files = (await sh(HOST, `ls ${dir}`)).split("\n").filter((f) => f.endsWith(".dump"));
      assert.deepEqual(files.sort(), lines.map((l) => `${l.id}.dump`).sort(), "no dump outside the manifest");
      return lines.map((l) => l.id);
    }

    before(async function () {
      this.timeout(60_000);
      await psql(`DROP DATABASE IF EXISTS ${role} WITH (FORCE); DROP ROLE IF EXISTS ${role};`, "postgres");
      await psql(
        `CREATE ROLE ${role} LOGIN PASSWORD 'Conc-${TAG}-pw'; CREATE DATABASE ${role} OWNER ${role};`,
        "postgres",
      );
      await psql(
        `SET ROLE ${role}; CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 200) i;`,
        role,
      );
    });

    after(async function () {
      this.timeout(30_000);
      await psql(`DROP DATABASE IF EXISTS ${role} WITH (FORCE); DROP ROLE IF EXISTS ${role};`, "postgres").catch((e) =>
        console.error(`cleanup: ${(e as Error).message}`),
      );
    });

    it("three backups of a new set at once (their scripts start within milliseconds): they take turns (never two dumps at a time), all three are whole and recorded", async () => {
      dir = `${ROOT}/fconcdb-${TAG}/first`;
      // One provider host: its pooled connection opens once, then the three scripts start together,
      // so all three find the set's directory missing and create it at the same moment.
      const h = await startHost();
      const rs = [0, 1, 2].map(() => backupResource(h));
      const locker = lockTable(2);
      await new Promise((r) => setTimeout(r, 300)); // the table lock is taken: the first dump will wait on it
      const watch = watchDumps();
      const outcomes = await race(rs.map((r) => () => r.up(spec())));
      const maxDumps = await watch.stop();
      await locker;
      assert.deepEqual(
        outcomes.filter((o) => o.error).map((o) => (o.error as Error).message),
        [],
        "a backup waits for the other: all succeed",
      );
      assert.equal(maxDumps, 1, "never two dumps into the set at the same time (flock), and the watcher saw one");
      // Three backups, three ids (taken within the same second: the next one moves on): the
      // manifest holds three distinct, whole ones. Each resource's latestId is the set's newest
      // when it finished (stateOf), so two that finish close together may both name the last one.
      const ids = await assertBackupsWhole(3);
      const latest = outcomes.map((o) => String(o.value!.state!.plainOutputs["latestId"]));
      for (const id of latest)
        assert.ok(ids.includes(id), `latestId ${id} is one of the set's backups: ${ids.join(" ")}`);
      assert.ok(latest.includes(ids.at(-1)!), "the last backup taken is some resource's latestId");
      assert.equal(await sh(HOST, `stat -c %a ${dir}`), "700");
      const log = (await sh(HOST, `cat ${dir}/backup.log`)).split("\n");
      assert.equal(log.filter((l) => / backup \S+ exit=0/.test(l)).length, 3, `backup.log:\n${log.join("\n")}`);
      assert.ok(
        log.every((l) => / exit=(0|82)( |$)/.test(l)),
        `only successes (and ids taken within the same second, retried):\n${log.join("\n")}`,
      );
      for (const r of rs) await r.destroy().catch(() => undefined);
    });

    it("a restore and a backup of the same set at once: the restore is whole (rows back, counts verified) and the backup too", async () => {
      dir = `${ROOT}/fconcdb-${TAG}/restore`;
      const h = await startHost();
      const hb = await startHost();
      const restorer = backupResource(h);
      const { state } = await restorer.up(spec());
      const good = String(state!.plainOutputs["latestId"]);
      await psql("DELETE FROM items WHERE id > 50", role);
      assert.equal(await rows(), "50");

      const other = backupResource(hb);
      const locker = lockTable(2);
      await new Promise((r) => setTimeout(r, 300));
      const outcomes = await race([
        () => restorer.up(spec({ restore: good })),
        () => other.up(spec({ releases: ["rel-bbbbbb"] })),
      ]);
      await locker;
      assert.deepEqual(
        outcomes.filter((o) => o.error).map((o) => (o.error as Error).message),
        [],
        "both succeed, one after the other",
      );
      assert.equal(await rows(), "200", "the restore gave every row back");
      const record = outcomes[0]!.value!.state!.plainOutputs["lastRestore"] as Props;
      assert.deepEqual(record["counts"], { items: 200 });
      // The first backup, the restore's safety backup, the other's backup: all whole.
      const ids = await assertBackupsWhole(3);
      assert.ok(ids.includes(String(record["safetyBackupId"])));
      assert.ok(ids.includes(String(outcomes[1]!.value!.state!.plainOutputs["latestId"])));
      await restorer.destroy();
      await other.destroy().catch(() => undefined);
    });
  });
});
