/**
 * npm run bench:compare (issues #9, #18): the same small app deployed the same way by fleet, Capistrano 3,
 * Ansible and the one-connection-per-command model of `@pulumi/command`, on 3 and on 10 test
 * servers; then fleet alone at scale (10 servers × 1, 20 and 50 services, with the state's size per
 * resource, issue #30). Writes bench/results.json and bench/RESULTS.md, keeping the scale figures from
 * before issue #30 beside the new ones. See bench/README.md for what each tool does and why.
 *
 * fleet ("fleet", issue #18) is timed end to end, as users type it, in the project folder:
 * `npm run pulumi -- up --yes --skip-preview --stack <s>`, `npm run deploy -- --stack <s>` and
 * `npm run rollback -- <N>` (bench/e2e.ts), each with a FLEET_TRACE file for the phase breakdown
 * (bench/phases.ts). "fleet-host" is the older breakdown: fleet through Pulumi's own
 * dynamic-provider host only (`ProviderHost.start()` and one `SimulatedResource` per server).
 *
 * Env: BENCH_RUNS (3-server runs, default 5), BENCH_RUNS10 (10-server runs, default 3),
 * BENCH_SETS ("3,10"), BENCH_TOOLS ("fleet,fleet-host,capistrano,ansible"; per-step too if named),
 * BENCH_SCALE=0, BENCH_SCALE_RUNS (3), BENCH_SCALE_SERVICES ("1,20,50"), BENCH_CHECKPOINTS=0 (no
 * PULUMI_SKIP_CHECKPOINTS pass), BENCH_DEPLOY=0 (no `npm run deploy` pass), BENCH_STARTUP=0,
 * BENCH_MERGE=1. Scale only: see bench/README.md.
 */
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MAX_SCALE_SERVICES, msPerChanged, scaleServiceName, type E2eSample } from "./e2e";
import { zeroDowntimeBlock } from "./results-block";
import { biggestPhase, PHASE_LABEL, PHASES, type Phase, type Phases } from "./phases";

