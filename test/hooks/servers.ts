/**
 * Mocha root hook plugin: the real test servers for the whole run (issue "Real test servers
 * owned by the project"). test/.mocharc.all.json loads it with `require`.
 *
 * beforeAll runs test/hosts/up.sh, which is idempotent: it reuses servers that are already up and
 * starts (or builds, ~60 s the first time) the rest. If that fails the run fails, loudly, with the
 * reason and the tail of up.sh's log: the real-server tests are never skipped.
 *
 * afterAll (and SIGINT/SIGTERM) run test/hosts/down.sh when this run started the servers, unless
 * FLEET_KEEP_HOSTS=1. Several runs may share one fleet (engineers on one machine): each run holds
 * a lease ($FLEET_DIR/runs/<pid>) and a run that started the fleet marks it ($FLEET_DIR/runs/owner);
 * a hook-started fleet goes down when the last run using it ends. A fleet that was up before any
 * run (a manual `up.sh`) is never torn down here.
 */
import { spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { processAlive } from "../../engine/process-alive";

const HOSTS_DIR = path.resolve(__dirname, "..", "hosts");
const FLEET_DIR = process.env["FLEET_DIR"] ?? "/tmp/fleet";
const RUNS_DIR = path.join(FLEET_DIR, "runs");
const LEASE = path.join(RUNS_DIR, String(process.pid));
const OWNER = path.join(RUNS_DIR, "owner");
const UP_REPORT = path.join(RUNS_DIR, `${process.pid}.up-report`);
const PREFIX = "[fleet-hosts] ";
const UP_TIMEOUT_MS = 14 * 60_000; // below the hook's 15 min, so our message wins over mocha's
const DOWN_TIMEOUT_MS = 2 * 60_000;
const TAIL_LINES = 40;

let upChild: ChildProcess | undefined;
let reusedByThisRun = 0;
let released = false;

function say(line: string): void {
  process.stderr.write(`${PREFIX}${line}\n`);
}

interface ScriptResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly tail: readonly string[];
  readonly logFile: string;
  readonly seconds: number;
}

/**
 * Runs test/hosts/<script> with bash in its own process group (so a signal handler can stop all
 * of it), streaming each output line to stderr with a prefix and into $FLEET_DIR/<name>-last.log.
 */
function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptResult> {
  const file = path.join(HOSTS_DIR, script);
  const logFile = path.join(FLEET_DIR, `${path.basename(script, ".sh")}-last.log`);
  const log = fs.createWriteStream(logFile);
  const tail: string[] = [];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [file], {
      env: { ...process.env, FLEET_DIR, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    if (script === "up.sh") upChild = child;
    const timer = setTimeout(() => {
      say(`${script}: no result after ${timeoutMs / 60_000} min; stopping it`);
      killGroup(child, "SIGTERM");
    }, timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      let partial = "";
      stream.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          say(line);
          log.write(line + "\n");
          tail.push(line);
          if (tail.length > TAIL_LINES) tail.shift();
        }
      });
      stream.on("end", () => {
        if (partial) {
          say(partial);
          log.write(partial + "\n");
          tail.push(partial);
        }
      });
    }
    child.on("error", (err) => {
      clearTimeout(timer);
      log.end();
      reject(
        new Error(
          `cannot run \`bash ${file}\`: ${err.message}. The real test servers need bash >= 5 and Docker ` +
            "(on Windows: run the suite inside WSL2).",
        ),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (upChild === child) upChild = undefined;
      log.end();
      resolve({
        code,
        signal,
        tail,
        logFile,
        seconds: (Date.now() - t0) / 1000,
      });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the group we created with detached: true
  } catch {
    // already gone
  }
}

interface UpReport {
  readonly started: string[];
  readonly reused: string[];
  /** up.sh found no Docker answering and started dockerd. */
  dockerd: boolean;
}

/** What up.sh started and what it found up, from its FLEET_UP_REPORT lines. */
function readUpReport(): UpReport {
  const report: UpReport = { started: [], reused: [], dockerd: false };
  let text = "";
  try {
    text = fs.readFileSync(UP_REPORT, "utf8");
  } catch {
    // up.sh failed before deciding anything
  }
  for (const line of text.split("\n")) {
    const [what, name] = line.trim().split(/\s+/);
    if (what === "started" && name) report.started.push(name);
    if (what === "reused" && name) report.reused.push(name);
    if (what === "dockerd-started") report.dockerd = true;
  }
  return report;
}

/**
 * After up.sh (or an interrupted one): if it found nothing up and started servers (or dockerd),
 * a test run owns the fleet. The owner record says whether dockerd is ours to stop too.
 */
function recordOwnership(): UpReport {
  const report = readUpReport();
  if ((report.started.length > 0 && report.reused.length === 0) || report.dockerd) {
    fs.writeFileSync(OWNER, `${process.pid}\n${report.dockerd ? "dockerd\n" : ""}`);
  }
  fs.rmSync(UP_REPORT, { force: true });
  reusedByThisRun += report.reused.length;
  return report;
}

/** Other test runs (pids) that hold a lease on the fleet and are still alive; stale leases are removed. */
function otherLiveRuns(): number[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(RUNS_DIR);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    if (processAlive(pid)) pids.push(pid);
    else fs.rmSync(path.join(RUNS_DIR, e), { force: true });
  }
  return pids;
}

/**
 * Drops this run's lease and says whether the fleet should go down now (and why not, if not).
 * Idempotent: only the first call decides.
 */
