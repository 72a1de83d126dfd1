import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  allRegistrations,
  dependenciesOf,
  findByType,
  findResource,
  installMocks,
  promiseOf,
  settle,
  type MockOptions,
} from "../support/mocks";
import { SECRET_SIG_KEY } from "../support/provider-host";

const SERVICE_RELEASE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const APP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");

function keyFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-key-"));
  fs.writeFileSync(
    path.join(dir, "id"),
    "-----BEGIN OPENSSH PRIVATE KEY-----\nTESTKEYMATERIAL1234567890\n-----END OPENSSH PRIVATE KEY-----\n",
  );
  return path.join(dir, "id");
}

function config(overrides: Record<string, unknown> = {}) {
  return {
    "fleet:hosts": JSON.stringify({
      web1: { address: "127.0.0.11", privateKeyFile: keyFile(), hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd" },
    }),
    "fleet:services": JSON.stringify({
      web: {
        host: "web1",
        source: { path: APP },
        start: "python3 app.py",
        env: { APP_PORT: "18080" },
        health: { url: "http://127.0.0.11:18080/api/health", version: { url: "http://127.0.0.11:18080/api/version" } },
        keepReleases: 3,
      },
    }),
    "fleet:secretEnv": JSON.stringify({ web: { API_TOKEN: "tok-SECRET-123" } }),
    ...overrides,
  };
}

/** Runs index.ts afresh under mocks with `cfg` as the stack config. */
async function runProgram(cfg: Record<string, string>, options: MockOptions = {}): Promise<Record<string, unknown>> {
  await installMocks(options);
  pulumi.runtime.setAllConfig(cfg, ["fleet:secretEnv", "fleet:dbPasswords"]);
  const entry = require.resolve("../../index");
  delete require.cache[entry];
  const program = require(entry) as Record<string, unknown>;
  await settle();
  return program;
}

function isSecretMarker(v: unknown): boolean {
  return !!v && typeof v === "object" && SECRET_SIG_KEY in (v as object);
}

describe("index.ts under Pulumi mocks", () => {
  it("builds one Host and one Service per config entry, with the release as a child", async () => {
    const program = await runProgram(config());
    assert.equal(findByType("fleet:index:Host").length, 1);
    findResource("fleet:index:Host", "web1");
    findResource("fleet:index:Service", "web");
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.equal(release.custom, true);
    assert.match(String(release.inputs["releaseId"]), /^d-[0-9a-f]{16}$/);
    assert.equal(release.inputs["keepReleases"], 3);
    assert.equal(release.inputs["root"], "/srv/fleet");
    assert.equal(release.inputs["host"], "127.0.0.11", "preview names the host in plain text");
    assert.match(String(release.inputs["unit"]), /^ExecStart=\/bin\/sh -c "python3 app.py"$/m);
    assert.match(String(release.inputs["__provider"]), /exports\.handler/);
    const outputs = (await promiseOf(pulumi.output(program["services"]))) as Record<string, Record<string, unknown>>;
    assert.equal(outputs["web"]!["releaseId"], release.inputs["releaseId"]);
  });

  it("marks the connection and secretEnv secret, and no secret value appears in plain inputs", async () => {
    await runProgram(config());
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.ok(isSecretMarker(release.inputs["connection"]), "connection must be secret");
    assert.ok(isSecretMarker(release.inputs["secretEnv"]), "secretEnv must be secret");
    const plain = JSON.stringify({ ...release.inputs, connection: null, secretEnv: null, __provider: null });
    assert.ok(!plain.includes("tok-SECRET-123"));
    assert.ok(!plain.includes("TESTKEYMATERIAL"));
    // The provider code must not carry them either (it is stored in state in plain text).
    assert.ok(!String(release.inputs["__provider"]).includes("tok-SECRET-123"));
  });

  it("rejects bad config with every problem by path, before registering anything", async () => {
    const bad = config({
      "fleet:services": JSON.stringify({
        web: { host: "web9", source: { path: APP }, start: "x", health: { url: "nope" }, keepReleases: 1 },
      }),
    });
    await assert.rejects(runProgram(bad), (err: Error) => {
      assert.match(err.message, /fleet configuration is invalid \(nothing was deployed\)/);
      assert.match(err.message, /services\.web\.health\.url: must be an http\(s\) URL/);
      assert.match(err.message, /services\.web\.keepReleases: must be at least 2/);
      assert.match(err.message, /services\.web\.host: unknown host "web9"/);
      return true;
    });
    assert.deepEqual(allRegistrations(), []);
  });

  it("a backup protecting a service is keyed by the release it is about to get, and the release waits for it", async () => {
    const program = await runProgram(
      config({
        "fleet:backups": JSON.stringify({
          appdb: {
            host: "web1",
            postgres: { host: "127.0.0.14", database: "appdb", user: "app" },
            protects: ["web"],
            verifyTables: ["items"],
          },
        }),
        "fleet:dbPasswords": JSON.stringify({ appdb: "pg-SECRET-pw" }),
      }),
    );
    const set = findResource("pulumi-nodejs:dynamic/fleet:BackupSet", "appdb-set");
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.deepEqual(set.inputs["releases"], [release.inputs["releaseId"]], "a new release means a new backup");
    const deps = dependenciesOf(SERVICE_RELEASE, "web-release");
    assert.ok(
      deps.some((urn) => urn.endsWith("::appdb-set")),
      `the release waits for the backup; deps: ${deps.join(", ")}`,
    );
    // Mocks mark the whole object secret when a field is (the engine keeps the nested marker).
    const pg = set.inputs["postgres"] as Record<string, unknown>;
    assert.ok(isSecretMarker(pg) || isSecretMarker(pg["password"]), "the password is secret");
    assert.ok(!JSON.stringify({ ...set.inputs, postgres: null, connection: null }).includes("pg-SECRET-pw"));
    assert.ok(program["databaseBackups"]);
  });

  it("a postgres backup without its password in secret config is refused by path", async () => {
    const cfg = config({
      "fleet:backups": JSON.stringify({
        appdb: { host: "web1", postgres: { host: "127.0.0.14", database: "d", user: "u" }, protects: ["nope"] },
      }),
    });
    await assert.rejects(runProgram(cfg), (err: Error) => {
      assert.match(
        err.message,
        /backups\.appdb\.postgres: its password goes in secret config: pulumi config set --secret --path 'fleet:dbPasswords\.appdb'/,
      );
      assert.match(err.message, /backups\.appdb\.protects: no service "nope"/);
      return true;
    });
  });

  it("a service on several hosts rolls out in batches: canary first, each batch waiting for the one before", async () => {
    const hostsCfg = Object.fromEntries(
      ["web1", "web2", "web3"].map((h, i) => [
        h,
        { address: `127.0.0.1${i + 1}`, privateKeyFile: keyFile(), hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd" },
      ]),
    );
    await runProgram(
      config({
        "fleet:hosts": JSON.stringify(hostsCfg),
        "fleet:services": JSON.stringify({
          web: {
            hosts: ["web1", "web2", "web3"],
            rollout: { batch: 1, canary: ["web2"] },
            source: { path: APP },
            start: "python3 app.py",
            health: { url: "http://127.0.0.1:18080/api/health" },
          },
        }),
      }),
    );
    const deps = (h: string) => dependenciesOf(SERVICE_RELEASE, `web@${h}-release`);
    assert.ok(!deps("web2").some((u) => u.includes("web@")), "the canary waits for no other host");
    assert.ok(
      deps("web1").some((u) => u.endsWith("::web@web2-release")),
      `web1 waits for the canary: ${deps("web1").join(", ")}`,
    );
    assert.ok(
      deps("web3").some((u) => u.endsWith("::web@web1-release")),
      "web3 waits for web1",
    );
    assert.ok(!deps("web3").some((u) => u.endsWith("::web@web2-release")), "only the batch just before");
    assert.equal(
      findResource(SERVICE_RELEASE, "web@web1-release").inputs["name"],
      "web",
      "the name on the host stays web",
    );
  });

  it("shared, hooks and deleteSharedOnDestroy reach the release as planned; hooks see the config's host name", async () => {
    const services = JSON.parse(config()["fleet:services"]) as Record<string, Record<string, unknown>>;
    await runProgram(
      config({
        "fleet:services": JSON.stringify({
          web: {
            ...services["web"],
            shared: { dirs: ["uploads"], files: { "config/app.ini": "a=1\n" } },
            deleteSharedOnDestroy: true,
            hooks: { preSwitch: "./check", postDeploy: "./warm", postRollback: "./tell" },
          },
        }),
      }),
    );
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.deepEqual(
      [
        release.inputs["shared"],
        release.inputs["deleteSharedOnDestroy"],
        release.inputs["hooks"],
        release.inputs["hostName"],
      ],
      [
        { dirs: ["uploads"], files: { "config/app.ini": "a=1\n" } },
        true,
        { preSwitch: "./check", postDeploy: { run: "./warm", rollbackOnFailure: false }, postRollback: "./tell" },
        "web1",
      ],
    );
  });

  it("a pin deploys exactly the pinned release, and says so in the inputs", async () => {
    await runProgram(
      config({
        "fleet:pins": JSON.stringify({ web: { releaseId: "d-0123456789abcdef", commit: "d-0123456789abcdef" } }),
      }),
    );
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.equal(release.inputs["releaseId"], "d-0123456789abcdef");
    assert.equal(release.inputs["pinned"], true);
    await assert.rejects(
      runProgram(config({ "fleet:pins": JSON.stringify({ nope: { releaseId: "abcdef123456", commit: "x" } }) })),
      /pins\.nope: no service "nope"/,
    );
  });

  it("a pinned service's pre-deploy backup is keyed by the pinned release (the one it is about to get)", async () => {
    await runProgram(
      config({
        "fleet:backups": JSON.stringify({
          appdb: { host: "web1", sqlite: { path: "/srv/app.db" }, protects: ["web"] },
        }),
        "fleet:pins": JSON.stringify({ web: { releaseId: "d-0123456789abcdef", commit: "d-0123456789abcdef" } }),
      }),
    );
    const set = findResource("pulumi-nodejs:dynamic/fleet:BackupSet", "appdb-set");
    const release = findResource(SERVICE_RELEASE, "web-release");
    assert.equal(release.inputs["releaseId"], "d-0123456789abcdef");
    assert.deepEqual(set.inputs["releases"], ["d-0123456789abcdef"], "the backup is named after the pinned release");
  });

  it("restoreOnRollback: true gives the Service the restore point of the backup set protecting it", async () => {
    const services = (extra: Record<string, unknown>) =>
      JSON.stringify({
        web: {
          host: "web1",
          source: { path: APP },
          start: "python3 app.py",
          migrate: "python3 migrate.py",
          health: { url: "http://127.0.0.11:18080/api/health" },
          ...extra,
        },
      });
    const LATEST = "appdb-20260101T000000Z-d-0123456789ab";
    await runProgram(
      config({
        "fleet:services": services({ restoreOnRollback: true }),
        "fleet:backups": JSON.stringify({
          appdb: { host: "web1", sqlite: { path: "/srv/app.db" }, protects: ["web"] },
        }),
      }),
      {
        newResource: (args) =>
          args.type === "pulumi-nodejs:dynamic/fleet:BackupSet" ? { state: { latestId: LATEST } } : undefined,
      },
    );
    const release = findResource(SERVICE_RELEASE, "web-release");
    const point = release.inputs["restoreOnRollback"] as Record<string, unknown> | undefined;
    assert.ok(isSecretMarker(point), `the restore point is secret (it holds the backup's connection): ${typeof point}`);
    const value = point!["value"] as { backup: Record<string, unknown>; backupId: string };
    assert.equal(value.backup["name"], "appdb");
    assert.equal(value.backup["engine"], "sqlite");
    assert.equal(value.backupId, LATEST, "the backup taken before this deploy");
    assert.ok(
      dependenciesOf(SERVICE_RELEASE, "web-release").some((urn) => urn.endsWith("::appdb-set")),
      "the release waits for the backup it would restore",
    );

    // Without it, no restore point.
    await runProgram(
      config({
        "fleet:services": services({}),
        "fleet:backups": JSON.stringify({
          appdb: { host: "web1", sqlite: { path: "/srv/app.db" }, protects: ["web"] },
        }),
      }),
    );
    assert.equal(findResource(SERVICE_RELEASE, "web-release").inputs["restoreOnRollback"], undefined);
  });

  it("restoreOnRollback needs exactly one backup set protecting the service, refused by path otherwise", async () => {
    const withBackups = (backups: Record<string, unknown>) =>
      config({
        "fleet:services": JSON.stringify({
          web: {
            host: "web1",
            source: { path: APP },
            start: "python3 app.py",
            health: { url: "http://127.0.0.11:18080/api/health" },
            restoreOnRollback: true,
          },
        }),
        "fleet:backups": JSON.stringify(backups),
      });
    await assert.rejects(runProgram(withBackups({})), /services\.web\.restoreOnRollback: no backup set protects "web"/);
    assert.deepEqual(allRegistrations(), []);
    const sqlite = (p: string) => ({ host: "web1", sqlite: { path: p }, protects: ["web"] });
    await assert.rejects(
      runProgram(withBackups({ a: sqlite("/srv/a.db"), b: sqlite("/srv/b.db") })),
      /services\.web\.restoreOnRollback: 2 backup sets protect "web" \("a", "b"\)/,
    );
  });

  it("golden images from config: an hcloud host boots from its snapshot, a service deploys a docker image", async () => {
    const IMAGE_ID = "sha256:" + "b".repeat(64);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-images-"));
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
    fs.mkdirSync(path.join(dir, "provision"));
    fs.writeFileSync(path.join(dir, "provision", "10-agent.sh"), "echo hi\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "login.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILOGIN fleet\n");
    await runProgram(
      config({
        "fleet:images": JSON.stringify({
          agentvm: {
            kind: "hcloud",
            baseImage: "debian-12",
            serverType: "cx22",
            location: "fsn1",
            provision: { dir: path.join(dir, "provision") },
            validate: { check: "true" },
          },
          agent: { kind: "docker", context: dir, validate: { url: "http://127.0.0.1:18690/health" } },
        }),
        "fleet:hosts": JSON.stringify({
          web1: {
            address: "127.0.0.11",
            privateKeyFile: keyFile(),
            hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd",
          },
          vm: {
            kind: "hcloud",
            serverType: "cx22",
            location: "fsn1",
            goldenImage: "agentvm",
            sshFrom: ["198.51.100.7/32"],
            privateKeyFile: keyFile(),
            publicKeyFile: path.join(dir, "login.pub"),
          },
        }),
        "fleet:services": JSON.stringify({
          agent: {
            host: "web1",
            source: { image: "agent" },
            env: { PORT: "18691" },
            health: { url: "http://127.0.0.11:18691/health" },
          },
        }),
        "fleet:secretEnv": "{}",
        "hcloud:token": "HCLOUD-TOKEN-SECRET",
      }),
      {
        newResource: (args) =>
          args.type === "pulumi-nodejs:dynamic/fleet:HcloudImage"
            ? { id: "424242", state: { imageId: "424242" } }
            : args.type === "pulumi-nodejs:dynamic/fleet:DockerImage"
              ? { state: { imageId: IMAGE_ID, tags: ["agent:x"], history: [IMAGE_ID] } }
              : args.type === "pulumi-nodejs:dynamic/fleet:HostKey"
                ? { state: { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOST", privateKey: "PRIV" } }
                : undefined,
      },
    );
    assert.equal(
      findResource("hcloud:index/server:Server", "vm-server").inputs["image"],
      "424242",
      "the host boots from the golden snapshot",
    );
    const release = findResource(SERVICE_RELEASE, "agent-release");
    assert.equal(release.inputs["releaseId"], `i-${"b".repeat(12)}`);
    assert.match(
      String(release.inputs["start"]),
      /docker run --rm --name agent --network host -e FLEET_COMMIT -e FLEET_RELEASE -e PORT sha256:b{64}$/,
    );
    const deps = dependenciesOf(SERVICE_RELEASE, "agent-release");
    assert.ok(
      deps.some((u) => u.includes("fleet:DockerImage")),
      `the release waits for its image: ${deps.join(", ")}`,
    );
  });

  it("an unreadable key file is named by its config path", async () => {
    const cfg = config({
      "fleet:hosts": JSON.stringify({
        web1: { address: "127.0.0.11", privateKeyFile: "/nonexistent/key", hostKey: "ssh-ed25519 AAAA" },
      }),
    });
    await assert.rejects(runProgram(cfg), /hosts\.web1\.privateKeyFile: cannot read \/nonexistent\/key/);
    assert.deepEqual(allRegistrations(), []);
  });
});
