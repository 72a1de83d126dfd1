/**
 * npm run bench: the Service deploy on the 3 real test servers, in parallel, measured per phase:
 * wall time, SSH connections opened per host, remote round trips per host; and the floor (an
 * atomic switch + restart + first healthy probe over an open connection). Prints figures; it
 * asserts nothing (the targets: bench/README.md, "The bar").
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { deployService } from "../providers/service/deploy";
import { closeAll, exec, transportStats, connectionKey } from "../transport/ssh";
import { GitApp } from "../test/support/git-app";
import { connectionFor } from "../test/support/fleet";
import { serviceSpec } from "../test/support/service-inputs";
import type { ServiceSpec, ServiceState } from "../model/service";

const HOSTS = ["web1", "web2", "web3"];
const RUNS = Number(process.env["BENCH_RUNS"] ?? 5);
const PORT = 18900;
const ROOT = "/srv/fleet-bench";
const APP = path.resolve(__dirname, "..", "test", "fixtures", "apps", "pyapp");

function specFor(hostName: string, app: GitApp, ref: string): ServiceSpec {
  const connection = connectionFor(hostName);
  return serviceSpec({
    name: "benchapp",
    connection,
    root: ROOT,
    source: { git: app.dir, ref },
    install: { run: "python3 -m venv --without-pip .venv && cp requirements.txt .venv/", when: ["requirements.txt"] },
    start: ".venv/bin/python app.py",
    env: { APP_HOST: connection.host, APP_PORT: String(PORT) },
    health: {
      url: `http://${connection.host}:${PORT}/api/health`,
      version: { url: `http://${connection.host}:${PORT}/api/version`, field: "commit" },
      timeout: "20s",
      interval: "20ms",
    },
  });
}

interface Sample {
  readonly ms: number;
  readonly connections: number;
  readonly roundTrips: number;
}

/** The last recorded state per host, as Pulumi would pass it to the provider's update. */
const lastState: Record<string, ServiceState | undefined> = {};

/** Deploys `ref` to all hosts in parallel, like `pulumi up`; returns wall time and per-host transport deltas. */
async function deployAll(app: GitApp, ref: string): Promise<Sample> {
  const specs = HOSTS.map((h) => specFor(h, app, ref));
  const keys = specs.map((s) => connectionKey(s.connection));
  const before = JSON.parse(JSON.stringify(transportStats()));
  const started = process.hrtime.bigint();
  await Promise.all(
    specs.map(async (s, i) => {
      const host = HOSTS[i]!;
      lastState[host] = await deployService(s, { retained: lastState[host]?.retainedReleases ?? [] });
    }),
  );
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const after = transportStats();
  const delta = (kind: "opened" | "commands") =>
    Math.max(...keys.map((k) => (after[kind][k] ?? 0) - (before[kind][k] ?? 0)));
  return { ms, connections: delta("opened"), roundTrips: delta("commands") };
}

/** The floor: switch `current`, restart, poll health every 20 ms, all in one remote command. */
async function floorAll(): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(
    HOSTS.map(async (h) => {
      const c = connectionFor(h);
      const script = [
        `cd ${ROOT}/benchapp && t=$(readlink current) && ln -sfn "$t" .floor && mv -Tf .floor current`,
        `systemctl restart benchapp`,
        `until curl -sf -o /dev/null http://${c.host}:${PORT}/api/health; do sleep 0.02; done`,
      ].join(" && ");
      const r = await exec(c, script, { step: "floor" });
      if (r.code !== 0) throw new Error(`floor on ${h} failed: ${r.stderr}`);
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function row(name: string, samples: Sample[] | number[]): string {
  const ms = samples.map((s) => (typeof s === "number" ? s : s.ms));
  const fmt = (x: number) => `${(x / 1000).toFixed(3)} s`;
  const extra =
    typeof samples[0] === "number"
      ? ""
      : ` | ${Math.max(...(samples as Sample[]).map((s) => s.connections))} | ${median((samples as Sample[]).map((s) => s.roundTrips))}`;
  return `| ${name} | ${fmt(median(ms))} (${fmt(Math.min(...ms))}–${fmt(Math.max(...ms))})${extra || " | – | 1"} |`;
}

async function main(): Promise<void> {
  execFileSync("bash", [path.resolve(__dirname, "..", "test", "hosts", "up.sh")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (const h of HOSTS) {
    const c = connectionFor(h);
    await exec(
      c,
      `systemctl disable --now benchapp 2>/dev/null; rm -f /etc/systemd/system/benchapp.service; systemctl daemon-reload; rm -rf ${ROOT}`,
      { step: "clean" },
    );
  }
  await closeAll();

  const app = new GitApp(APP);
  app.commit("deps", { "requirements.txt": "a==1\n" });
  const first: Sample[] = [];
  const sameLock: Sample[] = [];
  const newLock: Sample[] = [];
  const rollback: Sample[] = [];
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // First deploy: a clean host and a fresh process (new connection), like a first `pulumi up`.
    for (const h of HOSTS) {
      await exec(connectionFor(h), `systemctl disable --now benchapp 2>/dev/null; rm -rf ${ROOT}`, { step: "clean" });
    }
    await closeAll();
    for (const h of HOSTS) lastState[h] = undefined;
    first.push(await deployAll(app, app.commit(`first ${i}`, { "n.txt": `${i}\n` })));
    const retained = app.head();
    sameLock.push(await deployAll(app, app.commit(`code ${i}`, { "code.txt": `${i}\n` })));
    newLock.push(await deployAll(app, app.commit(`lock ${i}`, { "requirements.txt": `a==${i + 2}\n` })));
    rollback.push(await deployAll(app, retained));
    floor.push(await floorAll());
  }

  console.log(`\nfleet Service deploy, ${HOSTS.length} servers in parallel, ${RUNS} runs; median (min–max)\n`);
  console.log("| scenario | wall time | SSH connections per host | remote round trips per host |");
  console.log("|---|---|---|---|");
  console.log(row("first deploy (new connection)", first));
  console.log(row("new release, same lockfile", sameLock));
  console.log(row("new release, lockfile changed", newLock));
  console.log(row("rollback to a retained release", rollback));
  console.log(row("floor: switch + restart + first healthy probe", floor));
  const ratio = median(rollback.map((s) => s.ms)) / median(floor);
  console.log(
    `\nrollback / floor = ${ratio.toFixed(2)}× (target ≤ 1.5×); connections per host per run = ${Math.max(...first.map((s) => s.connections))} (target 1)`,
  );
  const usage = process.resourceUsage();
  console.log(
    `deploying process: CPU ${((usage.userCPUTime + usage.systemCPUTime) / 1e6).toFixed(2)} s, peak RSS ${(usage.maxRSS / 1024).toFixed(0)} MiB`,
  );
  for (const h of HOSTS) {
    await exec(
      connectionFor(h),
      `systemctl disable --now benchapp 2>/dev/null; rm -f /etc/systemd/system/benchapp.service; systemctl daemon-reload; rm -rf ${ROOT}`,
      { step: "clean" },
    );
  }
  await closeAll();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
