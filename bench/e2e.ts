/**
 * fleet end to end for bench:compare (issue #18): the user's whole command, `npm run pulumi -- up
 * …`, `npm run deploy -- …`, `npm run rollback -- <N>`, timed from spawn to exit in the project
 * folder, with the CPU and peak RSS of the Pulumi CLI and of the provider host sampled from
 * /proc, and a FLEET_TRACE file per command for the phase breakdown (bench/phases.ts).
 *
 * Loaded by compare.ts's child (FLEET_DIR already set): the test-support modules read it on load.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { readTrace, TRACE_ENV } from "../observe/trace";
import { phasesOf, type PhaseResult } from "./phases";
import { npmArgv, PROJECT_DIR } from "../test/engine/support/cli";
import { resourceCounts } from "../test/engine/support/diff";
import { hostsConfig, pyService, selfAlias } from "../test/engine/support/fixtures";
import { EngineStack, serviceReleases } from "../test/engine/support/stack";
import { CODE_PROVIDER_PACKAGE, CODE_PROVIDER_PREFIX } from "../model/shipped-code";
import type { GitApp } from "../test/support/git-app";

/** CPU (s, summed) and peak RSS (MiB, the largest single process) of one class of processes. */
export interface ProcStats {
  readonly cpuS: number;
  readonly rssMiB: number;
  /** How many such processes the command started. */
  readonly count: number;
}

export interface E2eSample {
  /** Wall time, spawn to exit. */
  readonly ms: number;
  readonly code: number;
  /** SSH connections accepted per host (sshd journal). */
  readonly conns: number[];
  /** Every process of the command: CPU summed, peak RSS of the largest. */
  readonly cpuS: number;
  readonly rssMiB: number;
  readonly cli: ProcStats;
  readonly host: ProcStats;
  readonly trace: PhaseResult;
  /** Resources that failed (scale runs tolerate failed health gates): a count from the output. */
  readonly failedCount?: number;
  /**
   * Resources the run changed: the CLI's own summary (`Resources:` created, updated, deleted,
   * replaced, …; everything but `unchanged`). Absent when the output had no summary.
   */
  readonly changed?: number;
  /** The stack's state after the run (scale runs, issue #30). */
  readonly state?: StateSize;
}

/** How big the stack's state is after a run: the file backend's checkpoint, as written. */
export interface StateSize {
  /** The checkpoint file's size in bytes (`.pulumi/stacks/<project>/<stack>.json`, as the CLI wrote it). */
  readonly bytes: number;
  /** Resources in it: the stack, providers (fleet's code provider too), components, custom resources. */
  readonly resources: number;
  readonly serviceReleases: number;
  /** The largest ServiceRelease resource, as compact JSON (UTF-8 bytes, without the file's indentation). */
  readonly largestReleaseBytes: number;
  /** fleet's code provider resources (`fleet-code-<hash>`, the bundles), as compact JSON, summed. */
  readonly codeBytes?: number;
}

/** Everything but `unchanged` in the CLI's `Resources:` summary; undefined when it printed none. */
export function changedCount(output: string): number | undefined {
  const counts = resourceCounts(output);
  const keys = Object.keys(counts);
  if (keys.length === 0) return undefined;
  return keys.filter((k) => k !== "unchanged").reduce((a, k) => a + counts[k]!, 0);
}

/** Finds `<stack>.json` (or `.json.gz`) under a file backend's `.pulumi/stacks`; undefined if none. */
function checkpointFile(backendDir: string, stack: string): string | undefined {
  const stacks = path.join(backendDir, ".pulumi", "stacks");
  if (!fs.existsSync(stacks)) return undefined;
  const found = fs
    .readdirSync(stacks, { recursive: true, encoding: "utf8" })
    .filter((f) => path.basename(f) === `${stack}.json` || path.basename(f) === `${stack}.json.gz`);
  return found.length > 0 ? path.join(stacks, found[0]!) : undefined;
}

