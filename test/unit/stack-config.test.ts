import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseFleetConfig } from "../../config/schema";
import {
  configPath,
  fleetConfigOf,
  fleetValues,
  parseCliConfig,
  parseStackFile,
  projectNameOf,
  SECRET_STAND_IN,
  secretsProblem,
  unreadableKeyFor,
  wholeFleetSecrets,
} from "../../config/stack-file";

const HOSTS = {
  pi: { address: "127.0.0.1", hostKey: "ssh-ed25519 AAAA" },
  web: { address: "127.0.0.2", hostKey: "ssh-ed25519 AAAA", privateKeyFile: "/k" },
  inner: { address: "10.0.0.9", hostKey: "ssh-ed25519 AAAA", privateKeyFile: "/k", jump: "pi" },
};

/** What `pulumi config --json --show-secrets` prints (pkg/cmd/pulumi/config/config.go configValueJSON). */
const CLI_JSON = JSON.stringify({
  "fleet:hosts": { value: JSON.stringify(HOSTS), objectValue: HOSTS, secret: false },
  "hcloud:token": { value: "abc", secret: true },
  "aws:region": { value: "eu-central-1", secret: false },
  "fleet:x": { value: "some words", secret: false },
  "fleet:pins": { value: '{"api":{"releaseId":"aaaaaaaaaaaa","commit":"c"}}', secret: false },
  "fleet:privateKeys": {
    value: '{"pi":"-----BEGIN OPENSSH PRIVATE KEY-----\\n…"}',
    objectValue: { pi: "-----BEGIN OPENSSH PRIVATE KEY-----\n…" },
    secret: true,
  },
  "fleet:hidden": { secret: true },
});

/** A stack file whose secrets are ciphertext, set at the top, by --path, and inside a list. */
const STACK_FILE = `config:
  hcloud:token:
    secure: v1:AAAA:abcd
  fleet:x: some words
  fleet:port: 8080
  fleet:flag: true
  fleet:empty:
  fleet:hosts:
    pi: { address: 127.0.0.1, hostKey: ssh-ed25519 AAAA }
    web: { address: 127.0.0.2, hostKey: ssh-ed25519 AAAA, privateKeyFile: /k }
    inner: { address: 10.0.0.9, hostKey: ssh-ed25519 AAAA, privateKeyFile: /k, jump: pi }
  fleet:privateKeys:
    pi:
      secure: v1:BBBB:efgh
  fleet:notify:
    - kind: webhook
      url:
        secure: v1:CCCC:ijkl
  fleet:secretEnv:
    "web.v2":
      API_TOKEN:
        secure: v1:DDDD:mnop
`;

