import { strict as assert } from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { bootstrapScript } from "../../commands/host";
import { bootstrapSpec } from "../../components/host";
import { GitApp } from "../support/git-app";
import { connectionFor, sh, testHost } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";
import { startLoad } from "../support/load";

/**
 * Zero-downtime releases behind the host's proxy (issue #19), against a real test server: Caddy
 * installed and run by the Host's bootstrap, the Service provider through Pulumi's provider host,
 * and a steady load through the proxy the whole time.
 */

const serviceProvider = shippedProvider("service");
const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-test";
const HOST = "web3";
const PROXY_PORT = 18490;
const NAME = "zd";

let host: ProviderHost;

async function wipe(): Promise<void> {
  await sh(
    HOST,
    `for f in /etc/systemd/system/${NAME}*; do [ -e "$f" ] || continue; u=$(basename "$f"); systemctl disable --now "$u" 2>/dev/null || true; done; ` +
      `systemctl stop '${NAME}@*' '${NAME}-sock@*' 2>/dev/null || true; rm -rf /etc/systemd/system/${NAME}* /etc/systemd/system/*.wants/${NAME}*; systemctl daemon-reload; ` +
      `rm -f /etc/fleet/proxy/servers/*/routes/*-${NAME}.json; rm -rf ${ROOT}/${NAME}`,
  );
}

/** What the proxy answers for `route`: status, the release that answered, headers. */
async function viaProxy(route: string): Promise<{ status: number; release: string; retryAfter: string | null }> {
  const res = await fetch(`http://${connectionFor(HOST).host}:${PROXY_PORT}${route}`);
  const text = await res.text();
  let release = "";
  try {
    release = String((JSON.parse(text) as { release?: string }).release ?? "");
  } catch {
    release = "";
  }
  return { status: res.status, release, retryAfter: res.headers.get("retry-after") };
}