/** The size of a stack's checkpoint in a file backend (read from disk, nothing run). */
export function stateSize(backendDir: string, stack: string): StateSize | undefined {
  const file = checkpointFile(backendDir, stack);
  if (!file) return undefined;
  const raw = fs.readFileSync(file);
  const text = (file.endsWith(".gz") ? zlib.gunzipSync(raw) : raw).toString("utf8");
  const checkpoint = JSON.parse(text) as {
    checkpoint?: { latest?: { resources?: { type?: string; urn?: string }[] } };
  };
  const latest = checkpoint.checkpoint?.latest ?? {};
  const releases = Object.values(serviceReleases(latest));
  const size = (r: unknown) => Buffer.byteLength(JSON.stringify(r), "utf8");
  const code = (latest.resources ?? []).filter(
    (r) =>
      r.type === `pulumi:providers:${CODE_PROVIDER_PACKAGE}` &&
      String(r.urn).split("::").pop()!.startsWith(CODE_PROVIDER_PREFIX),
  );
  return {
    bytes: raw.length,
    resources: latest.resources?.length ?? 0,
    serviceReleases: releases.length,
    largestReleaseBytes: Math.max(0, ...releases.map(size)),
    codeBytes: code.reduce((a, r) => a + size(r), 0),
  };
}

const CLK_TCK = 100;
const PAGE = 1024;

type Kind = "cli" | "host" | "other";
interface ProcSeen {
  kind: Kind;
  ticks: number;
  hwmKiB: number;
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function kindOf(pid: number): Kind {
  const cmdline = readOr(`/proc/${pid}/cmdline`).split("\0");
  if (cmdline.some((a) => a.includes("dynamic-provider"))) return "host";
  let exe = "";
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // gone, or not ours
  }
  if (path.basename(exe) === "pulumi" || path.basename(cmdline[0] ?? "") === "pulumi") return "cli";
  return "other";
}

/** Samples every descendant of `root` (and root) every `everyMs`: CPU ticks and VmHWM. */
class ProcSampler {
  private readonly seen = new Map<number, ProcSeen>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: number,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const children = new Map<number, number[]>();
    const stats = new Map<number, string[]>();
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readOr(`/proc/${entry}/stat`);
      if (!stat) continue;
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const pid = Number(entry);
      stats.set(pid, f);
      const ppid = Number(f[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    }
    const queue = [this.root];
    while (queue.length > 0) {
      const pid = queue.shift()!;
      const f = stats.get(pid);
      if (f) {
        const prev = this.seen.get(pid);
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(readOr(`/proc/${pid}/status`))?.[1] ?? 0);
        // A process may exec (npm → sh → node, a plugin's shell script → node): re-classify until known.
        const kind = prev && prev.kind !== "other" ? prev.kind : kindOf(pid);
        this.seen.set(pid, {
          kind,
          ticks: Number(f[11]) + Number(f[12]),
          hwmKiB: Math.max(prev?.hwmKiB ?? 0, hwm),
        });
      }
      queue.push(...(children.get(pid) ?? []));
    }
  }

  stop(): { all: ProcStats; cli: ProcStats; host: ProcStats } {
    clearInterval(this.timer);
    const of = (k?: Kind): ProcStats => {
      const xs = [...this.seen.values()].filter((p) => !k || p.kind === k);
      return {
        cpuS: xs.reduce((a, p) => a + p.ticks, 0) / CLK_TCK,
        rssMiB: Math.max(0, ...xs.map((p) => p.hwmKiB)) / PAGE,
        count: xs.length,
      };
    };
    return { all: of(), cli: of("cli"), host: of("host") };
  }
}

export interface Timed {
  readonly ms: number;
  readonly code: number;
  readonly out: string;
  readonly spawnAt: number;
  readonly exitAt: number;
  readonly procs: { all: ProcStats; cli: ProcStats; host: ProcStats };
}

