import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  listHistory,
  missingReleases,
  pinsForVersion,
  readCurrentReleases,
  serviceReleases,
} from "../../rollback/history";
import { recordSuccessfulUpdate } from "../support/diy-backend";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * Rollback by pins on a real server, through Pulumi's provider host: three deploys of a git app,
 * each recorded as the file backend records an update; the pins for version 1 come from reading
 * that history back, and re-applying them switches to the retained release without an upload.
 */
const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-test";
const HOST = "web2";
const PORT = 18450;
const NAME = `rb-${randomBytes(3).toString("hex")}`;

async function sh(command: string): Promise<string> {
  const r = await sshRun(HOST, command);
  if (r.code !== 0) throw new Error(`ssh ${HOST} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function servedCommit(address: string): Promise<string> {
  const res = await fetch(`http://${address}:${PORT}/api/version`);
  return ((await res.json()) as { commit: string }).commit;
}

describe("rollback by pins on a real server (through Pulumi's provider host)", function () {
  this.timeout(180_000);
  let connection: SshConnection;
  before(() => (connection = connectionFor(HOST)));
  const backend = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rb-backend-"));
  const app = new GitApp(PYAPP);
  let host: ProviderHost;
  let resource: SimulatedResource;
  let updates = 0;
  const commits: string[] = [];

  const inputs = (overrides: Partial<ServiceCase> = {}): Props =>
    serviceInputs({
      name: NAME,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "python3 app.py",
      env: { APP_HOST: connection.host, APP_PORT: String(PORT) },
      health: {
        url: `http://${connection.host}:${PORT}/api/health`,
        version: { url: `http://${connection.host}:${PORT}/api/version`, field: "commit" },
        timeout: "8s",
        interval: "50ms",
      },
      ...overrides,
    });

  /** Records the resource's state as the file backend records an update (history + checkpoint). */
  function record(message: string): void {
    recordSuccessfulUpdate(backend, "dev", NAME, resource.plainStateJson(), message, app.head(), ++updates);
  }

  before(async () => {
    host = await ProviderHost.start();
    resource = new SimulatedResource(host, serviceProvider, {
      name: NAME,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
  });
  after(async () => {
    await resource?.destroy().catch(() => undefined);
    await host?.stop();
    fs.rmSync(backend, { recursive: true, force: true });
  });

  it("three deploys, recorded as file-backend history, read back with the release of each", async () => {
    for (let i = 1; i <= 3; i++) {
      commits.push(i === 1 ? app.head() : app.commit(`v${i}`, { "v.txt": `${i}\n` }));
      await resource.up(inputs());
      assert.equal(await servedCommit(connection.host), commits[i - 1]);
      record(`deploy ${i}`);
    }
    const entries = listHistory(backend, "fleet", "dev");
    assert.deepEqual(
      entries.map((e) => [e.version, serviceReleases(e.releases, NAME)[0]?.commit, e.gitHead]),
      commits.map((c, i) => [i + 1, c, c]),
    );
    assert.match(JSON.stringify(readCurrentReleases(backend, "fleet", "dev")), new RegExp(commits[0]!.slice(0, 12)));
  });

  it("re-applying version 1 serves the first commit again, switching only (no upload), and says how long it took", async () => {
    const pins = pinsForVersion(listHistory(backend, "fleet", "dev"), 1);
    assert.deepEqual(pins, { [NAME]: { releaseId: commits[0]!.slice(0, 12), commit: commits[0] } });
    assert.deepEqual(missingReleases(pins, readCurrentReleases(backend, "fleet", "dev")), []);
    const pin = pins[NAME]!;
    const releaseFile = `${ROOT}/${NAME}/releases/${pin.releaseId}/app.py`;
    const inodeBefore = await sh(`stat -c %i ${releaseFile}`);
    app.git("checkout", "-q", pin.commit);
    const started = Date.now();
    const { state } = await resource.up(inputs({ source: { git: app.dir, ref: pin.commit } }));
    const took = Date.now() - started;
    app.git("checkout", "-q", "main");
    assert.equal(await servedCommit(connection.host), pin.commit);
    assert.equal(state!.plainOutputs["releaseId"], pin.releaseId);
    assert.equal(await sh(`stat -c %i ${releaseFile}`), inodeBefore, "the release was not uploaded again");
    console.log(`      (re-applying version 1 took ${took} ms)`);
    record("rollback to version 1");
  });

  it("a pinned release the host no longer keeps is reported before anything changes", async () => {
    // keepReleases 2: deploying a fourth commit keeps it and the rollback target (commit 1) only.
    commits.push(app.commit("v4", { "v.txt": "4\n" }));
    await resource.up(inputs({ keepReleases: 2 }));
    record("deploy 4");
    const gone = commits[1]!.slice(0, 12);
    const onHost = (await sh(`ls ${ROOT}/${NAME}/releases`)).split("\n");
    assert.ok(!onHost.includes(gone), `release ${gone} is really gone from the host: ${onHost.join(",")}`);
    const before = await sh(`readlink ${ROOT}/${NAME}/current; wc -l < ${ROOT}/${NAME}/deploy.log`);

    const missing = missingReleases(
      pinsForVersion(listHistory(backend, "fleet", "dev"), 2),
      readCurrentReleases(backend, "fleet", "dev"),
    );
    assert.equal(missing.length, 1);
    assert.match(
      missing[0]!.message,
      new RegExp(`release ${gone} is not available: ${connection.host} no longer keeps it`),
    );
    assert.match(missing[0]!.message, new RegExp(`set the service's source ref to ${commits[1]}, unpin, pulumi up`));
    assert.equal(await sh(`readlink ${ROOT}/${NAME}/current; wc -l < ${ROOT}/${NAME}/deploy.log`), before);
    assert.equal(await servedCommit(connection.host), commits[3]);
  });
});
