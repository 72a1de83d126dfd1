import { strict as assert } from "assert";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { sh } from "../support/fleet";
import { outputOf } from "./support/cli";
import { changes } from "./support/diff";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { wipe } from "./support/host";
import { EngineStack } from "./support/stack";

/**
 * A secret env value set as users set it (`pulumi config set --secret --path
 * 'fleet:secretEnv.<svc>.API_TOKEN' …`): ciphertext in the stack's file, the value in the running
 * app's environment, and nowhere else: not in `pulumi stack export`, the CLI's output, the
 * backend's files, deploy.log or the service's journal.
 */
const HOST = "web1";
const SVC = "eng-sec";
const PORT = 18731;
const KEY = `fleet:secretEnv.${SVC}.API_TOKEN`;

/** The forms a leak could take: raw, JSON-escaped (the same here), base64, hex. */
const forms = (v: string) => [v, Buffer.from(v).toString("base64"), Buffer.from(v).toString("hex")];

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((e) => {
    const full = path.join(e.parentPath, e.name);
    return e.isFile() ? [full] : [];
  });
}

describe("engine: secrets set with the real CLI reach the app and nothing else (web1)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  const tokens = [`tok-${randomBytes(12).toString("hex")}`, `tok-${randomBytes(12).toString("hex")}`];
  let app: GitApp;

  /** The running app's environment, from /proc. */
  const appEnv = async () => {
    const pid = await sh(HOST, `systemctl show -p MainPID --value ${SVC}`);
    return (await sh(HOST, `tr '\\0' '\\n' < /proc/${pid}/environ`)).split("\n");
  };

  before(async function () {
    this.timeout(120_000);
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [SVC]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": { [SVC]: pyService({ hosts: [HOST], repo: app.dir, port: PORT }) },
    });
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [SVC]).catch(() => undefined);
  });

  it("pulumi config set --secret --path stores ciphertext in Pulumi.<stack>.yaml", async () => {
    await stack.ok("config", "set", "--secret", "--path", KEY, tokens[0]!);
    const text = fs.readFileSync(stack.configFile, "utf8");
    assert.ok(!text.includes(tokens[0]!), "the value is not in the file");
    const secretEnv = stack.readFile().config?.["fleet:secretEnv"] as Record<string, Record<string, unknown>>;
    assert.match((secretEnv[SVC]!["API_TOKEN"] as { secure: string }).secure, /^v1:[A-Za-z0-9+/=:]{20,}$/);
    const shown = await stack.ok("config", "get", "--path", KEY);
    assert.equal(shown.stdout.trim(), tokens[0], "the CLI decrypts it back");
  });

  it("pulumi up: the running app has the value; the env file holding it is 0600", async () => {
    const r = await stack.pulumi("up", "--yes", "--non-interactive", "--diff");
    assert.equal(r.code, 0, outputOf(r));
    assert.ok((await appEnv()).includes(`API_TOKEN=${tokens[0]}`), "API_TOKEN in the app's environment");
    assert.equal(await sh(HOST, `stat -c %a ${ROOT}/${SVC}/shared/env`), "600");
    assert.ok((await sh(HOST, `cat ${ROOT}/${SVC}/shared/env`)).includes(tokens[0]!));
  });

  it("a rotated secret previews as [secret] and reaches the app with the next up", async () => {
    await stack.ok("config", "set", "--secret", "--path", KEY, tokens[1]!);
    const preview = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(preview.code, 0, outputOf(preview));
    const planned = changes(preview.stdout);
    assert.deepEqual(
      planned.map((s) => `${s.op} ${s.name}`),
      [`update ${SVC}-release`],
      preview.stdout,
    );
    // The value shows masked (and, as a dynamic provider gives the engine no detailed diff, the
    // changed key is not marked either).
    assert.ok(
      planned[0]!.lines.some((l) => /^\s+secretEnv\s*: \[secret\]$/.test(l)),
      preview.stdout,
    );
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.match(r.stdout, new RegExp(`ServiceRelease ${SVC}-release updated \\(`), r.stdout);
    const env = await appEnv();
    assert.ok(env.includes(`API_TOKEN=${tokens[1]}`), "the new value in the app's environment");
  });

  it("neither value is in pulumi stack export, the CLI's output, the backend, deploy.log or the journal", async () => {
    await stack.ok("stack", "export");
    await stack.ok("stack", "output", "--json");
    await stack.ok("config");
    const places: [string, string][] = [
      // Every command's output but `config get`'s, which is the user asking for the value.
      ...stack.transcript
        .filter(({ argv }) => !argv.includes("get"))
        .map(({ argv, result }): [string, string] => [`output of ${argv.slice(3).join(" ")}`, outputOf(result)]),
      ...filesUnder(stack.backendDir).map((f): [string, string] => [f, fs.readFileSync(f).toString("latin1")]),
      [`${HOST}:deploy.log`, await sh(HOST, `cat ${ROOT}/${SVC}/deploy.log`)],
      [`${HOST}:journal of ${SVC}`, await sh(HOST, `journalctl -u ${SVC} --no-pager -q -o cat || true`)],
      [stack.configFile, fs.readFileSync(stack.configFile, "utf8")],
    ];
    assert.ok(
      places.some(([p]) => p.includes("stack export")),
      "the export was searched",
    );
    assert.ok(
      places.some(([p]) => p.endsWith(".checkpoint.json")),
      "the history was searched",
    );
    const hits = places.flatMap(([where, text]) =>
      tokens
        .flatMap(forms)
        .filter((f) => text.includes(f))
        .map((f) => `${where}: ${f}`),
    );
    assert.deepEqual(hits, []);
  });
});