/** Runs one command in the project folder as a user would, timing it and sampling its processes. */
export function timeCommand(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const spawnAt = Date.now();
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: PROJECT_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const sampler = new ProcSampler(child.pid!);
    let out = "";
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-200_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e) => {
      sampler.stop();
      reject(e);
    });
    child.on("exit", () => {
      const ms = performance.now() - t0;
      const exitAt = Date.now();
      const procs = sampler.stop();
      child.on("close", (code, signal) =>
        resolve({ ms, code: code ?? (signal ? 128 + 9 : 1), out, spawnAt, exitAt, procs }),
      );
    });
  });
}

// ------------------------------------------------------------------ fleet's commands on a stack

export const E2E_SERVICE = "fbe2e";
export const E2E_PORT = 18900;
export const SCALE_PORT = 18920;
export const E2E_ROOT = "/srv/fleet-bench-peers/fleet-e2e";

export interface Servers {
  readonly names: readonly string[];
  cursors(): Promise<string[]>;
  acceptedSince(cur: string[]): Promise<number[]>;
}

/** The bench app as a `fleet:services` entry on `hosts`: install only when requirements.txt changes. */
export function benchService(
  hosts: readonly string[],
  repo: string,
  port: number,
  healthTimeout = "20s",
): Record<string, unknown> {
  const base = pyService({ hosts, repo, port, healthTimeout });
  const health = base["health"] as Record<string, unknown>;
  return {
    ...base,
    root: E2E_ROOT,
    install: { run: "python3 -m venv --without-pip .venv && cp requirements.txt .venv/", when: ["requirements.txt"] },
    start: ".venv/bin/python app.py",
    health: { ...health, interval: "50ms" },
  };
}

/** One bench stack (`engine-bench-…`): its own file backend, its config in the project folder. */
export class BenchStack {
  readonly stack: EngineStack;
  private traces = 0;

  constructor(
    name: string,
    private readonly servers: Servers,
    private readonly tmp: string,
    private readonly extraEnv: NodeJS.ProcessEnv = {},
  ) {
    this.stack = new EngineStack(`engine-bench-${name}`);
  }

  async create(services: Record<string, unknown>): Promise<void> {
    await this.stack.create({ "fleet:hosts": hostsConfig(this.servers.names), "fleet:services": services });
  }

  /** `npm run <script> -- <args>`, timed, traced and sampled. */
  async npm(script: string, args: readonly string[], opts: { tolerate?: boolean } = {}): Promise<E2eSample> {
    const trace = path.join(this.tmp, `trace-${this.stack.name}-${++this.traces}.jsonl`);
    fs.rmSync(trace, { force: true });
    const cur = await this.servers.cursors();
    const [cmd, argv] = npmArgv(script, args);
    const r = await timeCommand(cmd, argv, { ...this.stack.env, ...this.extraEnv, [TRACE_ENV]: trace });
    const conns = await this.servers.acceptedSince(cur);
    if (r.code !== 0 && !opts.tolerate) {
      throw new Error(`\`npm run ${script} -- ${args.join(" ")}\` exited ${r.code}:\n${r.out.slice(-4000)}`);
    }
    const failed = opts.tolerate ? (r.out.match(/\*\*\w+ failed\*\*/g)?.length ?? 0) : undefined;
    const changed = changedCount(r.out);
    return {
      ms: r.ms,
      code: r.code,
      conns,
      cpuS: r.procs.all.cpuS,
      rssMiB: r.procs.all.rssMiB,
      cli: r.procs.cli,
      host: r.procs.host,
      trace: phasesOf(readTrace(trace), r.spawnAt, r.exitAt),
      ...(failed !== undefined ? { failedCount: failed } : {}),
      ...(changed !== undefined ? { changed } : {}),
    };
  }

  /** The stack's checkpoint in its file backend, after a run (not timed). */
  state(): StateSize | undefined {
    return stateSize(this.stack.backendDir, this.stack.name);
  }