describe("zero-downtime releases behind the host's proxy (real server, real Caddy)", function () {
  this.timeout(300_000);
  const app = new GitApp(PYAPP);
  // Read in before(): the inventory exists only once the servers are up.
  let connection: ReturnType<typeof connectionFor>;
  const resource = () =>
    new SimulatedResource(host, serviceProvider, { name: NAME, additionalSecretOutputs: ["connection", "secretEnv"] });
  let svc: SimulatedResource;
  const inputs = (overrides: Partial<ServiceCase> = {}) =>
    serviceInputs({
      name: NAME,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "APP_PORT=$PORT exec python3 app.py",
      health: { url: "http://127.0.0.1:8080/api/health", timeout: "4s", interval: "50ms" },
      proxy: {
        listen: connection.host,
        port: PROXY_PORT,
        instancePorts: { from: 18491, to: 18499 },
        drainTimeout: "5s",
      },
      ...overrides,
    });
  const release = () => app.head().slice(0, 12);
  /** Starts a deploy (its outcome as text), and resolves once it has switched away from `oldPort`. */
  const deployUntilSwitched = async (dir: string, oldPort: string) => {
    const deploying = svc.up(inputs()).then(
      () => "finished",
      (e: Error) => e.message,
    );
    let serving = oldPort;
    for (let i = 0; i < 200 && serving === oldPort; i++) {
      await new Promise((r) => setTimeout(r, 50));
      serving = await sh(HOST, `cat ${dir}/proxy/serving`);
    }
    assert.notEqual(serving, oldPort, "the switch happened");
    return { deploying, serving };
  };

  before(async function () {
    this.timeout(120_000);
    connection = connectionFor(HOST);
    await wipe();
    await sh(HOST, bootstrapScript(bootstrapSpec({ proxy: true }), "proxy-test"));
    host = await ProviderHost.start();
    svc = resource();
  });
  after(async () => {
    await svc?.destroy().catch(() => undefined);
    await host?.stop();
  });

  it("the bootstrap runs fleet's proxy, from its own unit, with the distribution's caddy.service masked", async () => {
    assert.equal(await sh(HOST, "systemctl is-active fleet-proxy"), "active");
    assert.equal(await sh(HOST, "systemctl is-enabled fleet-proxy"), "enabled");
    assert.equal(await sh(HOST, "systemctl is-enabled caddy.service || true"), "masked");
  });

  it("a first deploy serves through the proxy, from an instance on a port fleet allocated", async () => {
    const { op } = await svc.up(inputs());
    assert.equal(op, "create");
    const served = await viaProxy("/api/version");
    assert.equal(served.status, 200);
    assert.equal(served.release, release());
    const port = Number(await sh(HOST, `cat ${ROOT}/${NAME}/proxy/serving`));
    assert.ok(port >= 18491 && port <= 18499, `instance port ${port} is in instancePorts`);
    assert.equal(await sh(HOST, `systemctl is-active ${NAME}@${port}`), "active");
    assert.equal(await sh(HOST, `readlink ${ROOT}/${NAME}/current`), `releases/${release()}`);
    assert.equal(await sh(HOST, `test -e /etc/systemd/system/${NAME}.service && echo plain || echo none`), "none");
  });

  it("under load, releases and automatic and manual rollbacks drop no request, and no failed release answers one", async () => {
    const load = startLoad({ host: connection.host, port: PROXY_PORT, path: "/api/version", rate: 100 });
    const good: string[] = [release()];
    const commits = new Map<string, string>([[release(), app.head()]]);
    const failed: string[] = [];
    try {
      const deploy = async (what: string, files: Record<string, string>, ok: boolean) => {
        commits.set(app.commit(what, files).slice(0, 12), app.head());
        if (ok) {
          await svc.up(inputs());
          good.push(release());
        } else {
          failed.push(release());
          await assert.rejects(svc.up(inputs()), /failed its health gate/);
        }
      };
      await deploy("v2", { "mode.txt": "ok\n", "v.txt": "2\n" }, true);
      await deploy("health 500", { "mode.txt": "unhealthy\n" }, false);
      await deploy("crash at start", { "mode.txt": "crash\n" }, false);
      await deploy("never binds", { "mode.txt": "nobind\n" }, false);
      await deploy("v3", { "mode.txt": "ok\n", "v.txt": "3\n" }, true);
      const target = good[1]!;
      const commit = commits.get(target)!;
      await svc.up(inputs({ pin: { releaseId: target, commit } }));
      assert.equal((await viaProxy("/api/version")).release, target, "the manual rollback serves its release");
      await deploy("v4", { "mode.txt": "ok\n", "v.txt": "4\n" }, true);
    } catch (err) {
      await load.stop();
      throw err;
    }
    const report = await load.stop();
    assert.ok(report.samples.length > 500, `the load sent ${report.samples.length} requests`);
    assert.deepEqual(
      report.failed.map((s) => s.outcome),
      [],
      `${report.failed.length} of ${report.samples.length} requests failed`,
    );
    for (const bad of failed) assert.equal(report.byRelease[bad] ?? 0, 0, `failed release ${bad} answered no request`);
    assert.deepEqual(Object.keys(report.byRelease).sort(), [...new Set(good)].sort(), "every good release served");
    const active = await sh(HOST, `systemctl list-units --state=active --no-legend '${NAME}@*.service' | wc -l`);
    assert.equal(active, "1", "after the last drain, one instance runs");
  });

  it("a failed gate never touches the proxy: its route and socket still name the serving instance", async () => {
    const before = await sh(
      HOST,
      `readlink ${ROOT}/${NAME}/proxy/current.sock; cat /etc/fleet/proxy/caddy.json | sha256sum`,
    );
    app.commit("broken again", { "mode.txt": "unhealthy\n" });
    await assert.rejects(svc.up(inputs()), /failed its health gate/);
    assert.equal(
      await sh(HOST, `readlink ${ROOT}/${NAME}/proxy/current.sock; cat /etc/fleet/proxy/caddy.json | sha256sum`),
      before,
    );
    app.commit("fixed", { "mode.txt": "ok\n" });
    await svc.up(inputs());
  });

  it("the deployer killed after the switch: the host's watchdog switches back to the old instance, with no request lost", async function () {
    this.timeout(120_000);
    const dir = `${ROOT}/${NAME}`;
    const oldPort = await sh(HOST, `cat ${dir}/proxy/serving`);
    const oldRelease = release();
    app.commit("passes its gate, then stalls the probe through the proxy", { "mode.txt": "stall-after-gate\n" });
    const load = startLoad({ host: connection.host, port: PROXY_PORT, path: "/api/version", rate: 100 });
    // The deployer dies once the switch happened (the serving port changed).
    const { deploying, serving } = await deployUntilSwitched(dir, oldPort);
    process.kill(host.pid, "SIGKILL");
    assert.notEqual(await deploying, "finished");
    let last = "";
    for (let i = 0; i < 120 && !/ reverted /.test(last); i++) {
      await new Promise((r) => setTimeout(r, 500));
      last = await sh(HOST, `tail -n 1 ${dir}/deploy.log`);
    }
    const report = await load.stop();
    assert.match(last, new RegExp(`host-watchdog ${oldRelease} -> ${release()} reverted`));
    assert.equal(await sh(HOST, `cat ${dir}/proxy/serving`), oldPort, "the socket names the old instance again");
    assert.equal((await viaProxy("/api/version")).release, oldRelease);
    assert.equal(
      await sh(HOST, `systemctl is-active ${NAME}@${serving} || true`),
      "inactive",
      "the new instance stopped",
    );
    assert.equal(await sh(HOST, `test -d ${dir}/.lock && echo held || echo free`), "free");
    assert.deepEqual(
      report.failed.map((s) => s.outcome),
      [],
      "no request failed",
    );
    // The next deploy, from a new deployer, converges.
    host = await ProviderHost.start();
    svc.rebind(host);
    app.commit("fixed after the crash", { "mode.txt": "ok\n" });
    await svc.up(inputs());
    assert.equal((await viaProxy("/api/version")).release, release());
  });

  it("a power loss between the switch and the drain: after the boot one instance serves (the new one), and the next deploy converges", async function () {
    this.timeout(180_000);
    const dir = `${ROOT}/${NAME}`;
    const container = testHost(HOST).container;
    const oldPort = await sh(HOST, `cat ${dir}/proxy/serving`);
    app.commit("stalls the probe through the proxy, then the power goes", { "mode.txt": "stall-after-gate\n" });
    const attempted = release();
    const { deploying } = await deployUntilSwitched(dir, oldPort);
    execFileSync("docker", ["kill", container], { stdio: "ignore" });
    assert.notEqual(await deploying, "finished");
    execFileSync("docker", ["start", container], { stdio: "ignore" });
    let answered = { status: 0, release: "", retryAfter: null as string | null };
    for (let i = 0; i < 120 && answered.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      answered = await viaProxy("/api/version").catch(() => answered);
    }
    assert.equal(answered.status, 200, "the proxy and an instance came back with the server");
    assert.equal(answered.release, attempted, "the socket names the instance switched to");
    // The next deploy takes the dead deploy's lock over, and converges.
    app.commit("after the power loss", { "mode.txt": "ok\n" });
    await svc.up(inputs());
    assert.equal((await viaProxy("/api/version")).release, release());
    const active = await sh(HOST, `systemctl list-units --state=active --no-legend '${NAME}@*.service' | wc -l`);
    assert.equal(active, "1", "one instance runs after the drain");
  });

  it("maintenance serves a 503 with Retry-After from the proxy, and ends with the next deploy without it", async () => {
    const proxy = {
      listen: connection.host,
      port: PROXY_PORT,
      instancePorts: { from: 18491, to: 18499 },
      drainTimeout: "5s",
    };
    await svc.up(inputs({ proxy: { ...proxy, maintenance: true } }));
    const down = await viaProxy("/api/version");
    assert.equal(down.status, 503);
    assert.equal(down.retryAfter, "120");
    await svc.up(inputs({ proxy }));
    assert.equal((await viaProxy("/api/version")).status, 200);
  });

  it("the proxy's routes survive a restart of the proxy (the config it boots with is the last one loaded)", async () => {
    await sh(HOST, "systemctl restart fleet-proxy");
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await viaProxy("/api/version").then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200);
  });

  it("delete stops every instance and removes the service's route", async () => {
    await svc.destroy();
    assert.equal(
      await sh(HOST, `systemctl list-units --state=active --no-legend '${NAME}@*' '${NAME}-sock@*' | wc -l`),
      "0",
    );
    assert.equal(await sh(HOST, `ls /etc/fleet/proxy/servers/*/routes/*-${NAME}.json 2>/dev/null | wc -l`), "0");
    assert.equal(await sh(HOST, `grep -c 'fleet-${NAME}"' /etc/fleet/proxy/caddy.json || true`), "0");
    svc = resource();
  });
});