/** down.sh's environment: it stops dockerd only if the owning test run's up.sh started it. */
function downEnv(): NodeJS.ProcessEnv {
  let owner = "";
  try {
    owner = fs.readFileSync(OWNER, "utf8");
  } catch {
    // no owner record: keep dockerd
  }
  return owner.includes("dockerd") ? {} : { FLEET_KEEP_DOCKERD: "1" };
}

function releaseLease(): { teardown: boolean; why: string } {
  if (released) return { teardown: false, why: "already released" };
  released = true;
  fs.rmSync(LEASE, { force: true });
  if (!fs.existsSync(OWNER)) {
    return {
      teardown: false,
      why:
        reusedByThisRun > 0
          ? "the test servers were already up before this run; leaving them up"
          : "this run started no test servers; nothing to stop",
    };
  }
  if (process.env["FLEET_KEEP_HOSTS"] === "1") {
    return {
      teardown: false,
      why: "FLEET_KEEP_HOSTS=1: leaving the test servers up (bash test/hosts/down.sh stops them)",
    };
  }
  const others = otherLiveRuns();
  if (others.length > 0) {
    return {
      teardown: false,
      why: `test run(s) ${others.join(", ")} still use the servers; the last one tears them down`,
    };
  }
  return { teardown: true, why: "" };
}

function onSignal(signal: NodeJS.Signals): void {
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  process.stderr.write("\n");
  say(`${signal}: cleaning up the test servers this run started`);
  const child = upChild;
  if (child) {
    killGroup(child, "SIGTERM");
    for (let i = 0; i < 50 && child.pid !== undefined && groupAlive(child.pid); i++) {
      spawnSync("sleep", ["0.2"]);
    }
    killGroup(child, "SIGKILL");
  }
  recordOwnership();
  const decision = releaseLease();
  if (decision.teardown) {
    const r = spawnSync("bash", [path.join(HOSTS_DIR, "down.sh")], {
      env: { ...process.env, FLEET_DIR, ...downEnv() },
      stdio: ["ignore", "inherit", "inherit"],
      timeout: DOWN_TIMEOUT_MS,
    });
    if (r.status !== 0) say(`down.sh failed (status ${r.status}); check: docker ps --filter label=io.fleet.managed=1`);
    fs.rmSync(OWNER, { force: true });
  } else if (decision.why) {
    say(decision.why);
  }
  process.kill(process.pid, signal); // default action now that our handlers are gone
}

/**
 * Whether any live process is left in the group. Our exited child stays a zombie while the event
 * loop is blocked (nobody reaps it), and kill(-pgid, 0) counts zombies; so on Linux read /proc.
 */
function groupAlive(pgid: number): boolean {
  if (!fs.existsSync("/proc/self/stat")) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")"
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

async function beforeAll(this: Mocha.Context): Promise<void> {
  this.timeout(15 * 60_000);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  fs.mkdirSync(RUNS_DIR, { recursive: true });
  fs.writeFileSync(LEASE, `${new Date().toISOString()} ${process.argv.join(" ")}\n`);
  fs.rmSync(UP_REPORT, { force: true });
  say(`starting the real test servers: bash ${path.relative(process.cwd(), HOSTS_DIR)}/up.sh (FLEET_DIR=${FLEET_DIR})`);

  const r = await runScript("up.sh", { FLEET_UP_REPORT: UP_REPORT }, UP_TIMEOUT_MS);
  const { started, reused } = recordOwnership();
  if (r.code !== 0) {
    const reason = [...r.tail].reverse().find((l) => l.includes("ERROR:"));
    const status = r.code !== null ? `exited with status ${r.code}` : `was stopped by ${r.signal}`;
    throw new Error(
      [
        `The real test servers could not be started${reason ? `: ${reason.replace(/^.*ERROR:\s*/, "")}` : ""}.`,
        "The run stops here: the real-server tests are never skipped.",
        `\`bash test/hosts/up.sh\` ${status} after ${r.seconds.toFixed(1)} s. Last ${r.tail.length} lines:`,
        ...r.tail.map((l) => `    ${l}`),
        `Full log: ${r.logFile}. Run \`bash test/hosts/up.sh\` by hand to debug: it needs Docker, and either`,
        "root on a Debian-like Linux (mmdebstrap build) or a reachable registry (Dockerfile FROM debian:bookworm).",
        "Servers this run started are stopped after the run; FLEET_KEEP_HOSTS=1 keeps them for inspection.",
      ].join("\n"),
    );
  }
  say(
    `test servers ready in ${r.seconds.toFixed(1)} s (started: ${started.join(" ") || "none"}; ` +
      `reused: ${reused.join(" ") || "none"})`,
  );
}

async function afterAll(this: Mocha.Context): Promise<void> {
  this.timeout(DOWN_TIMEOUT_MS + 30_000);
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  const decision = releaseLease();
  if (!decision.teardown) {
    if (decision.why) say(decision.why);
    return;
  }
  say("stopping the test servers (started by a test run, and no other run uses them): bash test/hosts/down.sh");
  const r = await runScript("down.sh", downEnv(), DOWN_TIMEOUT_MS);
  fs.rmSync(OWNER, { force: true });
  if (r.code !== 0) {
    throw new Error(
      [
        `\`bash test/hosts/down.sh\` ${r.code !== null ? `exited with status ${r.code}` : `was stopped by ${r.signal}`}; ` +
          "test servers may still be running (docker ps --filter label=io.fleet.managed=1). Last lines:",
        ...r.tail.map((l) => `    ${l}`),
      ].join("\n"),
    );
  }
}

export const mochaHooks: Mocha.RootHookObject = { beforeAll, afterAll };
