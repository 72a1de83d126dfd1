/**
 * Where one fleet command's wall time goes, from its FLEET_TRACE lines (observe/trace.ts): pure
 * arithmetic, unit-tested in test/unit/bench-phases.test.ts. The phases are cut at a chain of
 * boundaries, each clamped to be no earlier than the one before, so they are never negative and
 * always add up to the wall time (spawn → exit).
 *
 * The update is the last runner process (engine/run.ts) that called the program: for
 * `npm run deploy` that is its `pulumi up` (the checks and the preview come before it, in
 * `before`), for `npm run rollback` the `pulumi up` after `pulumi config set`. A `pulumi up`
 * without --skip-preview runs the program twice in the same runner: the first run is `preview`.
 */
import type { TraceLine } from "../observe/trace";

export const PHASES = [
  "launcher",
  "before",
  "runnerToCli",
  "cliStart",
  "preview",
  "program",
  "engineToHost",
  "hostStart",
  "remote",
  "rpcRest",
  "cliFinish",
  "afterCli",
] as const;
export type Phase = (typeof PHASES)[number];
export type Phases = Record<Phase, number>;

export const PHASE_LABEL: Record<Phase, string> = {
  launcher: "launcher (spawn → runner-start: npm, node, module loading)",
  before: "earlier steps (checks, preview runner, config set)",
  runnerToCli: "runner to CLI (runner-start → cli-spawn)",
  cliStart: "CLI start (cli-spawn → program-start)",
  preview: "preview in the same CLI (first → last program-start)",
  program: "program (program-start → program-loaded)",
  engineToHost: "engine to provider host (program-loaded → host start)",
  hostStart: "provider host start (host start → first RPC)",
  remote: "remote work (SSH connect/exec, union)",
  rpcRest: "RPCs, the rest (first RPC → last RPC end, not remote)",
  cliFinish: "CLI finish (last RPC end → cli-exit)",
  afterCli: "after the CLI (cli-exit → process exit)",
};

export interface PhaseResult {
  readonly phases: Phases;
  /** ssh-exec events in the whole trace (remote commands), and ssh-connect events. */
  readonly remoteCommands: number;
  readonly sshConnects: number;
  readonly rpcs: number;
}

const num = (v: unknown): number => (typeof v === "number" ? v : NaN);

/** Total length of the union of [start, end] intervals, clipped to [lo, hi]. */
export function unionMs(intervals: readonly (readonly [number, number])[], lo: number, hi: number): number {
  const xs = intervals
    .map(([a, b]) => [Math.max(a, lo), Math.min(b, hi)] as const)
    .filter(([a, b]) => b > a)
    .sort((p, q) => p[0] - q[0]);
  let total = 0;
  let curA = NaN;
  let curB = NaN;
  for (const [a, b] of xs) {
    if (!(a <= curB)) {
      if (curB > curA) total += curB - curA;
      curA = a;
      curB = b;
    } else curB = Math.max(curB, b);
  }
  if (curB > curA) total += curB - curA;
  return total;
}

/**
 * The phases of one command spawned at `spawnAt` and exited at `exitAt` (epoch ms, the bench's
 * clock), from its trace. A missing event makes its phase 0 (the next phase takes the time).
 */
export function phasesOf(trace: readonly TraceLine[], spawnAt: number, exitAt: number): PhaseResult {
  const of = (ev: string) => trace.filter((l) => l.ev === ev);
  const starts = of("runner-start");
  const programStarts = of("program-start");
  const updatePid = programStarts.length ? programStarts[programStarts.length - 1]!.pid : undefined;
  const mine = (l: TraceLine) => l.pid === updatePid;
  const first = (xs: TraceLine[]) => (xs.length ? Math.min(...xs.map((l) => l.t)) : NaN);
  const last = (xs: TraceLine[]) => (xs.length ? Math.max(...xs.map((l) => l.t)) : NaN);

  const runnerStart = first(starts);
  const updateStart = first(starts.filter(mine));
  const cliSpawn = first(of("cli-spawn").filter(mine));
  const myPrograms = programStarts.filter(mine);
  const firstProgram = first(myPrograms);
  const lastProgram = last(myPrograms);
  const loaded = last(of("program-loaded").filter((l) => mine(l) && l.t >= lastProgram));
  const cliExit = last(of("cli-exit").filter(mine));

  // The update's provider hosts: the ones whose RPCs begin after the update's program started.
  const rpcs = of("rpc");
  const hostPids = new Set(
    rpcs.filter((l) => !(num(l["start"]) < lastProgram - 1)).map((l) => l.pid), // NaN lastProgram: all
  );
  const hostRpcs = rpcs.filter((l) => hostPids.has(l.pid));
  const hostOrigin = hostRpcs.length ? Math.min(...hostRpcs.map((l) => l.origin)) : NaN;
  const rpcStart = hostRpcs.length ? Math.min(...hostRpcs.map((l) => num(l["start"]))) : NaN;
  const rpcEnd = last(hostRpcs);
  const ssh = trace.filter((l) => (l.ev === "ssh-exec" || l.ev === "ssh-connect") && hostPids.has(l.pid));

  // The chain of boundaries; NaN (missing) keeps the previous one.
  const marks = [
    spawnAt,
    runnerStart,
    updateStart,
    cliSpawn,
    firstProgram,
    lastProgram,
    loaded,
    hostOrigin,
    rpcStart,
    rpcEnd,
    cliExit,
    exitAt,
  ];
  const b: number[] = [];
  for (const m of marks) {
    const prev = b.length ? b[b.length - 1]! : m;
    b.push(Number.isFinite(m) ? Math.min(Math.max(prev, m), exitAt) : prev);
  }
  const d = (i: number) => b[i + 1]! - b[i]!;
  const rpcWindow = d(8);
  const remote = Math.min(
    rpcWindow,
    unionMs(
      ssh.map((l) => [num(l["start"]), num(l["end"])] as const),
      b[8]!,
      b[9]!,
    ),
  );
  const phases: Phases = {
    launcher: d(0),
    before: d(1),
    runnerToCli: d(2),
    cliStart: d(3),
    preview: d(4),
    program: d(5),
    engineToHost: d(6),
    hostStart: d(7),
    remote,
    rpcRest: rpcWindow - remote,
    cliFinish: d(9),
    afterCli: d(10),
  };
  return {
    phases,
    remoteCommands: of("ssh-exec").length,
    sshConnects: of("ssh-connect").length,
    rpcs: hostRpcs.length,
  };
}

/** The phase holding the most time. */
export function biggestPhase(p: Phases): Phase {
  return PHASES.reduce((a, k) => (p[k] > p[a] ? k : a), PHASES[0]);
}