  up(opts: { tolerate?: boolean } = {}): Promise<E2eSample> {
    // BENCH_PROFILE=<dir>: the CLI's own CPU and memory profiles (`--profiling`), for `go tool pprof`.
    const profile = process.env["BENCH_PROFILE"];
    const profiling = profile ? ["--profiling", `${profile}/${this.stack.name}-${Date.now()}`] : [];
    return this.npm("pulumi", ["up", "--yes", "--skip-preview", "--stack", this.stack.name, ...profiling], opts);
  }
  deploy(): Promise<E2eSample> {
    return this.npm("deploy", ["--stack", this.stack.name]);
  }
  rollback(n: number): Promise<E2eSample> {
    return this.npm("rollback", [String(n), "--stack", this.stack.name]);
  }

  remove(): Promise<void> {
    return this.stack.remove();
  }
}

export type E2eScenario = "first" | "release" | "lockfile" | "rollback" | "noop";
export type E2eMode = "up" | "deploy" | "nocp";

/**
 * One pass of the scenarios on a fresh stack and clean servers, with fresh commits:
 * up (and nocp: up with PULUMI_SKIP_CHECKPOINTS=true): first, release, lockfile, rollback to the
 * release (update 2), no-op; deploy: first, release, lockfile, no-op (its rollback is the same
 * command as up's).
 */
export async function e2ePass(
  mode: E2eMode,
  run: number,
  app: GitApp,
  servers: Servers,
  tmp: string,
  clean: () => Promise<void>,
  log: (m: string) => void,
): Promise<Partial<Record<E2eScenario, E2eSample>>> {
  await clean();
  const env: NodeJS.ProcessEnv = mode === "nocp" ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {};
  const st = new BenchStack(`${servers.names.length}-${mode}-${run}-${process.pid}`, servers, tmp, env);
  const out: Partial<Record<E2eScenario, E2eSample>> = {};
  const go = mode === "deploy" ? () => st.deploy() : () => st.up();
  const step = async (sc: E2eScenario, f: () => Promise<E2eSample>) => {
    out[sc] = await f();
    const s = out[sc];
    log(
      `run ${run} fleet ${mode} ${sc}: ${s.ms.toFixed(0)} ms conns ${s.conns.join(",")} ` +
        `remote cmds ${s.trace.remoteCommands} cli ${s.cli.rssMiB.toFixed(0)} MiB host ${s.host.rssMiB.toFixed(0)} MiB`,
    );
  };
  try {
    await st.create({ [E2E_SERVICE]: benchService(servers.names, app.dir, E2E_PORT) });
    app.commit(`e2e ${mode} first ${run}`, { "n.txt": `${mode} ${run}\n` });
    await step("first", go);
    app.commit(`e2e ${mode} code ${run}`, { "code.txt": `${mode} ${run}\n` });
    await step("release", go);
    app.commit(`e2e ${mode} lock ${run}`, { "requirements.txt": `# ${mode} ${run}\na==${run + 100}\n` });
    await step("lockfile", go);
    // Update 2 of the stack's history deployed the "release" commit (rollback's N counts oldest first).
    if (mode !== "deploy") await step("rollback", () => st.rollback(2));
    await step("noop", go);
  } finally {
    await st.remove().catch((e: unknown) => log(`stack rm failed: ${String(e)}`));
  }
  return out;
}

/** The most services per server a scale pass deploys (units fs00…fs49, ports SCALE_PORT + 0…49). */
export const MAX_SCALE_SERVICES = 50;

/** A scale pass's service names: fs00, fs01, … */
export const scaleServiceName = (j: number): string => `fs${String(j).padStart(2, "0")}`;

/** Wall time per resource the run changed (ms); NaN when it changed none. */
export function msPerChanged(s: E2eSample, fallback?: number): number {
  const n = s.changed ?? fallback;
  return n ? s.ms / n : NaN;
}

