/**
 * The secrets sweep's tools (issue #10): the forms a seeded secret could take on its way out
 * (raw, JSON-escaped, URL-encoded, shell- or systemd-quoted, base64 at every alignment), a
 * search that names where each hit is, a process sampler that runs on a server during a run,
 * and collectors for what a server holds afterwards (files with their modes, the journal).
 *
 * Nothing here ever sends a secret to a server: samples and files come back to the test
 * process and are searched here, so a hit can only come from what fleet put there.
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import { shq, systemdEnvValue } from "../../../commands/quote";

export interface Form {
  readonly form: string;
  readonly bytes: Buffer;
}

export interface Needle {
  /** What the secret is ("SSH private key", "DB password"…), for the failure message. */
  readonly name: string;
  readonly forms: readonly Form[];
}

/** Shorter forms could occur by chance; every seeded secret is far longer. */
const MIN_FORM = 8;

/** base64 (and base64url) of `value` inside a longer base64 stream, at each of the 3 byte alignments. */
export function base64Forms(value: Buffer): Form[] {
  const forms: Form[] = [];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), value]).toString("base64");
    // Only the characters that depend on `value` alone: not the padding's, not the tail's.
    const text = b64.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + value.length)) / 6));
    if (text.length < MIN_FORM) continue;
    forms.push({ form: `base64@${k}`, bytes: Buffer.from(text) });
    const url = text.replace(/\+/g, "-").replace(/\//g, "_");
    if (url !== text) forms.push({ form: `base64url@${k}`, bytes: Buffer.from(url) });
  }
  return forms;
}

/** Percent-encoding as Python's `quote(s, safe="")` and most URL builders do it: `!'()*` too. */
export function strictUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Every encoding of `value` that fleet (or a tool it runs) could plausibly write out. */
export function formsOf(value: string): Form[] {
  const candidates: [string, string][] = [
    ["raw", value],
    ["json-escaped", JSON.stringify(value).slice(1, -1)],
    ["json-escaped twice", JSON.stringify(JSON.stringify(value).slice(1, -1)).slice(1, -1)],
    ["url-encoded", encodeURIComponent(value)],
    ["url-encoded (RFC 3986)", strictUrlEncode(value)],
    ["url-encoded (form)", new URLSearchParams({ x: value }).toString().slice(2)],
    ["shell-quoted", shq(value)],
    ["systemd-quoted", systemdEnvValue(value).slice(1, -1)],
  ];
  const seen = new Set<string>();
  const forms: Form[] = [];
  for (const [form, text] of candidates) {
    if (text.length < MIN_FORM || seen.has(text)) continue;
    seen.add(text);
    forms.push({ form, bytes: Buffer.from(text) });
  }
  return [...forms, ...base64Forms(Buffer.from(value))];
}

/** A secret string: all its forms, plus those of its random core (any encoding keeps that). */
export function needle(name: string, value: string, core?: string): Needle {
  const forms = formsOf(value);
  if (core) forms.push(...formsOf(core).map((f) => ({ form: `core ${f.form}`, bytes: f.bytes })));
  return { name, forms: dedupe(forms) };
}