/**
 * The fault matrix's proxy phase (issue #19): the proxy killed, its config broken, its port
 * taken, each while a load runs through the proxy to a service that already serves. Each ends
 * with the old or the new release serving (never none), the error naming the proxy, and the
 * next plain deploy converging.
 */
describe("faults in the proxy phase (real server, real Caddy)", function () {
  this.timeout(300_000);
  const app = new GitApp(PYAPP);
  const PORT = 18484;
  let connection: ReturnType<typeof connectionFor>;
  let svc: SimulatedResource;
  let faultHost: ProviderHost;
  const inputs = (name = "zf", port = PORT, instancePorts = { from: 18485, to: 18488 }) =>
    serviceInputs({
      name,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "APP_PORT=$PORT exec python3 app.py",
      health: { url: "http://127.0.0.1/api/health", timeout: "4s", interval: "50ms" },
      proxy: { listen: connection.host, port, instancePorts, drainTimeout: "5s" },
    });
  const served = async (port = PORT) => {
    const res = await fetch(`http://${connection.host}:${port}/api/version`);
    return { status: res.status, release: ((await res.json()) as { release: string }).release };
  };
  const brokenFragment = () =>
    `/etc/fleet/proxy/servers/fleet-${connection.host.replace(/\./g, "_")}-${PORT}/routes/000-0-zz-broken.json`;

  before(async function () {
    this.timeout(120_000);
    connection = connectionFor(HOST);
    await sh(
      HOST,
      `rm -f ${brokenFragment()}; systemctl stop 'zf@*' 'zp@*' 2>/dev/null || true; rm -rf ${ROOT}/zf ${ROOT}/zp /etc/fleet/proxy/servers/*/routes/*-zf.json /etc/fleet/proxy/servers/*/routes/*-zp.json`,
    );
    await sh(HOST, bootstrapScript(bootstrapSpec({ proxy: true }), "proxy-test"));
    faultHost = await ProviderHost.start();
    svc = new SimulatedResource(faultHost, serviceProvider, {
      name: "zf",
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    await svc.up(inputs());
  });
  after(async () => {
    await sh(HOST, `rm -f ${brokenFragment()}`).catch(() => "");
    await svc?.destroy().catch(() => undefined);
    await faultHost?.stop();
  });

  it("the proxy killed as a deploy starts: it comes back by itself, and the deploy switches", async () => {
    const restarts = Number(await sh(HOST, "systemctl show -p NRestarts --value fleet-proxy"));
    app.commit("after a proxy crash", { "n.txt": "killed\n" });
    await sh(HOST, "systemctl kill -s KILL fleet-proxy");
    await svc.up(inputs());
    assert.equal((await served()).release, app.head().slice(0, 12));
    assert.equal(await sh(HOST, "systemctl is-active fleet-proxy"), "active");
    assert.ok(
      Number(await sh(HOST, "systemctl show -p NRestarts --value fleet-proxy")) > restarts,
      "systemd restarted it",
    );
  });

  it("its config broken (a fragment Caddy refuses): the switch fails naming the proxy, the old release serves with no request lost", async () => {
    const before = svc.state!.plainOutputs["releaseId"];
    await sh(HOST, `printf '%s' '{"handle":[{"handler":"no-such-handler"}]}' > ${brokenFragment()}`);
    // The fragment makes the assembled config differ from the live one: the switch must load it.
    const load = startLoad({ host: connection.host, port: PORT, path: "/api/version", rate: 100 });
    app.commit("while the config is broken", { "n.txt": "broken\n" });
    await assert.rejects(svc.up(inputs()), (err: Error) => {
      assert.match(err.message, /the proxy refused its new config/);
      assert.match(err.message, /exit code 73/);
      assert.match(err.message, /failed in its switch phase/);
      return true;
    });
    const report = await load.stop();
    assert.deepEqual(
      report.failed.map((s) => s.outcome),
      [],
      "no request failed",
    );
    assert.equal(svc.state!.plainOutputs["releaseId"], before, "state keeps the serving release");
    assert.equal((await served()).release, before);
    assert.equal(await sh(HOST, "systemctl list-units --state=active --no-legend 'zf@*.service' | wc -l"), "1");
    await sh(HOST, `rm -f ${brokenFragment()}`);
    await svc.up(inputs());
    assert.equal((await served()).release, app.head().slice(0, 12), "once fixed, the next deploy converges");
  });

  it("its port taken by another program: a new service's route is refused, and the serving one is not disturbed", async () => {
    const taken = 18483;
    const squatter = await sh(
      HOST,
      `nohup python3 -m http.server ${taken} --bind ${connection.host} >/dev/null 2>&1 & echo $!`,
    );
    const other = new SimulatedResource(faultHost, serviceProvider, {
      name: "zp",
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    const load = startLoad({ host: connection.host, port: PORT, path: "/api/version", rate: 100 });
    let report: Awaited<ReturnType<typeof load.stop>>;
    try {
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(other.up(inputs("zp", taken, { from: 18476, to: 18478 })), (err: Error) => {
        assert.match(err.message, /the proxy refused its new config/);
        assert.match(err.message, /address already in use/);
        return true;
      });
      assert.equal(other.state, undefined, "nothing recorded");
      assert.equal(
        await sh(HOST, `ls /etc/fleet/proxy/servers/*/routes/*-zp.json 2>/dev/null | wc -l`),
        "0",
        "its route is gone",
      );
    } finally {
      report = await load.stop();
      await sh(HOST, `kill ${squatter}`).catch(() => "");
    }
    assert.deepEqual(
      report.failed.map((s) => s.outcome),
      [],
      "the serving service lost no request",
    );
    await other.up(inputs("zp", taken, { from: 18476, to: 18478 }));
    assert.equal((await served(taken)).status, 200, "once the port is free, the next deploy converges");
    await other.destroy();
  });
});

/** TLS from the proxy (issue #19): `tls: internal`, the proxy's own CA, verified against that CA's root. */
describe("TLS behind the proxy (real server, real Caddy)", function () {
  this.timeout(300_000);
  const app = new GitApp(PYAPP);
  const PORT = 18477;
  const NAME_TLS = "zt";
  let connection: ReturnType<typeof connectionFor>;
  let tlsHost: ProviderHost;
  let svc: SimulatedResource;
  const inputs = () =>
    serviceInputs({
      name: NAME_TLS,
      connection,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "APP_PORT=$PORT exec python3 app.py",
      health: { url: "http://127.0.0.1/api/health", timeout: "4s", interval: "50ms" },
      proxy: {
        hosts: ["zt.fleet.test"],
        tls: "internal",
        listen: connection.host,
        port: PORT,
        instancePorts: { from: 18471, to: 18474 },
        drainTimeout: "5s",
      },
    });
  /** GET over HTTPS, verified against `ca` for `name` (default zt.fleet.test on PORT). */
  const httpsGet = (ca: string, name = "zt.fleet.test", port = PORT) =>
    new Promise<{ status: number; release: string; issuer: string; serial: string }>((resolve, reject) => {
      const req = https.get(
        {
          host: connection.host,
          port,
          path: "/api/version",
          servername: name,
          headers: { Host: name },
          ca,
          agent: false,
        },
        (res) => {
          let body = "";
          const cert = (res.socket as import("tls").TLSSocket).getPeerCertificate();
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => {
            resolve({
              status: res.statusCode ?? 0,
              release: (JSON.parse(body) as { release: string }).release,
              issuer: String(cert.issuer?.CN ?? ""),
              serial: String(cert.serialNumber ?? ""),
            });
          });
        },
      );
      req.on("error", reject);
    });

  before(async function () {
    this.timeout(120_000);
    connection = connectionFor(HOST);
    await sh(
      HOST,
      `systemctl stop '${NAME_TLS}@*' 2>/dev/null || true; rm -rf ${ROOT}/${NAME_TLS} /etc/fleet/proxy/servers/*/routes/*-${NAME_TLS}.json /etc/fleet/proxy/tls/*@${NAME_TLS}.json`,
    );
    await sh(HOST, bootstrapScript(bootstrapSpec({ proxy: true }), "proxy-test"));
    tlsHost = await ProviderHost.start();
    svc = new SimulatedResource(tlsHost, serviceProvider, {
      name: NAME_TLS,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
  });
  after(async () => {
    await svc?.destroy().catch(() => undefined);
    await tlsHost?.stop();
  });

  it("tls internal: the proxy's own CA issues the host name's certificate; a release switches over HTTPS", async () => {
    await svc.up(inputs());
    const root = await sh(HOST, "cat /var/lib/fleet/proxy/pki/authorities/local/root.crt");
    assert.match(root, /BEGIN CERTIFICATE/);
    const first = await httpsGet(root);
    assert.equal(first.status, 200);
    assert.equal(first.release, app.head().slice(0, 12));
    assert.match(first.issuer, /Caddy Local Authority/);
    app.commit("over https", { "n.txt": "tls\n" });
    await svc.up(inputs());
    assert.equal((await httpsGet(root)).release, app.head().slice(0, 12));
    // Without the proxy's CA, the certificate is not trusted: it is really verified above.
    await assert.rejects(httpsGet(""), /self[- ]signed|unable to (get|verify)|certificate/i);
  });

  it("tls acme: a certificate is really issued by an ACME server (Pebble, local) and renewed", async function () {
    this.timeout(180_000);
    const pebbleDir = execFileSync("bash", [path.resolve(__dirname, "..", "..", "tools", "pebble", "ensure.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .pop()!;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-pebble-"));
    const ACME_PORT = 18468;
    fs.writeFileSync(
      path.join(work, "pebble.json"),
      JSON.stringify({
        pebble: {
          listenAddress: "127.0.0.1:18466",
          managementListenAddress: "127.0.0.1:18467",
          certificate: path.join(pebbleDir, "certs", "cert.pem"),
          privateKey: path.join(pebbleDir, "certs", "key.pem"),
          httpPort: 18464,
          tlsPort: ACME_PORT,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          // 60 s certificates: the proxy renews one within the test.
          profiles: { default: { description: "short", validityPeriod: 60 } },
        },
      }),
    );
    const pebble = spawn(path.join(pebbleDir, "pebble"), ["-config", path.join(work, "pebble.json")], {
      env: { ...process.env, PEBBLE_VA_ALWAYS_VALID: "1", PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
      stdio: "ignore",
    });
    const acme = new SimulatedResource(tlsHost, serviceProvider, {
      name: "za",
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    try {
      await sh(
        HOST,
        "cat > /etc/fleet/proxy/pebble-root.pem && chmod 644 /etc/fleet/proxy/pebble-root.pem",
        fs.readFileSync(path.join(pebbleDir, "certs", "pebble.minica.pem"), "utf8"),
      );
      await sh(
        HOST,
        `systemctl stop 'za@*' 2>/dev/null || true; rm -rf ${ROOT}/za /etc/fleet/proxy/servers/*/routes/*-za.json /etc/fleet/proxy/tls/*@za.json /var/lib/fleet/proxy/certificates/127.0.0.1-18466-dir`,
      );
      const acmeInputs = () =>
        serviceInputs({
          name: "za",
          connection,
          root: ROOT,
          source: { git: app.dir, ref: "main" },
          start: "APP_PORT=$PORT exec python3 app.py",
          health: { url: "http://127.0.0.1/api/health", timeout: "20s", interval: "100ms" },
          proxy: {
            hosts: ["za.fleet.test"],
            tls: "acme",
            acme: {
              email: "ops@fleet.test",
              ca: "https://127.0.0.1:18466/dir",
              caRoot: "/etc/fleet/proxy/pebble-root.pem",
            },
            listen: connection.host,
            port: ACME_PORT,
            instancePorts: { from: 18461, to: 18463 },
            drainTimeout: "5s",
          },
        });
      // The switch's probe through the proxy waits (up to the health timeout) for the certificate.
      await acme.up(acmeInputs());
      // Pebble's issuing root (a new one per Pebble run), from its management API.
      const root = await new Promise<string>((resolve, reject) =>
        https
          .get(
            {
              host: "127.0.0.1",
              port: 18467,
              path: "/roots/0",
              ca: fs.readFileSync(path.join(pebbleDir, "certs", "pebble.minica.pem")),
            },
            (res) => {
              let body = "";
              res.on("data", (c: Buffer) => (body += c.toString()));
              res.on("end", () => resolve(body));
            },
          )
          .on("error", reject),
      );
      const first = await httpsGet(root, "za.fleet.test", ACME_PORT);
      assert.equal(first.status, 200);
      assert.equal(first.release, app.head().slice(0, 12));
      assert.match(first.issuer, /Pebble/i);
      // Renewal: past two thirds of its 60 s, the proxy renews it (at its start, here).
      await new Promise((r) => setTimeout(r, 42_000));
      await sh(HOST, "systemctl restart fleet-proxy");
      let renewed = first;
      for (let i = 0; i < 60 && renewed.serial === first.serial; i++) {
        await new Promise((r) => setTimeout(r, 500));
        renewed = await httpsGet(root, "za.fleet.test", ACME_PORT).catch(() => first);
      }
      assert.notEqual(renewed.serial, first.serial, "a new certificate was issued");
      assert.match(renewed.issuer, /Pebble/i);
    } finally {
      await acme.destroy().catch(() => undefined);
      pebble.kill();
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
