import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { execFile } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { shq } from "../../commands/quote";
import { connectionFor, hostAddress, loadInventory, postgres, sh, sshRun, superuserPsql } from "../support/fleet";
import { ProviderHost, ProviderError, SimulatedResource, secret, type Props } from "../support/provider-host";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const backupProvider = shippedProvider("backup");

/**
 * DatabaseBackup (issue #5) on real servers, always through Pulumi's dynamic-provider host:
 * real PostgreSQL on `db` dumped from web1 over the network, real SQLite on web2, a failing
 * dump on web3. Everything asserted is read back from the servers. Each run uses its own role,
 * database and directory, and removes them at the end.
 */

const TAG = randomBytes(4).toString("hex");
/** Per run, so that two runs on one fleet (engineers share it) never touch each other's files. */
const BASE = "/srv/fleet-backup-test";
const ROOT = `${BASE}/${TAG}`;
/** Distinctive, and hostile to quoting and to the pgpass format (`:` and `\` need escaping there). */
const NEEDLE = `FleetBK-${TAG}-S3cret`;
const PASSWORD = `${NEEDLE}:w\\o'r$d`;
const ROLE = `fleet_bk_${TAG}`;
const DB = ROLE;
/** Marks the fake pg_dump this file installs on web3, so that only ours is ever removed. */
const SHIM_MARK = "# fleet backup test shim";

let host: ProviderHost;

const psql = (sql: string, database = DB): Promise<string> => superuserPsql(sql, database);

/**
 * The sha256 of a query's whole output, computed on the host: exact equality of every row, and
 * only ASCII crosses the wire (sshRun decodes each chunk separately, so a multi-byte character
 * split between chunks would come back as two U+FFFD and look like corruption).
 */
function digest(hostName: string, command: string, input?: string): Promise<string> {
  return sh(hostName, `out=$(${command}) && printf '%s' "$out" | sha256sum | cut -c1-64`, input);
}

/** Every row of the test tables: what "exactly the original rows" is compared on. */
function pgRows(tables = "items notes"): Promise<string> {
  const sql = tables
    .split(" ")
    .map((t) => `SELECT * FROM ${t} ORDER BY id; SELECT '--';`)
    .join(" ");
  return digest("db", `cd / && sudo -u postgres psql -X -q -A -t -v ON_ERROR_STOP=1 -d ${DB}`, sql);
}

function sqliteRows(db: string, hostName = "web2"): Promise<string> {
  return digest(
    hostName,
    `sqlite3 -cmd '.timeout 10000' ${db} 'SELECT * FROM items ORDER BY id; SELECT * FROM fixtures ORDER BY id;'`,
  );
}

interface Line {
  id: string;
  sha256: string;
  size: number;
  time: string;
  releases: string;
  counts: string;
}

async function manifest(hostName: string, dir: string): Promise<Line[]> {
  const text = await sh(hostName, `cat ${dir}/manifest 2>/dev/null || true`);
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [id, sha256, size, time, releases, counts] = l.split(" ");
      return { id: id!, sha256: sha256!, size: Number(size), time: time!, releases: releases!, counts: counts! };
    });
}

async function filesIn(hostName: string, dir: string): Promise<string[]> {
  const out = await sh(hostName, `ls -A ${dir} 2>/dev/null || true`);
  return out.split("\n").filter(Boolean).sort();
}

/** Runs `command` on `hostName` as the service's (the database's) user, deploy. */
const asUser = (hostName: string, command: string, input?: string) =>
  sh(hostName, `runuser -u deploy -- /bin/sh -c ${shq(command)}`, input);

/** `<path> <owner>:<group> <mode>` and the sha256 of each file (absent ones as "absent"). */
const stateOf = (hostName: string, files: readonly string[]) =>
  sh(
    hostName,
    files
      .map((f) => `if [ -e ${f} ]; then stat -c '%n %U:%G %a' ${f}; sha256sum ${f}; else echo "${f} absent"; fi`)
      .join("; "),
  );

