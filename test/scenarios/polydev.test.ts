import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * Seed 003: Polydev AI (a Node controller and a frontend from one repository on one server, VMs
 * booting a golden image), as Pulumi.prod.yaml expresses it (`polydev-controller` and
 * `polydev-frontend` with install, build, start and health; the `polydev-vm-agent` image), walked
 * on a real server (web3) through Pulumi's dynamic-provider host. Both targets are built from the
 * nodeapp fixture (controller/ with a build step into dist/, frontend/).
 *
 * The golden VM image (Hetzner) runs only under mocks: test/mocks/golden-image.test.ts and
 * test/mocks/prod-stack.test.ts; its provision/validate steps on a real server in
 * test/real/image-hcloud.test.ts (with a fake Hetzner API).
 */

const NODEAPP = path.resolve(__dirname, "..", "fixtures", "apps", "nodeapp");
const ROOT = "/srv/fleet-scenarios";
const HOST = "web3";
const CONTROLLER = "sc-polydev-controller";
const FRONTEND = "sc-polydev-frontend";
const PORTS: Record<string, number> = { [CONTROLLER]: 18840, [FRONTEND]: 18841 };
const MIGRATIONS = `${ROOT}/sc-polydev-migrations.log`;
/** The controller's postDeploy hook (prod.yaml's golden-snapshot script) appends here. */
const SNAPSHOTS = `${ROOT}/sc-polydev-snapshots.log`;

