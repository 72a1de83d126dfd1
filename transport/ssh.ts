import type { Readable } from "stream";
import type { SshConnection } from "./connection";
import { channelGate, type ChannelGate } from "./channel-gate";
import { connectionFailed, exitError, remoteStepFailed, STEP_TIMEOUT_CODE } from "./errors";
import { traceEvent } from "../observe/trace";

/**
 * The transport: the only code that touches a socket. One pooled SSH connection per host and
 * process, reused by every step of every resource on that host (a provider host is one process
 * per `pulumi up`). Everything is created inside functions and kept on `globalThis`: dynamic
 * providers are serialized by value, so module-level state would be copied per provider, and
 * ssh2 objects cannot be serialized at all.
 */

export interface ExecOptions {
  /** Names the step in errors ("upload", "install", …). */
  readonly step: string;
  /** Bytes for the command's stdin: a script, or a stream (an archive). */
  readonly stdin?: string | Readable;
  /**
   * Kills the step after this long. Default 10 minutes. Counted from the moment the connection is
   * up: waiting for a free channel on it (MAX_COMMANDS_PER_CONNECTION) uses up the same time.
   */
  readonly timeoutMs?: number;
  /** Values to redact from any error text. */
  readonly secrets?: readonly string[];
  /** Shown in errors instead of the command itself (scripts are long and travel on stdin). */
  readonly describe?: string;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TransportStats {
  /** Connections opened, per `user@host:port`. */
  readonly opened: Record<string, number>;
  /** Commands run, per `user@host:port`. */
  readonly commands: Record<string, number>;
}

interface PoolEntry {
  client: Promise<unknown>;
  /** This process's presence on the host (see `presence`), opened on first use. */
  presence?: Promise<string | undefined>;
}

interface Pool {
  entries: Record<string, PoolEntry>;
  stats: TransportStats;
  /** The commands running on each host's connection, and those waiting for a channel. */
  gates?: Record<string, ChannelGate>;
}

/**
 * Commands at once on one connection. OpenSSH refuses an 11th session on a connection by default
 * (MaxSessions 10), and the presence channel holds one: with many services on one host deploying
 * in parallel (the engine runs up to PULUMI_PARALLEL steps at once), the rest wait their turn.
 */
export const MAX_COMMANDS_PER_CONNECTION = 8;

/** The channel gate of `key`'s connection (transport/channel-gate.ts: first come, first served, waits that end). */
function gateOf(key: string): ChannelGate {
  return ((pool().gates ??= {})[key] ??= channelGate(MAX_COMMANDS_PER_CONNECTION));
}

/** Why a command that found every channel held gave up, in the words of a timed-out step. */
function channelsBusy(waitedMs: number): string {
  return (
    `timed out after ${waitedMs} ms waiting for an SSH channel: all ${MAX_COMMANDS_PER_CONNECTION} channels ` +
    `on this connection were busy (held by long-running commands, such as \`logs -f\` streams or interactive ` +
    `execs), so it never started`
  );
}

/** How long a streamed command (execStream) waits for a free channel by default. */
const DEFAULT_STREAM_CHANNEL_WAIT_MS = 30_000;

const POOL_KEY = "__fleetSshPool";
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_STEP_TIMEOUT_MS = 10 * 60_000;

function pool(): Pool {
  const g = globalThis as unknown as Record<string, Pool | undefined>;
  let p = g[POOL_KEY];
  if (!p) {
    p = { entries: {}, stats: { opened: {}, commands: {} } };
    g[POOL_KEY] = p;
  }
  return p;
}

/** How hosts are named in messages and stats. */
export function connectionKey(conn: SshConnection): string {
  return `${conn.user}@${conn.host}:${conn.port ?? 22}`;
}

/**
 * The pool's key: the address plus the pinned host key and the client key, so a connection
 * verified against one pin is never handed to a caller that pinned another.
 */
export function poolKey(conn: SshConnection): string {
  const crypto = require("crypto") as typeof import("crypto");
  const identity = crypto.createHash("sha256").update(conn.privateKey).digest("hex").slice(0, 16);
  const via = conn.jump ? ` via ${poolKey(conn.jump)}` : "";
  return `${connectionKey(conn)}#${pinnedFingerprint(conn.hostKey)}#${identity}${via}`;
}

/** SHA256 fingerprint of a raw SSH public key blob, as OpenSSH prints it. */
export function fingerprint(keyBlob: Buffer): string {
  const crypto = require("crypto") as typeof import("crypto");
  return "SHA256:" + crypto.createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/** The fingerprint a pinned host key stands for: either given as one, or a known_hosts key. */
export function pinnedFingerprint(hostKey: string): string {
  // A connection without a pin (a hand-made spec, a config that lost it) is refused: no trust on first use.
  if (typeof hostKey !== "string" || !hostKey.trim())
    throw new Error(`no host key is pinned: give hostKey ("ssh-ed25519 AAAA…" or "SHA256:…") or knownHostsFile`);
  const trimmed = hostKey.trim();
  if (trimmed.startsWith("SHA256:")) return trimmed.replace(/=+$/, "");
  const parts = trimmed.split(/\s+/);
  // Accept "type base64", "host type base64" (a known_hosts line) and "type base64 comment".
  const blob = parts.find((p, i) => i > 0 && /^AAAA[A-Za-z0-9+/=]+$/.test(p));
  if (!blob) throw new Error(`hostKey is neither "SHA256:…" nor an "ssh-… AAAA…" public key`);
  return fingerprint(Buffer.from(blob, "base64"));
}

/**
 * The host key algorithms to offer: only the pinned key's type, so the server presents the key
 * we pinned rather than another of its keys. A bare fingerprint pin offers ssh2's defaults.
 */
export function hostKeyAlgorithms(hostKey: string): string[] | undefined {
  const type = hostKey
    .trim()
    .split(/\s+/)
    .find((p) => /^(ssh-|ecdsa-|sk-)/.test(p));
  if (!type) return undefined;
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/** Transient network errors worth another try; anything else (auth, host key) is final. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return ["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EPIPE"].includes(code);
}

/** A TCP stream to `conn` opened through its bastion's pooled connection (`ssh -J`). */
async function tunnelThroughJump(conn: SshConnection): Promise<unknown> {
  const bastion = (await client(conn.jump!)) as import("ssh2").Client;
  return new Promise((resolve, reject) => {
    bastion.forwardOut("127.0.0.1", 0, conn.host, conn.port ?? 22, (err, stream) =>
      err
        ? reject(
            connectionFailed(
              connectionKey(conn),
              `the bastion ${connectionKey(conn.jump!)} could not reach ${conn.host}:${conn.port ?? 22}: ${err.message}`,
            ),
          )
        : resolve(stream),
    );
  });
}

function connectOnce(conn: SshConnection, timeoutMs: number, stats: TransportStats, sock?: unknown): Promise<unknown> {
  const { Client } = require("ssh2") as typeof import("ssh2");
  const key = connectionKey(conn);
  const expected = pinnedFingerprint(conn.hostKey);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = "";
    const timer = setTimeout(() => {
      client.end();
      reject(connectionFailed(key, `no SSH answer within ${timeoutMs} ms (connect timeout)`, "FLEET_CONNECT_TIMEOUT"));
    }, timeoutMs);
    client
      .on("ready", () => {
        clearTimeout(timer);
        stats.opened[key] = (stats.opened[key] ?? 0) + 1;
        resolve(client);
      })
      .on("error", (err: Error & { level?: string }) => {
        clearTimeout(timer);
        const pinnedType = hostKeyAlgorithms(conn.hostKey)?.at(-1);
        if (seen && seen !== expected) {
          reject(
            connectionFailed(
              key,
              `host key mismatch: the host presented ${seen}, but ${expected} is pinned. ` +
                `If the server was rebuilt on purpose, pin its new key (hostKey); otherwise do not connect.`,
            ),
          );
        } else if (!seen && pinnedType && /no matching host key/i.test(err.message)) {
          // Only the pinned key's type is offered: a server without such a key has another key now.
          reject(
            connectionFailed(
              key,
              `host key mismatch: the host has no ${pinnedType} key, but ${expected} (${pinnedType}) is pinned. ` +
                `If the server was rebuilt on purpose, pin its new key (hostKey); otherwise do not connect.`,
            ),
          );
        } else if (err.level === "client-authentication") {
          reject(connectionFailed(key, `authentication failed for user "${conn.user}" (check privateKey)`));
        } else {
          reject(connectionFailed(key, `cannot connect: ${err.message}`, (err as { code?: string }).code));
        }
      })
      .connect({
        ...(sock ? { sock: sock as import("stream").Readable } : {}),
        host: conn.host,
        port: conn.port ?? 22,
        username: conn.user,
        privateKey: conn.privateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: 5000,
        algorithms: hostKeyAlgorithms(conn.hostKey)
          ? { serverHostKey: hostKeyAlgorithms(conn.hostKey) as import("ssh2").ServerHostKeyAlgorithm[] }
          : undefined,
        keepaliveCountMax: 3,
        hostVerifier: (keyBlob: Buffer) => {
          seen = fingerprint(keyBlob);
          return seen === expected;
        },
      });
  });
}

/** Connects with bounded retries (exponential backoff), all within the connect timeout. */
async function connect(conn: SshConnection): Promise<unknown> {
  const p = pool();
  const totalMs = conn.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + totalMs;
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    const left = deadline - Date.now();
    try {
      const sock = conn.jump ? await tunnelThroughJump(conn) : undefined;
      return await connectOnce(conn, Math.max(left, 1), p.stats, sock);
    } catch (err) {
      const retryable = isTransient(err) && Date.now() + delay < deadline;
      if (!retryable) {
        if (isTransient(err) || (err as { code?: string }).code === "FLEET_CONNECT_TIMEOUT") {
          throw connectionFailed(
            connectionKey(conn),
            `unreachable: gave up after ${attempt} attempt(s) in ${totalMs} ms (connect timeout): ${(err as Error).message}`,
          );
        }
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/** The pooled connection for `conn`, opened on first use. */
export function client(conn: SshConnection): Promise<unknown> {
  const p = pool();
  const key = poolKey(conn);
  const existing = p.entries[key];
  if (existing) return existing.client;
  const connectStart = Date.now();
  const entry: PoolEntry = { client: connect(conn) };
  p.entries[key] = entry;
  entry.client.then(
    (c) => {
      traceEvent("ssh-connect", { host: connectionKey(conn), start: connectStart, end: Date.now() });
      const drop = () => {
        if (p.entries[key] === entry) delete p.entries[key];
      };
      (c as import("ssh2").Client).on("close", drop).on("end", drop);
    },
    () => {
      if (p.entries[key] === entry) delete p.entries[key];
    },
  );
  return entry.client;
}

/**
 * This process's presence on the host: a process started over the pooled connection that reads
 * its stdin until the connection ends, so it lives exactly as long as the connection does (a
 * killed deployer's connection is closed by its kernel; sshd then closes the channel and the
 * process ends). Resolves with `<pid> <start time>` (the start time tells a reused pid apart), or
 * undefined when the host would not run it: locks then record no presence, and stay unjudgeable.
 * One per pooled connection; not counted in transportStats (it runs no step).
 */
export async function presence(conn: SshConnection): Promise<string | undefined> {
  const c = (await client(conn)) as import("ssh2").Client;
  const entry = pool().entries[poolKey(conn)];
  if (!entry) return undefined;
  entry.presence ??= new Promise<string | undefined>((resolve) => {
    const command = `exec /bin/sh -c 'echo "presence=$$ $(cut -d" " -f22 /proc/$$/stat)"; exec cat >/dev/null'`;
    c.exec(command, (err, stream) => {
      if (err) return resolve(undefined);
      let text = "";
      const timer = setTimeout(() => resolve(undefined), 10_000);
      stream.on("data", (d: Buffer) => {
        text += d.toString("utf8");
        const m = /presence=(\d+ \d+)\n/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      stream.stderr.on("data", () => undefined);
      stream.on("close", () => {
        clearTimeout(timer);
        resolve(undefined);
        if (entry.presence) delete entry.presence;
      });
    });
  });
  return entry.presence;
}

/**
 * Opens the pooled connection in the background so the handshake overlaps other work. A failure
 * here is dropped (the pool forgets it); the step that needs the connection connects again and
 * reports the error with its own context.
 */
export function prewarm(conn: SshConnection): void {
  client(conn).catch(() => undefined);
}

/**
 * The command as the host runs it: under its own `timeout`, which fires just after ours. Our
 * timeout can only close the channel and ask for a KILL, which some servers refuse (OpenSSH
 * answers "session signalling requires privilege separation" for some sessions); a step we gave
 * up on would keep running there with all it started: a hung pg_dump holding the backup lock,
 * a stuck upload. `timeout` kills its whole process group.
 */
export function underHostTimeout(command: string, timeoutMs: number): string {
  return `timeout -s KILL ${hostTimeoutSeconds(timeoutMs)} /bin/sh -c '${command.replace(/'/g, "'\\''")}'`;
}

/** The host's timeout, in whole seconds: just after ours, so ours reports the step first. */
function hostTimeoutSeconds(timeoutMs: number): number {
  return Math.ceil(timeoutMs / 1000) + 2;
}

/**
 * The shell a script on stdin runs in, as the host runs it (runScript): root's `/bin/sh -s` under
 * the host's timeout, through `sudo -n` for any other user, with the timeout inside sudo, as root.
 * Around sudo (underHostTimeout) it ran as the SSH user, who may not signal root's processes, and
 * sudo (Debian's `Defaults use_pty`) starts its command in a session of its own: a hung root step,
 * a `sleep` holding a flock, outlived its timeout on the host (test/real/transport-channels.test.ts).
 */
export function scriptShell(user: string, timeoutMs: number): string {
  const shell = `timeout -s KILL ${hostTimeoutSeconds(timeoutMs)} /bin/sh -s`;
  return user === "root" ? shell : `sudo -n ${shell}`;
}

/** Runs `command` on the host and resolves with its exit code and output; never throws on exit != 0. */
export function exec(conn: SshConnection, command: string, opts: ExecOptions): Promise<ExecResult> {
  return execOnHost(conn, (leftMs) => underHostTimeout(command, leftMs), {
    ...opts,
    describe: opts.describe ?? command,
  });
}

/**
 * `exec` of the host command `onHost` builds, under the host's timeout, for the time the step has
 * left once it holds a channel.
 */
async function execOnHost(
  conn: SshConnection,
  onHost: (leftMs: number) => string,
  opts: ExecOptions & { readonly describe: string },
): Promise<ExecResult> {
  const c = (await client(conn)) as import("ssh2").Client;
  const key = connectionKey(conn);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const secrets = opts.secrets ?? [];
  const describe = opts.describe;
  // The step's time runs from here: with every channel held (`logs -f` streams follow for hours),
  // waiting for one without a limit left the step pending forever, its timeout never started.
  const deadline = Date.now() + timeoutMs;
  const free = await gateOf(key).acquire(deadline);
  if (!free)
    throw remoteStepFailed(key, opts.step, describe, null, "", "", channelsBusy(timeoutMs), secrets, STEP_TIMEOUT_CODE);
  const stats = pool().stats;
  stats.commands[key] = (stats.commands[key] ?? 0) + 1;
  const started = Date.now();
  const leftMs = Math.max(deadline - started, 1);
  const waitedMs = timeoutMs - leftMs;
  const running = new Promise<ExecResult>((resolve, reject) => {
    c.exec(onHost(leftMs), (err, stream) => {
      if (err) {
        reject(remoteStepFailed(key, opts.step, describe, null, "", "", `could not start: ${err.message}`, secrets));
        return;
      }
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let finished = false;
      const fail = (reason: string, code?: string) =>
        reject(
          remoteStepFailed(
            key,
            opts.step,
            describe,
            null,
            Buffer.concat(out).toString("utf8"),
            Buffer.concat(errOut).toString("utf8"),
            reason,
            secrets,
            code,
          ),
        );
      const timer = setTimeout(() => {
        if (finished) return;
        finished = true;
        stream.signal("KILL");
        stream.close();
        const waited = waitedMs >= 100 ? ` (${waitedMs} ms of it waiting for an SSH channel)` : "";
        fail(`timed out after ${timeoutMs} ms${waited}`, STEP_TIMEOUT_CODE);
      }, leftMs);
      stream.on("data", (d: Buffer) => out.push(d));
      stream.stderr.on("data", (d: Buffer) => errOut.push(d));
      stream.on("close", (code: number | null, signal?: string) => {
        clearTimeout(timer);
        traceEvent("ssh-exec", { host: key, step: opts.step, start: started, end: Date.now() });
        if (finished) return;
        finished = true;
        if (code === null || code === undefined) {
          fail(signal ? `killed by signal ${signal}` : "the connection closed before the command finished");
          return;
        }
        resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(errOut).toString("utf8") });
      });
      if (opts.stdin === undefined) stream.end();
      else if (typeof opts.stdin === "string") stream.end(opts.stdin);
      else {
        opts.stdin.on("error", (e: Error) => {
          stream.close();
          if (!finished) {
            finished = true;
            clearTimeout(timer);
            reject(
              remoteStepFailed(key, opts.step, describe, null, "", "", `local input failed: ${e.message}`, secrets),
            );
          }
        });
        opts.stdin.pipe(stream);
      }
    });
  });
  return running.finally(free);
}

/**
 * Like `exec`, but a non-zero exit becomes a RemoteStepFailure with the output's tail.
 * (Not named `run`: Pulumi's serializer leaves names that exist as globals uncaptured, and
 * mocha defines a global `run`.)
 */
export async function execChecked(conn: SshConnection, command: string, opts: ExecOptions): Promise<ExecResult> {
  return exitedZero(conn, { ...opts, describe: opts.describe ?? command }, await exec(conn, command, opts));
}

/** The result of a command that exited 0; any other exit becomes a RemoteStepFailure. */
function exitedZero(
  conn: SshConnection,
  opts: ExecOptions & { readonly describe: string },
  result: ExecResult,
): ExecResult {
  if (result.code !== 0) throw exitError(connectionKey(conn), opts.step, opts.describe, result, opts.secrets ?? []);
  return result;
}

/**
 * Runs a shell script, sent on stdin so that nothing in it (secrets included) appears in the
 * remote process list. Non-root users go through `sudo -n`, the host's timeout inside it (scriptShell).
 */
export async function runScript(
  conn: SshConnection,
  script: string,
  opts: Omit<ExecOptions, "stdin">,
  check = true,
): Promise<ExecResult> {
  const shell = conn.user === "root" ? "/bin/sh -s" : "sudo -n /bin/sh -s";
  const options = { ...opts, stdin: script, describe: opts.describe ?? `${shell} <<'script' (${opts.step})` };
  const result = await execOnHost(conn, (leftMs) => scriptShell(conn.user, leftMs), options);
  return check ? exitedZero(conn, options, result) : result;
}

export interface StreamOptions {
  /** Names the step in errors ("logs", "exec"). */
  readonly step: string;
  readonly onStdout: (chunk: Buffer) => void;
  /** With a PTY the remote side has one stream: everything arrives on stdout. */
  readonly onStderr: (chunk: Buffer) => void;
  /** Piped into the command; the channel's input ends when it ends. */
  readonly stdin?: Readable;
  /** A terminal on the host (ssh -t): `term` is its $TERM. */
  readonly pty?: { readonly rows: number; readonly cols: number; readonly term: string };
  /**
   * Stops the command: its input is ended (EOF), which the remote side is built to end on
   * (OpenSSH often refuses channel signals); after `closeAfterMs` (default 5 s) the channel is
   * closed. Without `stdin`, the input stays open until then; without either, it ends at once.
   */
  readonly signal?: AbortSignal;
  readonly closeAfterMs?: number;
  /**
   * How long to wait for a free channel (MAX_COMMANDS_PER_CONNECTION) before failing as a timed-out
   * step. Default 30 s. Stopping (`signal`) while it waits ends the wait: nothing runs.
   */
  readonly channelWaitMs?: number;
  /** Called once the command runs, with a way to pass on a terminal resize (PTY only). */
  readonly onStart?: (control: { resize(rows: number, cols: number): void }) => void;
  /** Shown in errors instead of the command itself. */
  readonly describe?: string;
  readonly secrets?: readonly string[];
}

/** How a streamed command ended: its exit code, or the signal that killed it (code null). */
export interface StreamResult {
  readonly code: number | null;
  readonly signal?: string;
}

/**
 * Runs `command` on the host with its output handed over as it arrives (logs -f, an interactive
 * exec), under the same connection pool, channel gate and stats as `exec`; no host timeout (a
 * shell or a follow may last hours). Rejects only when the command cannot start (no channel came
 * free within `channelWaitMs` included) or the connection drops; stopped before it could start,
 * it resolves with code null and ran nothing.
 */
export async function execStream(conn: SshConnection, command: string, opts: StreamOptions): Promise<StreamResult> {
  const c = (await client(conn)) as import("ssh2").Client;
  const key = connectionKey(conn);
  const secrets = opts.secrets ?? [];
  const describe = opts.describe ?? command;
  const waitMs = opts.channelWaitMs ?? DEFAULT_STREAM_CHANNEL_WAIT_MS;
  const free = await gateOf(key).acquire(Date.now() + waitMs, opts.signal);
  if (!free) {
    if (opts.signal?.aborted) return { code: null };
    throw remoteStepFailed(key, opts.step, describe, null, "", "", channelsBusy(waitMs), secrets, STEP_TIMEOUT_CODE);
  }
  const stats = pool().stats;
  stats.commands[key] = (stats.commands[key] ?? 0) + 1;
  const started = Date.now();
  const running = new Promise<StreamResult>((resolve, reject) => {
    const onReady = (err: Error | undefined, stream: import("ssh2").ClientChannel) => {
      if (err) {
        reject(remoteStepFailed(key, opts.step, describe, null, "", "", `could not start: ${err.message}`, secrets));
        return;
      }
      let closer: NodeJS.Timeout | undefined;
      const stop = () => {
        opts.stdin?.unpipe(stream);
        stream.end();
        closer = setTimeout(() => stream.close(), opts.closeAfterMs ?? 5_000);
      };
      stream.on("data", (d: Buffer) => opts.onStdout(d));
      stream.stderr.on("data", (d: Buffer) => opts.onStderr(d));
      stream.on("close", (code: number | null | undefined, signal?: string) => {
        if (closer) clearTimeout(closer);
        opts.signal?.removeEventListener("abort", stop);
        opts.stdin?.unpipe(stream);
        traceEvent("ssh-exec", { host: key, step: opts.step, start: started, end: Date.now() });
        if ((code === null || code === undefined) && !signal && !opts.signal?.aborted) {
          reject(
            remoteStepFailed(
              key,
              opts.step,
              describe,
              null,
              "",
              "",
              "the connection closed before the command finished",
              secrets,
            ),
          );
          return;
        }
        resolve(signal ? { code: null, signal } : { code: code ?? null });
      });
      opts.onStart?.({ resize: (rows, cols) => stream.setWindow(rows, cols, 0, 0) });
      if (opts.signal?.aborted) stop();
      else opts.signal?.addEventListener("abort", stop, { once: true });
      if (opts.stdin) opts.stdin.pipe(stream);
      else if (!opts.signal) stream.end();
    };
    if (opts.pty) c.exec(command, { pty: { ...opts.pty, width: 0, height: 0 } }, onReady);
    else c.exec(command, onReady);
  });
  return running.finally(free);
}

export function transportStats(): TransportStats {
  return pool().stats;
}

/** Closes every pooled connection (tests, and the end of a CLI run). */
export async function closeAll(): Promise<void> {
  const p = pool();
  const entries = Object.values(p.entries);
  p.entries = {};
  await Promise.all(
    entries.map((e) =>
      e.client.then(
        (c) => (c as import("ssh2").Client).end(),
        () => undefined,
      ),
    ),
  );
}
