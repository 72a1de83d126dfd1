/**
 * The canary: a sandbox on web3 (/srv/fleet-canary, ports 18850–18869) where the scripts fleet's
 * builders produce for hostile values are run for real, through fleet's own SSH transport, with
 * helpers to read results back byte-exact (base64, NUL-separated) and to sweep for the marker
 * an injected payload would create.
 */
import { connectionFor } from "../../support/fleet";
import { runScript, type ExecResult } from "../../../transport/ssh";
import type { SshConnection } from "../../../transport/connection";
import { CANARY_DIR, MARKER_NAME } from "./hostile-arbitraries";

export const CANARY_HOST = "web3";
/** Unique per run: unit names and directories never collide with a previous run's leftovers. */
export const RUN = `${Date.now().toString(36)}${process.pid.toString(36)}`;
export const PORTS = { http: 18850, pipeline: 18851, pg: 18860 } as const;

let connection: SshConnection | undefined;
function conn(): SshConnection {
  return (connection ??= connectionFor(CANARY_HOST));
}

/** Runs a script on the canary as root (on stdin, like every fleet script); any exit status. */
export function onCanary(script: string, step: string, timeoutMs = 120_000): Promise<ExecResult> {
  return runScript(conn(), script, { step, timeoutMs }, false);
}

/** Like onCanary, but a non-zero exit fails with the output's tail. */
export async function onCanaryOk(script: string, step: string, timeoutMs = 120_000): Promise<ExecResult> {
  const r = await onCanary(script, step, timeoutMs);
  if (r.code !== 0)
    throw new Error(`${step}: exit ${r.code}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`);
  return r;
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString("base64");

/** Writes `content` to `path` on the host without going through commands/quote.ts. */
export function putFile(path: string, content: string | Buffer, mode = "644"): string {
  return `printf '%s' ${b64(content)} | base64 -d > ${b64Path(path)} && chmod ${mode} ${b64Path(path)}`;
}
function b64Path(path: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(path)) throw new Error(`test paths stay plain: ${path}`);
  return path;
}

/** Splits a base64 blob of NUL-terminated strings. */
export function nulList(blob: string): string[] {
  const text = Buffer.from(blob.trim(), "base64").toString("utf8");
  const parts = text.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** `cmdline` as the kernel has it (NUL-separated argv). */
export function argvOf(blob: string): string[] {
  return nulList(blob);
}

/** `KEY=value` NUL-separated environment → map. */
export function envOf(blob: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of nulList(blob)) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/** Lines of `name b64` printed by `dumpDir`. */
export function parseDump(stdout: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^file=(\S+) (\S*)$/.exec(line);
    if (m) files[m[1]!] = m[2]!;
  }
  return files;
}

/** Prints every regular file directly in `dir` as `file=<name> <base64>` (names are plain). */
export function dumpDir(dir: string): string {
  return `for f in ${b64Path(dir)}/*; do [ -f "$f" ] && echo "file=\${f##*/} $(base64 -w0 < "$f")"; done; true`;
}

/**
 * Where a payload that ran would have left its marker: the sandbox, homes, temp dirs, cwd
 * candidates. `touch` makes an empty regular file named exactly so; generated data may hold
 * the name too, but as a directory or a non-empty file (each data file holds its own path).
 */
export const SWEEP = `find ${CANARY_DIR} /tmp /var/tmp /root /home /etc/systemd/system /run/systemd/system / -maxdepth 12 -xdev -name '${MARKER_NAME}' -type f -empty -print 2>/dev/null | sort -u`;

/**
 * Stops what the canary runs: the helper servers (by the pids they recorded, and only if that
 * pid is still one of them) and every fleet-canary unit, including an interrupted run's.
 */
export const STOP_CANARY = [
  `for p in ${CANARY_DIR}/*.pid; do [ -f "$p" ] || continue; pid=$(cat "$p")`,
  `  if tr '\\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qE 'recording_http.py|fake_pg.py'; then kill "$pid"; fi`,
  `done`,
  `for f in /etc/systemd/system/fleet-canary-*.service /run/systemd/system/fleet-canary-*.service; do`,
  `  [ -f "$f" ] || continue; u=\${f##*/}; systemctl disable --now "$u" >/dev/null 2>&1 || true; rm -f "$f"; reload=1`,
  `done`,
  `[ -z "\${reload:-}" ] || systemctl daemon-reload`,
].join("\n");

