import { strict as assert } from "assert";
import * as fs from "fs";
import { GitApp } from "../support/git-app";
import { hostAddress, loadInventory } from "../support/fleet";
import { npmArgv, outputOf, pulumiArgv, run } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, deployLog, served, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * `npm run status -- --stack <name>` against a stack deployed by the real CLI (`pulumi up`): the
 * service's live release, health and last deploy.log line, as the host and the state have them;
 * then with the host's key a real `pulumi config set --secret` (only ciphertext in the stack
 * file), read through `pulumi config --show-secrets`; then with a wrong passphrase, where the CLI
 * cannot decrypt and status says what to do.
 */
const HOST = "web1";
const SVC = "eng-st";
const PORT = 18761;
const KEY_PATH = `fleet:privateKeys.${HOST}`;

/** The table's rows as column → value, cut at the header's column starts. */
function table(stdout: string): Record<string, string>[] {
  const lines = stdout.split("\n");
  const at = lines.findIndex((l) => l.startsWith("SERVICE "));
  assert.ok(at >= 0, `a status table:\n${stdout}`);
  const header = lines[at]!;
  const names = header.split(/\s{2,}/);
  const starts = names.map((n) => header.indexOf(n));
  return lines
    .slice(at + 1)
    .filter((l) => l.trim() !== "")
    .map((l) =>
      Object.fromEntries(
        names.map((n, i) => [n, l.slice(starts[i], i + 1 < names.length ? starts[i + 1] : undefined).trim()]),
      ),
    );
}

describe("engine: npm run status with the real CLI (web1)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let app: GitApp;

  const status = (env: NodeJS.ProcessEnv = stack.env) => run(...npmArgv("status", ["--stack", stack.name]), { env });
  const rowOf = (stdout: string) => {
    const rows = table(stdout).filter((r) => r["SERVICE"] === SVC && r["HOST"] === HOST);
    assert.equal(rows.length, 1, stdout);
    return rows[0]!;
  };

  before(async function () {
    this.timeout(180_000);
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [SVC]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": { [SVC]: pyService({ hosts: [HOST], repo: app.dir, port: PORT }) },
    });
    await stack.ok("up", "--yes", "--non-interactive");
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [SVC]).catch(() => undefined);
  });

  it("shows the live release (as the host serves it and the state records it), its health and the last deploy.log line", async () => {
    const live = await served(hostAddress(HOST), PORT);
    const state = serviceReleases((await stack.exportState()).deployment)[`${SVC}-release`];
    const release = app.head().slice(0, 12);
    assert.equal(live?.release, release);
    assert.equal(state?.outputs.releaseId, release);
    assert.equal(await currentRelease(HOST, ROOT, SVC), release);

    const r = await status();
    assert.equal(r.code, 0, outputOf(r));
    const row = rowOf(r.stdout);
    const log = await deployLog(HOST, ROOT, SVC);
    assert.ok(log.length > 0, "a deploy.log line");
    assert.deepEqual(row, {
      SERVICE: SVC,
      HOST,
      RELEASE: release,
      COMMIT: app.head().slice(0, 12),
      ACTIVE: "active",
      HEALTH: "200",
      "LAST DEPLOY": log[log.length - 1],
    });
  });

  it("with the host's key a `pulumi config set --secret`: status reads it through the CLI and reads the host", async () => {
    const inv = loadInventory();
    const key = fs.readFileSync(inv.ssh_key, "utf8");
    // The key moves from privateKeyFile to secret config (the schema takes exactly one of them).
    const host = { ...(hostsConfig([HOST])[HOST] as Record<string, unknown>) };
    delete host["privateKeyFile"];
    stack.writeConfig({ "fleet:hosts": { [HOST]: host } });
    // `--`: the key's first line starts with dashes, which the CLI would take for a flag.
    const argv = pulumiArgv(["config", "set", "--secret", "--path", KEY_PATH, "--stack", stack.name, "--", key]);
    const set = await run(...argv, { env: stack.env });
    assert.equal(set.code, 0, outputOf(set));
    const text = fs.readFileSync(stack.configFile, "utf8");
    assert.ok(!text.includes("PRIVATE KEY"), "the key is not in the stack file");
    const keys = stack.readFile().config?.["fleet:privateKeys"] as Record<string, { secure?: string }>;
    assert.match(keys[HOST]?.secure ?? "", /^v1:/, "ciphertext in the stack file");

    const r = await status();
    assert.equal(r.code, 0, outputOf(r));
    assert.ok(!outputOf(r).includes("PRIVATE KEY"), "status does not print the key");
    const row = rowOf(r.stdout);
    assert.equal(row["RELEASE"], app.head().slice(0, 12), r.stdout);
    assert.equal(row["HEALTH"], "200", r.stdout);
    assert.equal(row["LAST DEPLOY"], (await deployLog(HOST, ROOT, SVC)).pop(), r.stdout);
  });

  it("with a wrong passphrase (the CLI cannot decrypt): the host is not read, and status says why and what to do", async () => {
    const r = await status({ ...stack.env, PULUMI_CONFIG_PASSPHRASE: "not-the-passphrase" });
    assert.equal(r.code, 0, outputOf(r));
    const row = rowOf(r.stdout);
    assert.equal(row["RELEASE"], "-", r.stdout);
    assert.equal(row["LAST DEPLOY"], `not read: its key ${KEY_PATH} is a secret (see above)`, r.stdout);
    assert.ok(
      r.stderr.includes(`status: ${HOST}: ${KEY_PATH} is a secret, and only its ciphertext is in ${stack.configFile}`),
      r.stderr,
    );
    assert.match(r.stderr, /did not answer \(.*passphrase/i, r.stderr);
    assert.match(r.stderr, /set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE/, r.stderr);
    assert.match(r.stderr, new RegExp(`give hosts\\.${HOST}\\.privateKeyFile instead`), r.stderr);
  });
});