function dedupe(forms: Form[]): Form[] {
  const seen = new Set<string>();
  return forms.filter((f) => {
    const k = f.bytes.toString("latin1");
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * An OpenSSH private key as needles: each body line but the first (which is the same for every
 * unencrypted ed25519 key), and the 32-byte private seed itself in hex and base64, so the key
 * is found even re-encoded (PEM, JWK…).
 */
export function privateKeyNeedle(name: string, pem: string): Needle {
  const body = pem
    .trim()
    .split("\n")
    .filter((l) => !l.startsWith("-----"));
  const forms: Form[] = [];
  body.slice(1).forEach((line, i) => {
    if (line.length >= 16) forms.push({ form: `line ${i + 2}`, bytes: Buffer.from(line) });
  });
  const seed = ed25519Seed(Buffer.from(body.join(""), "base64"));
  forms.push({ form: "seed hex", bytes: Buffer.from(seed.toString("hex")) });
  forms.push(...base64Forms(seed).map((f) => ({ form: `seed ${f.form}`, bytes: f.bytes })));
  return { name, forms: dedupe(forms) };
}

/** The private seed of an unencrypted "openssh-key-v1" ed25519 key (OpenSSH's PROTOCOL.key). */
function ed25519Seed(blob: Buffer): Buffer {
  const magic = "openssh-key-v1\0";
  if (blob.toString("latin1", 0, magic.length) !== magic) throw new Error("not an openssh-key-v1 private key");
  /** Reads length-prefixed strings from `buf`, starting at `at`. */
  const reader = (buf: Buffer, at: number) => ({
    skip(n: number) {
      at += n;
    },
    string(): Buffer {
      const n = buf.readUInt32BE(at);
      const s = buf.subarray(at + 4, at + 4 + n);
      at += 4 + n;
      return s;
    },
  });
  const outer = reader(blob, magic.length);
  if (outer.string().toString() !== "none") throw new Error("the key is encrypted");
  outer.string(); // kdf name
  outer.string(); // kdf options
  outer.skip(4); // number of keys (1)
  outer.string(); // public key blob
  const inner = reader(outer.string(), 8); // after the two check words
  inner.string(); // "ssh-ed25519"
  inner.string(); // public key (32 bytes)
  return Buffer.from(inner.string().subarray(0, 32)); // seed (32) + public key (32)
}

export interface Hit {
  readonly needle: string;
  readonly form: string;
  readonly where: string;
}

/** Every needle form found in `data`, named by `where`. */
export function search(needles: readonly Needle[], where: string, data: Buffer | string): Hit[] {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  const hits: Hit[] = [];
  for (const n of needles) {
    for (const f of n.forms) {
      if (buf.includes(f.bytes)) hits.push({ needle: n.name, form: f.form, where });
    }
  }
  return hits;
}

/** One line per hit, for an assertion message that says where each secret was found. */
export function describeHits(hits: readonly Hit[]): string {
  return hits.map((h) => `  ${h.needle} (${h.form}) in ${h.where}`).join("\n");
}

// ---------------------------------------------------------------------------------------------
// On the servers
// ---------------------------------------------------------------------------------------------

/** Runs `docker exec <container> args…` and returns stdout as bytes; rejects on a non-zero exit. */
export function dockerExec(container: string, args: readonly string[], input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", ["exec", "-i", container, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(
            new Error(`docker exec ${container} ${args.join(" ")}: exit ${code}: ${Buffer.concat(err).toString()}`),
          ),
    );
    child.stdin.end(input ?? "");
  });
}

/**
 * Samples a server every ~50 ms: every process's argv (read from /proc, which is what
 * `ps -eo args` prints) plus `ps -ww -eo args` itself (unlimited width: piped, ps cuts at 80 columns), and its environment, except for processes
 * that carry the service's own environment (FLEET_RELEASE=: the app and its migration get the
 * secret env by design); and every file under the watched roots, so that a secret file that
 * exists only for a moment (a pgpass, an env file being replaced) is seen with its mode. Prints
 * each distinct line (each new version of a file) once, and counts the samples.
 */
const SAMPLER = String.raw`
import base64, json, os, stat, subprocess, sys, time
stop, until = sys.argv[1], time.time() + float(sys.argv[2])
roots = [r for r in sys.argv[3].split(":") if r]
seen, versions, out, n, appenv = set(), set(), sys.stdout.buffer, 0, 0
def emit(kind, data):
    line = kind + b" " + data.replace(b"\0", b" ").replace(b"\n", b"\\n")
    if line not in seen:
        seen.add(line)
        out.write(line + b"\n")
while time.time() < until and not os.path.exists(stop):
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == str(os.getpid()):
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                emit(b"args", f.read())
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read()
            if b"FLEET_RELEASE=" in env:
                appenv += 1
            else:
                emit(b"environ", env)
        except OSError:
            pass
    for line in subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True).stdout.splitlines():
        emit(b"ps", line)
    for root in roots:
        for d, dirs, files in os.walk(root):
            for name in files:
                p = os.path.join(d, name)
                try:
                    st = os.lstat(p)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > 1024 * 1024:
                        continue
                    key = (p, st.st_mtime_ns, st.st_size, st.st_mode)
                    if key in versions:
                        continue
                    versions.add(key)
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                mode = "%o" % stat.S_IMODE(st.st_mode)
                out.write(b"file " + json.dumps({"path": p, "mode": mode, "b64": base64.b64encode(data).decode()}).encode() + b"\n")
    n += 1
    out.flush()
    time.sleep(0.05)
out.write(b"fleet-sampler-samples %d appenv %d\n" % (n, appenv))
`;

export interface Samples {
  readonly server: string;
  /** The process lines (argv, `ps`, environments), one per distinct line. */
  readonly processes: Buffer;
  /** Every version of every file seen under the watched roots. */
  readonly files: RemoteFile[];
  readonly samples: number;
  /** Process samples that carried the service's environment (not searched, by design). */
  readonly appEnvSeen: number;
}

export class ProcessSampler {
  private readonly out: Buffer[] = [];
  private readonly done: Promise<void>;
  private readonly child: ChildProcess;