const HERE = __dirname;
const REPO = path.resolve(HERE, "..");
const PYAPP = path.join(REPO, "test", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-bench-peers";
const PORTS = {
  "fleet-host": 18700,
  capistrano: 18701,
  ansible: 18702,
  "per-step": 18703,
  scaleBase: 18710,
  git: 18790,
};
const TOOLS = ["fleet", "fleet-host", "capistrano", "ansible", "per-step"] as const;
type Tool = (typeof TOOLS)[number];
const DEFAULT_TOOLS = "fleet,fleet-host,capistrano,ansible";
/** Services per server of the end-to-end scale passes (issue #30: 10 × 1, 20 and 50). */
const DEFAULT_SCALE_SERVICES = "1,20,50";
type Peer = "capistrano" | "ansible" | "per-step";
const PEERS: readonly Peer[] = ["capistrano", "ansible", "per-step"];
const SCENARIOS = ["first", "release", "lockfile", "rollback", "noop"] as const;
type Scenario = (typeof SCENARIOS)[number];
const UNITS = [
  "fbench",
  "fbe2e",
  "benchcap",
  "benchans",
  "benchcmd",
  ...Array.from({ length: MAX_SCALE_SERVICES }, (_, j) => scaleServiceName(j)),
];
const SET10 = {
  dir: "/tmp/fleet-bench10",
  nodes: Array.from({ length: 10 }, (_, i) => `b${i + 1}=127.0.0.${41 + i}`).join(" "),
};

const scaleName = scaleServiceName;

export interface Sample {
  readonly ms: number;
  /** SSH connections accepted per host (sshd journal), one entry per host. */
  readonly conns: number[];
  readonly cpuS: number;
  readonly rssMiB: number;
  /** fleet-host: provider host start-up (ms), not in `ms`. */
  readonly hostStartMs?: number;
  /** Scale runs: resources whose deploy failed (first line of the error). */
  readonly failed?: string[];
}
type Cell = Record<Scenario, Sample[]>;
type E2eCell = Partial<Record<Scenario, E2eSample[]>>;
export interface ScaleE2e {
  readonly services: number;
  readonly first: E2eSample[];
  readonly release: E2eSample[];
  readonly noop: E2eSample[];
}
export interface SetResult {
  readonly servers: number;
  readonly runs: number;
  /** tools.fleet holds E2eSamples (mode up: `npm run pulumi -- up --yes --skip-preview`). */
  readonly tools: Partial<Record<Tool, Cell>>;
  readonly floor: number[];
  /** fleet end to end, the other modes: `npm run deploy`, and up with PULUMI_SKIP_CHECKPOINTS=true. */
  readonly e2e?: { deploy: E2eCell; nocp: E2eCell };
  /** fleet-host at scale (provider host only). */
  readonly scale?: { release: Sample[]; noop: Sample[]; first: Sample[]; hostPeakMiB: number };
  /** fleet end to end at scale: N services on every server of the set, one stack. */
  readonly scaleE2e?: ScaleE2e[];
  /**
   * The end-to-end scale figures from before issue #30 (fleet's code in every resource), kept
   * from the results.json this run replaced and carried on by later runs, shown beside the new ones.
   */
  readonly scaleE2eBefore?: { readonly label: string; readonly date: string; readonly scaleE2e: ScaleE2e[] };
}
export interface Results {
  readonly format?: number;
  readonly machine: Record<string, string>;
  readonly sets: SetResult[];
  /** Program start with and without tsx (median ms per command line). */
  readonly startup?: Record<string, number>;
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a program; resolves with stdout or rejects with the tail of its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${cmd} ${args.join(" ")} → exit ${code}\n${(out + err).slice(-3000)}`)),
    );
  });
}

/** `/usr/bin/time` around a peer: wall (ms), CPU (user+sys of it and its waited-for children), peak RSS. */
async function timed(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<{ ms: number; cpuS: number; rssMiB: number; out: string }> {
  const tf = path.join(os.tmpdir(), `bench-time-${process.pid}`);
  const t0 = now();
  const out = await run("/usr/bin/time", ["-f", "%U %S %M", "-o", tf, cmd, ...args], opts);
  const ms = now() - t0;
  const [u, s, m] = fs.readFileSync(tf, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { ms, cpuS: u! + s!, rssMiB: m! / 1024, out };
}

// ------------------------------------------------------------------ servers, journal, cleanup

interface Server {
  readonly name: string;
  readonly address: string;
  readonly container: string;
}

function docker(container: string, script: string): Promise<string> {
  return run("docker", ["exec", container, "bash", "-c", script]);
}

/** sshd journal cursor per server: connections are counted on the wire, the same way for every tool. */
async function cursors(servers: Server[]): Promise<string[]> {
  return Promise.all(
    servers.map(async (s) => {
      const out = await docker(s.container, "journalctl -n 0 --show-cursor --no-pager");
      return /cursor: (\S+)/.exec(out)?.[1] ?? "";
    }),
  );
}
/**
 * Accepted SSH logins since `cur`. sshd and `logger` write to the same /dev/log socket, so once our
 * marker is in the journal every earlier sshd line is too (a fixed wait lost lines under load).
 */
async function acceptedSince(servers: Server[], cur: string[]): Promise<number[]> {
  return Promise.all(
    servers.map(async (s, i) => {
      const mark = `fleet-bench-mark-${process.pid}-${Date.now()}-${i}`;
      const out = await docker(
        s.container,
        `logger -t fleet-bench ${mark}; for n in $(seq 200); do ` +
          `j=$(journalctl --after-cursor='${cur[i]}' -o cat --no-pager); ` +
          `case "$j" in *${mark}*) printf '%s\\n' "$j" | grep -c 'Accepted publickey'; exit 0;; esac; sleep 0.05; done; ` +
          `echo "marker never reached the journal" >&2; exit 1`,
      );
      return Number(out.trim() || "0");
    }),
  );
}

async function cleanServers(servers: Server[]): Promise<void> {
  const units = UNITS.join(" ");
  await Promise.all(
    servers.map((s) =>
      docker(
        s.container,
        `systemctl disable --now ${units} >/dev/null 2>&1; for u in ${units}; do rm -f /etc/systemd/system/$u.service; done; ` +
          `systemctl daemon-reload; systemctl reset-failed >/dev/null 2>&1; rm -rf ${ROOT}`,
      ),
    ),
  );
}

// ------------------------------------------------------------------ child: one server set

async function child(outFile: string): Promise<void> {
  // Imported here: the test-support modules read FLEET_DIR when they load.
  const serviceProvider = (await import("../providers/ship")).shippedProvider("service");
  const { ProviderHost, SimulatedResource } = await import("../test/support/provider-host");
  const { serviceInputs } = await import("../test/support/service-inputs");
  const { connectionFor, loadInventory } = await import("../test/support/fleet");
  const { GitApp } = await import("../test/support/git-app");
  const { exec, closeAll } = await import("../transport/ssh");
  const e2e = await import("./e2e");
  type Host = Awaited<ReturnType<typeof ProviderHost.start>>;
  type Res = InstanceType<typeof SimulatedResource>;

  const inv = loadInventory();
  const servers: Server[] = inv.hosts
    .filter((h) => h.role === "node")
    .map((h) => ({ name: h.name, address: h.address, container: h.container }));
  const runs = Number(process.env["BENCH_RUNS_SET"] ?? 5);
  const tools = (process.env["BENCH_TOOLS"] ?? DEFAULT_TOOLS).split(",").filter((t) => t) as Tool[];
  for (const t of tools)
    if (!TOOLS.includes(t)) throw new Error(`BENCH_TOOLS: unknown tool ${t} (have ${TOOLS.join(", ")})`);
  const withDeploy = process.env["BENCH_DEPLOY"] !== "0";
  const withNoCheckpoints = process.env["BENCH_CHECKPOINTS"] !== "0";
  const scaleServices = (process.env["BENCH_SCALE_SERVICES"] ?? DEFAULT_SCALE_SERVICES)
    .split(",")
    .filter(Boolean)
    .map(Number);
  for (const n of scaleServices)
    if (!Number.isInteger(n) || n < 1 || n > MAX_SCALE_SERVICES)
      throw new Error(`BENCH_SCALE_SERVICES: ${n} is not a whole number of services from 1 to ${MAX_SCALE_SERVICES}`);
  const withScale = process.env["BENCH_WITH_SCALE"] === "1";
  const scaleRuns = Number(process.env["BENCH_SCALE_RUNS"] ?? 3);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-compare-"));
  const log = (m: string) => console.error(`[compare ${servers.length}] ${m}`);

  const app = new GitApp(PYAPP);
  app.commit("deps", { "requirements.txt": "a==1\n" });
  // Capistrano and Ansible fetch releases with git (their documented way): serve the repo on loopback.
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
  await sleep(300);
  const repoUrl = `git://127.0.0.1:${PORTS.git}/${path.basename(app.dir)}`;

  // ---- fleet
  const health = (address: string, port: number) => ({
    url: `http://${address}:${port}/api/health`,
    version: { url: `http://${address}:${port}/api/version`, field: "commit" },
    timeout: "20s",
    interval: "50ms",
  });
  const fleetInputs = (s: Server, name: string, port: number, ref: string) =>
    serviceInputs({
      name,
      connection: connectionFor(s.name),
      root: `${ROOT}/fleet`,
      source: { git: app.dir, ref },
      install: { run: "python3 -m venv --without-pip .venv && cp requirements.txt .venv/", when: ["requirements.txt"] },
      start: ".venv/bin/python app.py",
      env: { APP_HOST: s.address, APP_PORT: String(port) },
      health: health(s.address, port),
    });
  const hostStats = (pid: number): { cpuS: number; rssMiB: number } => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const tick = 100;
    const cpuS = (Number(f[11]) + Number(f[12])) / tick;
    const hwm = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0";
    return { cpuS, rssMiB: Number(hwm) / 1024 };
  };
  /** One `pulumi up`: a fresh provider host, every resource's up() in parallel. */
  async function fleetUp(
    resources: Res[],
    inputs: (i: number) => Record<string, unknown>,
    tolerate = false,
  ): Promise<Sample> {
    const t0 = now();
    const host: Host = await ProviderHost.start({ callTimeoutMs: 900_000 });
    const hostStartMs = now() - t0;
    // The engine starts a new host per `pulumi up`; the resources' state carries over.
    for (const r of resources) (r as unknown as { host: Host }).host = host;
    const cur = await cursors(servers);
    const cpu0 = process.cpuUsage();
    const t1 = now();
    // At scale, a failed health gate is a result to report (how many), not a reason to stop.
    const settled = await Promise.allSettled(resources.map((r, i) => r.up(inputs(i))));
    const failures = settled.filter((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failures.length > 0 && !tolerate) {
      console.error(host.logs().slice(-3000));
      throw failures[0]!.reason;
    }
    const ms = now() - t1;
    const cpu = process.cpuUsage(cpu0);
    const hs = hostStats(host.pid);
    await host.stop();
    const conns = await acceptedSince(servers, cur);
    return {
      ms,
      conns,
      cpuS: hs.cpuS + (cpu.user + cpu.system) / 1e6,
      rssMiB: hs.rssMiB,
      hostStartMs,
      ...(tolerate ? { failed: failures.map((f) => String((f.reason as Error).message).split("\n")[0]!) } : {}),
    };
  }

  // ---- peers
  const capEnv = (rev: string): NodeJS.ProcessEnv => ({
    ...process.env,
    BENCH_HOSTS: servers.map((s) => s.address).join(","),
    BENCH_REPO: repoUrl,
    BENCH_REV: rev,
    BENCH_ROOT: ROOT,
    BENCH_PORT: String(PORTS.capistrano),
    BENCH_KEY: inv.ssh_key,
    BENCH_KNOWN_HOSTS: inv.known_hosts,
  });
  const inventory = path.join(tmp, "inventory.ini");
  fs.writeFileSync(
    inventory,
    "[app]\n" +
      servers.map((s) => `${s.name} ansible_host=${s.address}\n`).join("") +
      "[app:vars]\nansible_user=root\n" +
      `ansible_ssh_private_key_file=${inv.ssh_key}\n` +
      `ansible_ssh_common_args='-o UserKnownHostsFile=${inv.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'\n`,
  );
  async function peer(tool: Peer, scenario: Scenario, rev: string): Promise<Sample> {
    const cur = await cursors(servers);
    let r: { ms: number; cpuS: number; rssMiB: number; out: string };
    if (tool === "capistrano") {
      const task = scenario === "rollback" ? "deploy:rollback" : "deploy";
      r = await timed("cap", ["bench", task], { cwd: path.join(HERE, "peers", "capistrano"), env: capEnv(rev) });
    } else if (tool === "ansible") {
      const cp = fs.mkdtempSync(path.join(tmp, "cp-"));
      const vars = JSON.stringify({ rev, repo: repoUrl, root: ROOT, port: PORTS.ansible });
      const book = scenario === "rollback" ? "rollback.yml" : "deploy.yml";
      const env = {
        ...process.env,
        ANSIBLE_CONFIG: path.join(HERE, "peers", "ansible", "ansible.cfg"),
        ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
        ANSIBLE_LOCAL_TEMP: path.join(tmp, "ansible-tmp"),
      };
      try {
        r = await timed("ansible-playbook", ["-i", inventory, "-e", vars, path.join(HERE, "peers", "ansible", book)], {
          env,
        });
      } finally {
        // Close the ControlPersist masters: the next run must not inherit a connection.
        for (const sock of fs.readdirSync(cp)) {
          await run("ssh", ["-o", `ControlPath=${path.join(cp, sock)}`, "-O", "exit", "x"]).catch(() => undefined);
        }
      }
    } else {
      const job = path.join(tmp, "per-step-job.json");
      fs.writeFileSync(
        job,
        JSON.stringify({
          hosts: servers.map((s) => ({ name: s.name, address: s.address })),
          key: inv.ssh_key,
          repo: app.dir,
          rev,
          root: ROOT,
          port: PORTS["per-step"],
          stateFile: path.join(tmp, "per-step-state.json"),
        }),
      );
      r = await timed(process.execPath, ["--import", "tsx", path.join(HERE, "peers", "per-step.ts"), job], {
        cwd: REPO,
      });
      r = { ...r, ms: (JSON.parse(r.out.trim().split("\n").pop()!) as { ms: number }).ms };
    }
    const conns = await acceptedSince(servers, cur);
    return { ms: r.ms, conns, cpuS: r.cpuS, rssMiB: r.rssMiB };
  }

  // ---- the floor: switch + restart + first healthy probe, over an already-open connection
  async function floor(): Promise<number> {
    const conns = servers.map((s) => connectionFor(s.name));
    await Promise.all(conns.map((c) => exec(c, "true", { step: "warm" })));
    const t0 = now();
    await Promise.all(
      conns.map(async (c) => {
        const script = [
          `cd ${ROOT}/fleet/fbench && t=$(readlink current) && ln -sfn "$t" .floor && mv -Tf .floor current`,
          `systemctl restart fbench`,
          `until curl -sf -o /dev/null http://${c.host}:${PORTS["fleet-host"]}/api/health; do sleep 0.05; done`,
        ].join(" && ");
        const r = await exec(c, script, { step: "floor" });
        if (r.code !== 0) throw new Error(`floor on ${c.host} failed: ${r.stderr}`);
      }),
    );
    const ms = now() - t0;
    await closeAll();
    return ms;
  }

  const result: {
    servers: number;
    runs: number;
    tools: Partial<Record<Tool, Cell>>;
    floor: number[];
    e2e?: { deploy: E2eCell; nocp: E2eCell };
    scale?: SetResult["scale"];
    scaleE2e?: ScaleE2e[];
  } = { servers: servers.length, runs, tools: {}, floor: [] };
  for (const t of tools) result.tools[t] = { first: [], release: [], lockfile: [], rollback: [], noop: [] };
  if (tools.includes("fleet")) result.e2e = { deploy: {}, nocp: {} };

  // fleet end to end: the commands users type, on a stack of the project (bench/e2e.ts).
  const names = servers.map((s) => s.name);
  const e2eServers = {
    names,
    cursors: () => cursors(servers),
    acceptedSince: (cur: string[]) => acceptedSince(servers, cur),
  };
  const clean = () => cleanServers(servers);
  const usesAlias = tools.includes("fleet");
  if (usesAlias) await e2e.alias(names, true);
  const push = (cell: E2eCell, got: Partial<Record<Scenario, E2eSample>>) => {
    for (const [sc, sample] of Object.entries(got) as [Scenario, E2eSample][]) (cell[sc] ??= []).push(sample);
  };

  try {
    for (let i = 0; i < runs; i++) {
      await cleanServers(servers);
      fs.rmSync(path.join(tmp, "per-step-state.json"), { force: true });
      const first = app.commit(`first ${i}`, { "n.txt": `${i}\n` });
      const code = app.commit(`code ${i}`, { "code.txt": `${i}\n` });
      const lock = app.commit(`lock ${i}`, { "requirements.txt": `a==${i + 2}\n` });
      const revs: Record<Scenario, string> = { first, release: code, lockfile: lock, rollback: code, noop: code };
      for (const t of tools) {
        const cell = result.tools[t]!;
        if (t === "fleet") {
          push(cell as E2eCell, await e2e.e2ePass("up", i, app, e2eServers, tmp, clean, log));
          if (withDeploy) push(result.e2e!.deploy, await e2e.e2ePass("deploy", i, app, e2eServers, tmp, clean, log));
          if (withNoCheckpoints) push(result.e2e!.nocp, await e2e.e2ePass("nocp", i, app, e2eServers, tmp, clean, log));
        } else if (t === "fleet-host") {
          const resources = servers.map(() => undefined as unknown as Res);
          for (const sc of SCENARIOS) {
            if (sc === "first") {
              const h0 = await ProviderHost.start(); // replaced per run in fleetUp
              servers.forEach(
                (s, k) => (resources[k] = new SimulatedResource(h0, serviceProvider, { name: `fbench-${s.name}` })),
              );
              await h0.stop();
            }
            cell[sc].push(
              await fleetUp(resources, (k) => fleetInputs(servers[k]!, "fbench", PORTS["fleet-host"], revs[sc])),
            );
            log(
              `run ${i} fleet-host ${sc}: ${cell[sc].at(-1)!.ms.toFixed(0)} ms conns ${cell[sc].at(-1)!.conns.join(",")}`,
            );
          }
          result.floor.push(await floor());
          log(`run ${i} floor: ${result.floor.at(-1)!.toFixed(0)} ms`);
        } else {
          for (const sc of SCENARIOS) {
            cell[sc].push(await peer(t, sc, revs[sc]));
            log(`run ${i} ${t} ${sc}: ${cell[sc].at(-1)!.ms.toFixed(0)} ms conns ${cell[sc].at(-1)!.conns.join(",")}`);
          }
        }
      }
    }

    if (withScale && tools.includes("fleet")) {
      // fleet end to end at scale: N services on every server, one stack, through the engine.
      result.scaleE2e = [];
      for (const n of scaleServices) {
        const runsHere = n === Math.max(...scaleServices) ? scaleRuns : 1;
        result.scaleE2e.push(await e2e.scalePass(n, runsHere, app, e2eServers, tmp, clean, log));
      }
    }
    if (withScale && tools.includes("fleet-host")) {
      // fleet-host at scale: every server × 20 services, one provider host for all 200 resources.
      await cleanServers(servers);
      const n = 20;
      const pairs = servers.flatMap((s) => Array.from({ length: n }, (_, j) => ({ s, j })));
      const h0 = await ProviderHost.start();
      const resources = pairs.map(
        ({ s, j }) => new SimulatedResource(h0, serviceProvider, { name: `${scaleName(j)}-${s.name}` }),
      );
      await h0.stop();
      const inputs = (ref: string) => (k: number) =>
        fleetInputs(pairs[k]!.s, scaleName(pairs[k]!.j), PORTS.scaleBase + pairs[k]!.j, ref);
      const scale = { first: [] as Sample[], release: [] as Sample[], noop: [] as Sample[], hostPeakMiB: 0 };
      scale.first.push(await fleetUp(resources, inputs(app.commit("scale first", { "s.txt": "0\n" })), true));
      log(`scale first: ${scale.first[0]!.ms.toFixed(0)} ms`);
      for (let i = 0; i < scaleRuns; i++) {
        const rev = app.commit(`scale ${i}`, { "s.txt": `${i + 1}\n` });
        scale.release.push(await fleetUp(resources, inputs(rev), true));
        scale.noop.push(await fleetUp(resources, inputs(rev), true));
        log(
          `scale run ${i}: release ${scale.release.at(-1)!.ms.toFixed(0)} ms, no-op ${scale.noop.at(-1)!.ms.toFixed(0)} ms`,
        );
      }
      scale.hostPeakMiB = Math.max(...[...scale.first, ...scale.release, ...scale.noop].map((x) => x.rssMiB));
      result.scale = scale;
    }
  } finally {
    await cleanServers(servers).catch((e: unknown) => log(`cleanup failed: ${String(e)}`));
    if (usesAlias) await e2e.alias(names, false).catch((e: unknown) => log(`alias cleanup failed: ${String(e)}`));
    daemon.kill();
    await closeAll();
    fs.writeFileSync(outFile, JSON.stringify(result, null, 2));
    fs.rmSync(app.dir, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ orchestrator and report

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const secs = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "–");
const mib = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} MiB` : "–");
function cellText(samples: Sample[] | undefined): string {
  if (!samples?.length) return "–";
  const ms = samples.map((s) => s.ms);
  return `${secs(median(ms))} (${secs(Math.min(...ms))}–${secs(Math.max(...ms))})`;
}
function connText(samples: Sample[] | undefined): string {
  const all = (samples ?? []).flatMap((s) => s.conns);
  if (!all.length) return "–";
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  return lo === hi ? `${lo}` : `${median(all)} (${lo}–${hi})`;
}
const med = (xs: Sample[] | undefined) => median((xs ?? []).map((s) => s.ms));
const e2eOf = (xs: Sample[] | undefined) => (xs ?? []) as E2eSample[];
/** Median of each phase over the samples (a median per phase: they need not add up to the median wall). */
function medianPhases(xs: E2eSample[]): Phases | undefined {
  const with_ = xs.filter((s) => s.trace?.phases);
  if (!with_.length) return undefined;
  return Object.fromEntries(PHASES.map((p) => [p, median(with_.map((s) => s.trace.phases[p]))])) as Phases;
}

const LABEL: Record<Scenario, string> = {
  first: "1 first deploy",
  release: "2 new release, same lockfile",
  lockfile: "3 new release, lockfile changed",
  rollback: "4 rollback to the previous release",
  noop: "5 no-op run",
};

/** The fleet columns of the main table: end to end (two modes), then the provider-host breakdown. */
interface Column {
  readonly head: string;
  readonly cell: (sc: Scenario) => Sample[] | undefined;
}
function columns(set: SetResult): Column[] {
  const cols: Column[] = [];
  const f = set.tools.fleet;
  if (f) {
    cols.push({ head: "fleet `up --skip-preview`", cell: (sc) => f[sc] });
    const d = set.e2e?.deploy;
    if (d && Object.keys(d).length)
      cols.push({ head: "fleet `npm run deploy`", cell: (sc) => (sc === "rollback" ? f.rollback : d[sc]) });
  }
  const h = set.tools["fleet-host"];
  if (h) cols.push({ head: "fleet-host (provider host only, breakdown)", cell: (sc) => h[sc] });
  for (const p of PEERS) {
    const c = set.tools[p];
    if (c) cols.push({ head: p, cell: (sc) => c[sc] });
  }
  return cols;
}

function phaseTable(title: string, cell: E2eCell, nocp: E2eCell | undefined, scenarios: readonly Scenario[]): string[] {
  const scs = scenarios.filter((sc) => cell[sc]?.length);
  if (!scs.length) return [];
  const meds = Object.fromEntries(scs.map((sc) => [sc, medianPhases(cell[sc]!)])) as Record<Scenario, Phases>;
  if (scs.some((sc) => !meds[sc])) return [];
  const rows = PHASES.filter((p) => scs.some((sc) => meds[sc][p] > 0));
  const out = [
    title,
    "",
    `| phase (median ms) | ${scs.map((sc) => LABEL[sc]).join(" | ")} |`,
    `|---|${scs.map(() => "---:|").join("")}`,
  ];
  for (const p of rows) out.push(`| ${PHASE_LABEL[p]} | ${scs.map((sc) => meds[sc][p].toFixed(0)).join(" | ")} |`);
  out.push(`| **wall (median)** | ${scs.map((sc) => med(cell[sc]).toFixed(0)).join(" | ")} |`);
  if (nocp) {
    out.push(
      `| checkpoint writes (wall − wall with PULUMI_SKIP_CHECKPOINTS=true) | ${scs
        .map((sc) => (nocp[sc]?.length ? (med(cell[sc]) - med(nocp[sc])).toFixed(0) : "–"))
        .join(" | ")} |`,
    );
  }
  out.push(
    `| remote commands (ssh-exec), median | ${scs.map((sc) => median(cell[sc]!.map((s) => s.trace.remoteCommands)).toFixed(0)).join(" | ")} |`,
    `| SSH connections opened (ssh-connect, all hosts), median | ${scs.map((sc) => median(cell[sc]!.map((s) => s.trace.sshConnects)).toFixed(0)).join(" | ")} |`,
    `| provider RPCs of the update, median | ${scs.map((sc) => median(cell[sc]!.map((s) => s.trace.rpcs)).toFixed(0)).join(" | ")} |`,
    "",
  );
  return out;
}

const SCALE_E2E_NOTE =
  "*ServiceReleases* = servers × services. *changed* is the CLI's own summary (`Resources:`, everything but unchanged; for a release before issue #30, where it was not recorded, servers × services); *per changed* is wall ÷ changed, median over runs. *state* is the stack's checkpoint file after the run (`.pulumi/stacks/<project>/<stack>.json` in its file backend, as the CLI wrote it), the resources in it (the stack, fleet's code provider, components, ServiceReleases) and, of it, fleet's code provider resource (`fleet-code-<hash>`, compact JSON); *per resource* is its size ÷ that count; *largest ServiceRelease* is that resource's compact JSON. CPU is the median, peak RSS the largest over runs.";

const kb = (b: number) => (Number.isFinite(b) ? `${(b / 1000).toFixed(1)} KB` : "–");
const bytesText = (b: number) => (Number.isFinite(b) ? `${Math.round(b).toLocaleString("en-US")} B` : "–");

/** The end-to-end scale table: one row per services count and run kind. */
function scaleE2eTable(scale: readonly ScaleE2e[], servers: number): string[] {
  const out = [
    "| services | ServiceReleases | run | wall | exit codes | connections per host | changed | per changed | CLI CPU | CLI peak RSS | provider host CPU | provider host peak RSS | state (resources) | per resource | largest ServiceRelease | failed |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const sc of scale) {
    const releases = sc.services * servers;
    for (const k of ["first", "release", "noop"] as const) {
      const xs = sc[k];
      if (!xs.length) continue;
      const fallback = k === "release" ? releases : undefined;
      const changed = xs.map((s) => s.changed ?? fallback);
      const per = median(xs.map((s) => msPerChanged(s, fallback)).filter(Number.isFinite));
      const st = xs.flatMap((s) => (s.state ? [s.state] : []));
      const code = median(st.flatMap((x) => (x.codeBytes === undefined ? [] : [x.codeBytes])));
      const state = st.length
        ? `${kb(median(st.map((x) => x.bytes)))} (${median(st.map((x) => x.resources))}${Number.isFinite(code) ? `; code ${kb(code)}` : ""})`
        : "–";
      const perRes = median(st.map((x) => x.bytes / x.resources));
      const largest = st.length ? Math.max(...st.map((x) => x.largestReleaseBytes)) : NaN;
      out.push(
        `| ${sc.services} | ${releases} | ${k} | ${cellText(xs)} | ${xs.map((s) => s.code).join(", ")} | ${connText(xs)} | ${changed.map((c) => c ?? "–").join(", ")} | ${Number.isFinite(per) ? `${per.toFixed(0)} ms` : "–"} | ${median(xs.map((s) => s.cli.cpuS)).toFixed(2)} s | ${mib(Math.max(...xs.map((s) => s.cli.rssMiB)))} | ${median(xs.map((s) => s.host.cpuS)).toFixed(2)} s | ${mib(Math.max(...xs.map((s) => s.host.rssMiB)))} | ${state} | ${kb(perRes)} | ${bytesText(largest)} | ${xs.map((s) => s.failedCount ?? 0).join(", ")} |`,
      );
    }
  }
  out.push("");
  return out;
}

/** Median wall time per changed resource of a pass's release runs (ms). */
function releasePerChanged(sc: ScaleE2e, servers: number): number {
  return median(sc.release.map((s) => msPerChanged(s, sc.services * servers)).filter(Number.isFinite));
}

/** The scale figures of a set: end to end (with the ones from before issue #30), then fleet-host. */
function scaleSections(set: SetResult): string[] {
  const out: string[] = [];
  if (set.scaleE2e?.length) {
    out.push(
      `### Scale through the engine: ${set.servers} servers × N services (one stack, \`npm run pulumi -- up --yes --skip-preview\`)`,
      "",
      SCALE_E2E_NOTE,
      "",
      ...scaleE2eTable(set.scaleE2e, set.servers),
    );
    const before = set.scaleE2eBefore;
    if (before?.scaleE2e.length) {
      out.push(
        `#### ${before.label} (run of ${before.date})`,
        "",
        "The same pass before issue #30, when fleet's code rode in every resource's state; its state was not measured then.",
        "",
        ...scaleE2eTable(before.scaleE2e, set.servers),
      );
    }
  }
  if (set.scale) {
    const sc = set.scale;
    out.push(
      "",
      `### Scale, fleet-host (provider host only): ${set.servers} servers × 20 services (${set.servers * 20} resources, one provider host), ${sc.release.length} runs`,
      "",
      "| run | wall | connections per host | host CPU | host peak RSS | failed deploys |",
      "|---|---|---|---|---|---|",
      ...(["first", "release", "noop"] as const).map(
        (k) =>
          `| ${k} | ${cellText(sc[k])} | ${connText(sc[k])} | ${median(sc[k].map((s) => s.cpuS)).toFixed(2)} s | ${Math.max(...sc[k].map((s) => s.rssMiB)).toFixed(0)} MiB | ${sc[k].map((s) => s.failed?.length ?? 0).join(", ")} of ${set.servers * 20} |`,
      ),
      "",
      `Provider host peak memory: ${sc.hostPeakMiB.toFixed(0)} MiB (target < 300 MB).`,
      "",
    );
  }
  return out;
}

