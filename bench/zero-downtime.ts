/**
 * npm run bench:zero-downtime (issue #19): a steady load over loopback while services are
 * deployed, counting the requests that failed and those a failed release answered.
 *
 * - **fleet behind the proxy** (web3): 20 releases, 5 automatic rollbacks (health 500, a crash
 *   just after start, a release that never binds) and 5 manual rollbacks (a pin to an earlier
 *   release), interleaved, under BENCH_RATE requests/s (default 100) through the proxy.
 * - **fleet's restart mode** (web2) and **Capistrano 3** (web1, bench/peers/capistrano), under the
 *   same load straight at the app's port: BENCH_SIDE releases each (default 10).
 * - The proxy hop: sequential requests to one instance, straight at its port and through the
 *   proxy, and the p99 latency during the run and within 1 s of each switch.
 *
 * Prints the figures and writes them into bench/RESULTS.md (the zero-downtime block) and
 * bench/zero-downtime.json. The test servers come from test/hosts/up.sh (started if needed).
 */
import { execFile, execFileSync, spawn } from "child_process";
import { promisify } from "util";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { withBlock } from "./results-block";

const HERE = __dirname;
const REPO = path.resolve(HERE, "..");
const PYAPP = path.join(REPO, "test", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-bench-zd";
const PORTS = { proxy: 18930, instances: { from: 18931, to: 18939 }, restart: 18940, capistrano: 18941, git: 18942 };
const RATE = Number(process.env["BENCH_RATE"] ?? 100);
const SIDE = Number(process.env["BENCH_SIDE"] ?? 10);

type Op = { kind: "release" } | { kind: "auto"; mode: "unhealthy" | "crash" | "nobind" } | { kind: "manual" };

/** The 30 operations: 20 releases, 5 automatic rollbacks, 5 manual rollbacks, interleaved. */
function operations(): Op[] {
  const autos: Op[] = (["unhealthy", "crash", "nobind", "unhealthy", "crash"] as const).map((mode) => ({
    kind: "auto",
    mode,
  }));
  const ops: Op[] = [];
  for (let i = 0; i < 20; i++) {
    ops.push({ kind: "release" });
    if (i % 4 === 1) ops.push(autos.shift()!);
    if (i % 4 === 3) ops.push({ kind: "manual" });
  }
  return ops;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One GET's latency in ms (a fresh agent per series, keep-alive as a browser would). */
async function latencies(host: string, port: number, route: string, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) =>
      http
        .get({ host, port, path: route, agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        })
        .on("error", reject),
    );
    out.push(performance.now() - t);
  }
  agent.destroy();
  return out.sort((a, b) => a - b);
}

