import { strict as assert } from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { DatabaseBackup } from "../../components/database-backup";
import { Host } from "../../components/host";
import { Service, plannedRelease } from "../../components/service";
import { serviceLayout } from "../../commands/layout";
import { isInsideDir } from "../../model/backup";
import { findResource, installMocks, promiseOf, settle } from "../support/mocks";
import { SECRET_SIG_KEY } from "../support/provider-host";

const BACKUP_SET = "pulumi-nodejs:dynamic/fleet:BackupSet";
const SERVICE_RELEASE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const PASSWORD = "db-PASSWORD-in-mocks-42";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nBACKUPKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n";
const APP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const connection = { host: "127.0.0.11", user: "root", privateKey: KEY, hostKey: "ssh-ed25519 AAAAC3Nz" };

function isSecretMarker(v: unknown): boolean {
  return !!v && typeof v === "object" && SECRET_SIG_KEY in (v as object);
}

describe("DatabaseBackup under Pulumi mocks", () => {
  before(async () => {
    await installMocks();
  });

  it("registers one BackupSet child with the defaults, the connection and the password secret", async () => {
    const host = new Host("web1", { connection });
    const backup = new DatabaseBackup("appdb", {
      host,
      postgres: { host: "127.0.0.14", database: "appdb", user: "app", password: pulumi.secret(PASSWORD) },
      releases: ["0123456789ab"],
      verifyTables: ["items"],
    });
    await promiseOf(backup.latestId);
    await settle();
    findResource("fleet:index:DatabaseBackup", "appdb");
    const set = findResource(BACKUP_SET, "appdb-set");
    assert.equal(set.custom, true);
    assert.ok(isSecretMarker(set.inputs["connection"]), "connection is secret");
    // The component sends only postgres.password as a secret, but the SDK's deserializer (what
    // mocks see) lifts a nested secret to its enclosing object; either way the password is secret.
    const wrapped = set.inputs["postgres"] as Record<string, unknown>;
    const pg = (isSecretMarker(wrapped) ? wrapped["value"] : wrapped) as Record<string, unknown>;
    assert.ok(isSecretMarker(wrapped) || isSecretMarker(pg["password"]), "the password is secret");
    assert.equal(pg["host"], "127.0.0.14");
    assert.equal(pg["port"], 5432);
    assert.equal(pg["password"], PASSWORD);
    assert.equal(set.inputs["engine"], "postgres");
    assert.equal(set.inputs["backupsDir"], "/srv/fleet/.backups/appdb");
    assert.equal(set.inputs["keep"], 5);
    assert.equal(set.inputs["keepDays"], 0);
    assert.equal(set.inputs["stepTimeoutMs"], 30 * 60_000);
    assert.equal(set.inputs["restore"], "");
    assert.equal(set.inputs["deleteBackupsOnDestroy"], false);
    assert.deepEqual(set.inputs["releases"], ["0123456789ab"]);
    const plain = JSON.stringify({ ...set.inputs, connection: null, postgres: null });
    assert.ok(!plain.includes(PASSWORD) && !plain.includes("BACKUPKEYMATERIAL"));
    assert.ok(!String(set.inputs["__provider"]).includes(PASSWORD), "the provider code carries no secret");
    assert.match(String(set.inputs["__provider"]), /exports\.handler/);
  });

  it("sqlite: engine and path; backupsDir under root's .backups/", async () => {
    new DatabaseBackup("aether", { host: connection, sqlite: { path: "/home/ramzt/aether.db" }, root: "/opt/fleet" });
    await settle();
    const set = findResource(BACKUP_SET, "aether-set");
    assert.equal(set.inputs["engine"], "sqlite");
    assert.deepEqual(set.inputs["sqlite"], { path: "/home/ramzt/aether.db" });
    assert.equal(set.inputs["backupsDir"], "/opt/fleet/.backups/aether");
    assert.equal(set.inputs["postgres"], undefined);
  });

  it("a set named like a service keeps its backups outside that service's folder (its delete removes the folder)", async () => {
    // Security issue "a service's own account never becomes root": the default was
    // <root>/<name>/backups, the folder of service aether-db, which its delete removes.
    new DatabaseBackup("aether-db", { host: connection, sqlite: { path: "/srv/fleet/aether-db/shared/data/a.db" } });
    new Service("aether-db", {
      host: connection,
      source: { path: APP },
      start: "python3 app.py",
      health: { url: "http://127.0.0.11:8080/health" },
    });
    await settle();
    const backupsDir = String(findResource(BACKUP_SET, "aether-db-set").inputs["backupsDir"]);
    const release = findResource(SERVICE_RELEASE, "aether-db-release").inputs;
    const serviceDir = serviceLayout(String(release["root"]), String(release["name"]), String(release["unitName"])).dir;
    assert.equal(serviceDir, "/srv/fleet/aether-db");
    assert.equal(backupsDir, "/srv/fleet/.backups/aether-db");
    assert.ok(!isInsideDir(backupsDir, serviceDir), `${backupsDir} is outside ${serviceDir}`);
  });

  it("refuses both or neither database", () => {
    assert.throws(
      () => new DatabaseBackup("none", { host: connection }),
      /backups\.none: give exactly one of postgres and sqlite/,
    );
    assert.throws(
      () =>
        new DatabaseBackup("both", {
          host: connection,
          sqlite: { path: "/x.db" },
          postgres: { host: "h", database: "d", user: "u", password: "p" },
        }),
      /exactly one/,
    );
  });

  it("plannedRelease is the release the Service will deploy (so the backup can run before it)", async () => {
    const planned = pulumi.output(plannedRelease("web", { source: { path: APP } })).releaseId;
    const svc = new Service("web", {
      host: connection,
      source: { path: APP },
      start: "python3 app.py",
      health: { url: "http://127.0.0.11:8080/health" },
    });
    await settle();
    assert.equal(await promiseOf(svc.releaseId), await promiseOf(planned));
  });
});
