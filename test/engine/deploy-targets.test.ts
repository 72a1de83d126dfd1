import { strict as assert } from "assert";
import { codeProviderName } from "../../providers/ship";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { outputOf, type CliResult } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService, selfAlias } from "./support/fixtures";
import { served, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * `npm run deploy -- --hosts …` / `--services …` with the real CLI (`pulumi up --target`, on the
 * targets operate/deploy-targets.ts computes), on web1 and web2: a first deploy of one service
 * alone creates the Host and the backup it needs and nothing else; after a new commit, each
 * targeted deploy moves only the named hosts' or services' releases (state and host), its
 * preview names only them; an unknown host is a usage error before anything runs.
 */
const HOSTS = ["web1", "web2"];
const API = "eng-tg-api"; // on web1 and web2: resources eng-tg-api@web1, eng-tg-api@web2
const SOLO = "eng-tg-solo"; // on web2 only, protected by BACKUP
const BACKUP = "eng-tg-db";
const API_PORT = 18885;
const SOLO_PORT = 18886;
const DATA_DIR = "/srv/fleet-engine-tg-data";
const DB = `${DATA_DIR}/app.db`;

describe("engine: npm run deploy -- --hosts/--services with the real CLI (web1, web2)", function () {
  this.timeout(300_000);
  const stack = new EngineStack();
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fleet-engine-tg-")), "checks-ran");
  let app: GitApp;
  let v1: string;
  let v2: string;

  const deploy = (...args: string[]) => stack.npm("deploy", "--stack", stack.name, ...args);
  const checksRan = () => (fs.existsSync(marker) ? fs.readFileSync(marker, "utf8").split("\n").filter(Boolean) : []);
  /** The state's resources by `<type>::<name>` (a child's type without its parents'). */
  const state = async () => {
    const { deployment } = await stack.exportState();
    return Object.fromEntries(
      (deployment.resources ?? []).map((r) => {
        const [, , type, name] = String(r.urn).split("::");
        return [`${type!.split("$").pop()}::${name}`, r];
      }),
    );
  };
  const releases = async () =>
    Object.fromEntries(
      Object.entries(serviceReleases((await stack.exportState()).deployment)).map(([k, r]) => [
        k,
        r.outputs.releaseId as string,
      ]),
    );
  /** What each service answers on each host: its release id. */
  const live = async () => ({
    "api@web1": (await served(hostAddress("web1"), API_PORT))?.release,
    "api@web2": (await served(hostAddress("web2"), API_PORT))?.release,
    "solo@web2": (await served(hostAddress("web2"), SOLO_PORT))?.release,
  });
  /**
   * The resources a `pulumi up` run's preview shows (their URNs' names), before it starts
   * updating; the stack's outputs after them (`--outputs:--`) list every service, as the root
   * stack always takes part.
   */
  const previewed = (r: CliResult) => {
    const out = r.stdout;
    const start = out.indexOf("Previewing update (");
    const end = out.indexOf("Updating (");
    assert.ok(start >= 0 && end > start, `a preview, then the update:\n${out}`);
    const shown = out.slice(start, end).split("--outputs:--")[0]!;
    return [...shown.matchAll(/\[urn=(\S+)\]/g)].map((m) => m[1]!.slice(m[1]!.lastIndexOf("::") + 2));
  };

  before(async function () {
    this.timeout(180_000);
    app = new GitApp(PYAPP);
    v1 = app.head().slice(0, 12);
    await Promise.all(HOSTS.map((h) => wipe(h, ROOT, [API, SOLO])));
    await sh("web2", `rm -rf ${DATA_DIR} /srv/fleet/${BACKUP} && mkdir -p ${DATA_DIR}`);
    await sh("web2", `sqlite3 ${DB} "CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO items VALUES (1);"`);
    await selfAlias(HOSTS, true);
    await stack.create({
      "fleet:hosts": hostsConfig(HOSTS),
      "fleet:services": {
        [API]: pyService({ hosts: HOSTS, repo: app.dir, port: API_PORT }),
        [SOLO]: pyService({ hosts: ["web2"], repo: app.dir, port: SOLO_PORT }),
      },
      "fleet:backups": { [BACKUP]: { host: "web2", sqlite: { path: DB }, protects: [SOLO] } },
      "fleet:checks": [{ name: "marker", run: `echo ran >> ${marker}` }],
    });
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await Promise.all(HOSTS.map((h) => wipe(h, ROOT, [API, SOLO]).catch(() => undefined)));
    await sh("web2", `rm -rf ${DATA_DIR} /srv/fleet/${BACKUP}`).catch(() => undefined);
    await selfAlias(HOSTS, false).catch(() => undefined);
  });

  it("an unknown host or service: exit 6 naming the known ones; no check, no pulumi up ran", async () => {
    const host = await deploy("--hosts", "web1,web9");
    assert.equal(host.code, 6, outputOf(host));
    assert.match(host.stderr, /unknown host "web9": the stack's hosts are web1, web2/);
    const svc = await deploy("--services", "eng-tg-nope");
    assert.equal(svc.code, 6, outputOf(svc));
    assert.match(svc.stderr, new RegExp(`unknown service "eng-tg-nope": the stack's services are ${API}, ${SOLO}`));
    assert.deepEqual(checksRan(), [], "no check ran");
    assert.ok(!outputOf(host).includes("Previewing update"), "pulumi up did not run");
    assert.deepEqual(Object.keys(await state()), [], "nothing in the state");
  });

  it(`a first deploy with --services ${SOLO}: creates its Host and the backup that protects it, nothing else`, async () => {
    // Why the dependencies are targeted too: the service and its children alone, Pulumi refuses
    // (it names the first dependency it meets that does not exist yet).
    const urn = (type: string, name: string) => `urn:pulumi:${stack.name}::fleet::${type}::${name}`;
    const alone = await stack.pulumi(
      "preview",
      "--non-interactive",
      ...["--target", urn("fleet:index:Service", SOLO), "--target", urn("fleet:index:Service$**", `${SOLO}-release`)],
    );
    assert.notEqual(alone.code, 0, outputOf(alone));
    const refused = /depends on '([^']+)' which was was not specified in --target list/.exec(outputOf(alone));
    assert.ok(refused, outputOf(alone));
    assert.match(refused[1]!, new RegExp(`::(web2|${BACKUP}|${BACKUP}-set)$`));
    assert.deepEqual(Object.keys(await state()), [], "the preview created nothing");

    const r = await deploy("--services", SOLO);
    assert.equal(r.code, 0, outputOf(r));
    assert.match(
      r.stdout,
      new RegExp(`deploy: only Host web2 \\(needed\\), DatabaseBackup ${BACKUP} \\(needed\\), Service ${SOLO},`),
    );
    assert.deepEqual(checksRan(), ["ran"], "the checks ran first");
    const names = Object.keys(await state()).sort();
    assert.deepEqual(
      names,
      [
        `fleet:index:DatabaseBackup::${BACKUP}`,
        "fleet:index:Host::web2",
        `fleet:index:Service::${SOLO}`,
        "pulumi-nodejs:dynamic/fleet:BackupSet::" + `${BACKUP}-set`,
        "pulumi-nodejs:dynamic/fleet:ServiceRelease::" + `${SOLO}-release`,
        `pulumi:pulumi:Stack::fleet-${stack.name}`,
        // The provider that carries fleet's code (docs/state.md): a target's resources need it.
        `pulumi:providers:pulumi-nodejs::${codeProviderName()}`,
      ].sort(),
    );
    assert.equal((await stack.outputs())["databaseBackups"][BACKUP].latestId.startsWith(`${BACKUP}-`), true);
    assert.deepEqual(await live(), { "api@web1": undefined, "api@web2": undefined, "solo@web2": v1 });
  });

  it("then the whole stack (no --hosts, no --services): everything on the first commit", async () => {
    const r = await deploy();
    assert.equal(r.code, 0, outputOf(r));
    assert.ok(!r.stdout.includes("deploy: only"), r.stdout);
    assert.deepEqual(await live(), { "api@web1": v1, "api@web2": v1, "solo@web2": v1 });
  });

  it("a new commit, --hosts web1: only web1's release moves (state and host); the preview names only web1's", async () => {
    v2 = app.commit("v2", { "VERSION.txt": "2\n" }).slice(0, 12);
    assert.notEqual(v2, v1);
    const r = await deploy("--hosts", "web1");
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(previewed(r), [`fleet-${stack.name}`, `${API}@web1-release`], r.stdout);
    assert.match(r.stdout, /Resources:\n\s+~ 1 to update\n/, "one resource to update");
    assert.deepEqual(await releases(), {
      [`${API}@web1-release`]: v2,
      [`${API}@web2-release`]: v1,
      [`${SOLO}-release`]: v1,
    });
    assert.deepEqual(await live(), { "api@web1": v2, "api@web2": v1, "solo@web2": v1 });
  });

  it(`--hosts web2 --services ${API}: the intersection; ${SOLO} on web2 stays`, async () => {
    const r = await deploy("--hosts", "web2", "--services", API);
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(previewed(r), [`fleet-${stack.name}`, `${API}@web2-release`], r.stdout);
    assert.deepEqual(await live(), { "api@web1": v2, "api@web2": v2, "solo@web2": v1 });
    assert.equal((await releases())[`${SOLO}-release`], v1);
  });

  it(`--services ${SOLO}: it moves, with its backup; then the stack has nothing left to change`, async () => {
    const before = (await stack.outputs())["databaseBackups"][BACKUP].latestId;
    const r = await deploy("--services", SOLO);
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(previewed(r), [`fleet-${stack.name}`, `${BACKUP}-set`, `${SOLO}-release`], r.stdout);
    assert.deepEqual(await live(), { "api@web1": v2, "api@web2": v2, "solo@web2": v2 });
    assert.notEqual(
      (await stack.outputs())["databaseBackups"][BACKUP].latestId,
      before,
      "a backup before the new release",
    );
    const rest = await stack.pulumi("preview", "--expect-no-changes", "--non-interactive");
    assert.equal(rest.code, 0, outputOf(rest));
    assert.equal(checksRan().length, 5, "the checks ran before each deploy");
  });
});
