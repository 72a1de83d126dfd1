import { strict as assert } from "assert";
import * as path from "path";
import { UNKNOWN } from "../../decisions/diff-keys";
import { checkBackupInputs } from "../../providers/backup/check";
import { checkDockerImageInputs, checkHcloudImageInputs } from "../../providers/image/check";
import { checkServiceInputs } from "../../providers/service/check";
import { backupInputs, dockerImageInputs, hcloudImageInputs } from "../support/provider-inputs";
import { serviceSpec } from "../support/service-inputs";

/** providers/check-inputs.ts: the model's schema run as a provider's check. */

const spec = (): Record<string, any> =>
  serviceSpec({
    name: "web",
    connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
    source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
    start: "python3 app.py",
    health: { url: "http://127.0.0.1:8080/health" },
  }) as unknown as Record<string, any>;

// The connections here leave the SSH port to its default.
const backup = (): Record<string, any> => ({
  ...backupInputs(),
  connection: { host: "127.0.0.11", user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
  verifyTables: [],
});

const dockerImage = (): Record<string, any> =>
  dockerImageInputs(
    "web",
    { validate: { url: "http://127.0.0.1:18650/health", env: { PORT: "18650" } } },
    {
      hostConnections: [{ host: "127.0.0.13", user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" }],
      hostAddresses: ["127.0.0.13"],
    },
  );

const hcloudImage = (): Record<string, any> => hcloudImageInputs("agent", {}, { token: "hcloud-token" });

const props = (failures: readonly { property: string }[]) => failures.map((f) => f.property);

describe("providers' checks: the model's rules, as Pulumi runs them", () => {
  it("lets preview's unknowns through wherever they are, and nothing else", () => {
    const s = spec();
    assert.deepEqual(checkServiceInputs({ ...s, env: { A: UNKNOWN }, secretEnv: UNKNOWN, health: UNKNOWN }), []);
    assert.deepEqual(checkServiceInputs({ ...s, connection: { ...s["connection"], host: UNKNOWN } }), []);
    assert.deepEqual(checkServiceInputs({ ...s, restoreOnRollback: UNKNOWN, notify: [UNKNOWN], source: UNKNOWN }), []);
    assert.deepEqual(checkBackupInputs({ ...backup(), releases: ["r1r1r1", UNKNOWN], postgres: UNKNOWN }), []);
    // The unknown spares its own field only.
    assert.deepEqual(props(checkServiceInputs({ ...s, env: { A: UNKNOWN, "B-C": "1" } })), ["env.B-C"]);
  });

  it("checks what it is given: an absent field is the component's business", () => {
    assert.deepEqual(checkServiceInputs({ unitName: "web" }), []);
    assert.deepEqual(props(checkServiceInputs({ unitName: "cron.service" })), ["unitName"]);
  });

  it("never quotes a value: inputs hold secrets", () => {
    const s = spec();
    const failures = [
      ...checkServiceInputs({ ...s, secretEnv: { TOKEN: "s3cret-\ufffe", "s3cret key": "x" } }),
      ...checkBackupInputs({ ...backup(), postgres: { ...backup()["postgres"], password: "s3cret\r" } }),
      ...checkServiceInputs({ ...s, connection: { ...s["connection"], privateKey: "s3cret\0" } }),
    ];
    assert.deepEqual(props(failures), [
      "secretEnv.TOKEN",
      'secretEnv["s3cret key"]',
      "postgres.password",
      "connection.privateKey",
    ]);
    // The key is a name, not a secret; the values never show.
    for (const f of failures) assert.doesNotMatch(f.reason, /s3cret/, f.reason);
  });

  it("a NUL byte is one failure at its field; the serialized provider is not an input", () => {
    assert.deepEqual(checkServiceInputs({ ...spec(), env: { A: "x\0" } }), [
      { property: "env.A", reason: "must not contain a NUL byte (no host can receive one)" },
    ]);
    assert.deepEqual(checkServiceInputs({ ...spec(), __provider: "exports.x = '\0\ud800';" }), []);
  });

  it("rules between fields: an image builds itself; a backup names one database, the one its engine says", () => {
    const image = { kind: "image", name: "app", imageId: "sha256:" + "a".repeat(64), tags: [], dockerHost: "" };
    assert.deepEqual(props(checkServiceInputs({ ...spec(), source: { ...image, keep: 2, history: [] } })), []);
    assert.deepEqual(props(checkServiceInputs({ ...spec(), source: image, build: "make" })), ["source"]);
    assert.deepEqual(props(checkBackupInputs({ ...backup(), sqlite: { path: "/d.db" } })), ["sqlite"]);
    assert.deepEqual(props(checkBackupInputs({ ...backup(), engine: "sqlite" })), ["sqlite"]);
    assert.deepEqual(props(checkBackupInputs({ ...backup(), engine: "mysql" })), ["engine"]);
  });

  it("a timeout of zero would fail every step: refused, as the config refuses 0s", () => {
    assert.deepEqual(props(checkServiceInputs({ ...spec(), stepTimeoutMs: 0 })), ["stepTimeoutMs"]);
    assert.deepEqual(props(checkBackupInputs({ ...backup(), stepTimeoutMs: 0 })), ["stepTimeoutMs"]);
    assert.deepEqual(
      props(checkServiceInputs({ ...spec(), connection: { ...spec()["connection"], connectTimeoutMs: 0 } })),
      ["connection.connectTimeoutMs"],
    );
  });

  it("the image providers: the component's inputs pass, preview's unknowns pass, each bad field is named", () => {
    assert.deepEqual(checkDockerImageInputs(dockerImage()), []);
    assert.deepEqual(checkHcloudImageInputs(hcloudImage()), []);
    assert.deepEqual(
      checkDockerImageInputs({
        ...dockerImage(),
        hostConnections: UNKNOWN,
        hostAddresses: [UNKNOWN],
        validate: { ...dockerImage()["validate"], url: UNKNOWN, env: { PORT: UNKNOWN } },
        commit: UNKNOWN,
      }),
      [],
    );
    assert.deepEqual(checkHcloudImageInputs({ ...hcloudImage(), token: UNKNOWN, check: UNKNOWN, env: UNKNOWN }), []);
    assert.deepEqual(
      props(
        checkDockerImageInputs({
          ...dockerImage(),
          name: "constructor",
          validate: { ...dockerImage()["validate"], url: "http://127.0.0.1/é", env: { "A-B": "1" } },
          hostConnections: [{ host: "a b", user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" }],
        }),
      ),
      ["name", "validate.url", "validate.env.A-B", "hostConnections[0].host"],
    );
    const hcloud = checkHcloudImageInputs({ ...hcloudImage(), name: "gold-", check: " ", run: ["../x"] });
    assert.deepEqual(props(hcloud), ["name", "run[0]", "check"]);
    assert.match(hcloud[0]!.reason, /Hetzner Cloud label value/);
    assert.match(hcloud[2]!.reason, /not blank/);
  });

  it("the image providers never quote a value: the token and the hosts' keys are secrets", () => {
    const failures = [
      ...checkHcloudImageInputs({ ...hcloudImage(), token: "s3cret\0" }),
      ...checkDockerImageInputs({
        ...dockerImage(),
        hostConnections: [{ host: "127.0.0.13", user: "root", privateKey: "s3cret\ud800", hostKey: "x" }],
      }),
    ];
    assert.deepEqual(props(failures), ["token", "hostConnections[0].privateKey"]);
    for (const f of failures) assert.doesNotMatch(f.reason, /s3cret/, f.reason);
  });
});