async function sh(command: string): Promise<string> {
  const r = await sshRun(HOST, command);
  if (r.code !== 0) throw new Error(`ssh ${HOST} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function served(name: string): Promise<string> {
  const res = await fetch(`http://127.0.0.13:${PORTS[name]}/api/version`);
  return ((await res.json()) as { commit: string }).commit;
}

describe("scenario Polydev: controller + frontend from one repo, build, migrations recorded, rollback to a commit SHA (real server web3)", function () {
  this.timeout(180_000);
  let connection: SshConnection;
  let address: string;
  before(() => {
    connection = connectionFor(HOST);
    address = connection.host;
  });
  const app = new GitApp(NODEAPP);
  const server = fs.readFileSync(path.join(NODEAPP, "server.js"), "utf8");
  const pkg = fs.readFileSync(path.join(NODEAPP, "package.json"), "utf8");
  app.commit("controller/ and frontend/", {
    "server.js": null,
    "package.json": null,
    "controller/server.js": server,
    "controller/package.json": pkg,
    "frontend/server.js": server,
    "frontend/package.json": pkg,
  });
  let host: ProviderHost;
  const resources: Record<string, SimulatedResource> = {};
  /** Each target's release id at the first deploy (with a build, the id is `<commit>-<build hash>`). */
  const firstRelease: Record<string, string> = {};
  const releaseOf = (name: string) => String(resources[name]!.state!.plainOutputs["releaseId"]);

  const install = (dir: string) => ({
    run: `cd ${dir} && mkdir -p node_modules/greet && printf 'module.exports = (n) => "hello " + n;\\n' > node_modules/greet/index.js`,
    when: [`${dir}/package.json`],
  });

  const inputs = (name: string, over: Partial<ServiceCase> = {}): Props => {
    const dir = name === CONTROLLER ? "controller" : "frontend";
    const port = PORTS[name]!;
    return serviceInputs({
      name,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      install: install(dir),
      ...(name === CONTROLLER
        ? {
            build: "cd controller && mkdir -p dist && cp server.js dist/server.js",
            start: "cd controller && exec node dist/server.js",
            migrate: `echo "$FLEET_RELEASE $FLEET_COMMIT" >> ${MIGRATIONS}`,
            hooks: { postDeploy: `echo "snapshot $FLEET_PREVIOUS_RELEASE -> $FLEET_RELEASE" >> ${SNAPSHOTS}` },
          }
        : { start: "cd frontend && exec node server.js" }),
      env: { APP_HOST: address, APP_PORT: String(port) },
      health: {
        url: `http://${address}:${port}/api/health`,
        bodyContains: "hello fleet",
        version: { url: `http://${address}:${port}/api/version`, field: "commit" },
        timeout: "6s",
        interval: "50ms",
      },
      ...over,
    });
  };

  /** One `pulumi up`: both targets, independent, in parallel. */
  async function deployBoth(over: Partial<ServiceCase> = {}): Promise<void> {
    await Promise.all([CONTROLLER, FRONTEND].map((n) => resources[n]!.up(inputs(n, over))));
  }

  before(async function () {
    this.timeout(60_000);
    await sh(
      `for u in ${CONTROLLER} ${FRONTEND}; do systemctl disable --now $u 2>/dev/null; rm -f /etc/systemd/system/$u.service; rm -rf ${ROOT}/$u; done; ` +
        `systemctl daemon-reload; mkdir -p ${ROOT}; rm -f ${MIGRATIONS} ${SNAPSHOTS}`,
    );
    host = await ProviderHost.start();
    for (const n of [CONTROLLER, FRONTEND])
      resources[n] = new SimulatedResource(host, serviceProvider, {
        name: n,
        additionalSecretOutputs: ["connection", "secretEnv"],
      });
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(Object.values(resources).map((r) => r.destroy().catch(() => undefined)));
    await host?.stop();
    await sshRun(HOST, `rm -f ${MIGRATIONS} ${SNAPSHOTS}`);
  });

  it("Pulumi.prod.yaml: the VM golden image is rebuilt from vm-agent/ and validated by booting (under mocks only: test/mocks/golden-image.test.ts)", () => {
    const stack = load(fs.readFileSync(path.resolve(__dirname, "..", "..", "Pulumi.prod.yaml"), "utf8")) as {
      config: Record<string, Record<string, Record<string, unknown>>>;
    };
    const image = stack.config["fleet:images"]!["polydev-vm-agent"]!;
    assert.equal(image["kind"], "hcloud");
    assert.deepEqual(image["provision"], { dir: "../polydev/vm-agent/provision" });
    assert.match(String((image["validate"] as Record<string, unknown>)["check"]), /systemctl is-active vm-agent/);
    assert.equal(stack.config["fleet:hosts"]!["polydev-vm"]!["goldenImage"], "polydev-vm-agent");
  });

  it("first deploy: both targets installed, the controller built and migrated, both healthy on the commit", async () => {
    const commit = app.head();
    await deployBoth();
    assert.equal(await served(CONTROLLER), commit);
    assert.equal(await served(FRONTEND), commit);
    assert.equal(await sh(`test -f ${ROOT}/${CONTROLLER}/current/controller/dist/server.js && echo built`), "built");
    for (const n of [CONTROLLER, FRONTEND]) firstRelease[n] = releaseOf(n);
    assert.match(firstRelease[CONTROLLER]!, new RegExp(`^${commit.slice(0, 12)}-[0-9a-f]+$`), "a built release");
    assert.equal(await sh(`cat ${MIGRATIONS}`), `${firstRelease[CONTROLLER]} ${commit}`, "the migration is recorded");
    assert.equal(await sh(`cat ${SNAPSHOTS}`), `snapshot  -> ${firstRelease[CONTROLLER]}`, "post-deploy ran once");
  });

  it("a change deploys both; a deployment record per deploy in each target's deploy.log; the controller's post-deploy step runs after its switch", async () => {
    const before: Record<string, string> = { [CONTROLLER]: releaseOf(CONTROLLER), [FRONTEND]: releaseOf(FRONTEND) };
    const second = app.commit("v2", { "controller/v.txt": "2\n" });
    await deployBoth();
    assert.equal(await served(CONTROLLER), second);
    assert.equal(await served(FRONTEND), second);
    for (const n of [CONTROLLER, FRONTEND]) {
      const log = (await sh(`cat ${ROOT}/${n}/deploy.log`)).split("\n");
      assert.equal(log.length, 2, log.join("\n"));
      assert.match(log[1]!, new RegExp(`${before[n]} -> ${releaseOf(n)} ok`));
    }
    assert.equal((await sh(`cat ${MIGRATIONS}`)).split("\n").length, 2);
    assert.equal(
      (await sh(`cat ${SNAPSHOTS}`)).split("\n")[1],
      `snapshot ${before[CONTROLLER]} -> ${releaseOf(CONTROLLER)}`,
    );
  });

  it("a failing build never switches the controller; a frontend that crashes at start rolls back by itself", async () => {
    const good = app.head();
    app.commit("v3 broken", { "frontend/server.js": 'throw new Error("boom at start");\n' });
    const [c, f] = await Promise.allSettled([
      resources[CONTROLLER]!.up(inputs(CONTROLLER, { build: "echo 'tsc: error TS2322' >&2; exit 2" })),
      resources[FRONTEND]!.up(inputs(FRONTEND)),
    ]);
    assert.equal(c.status, "rejected");
    assert.match(
      String((c as PromiseRejectedResult).reason),
      /step "build and switch" failed: exit code 2[\s\S]*TS2322/,
    );
    assert.equal(f.status, "rejected");
    assert.match(String((f as PromiseRejectedResult).reason), /boom at start[\s\S]*Rolled back automatically/);
    assert.equal(await served(CONTROLLER), good);
    assert.equal(await served(FRONTEND), good);
    assert.equal((await sh(`cat ${SNAPSHOTS}`)).split("\n").length, 2, "no post-deploy step without a switch");
    app.commit("v3 fixed", { "frontend/server.js": server });
  });

  it("rollback to a commit SHA: both targets serve that commit again, switched without upload", async () => {
    await deployBoth();
    const target = (await sh(`head -1 ${MIGRATIONS}`)).split(" ")[1]!;
    const files: Record<string, string> = {
      [CONTROLLER]: `${ROOT}/${CONTROLLER}/releases/${firstRelease[CONTROLLER]}/controller/server.js`,
      [FRONTEND]: `${ROOT}/${FRONTEND}/releases/${firstRelease[FRONTEND]}/frontend/server.js`,
    };
    const inodes = await Promise.all([CONTROLLER, FRONTEND].map((n) => sh(`stat -c %i ${files[n]}`)));
    app.git("checkout", "-q", target);
    try {
      await deployBoth({ source: { git: app.dir, ref: target } });
    } finally {
      app.git("checkout", "-q", "main");
    }
    assert.equal(await served(CONTROLLER), target);
    assert.equal(await served(FRONTEND), target);
    for (const [i, n] of [CONTROLLER, FRONTEND].entries()) {
      assert.equal(releaseOf(n), firstRelease[n]);
      assert.equal(await sh(`stat -c %i ${files[n]}`), inodes[i], `${n}: not uploaded again`);
    }
  });

  it("destroy removes both targets", async () => {
    await Promise.all([CONTROLLER, FRONTEND].map((n) => resources[n]!.destroy()));
    assert.equal(await sh(`ls -d ${ROOT}/${CONTROLLER} ${ROOT}/${FRONTEND} 2>/dev/null | wc -l`), "0");
  });
});