/** Any marker file on the canary; [] means nothing was injected. */
export async function sweep(): Promise<string[]> {
  const r = await onCanary(`${SWEEP}\ntrue\n`, "sweep for injection markers");
  return r.stdout.split("\n").filter(Boolean);
}

/**
 * A recording HTTP server: answers 200 with `ok` to every GET and appends the raw request
 * target (base64) to `log`; the health-URL target reads it back.
 */
export const RECORDING_HTTP = `
import base64, http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "ab") as f:
            f.write(base64.b64encode(self.path.encode("iso-8859-1")) + b"\\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
`;

/**
 * The pipeline's service: dumps its own environment, serves a body holding the configured
 * bodyContains on every path, and the release's REVISION as {"commit": …} on /version.
 */
export const PIPELINE_APP = `
import base64, http.server, json, os, sys
port, out = int(sys.argv[1]), sys.argv[2]
with open(os.path.join(out, "service.env"), "wb") as f:
    f.write(b"".join(k + b"=" + v + b"\\0" for k, v in os.environb.items()))
body = open("body.txt", "rb").read()
commit = open("REVISION", "rb").read()[:-1].decode("utf-8", "surrogateescape")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(out, "requests"), "ab") as f:
            f.write(base64.b64encode(self.path.encode("iso-8859-1")) + b"\\n")
        data = json.dumps({"commit": commit}).encode() if self.path.startswith("/version") else body
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
`;

/**
 * A fake PostgreSQL server: reads the startup packet, asks for a cleartext password, records
 * user, database and password (base64, one JSON line per connection) and refuses the login. So
 * what libpq sent, i.e. what fleet's PGPASSFILE and environment said, is read back byte-exact.
 */
export const FAKE_POSTGRES = `
import base64, json, socket, struct, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
def recv(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
def serve(c):
    try:
        while True:
            n, code = struct.unpack("!ii", recv(c, 8))
            body = recv(c, n - 8)
            if code in (80877103, 80877104):
                c.sendall(b"N"); continue
            break
        parts = body.split(b"\\0")
        params = dict(zip(parts[0::2], parts[1::2]))
        c.sendall(b"R" + struct.pack("!ii", 8, 3))
        t = recv(c, 1); n = struct.unpack("!i", recv(c, 4))[0]; pw = recv(c, n - 4)[:-1]
        rec = {k: base64.b64encode(v).decode() for k, v in (("user", params.get(b"user", b"")), ("database", params.get(b"database", b"")), ("password", pw))}
        with open(log, "a") as f: f.write(json.dumps(rec) + "\\n")
        msg = b"SFATAL\\0C28P01\\0Mcanary refuses every login\\0\\0"
        c.sendall(b"E" + struct.pack("!i", len(msg) + 4) + msg)
    except Exception:
        pass
    finally:
        c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", port)); s.listen(64)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/**
 * A PostgreSQL 15 custom-format archive (pg_dump -Fc, archive version 1.14) with no entries,
 * built by hand so that pg_restore opens it and connects without a real database anywhere.
 */
export function emptyPgArchive(): Buffer {
  const int = (n: number) => {
    const b = Buffer.alloc(5);
    b[0] = n < 0 ? 1 : 0;
    b.writeUInt32LE(Math.abs(n), 1);
    return b;
  };
  const str = (s: string) => Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([
    Buffer.from("PGDMP"),
    Buffer.from([1, 14, 0, 4, 8, 1]), // version 1.14.0, int size 4, offset size 8, custom format
    int(0), // no compression
    ...[0, 0, 0, 1, 0, 126, 0].map(int), // creation time (struct tm)
    str("canary"),
    str("15.0"),
    str("15.18"),
    int(0), // table of contents: no entries
  ]);
}
