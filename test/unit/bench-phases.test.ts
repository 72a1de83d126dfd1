import { strict as assert } from "assert";
import { biggestPhase, PHASES, phasesOf, unionMs } from "../../bench/phases";
import type { TraceLine } from "../../observe/trace";

const RUNNER = { pid: 10, origin: 1000 };
const HOST = { pid: 20, origin: 1600 };
const line = (who: { pid: number; origin: number }, ev: string, t: number, fields: Record<string, unknown> = {}) =>
  ({ ev, ...who, t, ...fields }) as TraceLine;

/** One `pulumi up --skip-preview`: spawn at 900, exit at 3000. */
const UP: TraceLine[] = [
  line(RUNNER, "runner-start", 1100),
  line(RUNNER, "cli-spawn", 1200),
  line(RUNNER, "program-start", 1400),
  line(RUNNER, "program-loaded", 1500),
  line(HOST, "rpc", 1750, { method: "check", start: 1700 }),
  line(HOST, "ssh-connect", 1850, { host: "a", start: 1720, end: 1850 }),
  line(HOST, "ssh-exec", 2300, { host: "a", step: "deploy", start: 1900, end: 2300 }),
  line(HOST, "ssh-exec", 2200, { host: "b", step: "deploy", start: 2000, end: 2200 }),
  line(HOST, "rpc", 2400, { method: "update", start: 1800 }),
  line(RUNNER, "cli-exit", 2900, { code: 0 }),
];

describe("bench phases from a FLEET_TRACE", () => {
  it("unionMs: overlapping intervals count once, clipped to the window", () => {
    assert.equal(
      unionMs(
        [
          [0, 10],
          [5, 20],
          [30, 40],
        ],
        0,
        100,
      ),
      30,
    );
    assert.equal(unionMs([[0, 50]], 10, 20), 10);
    assert.equal(unionMs([], 0, 10), 0);
  });

  it("cuts one up into phases that add up to the wall time", () => {
    const r = phasesOf(UP, 900, 3000);
    assert.deepEqual(r.phases, {
      launcher: 200,
      before: 0,
      runnerToCli: 100,
      cliStart: 200,
      preview: 0,
      program: 100,
      engineToHost: 100,
      hostStart: 100,
      remote: 530, // 1720–1850 ∪ 1900–2300 (2000–2200 inside it), in the RPC window 1700–2400
      rpcRest: 170,
      cliFinish: 500,
      afterCli: 100,
    });
    assert.equal(
      PHASES.reduce((a, p) => a + r.phases[p], 0),
      2100,
    );
    assert.equal(r.remoteCommands, 2);
    assert.equal(r.sshConnects, 1);
    assert.equal(r.rpcs, 2);
    assert.equal(biggestPhase(r.phases), "remote");
  });

  it("the update is the last runner that ran the program; an earlier runner and its host are 'before'", () => {
    const preview = { pid: 5, origin: 200 };
    const previewHost = { pid: 6, origin: 400 };
    const trace = [
      line(preview, "runner-start", 300),
      line(preview, "cli-spawn", 350),
      line(preview, "program-start", 380),
      line(previewHost, "rpc", 500, { method: "check", start: 450 }),
      line(preview, "cli-exit", 600, { code: 0 }),
      ...UP,
    ];
    const r = phasesOf(trace, 100, 3000);
    assert.equal(r.phases.launcher, 200);
    assert.equal(r.phases.before, 800); // 300 → the update runner's start at 1100
    assert.equal(r.phases.hostStart, 100); // the update's host, not the preview's
    assert.equal(r.rpcs, 2);
  });

  it("a preview in the same runner: first → last program-start; a no-op without SSH has no remote time", () => {
    const trace = [
      line(RUNNER, "runner-start", 1100),
      line(RUNNER, "cli-spawn", 1200),
      line(RUNNER, "program-start", 1300),
      line(RUNNER, "program-loaded", 1350),
      line({ pid: 19, origin: 1360 }, "rpc", 1450, { method: "check", start: 1400 }),
      line(RUNNER, "program-start", 1600),
      line(RUNNER, "program-loaded", 1700),
      line(HOST, "rpc", 1750, { method: "diff", start: 1700 }),
      line(RUNNER, "cli-exit", 1900, { code: 0 }),
    ];
    const r = phasesOf(trace, 1000, 2000);
    assert.equal(r.phases.preview, 300);
    assert.equal(r.phases.program, 100);
    assert.equal(r.phases.remote, 0);
    assert.equal(r.phases.rpcRest, 50);
    assert.equal(r.remoteCommands, 0);
    assert.equal(r.rpcs, 1);
  });

  it("a trace without events puts the whole wall time in the last phase and never goes negative", () => {
    const r = phasesOf([], 0, 500);
    assert.equal(r.phases.afterCli, 500);
    assert.ok(PHASES.every((p) => r.phases[p] >= 0));
    // A host that started before the program was loaded: that phase is 0, not negative.
    const early = phasesOf(
      UP.map((l) => (l.pid === HOST.pid ? { ...l, origin: 1450 } : l)),
      900,
      3000,
    );
    assert.equal(early.phases.engineToHost, 0);
    assert.equal(early.phases.hostStart, 200);
  });
});
