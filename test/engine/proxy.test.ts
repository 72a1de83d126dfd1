import { strict as assert } from "assert";
import * as http from "http";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { npmArgv, outputOf, run } from "./support/cli";
import { changes } from "./support/diff";
import { ROOT, PYAPP, hostsConfig } from "./support/fixtures";
import { wipe } from "./support/host";
import { EngineStack } from "./support/stack";

/**
 * Zero-downtime releases (issue #19) with the real CLI: a host bootstrapped with `proxy: true`,
 * a service with `proxy:` deployed by `pulumi up`, and `pulumi preview --diff` showing a route
 * change as such before it deploys.
 */
const HOST = "web2";
const NAME = "eng-zd";
const PORT = 18880;
const RELEASE_TYPE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";

describe("engine: a service behind the proxy, with the real CLI (web2)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let app: GitApp;
  let address: string;
  const service = (proxy: Record<string, unknown>) => ({
    host: HOST,
    root: ROOT,
    source: { git: app.dir, ref: "main" },
    start: "APP_PORT=$PORT exec python3 app.py",
    health: { url: "http://127.0.0.1/api/health", timeout: "10s" },
    proxy: { listen: address, port: PORT, instancePorts: { from: 18881, to: 18884 }, drainTimeout: "5s", ...proxy },
  });
  // (http.get: fetch does not send a Host header of its own choosing.)
  const get = (hostHeader?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) =>
      http
        .get(
          { host: address, port: PORT, path: "/api/version", ...(hostHeader ? { headers: { Host: hostHeader } } : {}) },
          (res) => {
            let text = "";
            res.on("data", (c: Buffer) => (text += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          },
        )
        .on("error", reject),
    );

  before(async function () {
    this.timeout(120_000);
    address = hostAddress(HOST);
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [NAME]);
    const hosts = hostsConfig([HOST]) as Record<string, Record<string, unknown>>;
    await stack.create({
      "fleet:hosts": { [HOST]: { ...hosts[HOST], bootstrap: { proxy: true } } },
      "fleet:services": { [NAME]: service({}) },
    });
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await sh(HOST, `systemctl stop '${NAME}@*' 2>/dev/null || true`).catch(() => "");
    await wipe(HOST, ROOT, [NAME]).catch(() => undefined);
  });

  it("pulumi up bootstraps the proxy and deploys the service behind it", async () => {
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.equal(await sh(HOST, "systemctl is-active fleet-proxy"), "active");
    const served = await get();
    assert.equal(served.status, 200);
    assert.equal(JSON.parse(served.text).release, app.head().slice(0, 12));
    // docs/state.md: every fleet resource, the bootstrap with its rendered script included,
    // stays within 8 KB of state; the code is in the stack's one code provider.
    const { deployment } = await stack.exportState();
    const fleetResources = (deployment.resources ?? []).filter((x) =>
      String(x.type).startsWith("pulumi-nodejs:dynamic/fleet:"),
    );
    assert.deepEqual(fleetResources.map((x) => String(x.type).split(":").pop()).sort(), [
      "HostBootstrap",
      "ServiceRelease",
    ]);
    for (const x of fleetResources) {
      const size = Buffer.byteLength(JSON.stringify(x));
      const parts = ["inputs", "outputs"].flatMap((part) =>
        Object.entries((x as Record<string, Record<string, unknown>>)[part] ?? {}).map(
          ([k, v]) => `${part}.${k} ${JSON.stringify(v).length}`,
        ),
      );
      assert.ok(size <= 8192, `${String(x.urn)}: ${size} bytes of state: ${parts.join(", ")}`);
    }
  });

  it("pulumi preview --diff shows a route change as such, and pulumi up applies it", async () => {
    stack.writeConfig({ "fleet:services": { [NAME]: service({ hosts: ["zd.fleet.test"], path: "/api" }) } });
    const preview = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(preview.code, 0, outputOf(preview));
    const release = changes(preview.stdout).find((s) => s.type === RELEASE_TYPE);
    assert.ok(release, preview.stdout);
    assert.equal(release.op, "update");
    const text = release.lines.join("\n");
    assert.match(text, /~ proxy\s*: \{/, text);
    assert.match(text, /\+ \[0\]: "zd\.fleet\.test"/, text);
    assert.match(text, /~ path\s*: "\/" => "\/api"/, text);
    const up = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(up.code, 0, outputOf(up));
    assert.equal((await get("zd.fleet.test")).status, 200);
    const other = await get("other.fleet.test");
    assert.equal(other.status, 404, "another host name is not routed to it");
    assert.match(other.text, /No fleet service is routed here/);
  });

  it("npm run status reads the serving instance behind the proxy: its release, active, health 200", async () => {
    const r = await run(...npmArgv("status", ["--stack", stack.name]), { env: stack.env });
    assert.equal(r.code, 0, outputOf(r));
    const row = r.stdout.split("\n").find((l) => l.startsWith(`${NAME} `));
    assert.ok(row, r.stdout);
    const cols = row.split(/\s{2,}/);
    assert.deepEqual(cols.slice(1, 6), [HOST, app.head().slice(0, 12), app.head().slice(0, 12), "active", "200"], row);
  });
});