describe("DatabaseBackup on real servers (through Pulumi's provider host)", function () {
  this.timeout(120_000);

  before(async function () {
    this.timeout(60_000);
    loadInventory();
    // What an interrupted run left (over an hour old: not a run still going): its test root,
    // and on web3 our tool shims (over 5 minutes old: those tests take seconds).
    const leftovers =
      `find ${BASE} -mindepth 1 -maxdepth 1 -mmin +60 -exec rm -rf {} + 2>/dev/null; ` +
      `for f in /usr/local/bin/pg_dump /usr/local/bin/sqlite3; do ` +
      `if grep -qs '${SHIM_MARK}' $f && [ -n "$(find $f -mmin +5)" ]; then rm -f $f; fi; done`;
    await Promise.all(["web1", "web2", "web3"].map((h) => sh(h, leftovers)));
    host = await ProviderHost.start();
  });

  after(async function () {
    this.timeout(60_000);
    await host?.stop();
    await Promise.all(
      ["web1", "web2", "web3"].map((h) => sshRun(h, `rm -rf ${ROOT}; rmdir ${BASE} 2>/dev/null || true`)),
    );
  });

  describe("PostgreSQL on db, dumped from web1 over the network", () => {
    const dir = `${ROOT}/pgapp/backups`;
    let resource: SimulatedResource;
    const errors: string[] = [];

    function inputs(over: Props = {}): Props {
      const pg = postgres();
      return {
        name: "pgapp",
        connection: secret(connectionFor("web1")),
        engine: "postgres",
        postgres: { host: pg.host, port: pg.port, database: DB, user: ROLE, password: secret(PASSWORD) },
        backupsDir: dir,
        keep: 10,
        keepDays: 0,
        protectReleases: [],
        verifyTables: ["items", "notes"],
        releases: ["rel-aaaaaa"],
        trigger: "",
        restore: "",
        stepTimeoutMs: 60_000,
        deleteBackupsOnDestroy: false,
        ...over,
      };
    }

    before(async () => {
      const literal = PASSWORD.replace(/'/g, "''");
      await psql(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${literal}'; CREATE DATABASE ${DB} OWNER ${ROLE};`, "postgres");
      await psql(
        `SET ROLE ${ROLE};
         CREATE TABLE items (id int PRIMARY KEY, name text, note text);
         INSERT INTO items SELECT i, 'item ' || i, CASE WHEN i % 7 = 0 THEN E'multi\\nline ''quoted'' ünï' END FROM generate_series(1, 500) i;
         CREATE TABLE notes (id serial PRIMARY KEY, body text);
         INSERT INTO notes (body) VALUES ('first'), ('second'), (E'tab\\there');`,
      );
      resource = new SimulatedResource(host, backupProvider, {
        name: "pgapp",
        additionalSecretOutputs: ["connection"],
      });
    });

    after(async function () {
      this.timeout(30_000);
      await psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE); DROP ROLE IF EXISTS ${ROLE};`, "postgres").catch((e) =>
        console.error(`cleanup: ${(e as Error).message}`),
      );
    });

    it("create takes a verified backup: 0600 file in a 0700 dir, manifest with its sha256, size and row counts", async () => {
      const started = Date.now();
      const { op, state } = await resource.up(inputs());
      console.log(`      (first pg backup took ${Date.now() - started} ms)`);
      assert.equal(op, "create");
      const out = state!.plainOutputs;
      assert.match(String(out["latestId"]), /^pgapp-\d{8}T\d{6}Z-rel-aaaaaa$/);
      assert.equal(out["latestPath"], `${dir}/${out["latestId"]}.dump`);
      assert.equal(await sh("web1", `stat -c %a ${dir}`), "700");
      assert.equal(await sh("web1", `stat -c %a ${out["latestPath"]}`), "600");
      assert.equal(await sh("web1", `stat -c %a ${dir}/manifest`), "600");
      assert.equal(await sh("web1", `sha256sum < ${out["latestPath"]} | cut -c1-64`), out["latestSha256"]);
      assert.equal(Number(await sh("web1", `wc -c < ${out["latestPath"]}`)), out["latestSize"]);
      const [line] = await manifest("web1", dir);
      assert.deepEqual(line, {
        id: out["latestId"],
        sha256: out["latestSha256"],
        size: out["latestSize"],
        time: out["latestTime"],
        releases: "rel-aaaaaa",
        counts: "items=500,notes=3",
      });
      assert.deepEqual(out["retained"], [out["latestId"]]);
      assert.match(await sh("web1", `pg_restore --list ${out["latestPath"]}`), /TABLE DATA public items/);
      assert.deepEqual(
        await filesIn("web1", dir),
        [".lock", `${out["latestId"]}.dump`, "backup.log", "manifest"].sort(),
      );
      assert.ok(!("postgres" in out && "password" in (out["postgres"] as Props)), "no password in the outputs");
    });

    it("the password never shows in ps or in any process environment on web1 (or db) while pg_dump runs", async () => {
      // Hold an exclusive lock for 3 s: pg_dump waits for it, so the backup is slow enough to sample.
      const locker = psql(`BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;`);
      await new Promise((r) => setTimeout(r, 300));
      // The sampler travels on stdin: the needle is nowhere on the hosts except where it leaks.
      const sampler = `end=$(( $(date +%s) + 5 )); while [ "$(date +%s)" -lt "$end" ]; do ps -eo pid,args; for p in /proc/[0-9]*; do tr '\\0' '\\n' < "$p/environ" 2>/dev/null; done; echo ---; sleep 0.05; done`;
      const samples = Promise.all([sh("web1", "sh -s", sampler), sh("db", "sh -s", sampler)]);
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await resource.up(inputs({ trigger: "slow" }));
      const took = Date.now() - started;
      await locker;
      const [web1, db] = await samples;
      assert.ok(took > 2000, `the backup waited for the lock (${took} ms), so the samples overlap it`);
      assert.match(web1, new RegExp(`pg_dump -Fc --no-password -f ${dir}/\\.tmp-\\w+/new`), "ps saw pg_dump");
      assert.match(web1, new RegExp(`PGPASSFILE=${dir}/\\.tmp-\\w+/pgpass`), "the env holds a file path");
      assert.ok(!web1.includes(NEEDLE), "password in a process list or environment on web1");
      assert.ok(!db.includes(NEEDLE), "password in a process list or environment on db");
      console.log(`      (${web1.split("---").length} samples on web1 during a ${took} ms backup)`);
      assert.equal(await sh("web1", `ls -d ${dir}/.tmp-* 2>/dev/null || true`), "", "the pgpass work dir is gone");
    });

    it("backup → change rows → restore gives back exactly the original rows, after a safety backup", async () => {
      const original = await pgRows();
      const { state } = await resource.up(inputs({ releases: ["rel-bbbbbb"] }));
      const good = String(state!.plainOutputs["latestId"]);
      assert.match(good, /-rel-bbbbbb$/);
      await psql(
        `UPDATE items SET name = 'changed' WHERE id <= 10; DELETE FROM items WHERE id > 400;
         INSERT INTO items VALUES (9999, 'new', NULL); DROP TABLE notes;`,
      );
      const changed = await pgRows("items");
      assert.notEqual(changed, original);
      const before = (await manifest("web1", dir)).map((l) => l.id);

      const started = Date.now();
      const restored = await resource.up(inputs({ releases: ["rel-bbbbbb"], restore: good }));
      console.log(`      (pg restore with safety backup took ${Date.now() - started} ms)`);
      assert.equal(restored.op, "update");
      assert.equal(await pgRows(), original, "exactly the original rows");
      const record = restored.state!.plainOutputs["lastRestore"] as Props;
      assert.equal(record["id"], good);
      assert.deepEqual(record["counts"], { items: 500, notes: 3 });
      const safety = String(record["safetyBackupId"]);
      assert.match(safety, /^pgapp-\d{8}T\d{6}Z-pre-restore$/);
      const lines = await manifest("web1", dir);
      assert.deepEqual(
        lines.map((l) => l.id),
        [...before, safety],
        "one new manifest line: the safety backup",
      );
      assert.equal(lines.at(-1)!.counts, "items=401", "the safety backup holds the changed database (notes dropped)");
      assert.equal(restored.state!.plainOutputs["latestId"], safety);
      assert.match(await sh("web1", `tail -1 ${dir}/backup.log`), new RegExp(`restore ${good} exit=0$`));

      // The safety backup really holds the pre-restore data: restoring it brings the change back.
      // (pg_restore --clean drops only what the archive holds: `notes`, created since, stays.)
      await resource.up(inputs({ releases: ["rel-bbbbbb"], restore: safety }));
      assert.equal(await pgRows("items"), changed);
      await resource.up(inputs({ releases: ["rel-bbbbbb"], restore: "" }));
      await resource.up(inputs({ releases: ["rel-bbbbbb"], restore: good }));
      assert.equal(await pgRows(), original, "restoring the same id again after clearing `restore` works");
    });

    it("a corrupted backup is refused before the database is touched: sha256 first, pg_restore if the manifest lies", async () => {
      const target = (await manifest("web1", dir)).find((l) => l.releases === "rel-aaaaaa")!;
      const file = `${dir}/${target.id}.dump`;
      await psql(`UPDATE items SET name = 'after the backup' WHERE id = 1;`);
      const rowsBefore = await pgRows();
      const linesBefore = await manifest("web1", dir);
      // 64 bytes of garbage in the middle of the archive (inside its compressed data).
      await sh(
        "web1",
        `size=$(wc -c < ${file}); head -c 64 /dev/urandom | dd of=${file} bs=1 seek=$((size / 2)) conv=notrunc status=none`,
      );

      await assert.rejects(resource.up(inputs({ releases: ["rel-bbbbbb"], restore: target.id })), (err: Error) => {
        errors.push(err.message);
        assert.match(err.message, /restore refused: the backup is corrupt; the database was not touched/);
        assert.match(
          err.message,
          new RegExp(`${target.id} is corrupt: .* has sha256 [0-9a-f]{64}, but ${target.sha256} was recorded`),
        );
        assert.match(err.message, /exit code 84/);
        return true;
      });
      assert.equal(await pgRows(), rowsBefore, "database untouched");
      assert.deepEqual(await manifest("web1", dir), linesBefore, "no safety backup taken for a refused restore");

      // A truncated archive (a partial copy, a full disk) whose manifest line was rewritten to
      // match: the sha256 check passes, the archive check refuses it, the database is untouched.
      // (Garbage inside the archive's plain-text table of contents is only caught by sha256; then
      // the single-transaction pg_restore fails on the server and leaves the database as it was.)
      const other = linesBefore.find((l) => l.releases === "rel-aaaaaa" && l.id !== target.id)!;
      const truncated = `${dir}/${other.id}.dump`;
      await sh("web1", `truncate -s $(( $(wc -c < ${truncated}) / 2 )) ${truncated}`);
      const sha = await sh("web1", `sha256sum < ${truncated} | cut -c1-64`);
      await sh("web1", `sed -i 's/ ${other.sha256} / ${sha} /' ${dir}/manifest`);
      await assert.rejects(resource.up(inputs({ releases: ["rel-bbbbbb"], restore: other.id })), (err: Error) => {
        errors.push(err.message);
        assert.match(err.message, /restore refused: the backup is corrupt; the database was not touched/);
        assert.match(
          err.message,
          /verification failed: pg_restore (--list|--data-only \(reading every data block\)) \(exit 1\); refusing to restore/,
        );
        assert.match(err.message, /pg_restore: error: .*(end of file|unexpected EOF|could not read)/i);
        return true;
      });
      assert.equal(await pgRows(), rowsBefore, "database untouched");
      assert.equal((await manifest("web1", dir)).length, linesBefore.length, "no safety backup");
    });

    it("the password is in no output, no plain state, no provider log, no backup log, no file, no error", async () => {
      assert.ok(!JSON.stringify(resource.state!.plainOutputs).includes(NEEDLE), "outputs");
      assert.ok(!resource.plainStateJson().includes(NEEDLE), "plain state");
      assert.ok(resource.state!.secretInputKeys.includes("postgres"), "the postgres input holds a secret");
      assert.ok(!host.logs().includes(NEEDLE), "provider host log");
      assert.ok(!(await sh("web1", `cat ${dir}/backup.log`)).includes(NEEDLE), "backup.log");
      assert.equal(
        await sh("web1", `grep -rlaF -e ${NEEDLE} ${ROOT} /tmp /root 2>/dev/null || true`),
        "",
        "files on web1",
      );
      assert.ok(errors.length >= 2 && errors.every((e) => !e.includes(NEEDLE)), "error messages");
    });

    it("refresh lists the backups whose files exist; destroy leaves the backups on the host", async () => {
      const lines = await manifest("web1", dir);
      await sh("web1", `rm ${dir}/${lines[0]!.id}.dump`);
      const refreshed = await resource.refresh();
      assert.deepEqual(
        refreshed!.plainOutputs["retained"],
        lines.slice(1).map((l) => l.id),
      );
      await resource.destroy();
      assert.equal((await filesIn("web1", dir)).filter((f) => f.endsWith(".dump")).length, lines.length - 1);
    });
  });

  describe("tools that fail (web3, shims in /usr/local/bin)", () => {
    const dir = `${ROOT}/broken/backups`;
    /** Installs a marked shim for `tool`; removed after the test (and by the next run if it crashed). */
    async function withShim(tool: string, body: string[], test: () => Promise<void>): Promise<void> {
      const shim = `/usr/local/bin/${tool}`;
      await sh(
        "web3",
        `test ! -e ${shim} && cat > ${shim} && chmod 755 ${shim}`,
        ["#!/bin/sh", SHIM_MARK, ...body, ""].join("\n"),
      );
      try {
        await test();
      } finally {
        await sh("web3", `if grep -qs '${SHIM_MARK}' ${shim}; then rm -f ${shim}; fi`);
      }
    }

    it("when the sqlite3 CLI's .backup gives up (busy database), VACUUM INTO takes a consistent backup", async () => {
      const db = `${ROOT}/fallback/app.db`;
      await sh(
        "web3",
        `mkdir -p ${ROOT}/fallback && sqlite3 ${db} "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items (v) VALUES ('a'), ('b'), ('c');"`,
      );
      // What the CLI does when the app keeps committing: `.backup` fails with "database is locked".
      const shim = [
        `for a in "$@"; do case "$a" in .backup*) echo 'Error: database is locked' >&2; exit 1;; esac; done`,
        `exec /usr/bin/sqlite3 "$@"`,
      ];
      await withShim("sqlite3", shim, async () => {
        const resource = new SimulatedResource(host, backupProvider, { name: "fallback" });
        const { state } = await resource.up({
          name: "fallback",
          connection: secret(connectionFor("web3")),
          engine: "sqlite",
          sqlite: { path: db },
          backupsDir: `${ROOT}/fallback/backups`,
          keep: 5,
          keepDays: 0,
          protectReleases: [],
          verifyTables: ["items"],
          releases: ["rel-dddddd"],
          trigger: "",
          restore: "",
          stepTimeoutMs: 60_000,
          deleteBackupsOnDestroy: false,
        });
        assert.match(await sh("web3", `tail -1 ${ROOT}/fallback/backups/backup.log`), /exit=0 method=vacuum-into$/);
        const file = String(state!.plainOutputs["latestPath"]);
        const check = await sh(
          "web3",
          `t=$(mktemp); gzip -dc ${file} > $t && /usr/bin/sqlite3 $t 'PRAGMA integrity_check; SELECT group_concat(v) FROM items;'; rm -f $t`,
        );
        assert.equal(check, "ok\na,b,c");
        assert.equal((await manifest("web3", `${ROOT}/fallback/backups`))[0]!.counts, "items=3");
      });
    });

    it("a pg_dump that writes garbage: the backup fails verification, the file is deleted, nothing recorded", async () => {
      // A pg_dump that "succeeds" but writes garbage (a broken client, a disk that lies…).
      const shim = [
        `while [ $# -gt 0 ]; do [ "$1" = -f ] && out=$2; shift; done`,
        `head -c 4096 /dev/urandom > "$out"`,
      ];
      await withShim("pg_dump", shim, () => brokenDump());
    });

    async function brokenDump(): Promise<void> {
      const pg = postgres();
      const resource = new SimulatedResource(host, backupProvider, {
        name: "broken",
        additionalSecretOutputs: ["connection"],
      });
      await assert.rejects(
        resource.up({
          name: "broken",
          connection: secret(connectionFor("web3")),
          engine: "postgres",
          postgres: {
            host: pg.host,
            port: pg.port,
            database: pg.database,
            user: pg.user,
            password: secret(pg.password),
          },
          backupsDir: dir,
          keep: 5,
          keepDays: 0,
          protectReleases: [],
          verifyTables: [],
          releases: ["rel-cccccc"],
          trigger: "",
          restore: "",
          stepTimeoutMs: 60_000,
          deleteBackupsOnDestroy: false,
        }),
        (err: Error) => {
          assert.ok(err instanceof ProviderError, String(err));
          assert.match(err.message, /the new backup failed verification: it was deleted and not recorded/);
          assert.match(err.message, /step "backup" failed: exit code 81/);
          assert.match(err.message, /verification failed: pg_restore --list \(exit 1\)/);
          assert.match(err.message, /input file does not appear to be a valid archive/);
          return true;
        },
      );
      assert.equal(resource.state, undefined, "no resource recorded");
      assert.deepEqual(await filesIn("web3", dir), [".lock", "backup.log"], "no dump, no manifest, no work dir");
      assert.match(await sh("web3", `cat ${dir}/backup.log`), /backup broken-\d{8}T\d{6}Z-rel-cccccc exit=81$/);
    }
  });

  describe("SQLite on web2", () => {
    const dir = `${ROOT}/sqlapp/backups`;
    const db = `${ROOT}/sqlapp/app.db`;
    let resource: SimulatedResource;

    function inputs(over: Props = {}): Props {
      return {
        name: "sqlapp",
        connection: secret(connectionFor("web2")),
        engine: "sqlite",
        sqlite: { path: db },
        backupsDir: dir,
        keep: 10,
        keepDays: 0,
        protectReleases: [],
        verifyTables: ["items", "fixtures"],
        releases: ["rel-111111"],
        trigger: "",
        restore: "",
        stepTimeoutMs: 60_000,
        deleteBackupsOnDestroy: false,
        ...over,
      };
    }

    before(async () => {
      await sh(
        "web2",
        `mkdir -p ${ROOT}/sqlapp && sqlite3 ${db} "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); ` +
          `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) INSERT INTO items (v) SELECT hex(randomblob(64)) FROM c; ` +
          `CREATE TABLE fixtures (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO fixtures (name) VALUES ('par can'), ('moving head');"`,
      );
      resource = new SimulatedResource(host, backupProvider, {
        name: "sqlapp",
        additionalSecretOutputs: ["connection"],
      });
    });

    after(async () => {
      await sshRun("web2", `[ -f ${ROOT}/sqlapp/writer.pid ] && kill "$(cat ${ROOT}/sqlapp/writer.pid)" || true`);
    });

    it("a backup taken while the app writes continuously is consistent (integrity ok, count between before and after)", async () => {
      const count = async () =>
        Number(await sh("web2", `sqlite3 -cmd '.timeout 10000' ${db} 'SELECT count(*) FROM items'`));
      // The app, twice: a commit every ~2 ms, then flat out (under which the sqlite3 CLI's
      // .backup tends to give up and VACUUM INTO takes over; backup.log says which ran).
      for (const [pause, release] of [
        ["0.002", "rel-111111"],
        ["0", "rel-111112"],
      ] as const) {
        const writer = `import sqlite3, time\ndb = sqlite3.connect("${db}", timeout=30)\nwhile True:\n    db.execute("INSERT INTO items (v) VALUES (hex(randomblob(64)))")\n    db.commit()\n    time.sleep(${pause})\n`;
        await sh(
          "web2",
          `cat > ${ROOT}/sqlapp/writer.py && { nohup python3 ${ROOT}/sqlapp/writer.py > /dev/null 2>&1 & echo $! > ${ROOT}/sqlapp/writer.pid; }`,
          writer,
        );
        await new Promise((r) => setTimeout(r, 500));
        const before = await count();
        const started = Date.now();
        const { state } = await resource.up(inputs({ releases: [release] }));
        const took = Date.now() - started;
        const after = await count();
        await sh("web2", `kill "$(cat ${ROOT}/sqlapp/writer.pid)" && rm ${ROOT}/sqlapp/writer.pid`);
        const method = /method=(\S+)$/.exec(await sh("web2", `tail -1 ${dir}/backup.log`))?.[1];
        console.log(
          `      (sqlite backup under writes every ${pause} s: ${method}, ${took} ms; rows ${before} → ${after})`,
        );
        assert.ok(after > before, "the app kept writing during the backup");
        const out = state!.plainOutputs;
        const line = (await manifest("web2", dir)).find((l) => l.id === out["latestId"])!;
        const inBackup = Number(/items=(\d+)/.exec(line.counts)![1]);
        assert.ok(inBackup >= before && inBackup <= after, `${before} <= ${inBackup} <= ${after}`);
        assert.match(line.counts, /,fixtures=2$/);
        assert.equal(out["latestPath"], `${dir}/${out["latestId"]}.sqlite.gz`);
        assert.equal(await sh("web2", `stat -c %a ${out["latestPath"]}`), "600");
        // Check the file independently of the provider: decompress, integrity_check, count.
        const check = await sh(
          "web2",
          `t=$(mktemp); gzip -dc ${out["latestPath"]} > $t && sqlite3 $t 'PRAGMA integrity_check; SELECT count(*) FROM items;'; rm -f $t`,
        );
        assert.equal(check, `ok\n${inBackup}`);
      }
    });

    it("backup → change rows → restore (via `restore`) gives back exactly the original rows, after a safety backup", async () => {
      const original = await sqliteRows(db);
      const { state } = await resource.up(inputs({ releases: ["rel-222222"] }));
      const good = String(state!.plainOutputs["latestId"]);
      await sh(
        "web2",
        `sqlite3 ${db} "DELETE FROM items WHERE id > 100; UPDATE fixtures SET name = 'changed'; INSERT INTO fixtures (name) VALUES ('strobe');"`,
      );
      const changed = await sqliteRows(db);
      const started = Date.now();
      const restored = await resource.up(inputs({ releases: ["rel-222222"], restore: good }));
      console.log(`      (sqlite restore with safety backup took ${Date.now() - started} ms)`);
      assert.equal(await sqliteRows(db), original);
      assert.equal(await sh("web2", `sqlite3 ${db} 'PRAGMA integrity_check'`), "ok");
      const safety = String((restored.state!.plainOutputs["lastRestore"] as Props)["safetyBackupId"]);
      assert.match(safety, /^sqlapp-\d{8}T\d{6}Z-pre-restore$/);
      const copy = `${ROOT}/sqlapp/safety-copy.db`;
      await sh("web2", `gzip -dc ${dir}/${safety}.sqlite.gz > ${copy}`);
      const inSafety = await sqliteRows(copy);
      await sh("web2", `rm -f ${copy}`);
      assert.equal(inSafety, changed, "the safety backup holds the database as it was before the restore");
      assert.equal((await manifest("web2", dir)).at(-1)!.id, safety, "recorded as a verified backup");
    });

    it("a corrupted live database fails verification at backup time: nothing recorded, no file left", async () => {
      await sh("web2", `cp -p ${db} ${db}.good`);
      // Garbage over a b-tree page (page 1, the header, stays valid, so sqlite3 still opens the file).
      await sh(
        "web2",
        `head -c 2048 /dev/urandom | dd of=${db} bs=1 seek=$((4096 * 3 + 100)) conv=notrunc status=none`,
      );
      const before = await manifest("web2", dir);
      const filesBefore = await filesIn("web2", dir);
      await assert.rejects(resource.up(inputs({ releases: ["rel-333333"] })), (err: Error) => {
        assert.match(err.message, /the new backup failed verification: it was deleted and not recorded/);
        assert.match(err.message, /verification failed: PRAGMA integrity_check( \(not ok\))? \(exit \d+\)/);
        assert.match(err.message, /exit code 81/);
        return true;
      });
      assert.deepEqual(await manifest("web2", dir), before);
      assert.deepEqual(await filesIn("web2", dir), filesBefore);
      await sh("web2", `mv -f ${db}.good ${db}`);
    });

    it("a corrupted backup file is refused on restore; the database is untouched", async () => {
      const target = (await manifest("web2", dir))[0]!;
      const file = `${dir}/${target.id}.sqlite.gz`;
      await sh("web2", `printf 'xxxx' | dd of=${file} bs=1 seek=100 conv=notrunc status=none`);
      const rows = await sqliteRows(db);
      await assert.rejects(
        resource.up(inputs({ releases: ["rel-333333"], restore: target.id })),
        /restore refused: the backup is corrupt[\s\S]*has sha256/,
      );
      assert.equal(await sqliteRows(db), rows);
      await sh("web2", `rm -f ${file}`);
    });

    it("retention keeps `keep` newest and the young ones, never the protected or the newest", async () => {
      const retDir = `${ROOT}/sqlapp-ret/backups`;
      const fresh = new SimulatedResource(host, backupProvider, {
        name: "sqlapp-ret",
        additionalSecretOutputs: ["connection"],
      });
      const ret = (over: Props) =>
        inputs({ name: "sqlapp-ret", backupsDir: retDir, protectReleases: ["rel-r1r1r1"], ...over });
      const ids: string[] = [];
      for (const release of ["rel-r1r1r1", "rel-r2r2r2", "rel-r3r3r3", "rel-r4r4r4"]) {
        const { state } = await fresh.up(ret({ releases: [release], keep: 2 }));
        ids.push(String(state!.plainOutputs["latestId"]));
      }
      const [r1, , r3, r4] = ids;
      const expected = [r1!, r3!, r4!];
      assert.deepEqual(fresh.state!.plainOutputs["retained"], expected, "r2 pruned; r1 protected; r3, r4 newest");
      assert.deepEqual(
        (await manifest("web2", retDir)).map((l) => l.id),
        expected,
      );
      assert.deepEqual(
        (await filesIn("web2", retDir)).filter((f) => f.endsWith(".gz")),
        expected.map((id) => `${id}.sqlite.gz`).sort(),
      );
      // Age rule: make r1, r3 and r4 ten days old; keep: 0, keepDays: 1 then keeps the new one,
      // and r1 only because its release is protected.
      const old = new Date(Date.now() - 10 * 86_400_000).toISOString();
      const age = (id: string) => `-e 's/^\\(${id} [0-9a-f]* [0-9]*\\) [^ ]*/\\1 ${old}/'`;
      await sh("web2", `sed -i ${age(r1!)} ${age(r3!)} ${age(r4!)} ${retDir}/manifest`);
      assert.equal((await manifest("web2", retDir)).filter((l) => l.time === old).length, 3);
      const { state } = await fresh.up(ret({ releases: ["rel-r5r5r5"], keep: 0, keepDays: 1 }));
      const r5 = String(state!.plainOutputs["latestId"]);
      assert.deepEqual(state!.plainOutputs["retained"], [r1, r5]);
      assert.deepEqual(
        (await filesIn("web2", retDir)).filter((f) => f.endsWith(".gz")),
        [r1, r5].map((id) => `${id}.sqlite.gz`).sort(),
      );
      await fresh.destroy();
    });

    it("`npm run restore` (scripts/restore.ts) lists and restores through the same code", async () => {
      const { state } = await resource.up(inputs({ releases: ["rel-444444"] }));
      const id = String(state!.plainOutputs["latestId"]);
      const rows = await sqliteRows(db);
      await sh("web2", `sqlite3 ${db} "DELETE FROM fixtures"`);
      const inv = loadInventory();
      const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-restore-"));
      const cfg = path.join(cfgDir, "restore.yaml");
      fs.writeFileSync(
        cfg,
        [
          `host: { address: ${hostAddress("web2")}, user: root, privateKeyFile: ${inv.ssh_key}, knownHostsFile: ${inv.known_hosts} }`,
          `name: sqlapp`,
          `engine: sqlite`,
          `sqlite: { path: ${db} }`,
          `backupsDir: ${dir}`,
          `verifyTables: [items, fixtures]`,
        ].join("\n"),
      );
      const cli = (args: string[]) =>
        promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/restore.ts", ...args], {
          cwd: path.resolve(__dirname, "..", ".."),
        });
      try {
        const listed = await cli(["--list", "--config", cfg]);
        assert.match(
          listed.stdout,
          new RegExp(`^${id}  \\S+  \\d+ bytes  releases=rel-444444  items=\\d+,fixtures=2$`, "m"),
        );
        await assert.rejects(cli([id, "--config", cfg]), /add --yes to do it/);
        assert.equal(
          await sh("web2", `sqlite3 ${db} 'SELECT count(*) FROM fixtures'`),
          "0",
          "nothing done without --yes",
        );
        const done = await cli([id, "--config", cfg, "--yes"]);
        assert.match(
          done.stdout,
          new RegExp(`restored ${id}; safety backup of the previous database: sqlapp-\\d{8}T\\d{6}Z-pre-restore`),
        );
        assert.equal(await sqliteRows(db), rows);
      } finally {
        fs.rmSync(cfgDir, { recursive: true, force: true });
      }
    });

    it("destroy with deleteBackupsOnDestroy removes the backups, the manifest and the empty directory", async () => {
      await resource.up(inputs({ releases: ["rel-444444"], deleteBackupsOnDestroy: true }));
      assert.ok((await filesIn("web2", dir)).some((f) => f.endsWith(".sqlite.gz")));
      await resource.destroy();
      assert.equal(await sh("web2", `test -e ${dir} && echo yes || echo no`), "no");
      assert.equal(
        await sh("web2", `test -f ${db} && echo yes || echo no`),
        "yes",
        "the database itself is not touched",
      );
    });
  });

  /**
   * Issue 29 ("a service's own account never becomes root"): an SQLite database's folder is one
   * its app's user can write, and the backup and restore run as root. Root chowned
   * `<db>-wal/-shm/-journal` with `chown --reference` after sqlite3, through links that user put
   * there, and ran sqlite3 on a database path the user had replaced with a link. The victims are
   * root-only files outside fleet's root: their owner, mode and content stay, and the backup and
   * restore still work.
   */
  describe("SQLite backup and restore: links the database's user plants are never followed by root (real server, web1, issue 29)", function () {
    this.timeout(300_000);
    const HOST = "web1";
    /** The app's folder: its user's, as SQLite needs it. */
    const APP = `${ROOT}/hostile/app`;
    const DB = `${APP}/aether.db`;
    const DIR = `${ROOT}/hostile/backups`;
    const VICTIM = `/etc/fleet-victim-backup-${TAG}`;
    /** A database root keeps for itself: what a database path turned link would reach. */
    const ROOT_DB = `/root/fleet-victim-backup-${TAG}.db`;
    /** Marked (SHIM_MARK): only ours is ever removed, and the next run removes one a crash left. */
    const SHIM = "/usr/local/bin/sqlite3";
    let resource: SimulatedResource;
    let baseline: string;
    let release = 0;
    const victims = () => stateOf(HOST, [VICTIM, ROOT_DB]);
    const rows = () => asUser(HOST, `sqlite3 -cmd '.timeout 10000' ${DB} 'SELECT group_concat(v) FROM items'`);

    function inputs(over: Props = {}): Props {
      return {
        name: "hostiledb",
        connection: secret(connectionFor(HOST)),
        engine: "sqlite",
        sqlite: { path: DB },
        backupsDir: DIR,
        keep: 20,
        keepDays: 0,
        protectReleases: [],
        verifyTables: ["items"],
        releases: [`rel-${release}`],
        trigger: "",
        restore: "",
        stepTimeoutMs: 60_000,
        deleteBackupsOnDestroy: true,
        ...over,
      };
    }
    /** A new backup (a new release list); its id. A refused one leaves the recorded release as it was. */
    const backup = async () => {
      const { state } = await resource.up(inputs({ releases: [`rel-${release + 1}`] }));
      release++;
      return String(state!.plainOutputs["latestId"]);
    };
    const restore = (id: string) => resource.up(inputs({ restore: id }));

    before(async () => {
      await sh(
        HOST,
        [
          `mkdir -p ${APP} && chown deploy:deploy ${APP}`,
          `printf '%s\\n' ${shq(`root's own ${TAG}`)} > ${VICTIM}; chmod 600 ${VICTIM}`,
          `sqlite3 ${ROOT_DB} "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items (v) VALUES ('root only');"`,
          `chmod 600 ${ROOT_DB}`,
        ].join("\n"),
      );
      // The app's database, in the default (rollback journal) mode: sqlite3 never opens its -shm.
      await asUser(
        HOST,
        `sqlite3 ${DB} "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items (v) VALUES ('a'), ('b');"`,
      );
      baseline = await victims();
      resource = new SimulatedResource(host, backupProvider, {
        name: "hostiledb",
        additionalSecretOutputs: ["connection"],
      });
      await backup();
    });

    after(async () => {
      await sh(HOST, `if grep -qs '${SHIM_MARK}' ${SHIM}; then rm -f ${SHIM}; fi`).catch(() => undefined);
      await resource?.destroy().catch(() => undefined);
      await sshRun(HOST, `rm -rf ${ROOT}/hostile ${VICTIM} ${ROOT_DB}`).catch(() => undefined);
    });

    it("<db>-shm a link to a root-only file (the issue's /etc/shadow): a backup and a restore work and chown nothing through it", async () => {
      await asUser(HOST, `ln -s ${VICTIM} ${DB}-shm`);
      try {
        const id = await backup();
        assert.equal(await victims(), baseline, "after the backup: the victim's owner, mode and content");
        await asUser(HOST, `sqlite3 ${DB} "DELETE FROM items; INSERT INTO items (v) VALUES ('changed');"`);
        await restore(id);
        assert.equal(await rows(), "a,b", "the restore gave the rows back");
        assert.equal(await victims(), baseline, "after the restore: the victim's owner, mode and content");
        assert.equal(await sh(HOST, `stat -c '%U %F' ${DB} ${DB}-shm`), "deploy regular file\ndeploy symbolic link");
      } finally {
        await asUser(HOST, `rm -f ${DB}-shm`);
      }
    });

    it("-wal, -shm and -journal links that appear right after each of root's sqlite3 runs (the app winning every race): nothing is chowned through them", async () => {
      // A sqlite3 in front of the real one, as root installs it: on this database only, the app's
      // user takes its links away before sqlite3 opens it (sqlite3 refuses to open them) and puts
      // them back the moment it exits, before anything else in the script runs.
      const plant = `for s in -wal -shm -journal; do ln -sfn "$2" "$1$s"; done`;
      const unplant = `for s in -wal -shm -journal; do if [ -L "$1$s" ]; then rm -f "$1$s"; fi; done`;
      const unplantNow = () => asUser(HOST, `/bin/sh -c ${shq(unplant)} sh ${DB}`);
      const shim = [
        "#!/bin/sh",
        SHIM_MARK,
        `DB=${shq(DB)}; hit=`,
        `for a in "$@"; do [ "$a" = "$DB" ] && hit=1; done`,
        `[ -z "$hit" ] || runuser -u deploy -- /bin/sh -c ${shq(unplant)} sh "$DB"`,
        `/usr/bin/sqlite3 "$@"; rc=$?`,
        `[ -z "$hit" ] || runuser -u deploy -- /bin/sh -c ${shq(plant)} sh "$DB" ${shq(VICTIM)}`,
        `exit $rc`,
        "",
      ].join("\n");
      await sh(HOST, `test ! -e ${SHIM} && cat > ${SHIM} && chmod 755 ${SHIM}`, shim);
      try {
        const id = await backup();
        assert.equal(await sh(HOST, `stat -c %F ${DB}-wal`), "symbolic link", "the links were there after the backup");
        assert.equal(await victims(), baseline, "after the backup: the victim's owner, mode and content");
        await unplantNow();
        await asUser(HOST, `sqlite3 ${DB} "DELETE FROM items"`);
        await restore(id);
        assert.equal(await victims(), baseline, "after the restore: the victim's owner, mode and content");
        await unplantNow();
        assert.equal(await rows(), "a,b", "the restore gave the rows back");
      } finally {
        await sh(HOST, `if grep -qs '${SHIM_MARK}' ${SHIM}; then rm -f ${SHIM}; fi`);
        await unplantNow();
      }
    });

    it("the database path itself a link (to root's own database): backup and restore are refused naming it; root's database is untouched", async () => {
      const id = await backup();
      await asUser(HOST, `mv ${DB} ${DB}.real && ln -s ${ROOT_DB} ${DB}`);
      try {
        const refused = new RegExp(`refusing to back up ${DB.replace(/[.]/g, "\\.")}: it is a symbolic link`);
        await assert.rejects(backup(), refused);
        await assert.rejects(restore(id), refused, "the safety backup refuses before the restore touches anything");
        assert.equal(await victims(), baseline, "root's database and the victim: owner, mode and content");
        const manifest = await sh(HOST, `cat ${DIR}/manifest`);
        assert.ok(manifest.trim().split("\n").at(-1)!.startsWith(`${id} `), "nothing recorded after the refusals");
      } finally {
        await asUser(HOST, `rm -f ${DB} && mv ${DB}.real ${DB}`);
      }
    });
  });
});