export function report(sets: SetResult[], machine: Record<string, string>, startup?: Record<string, number>): string {
  const lines: string[] = [];
  lines.push(`# bench:compare results`, "");
  lines.push(
    `Date: ${machine["date"]}. Machine: ${machine["cpu"]}, ${machine["cpus"]} vCPU, ${machine["mem"]}, ${machine["kernel"]}.`,
  );
  lines.push(
    `Reproduce: \`npm run bench:compare\` (= \`tsx bench/compare.ts\`; BENCH_RUNS=${sets.find((s) => s.servers === 3)?.runs ?? 5} BENCH_RUNS10=${sets.find((s) => s.servers === 10)?.runs ?? 3}).`,
  );
  lines.push(
    "",
    "**fleet** is the user's whole command, spawn to exit, run in the project folder as typed: `npm run pulumi -- up --yes --skip-preview --stack <s>` (column `up --skip-preview`), `npm run deploy -- --stack <s>` (checks, preview, up) and, for the rollback row of both, `npm run rollback -- 2 --stack <s>` (update 2 deployed the new release). Each mode is its own pass per run on a fresh stack, fresh commits and clean servers. **fleet-host** is the older figure kept as a breakdown: Pulumi's dynamic-provider host only (`ProviderHost.start()`, one `SimulatedResource` per server), first RPC to last answer, without the CLI, the engine or the program. Capistrano's and Ansible's figures include their own process start; per-step's excludes Node start-up.",
    "",
  );
  for (const set of sets) {
    if (set.runs === 0) {
      // A scale-only run (BENCH_RUNS10=0) without BENCH_MERGE: no comparison figures to show.
      lines.push(`## ${set.servers} servers: scale only`, "", ...scaleSections(set));
      continue;
    }
    const cols = columns(set);
    const f = set.tools.fleet;
    const ratioPeers = PEERS.filter((p) => set.tools[p]);
    const ratioCols = f ? cols.slice(0, set.e2e?.deploy && Object.keys(set.e2e.deploy).length ? 2 : 1) : [];
    const ratioHeads = ratioCols.flatMap((c) => ratioPeers.map((p) => `${c.head.replace(/^fleet /, "fleet ")} ÷ ${p}`));
    lines.push(`## ${set.servers} servers in parallel, ${set.runs} runs per cell, median (min–max)`, "");
    lines.push(`| scenario | ${[...cols.map((c) => c.head), ...ratioHeads].join(" | ")} |`);
    lines.push(`|---|${[...cols, ...ratioHeads].map(() => "---|").join("")}`);
    for (const sc of SCENARIOS) {
      const ratios = ratioCols.flatMap((c) =>
        ratioPeers.map((p) => {
          const r = med(c.cell(sc)) / med(set.tools[p]![sc]);
          return Number.isFinite(r) ? `${r.toFixed(2)}×` : "–";
        }),
      );
      lines.push(`| ${LABEL[sc]} | ${[...cols.map((c) => cellText(c.cell(sc))), ...ratios].join(" | ")} |`);
    }
    lines.push(
      "",
      "SSH connections accepted per host per run (sshd journal), median (min–max) over hosts × runs." +
        (set.servers === 3
          ? " web1–3 are the team's shared test servers: logins by other test runs that overlap a run are counted too, so here the median is the figure and the max an upper bound; b1–b10 are private to the run."
          : ""),
      "",
    );
    lines.push(`| scenario | ${cols.map((c) => c.head).join(" | ")} |`, `|---|${cols.map(() => "---|").join("")}`);
    for (const sc of SCENARIOS) lines.push(`| ${LABEL[sc]} | ${cols.map((c) => connText(c.cell(sc))).join(" | ")} |`);

    // CPU and memory, scenario 2.
    lines.push(
      "",
      "CPU time / peak RSS, median over runs of scenario 2 (fleet: sampled from /proc every 100 ms for every process of the command; CPU summed per class, peak RSS of the largest process of the class):",
      "",
    );
    const cpuCols: { head: string; cpu: (s: Sample[]) => number; rss: (s: Sample[]) => number; of: Sample[] }[] = [];
    if (f) {
      const rel = e2eOf(f.release);
      cpuCols.push(
        {
          head: "fleet: Pulumi CLI",
          cpu: () => median(rel.map((s) => s.cli.cpuS)),
          rss: () => median(rel.map((s) => s.cli.rssMiB)),
          of: rel,
        },
        {
          head: "fleet: provider host",
          cpu: () => median(rel.map((s) => s.host.cpuS)),
          rss: () => median(rel.map((s) => s.host.rssMiB)),
          of: rel,
        },
        {
          head: "fleet: all processes",
          cpu: (s) => median(s.map((x) => x.cpuS)),
          rss: (s) => median(s.map((x) => x.rssMiB)),
          of: rel,
        },
      );
    }
    for (const t of ["fleet-host", ...PEERS] as const) {
      const c = set.tools[t];
      if (c)
        cpuCols.push({
          head: t,
          cpu: (s) => median(s.map((x) => x.cpuS)),
          rss: (s) => median(s.map((x) => x.rssMiB)),
          of: c.release,
        });
    }
    lines.push(`| | ${cpuCols.map((c) => c.head).join(" | ")} |`, `|---|${cpuCols.map(() => "---|").join("")}`);
    lines.push(
      `| CPU | ${cpuCols.map((c) => `${c.cpu(c.of).toFixed(2)} s`).join(" | ")} |`,
      `| peak RSS | ${cpuCols.map((c) => mib(c.rss(c.of))).join(" | ")} |`,
    );
    const h = set.tools["fleet-host"];
    if (h) {
      const hs = h.release.map((s) => s.hostStartMs ?? 0);
      lines.push(
        "",
        `fleet-host: provider host start-up per run: ${secs(median(hs))} (${secs(Math.min(...hs))}–${secs(Math.max(...hs))}).`,
      );
    }
    if (set.floor.length) {
      const fl = median(set.floor);
      const rb = f ? med(f.rollback) : NaN;
      lines.push(
        `Floor (switch + restart + first healthy probe over an open connection, slowest of ${set.servers}): ${secs(fl)} (${secs(Math.min(...set.floor))}–${secs(Math.max(...set.floor))}); fleet rollback / floor = ${(rb / fl).toFixed(2)}×.`,
      );
    }
    lines.push("");

    if (f) {
      lines.push(
        `### Where fleet's time goes, ${set.servers} servers (FLEET_TRACE phases)`,
        "",
        "Cut at the trace's events (observe/trace.ts), each boundary no earlier than the one before, so the phases of one run add up to its wall time; shown is the median of each phase, which need not add up to the median wall. The update is the last runner process that ran the program: for `npm run deploy` the checks and the preview runner are in *earlier steps*, for `npm run rollback` its script and `pulumi config set` are in the *launcher* and its `pulumi up` (without --skip-preview) has a *preview in the same CLI*. *Checkpoint writes* is not a traced phase: it is the difference to an extra pass of the same scenario with `PULUMI_SKIP_CHECKPOINTS=true` (a breakdown only, never how fleet runs).",
        "",
        ...phaseTable(
          "`npm run pulumi -- up --yes --skip-preview` (rollback: `npm run rollback -- 2`):",
          f as E2eCell,
          set.e2e?.nocp,
          SCENARIOS,
        ),
        ...(set.e2e?.deploy ? phaseTable("`npm run deploy`:", set.e2e.deploy, undefined, SCENARIOS) : []),
      );
    }

    lines.push(...scaleSections(set));
  }
  if (startup && Object.keys(startup).length) {
    lines.push(
      "## Program start with and without tsx",
      "",
      "Median of `BENCH_STARTUP_RUNS` (default 5) runs each, spawn to exit; the runner's own module load is the *launcher* phase above (spawn → runner-start, which includes npm).",
      "",
      "| command | ms |",
      "|---|---:|",
      ...Object.entries(startup).map(([k, v]) => `| \`${k}\` | ${v.toFixed(0)} |`),
      "",
    );
    const s3 = sets.find((s) => s.servers === 3)?.tools.fleet;
    const ph = s3 ? medianPhases(e2eOf(s3.release)) : undefined;
    if (ph) lines.push(`Launcher phase (3 servers, new release, median): ${ph.launcher.toFixed(0)} ms.`, "");
  }
  lines.push(...targets(sets));
  return lines.join("\n");
}

