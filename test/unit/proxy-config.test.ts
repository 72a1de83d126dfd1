import { strict as assert } from "assert";
import { parseFleetConfig } from "../../config/schema";
import { planProxy } from "../../model/proxy";
import { planService } from "../../source/plan";
import {
  routeServesPath,
  proxyActivateLines,
  proxyRestoreLines,
  proxySwitchScript,
} from "../../commands/service-proxy";
import { serverConfig, serverKey } from "../../commands/proxy";
import { checkServiceInputs } from "../../providers/service/check";
import { withBlock, zeroDowntimeBlock } from "../../bench/results-block";
import { configProblems, refusedConfigProblems, web1Host, webService } from "../support/config-fixtures";
import { serviceSpec } from "../support/service-inputs";
import { serviceLayout } from "../../commands/layout";
import * as path from "path";

/** A config with proxy-ready web1 and the services given. */
const cfg = (services: Record<string, Record<string, unknown>>, proxyHost = true) => ({
  hosts: { web1: { ...web1Host(), ...(proxyHost ? { bootstrap: { proxy: true } } : {}) } },
  services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { ...webService(), ...v }])),
});

describe("proxy: in the config and the plan (zero-downtime releases)", () => {
  it("fills the documented defaults: every host, path /, port 80 (443 with TLS), tls off, drain 30 s", () => {
    const parsed = parseFleetConfig(cfg({ web: { proxy: {} } }));
    assert.deepEqual(parsed.services["web"]!.proxy, {
      hosts: [],
      path: "/",
      listen: "",
      tls: "off",
      drainTimeout: "30s",
      maintenance: false,
    });
    const plain = planProxy({}, 30_000);
    assert.equal(plain.port, 80);
    assert.deepEqual(plain.instancePorts, { from: 20000, to: 29999 });
    assert.equal(planProxy({ tls: "internal", hosts: ["a.example"] }, 1).port, 443);
  });

  it("refuses TLS without host names, ACME without an email, and a bad path, naming each field", () => {
    const p = refusedConfigProblems(
      cfg({
        a: { proxy: { tls: "internal" } },
        b: { proxy: { tls: "acme", hosts: ["b.example"] } },
        c: { proxy: { path: "api" } },
        d: { proxy: { instancePorts: { from: 30000, to: 20000 } } },
      }),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.a.proxy.hosts: tls internal needs the host names")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.b.proxy.acme.email: tls acme needs")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith('services.c.proxy.path: must be a path prefix such as "/"')),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.d.proxy.instancePorts: from (30000)")),
      p.join("\n"),
    );
  });

  it("needs the host to run the proxy, one listen and TLS per port, and one service per route", () => {
    assert.deepEqual(configProblems(cfg({ web: { proxy: {} } }, false)), [
      'services.web.proxy: host "web1" does not run fleet\'s proxy; set hosts.web1.bootstrap.proxy: true',
    ]);
    const clash = configProblems(
      cfg({ api: { proxy: { path: "/api", listen: "127.0.0.1" } }, web: { proxy: { listen: "127.0.0.2" } } }),
    );
    assert.equal(clash.length, 1, clash.join("\n"));
    assert.match(clash[0]!, /^services\.web\.proxy: port 80 on web1 is also services\.api's/);
    const twice = configProblems(cfg({ a: { proxy: { path: "/x/" } }, b: { proxy: { path: "/x" } } }));
    assert.equal(twice.length, 1, twice.join("\n"));
    assert.match(twice[0]!, /services\.b\.proxy: services\.a already routes every host \/x on web1:80/);
    // sinesiAI: /api to the backend, / to the frontend, on one domain: accepted.
    assert.deepEqual(
      configProblems(
        cfg({
          backend: { proxy: { hosts: ["sinesi.example"], path: "/api", tls: "internal" } },
          frontend: { proxy: { hosts: ["sinesi.example"], tls: "internal" } },
        }),
      ),
      [],
    );
  });

  it("renders a template unit for a proxied service: each instance runs its own release and env", () => {
    const plan = planService(
      {
        name: "web",
        source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
        start: "python3 app.py",
        health: { url: "http://127.0.0.1/health" },
        proxy: {},
      },
      { connectionUser: "deploy", secretEnvKeys: [] },
    );
    assert.match(plan.unit, /^WorkingDirectory=\/srv\/fleet\/web\/instances\/%i$/m);
    assert.match(plan.unit, /^EnvironmentFile=\/srv\/fleet\/web\/shared\/instances\/%i\.env$/m);
    assert.equal(plan.proxy?.drainTimeoutMs, 30_000);
  });

  it("probes the switch through the proxy only when the health path is under the route's prefix", () => {
    assert.equal(routeServesPath("/", "/health"), true);
    assert.equal(routeServesPath("/api", "/api/health"), true);
    assert.equal(routeServesPath("/api/", "/api"), true);
    assert.equal(routeServesPath("/api", "/apix/health"), false);
    assert.equal(routeServesPath("/api", "/health"), false);
  });

  it("the activation never touches the proxy or current; the restore puts both back", () => {
    const spec = serviceSpec({
      name: "web",
      connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "k", hostKey: "h" } as never,
      source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
      start: "python3 app.py",
      health: { url: "http://127.0.0.1:8080/api/health" },
      proxy: {},
    });
    const layout = serviceLayout(spec.root, spec.name, spec.unitName);
    const activate = proxyActivateLines(spec, layout, { envFile: "A=1\n" }, []).join("\n");
    assert.doesNotMatch(activate, /current\.sock|proxy_load|\.current\.tmp/);
    assert.match(activate, /"http:\/\/127\.0\.0\.1:\$port"'?\/api\/health/);
    const restore = proxyRestoreLines(spec, layout, { probe: true }).join("\n");
    assert.match(restore, /proxy_load/);
    assert.match(restore, /current\.sock/);
    assert.match(restore, /systemctl disable --now '?web'?@"\$new"\.service/);
  });

  it("refuses moving a proxied service back to restart mode by an update, before anything runs", () => {
    const failures = checkServiceInputs({ name: "web" }, { releaseId: "abc", proxy: { port: 80 } });
    assert.ok(failures.some((f) => f.property === "proxy" && /not supported by an update/.test(f.reason)));
  });

  it("bench:compare and bench:zero-downtime each rewrite only their own part of RESULTS.md", () => {
    const once = withBlock("# compare\n", "zd 1");
    assert.equal(zeroDowntimeBlock(once).includes("zd 1"), true);
    const twice = withBlock(once, "zd 2");
    assert.equal(twice.includes("zd 1"), false);
    assert.equal(twice.startsWith("# compare\n"), true);
  });
});

