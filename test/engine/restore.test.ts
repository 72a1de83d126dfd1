import { strict as assert } from "assert";
import * as fs from "fs";
import { dump } from "js-yaml";
import * as os from "os";
import * as path from "path";
import { USAGE_EXIT } from "../../config/cli-args";
import { sh } from "../support/fleet";
import { outputOf } from "./support/cli";
import { hostsConfig } from "./support/fixtures";
import { EngineStack } from "./support/stack";

/**
 * `npm run restore` against a DatabaseBackup deployed by the real CLI (`pulumi up` with
 * `fleet:backups`): a SQLite database on web2 backed up by the up, changed afterwards, then
 * `--list` and `<id> --yes` with `host: web2` of the stack's fleet:hosts (`--stack`). The data
 * read back from the host must be the backed-up data, and the changed data must be in the safety
 * backup the restore took first.
 */
const HOST = "web2";
const BACKUP = "eng-bk";
const DATA_DIR = "/srv/fleet-engine-bk";
const DB = `${DATA_DIR}/app.db`;
/** Where the program keeps this backup's files (no root configured: /srv/fleet). */
const BACKUPS_DIR = `/srv/fleet/.backups/${BACKUP}`;

const sqlite = (sql: string) => sh(HOST, `sqlite3 -cmd '.timeout 10000' ${DB} "${sql}"`);
const rows = () => sqlite("SELECT id || ':' || name FROM items ORDER BY id");

interface Listed {
  readonly id: string;
  readonly counts: string;
}

/** `--list` output: `<id>  <time>  <size> bytes  releases=…  items=N`. */
function listed(stdout: string): Listed[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith(`${BACKUP}-`))
    .map((l) => {
      const cols = l.split(/\s{2,}/);
      return { id: cols[0]!, counts: cols[cols.length - 1]! };
    });
}

describe("engine: npm run restore of a backup taken by pulumi up with the real CLI (web2)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-engine-restore-"));
  const restoreConfig = path.join(configDir, "restore.yaml");
  let backedUp: string;
  let backupId: string;

  const cleanHost = () => sh(HOST, `rm -rf ${DATA_DIR} /srv/fleet/${BACKUP}`);

  before(async function () {
    this.timeout(180_000);
    await cleanHost();
    await sh(
      HOST,
      `mkdir -p ${DATA_DIR} && sqlite3 ${DB} "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); ` +
        `INSERT INTO items (name) VALUES ('alpha'), ('beta'), ('gamma');"`,
    );
    backedUp = await rows();
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:backups": { [BACKUP]: { host: HOST, sqlite: { path: DB }, verifyTables: ["items"] } },
    });
    await stack.ok("up", "--yes", "--non-interactive");
    backupId = (await stack.outputs())["databaseBackups"][BACKUP].latestId;
    fs.writeFileSync(
      restoreConfig,
      dump({ host: HOST, name: BACKUP, engine: "sqlite", sqlite: { path: DB }, verifyTables: ["items"] }),
    );
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    fs.rmSync(configDir, { recursive: true, force: true });
    await cleanHost().catch(() => undefined);
  });

  it("pulumi up took the backup: its file and manifest line are on the host", async () => {
    assert.equal(backedUp, "1:alpha\n2:beta\n3:gamma");
    assert.match(backupId, new RegExp(`^${BACKUP}-\\d{8}T\\d{6}Z`));
    const manifest = await sh(HOST, `cat ${BACKUPS_DIR}/manifest`);
    assert.ok(
      manifest.split("\n").some((l) => l.startsWith(`${backupId} `)),
      manifest,
    );
  });

  it("npm run restore -- --list --config <file> --stack lists it, with the rows it holds", async () => {
    const r = await stack.npm("restore", "--list", "--config", restoreConfig, "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(listed(r.stdout), [{ id: backupId, counts: "items=3" }], r.stdout);
  });

  it("npm run restore -- <id> without --yes says what it would do and changes nothing", async () => {
    await sqlite("DELETE FROM items WHERE name = 'beta'; INSERT INTO items (name) VALUES ('delta'), ('epsilon');");
    const changed = await rows();
    assert.equal(changed, "1:alpha\n3:gamma\n4:delta\n5:epsilon");
    const r = await stack.npm("restore", backupId, "--config", restoreConfig, "--stack", stack.name);
    assert.equal(r.code, USAGE_EXIT, outputOf(r));
    assert.match(r.stderr, new RegExp(`would restore ${backupId} into sqlite ${DB} via .*add --yes`), r.stderr);
    assert.equal(await rows(), changed);
  });

  it("npm run restore -- <id> --yes puts the backed-up rows back, after a safety backup of the changed ones", async () => {
    const r = await stack.npm("restore", backupId, "--config", restoreConfig, "--yes", "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.equal(await rows(), backedUp, "the data is back");
    const safety = /safety backup of the previous database: (\S+)/.exec(r.stdout)?.[1];
    assert.ok(safety && safety !== backupId, r.stdout);
    assert.match(r.stdout, /items: 3 rows/, r.stdout);

    const list = await stack.npm("restore", "--list", "--config", restoreConfig, "--stack", stack.name);
    assert.equal(list.code, 0, outputOf(list));
    const byId = Object.fromEntries(listed(list.stdout).map((e) => [e.id, e.counts]));
    assert.deepEqual(byId, { [backupId]: "items=3", [safety!]: "items=4" }, list.stdout);
    // The safety backup's file holds the changed rows.
    const file = (await sh(HOST, `ls ${BACKUPS_DIR}`)).split("\n").find((f) => f.startsWith(safety!));
    assert.ok(file, `the safety backup's file in ${BACKUPS_DIR}`);
    const inSafety = await sh(
      HOST,
      `f=${BACKUPS_DIR}/${file}; t=$(mktemp); case "$f" in *.gz) gunzip -c "$f" > "$t";; *) cp "$f" "$t";; esac; ` +
        `sqlite3 "$t" "SELECT id || ':' || name FROM items ORDER BY id"; rm -f "$t"`,
    );
    assert.equal(inSafety, "1:alpha\n3:gamma\n4:delta\n5:epsilon");
  });
});