/** fleet against issues #18's and #30's targets (figures, not tests); a miss says by how much and where the time is. */
function targets(sets: SetResult[]): string[] {
  const out = [
    "## fleet against the targets (issues #18, #30)",
    "",
    "| target | figure | met | if not: by how much; the phase holding the most time |",
    "|---|---|---|---|",
  ];
  const where = (xs: Sample[] | undefined): string => {
    const ph = medianPhases(e2eOf(xs));
    if (!ph) return "";
    const p: Phase = biggestPhase(ph);
    return `${PHASE_LABEL[p]}: ${ph[p].toFixed(0)} ms`;
  };
  const ratioRow = (
    what: string,
    fleet: Sample[] | undefined,
    peer: Sample[] | undefined,
    bound: number,
    extra = "",
  ) => {
    const a = med(fleet);
    const b = med(peer);
    if (!Number.isFinite(a) || !Number.isFinite(b)) return;
    const r = a / b;
    const ok = r <= bound;
    out.push(
      `| ${what} | ${secs(a)} / ${secs(b)} = ${r.toFixed(2)}×${extra} | ${ok ? "yes" : "**no**"} | ${
        ok ? "" : `${secs(a - bound * b)} over (${((a / (bound * b) - 1) * 100).toFixed(0)} %); ${where(fleet)}`
      } |`,
    );
  };
  const s3 = sets.find((s) => s.servers === 3);
  const s10 = sets.find((s) => s.servers === 10);
  if (s3?.tools.fleet && s3.tools.capistrano) {
    const f = s3.tools.fleet;
    const cap = s3.tools.capistrano;
    ratioRow("new release, `up --skip-preview` ≤ 0.7× `cap deploy` (3 servers)", f.release, cap.release, 0.7);
    ratioRow("new release, `npm run deploy` ≤ 1.0× `cap deploy` (3 servers)", s3.e2e?.deploy.release, cap.release, 1.0);
    ratioRow(
      "rollback, `npm run rollback -- <N>` ≤ 0.7× `cap deploy:rollback` (3 servers)",
      f.rollback,
      cap.rollback,
      0.7,
    );
    const cmds = e2eOf(f.noop).map((s) => s.trace.remoteCommands);
    const a = med(f.noop);
    const b = med(cap.noop);
    const r = a / b;
    const zero = cmds.length > 0 && Math.max(...cmds) === 0;
    const ok = r <= 0.3 && zero;
    out.push(
      `| no-op \`up\` ≤ 0.3× Capistrano's no-op, 0 remote commands (3 servers) | ${secs(a)} / ${secs(b)} = ${r.toFixed(2)}×; remote commands ${cmds.join(", ")}; connections ${connText(f.noop)} | ${ok ? "yes" : "**no**"} | ${
        ok
          ? ""
          : `${r > 0.3 ? `${secs(a - 0.3 * b)} over (${((a / (0.3 * b) - 1) * 100).toFixed(0)} %); ${where(f.noop)}` : ""}${zero ? "" : "; remote commands ran"}`
      } |`,
    );
  }
  if (s10?.tools.fleet && s10.tools.capistrano)
    ratioRow(
      "10 servers: new release, `up --skip-preview` ≤ 0.7× `cap deploy`",
      s10.tools.fleet.release,
      s10.tools.capistrano.release,
      0.7,
    );
  if (s3?.tools.fleet && s10?.tools.fleet) {
    const r = med(s10.tools.fleet.release) / med(s3.tools.fleet.release);
    out.push(
      `| linear growth: 3 → 10 servers (new release, up) | ${r.toFixed(2)}× the time for 3.3× the servers | ${r <= 10 / 3 ? "yes" : "**no**"} | |`,
    );
  }
  const scale = s10?.scaleE2e ?? [];
  const big = scale.find((x) => x.services === 20);
  if (big) {
    const all = [...big.first, ...big.release, ...big.noop];
    const cli = Math.max(...all.map((s) => s.cli.rssMiB));
    const host = Math.max(...all.map((s) => s.host.rssMiB));
    const mb = (x: number) => x * 1.048576;
    const ok = mb(cli) < 300 && mb(host) < 300;
    out.push(
      `| 10 × 20 services: < 300 MB per process | CLI ${mib(cli)} (${mb(cli).toFixed(0)} MB), provider host ${mib(host)} (${mb(host).toFixed(0)} MB) peak RSS | ${ok ? "yes" : "**no**"} | ${
        ok ? "" : `${(Math.max(mb(cli), mb(host)) - 300).toFixed(0)} MB over`
      } |`,
    );
  }
  // Issue #30: state that scales. "before #30" figures are the kept pre-#30 scale pass, where there is one.
  const servers = s10?.servers ?? 10;
  const before = s10?.scaleE2eBefore?.scaleE2e ?? [];
  const was = (n: number) => before.find((x) => x.services === n);
  const beforeText = (t: string | undefined) => (t ? `; before #30: ${t}` : "");
  if (big) {
    const w = med(big.release);
    const b = was(20);
    const ok = w <= 20_000;
    out.push(
      `| ${servers} × 20 services: release ≤ 20 s end to end (issue #30) | ${secs(w)}${beforeText(b?.release.length ? secs(med(b.release)) : undefined)} | ${ok ? "yes" : "**no**"} | ${
        ok ? "" : `${secs(w - 20_000)} over (${((w / 20_000 - 1) * 100).toFixed(0)} %); ${where(big.release)}`
      } |`,
    );
    const cliPeak = (x: ScaleE2e) => Math.max(...[...x.first, ...x.release, ...x.noop].map((s) => s.cli.rssMiB));
    const cli = cliPeak(big);
    const cliOk = cli <= 250;
    out.push(
      `| ${servers} × 20 services: CLI peak RSS ≤ 250 MiB (issue #30; first, release and no-op) | ${mib(cli)}${beforeText(b ? mib(cliPeak(b)) : undefined)} | ${cliOk ? "yes" : "**no**"} | ${cliOk ? "" : `${(cli - 250).toFixed(0)} MiB over`} |`,
    );
  }
  const withState = scale.flatMap((x) =>
    [...x.first, ...x.release, ...x.noop].flatMap((s) => (s.state ? [{ services: x.services, state: s.state }] : [])),
  );
  if (withState.length) {
    const top = withState.reduce((a, c) => (c.state.largestReleaseBytes > a.state.largestReleaseBytes ? c : a));
    const limit = 8_000;
    const ok = top.state.largestReleaseBytes <= limit;
    out.push(
      `| state ≤ 8 KB per ServiceRelease, the largest (issue #30; 8 KB = 8,000 B, compact JSON) | ${bytesText(top.state.largestReleaseBytes)} (at ${servers} × ${top.services}; ${kb(top.state.bytes / top.state.resources)} per resource in that checkpoint) | ${ok ? "yes" : "**no**"} | ${ok ? "" : `${bytesText(top.state.largestReleaseBytes - limit)} over`} |`,
    );
  }
  const one = scale.find((x) => x.services === 1);
  if (one) {
    const peak = (xs: E2eSample[], k: "cli" | "host") => Math.max(...xs.map((s) => s[k].rssMiB));
    for (const x of scale.filter((y) => y.services > 1)) {
      const p1 = releasePerChanged(one, servers);
      const pn = releasePerChanged(x, servers);
      const r = pn / p1;
      const m = peak(x.release, "host") / peak(one.release, "host");
      const mc = peak(x.release, "cli") / peak(one.release, "cli");
      const b1 = was(1);
      const bn = was(x.services);
      const br = b1 && bn ? releasePerChanged(bn, servers) / releasePerChanged(b1, servers) : NaN;
      const ok = r <= 1.5;
      out.push(
        `| linear growth: time per changed resource ${servers} × 1 → ${servers} × ${x.services} within 1.5× (new release, up; issue #30) | ${p1.toFixed(0)} ms → ${pn.toFixed(0)} ms = ${r.toFixed(2)}× (wall ${secs(med(one.release))} → ${secs(med(x.release))}); CLI memory ${mc.toFixed(1)}×, provider host memory ${m.toFixed(1)}×, for ${x.services}× the services${beforeText(Number.isFinite(br) ? `${br.toFixed(2)}×` : undefined)} | ${ok ? "yes" : "**no**"} | ${ok ? "" : `${((r / 1.5 - 1) * 100).toFixed(0)} % over; ${where(x.release)}`} |`,
      );
    }
  }
  out.push("");
  return out;
}

