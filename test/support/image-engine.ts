/**
 * A container runtime for a test server, for the image tests.
 *
 * The test servers have no container runtime and no way to install one offline. The nearest real
 * arrangement: a second Docker engine on this machine (its own dockerd, data root and managed
 * containerd, started and stopped by these tests) plays "web3's engine", and web3 reaches it
 * through its own /var/run/docker.sock, a Unix socket that sshd on web3 forwards to this machine
 * (OpenSSH streamlocal forwarding, `ssh -R /var/run/docker.sock:…`), plus the static docker CLI
 * copied to /usr/local/bin/docker. So scripts on web3 run plain `docker …` exactly as on a
 * production host, and fleet ships images to it over its normal SSH connection.
 *
 * Why not the machine's own engine? Then the build side and the host side would share one image
 * store: "missing on the host, so streamed in with docker load" could never happen, and pruning on
 * the host would prune the build cache. Two engines keep those apart, as in production. Containers
 * of both engines run with host networking in this machine's network namespace, which the test
 * servers share (web3 = 127.0.0.13), so health checks from web3 reach them.
 */
import { execFileSync, spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { Client } from "ssh2";
import { fingerprint, pinnedFingerprint } from "../../transport/ssh";
import { FLEET_DIR, connectionFor } from "./fleet";

export const ENGINE_DIR = path.join(FLEET_DIR, "image-engine");
const SOCKET = path.join(ENGINE_DIR, "docker.sock");
const PIDFILE = path.join(ENGINE_DIR, "dockerd.pid");
const REMOTE_SOCKET = "/var/run/docker.sock";
const REMOTE_CLI = "/usr/local/bin/docker";
const LOCAL_CLI = "/usr/local/bin/docker";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/** Unmounts whatever dockerd left mounted under the engine's directory (netns, overlays). */
function unmountAll(): void {
  const mounts = fs
    .readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(ENGINE_DIR + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
}

/** Stops the dockerd a crashed earlier run of these tests left (only ours: its pidfile, our directory). */
async function stopLeftover(): Promise<void> {
  const pid = Number(fs.existsSync(PIDFILE) ? fs.readFileSync(PIDFILE, "utf8").trim() : 0);
  if (pid > 0 && alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(ENGINE_DIR)) {
    process.kill(pid, "SIGTERM");
    if (!(await waitGone(pid, 20_000))) process.kill(pid, "SIGKILL");
  }
  unmountAll();
  fs.rmSync(ENGINE_DIR, { recursive: true, force: true });
}

/** The second Docker engine: "the test server's engine". */
export class HostEngine {
  readonly dockerHost = `unix://${SOCKET}`;
  readonly socket = SOCKET;

  private constructor(private readonly pid: number) {}

  static async start(): Promise<HostEngine> {
    await stopLeftover();
    fs.mkdirSync(ENGINE_DIR, { recursive: true });
    const log = fs.openSync(path.join(ENGINE_DIR, "dockerd.log"), "a");
    const child = spawn(
      "dockerd",
      [
        `--data-root=${ENGINE_DIR}/data`,
        `--exec-root=${ENGINE_DIR}/exec`,
        `--pidfile=${PIDFILE}`,
        `--host=unix://${SOCKET}`,
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--cgroup-parent=fleet-image-engine",
      ],
      { detached: true, stdio: ["ignore", log, log] },
    );
    child.unref();
    fs.closeSync(log);
    const engine = new HostEngine(child.pid!);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        engine.docker("version", "--format", "{{.Server.Version}}");
        return engine;
      } catch (err) {
        if (!alive(child.pid!) || Date.now() > deadline) {
          const tail = fs.readFileSync(path.join(ENGINE_DIR, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
          throw new Error(`the image tests' second dockerd did not start: ${(err as Error).message}\n${tail}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** The docker CLI against this engine; returns stdout, throws on failure. */
  docker(...args: string[]): string {
    return execFileSync("docker", ["-H", this.dockerHost, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  }

  /** Whether this engine has the image (an id or a tag). */
  has(image: string): boolean {
    try {
      this.docker("image", "inspect", image);
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    try {
      for (const id of this.docker("ps", "-aq").split("\n").filter(Boolean)) this.docker("rm", "-f", id);
    } catch {
      // the engine may already be gone
    }
    process.kill(this.pid, "SIGTERM");
    if (!(await waitGone(this.pid, 20_000))) process.kill(this.pid, "SIGKILL");
    unmountAll();
    fs.rmSync(ENGINE_DIR, { recursive: true, force: true });
  }
}

function execOn(client: Client, command: string, stdin?: fs.ReadStream): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let out = "";
      stream.on("data", (d: Buffer) => (out += d.toString()));
      stream.stderr.on("data", (d: Buffer) => (out += d.toString()));
      stream.on("close", (code: number) => resolve({ code, out }));
      if (stdin) stdin.pipe(stream);
      else stream.end();
    });
  });
}

/**
 * web3's /var/run/docker.sock, forwarded over a dedicated SSH connection to the second engine,
 * and the docker CLI copied in. `close()` removes both from the server.
 */
export class EngineForward {
  private constructor(
    private readonly client: Client,
    readonly hostName: string,
  ) {}

  static async open(hostName: string, engineSocket: string): Promise<EngineForward> {
    const conn = connectionFor(hostName);
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client
        .on("ready", () => resolve())
        .on("error", reject)
        .connect({
          host: conn.host,
          port: conn.port ?? 22,
          username: "root",
          privateKey: conn.privateKey,
          hostVerifier: (key: Buffer) => fingerprint(key) === pinnedFingerprint(conn.hostKey),
        });
    });
    client.on("unix connection", (_info, accept) => {
      const channel = accept();
      const engine = net.connect(engineSocket);
      channel.pipe(engine).pipe(channel);
      engine.on("error", () => channel.close());
      channel.on("error", () => engine.destroy());
    });
    const fwd = new EngineForward(client, hostName);
    await execOn(client, `rm -f ${REMOTE_SOCKET}`);
    await new Promise<void>((resolve, reject) =>
      client.openssh_forwardInStreamLocal(REMOTE_SOCKET, (err) => (err ? reject(err) : resolve())),
    );
    const localSum = createHash("sha256").update(fs.readFileSync(LOCAL_CLI)).digest("hex");
    const remoteSum = (await execOn(client, `sha256sum ${REMOTE_CLI} 2>/dev/null | cut -c1-64`)).out.trim();
    if (remoteSum !== localSum) {
      const copied = await execOn(
        client,
        `cat > ${REMOTE_CLI}.fleet-tmp && chmod 755 ${REMOTE_CLI}.fleet-tmp && mv -f ${REMOTE_CLI}.fleet-tmp ${REMOTE_CLI}`,
        fs.createReadStream(LOCAL_CLI),
      );
      if (copied.code !== 0) throw new Error(`copying the docker CLI to ${hostName} failed: ${copied.out}`);
    }
    return fwd;
  }

  async close(): Promise<void> {
    await execOn(this.client, `rm -f ${REMOTE_SOCKET} ${REMOTE_CLI}`).catch(() => undefined);
    await new Promise<void>((resolve) => this.client.openssh_unforwardInStreamLocal(REMOTE_SOCKET, () => resolve()));
    this.client.end();
  }
}
