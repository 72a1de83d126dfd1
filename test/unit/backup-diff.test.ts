import { strict as assert } from "assert";
import { diffBackup, planBackupUpdate } from "../../decisions/backup-diff";
import { UNKNOWN } from "../../decisions/service-diff";
import { checkBackupInputs } from "../../providers/backup/check";

const inputs = {
  name: "appdb",
  connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
  engine: "postgres",
  postgres: { host: "127.0.0.14", port: 5432, database: "appdb", user: "app", password: "pw" },
  backupsDir: "/srv/fleet/appdb/backups",
  keep: 5,
  keepDays: 0,
  protectReleases: [],
  verifyTables: ["items"],
  releases: ["0123456789ab"],
  trigger: "",
  restore: "",
  stepTimeoutMs: 60000,
  deleteBackupsOnDestroy: false,
};
/** Old outputs echo the inputs, without the password. */
const olds = {
  ...inputs,
  postgres: { host: "127.0.0.14", port: 5432, database: "appdb", user: "app" },
  latestId: "appdb-20261122T165722Z-0123456789ab",
};

function diff(change: Record<string, unknown>) {
  return diffBackup(olds, { ...inputs, ...change });
}

describe("decisions/backup-diff", () => {
  it("nothing changed: no change (the password echo is absent from outputs, and that is no change)", () => {
    assert.deepEqual(diff({}), { changes: false, replaces: [], changedKeys: [] });
  });

  it("a new trigger, release list or restore id is an update", () => {
    for (const change of [{ trigger: "x" }, { releases: ["fedcba987654"] }, { releases: [] }, { restore: "appdb-1" }]) {
      const d = diff(change);
      assert.equal(d.changes, true, JSON.stringify(change));
      assert.deepEqual(d.replaces, []);
    }
  });

  it("restore back to empty is an update too (recorded, so that the same id later counts as a change)", () => {
    const afterRestore = { ...olds, restore: "appdb-1" };
    assert.equal(diffBackup(afterRestore, { ...inputs, restore: "" }).changes, true);
    assert.deepEqual(planBackupUpdate(afterRestore, { ...inputs, restore: "" }), {
      moveFrom: "",
      backup: false,
      restore: "",
    });
  });

  it("another host, engine, database or name is a replacement", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ connection: { ...inputs.connection, host: "127.0.0.12" } }, "connection"],
      [{ connection: { ...inputs.connection, port: 2222 } }, "connection"],
      [{ postgres: { ...inputs.postgres, host: "127.0.0.15" } }, "postgres"],
      [{ postgres: { ...inputs.postgres, database: "other" } }, "postgres"],
      [{ engine: "sqlite", postgres: undefined, sqlite: { path: "/x.db" } }, "engine"],
      [{ name: "appdb2" }, "name"],
    ];
    for (const [change, key] of cases) {
      const d = diff(change);
      assert.equal(d.changes, true, key);
      assert.ok(d.replaces.includes(key), `${key}: ${d.replaces.join(",")}`);
    }
  });

  it("another backups dir alone is an update that moves the backups there, never a replacement that leaves them", () => {
    // The old default, inside the folder of a service named like the set (`rm -rf` of that
    // folder took the backups), to the new one: the next `pulumi up` of every existing stack.
    const legacy = { ...olds, backupsDir: "/srv/fleet/appdb/backups" };
    const moved = { ...inputs, backupsDir: "/srv/fleet/.backups/appdb" };
    assert.deepEqual(diffBackup(legacy, moved), { changes: true, replaces: [], changedKeys: ["backupsDir"] });
    assert.deepEqual(planBackupUpdate(legacy, moved), {
      moveFrom: "/srv/fleet/appdb/backups",
      backup: false,
      restore: "",
    });
    // Moved with a new release: moved first, then the backup (provider.update's order).
    assert.deepEqual(planBackupUpdate(legacy, { ...moved, releases: ["fedcba987654"] }), {
      moveFrom: "/srv/fleet/appdb/backups",
      backup: true,
      restore: "",
    });
    assert.equal(planBackupUpdate(olds, inputs).moveFrom, "", "the same dir: nothing moves");
    // Another database or host too: a new set (a replacement), which moves nothing.
    const elsewhere = diffBackup(legacy, { ...moved, connection: { ...inputs.connection, host: "127.0.0.12" } });
    assert.deepEqual(elsewhere.replaces, ["connection"]);
  });

  it("a rotated key or deleteBackupsOnDestroy is an update with no remote work (refresh and destroy read outputs)", () => {
    for (const change of [
      { connection: { ...inputs.connection, privateKey: "ROTATED" } },
      { connection: { ...inputs.connection, user: "deploy" } },
      { deleteBackupsOnDestroy: true },
    ]) {
      const d = diff(change);
      assert.equal(d.changes, true, JSON.stringify(change));
      assert.deepEqual(d.replaces, []);
      assert.deepEqual(planBackupUpdate(olds, { ...inputs, ...change }), { moveFrom: "", backup: false, restore: "" });
    }
  });

  it("retention, tables, password and timeouts are no change: the next backup uses them", () => {
    for (const change of [
      { keep: 2 },
      { keepDays: 7 },
      { protectReleases: ["x"] },
      { verifyTables: ["a", "b"] },
      { postgres: { ...inputs.postgres, password: "rotated" } },
      { postgres: { ...inputs.postgres, user: "other" } },
      { stepTimeoutMs: 1 },
    ]) {
      assert.equal(diff(change).changes, false, JSON.stringify(change));
    }
  });

  it("unknown values (preview) count as changes", () => {
    assert.equal(diff({ trigger: UNKNOWN }).changes, true);
    assert.deepEqual(diff({ connection: { ...inputs.connection, host: UNKNOWN } }).replaces, ["connection"]);
  });

  it("plans: backup on trigger/releases, restore only when restore changed to an id", () => {
    assert.deepEqual(planBackupUpdate(olds, { ...inputs, trigger: "t2" }), { moveFrom: "", backup: true, restore: "" });
    assert.deepEqual(planBackupUpdate(olds, { ...inputs, restore: "appdb-1" }), {
      moveFrom: "",
      backup: false,
      restore: "appdb-1",
    });
    assert.deepEqual(planBackupUpdate({ ...olds, restore: "appdb-1" }, { ...inputs, restore: "appdb-1" }), {
      moveFrom: "",
      backup: false,
      restore: "",
    });
    assert.deepEqual(planBackupUpdate(olds, { ...inputs, releases: ["r2r2r2"], restore: "appdb-1" }), {
      moveFrom: "",
      backup: true,
      restore: "appdb-1",
    });
  });
});