  private constructor(
    readonly server: string,
    /** undefined: this machine (the deploying one), else a test server's container. */
    private readonly container: string | undefined,
    private readonly stopFile: string,
    watch: readonly string[],
  ) {
    // argv holds no secret: the sampler is generic and its stop file is named by a random tag.
    const args = ["-u", "-c", SAMPLER, stopFile, "900", watch.join(":")];
    this.child = container
      ? spawn("docker", ["exec", container, "python3", ...args], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn("python3", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => this.out.push(d));
    this.done = new Promise((resolve, reject) => {
      this.child.on("error", reject);
      this.child.on("close", () => resolve());
    });
  }

  static start(
    server: string,
    container: string | undefined,
    tag: string,
    watch: readonly string[] = [],
  ): ProcessSampler {
    return new ProcessSampler(server, container, `/tmp/fleet-secrets-sampler-${tag}.stop`, watch);
  }

  /** Stops the loop on the server (it exits by itself; killing docker exec would not stop it). */
  async stop(): Promise<Samples> {
    if (this.container) await dockerExec(this.container, ["touch", this.stopFile]);
    else fs.writeFileSync(this.stopFile, "");
    await this.done;
    if (this.container) await dockerExec(this.container, ["rm", "-f", this.stopFile]);
    else fs.rmSync(this.stopFile, { force: true });
    const lines = Buffer.concat(this.out).toString("latin1").split("\n");
    const files: RemoteFile[] = [];
    const processes: string[] = [];
    let samples = 0;
    let appEnvSeen = 0;
    for (const line of lines) {
      const m = /^fleet-sampler-samples (\d+) appenv (\d+)$/.exec(line);
      if (m) {
        samples = Number(m[1]);
        appEnvSeen = Number(m[2]);
      } else if (line.startsWith("file ")) {
        const j = JSON.parse(line.slice(5)) as { path: string; mode: string; b64: string };
        files.push({ path: j.path, mode: j.mode, content: Buffer.from(j.b64, "base64") });
      } else if (line) processes.push(line);
    }
    return { server: this.server, processes: Buffer.from(processes.join("\n"), "latin1"), files, samples, appEnvSeen };
  }
}

/** Lists every regular file under `roots` (no symlinks followed) with its mode and content. */
const COLLECTOR = String.raw`
import base64, json, os, stat, sys
skip = set(sys.argv[1].split(":")) if sys.argv[1] else set()
for root in sys.argv[2:]:
    for d, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
        for name in files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or st.st_size > 64 * 1024 * 1024:
                    continue
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            print(json.dumps({"path": p, "mode": "%o" % stat.S_IMODE(st.st_mode), "b64": base64.b64encode(data).decode()}))
`;

export interface RemoteFile {
  readonly path: string;
  /** Octal permission bits, e.g. "600". */
  readonly mode: string;
  readonly content: Buffer;
}

export async function collectFiles(
  container: string,
  roots: readonly string[],
  skipDirs: readonly string[] = [],
): Promise<RemoteFile[]> {
  const out = await dockerExec(container, ["python3", "-c", COLLECTOR, skipDirs.join(":"), ...roots]);
  return out
    .toString("utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const j = JSON.parse(line) as { path: string; mode: string; b64: string };
      return { path: j.path, mode: j.mode, content: Buffer.from(j.b64, "base64") };
    });
}

/**
 * The journal since `sinceEpochS` as one text per entry (every field's value), leaving out what
 * `excludeUnit`'s own process wrote to stdout: the test app prints its secrets there on purpose,
 * which is the app's doing; what systemd and fleet log about the unit stays in.
 */
export async function journalEntries(container: string, sinceEpochS: number, excludeUnit?: string): Promise<string[]> {
  const out = await dockerExec(container, ["journalctl", "--no-pager", "-o", "json", "--since", `@${sinceEpochS}`]);
  const entries: string[] = [];
  for (const line of out.toString("utf8").split("\n")) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as Record<string, unknown>;
    if (excludeUnit && e["_SYSTEMD_UNIT"] === `${excludeUnit}.service` && e["_TRANSPORT"] === "stdout") continue;
    const value = (v: unknown): string =>
      Array.isArray(v) && v.every((x) => typeof x === "number")
        ? Buffer.from(v as number[]).toString("latin1")
        : Array.isArray(v)
          ? v.map(value).join("\n")
          : String(v);
    entries.push(
      Object.entries(e)
        .map(([k, v]) => `${k}=${value(v)}`)
        .join("\n"),
    );
  }
  return entries;
}

/** A SCRAM-SHA-256 verifier, so a role gets its password without the password reaching the server. */
export function scramVerifier(password: string): string {
  const crypto = require("crypto") as typeof import("crypto");
  const salt = crypto.randomBytes(16);
  const iterations = 4096;
  const salted = crypto.pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const hmac = (key: Buffer, text: string) => crypto.createHmac("sha256", key).update(text).digest();
  const storedKey = crypto.createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