describe("config/stack-file: a stack's config as Pulumi keeps it", () => {
  it("CLI output: plain strings stay strings, JSON or not; objects are objects; a missing secret is reported", () => {
    const { values, unreadableSecrets } = parseCliConfig(CLI_JSON);
    assert.equal(values["hcloud:token"], "abc");
    assert.equal(values["aws:region"], "eu-central-1");
    assert.equal(values["fleet:x"], "some words");
    assert.equal(values["fleet:pins"], '{"api":{"releaseId":"aaaaaaaaaaaa","commit":"c"}}');
    assert.deepEqual(values["fleet:hosts"], HOSTS);
    assert.deepEqual(unreadableSecrets, [{ key: "fleet:hidden", path: "fleet:hidden" }]);
  });

  it("fleet keys are read as index.ts reads them (Config.getObject): JSON strings parsed, other strings kept", () => {
    const fleet = fleetValues(parseCliConfig(CLI_JSON).values);
    assert.deepEqual(fleet["pins"], { api: { releaseId: "aaaaaaaaaaaa", commit: "c" } });
    assert.equal(fleet["x"], "some words");
    assert.deepEqual(fleet["hosts"], HOSTS);
    assert.ok(!("hcloud:token" in fleet) && !("token" in fleet), "other namespaces are not fleet's");
  });

  it("stack file: a secret is ciphertext, reported by its --path and stood in for; scalars are text", () => {
    const { values, unreadableSecrets } = parseStackFile(STACK_FILE, "Pulumi.t.yaml");
    assert.deepEqual(
      unreadableSecrets.map((s) => s.path),
      ["hcloud:token", "fleet:privateKeys.pi", "fleet:notify[0].url", 'fleet:secretEnv["web.v2"].API_TOKEN'],
    );
    assert.deepEqual(wholeFleetSecrets(unreadableSecrets), []);
    assert.deepEqual(
      wholeFleetSecrets(parseStackFile("config:\n  fleet:privateKeys: { secure: v1:x }\n", "f").unreadableSecrets),
      [{ key: "fleet:privateKeys", path: "fleet:privateKeys" }],
    );
    assert.deepEqual(
      [values["fleet:x"], values["fleet:port"], values["fleet:flag"], values["fleet:empty"]],
      ["some words", "8080", "true", ""],
    );
    assert.equal(values["hcloud:token"], SECRET_STAND_IN);
    const fleet = fleetValues(values);
    assert.deepEqual([fleet["port"], fleet["flag"], fleet["x"]], [8080, true, "some words"]);
    assert.deepEqual(fleet["privateKeys"], { pi: SECRET_STAND_IN });
    assert.throws(() => parseStackFile("config: [\n", "Pulumi.t.yaml"), /^Error: Pulumi\.t\.yaml: not valid YAML/);
  });

  it("stand-ins let the rest of the config be checked, and say which hosts need an unreadable key", () => {
    const { values, unreadableSecrets } = parseStackFile(STACK_FILE, "Pulumi.t.yaml");
    const fleet = fleetValues(values);
    for (const notInSchema of ["x", "port", "flag", "empty"]) delete fleet[notInSchema];
    const cfg = parseFleetConfig({
      ...fleet,
      services: { "web.v2": { host: "web", source: { path: "." }, start: "x", health: { url: "http://h/" } } },
    });
    const secret = { key: "fleet:privateKeys", path: "fleet:privateKeys.pi" };
    assert.deepEqual(unreadableKeyFor("pi", cfg, unreadableSecrets), secret);
    assert.deepEqual(unreadableKeyFor("inner", cfg, unreadableSecrets), secret, "through its jump host");
    assert.equal(unreadableKeyFor("web", cfg, unreadableSecrets), undefined);
  });

  it("the problem names the secret, the source, why the CLI did not answer and what to do", () => {
    const message = secretsProblem(
      {
        values: {},
        unreadableSecrets: [],
        source: "/p/Pulumi.t.yaml",
        cliProblem: "`pulumi config --show-secrets --stack t` did not answer (error: passphrase must be set)",
      },
      [{ key: "fleet:privateKeys", path: "fleet:privateKeys.pi" }],
      "give hosts.pi.privateKeyFile instead",
    );
    assert.match(message, /^fleet:privateKeys\.pi is a secret, and only its ciphertext is in \/p\/Pulumi\.t\.yaml/);
    assert.match(message, /did not answer \(error: passphrase must be set\)/);
    assert.match(message, /set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE/);
    assert.match(message, /; or give hosts\.pi\.privateKeyFile instead\.$/);
    assert.equal(configPath("fleet:a", ["b", 0, "c d"]), 'fleet:a.b[0]["c d"]');
  });

  it("reads from the project folder (--cwd) when the CLI does not answer, and names the project", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-stackcfg-"));
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "pulumi"), "#!/bin/sh\necho 'error: passphrase must be set' >&2\nexit 1\n", {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), STACK_FILE);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: myproj\nruntime: nodejs\n");
    const pathBefore = process.env["PATH"];
    process.env["PATH"] = `${bin}:${pathBefore}`;
    process.env["FLEET_PULUMI_BIN_DIR"] = bin;
    try {
      const loaded = fleetConfigOf("t", dir);
      assert.equal(loaded.source, path.join(dir, "Pulumi.t.yaml"));
      assert.match(loaded.cliProblem!, /did not answer \(error: passphrase must be set\)/);
      assert.equal(loaded.raw["x"], "some words");
      assert.throws(
        () => fleetConfigOf("nope", dir),
        /and there is no .*Pulumi\.nope\.yaml: run from the project folder/,
      );
    } finally {
      process.env["PATH"] = pathBefore;
      delete process.env["FLEET_PULUMI_BIN_DIR"];
    }
    assert.equal(projectNameOf(dir), "myproj");
    assert.throws(() => projectNameOf(bin), /Pulumi\.yaml: cannot read the project's name.*give --cwd/);
  });
});
