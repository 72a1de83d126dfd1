/**
 * npm run bench:compare (issue #9): the same small app deployed the same way by fleet, Capistrano 3,
 * Ansible and the one-connection-per-command model of `@pulumi/command`, on 3 and on 10 test
 * servers; then fleet alone at scale (10 servers × 20 services). Writes bench/results.json and
 * bench/RESULTS.md. See bench/README.md for what each tool does and why.
 *
 * fleet is driven as the engine would drive it: Pulumi's own dynamic-provider host
 * (`ProviderHost.start()`, a fresh host per run like a fresh `pulumi up`) and one
 * `SimulatedResource(host, serviceProvider, …)` per server, all servers in parallel.
 *
 * Env: BENCH_RUNS (3-server runs, default 5), BENCH_RUNS10 (10-server runs, default 3),
 * BENCH_SETS ("3,10"), BENCH_TOOLS ("fleet,capistrano,ansible,per-step"), BENCH_SCALE_RUNS (3).
 */
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const HERE = __dirname;
const REPO = path.resolve(HERE, "..");
const PYAPP = path.join(REPO, "test", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-bench-peers";
const PORTS = { fleet: 18700, capistrano: 18701, ansible: 18702, "per-step": 18703, scaleBase: 18710, git: 18790 };
const TOOLS = ["fleet", "capistrano", "ansible", "per-step"] as const;
type Tool = (typeof TOOLS)[number];
const SCENARIOS = ["first", "release", "lockfile", "rollback", "noop"] as const;
type Scenario = (typeof SCENARIOS)[number];
const UNITS = ["fbench", "benchcap", "benchans", "benchcmd", ...Array.from({ length: 20 }, (_, j) => scaleName(j))];
const SET10 = {
  dir: "/tmp/fleet-bench10",
  nodes: Array.from({ length: 10 }, (_, i) => `b${i + 1}=127.0.0.${41 + i}`).join(" "),
};

function scaleName(j: number): string {
  return `fs${String(j).padStart(2, "0")}`;
}

export interface Sample {
  readonly ms: number;
  /** SSH connections accepted per host (sshd journal), one entry per host. */
  readonly conns: number[];
  readonly cpuS: number;
  readonly rssMiB: number;
  /** fleet: provider host start-up (ms), not in `ms`. */
  readonly hostStartMs?: number;
  /** Scale runs: resources whose deploy failed (first line of the error). */
  readonly failed?: string[];
}
type Cell = Record<Scenario, Sample[]>;
export interface SetResult {
  readonly servers: number;
  readonly runs: number;
  readonly tools: Partial<Record<Tool, Cell>>;
  readonly floor: number[];
  readonly scale?: { release: Sample[]; noop: Sample[]; first: Sample[]; hostPeakMiB: number };
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
  type Host = Awaited<ReturnType<typeof ProviderHost.start>>;
  type Res = InstanceType<typeof SimulatedResource>;

  const inv = loadInventory();
  const servers: Server[] = inv.hosts
    .filter((h) => h.role === "node")
    .map((h) => ({ name: h.name, address: h.address, container: h.container }));
  const runs = Number(process.env["BENCH_RUNS_SET"] ?? 5);
  const tools = (process.env["BENCH_TOOLS"] ?? TOOLS.join(",")).split(",").filter((t) => t) as Tool[];
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
  async function peer(tool: Exclude<Tool, "fleet">, scenario: Scenario, rev: string): Promise<Sample> {
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
          `until curl -sf -o /dev/null http://${c.host}:${PORTS.fleet}/api/health; do sleep 0.05; done`,
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
    scale?: SetResult["scale"];
  } = { servers: servers.length, runs, tools: {}, floor: [] };
  for (const t of tools) result.tools[t] = { first: [], release: [], lockfile: [], rollback: [], noop: [] };

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
          const resources = servers.map(() => undefined as unknown as Res);
          for (const sc of SCENARIOS) {
            if (sc === "first") {
              const h0 = await ProviderHost.start(); // replaced per run in fleetUp
              servers.forEach(
                (s, k) => (resources[k] = new SimulatedResource(h0, serviceProvider, { name: `fbench-${s.name}` })),
              );
              await h0.stop();
            }
            cell[sc].push(await fleetUp(resources, (k) => fleetInputs(servers[k]!, "fbench", PORTS.fleet, revs[sc])));
            log(`run ${i} fleet ${sc}: ${cell[sc].at(-1)!.ms.toFixed(0)} ms conns ${cell[sc].at(-1)!.conns.join(",")}`);
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

    if (withScale) {
      // fleet at scale: every server × 20 services, one provider host for all 200 resources.
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
    daemon.kill();
    await closeAll();
    fs.writeFileSync(outFile, JSON.stringify(result, null, 2));
    fs.rmSync(app.dir, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ orchestrator and report

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
function cellText(samples: Sample[]): string {
  const ms = samples.map((s) => s.ms);
  return `${secs(median(ms))} (${secs(Math.min(...ms))}–${secs(Math.max(...ms))})`;
}
function connText(samples: Sample[]): string {
  const all = samples.flatMap((s) => s.conns);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  return lo === hi ? `${lo}` : `${median(all)} (${lo}–${hi})`;
}

const LABEL: Record<Scenario, string> = {
  first: "1 first deploy",
  release: "2 new release, same lockfile",
  lockfile: "3 new release, lockfile changed",
  rollback: "4 rollback to the previous release",
  noop: "5 no-op run",
};

export function report(sets: SetResult[], machine: Record<string, string>): string {
  const lines: string[] = [];
  lines.push(`# bench:compare results`, "");
  lines.push(
    `Date: ${machine["date"]}. Machine: ${machine["cpu"]}, ${machine["cpus"]} vCPU, ${machine["mem"]}, ${machine["kernel"]}.`,
  );
  lines.push(
    `Reproduce: \`npm run bench:compare\` (= \`tsx bench/compare.ts\`; BENCH_RUNS=${sets[0]?.runs ?? 5} BENCH_RUNS10=${sets[1]?.runs ?? 3}).`,
  );
  lines.push(
    "",
    "fleet runs through Pulumi's own dynamic-provider host (`ProviderHost.start()`, a fresh host per run as each `pulumi up` starts one) with one `SimulatedResource(host, serviceProvider, …)` per server, all servers in parallel. Its wall time is from the first engine RPC to the last answer (host start-up shown apart); Capistrano's and Ansible's include their own process start; per-step's excludes Node start-up (like fleet's, the engine's own overhead is not in it).",
    "",
  );
  for (const set of sets) {
    const tools = TOOLS.filter((t) => set.tools[t]);
    lines.push(`## ${set.servers} servers in parallel, ${set.runs} runs per cell, median (min–max)`, "");
    lines.push(
      `| scenario | ${tools.join(" | ")} | ${tools
        .filter((t) => t !== "fleet")
        .map((t) => `${t} / fleet`)
        .join(" | ")} |`,
    );
    lines.push(
      `|---|${tools.map(() => "---|").join("")}${tools
        .filter((t) => t !== "fleet")
        .map(() => "---|")
        .join("")}`,
    );
    for (const sc of SCENARIOS) {
      const f = set.tools.fleet ? median(set.tools.fleet[sc].map((s) => s.ms)) : NaN;
      const cells = tools.map((t) => cellText(set.tools[t]![sc]));
      const ratios = tools
        .filter((t) => t !== "fleet")
        .map((t) => {
          const m = median(set.tools[t]![sc].map((s) => s.ms));
          return f > 0 && m > 0 ? `${(m / f).toFixed(1)}×` : "–";
        });
      lines.push(`| ${LABEL[sc]} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
    }
    lines.push(
      "",
      "SSH connections accepted per host per run (sshd journal), median (min–max) over hosts × runs." +
        (set.servers === 3
          ? " web1–3 are the team's shared test servers: logins by other test runs that overlap a run are counted too, so here the median is the figure and the max an upper bound; b1–b10 are private to the run."
          : ""),
      "",
    );
    lines.push(`| scenario | ${tools.join(" | ")} |`, `|---|${tools.map(() => "---|").join("")}`);
    for (const sc of SCENARIOS)
      lines.push(`| ${LABEL[sc]} | ${tools.map((t) => connText(set.tools[t]![sc])).join(" | ")} |`);
    lines.push(
      "",
      "CPU time / peak RSS of the deploying process, median over runs of scenario 2 (fleet: provider host + driver CPU, host peak RSS):",
      "",
    );
    lines.push(`| | ${tools.join(" | ")} |`, `|---|${tools.map(() => "---|").join("")}`);
    lines.push(
      `| CPU | ${tools.map((t) => `${median(set.tools[t]!.release.map((s) => s.cpuS)).toFixed(2)} s`).join(" | ")} |`,
      `| peak RSS | ${tools.map((t) => `${median(set.tools[t]!.release.map((s) => s.rssMiB)).toFixed(0)} MiB`).join(" | ")} |`,
    );
    if (set.tools.fleet) {
      const hs = set.tools.fleet.release.map((s) => s.hostStartMs ?? 0);
      lines.push(
        "",
        `fleet provider host start-up per run: ${secs(median(hs))} (${secs(Math.min(...hs))}–${secs(Math.max(...hs))}).`,
      );
    }
    if (set.floor.length) {
      const fl = median(set.floor);
      const rb = set.tools.fleet ? median(set.tools.fleet.rollback.map((s) => s.ms)) : NaN;
      lines.push(
        `Floor (switch + restart + first healthy probe over an open connection, slowest of ${set.servers}): ${secs(fl)} (${secs(Math.min(...set.floor))}–${secs(Math.max(...set.floor))}); fleet rollback / floor = ${(rb / fl).toFixed(2)}×.`,
      );
    }
    if (set.scale) {
      const sc = set.scale;
      lines.push(
        "",
        `### Scale: fleet, ${set.servers} servers × 20 services (${set.servers * 20} resources, one provider host), ${sc.release.length} runs`,
        "",
        "| run | wall | connections per host | host CPU | host peak RSS | failed deploys |",
        "|---|---|---|---|---|---|",
        ...(["first", "release", "noop"] as const).map(
          (k) =>
            `| ${k} | ${cellText(sc[k])} | ${connText(sc[k])} | ${median(sc[k].map((s) => s.cpuS)).toFixed(2)} s | ${Math.max(...sc[k].map((s) => s.rssMiB)).toFixed(0)} MiB | ${sc[k].map((s) => s.failed?.length ?? 0).join(", ")} of ${set.servers * 20} |`,
        ),
        "",
        `Provider host peak memory: ${sc.hostPeakMiB.toFixed(0)} MiB (target < 300 MB).`,
      );
    }
    lines.push("");
  }
  lines.push(...targets(sets));
  return lines.join("\n");
}

/** fleet against the issue's targets (figures, not tests). */
function targets(sets: SetResult[]): string[] {
  const out = ["## fleet against the targets", "", "| target | figure | met |", "|---|---|---|"];
  const med = (xs: Sample[]) => median(xs.map((s) => s.ms));
  const row = (what: string, figure: string, ok: boolean) =>
    out.push(`| ${what} | ${figure} | ${ok ? "yes" : "**no**"} |`);
  for (const set of sets) {
    const f = set.tools.fleet;
    if (!f) continue;
    const n = `${set.servers} servers`;
    for (const [peer, bound] of [
      ["capistrano", 0.5],
      ["ansible", 0.3],
    ] as const) {
      const p = set.tools[peer];
      if (!p) continue;
      const r = med(f.release) / med(p.release);
      row(
        `release deploy ≤ ${bound}× ${peer} (${n})`,
        `${secs(med(f.release))} / ${secs(med(p.release))} = ${r.toFixed(2)}×`,
        r <= bound,
      );
    }
    if (set.floor.length) {
      const r = med(f.rollback) / median(set.floor);
      row(
        `rollback ≤ 1.5× the floor (${n})`,
        `${secs(med(f.rollback))} / ${secs(median(set.floor))} = ${r.toFixed(2)}×`,
        r <= 1.5,
      );
    }
    // Median over hosts × runs (shared servers also log other test runs' logins); max shown too.
    const deployConns = (["first", "release", "lockfile", "rollback"] as const).flatMap((k) =>
      f[k].flatMap((s) => s.conns),
    );
    row(
      `1 connection per host per run (${n})`,
      `median ${median(deployConns)}, max ${Math.max(...deployConns)}`,
      median(deployConns) === 1,
    );
    const noop = f.noop.flatMap((s) => s.conns);
    row(
      `no-op: 0 remote commands (${n})`,
      `median ${median(noop)} connections opened (max ${Math.max(...noop)}), i.e. no remote command; ${secs(med(f.noop))}`,
      median(noop) === 0,
    );
  }
  const s3 = sets.find((s) => s.servers === 3)?.tools.fleet;
  const s10 = sets.find((s) => s.servers === 10);
  if (s3 && s10?.tools.fleet) {
    const r = median(s10.tools.fleet.release.map((s) => s.ms)) / median(s3.release.map((s) => s.ms));
    row("linear growth: 3 → 10 servers (release)", `${r.toFixed(2)}× the time for 3.3× the servers`, r <= 10 / 3);
  }
  if (s10?.scale && s10.tools.fleet) {
    const one = median(s10.tools.fleet.release.map((s) => s.ms));
    const many = median(s10.scale.release.map((s) => s.ms));
    row(
      "linear growth: 1 → 20 services per server (release, 10 servers)",
      `${secs(one)} → ${secs(many)} = ${(many / one).toFixed(1)}× for 20× the services`,
      many / one <= 20,
    );
    row(
      "provider host < 300 MB (200 services)",
      `${s10.scale.hostPeakMiB.toFixed(0)} MiB peak RSS`,
      s10.scale.hostPeakMiB * 1.048576 < 300,
    );
  }
  out.push("");
  return out;
}

async function orchestrate(): Promise<void> {
  const sets = (process.env["BENCH_SETS"] ?? "3,10").split(",");
  // BENCH_MERGE=1: keep results.json's other figures; a set run with BENCH_TOOLS="" adds its scale run only.
  const merged: SetResult[] =
    process.env["BENCH_MERGE"] === "1"
      ? (JSON.parse(fs.readFileSync(path.join(HERE, "results.json"), "utf8")) as { sets: SetResult[] }).sets
      : [];
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
      results.push(prev && fresh.runs === 0 ? { ...prev, ...(fresh.scale ? { scale: fresh.scale } : {}) } : fresh);
    } finally {
      if (set === "10") execFileSync("bash", [downSh], { env, stdio: ["ignore", "ignore", "inherit"] });
    }
  }
  for (const m of merged) if (!results.some((r) => r.servers === m.servers)) results.push(m);
  results.sort((a, b) => a.servers - b.servers);
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "?",
    cpus: String(os.cpus().length),
    mem: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
    kernel: `${os.type()} ${os.release()}`,
  };
  fs.writeFileSync(path.join(HERE, "results.json"), JSON.stringify({ machine, sets: results }, null, 2) + "\n");
  fs.writeFileSync(path.join(HERE, "RESULTS.md"), report(results, machine));
  console.log(report(results, machine));
}

/** BENCH_REPORT=1: rewrite RESULTS.md from results.json without running anything. */
async function reportOnly(): Promise<void> {
  const r = JSON.parse(fs.readFileSync(path.join(HERE, "results.json"), "utf8")) as {
    machine: Record<string, string>;
    sets: SetResult[];
  };
  fs.writeFileSync(path.join(HERE, "RESULTS.md"), report(r.sets, r.machine));
}

const childOut = process.env["BENCH_CHILD"];
(childOut ? child(childOut) : process.env["BENCH_REPORT"] === "1" ? reportOnly() : orchestrate()).catch(
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
