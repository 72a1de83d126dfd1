import { strict as assert } from "assert";
import { execFile, execFileSync, spawn, type ChildProcess } from "child_process";
import { promisify } from "util";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import {
  flipLines,
  instanceSocketUnits,
  proxyConfigLines,
  routeConfig,
  routeSortKey,
  serverKey,
  tlsPolicy,
  writeRouteLines,
} from "../../commands/proxy";
import { renderUnit } from "../../commands/unit";
import { serviceLayout } from "../../commands/layout";
import type { ProxySpec } from "../../model/proxy";

const base: ProxySpec = {
  hosts: ["sinesi.example"],
  path: "/",
  port: 18480,
  listen: "127.0.0.9",
  tls: "off",
  drainTimeoutMs: 30_000,
  maintenance: false,
  instancePorts: { from: 20000, to: 20999 },
};

function sh(script: string): string {
  return execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
}

/** While the load runs in this process: a blocking exec would pause the load during the switch. */
async function shAsync(script: string): Promise<void> {
  await promisify(execFile)("/bin/sh", ["-c", script]);
}

describe("proxy builders (commands/proxy.ts)", () => {
  it("routes a service by host and path prefix to its stable socket, with no upstream keep-alive", () => {
    const route = routeConfig("backend", "/srv/fleet/backend", { ...base, path: "/api/" });
    assert.deepEqual(route["match"], [{ host: ["sinesi.example"], path: ["/api", "/api/*"] }]);
    const [handler] = route["handle"] as Array<Record<string, unknown>>;
    assert.equal(handler!["handler"], "reverse_proxy");
    assert.deepEqual(handler!["upstreams"], [{ dial: "unix//srv/fleet/backend/proxy/current.sock" }]);
    assert.deepEqual(handler!["transport"], { protocol: "http", keep_alive: { enabled: false } });
  });

  it("serves maintenance as a 503 with Retry-After from the proxy itself", () => {
    const [handler] = routeConfig("web", "/srv/fleet/web", { ...base, maintenance: true })["handle"] as Array<
      Record<string, unknown>
    >;
    assert.equal(handler!["handler"], "static_response");
    assert.equal(handler!["status_code"], 503);
    assert.deepEqual((handler!["headers"] as Record<string, string[]>)["Retry-After"], ["120"]);
  });

  it("orders the longest path prefix first, and host-specific routes before catch-alls", () => {
    const keys = [
      routeSortKey("frontend", { path: "/", hosts: ["a"] }),
      routeSortKey("any", { path: "/", hosts: [] }),
      routeSortKey("backend", { path: "/api", hosts: ["a"] }),
    ].sort();
    assert.deepEqual(
      keys.map((k) => k.split("-").pop()),
      ["backend", "frontend", "any"],
    );
  });

  it("asks for certificates only with TLS, from the proxy's CA or an ACME directory", () => {
    assert.equal(tlsPolicy(base, "sinesi.example"), undefined);
    assert.deepEqual(tlsPolicy({ ...base, tls: "internal" }, "sinesi.example"), {
      subjects: ["sinesi.example"],
      issuers: [{ module: "internal" }],
    });
    const acme = { email: "ops@x.example", ca: "https://127.0.0.1:14000/dir" };
    assert.deepEqual(tlsPolicy({ ...base, tls: "acme", acme, port: 443 }, "sinesi.example"), {
      subjects: ["sinesi.example"],
      issuers: [{ module: "acme", email: "ops@x.example", ca: "https://127.0.0.1:14000/dir" }],
    });
    // Off 443 (a private CA): TLS-ALPN on the proxy's own port, and never :80 for HTTP-01.
    const [issuer] = tlsPolicy({ ...base, tls: "acme", acme: { ...acme, caRoot: "/etc/ca.pem" } }, "a.example")![
      "issuers"
    ] as Array<Record<string, unknown>>;
    assert.deepEqual(issuer!["challenges"], { http: { disabled: true }, "tls-alpn": { alternate_port: 18480 } });
    assert.deepEqual(issuer!["trusted_roots_pem_files"], ["/etc/ca.pem"]);
  });

  it("runs an instance from its own release link and env file, and forwards its socket to PORT", () => {
    const layout = serviceLayout("/srv/fleet", "web", "web");
    const unit = renderUnit({ name: "web", runAs: "deploy", start: "node server.js", layout, instance: true });
    assert.match(unit, /^WorkingDirectory=\/srv\/fleet\/web\/instances\/%i$/m);
    assert.match(unit, /^EnvironmentFile=\/srv\/fleet\/web\/shared\/instances\/%i\.env$/m);
    const units = instanceSocketUnits("web", "/srv/fleet/web");
    assert.match(units.socket, /^ListenStream=\/srv\/fleet\/web\/proxy\/%i\.sock$/m);
    assert.match(units.service, /^ExecStart=\/lib\/systemd\/systemd-socket-proxyd 127\.0\.0\.1:%i$/m);
  });

  it("assembles one config from each service's fragments, which `caddy validate` accepts", function () {
    this.timeout(30_000);
    const etc = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-proxy-"));
    try {
      sh(
        [
          ...writeRouteLines("frontend", "/srv/fleet/frontend", { ...base, tls: "internal" }, etc),
          ...writeRouteLines("backend", "/srv/fleet/backend", { ...base, path: "/api", tls: "internal" }, etc),
          ...writeRouteLines("agent", "/srv/fleet/agent", { ...base, hosts: [], port: 18481 }, etc),
          ...writeRouteLines("my-agent", "/srv/fleet/my-agent", { ...base, hosts: [], port: 18482 }, etc),
          // A route that moves replaces its own fragment, nobody else's (not my-agent's either).
          ...writeRouteLines("agent", "/srv/fleet/agent", { ...base, hosts: [], port: 18482 }, etc),
        ].join("\n"),
      );
      const text = sh([...proxyConfigLines(etc), "proxy_config"].join("\n"));
      const config = JSON.parse(text) as {
        apps: {
          http: { servers: Record<string, { listen: string[]; routes: Array<{ "@id": string }> }> };
          tls: unknown;
        };
      };
      const servers = config.apps.http.servers;
      assert.deepEqual(
        Object.keys(servers).sort(),
        [serverKey({ ...base, port: 18480 }), serverKey({ ...base, port: 18482 })].sort(),
      );
      assert.deepEqual(
        servers[serverKey(base)]!.routes.map((r) => r["@id"]),
        ["fleet-backend", "fleet-frontend", undefined],
        "each service's route in order, then the 404 for what no route matches",
      );
      assert.deepEqual(servers[serverKey({ ...base, port: 18482 })]!.listen, ["127.0.0.9:18482"]);
      assert.deepEqual(
        servers[serverKey({ ...base, port: 18482 })]!.routes.map((r) => r["@id"]),
        ["fleet-agent", "fleet-my-agent", undefined],
      );
      assert.ok(config.apps.tls, "TLS policies are part of the config");
      fs.writeFileSync(path.join(etc, "caddy.json"), text);
      execFileSync("caddy", ["validate", "--config", path.join(etc, "caddy.json")], { stdio: "pipe" });
    } finally {
      fs.rmSync(etc, { recursive: true, force: true });
    }
  });

  it("switches between two instances under load with no failed request (real Caddy, the symlink flip)", async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-flip-"));
    const etc = path.join(dir, "etc");
    const procs: ChildProcess[] = [];
    const app = (release: string, socket: string) => {
      const p = spawn(
        process.execPath,
        [
          "-e",
          `const s=require("http").createServer((q,r)=>setTimeout(()=>r.end(${JSON.stringify(release)}),3)).listen(${JSON.stringify(socket)});process.on("SIGTERM",()=>s.close(()=>process.exit(0)))`,
        ],
        { stdio: "ignore" },
      );
      procs.push(p);
      return p;
    };
    const waitFor = async (file: string) => {
      for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(fs.existsSync(file), `${file} appeared`);
    };
    try {
      const spec = { ...base, hosts: [], listen: "127.0.0.9", port: 18479 };
      sh(writeRouteLines("web", dir, spec, etc).join("\n"));
      const config = JSON.parse(sh([...proxyConfigLines(etc), "proxy_config"].join("\n"))) as Record<string, unknown>;
      config["admin"] = { disabled: true };
      config["storage"] = { module: "file_system", root: path.join(dir, "storage") };
      fs.writeFileSync(path.join(dir, "caddy.json"), JSON.stringify(config));
      const caddy = spawn("caddy", ["run", "--config", path.join(dir, "caddy.json")], {
        stdio: "ignore",
        env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      });
      procs.push(caddy);
      const sock = (port: number) => path.join(dir, "proxy", `${port}.sock`);
      fs.mkdirSync(path.join(dir, "proxy"), { recursive: true });
      let old = app("r0", sock(30000));
      await waitFor(sock(30000));
      sh(flipLines(dir, "30000").join("\n"));

      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const outcomes: string[] = [];
      let running = true;
      const load = (async () => {
        while (running) {
          outcomes.push(
            await new Promise<string>((resolve) => {
              http
                .get({ host: "127.0.0.9", port: 18479, path: "/", agent }, (res) => {
                  let body = "";
                  res.on("data", (c: Buffer) => (body += c.toString()));
                  res.on("end", () => resolve(res.statusCode === 200 ? body : `status ${res.statusCode}`));
                })
                .on("error", (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
            }),
          );
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      for (let i = 0; i < 50 && !outcomes.includes("r0"); i++) await new Promise((r) => setTimeout(r, 100));
      for (let n = 1; n <= 6; n++) {
        const next = app(`r${n}`, sock(30000 + n));
        await waitFor(sock(30000 + n));
        await shAsync(flipLines(dir, String(30000 + n)).join("\n"));
        await new Promise((r) => setTimeout(r, 200));
        old.kill("SIGTERM");
        old = next;
        await new Promise((r) => setTimeout(r, 300));
      }
      running = false;
      await load;
      agent.destroy();
      const failed = outcomes.filter((o) => !/^r\d$/.test(o));
      assert.ok(outcomes.length > 100, `the load sent ${outcomes.length} requests`);
      assert.deepEqual(failed, [], `${failed.length} of ${outcomes.length} requests failed`);
      assert.equal(outcomes[outcomes.length - 1], "r6", "the last switch serves");
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
