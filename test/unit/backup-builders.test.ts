import { strict as assert } from "assert";
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  BACKUP_EXIT,
  backupId,
  backupPath,
  backupScript,
  backupTimestamp,
  defaultBackupsDir,
  deleteBackupsScript,
  listScript,
  moveBackupsScript,
  parseCounts,
  parseManifestLine,
  pruneScript,
  releaseLabel,
  restoreScript,
  type BackupSetSpec,
} from "../../commands/backup";
import { COUNT_COPY_ROWS, connectionEnv, pgpassLine } from "../../commands/backup-engines";
import { parseFacts } from "../../commands/facts";
import { shq } from "../../commands/quote";

/** A password with everything that could break quoting or the pgpass format. */
const PASSWORD = `pa:ss\\wo'rd"$(touch /tmp/pwned)\`id\`$HOME ünï`;
const PG: BackupSetSpec = {
  backupsDir: "/srv/fleet/appdb/backups",
  engine: "postgres",
  target: {
    engine: "postgres",
    postgres: { host: "127.0.0.14", port: 5432, database: "appdb", user: "app", password: PASSWORD },
  },
  verifyTables: ["items", "audit.events"],
};
const SQLITE: BackupSetSpec = {
  backupsDir: "/srv/fleet/aether/backups",
  engine: "sqlite",
  target: { engine: "sqlite", sqlite: { path: "/home/ramzt/aether.db" } },
  verifyTables: ["fixtures"],
};
const NEW = { id: "appdb-20261122T165722Z-0123456789ab", time: "2026-11-22T16:57:22.123Z", releases: ["0123456789ab"] };
const SAFETY = { id: "appdb-20261122T170000Z-pre-restore", time: "2026-11-22T17:00:00.000Z", releases: [] };

