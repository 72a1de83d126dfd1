/**
 * The fault suite's own test servers: faults kill sshd sessions, kill whole servers and fill
 * disks, so they must never touch the shared fleet (web1..3, db) other engineers test on. This
 * fleet lives in its own FLEET_DIR with its own loopback addresses, started by test/hosts/up.sh
 * and stopped by test/hosts/down.sh, like bench/compare.ts does for its 10-server set.
 *
 * Assertions and fault injection go through `docker exec`, not ssh: sshd is one of the things the
 * faults break, and what the test observes must not depend on it.
 */
import { execFile, execFileSync } from "child_process";
import * as path from "path";
import { connectionFor, loadInventory, type Inventory, type PostgresServer, type TestHost } from "../../support/fleet";
import type { SshConnection } from "../../../transport/connection";

const HOSTS_DIR = path.resolve(__dirname, "..", "..", "hosts");

export const FAULTS_FLEET = {
  dir: "/tmp/fleet-faults",
  nodes: "f1=127.0.0.61 f2=127.0.0.62",
  db: "fdb=127.0.0.64",
} as const;

function fleetEnv(): NodeJS.ProcessEnv {
  return { ...process.env, FLEET_DIR: FAULTS_FLEET.dir, FLEET_NODES: FAULTS_FLEET.nodes, FLEET_DB: FAULTS_FLEET.db };
}

/** Starts (or reuses) the fault fleet; throws with up.sh's output tail if it cannot. */
export function fleetUp(): Inventory {
  try {
    execFileSync("bash", [path.join(HOSTS_DIR, "up.sh")], { env: fleetEnv(), stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    const tail = `${e.stdout?.toString() ?? ""}${e.stderr?.toString() ?? ""}`.split("\n").slice(-30).join("\n");
    throw new Error(`the fault suite's servers could not be started (test/hosts/up.sh):\n${tail}`);
  }
  return loadInventory(FAULTS_FLEET.dir);
}

export function fleetDown(): void {
  // FLEET_KEEP_DOCKERD: the shared fleet (and other people's containers) run on the same dockerd.
  execFileSync("bash", [path.join(HOSTS_DIR, "down.sh")], {
    env: { ...fleetEnv(), FLEET_KEEP_DOCKERD: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface DockerResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `docker <args>`; resolves on any exit status (a killed container is a normal case here). */
export function docker(args: string[], input?: string, timeoutMs = 60_000): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = execFile(
      "docker",
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(input ?? "");
  });
}

/** A server of the fault fleet, seen from outside: its container, its address, a fleet connection. */
export class Server {
  constructor(
    readonly host: TestHost,
    private readonly inv: Inventory,
  ) {}

  get name(): string {
    return this.host.name;
  }
  get address(): string {
    return this.host.address;
  }
  get container(): string {
    return this.host.container;
  }

  connection(overrides: Partial<SshConnection> = {}): SshConnection {
    return { ...connectionFor(this.host.name, "root", this.inv), ...overrides };
  }

  /** Runs a shell command inside the server (docker exec), without sshd. */
  exec(command: string, input?: string, timeoutMs?: number): Promise<DockerResult> {
    return docker(["exec", "-i", this.container, "sh", "-c", command], input, timeoutMs);
  }

  /** Like exec, but a non-zero exit is an error naming the command and its stderr. */
  async sh(command: string, input?: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(command, input, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.name}: ${command} → exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** The container's init pid on this machine (for nsenter). */
  async pid(): Promise<number> {
    const r = await docker(["inspect", "-f", "{{.State.Pid}}", this.container]);
    return Number(r.stdout.trim());
  }

  async running(): Promise<boolean> {
    const r = await docker(["inspect", "-f", "{{.State.Running}}", this.container]);
    return r.stdout.trim() === "true";
  }

  /** Waits until sshd listens on the server's address again (after a start). */
  async waitSshd(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await this.exec(`ss -Hltn 'sport = :${this.host.port}' | grep -qF '${this.address}:${this.host.port}'`);
      if (r.code === 0) return;
      await sleep(150);
    }
    throw new Error(`${this.name}: sshd did not listen again within ${timeoutMs} ms`);
  }
}

export function servers(inv: Inventory): { nodes: Server[]; db: Server; pg: PostgresServer } {
  const nodes = inv.hosts.filter((h) => h.role === "node").map((h) => new Server(h, inv));
  const dbHost = inv.hosts.find((h) => h.role === "db");
  if (!dbHost || !inv.postgres) throw new Error("the fault fleet has no PostgreSQL server (FLEET_DB)");
  return { nodes, db: new Server(dbHost, inv), pg: inv.postgres };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
