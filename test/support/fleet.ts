/**
 * The real test servers, as tests see them: the inventory test/hosts/up.sh writes to
 * `$FLEET_DIR/fleet.json` (started for the run by the root hook test/hooks/servers.ts), typed
 * and checked, plus two ways in: a fleet `SshConnection` (what components and providers take)
 * and `sshRun`, the system ssh for assertions.
 *
 * Network rule (issue "Real test servers owned by the project"): test traffic goes to
 * 127.0.0.0/8 only, so an inventory naming any other address is refused.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import type { SshConnection } from "../../transport/connection";
import { hostKeyFromKnownHosts } from "../../transport/known-hosts";

export const FLEET_DIR = process.env["FLEET_DIR"] ?? "/tmp/fleet";

/** Set by test/hooks/no-servers.ts: this run (test:unit) has no test servers, so no inventory to read. */
export const NO_SERVERS_ENV = "FLEET_TEST_NO_SERVERS";

const loopback = z.string().regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, "test servers must be on 127.0.0.0/8");
const port = z.number().int().min(1).max(65535);

const InventorySchema = z.object({
  ssh_key: z.string().min(1),
  known_hosts: z.string().min(1),
  ssh_config: z.string().min(1),
  users: z.array(z.string()).default(["root", "deploy"]),
  /** How up.sh built the image: "rootfs (mmdebstrap, …)" or "dockerfile (FROM debian:bookworm)". */
  image_build: z.string().optional(),
  postgres: z
    .object({
      host: loopback,
      port,
      user: z.string(),
      password: z.string(),
      database: z.string(),
    })
    .optional(),
  hosts: z
    .array(
      z.object({
        name: z.string().min(1),
        address: loopback,
        port,
        role: z.enum(["node", "db"]),
        container: z.string(),
      }),
    )
    .min(1),
});

/** The test servers' inventory, as test/hosts/up.sh writes it. */
export type Inventory = z.infer<typeof InventorySchema>;
export type TestHost = Inventory["hosts"][number];
export type PostgresServer = NonNullable<Inventory["postgres"]>;

/**
 * Reads and checks `$FLEET_DIR/fleet.json` (or `<dir>/fleet.json`: a fleet of its own, e.g. the
 * fault suite's); errors name the file and the bad field.
 *
 * Call it (and everything below that reads the inventory) in a hook or a test, never in a
 * describe body or at module scope: mocha runs those while it loads the files, before the root
 * hook has started the servers, so on a fresh machine the file does not exist yet.
 */
export function loadInventory(dir: string = FLEET_DIR): Inventory {
  if (process.env[NO_SERVERS_ENV] === "1") {
    throw new Error(
      "this run has no test servers (test/.mocharc.unit.json: unit, mocks, provider host), so it never " +
        "reads their inventory: give the code under test a fixed fake SshConnection instead, or move the " +
        "test to test/real/ (test/.mocharc.all.json starts the servers).",
    );
  }
  const file = path.join(dir, "fleet.json");
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : String(err);
    throw new Error(
      `test-server inventory ${file}: ${why}. The servers are not up: run the suite with ` +
        "`npm test` (its root hook test/hooks/servers.ts starts them) or `bash test/hosts/up.sh`. " +
        "If this happens while mocha loads the test files, a describe body or module scope reads the " +
        "inventory: read it in a before() hook or a test instead.",
    );
  }
  const parsed = InventorySchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`test-server inventory ${file} is invalid: ${issues.join("; ")}`);
  }
  return parsed.data;
}

/** The inventory entry of a test server, by name ("web1") or address ("127.0.0.11"). */
export function testHost(hostName: string, inv: Inventory = loadInventory()): TestHost {
  const h = inv.hosts.find((x) => x.name === hostName || x.address === hostName);
  if (!h) {
    throw new Error(`no test server "${hostName}" in the inventory (have: ${inv.hosts.map((x) => x.name).join(", ")})`);
  }
  return h;
}

/** The loopback address of a test server ("web1" → "127.0.0.11"). */
export function hostAddress(name: string): string {
  return testHost(name).address;
}

/**
 * A fleet SshConnection to a test server: key auth with the fleet test key, and the server's
 * ed25519 host key pinned from the inventory's known_hosts ("ssh-ed25519 AAAA…", host field
 * stripped), so a recreated or impostor server is refused.
 */
export function connectionFor(hostName: string, user = "root", inv: Inventory = loadInventory()): SshConnection {
  const h = testHost(hostName, inv);
  const hostKey = hostKeyFromKnownHosts(fs.readFileSync(inv.known_hosts, "utf8"), h.address, h.port);
  if (!hostKey) throw new Error(`no host key for ${h.address}:${h.port} in ${inv.known_hosts}`);
  return {
    host: h.address,
    port: h.port,
    user,
    privateKey: fs.readFileSync(inv.ssh_key, "utf8"),
    hostKey,
  };
}

/** The PostgreSQL server (address, port, role, password, database). */
export function postgres(): PostgresServer {
  const pg = loadInventory().postgres;
  if (!pg) throw new Error("the test-server inventory has no PostgreSQL server (FLEET_DB was empty)");
  return pg;
}

export interface SshRunOptions {
  /** Login user; default root. */
  readonly user?: string;
  /** Written to the command's stdin (then closed). */
  readonly input?: string;
  /** Extra ssh arguments placed before the host (e.g. ["-o", "UserKnownHostsFile=…"]); they win over ssh_config. */
  readonly sshArgs?: readonly string[];
  /** Kill ssh and reject after this long; default 120 s. */
  readonly timeoutMs?: number;
}

export interface SshRunResult {
  /** Exit status of the remote command; 255 when ssh itself failed (connection, host key); -1 if killed. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` on a test server with the system ssh, for assertions:
 * `ssh -F <inventory ssh_config> -o BatchMode=yes user@host command`. The ssh_config pins the
 * inventory's known_hosts with StrictHostKeyChecking=yes (never ~/.ssh/known_hosts).
 * Resolves on any exit status; rejects only if ssh cannot run or times out.
 */
export function sshRun(hostName: string, command: string, opts: SshRunOptions = {}): Promise<SshRunResult> {
  const inv = loadInventory();
  const h = testHost(hostName, inv);
  const user = opts.user ?? "root";
  const args = [
    "-F",
    inv.ssh_config,
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    ...(opts.sshArgs ?? []),
    "--",
    `${user}@${h.name}`,
    command,
  ];
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
    // Collected as bytes and decoded once: a multi-byte character may straddle two chunks.
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`ssh ${user}@${h.name} ${command}: no answer after ${timeoutMs} ms; stderr: ${stderr.slice(-500)}`),
      );
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      err.push(d);
      stderr = Buffer.concat(err).toString("utf8");
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ssh (${err.message}); the real-server tests need an OpenSSH client`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin.on("error", () => undefined); // the remote side may exit before reading stdin
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs a command over SSH on a test host; its trimmed stdout, or an error with the exit code and stderr. */
export async function sh(hostName: string, command: string, input?: string): Promise<string> {
  const r = await sshRun(hostName, command, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`ssh ${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** SQL as the postgres superuser on the db server (peer auth: no password involved). */
export function superuserPsql(sql: string, database: string): Promise<string> {
  return sh("db", `cd / && sudo -u postgres psql -X -q -A -t -v ON_ERROR_STOP=1 -d ${database}`, sql);
}