function allScripts(spec: BackupSetSpec): Record<string, string> {
  return {
    backup: backupScript(spec, NEW),
    restore: restoreScript(spec, "appdb-20261101T000000Z-abcdefabcdef", SAFETY),
    prune: pruneScript(spec, ["appdb-20261101T000000Z-abcdefabcdef", "appdb-20261102T000000Z-none"]),
    list: listScript(spec),
    delete: deleteBackupsScript(spec),
    move: moveBackupsScript(spec, "appdb", "/srv/fleet/appdb/backups"),
  };
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

describe("commands/backup builders", () => {
  for (const [engine, spec] of [
    ["postgres", PG],
    ["sqlite", SQLITE],
  ] as const) {
    for (const [name, script] of Object.entries(allScripts(spec))) {
      it(`${engine} ${name}: valid POSIX sh (dash -n)`, () => {
        execFileSync("/bin/sh", ["-n"], { input: script });
      });
    }
  }

  it("no script holds the password; only the PGPASSFILE write holds it, base64-encoded, once", () => {
    const encoded = b64(pgpassLine(PG.target.engine === "postgres" ? PG.target.postgres : (undefined as never)));
    for (const [name, script] of Object.entries(allScripts(PG))) {
      assert.ok(!script.includes(PASSWORD), `${name} contains the password`);
      for (const piece of ["wo'rd", "touch /tmp/pwned", "pa:ss"])
        assert.ok(!script.includes(piece), `${name}: ${piece}`);
      const lines = script.split("\n").filter((l) => l.includes(encoded));
      if (name === "backup" || name === "restore") {
        assert.equal(lines.length, 1, `${name}: one pgpass write`);
        assert.match(lines[0]!, /^\(umask 077 && printf '%s' \S+ \| base64 -d > "\$T\/pgpass"\)$/);
      } else {
        assert.equal(lines.length, 0, `${name} needs no database access`);
      }
    }
  });

  it("the PGPASSFILE written by the script is byte-exact, 0600, with : and \\ escaped", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-pgpass-"));
    try {
      const lines = connectionEnv(PG.target);
      execFileSync("/bin/sh", ["-c", `set -eu; T=${dir}\n${lines.join("\n")}\nprintf '%s' "$PGPASSFILE"`]);
      const file = path.join(dir, "pgpass");
      assert.equal(fs.readFileSync(file, "utf8"), `*:*:*:app:pa\\:ss\\\\wo'rd"$(touch /tmp/pwned)\`id\`$HOME ünï\n`);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.ok(!fs.existsSync("/tmp/pwned"));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the password reaches pg tools through PGPASSFILE only: never argv, never PGPASSWORD", () => {
    const script = backupScript(PG, NEW);
    assert.ok(!script.includes("PGPASSWORD"));
    assert.match(script, /export PGPASSFILE PGHOST PGPORT PGUSER PGDATABASE/);
    assert.match(script, /pg_dump -Fc --no-password -f "\$T\/new"/);
    assert.match(restoreScript(PG, "x-1", SAFETY), /pg_restore --clean --if-exists --no-owner --single-transaction/);
  });

  it("a backup is verified before it is recorded, and a failed verification drops it", () => {
    for (const spec of [PG, SQLITE]) {
      const script = backupScript(spec, NEW);
      const verify = script.indexOf("phase verify");
      const record = script.indexOf('>> "$B/manifest"');
      assert.ok(verify > 0 && record > verify, "verification comes before the manifest line");
      assert.ok(script.indexOf('mv "$T/new" "$F"') > verify, "the file is moved into place only after verification");
      assert.match(script, /VERIFY_DROP="\$T\/new"; VERIFY_EXIT=81/);
    }
    assert.match(backupScript(PG, NEW), /pg_restore --list "\$T\/new"/);
    assert.match(backupScript(SQLITE, NEW), /'PRAGMA integrity_check'/);
    assert.match(backupScript(SQLITE, NEW), /\.backup '\$T\/copy\.sqlite'/);
    assert.equal(BACKUP_EXIT.verifyFailed, 81);
  });

  it("restore checks the manifest and sha256, verifies, takes a safety backup, then restores", () => {
    const script = restoreScript(SQLITE, "aether-20261101T000000Z-abc", SAFETY);
    const order = [
      "sha256sum <",
      "phase restore-verify",
      "phase safety-backup",
      "phase restore-apply",
      "phase restore-counts",
    ];
    const at = order.map((needle) => script.indexOf(needle));
    at.forEach((i, k) => assert.ok(i > 0, `${order[k]} missing`));
    assert.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
      `order: ${order.join(" → ")}`,
    );
    assert.match(script, /\.restore '\$T\/restore\.sqlite'/);
    assert.ok(script.includes(`F="$B"/${SAFETY.id}.sqlite.gz`));
  });

  it("names: <name>-<UTC timestamp>-<release>.<ext> in <root>/.backups/<name>", () => {
    const at = new Date("2026-11-22T16:57:22.987Z");
    assert.equal(backupTimestamp(at), "20261122T165722Z");
    assert.equal(backupId("appdb", at, releaseLabel(["0123456789ab"])), "appdb-20261122T165722Z-0123456789ab");
    assert.equal(releaseLabel([]), "none");
    assert.equal(releaseLabel(["aaaaaa", "bbbbbb"]), "aaaaaa+bbbbbb");
    const many = Array.from({ length: 9 }, (_, i) => `release-${i}-0123456789`);
    assert.equal(releaseLabel(many), "release-0-0123456789+8more");
    assert.equal(defaultBackupsDir("/srv/fleet/", "appdb"), "/srv/fleet/.backups/appdb");
    assert.equal(backupPath(PG, "x"), "/srv/fleet/appdb/backups/x.dump");
    assert.equal(backupPath(SQLITE, "x"), "/srv/fleet/aether/backups/x.sqlite.gz");
  });

  it("manifest lines and count facts parse; malformed lines do not", () => {
    const sha = "a".repeat(64);
    assert.deepEqual(parseManifestLine(`x-1 ${sha} 1234 2026-11-22T16:57:22.123Z r1,r2 items=3,audit.events=0`), {
      id: "x-1",
      sha256: sha,
      size: 1234,
      time: "2026-11-22T16:57:22.123Z",
      releases: ["r1", "r2"],
      counts: { items: 3, "audit.events": 0 },
    });
    assert.deepEqual(parseManifestLine(`x-2 ${sha} 1 2026-11-22T16:57:22Z - -`)?.releases, []);
    assert.equal(parseManifestLine(`x-3 nothex 1 t - -`), undefined);
    assert.equal(parseManifestLine(`x-4 ${sha} 1 t - - extra`), undefined);
    assert.deepEqual(parseCounts(["items 3", "audit.events 10", "bad"]), { items: 3, "audit.events": 10 });
    const facts = parseFacts("backup_count=items 3\nrestored_count=items 3\n");
    assert.deepEqual(facts.all["restored_count"], ["items 3"]);
  });

  it("counts the rows of pg_restore's COPY blocks (empty tables, escaped newlines, schemas)", () => {
    const sample = [
      "SET statement_timeout = 0;",
      "COPY public.empty (id) FROM stdin;",
      "\\.",
      "COPY public.items (id, s) FROM stdin;",
      "1\ta\\nb",
      "2\tCOPY x FROM stdin;",
      "3\t\\\\.",
      "COPY y FROM stdin;",
      "\\.",
      "COPY audit.events (id) FROM stdin;",
      "1",
      "\\.",
      "SELECT pg_catalog.setval('public.items_id_seq', 3, true);",
      "",
    ].join("\n");
    const out = execFileSync("awk", [COUNT_COPY_ROWS], { input: sample, encoding: "utf8" });
    assert.equal(out, "count=empty 0\ncount=items 4\ncount=audit.events 1\n");
  });
});