/**
 * Scale through the engine: `services` multi-host services (fs00…) on every server, one stack:
 * first, then `runs` × (release, no-op). Failed health gates are counted, not fatal. After each
 * run the stack's checkpoint is measured (issue #30: bytes per resource, the largest ServiceRelease).
 */
export async function scalePass(
  services: number,
  runs: number,
  app: GitApp,
  servers: Servers,
  tmp: string,
  clean: () => Promise<void>,
  log: (m: string) => void,
): Promise<{ services: number; first: E2eSample[]; release: E2eSample[]; noop: E2eSample[] }> {
  if (services > MAX_SCALE_SERVICES) {
    throw new Error(`scale: ${services} services per server, at most ${MAX_SCALE_SERVICES} (units and ports)`);
  }
  await clean();
  const st = new BenchStack(`scale-${servers.names.length}x${services}-${process.pid}`, servers, tmp);
  const res = { services, first: [] as E2eSample[], release: [] as E2eSample[], noop: [] as E2eSample[] };
  const releases = services * servers.names.length;
  const up = async (k: "first" | "release" | "noop"): Promise<void> => {
    const timed = await st.up({ tolerate: true });
    const state = st.state();
    const s: E2eSample = { ...timed, ...(state ? { state } : {}) };
    res[k].push(s);
    const per = msPerChanged(s, k === "release" ? releases : undefined);
    log(
      `scale ${servers.names.length}×${services} ${k}: ${s.ms.toFixed(0)} ms exit ${s.code} ` +
        `changed ${s.changed ?? "?"} (${Number.isFinite(per) ? `${per.toFixed(0)} ms each` : "–"}) ` +
        `cli ${s.cli.cpuS.toFixed(2)} s ${s.cli.rssMiB.toFixed(0)} MiB host ${s.host.rssMiB.toFixed(0)} MiB ` +
        (state
          ? `state ${state.bytes} B / ${state.resources} resources = ${(state.bytes / state.resources).toFixed(0)} B each, ` +
            `largest ServiceRelease ${state.largestReleaseBytes} B`
          : "state: no checkpoint found"),
    );
  };
  try {
    await st.create(
      Object.fromEntries(
        Array.from({ length: services }, (_, j) => [
          scaleServiceName(j),
          benchService(servers.names, app.dir, SCALE_PORT + j, "120s"),
        ]),
      ),
    );
    app.commit(`scale ${services} first`, { "s.txt": `${services}\n` });
    await up("first");
    for (let i = 0; i < runs; i++) {
      app.commit(`scale ${services} ${i}`, { "s.txt": `${services} ${i}\n` });
      await up("release");
      await up("noop");
    }
  } finally {
    await st.remove().catch((e: unknown) => log(`stack rm failed: ${String(e)}`));
  }
  return res;
}

/** The SELF alias multi-host services bind to (test/engine/support/fixtures.ts). */
export const alias = selfAlias;

/** Program start with and without tsx: median ms of `reps` runs of each command line. */
export async function startupTimes(reps = 5): Promise<Record<string, number>> {
  const node = process.execPath;
  const lines: Record<string, string[]> = {
    "node -e ''": ["-e", ""],
    "node -e \"require('@pulumi/pulumi')\"": ["-e", "require('@pulumi/pulumi')"],
    "node --require tsx/cjs -e ''": ["--require", "tsx/cjs", "-e", ""],
    "node --require tsx/cjs -e \"require('@pulumi/pulumi')\"": [
      "--require",
      "tsx/cjs",
      "-e",
      "require('@pulumi/pulumi')",
    ],
  };
  const out: Record<string, number> = {};
  for (const [label, args] of Object.entries(lines)) {
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) {
      const r = await timeCommand(node, args, {});
      if (r.code !== 0) throw new Error(`${label} exited ${r.code}: ${r.out.slice(-2000)}`);
      ms.push(r.ms);
    }
    ms.sort((a, b) => a - b);
    out[label] = ms[Math.floor(ms.length / 2)]!;
  }
  return out;
}

export const tmpDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "fleet-e2e-"));
