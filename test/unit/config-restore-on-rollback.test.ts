import { strict as assert } from "assert";
import { isConfigInvalid, parseFleetConfig } from "../../config/schema";
import { backupsProtecting, restoreBackupOf } from "../../config/restore-on-rollback";

const sqlite = (file: string, protects: string[]) => ({ host: "web1", sqlite: { path: file }, protects });

function config(service: Record<string, unknown>, backups: Record<string, unknown>) {
  return {
    hosts: { web1: { address: "127.0.0.11", privateKeyFile: "/k", hostKey: "ssh-ed25519 AAAA" } },
    services: {
      web: {
        host: "web1",
        source: { path: "./app" },
        start: "python3 app.py",
        migrate: "./migrate",
        health: { url: "http://127.0.0.1:8080/health" },
        ...service,
      },
      other: { host: "web1", source: { path: "./o" }, start: "x", health: { url: "http://127.0.0.1:1/" } },
    },
    backups,
  };
}

function problems(raw: unknown): string[] {
  try {
    parseFleetConfig(raw);
  } catch (err) {
    assert.ok(isConfigInvalid(err));
    return [...err.problems];
  }
  assert.fail("expected a config FleetError");
}

describe("config: restoreOnRollback (a service option, restoring the backup set protecting it)", () => {
  it("is a service option: the backup set that protects the service is the one restored", () => {
    const cfg = parseFleetConfig(
      config({ restoreOnRollback: true }, { appdb: sqlite("/a.db", ["web"]), logs: sqlite("/l.db", ["other"]) }),
    );
    assert.equal(cfg.services["web"]!.restoreOnRollback, true);
    assert.equal(restoreBackupOf(cfg, "web"), "appdb");
    assert.equal(restoreBackupOf(cfg, "other"), undefined, "not set: nothing is restored");
    const off = parseFleetConfig(config({ restoreOnRollback: false }, { appdb: sqlite("/a.db", ["web"]) }));
    assert.equal(restoreBackupOf(off, "web"), undefined);
  });

  it("without a backup set protecting the service, or with two, it is refused by path", () => {
    assert.deepEqual(problems(config({ restoreOnRollback: true }, { logs: sqlite("/l.db", ["other"]) })), [
      'services.web.restoreOnRollback: no backup set protects "web": add it to the protects of the fleet:backups entry of its database',
    ]);
    assert.deepEqual(
      problems(
        config({ restoreOnRollback: true }, { a: sqlite("/a.db", ["web"]), b: sqlite("/b.db", ["other", "web"]) }),
      ),
      [
        'services.web.restoreOnRollback: 2 backup sets protect "web" ("a", "b"); a rollback restores one: keep the service in the protects of one set only',
      ],
    );
    // Two sets protecting a service without restoreOnRollback are fine (both are taken first).
    parseFleetConfig(config({}, { a: sqlite("/a.db", ["web"]), b: sqlite("/b.db", ["web"]) }));
  });

  it("must be a boolean", () => {
    assert.deepEqual(problems(config({ restoreOnRollback: "yes" }, { appdb: sqlite("/a.db", ["web"]) })), [
      "services.web.restoreOnRollback: Invalid input: expected boolean, received string",
    ]);
  });

  it("backupsProtecting reads raw config defensively, in config order", () => {
    assert.deepEqual(
      backupsProtecting(
        { b: { protects: ["web"] }, a: { protects: ["web", "x"] }, c: { protects: "web" }, d: null },
        "web",
      ),
      ["b", "a"],
    );
    assert.deepEqual(backupsProtecting(undefined, "web"), []);
  });
});