describe("commands/backup builders: hostile values (issue #10)", () => {
  /** Ids as a host's manifest may hold them: anything but whitespace and '/'. */
  const IDS = [
    "a$(touch${IFS}PWNED)b",
    "b;touch${IFS}PWNED",
    'c"d',
    "e\\nf",
    "g\\ch",
    "'",
    "`id`",
    "x;rm",
    "\\\\",
    "%s",
    "-rf",
  ];

  it("prune and list carry ids read back from the manifest byte-exact, and never run them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-prune-"));
    try {
      const B = path.join(dir, "backups");
      fs.mkdirSync(B);
      fs.writeFileSync(path.join(B, "manifest"), IDS.map((id) => `${id} ${"0".repeat(64)} 1 t - -\n`).join(""));
      for (const id of IDS) fs.writeFileSync(path.join(B, `${id}.sqlite.gz`), "");
      const spec = { backupsDir: B, engine: "sqlite" as const };
      const run = (script: string) => execFileSync("/bin/sh", ["-s"], { input: script, cwd: dir, encoding: "utf8" });
      const listed = parseFacts(run(listScript(spec))).all["backup"] ?? [];
      assert.deepEqual(
        listed.map((l) => l.split(" ")[0]),
        IDS,
      );
      const deleted = parseFacts(run(pruneScript(spec, IDS))).all["deleted"];
      assert.deepEqual(deleted, IDS);
      assert.equal(fs.readFileSync(path.join(B, "manifest"), "utf8"), "", "every pruned id left the manifest");
      assert.deepEqual(fs.readdirSync(B).sort(), [".lock", "backup.log", "manifest"]);
      assert.ok(!fs.existsSync(path.join(dir, "PWNED")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("pg_restore gets the database as a quoted dbname, never as a connection string", () => {
    const database = `app=db host=evil.example 'x\\y`;
    const spec: BackupSetSpec = {
      ...PG,
      target: {
        engine: "postgres",
        postgres: { ...(PG.target.engine === "postgres" ? PG.target.postgres : ({} as never)), database },
      },
    };
    const line = restoreScript(spec, "appdb-20261101T000000Z-abcdefabcdef", SAFETY)
      .split("\n")
      .find((l) => l.startsWith("pg_restore --clean"))!;
    // The shell's view of the -d argument: a stub pg_restore prints its arguments.
    const args = execFileSync("/bin/sh", ["-c", `pg_restore() { printf '%s\\n' "$@"; exit 0; }\nT=/tmp; ${line}`], {
      encoding: "utf8",
    }).split("\n");
    assert.equal(args[args.indexOf("-d") + 1], `dbname='app=db host=evil.example \\'x\\\\y'`);
  });
});

describe("commands/backup builders: a set moves with its backupsDir (security issue: a service's own account never becomes root)", () => {
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  const line = (id: string, body: string) => `${id} ${sha(body)} ${body.length} 2026-11-22T16:57:22Z - -\n`;
  const A1 = "aether-db-20261101T000000Z-aaaaaa";
  const A2 = "aether-db-20261102T000000Z-none";
  const OTHER = "other-20261101T000000Z-bbbbbb";
  const run = (script: string, cwd: string) =>
    parseFacts(execFileSync("/bin/sh", ["-s"], { input: script, cwd, encoding: "utf8" }));

  /** A root with service aether-db's folder holding the set's backups where the old default put them. */
  function legacyRoot() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-move-"));
    const svc = path.join(root, "aether-db");
    const old = path.join(svc, "backups");
    fs.mkdirSync(path.join(svc, "releases", "r1"), { recursive: true });
    fs.mkdirSync(old, { mode: 0o700 });
    fs.writeFileSync(path.join(old, `${A1}.sqlite.gz`), "one", { mode: 0o600 });
    fs.writeFileSync(path.join(old, `${A2}.sqlite.gz`), "two", { mode: 0o600 });
    fs.writeFileSync(path.join(old, `${OTHER}.sqlite.gz`), "theirs", { mode: 0o600 });
    fs.writeFileSync(path.join(old, "manifest"), line(A1, "one") + line(OTHER, "theirs") + line(A2, "two"));
    fs.writeFileSync(path.join(old, "backup.log"), "x\n");
    return { root, svc, old };
  }

  it("the new default is in no service's folder: deleting the service named like the set leaves its backups", () => {
    const { root, svc, old } = legacyRoot();
    try {
      const to = defaultBackupsDir(root, "aether-db");
      assert.ok(!to.startsWith(`${svc}/`), `${to} is outside ${svc}`);
      const spec = { backupsDir: to, engine: "sqlite" as const };
      const facts = run(moveBackupsScript(spec, "aether-db", old), root);
      assert.deepEqual(facts.all["moved"], [A1, A2]);
      assert.deepEqual(
        (facts.all["backup"] ?? []).map((l) => l.split(" ")[0]),
        [A1, A2],
      );
      assert.equal(fs.readFileSync(path.join(to, `${A1}.sqlite.gz`), "utf8"), "one");
      assert.equal(fs.statSync(to).mode & 0o777, 0o700);
      assert.equal(fs.statSync(path.join(to, "manifest")).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.join(to, `${A2}.sqlite.gz`)).mode & 0o777, 0o600);
      // Another set sharing the old dir keeps its line and file there.
      assert.equal(fs.readFileSync(path.join(old, "manifest"), "utf8"), line(OTHER, "theirs"));
      assert.deepEqual(fs.readdirSync(old).sort(), [".lock", "backup.log", "manifest", `${OTHER}.sqlite.gz`]);
      // The service goes (its delete is an rm -rf of its folder): the backups stay.
      fs.rmSync(svc, { recursive: true, force: true });
      assert.deepEqual(
        (run(listScript(spec), root).all["backup"] ?? []).map((l) => l.split(" ")[0]),
        [A1, A2],
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("an emptied old dir is removed (not its parent); a second run, or one after an interruption, finishes the move", () => {
    const { root, svc, old } = legacyRoot();
    try {
      fs.rmSync(path.join(old, `${OTHER}.sqlite.gz`));
      fs.writeFileSync(path.join(old, "manifest"), line(A1, "one") + line(A2, "two"));
      const to = defaultBackupsDir(root, "aether-db");
      fs.mkdirSync(to, { recursive: true, mode: 0o700 });
      // Interrupted: A1's file already moved, its line not yet recorded; A2's file in both places.
      fs.renameSync(path.join(old, `${A1}.sqlite.gz`), path.join(to, `${A1}.sqlite.gz`));
      fs.copyFileSync(path.join(old, `${A2}.sqlite.gz`), path.join(to, `${A2}.sqlite.gz`));
      const spec = { backupsDir: to, engine: "sqlite" as const };
      run(moveBackupsScript(spec, "aether-db", old), root);
      assert.ok(!fs.existsSync(old), "the emptied old dir is gone");
      assert.ok(fs.existsSync(path.join(svc, "releases")), "its parent, the service's folder, is untouched");
      assert.equal(fs.readFileSync(path.join(to, "manifest"), "utf8"), line(A1, "one") + line(A2, "two"));
      const again = run(moveBackupsScript(spec, "aether-db", old), root);
      assert.equal(again.all["moved"], undefined, "nothing left to move");
      assert.equal(fs.readFileSync(path.join(to, "manifest"), "utf8"), line(A1, "one") + line(A2, "two"));
      assert.deepEqual(fs.readdirSync(to).sort(), [
        ".lock",
        `${A1}.sqlite.gz`,
        `${A2}.sqlite.gz`,
        "backup.log",
        "manifest",
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("commands/backup builders: SQLite in a folder its app's user can write (security issue: a service's own account never becomes root)", () => {
  const asRoot = process.getuid?.() === 0;
  const NOBODY = 65534;

  /** A database owned by the app's user (nobody, when the test runs as root), a victim beside it, a backups dir. */
  function sqliteSet() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-sqlite-"));
    const app = path.join(dir, "app");
    fs.mkdirSync(app);
    const db = path.join(app, "aether.db");
    execFileSync("sqlite3", [
      db,
      "CREATE TABLE fixtures (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO fixtures (name) VALUES ('par'), ('head');",
    ]);
    if (asRoot) {
      fs.chownSync(app, NOBODY, NOBODY);
      fs.chownSync(db, NOBODY, NOBODY);
    }
    const victim = path.join(dir, "victim");
    fs.writeFileSync(victim, "root's own\n", { mode: 0o600 });
    const spec: BackupSetSpec = {
      backupsDir: path.join(dir, "backups"),
      engine: "sqlite",
      target: { engine: "sqlite", sqlite: { path: db } },
      verifyTables: ["fixtures"],
    };
    return { dir, db, victim, spec };
  }

  const victimState = (victim: string) => {
    const st = fs.lstatSync(victim);
    return { uid: st.uid, gid: st.gid, mode: st.mode, content: fs.readFileSync(victim, "utf8") };
  };

  /** Runs a script with `bin` first on PATH; its exit code, stdout facts and stderr. */
  function runIn(script: string, bin?: string) {
    const env = bin ? { ...process.env, PATH: `${bin}:${process.env["PATH"]}` } : process.env;
    const r = spawnSync("/bin/sh", ["-s"], { input: script, env, encoding: "utf8" });
    return { status: r.status, facts: parseFacts(r.stdout), stderr: r.stderr };
  }

  it("a database path that is a link is refused before sqlite3 opens it, naming the path; the link's target is untouched", () => {
    const { dir, db, victim, spec } = sqliteSet();
    try {
      fs.renameSync(db, `${db}.real`);
      fs.symlinkSync(victim, db);
      const before = victimState(victim);
      const r = runIn(backupScript(spec, NEW));
      assert.equal(r.status, BACKUP_EXIT.dumpFailed, r.stderr);
      assert.match(r.stderr, new RegExp(`refusing to back up ${db}: it is a symbolic link`));
      assert.deepEqual(victimState(victim), before);
      assert.ok(!fs.existsSync(path.join(spec.backupsDir, "manifest")), "nothing recorded");
      // The restore's own steps check again, right before sqlite3 writes or reads the database.
      const restore = restoreScript(spec, "appdb-20261101T000000Z-abcdefabcdef", SAFETY).split("\n");
      const refusals = restore.filter((l) => l.startsWith(`[ ! -L ${db} ] || fail`));
      assert.equal(refusals.length, 3, "the safety backup, the restore and the counts");
      assert.ok(restore.indexOf(refusals[1]!) < restore.findIndex((l) => l.includes(".restore '")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("-wal/-journal links planted right after each sqlite3 (the app racing it) are never chowned through; root's own -shm gets the database's owner", () => {
    const { dir, db, victim, spec } = sqliteSet();
    try {
      // A sqlite3 that behaves like the app winning every race: before each run on the database
      // its links are gone (sqlite3 refuses them), right after it they are back.
      const bin = path.join(dir, "bin");
      fs.mkdirSync(bin);
      const real = execFileSync("/bin/sh", ["-c", "command -v sqlite3"], { encoding: "utf8" }).trim();
      fs.writeFileSync(
        path.join(bin, "sqlite3"),
        [
          "#!/bin/sh",
          `DB=${shq(db)}; V=${shq(victim)}; hit=`,
          `for a in "$@"; do [ "$a" = "$DB" ] && hit=1; done`,
          `if [ -n "$hit" ]; then for s in -wal -journal; do [ -L "$DB$s" ] && rm -f "$DB$s"; done; fi`,
          `${shq(real)} "$@"; rc=$?`,
          `if [ -n "$hit" ]; then ln -sf "$V" "$DB-wal"; ln -sf "$V" "$DB-journal"; [ -e "$DB-shm" ] || : > "$DB-shm"; fi`,
          `exit $rc`,
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const before = victimState(victim);
      const backup = runIn(backupScript(spec, NEW), bin);
      assert.equal(backup.status, 0, backup.stderr);
      assert.deepEqual(victimState(victim), before, "the backup chowned nothing through a link");
      assert.equal(fs.lstatSync(`${db}-wal`).isSymbolicLink(), true, "the plant was there when the backup ended");
      if (asRoot)
        assert.equal(fs.lstatSync(`${db}-shm`).uid, NOBODY, "root's own -shm belongs to the database's owner");
      execFileSync(path.join(bin, "sqlite3"), [db, "DELETE FROM fixtures"]);
      fs.rmSync(`${db}-shm`);
      const restore = runIn(restoreScript(spec, NEW.id, SAFETY), bin);
      assert.equal(restore.status, 0, restore.stderr);
      assert.deepEqual(restore.facts.all["restored_count"], ["fixtures 2"]);
      assert.deepEqual(victimState(victim), before, "the restore chowned nothing through a link");
      if (asRoot) assert.equal(fs.lstatSync(`${db}-shm`).uid, NOBODY);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