describe("providers/backup/check", () => {
  it("accepts good inputs, postgres and sqlite", () => {
    assert.deepEqual(checkBackupInputs(inputs), []);
    const sqlite = { ...inputs, engine: "sqlite", postgres: undefined, sqlite: { path: "/home/app/app.db" } };
    assert.deepEqual(checkBackupInputs(sqlite), []);
  });

  it("names every bad field", () => {
    const bad = {
      ...inputs,
      name: "../x",
      backupsDir: "/srv/$(id)",
      keep: -1,
      releases: ["ok-release", "has space"],
      verifyTables: ["Items; drop table x"],
      restore: "../../etc/passwd",
      postgres: { ...inputs.postgres, password: "", port: "5432" },
    };
    const props = checkBackupInputs(bad).map((f) => f.property);
    assert.deepEqual(props.sort(), [
      "backupsDir",
      "keep",
      "name",
      "postgres.password",
      "postgres.port",
      "releases[1]",
      "restore",
      "verifyTables[0]",
    ]);
    assert.deepEqual(
      checkBackupInputs({ ...inputs, backupsDir: "/srv/../etc" }).map((f) => f.property),
      ["backupsDir"],
    );
  });

  it("engine and its settings must match", () => {
    const props = (x: Record<string, unknown>) => checkBackupInputs({ ...inputs, ...x }).map((f) => f.property);
    assert.deepEqual(props({ engine: "mysql" }), ["engine"]);
    assert.deepEqual(props({ postgres: undefined }), ["postgres"]);
    assert.deepEqual(props({ sqlite: { path: "/x.db" } }), ["sqlite"]);
    assert.deepEqual(props({ engine: "sqlite", postgres: undefined, sqlite: { path: "relative.db" } }), [
      "sqlite.path",
    ]);
  });

  it("lets unknowns through (preview)", () => {
    assert.deepEqual(checkBackupInputs({ ...inputs, postgres: UNKNOWN, releases: UNKNOWN, name: UNKNOWN }), []);
    assert.deepEqual(checkBackupInputs({ ...inputs, postgres: { ...inputs.postgres, password: UNKNOWN } }), []);
  });
});