/** A scale pass measured after issue #30 records the state's size after its runs. */
const measuresState = (scale: readonly ScaleE2e[]): boolean =>
  scale.some((x) => [...x.first, ...x.release, ...x.noop].some((s) => s.state));

/**
 * Keeps the end-to-end scale figures from before issue #30 beside a new scale run: the ones the
 * replaced results.json already kept, else its own scale pass if that was measured before #30.
 */
function keepBefore(set: SetResult, last: Results | undefined): SetResult {
  if (!set.scaleE2e?.length || !measuresState(set.scaleE2e)) return set;
  const old = last?.sets.find((s) => s.servers === set.servers);
  if (old?.scaleE2eBefore) return { ...set, scaleE2eBefore: old.scaleE2eBefore };
  if (old?.scaleE2e?.length && !measuresState(old.scaleE2e))
    return {
      ...set,
      scaleE2eBefore: { label: "Before issue #30", date: last!.machine["date"] ?? "?", scaleE2e: old.scaleE2e },
    };
  return set;
}

/** results.json written before issue #18 had the provider-host figures under `fleet`. */
function upgrade(r: Results): Results {
  if (r.format === 2) return r;
  return {
    ...r,
    format: 2,
    sets: r.sets.map((s) => {
      const { fleet, ...rest } = s.tools;
      return { ...s, tools: fleet ? { "fleet-host": fleet, ...rest } : rest };
    }),
  };
}

