import { strict as assert } from "assert";
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { parseFleetConfig } from "../../config/schema";
import { TOKEN_COOKIE, TOKEN_ENV } from "../../dashboard/auth";
import { Dashboard } from "../../dashboard/server";

/**
 * `npm run dashboard -- --listen` off loopback (security review: the token went over plain HTTP):
 * refused without --tls-cert/--tls-key before anything listens, and HTTPS with them. Test traffic
 * stays on loopback: the refused address (0.0.0.0) is never bound, and HTTPS is served on
 * 127.0.0.2 with a self-signed certificate made here.
 */
const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const PORTS = { refused: 18986, tls: 18987 };
const TLS_HOST = "127.0.0.2";

interface Run {
  readonly child: ChildProcess;
  readonly done: Promise<{ status: number; stdout: string; stderr: string }>;
  readonly stdout: () => string;
}

/** scripts/dashboard.ts as `npm run dashboard` runs it. */
function dashboardScript(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(TSX, [path.join(ROOT, "scripts", "dashboard.ts"), ...args], { env });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const done = new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr })),
  );
  return { child, done, stdout: () => stdout };
}

/** Whether anything accepts a TCP connection on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

function get(
  url: string,
  ca: Buffer,
  headers: Record<string, string> = {},
  method = "GET",
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, headers, method }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("dashboard: off loopback only over TLS (scripts/dashboard.ts, dashboard/server.ts)", function () {
  this.timeout(60_000);
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-dashboard-tls-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("--listen 0.0.0.0 without --tls-cert/--tls-key: refused as a usage error (6) naming the flags; nothing listened", async () => {
    assert.equal(await listening(PORTS.refused), false, "the port is free before");
    // `tmp` holds no project: even a script that failed to refuse would stop at Pulumi.yaml before
    // it listened, so this test can never bind 0.0.0.0. The refusal must come first, in its words.
    const r = await dashboardScript(["--listen", `0.0.0.0:${PORTS.refused}`, "--cwd", tmp]).done;
    assert.equal(r.status, 6, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `dashboard: --listen 0.0.0.0:${PORTS.refused} is off loopback, where plain HTTP would send the token and its ` +
        "cookie in clear: give --tls-cert <file> --tls-key <file> (a PEM certificate and its key) to serve HTTPS, or " +
        "listen on loopback (127.0.0.1, [::1]) and reach it through an SSH tunnel (ssh -L 8377:127.0.0.1:8377 <host>) " +
        "(see npm run dashboard -- --help)",
    );
    assert.equal(r.stdout, "", "no URL was printed");
    assert.equal(await listening(PORTS.refused), false, "nothing listens after");

    const one = await dashboardScript(["--listen", `0.0.0.0:${PORTS.refused}`, "--tls-cert", "x.pem", "--cwd", tmp])
      .done;
    assert.equal(one.status, 6, one.stderr);
    assert.match(one.stderr, /^dashboard: give both --tls-cert <file> and --tls-key <file>, not only --tls-cert /);

    const missing = await dashboardScript([
      ...["--listen", `0.0.0.0:${PORTS.refused}`, "--cwd", tmp],
      ...["--tls-cert", path.join(tmp, "none.pem"), "--tls-key", path.join(tmp, "none.key")],
    ]).done;
    assert.equal(missing.status, 6, missing.stderr);
    assert.match(missing.stderr, /^dashboard: --tls-cert \S+none\.pem --tls-key \S+none\.key: ENOENT/);
    assert.equal(await listening(PORTS.refused), false);
  });

  it("the server itself refuses plain HTTP off loopback, before it listens", () => {
    assert.throws(
      () =>
        new Dashboard({
          listen: { host: "0.0.0.0", port: PORTS.refused, tokenRequired: true },
          token: "t",
          where: { stack: "t", project: "fleet", backendDir: undefined },
          cwd: "/nonexistent",
          env: {},
          loadConfig: () => assert.fail("refused before the config is read"),
        }),
      /^Error: dashboard: refused: --listen 0\.0\.0\.0:18986 is off loopback, .* give --tls-cert <file> --tls-key <file>/,
    );
  });

  it("with a certificate and its key it serves HTTPS: the token as a bearer or a Secure cookie, POSTs from its https origin", async () => {
    const cert = path.join(tmp, "cert.pem");
    const key = path.join(tmp, "key.pem");
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        ...["-subj", "/CN=localhost", "-addext", `subjectAltName=IP:${TLS_HOST},DNS:localhost`, "-days", "1"],
        ...["-keyout", key, "-out", cert],
      ],
      { stdio: "ignore" },
    );
    // A project whose `pulumi` fails as without the passphrase: the script reads Pulumi.t.yaml.
    const project = path.join(tmp, "project");
    const bin = path.join(project, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\necho "error: passphrase must be set" >&2\nexit 255\n`, {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: fleet-tls\nruntime: nodejs\n");
    fs.writeFileSync(
      path.join(project, "Pulumi.t.yaml"),
      JSON.stringify({ config: { "fleet:hosts": {}, "fleet:services": {} } }),
    );
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env["PATH"]}`,
      FLEET_PULUMI_BIN_DIR: bin,
      [TOKEN_ENV]: "tls-tok-123",
    };
    const run = dashboardScript(
      [
        ...["--stack", "t", "--cwd", project, "--listen", `${TLS_HOST}:${PORTS.tls}`],
        ...["--tls-cert", cert, "--tls-key", key],
      ],
      env,
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setInterval(() => {
          const m = /^dashboard: stack t at (\S+) /m.exec(run.stdout());
          if (m) {
            clearInterval(timer);
            resolve(m[1]!);
          }
        }, 50);
        void run.done.then((r) => {
          clearInterval(timer);
          reject(new Error(`the dashboard exited ${r.status}:\n${r.stdout}\n${r.stderr}`));
        });
      });
      assert.equal(url, `https://${TLS_HOST}:${PORTS.tls}/`);
      const ca = fs.readFileSync(cert);

      assert.equal((await get(url, ca)).status, 401, "the token is still required");
      assert.equal((await get(url, ca, { Authorization: "Bearer tls-tok-123" })).status, 200);
      const first = await get(`${url}history?token=tls-tok-123`, ca);
      assert.equal(first.status, 303);
      assert.equal(
        first.headers["set-cookie"]?.[0],
        `${TOKEN_COOKIE}=tls-tok-123; HttpOnly; SameSite=Strict; Path=/; Secure`,
      );
      const cookie = { Cookie: `${TOKEN_COOKIE}=tls-tok-123` };
      const actions = await get(`${url}actions`, ca, cookie);
      assert.equal(actions.status, 200);
      const csrf = /name="csrf" value="([^"]+)"/.exec(actions.text)?.[1];
      assert.ok(csrf, "the page carries its CSRF token");
      const post = (origin: string) =>
        get(
          `${url}actions`,
          ca,
          { ...cookie, Origin: origin, "Content-Type": "application/x-www-form-urlencoded" },
          "POST",
          new URLSearchParams({ action: "deploy", csrf }).toString(),
        );
      const own = await post(`https://${TLS_HOST}:${PORTS.tls}`);
      assert.equal(own.status, 200, own.text);
      assert.match(own.text, /name="confirm" value="yes"/, "its own origin gets the confirmation page");
      assert.equal((await post(`http://${TLS_HOST}:${PORTS.tls}`)).status, 403, "http://… is another origin");

      // No plain HTTP on that port: the request gets no HTTP answer.
      const plain = await new Promise<string>((resolve) =>
        http
          .get(`http://${TLS_HOST}:${PORTS.tls}/`, (res) => resolve(`HTTP ${res.statusCode}`))
          .on("error", (err) => resolve(`error: ${err.message}`)),
      );
      assert.match(plain, /^error: /, plain);
    } finally {
      run.child.kill("SIGTERM");
      const r = await run.done;
      assert.equal(r.status, 0, r.stderr);
    }
  });

  it("on loopback, without a certificate, it stays plain HTTP", async () => {
    const d = new Dashboard({
      listen: { host: "127.0.0.1", port: PORTS.tls + 1, tokenRequired: false },
      token: "",
      where: { stack: "t", project: "fleet", backendDir: undefined },
      cwd: "/nonexistent",
      env: {},
      loadConfig: () => ({ cfg: parseFleetConfig({ hosts: {}, services: {} }), secrets: [], unreadableHosts: {} }),
    });
    try {
      assert.equal(await d.listen(), `http://127.0.0.1:${PORTS.tls + 1}/`);
    } finally {
      await d.close();
    }
  });
});