const pct = (sorted: readonly number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
const ms = (v: number) => `${v.toFixed(2)} ms`;

interface Side {
  readonly tool: string;
  readonly operations: string;
  readonly requests: number;
  readonly failed: number;
  readonly failedReasons: Record<string, number>;
  readonly byFailedRelease: number;
  readonly p99: number;
  readonly seconds: number;
}

async function main(): Promise<void> {
  execFileSync("bash", [path.join(REPO, "test", "hosts", "up.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  const { ProviderHost, SimulatedResource } = await import("../test/support/provider-host");
  const { serviceInputs } = await import("../test/support/service-inputs");
  const { connectionFor, loadInventory, sh } = await import("../test/support/fleet");
  const { GitApp } = await import("../test/support/git-app");
  const { startLoad } = await import("../test/support/load");
  const { shippedProvider } = await import("../providers/ship");
  const { bootstrapScript } = await import("../commands/host");
  const { bootstrapSpec } = await import("../components/host");
  const { closeAll } = await import("../transport/ssh");
  const log = (m: string) => console.error(`[zero-downtime] ${m}`);
  const inv = loadInventory();
  const provider = shippedProvider("service");
  const app = new GitApp(PYAPP);
  app.commit("deps", { "requirements.txt": "a==1\n" });
  const rel = () => app.head().slice(0, 12);

  for (const h of ["web1", "web2", "web3"])
    await sh(
      h,
      `for u in zdproxy zdrestart benchcap; do systemctl stop "$u" "$u@*" "$u-sock@*" 2>/dev/null || true; rm -f /etc/systemd/system/$u.service /etc/systemd/system/$u@.service /etc/systemd/system/$u-sock@*; done; systemctl daemon-reload; rm -f /etc/fleet/proxy/servers/*/routes/*-zdproxy.json; rm -rf ${ROOT}`,
    );
  await sh("web3", bootstrapScript(bootstrapSpec({ proxy: true }), "bench"));
  const host = await ProviderHost.start();
  const sides: Side[] = [];

  // ---- fleet behind the proxy
  const web3 = connectionFor("web3");
  const proxied = new SimulatedResource(host, provider, {
    name: "zdproxy",
    additionalSecretOutputs: ["connection", "secretEnv"],
  });
  const proxyInputs = (pin?: { releaseId: string; commit: string }) =>
    serviceInputs({
      name: "zdproxy",
      connection: web3,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "APP_PORT=$PORT exec python3 app.py",
      health: { url: "http://127.0.0.1/api/health", timeout: "3s", interval: "50ms" },
      proxy: { listen: web3.host, port: PORTS.proxy, instancePorts: PORTS.instances, drainTimeout: "10s" },
      ...(pin ? { pin } : {}),
    });
  await proxied.up(proxyInputs());
  const good: { release: string; commit: string }[] = [{ release: rel(), commit: app.head() }];
  const bad: string[] = [];
  const switches: number[] = [];
  const opTimes: Record<string, number[]> = { release: [], auto: [], manual: [] };
  const load = startLoad({ host: web3.host, port: PORTS.proxy, path: "/api/version", rate: RATE });
  const t0 = performance.now();
  let n = 0;
  for (const op of operations()) {
    n++;
    const start = performance.now();
    if (op.kind === "release") {
      app.commit(`release ${n}`, { "mode.txt": "ok\n", "n.txt": `${n}\n` });
      await proxied.up(proxyInputs());
      good.push({ release: rel(), commit: app.head() });
      switches.push(performance.now() - t0);
    } else if (op.kind === "auto") {
      app.commit(`broken ${n}: ${op.mode}`, { "mode.txt": `${op.mode}\n`, "n.txt": `${n}\n` });
      bad.push(rel());
      const failed = await proxied.up(proxyInputs()).then(
        () => false,
        (e: Error) => /failed its health gate/.test(e.message),
      );
      if (!failed) throw new Error(`operation ${n} (${op.mode}) was expected to fail its gate and roll back`);
    } else {
      // A manual rollback: a pin to the release before the serving one (still retained).
      const target = good[good.length - 2]!;
      await proxied.up(proxyInputs({ releaseId: target.release, commit: target.commit }));
      good.push(target);
      switches.push(performance.now() - t0);
      // Back on the branch's head (unpinned) happens with the next release.
    }
    opTimes[op.kind]!.push(performance.now() - start);
    log(
      `${n}/30 ${op.kind}${op.kind === "auto" ? ` (${op.mode})` : ""}: ${((performance.now() - start) / 1000).toFixed(1)} s`,
    );
  }
  await sleep(500);
  const proxyReport = await load.stop();
  const nearSwitch = proxyReport.samples
    .filter((s) => s.ok && switches.some((t) => Math.abs(s.at - t) < 1000))
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  sides.push({
    tool: "fleet, proxy mode",
    operations: "20 releases, 5 automatic rollbacks, 5 manual rollbacks",
    requests: proxyReport.samples.length,
    failed: proxyReport.failed.length,
    failedReasons: count(proxyReport.failed.map((s) => s.outcome)),
    byFailedRelease: bad.reduce((sum, b) => sum + (proxyReport.byRelease[b] ?? 0), 0),
    p99: proxyReport.percentile(99),
    seconds: proxyReport.seconds,
  });

  // The proxy hop: the serving instance straight, then through the proxy.
  const servingPort = Number(await sh("web3", `cat ${ROOT}/zdproxy/proxy/serving`));
  await latencies("127.0.0.1", servingPort, "/api/version", 100);
  const direct = await latencies("127.0.0.1", servingPort, "/api/version", 1000);
  const viaProxy = await latencies(web3.host, PORTS.proxy, "/api/version", 1000);
  await proxied.destroy();

  // ---- fleet's restart mode
  const web2 = connectionFor("web2");
  const restarted = new SimulatedResource(host, provider, {
    name: "zdrestart",
    additionalSecretOutputs: ["connection", "secretEnv"],
  });
  const restartInputs = () =>
    serviceInputs({
      name: "zdrestart",
      connection: web2,
      root: ROOT,
      source: { git: app.dir, ref: "main" },
      start: "exec python3 app.py",
      env: { APP_HOST: web2.host, APP_PORT: String(PORTS.restart) },
      health: { url: `http://${web2.host}:${PORTS.restart}/api/health`, timeout: "10s", interval: "50ms" },
    });
  app.commit("restart mode", { "mode.txt": "ok\n" });
  await restarted.up(restartInputs());
  const restartLoad = startLoad({ host: web2.host, port: PORTS.restart, path: "/api/version", rate: RATE });
  for (let i = 1; i <= SIDE; i++) {
    app.commit(`restart release ${i}`, { "n.txt": `r${i}\n` });
    await restarted.up(restartInputs());
    log(`restart mode ${i}/${SIDE}`);
  }
  await sleep(500);
  const restartReport = await restartLoad.stop();
  sides.push(sideOf("fleet, restart mode", `${SIDE} releases`, restartReport));
  await restarted.destroy();
  await host.stop();

  // ---- Capistrano 3
  const web1 = connectionFor("web1");
  const daemon = spawn(
    "git",
    [
      "daemon",
      "--reuseaddr",
      "--export-all",
      "--listen=127.0.0.1",
      `--port=${PORTS.git}`,
      `--base-path=${path.dirname(app.dir)}`,
      path.dirname(app.dir),
    ],
    { stdio: "ignore" },
  );
  try {
    await sleep(300);
    // Asynchronous: a blocking call would pause the load while Capistrano deploys.
    const cap = (rev: string) =>
      promisify(execFile)("cap", ["bench", "deploy"], {
        cwd: path.join(HERE, "peers", "capistrano"),
        env: {
          ...process.env,
          BENCH_HOSTS: web1.host,
          BENCH_REPO: `git://127.0.0.1:${PORTS.git}/${path.basename(app.dir)}`,
          BENCH_REV: rev,
          BENCH_ROOT: ROOT,
          BENCH_PORT: String(PORTS.capistrano),
          BENCH_KEY: inv.ssh_key,
          BENCH_KNOWN_HOSTS: inv.known_hosts,
        },
      });
    await cap(app.head());
    const capLoad = startLoad({
      host: web1.host,
      port: PORTS.capistrano,
      path: "/api/version",
      rate: RATE,
      releaseOf: () => "cap",
    });
    for (let i = 1; i <= SIDE; i++) {
      app.commit(`cap release ${i}`, { "n.txt": `c${i}\n` });
      await cap(app.head());
      log(`capistrano ${i}/${SIDE}`);
    }
    await sleep(500);
    sides.push(sideOf("Capistrano 3 (`cap deploy`, systemctl restart)", `${SIDE} releases`, await capLoad.stop()));
  } finally {
    daemon.kill();
    await sh(
      "web1",
      `systemctl disable --now benchcap 2>/dev/null || true; rm -f /etc/systemd/system/benchcap.service; rm -rf ${ROOT}`,
    ).catch(() => "");
    closeAll();
  }

  const results = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} vCPU, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    rate: RATE,
    sides,
    proxyOps: Object.fromEntries(Object.entries(opTimes).map(([k, v]) => [k, median(v)])),
    hop: {
      direct: { p50: pct(direct, 50), p99: pct(direct, 99) },
      proxy: { p50: pct(viaProxy, 50), p99: pct(viaProxy, 99) },
    },
    p99NearSwitch: pct(nearSwitch, 99),
    switches: switches.length,
  };
  fs.writeFileSync(path.join(HERE, "zero-downtime.json"), JSON.stringify(results, null, 2) + "\n");
  const block = report(results);
  const file = path.join(HERE, "RESULTS.md");
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  fs.writeFileSync(file, withBlock(text, block));
  console.log(block);
}

function count(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[i] = (out[i] ?? 0) + 1;
  return out;
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

function sideOf(
  tool: string,
  operations: string,
  r: Awaited<ReturnType<ReturnType<typeof import("../test/support/load").startLoad>["stop"]>>,
): Side {
  return {
    tool,
    operations,
    requests: r.samples.length,
    failed: r.failed.length,
    failedReasons: count(r.failed.map((s) => s.outcome)),
    byFailedRelease: 0,
    p99: r.percentile(99),
    seconds: r.seconds,
  };
}

function report(r: {
  date: string;
  machine: string;
  rate: number;
  sides: Side[];
  proxyOps: Record<string, number>;
  hop: { direct: { p50: number; p99: number }; proxy: { p50: number; p99: number } };
  p99NearSwitch: number;
  switches: number;
}): string {
  const rows = r.sides.map(
    (s) =>
      `| ${s.tool} | ${s.operations} | ${s.requests} | **${s.failed}**${
        s.failed
          ? ` (${Object.entries(s.failedReasons)
              .map(([k, v]) => `${v}× ${k}`)
              .join(", ")})`
          : ""
      } | ${s.tool.includes("proxy") ? `**${s.byFailedRelease}**` : "n/a"} | ${ms(s.p99)} |`,
  );
  return [
    "## Zero downtime under load (issue #19)",
    "",
    `Date: ${r.date}. Machine: ${r.machine}. Reproduce: \`npm run bench:zero-downtime\` (BENCH_RATE=${r.rate}, BENCH_SIDE).`,
    "",
    `A Node client sends ${r.rate} requests/s over 4 keep-alive connections, over loopback, for the whole of each run: through fleet's proxy (Caddy) for proxy mode, straight at the app's port for restart mode and Capistrano. A request fails when it gets no 200 (a reset, a refused connection, a 502, a timeout). "Answered by a failed release" counts 200s whose body names a release that failed its gate.`,
    "",
    "| tool | operations | requests | failed | answered by a failed release | p99 latency |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    `Proxy mode, median time per operation: release ${(r.proxyOps["release"]! / 1000).toFixed(2)} s, automatic rollback ${(r.proxyOps["auto"]! / 1000).toFixed(2)} s (includes the failing gate: up to its 3 s timeout), manual rollback ${(r.proxyOps["manual"]! / 1000).toFixed(2)} s.`,
    "",
    `The proxy hop, 1000 sequential requests on one keep-alive connection to the serving instance: straight at its port p50 ${ms(r.hop.direct.p50)} / p99 ${ms(r.hop.direct.p99)}; through the proxy p50 ${ms(r.hop.proxy.p50)} / p99 ${ms(r.hop.proxy.p99)}: the hop (Caddy, then systemd-socket-proxyd, a new upstream connection per request) adds ${ms(r.hop.proxy.p50 - r.hop.direct.p50)} at the median. p99 through the proxy within 1 s of each of the ${r.switches} switches: ${ms(r.p99NearSwitch)}.`,
  ].join("\n");
}

if (require.main === module)
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
