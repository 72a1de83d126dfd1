import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as fs from "fs";
import * as path from "path";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * Seed 001: sinesiAI (a uvicorn backend and an npm frontend from one repository and branch on one
 * Ubuntu box), as Pulumi.prod.yaml expresses it (`sinesi-backend` and `sinesi-frontend`, same git
 * source, each with its own `install.when`), walked on a real server (web2) through Pulumi's
 * dynamic-provider host. The repository is built from the pyapp (backend/) and nodeapp
 * (frontend/) fixtures; each install appends to its own counter file on the host.
 *
 * In fleet a release is the commit, so both services get a new release on every commit; what
 * the seed asks ("npm install only when package.json changed, venv rebuilt only when
 * requirements.txt changed") is that each reinstalls only when its own lockfiles changed.
 */

const FIXTURES = path.resolve(__dirname, "..", "fixtures", "apps");
const ROOT = "/srv/fleet-scenarios";
const HOST = "web2";
const BACKEND = "sc-sinesi-backend";
const FRONTEND = "sc-sinesi-frontend";
const BACK_PORT = 18810;
const FRONT_PORT = 18811;
const counter = (name: string) => `/tmp/fleet-scenarios-installs-${name}`;

async function sh(command: string): Promise<string> {
  const r = await sshRun(HOST, command);
  if (r.code !== 0) throw new Error(`ssh ${HOST} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function get(port: number, route: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.12:${port}${route}`);
  assert.equal(res.status, 200, `GET :${port}${route}`);
  return (await res.json()) as Record<string, unknown>;
}

describe("scenario sinesiAI: backend + frontend from one repo on one host (real server web2)", function () {
  this.timeout(180_000);
  let connection: SshConnection;
  let address: string;
  before(() => {
    connection = connectionFor(HOST);
    address = connection.host;
  });
  // One repository: backend/ (Python) and frontend/ (Node), as in sinesiAI.
  const app = new GitApp(path.join(FIXTURES, "pyapp"));
  app.commit("split into backend/ and frontend/", {
    "app.py": null,
    "backend/app.py": fs.readFileSync(path.join(FIXTURES, "pyapp", "app.py"), "utf8"),
    "backend/requirements.txt": "fastapi==0.110\n",
    "frontend/server.js": fs.readFileSync(path.join(FIXTURES, "nodeapp", "server.js"), "utf8"),
    "frontend/package.json": fs.readFileSync(path.join(FIXTURES, "nodeapp", "package.json"), "utf8"),
  });
  let host: ProviderHost;
  let backend: SimulatedResource;
  let frontend: SimulatedResource;

  const backendInputs = (): Props =>
    serviceInputs({
      name: BACKEND,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      install: {
        run: `python3 -m venv --without-pip venv && cp backend/requirements.txt venv/installed.txt && echo run >> ${counter(BACKEND)}`,
        when: ["backend/requirements.txt"],
      },
      start: "cd backend && exec ../venv/bin/python app.py",
      env: { APP_HOST: address, APP_PORT: String(BACK_PORT) },
      health: {
        url: `http://${address}:${BACK_PORT}/api/health`,
        version: { url: `http://${address}:${BACK_PORT}/api/version`, field: "commit" },
        timeout: "8s",
        interval: "50ms",
      },
    });

  const frontendInputs = (): Props =>
    serviceInputs({
      name: FRONTEND,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      install: {
        run:
          `cd frontend && mkdir -p node_modules/greet && cp package.json node_modules/greet/installed-from.json && ` +
          `printf 'module.exports = (n) => "hello " + n;\\n' > node_modules/greet/index.js && echo run >> ${counter(FRONTEND)}`,
        when: ["frontend/package.json"],
      },
      start: "cd frontend && exec node server.js",
      env: { APP_HOST: address, APP_PORT: String(FRONT_PORT) },
      health: {
        url: `http://${address}:${FRONT_PORT}/api/health`,
        bodyContains: "hello fleet",
        version: { url: `http://${address}:${FRONT_PORT}/api/version`, field: "commit" },
        timeout: "8s",
        interval: "50ms",
      },
      keepReleases: 3,
    });

  /** One `pulumi up`: the two services are independent, so the engine runs them in parallel. */
  async function deployBoth(): Promise<{ back: Props; front: Props }> {
    const [b, f] = await Promise.all([backend.up(backendInputs()), frontend.up(frontendInputs())]);
    return { back: b.state!.plainOutputs, front: f.state!.plainOutputs };
  }

  const installs = async (name: string) => Number(await sh(`cat ${counter(name)} 2>/dev/null | wc -l`));
  const depsLink = (link: string) => sh(`readlink ${ROOT}/${link}`);

  before(async function () {
    this.timeout(60_000);
    await sh(
      `for u in ${BACKEND} ${FRONTEND}; do systemctl disable --now $u 2>/dev/null; rm -f /etc/systemd/system/$u.service; done; ` +
        `systemctl daemon-reload; rm -rf ${ROOT}/${BACKEND} ${ROOT}/${FRONTEND} ${counter(BACKEND)} ${counter(FRONTEND)}`,
    );
    host = await ProviderHost.start();
    backend = new SimulatedResource(host, serviceProvider, {
      name: BACKEND,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    frontend = new SimulatedResource(host, serviceProvider, {
      name: FRONTEND,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
  });

  after(async function () {
    this.timeout(60_000);
    await backend?.destroy().catch(() => undefined);
    await frontend?.destroy().catch(() => undefined);
    await host?.stop();
    await sshRun(HOST, `rm -f ${counter(BACKEND)} ${counter(FRONTEND)}`);
  });

  it("first deploy: two systemd services from one commit, each installed once, both serving it", async () => {
    const commit = app.head();
    const { back, front } = await deployBoth();
    assert.equal(back["depsReinstalled"], true);
    assert.equal(front["depsReinstalled"], true);
    assert.equal((await get(BACK_PORT, "/api/version"))["commit"], commit);
    assert.equal((await get(FRONT_PORT, "/api/version"))["commit"], commit);
    assert.equal((await get(FRONT_PORT, "/api/health"))["greeting"], "hello fleet");
    assert.equal(await sh(`systemctl is-active ${BACKEND} ${FRONTEND} | tr '\\n' ' '`), "active active");
    assert.equal(await installs(BACKEND), 1);
    assert.equal(await installs(FRONTEND), 1);
    assert.match(await depsLink(`${BACKEND}/current/venv`), new RegExp(`^${ROOT}/${BACKEND}/deps/[0-9a-f]+/venv$`));
    assert.match(
      await depsLink(`${FRONTEND}/current/frontend/node_modules`),
      new RegExp(`^${ROOT}/${FRONTEND}/deps/[0-9a-f]+/frontend/node_modules$`),
    );
  });

  it("logs are in the journal, per service", async () => {
    assert.match(await sh(`journalctl -u ${BACKEND} --no-pager -o cat | tail -20`), /app starting on .*:18810/);
    assert.match(await sh(`journalctl -u ${FRONTEND} --no-pager -o cat | tail -20`), /node app on .*:18811/);
  });

  it("a commit touching only backend/requirements.txt reinstalls the backend's venv; the frontend reuses its node_modules", async () => {
    const frontDeps = await depsLink(`${FRONTEND}/current/frontend/node_modules`);
    const backDeps = await depsLink(`${BACKEND}/current/venv`);
    const commit = app.commit("bump backend deps", { "backend/requirements.txt": "fastapi==0.111\n" });
    const { back, front } = await deployBoth();
    assert.equal(back["depsReinstalled"], true);
    assert.equal(front["depsReinstalled"], false);
    assert.equal(await installs(BACKEND), 2, "the backend's install ran again");
    assert.equal(await installs(FRONTEND), 1, "the frontend's install did not run");
    assert.equal(await depsLink(`${FRONTEND}/current/frontend/node_modules`), frontDeps, "same node_modules");
    assert.notEqual(await depsLink(`${BACKEND}/current/venv`), backDeps, "a new venv");
    assert.equal(await sh(`cat ${ROOT}/${BACKEND}/current/venv/installed.txt`), "fastapi==0.111");
    // Both services are on the new commit (a release is the commit).
    assert.equal((await get(BACK_PORT, "/api/version"))["commit"], commit);
    assert.equal((await get(FRONT_PORT, "/api/version"))["commit"], commit);
  });

  it("a commit touching only frontend/package.json reinstalls the frontend only", async () => {
    const backDeps = await depsLink(`${BACKEND}/current/venv`);
    const pkg = '{"name":"nodeapp","version":"1.0.1","private":true,"dependencies":{"greet":"1.0.1"}}\n';
    const commit = app.commit("bump frontend deps", { "frontend/package.json": pkg });
    const { back, front } = await deployBoth();
    assert.equal(back["depsReinstalled"], false);
    assert.equal(front["depsReinstalled"], true);
    assert.equal(await installs(BACKEND), 2);
    assert.equal(await installs(FRONTEND), 2);
    assert.equal(await depsLink(`${BACKEND}/current/venv`), backDeps, "same venv");
    assert.match(
      await sh(`cat ${ROOT}/${FRONTEND}/current/frontend/node_modules/greet/installed-from.json`),
      /"greet":"1\.0\.1"/,
    );
    assert.equal((await get(FRONT_PORT, "/api/version"))["commit"], commit);
  });

  it("a code-only commit installs nothing for either service", async () => {
    const commit = app.commit("copy change", { "frontend/README.md": "hi\n", "backend/notes.txt": "x\n" });
    const { back, front } = await deployBoth();
    assert.equal(back["depsReinstalled"], false);
    assert.equal(front["depsReinstalled"], false);
    assert.equal(await installs(BACKEND), 2);
    assert.equal(await installs(FRONTEND), 2);
    assert.equal((await get(BACK_PORT, "/api/version"))["commit"], commit);
  });

  it("an unhealthy backend rolls back by itself and leaves the frontend on the new commit", async () => {
    const good = app.head();
    const bad = app.commit("break backend", { "backend/mode.txt": "unhealthy\n" });
    const [b, f] = await Promise.allSettled([backend.up(backendInputs()), frontend.up(frontendInputs())]);
    assert.equal(b.status, "rejected");
    assert.match(String((b as PromiseRejectedResult).reason), /Rolled back automatically/);
    assert.equal(f.status, "fulfilled");
    assert.equal((await get(BACK_PORT, "/api/version"))["commit"], good);
    assert.equal((await get(FRONT_PORT, "/api/version"))["commit"], bad);
    app.commit("fix backend", { "backend/mode.txt": null });
  });

  it("destroy removes both services", async () => {
    await Promise.all([backend.destroy(), frontend.destroy()]);
    assert.equal(await sh(`ls -d ${ROOT}/${BACKEND} ${ROOT}/${FRONTEND} 2>/dev/null | wc -l`), "0");
    assert.equal(await sh(`ls /etc/systemd/system/ | grep -c '^sc-sinesi-' || true`), "0");
  });
});