/**
 * `proxy.listen` (model/rules/proxy.ts): the address fleet's Caddy binds, joined with the port.
 * Security issue "a service's own account never becomes root": it took `::1`, `...` and `1.2.3`
 * and rendered `"::1:8080"`. Only "" (every address), a dotted-quad IPv4 address, or an IPv6
 * address in brackets; IPv6 is rendered in brackets wherever the port follows.
 */

const listenCfg = (listen: unknown) => ({
  hosts: { web1: { ...web1Host(), bootstrap: { proxy: true } } },
  services: { web: { ...webService(), proxy: { listen, port: 8080 } } },
});

const LISTEN_ACCEPTED: readonly [string, string][] = [
  ["", ":8080"],
  ["127.0.0.5", "127.0.0.5:8080"],
  ["0.0.0.0", "0.0.0.0:8080"],
  ["255.255.255.255", "255.255.255.255:8080"],
  ["10.0.0.1", "10.0.0.1:8080"],
  ["[::1]", "[::1]:8080"],
  ["[::]", "[::]:8080"],
  ["[2001:db8::5]", "[2001:db8::5]:8080"],
  ["[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]:8080"],
];

const LISTEN_REFUSED: readonly [unknown, RegExp][] = [
  ["::1", /an IPv6 address goes in brackets: "\[::1\]"/],
  ["2001:db8::5", /goes in brackets: "\[2001:db8::5\]"/],
  ["...", /must be an IP address: "127\.0\.0\.5" \(IPv4\), "\[::1\]" \(IPv6, in brackets\) or "" \(every address\)/],
  ["1.2.3", /must be an IP address: "127\.0\.0\.5"/],
  ["1.2.3.4.5", /must be an IP address/],
  ["256.0.0.1", /must be an IP address/],
  ["01.2.3.4", /must be an IP address/],
  ["1.2.3.", /must be an IP address/],
  ["localhost", /must be an IP address/],
  ["[::1", /must be an IP address/],
  ["[1.2.3.4]", /"1\.2\.3\.4" is not an IPv6 address \(e\.g\. "\[::1\]"/],
  ["[::g]", /is not an IPv6 address/],
  ["[fe80::1%eth0]", /is not an IPv6 address/],
  ["[]", /is not an IPv6 address/],
  ["127.0.0.5:80", /is the address alone: give "127\.0\.0\.5" here and the port as proxy\.port \(80\)/],
  ["[::1]:80", /give "\[::1\]" here and the port as proxy\.port/],
  [":80", /must be an IP address/],
  ["1.2.3.4\n", /must be an IP address/],
];

describe("proxy.listen: an IPv4 address, an IPv6 address in brackets, or every address", () => {
  it("refuses anything else at services.<name>.proxy.listen, with a valid example", () => {
    for (const [bad, why] of LISTEN_REFUSED) {
      const problems = configProblems(listenCfg(bad));
      assert.ok(
        problems.some((p) => p.startsWith("services.web.proxy.listen: ") && why.test(p)),
        `${JSON.stringify(bad)}: ${problems.join("\n")}`,
      );
    }
  });

  it("accepts the valid forms, and the proxy listens on <address>:<port> with IPv6 in brackets", () => {
    for (const [listen, rendered] of LISTEN_ACCEPTED) {
      const parsed = parseFleetConfig(listenCfg(listen)).services["web"]!.proxy!;
      const spec = planProxy(parsed, 30_000);
      assert.deepEqual(serverConfig(spec)["listen"], [rendered], listen);
      assert.match(serverKey(spec), /^fleet-[A-Za-z0-9_]+-8080$/, listen);
    }
  });

  it("the provider takes the planned spec (IPv6 without brackets) and refuses what the config refuses", () => {
    const service = (listen: string) =>
      serviceSpec({
        name: "web",
        connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "K", hostKey: "ssh-ed25519 AAAA" },
        source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
        start: "python3 app.py",
        health: { url: "http://127.0.0.1:8080/health" },
        proxy: { listen, port: 8080 },
      });
    for (const [listen] of LISTEN_ACCEPTED) assert.deepEqual(checkServiceInputs(service(listen) as never), [], listen);
    const v6 = service("[::1]");
    assert.equal(v6.proxy!.listen, "::1");
    // The switch's probe through the proxy reaches it as a URL: one pair of brackets.
    const script = proxySwitchScript(v6, serviceLayout(v6.root, v6.name, v6.unitName), "token");
    assert.ok(script.includes("http://[::1]:8080/health"), script);
    assert.ok(!script.includes("[["), "no double brackets");
    for (const [bad] of LISTEN_REFUSED.filter(([b]) => typeof b === "string" && !/^[0-9a-f:]*:[0-9a-f:]*$/i.test(b))) {
      const failures = checkServiceInputs(service(bad as string) as never).map((f) => f.property);
      assert.deepEqual(failures, ["proxy.listen"], JSON.stringify(bad));
    }
  });
});