async function orchestrate(): Promise<void> {
  const sets = (process.env["BENCH_SETS"] ?? "3,10").split(",");
  // The results this run replaces: for BENCH_MERGE, and for the scale figures from before issue #30.
  const resultsFile = path.join(HERE, "results.json");
  const last = fs.existsSync(resultsFile)
    ? upgrade(JSON.parse(fs.readFileSync(resultsFile, "utf8")) as Results)
    : undefined;
  // BENCH_MERGE=1: keep results.json's other figures; a set run with BENCH_RUNS=0 adds its scale run only.
  const previous = process.env["BENCH_MERGE"] === "1" ? last : undefined;
  if (process.env["BENCH_MERGE"] === "1" && !previous)
    throw new Error("BENCH_MERGE=1: no bench/results.json to merge into");
  const merged: SetResult[] = previous?.sets ?? [];
  // Program start with and without tsx, before the servers are busy.
  const startup =
    process.env["BENCH_STARTUP"] === "0"
      ? previous?.startup
      : await (await import("./e2e")).startupTimes(Number(process.env["BENCH_STARTUP_RUNS"] ?? 5));
  const results: SetResult[] = [];
  const upSh = path.join(REPO, "test", "hosts", "up.sh");
  const downSh = path.join(REPO, "test", "hosts", "down.sh");
  for (const set of sets) {
    const env: NodeJS.ProcessEnv =
      set === "10"
        ? { ...process.env, FLEET_DIR: SET10.dir, FLEET_NODES: SET10.nodes, FLEET_DB: "" }
        : { ...process.env };
    execFileSync("bash", [upSh], { env, stdio: ["ignore", "ignore", "inherit"] });
    const out = path.join(os.tmpdir(), `fleet-compare-${set}-${process.pid}.json`);
    try {
      execFileSync(process.execPath, ["--import", "tsx", __filename], {
        env: {
          ...env,
          BENCH_CHILD: out,
          BENCH_RUNS_SET: set === "10" ? (process.env["BENCH_RUNS10"] ?? "3") : (process.env["BENCH_RUNS"] ?? "5"),
          BENCH_WITH_SCALE: set === "10" && process.env["BENCH_SCALE"] !== "0" ? "1" : "0",
        },
        stdio: "inherit",
      });
      const fresh = JSON.parse(fs.readFileSync(out, "utf8")) as SetResult;
      const prev = merged.find((r) => r.servers === fresh.servers);
      results.push(
        prev && fresh.runs === 0
          ? {
              ...prev,
              ...(fresh.scale ? { scale: fresh.scale } : {}),
              ...(fresh.scaleE2e ? { scaleE2e: fresh.scaleE2e } : {}),
            }
          : fresh,
      );
    } finally {
      if (set === "10") execFileSync("bash", [downSh], { env, stdio: ["ignore", "ignore", "inherit"] });
    }
  }
  for (const m of merged) if (!results.some((r) => r.servers === m.servers)) results.push(m);
  results.sort((a, b) => a.servers - b.servers);
  for (let i = 0; i < results.length; i++) results[i] = keepBefore(results[i]!, last);
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "?",
    cpus: String(os.cpus().length),
    mem: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
    kernel: `${os.type()} ${os.release()}`,
  };
  const all: Results = { format: 2, machine, sets: results, ...(startup ? { startup } : {}) };
  fs.writeFileSync(path.join(HERE, "results.json"), JSON.stringify(all, null, 2) + "\n");
  const text = report(results, machine, startup);
  writeResults(text);
  console.log(text);
}

/** BENCH_REPORT=1: rewrite RESULTS.md from results.json without running anything. */
async function reportOnly(): Promise<void> {
  const r = upgrade(JSON.parse(fs.readFileSync(path.join(HERE, "results.json"), "utf8")) as Results);
  writeResults(report(r.sets, r.machine, r.startup));
}

/** Writes bench:compare's report, keeping bench:zero-downtime's block where it is. */
function writeResults(text: string): void {
  const file = path.join(HERE, "RESULTS.md");
  const kept = fs.existsSync(file) ? zeroDowntimeBlock(fs.readFileSync(file, "utf8")) : "";
  fs.writeFileSync(file, kept ? `${text.replace(/\n*$/, "\n\n")}${kept}` : text);
}

const childOut = process.env["BENCH_CHILD"];
(childOut ? child(childOut) : process.env["BENCH_REPORT"] === "1" ? reportOnly() : orchestrate()).catch(
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
