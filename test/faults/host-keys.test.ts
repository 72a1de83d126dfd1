import { strict as assert } from "assert";
import { generateEd25519 } from "../../transport/keys";
import { spawn } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { utils } from "ssh2";
import { shippedProvider } from "../../providers/ship";
import { bootstrapScript } from "../../commands/host";
import { cloudInitUserData } from "../../commands/cloud-init";
import { bootstrapSpec } from "../../components/host";
import { connectionFor as configConnectionFor } from "../../config/connections";
import { hostSchema, type FleetConfig } from "../../config/schema";
import { hostKeyFromKnownHosts } from "../../transport/known-hosts";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun, testHost } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderError, ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");
const hostBootstrapProvider = shippedProvider("hostBootstrap");
const hostKeyProvider = shippedProvider("hostKey");

/**
 * Host keys (issue #10), through Pulumi's provider host. fleet never trusts a host key on first
 * use: every connection pins one (hostKey, or a known_hosts entry read on the deploying side),
 * and a Hetzner server gets a key fleet made before its first boot (HostKey + cloud-init). So a
 * changed key is refused, saying what to do; no key at all is refused; and an impostor never
 * even sees a login attempt (the handshake stops at its host key).
 *
 * The shared servers' real keys are never touched: "rebuilt" and impostor servers are throwaway
 * sshds inside web3's container (host network: 127.0.0.13, ports 2290–2298, each with a fresh
 * host key and a DEBUG log), stopped by their own pids at the end. A service deployed through
 * one answers on 127.0.0.13:2299.
 */

const TAG = randomBytes(3).toString("hex");
const ROOT = "/srv/fleet-hostkeys";
// web3's address and container: read from the inventory in the first hook, once the servers are up.
let ADDRESS = "";
let CONTAINER = "";
const APP_PORT = 2299;
const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const MISMATCH_ADVICE = /If the server was rebuilt on purpose, pin its new key \(hostKey\); otherwise do not connect\./;

type KeyPair = { private: string; public: string };
const ed25519 = (): KeyPair => generateEd25519(`fleet-hk-${TAG}`);

/** "ssh-ed25519 AAAA…" without the comment: how fleet pins a key. */
function pin(pair: KeyPair): string {
  return pair.public.trim().split(/\s+/).slice(0, 2).join(" ");
}

/** SHA256 fingerprint as OpenSSH prints it. */
function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1]!, "base64");
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

function docker(args: string[], input = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`docker ${args.join(" ")}: exit ${code}: ${err}`)),
    );
    child.stdin.end(input);
  });
}

async function sh(hostName: string, command: string): Promise<string> {
  const r = await sshRun(hostName, command);
  if (r.code !== 0) throw new Error(`ssh ${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Whether something accepts TCP connections on ADDRESS:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ADDRESS, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * A throwaway sshd in web3's container on ADDRESS:port with its own host key: a server that is
 * "rebuilt" (stop, start with another key) or an impostor at the same address. Root logs in with
 * the test key (web3's authorized_keys). LogLevel DEBUG1 records every authentication attempt.
 */
class ThrowawaySshd {
  private constructor(
    readonly port: number,
    readonly hostKey: string,
    private readonly dir: string,
  ) {}

  static started: ThrowawaySshd[] = [];

  static async start(port: number, hostKeyPem: string): Promise<ThrowawaySshd> {
    assert.ok(port >= 2290 && port <= 2298, "the throwaway sshds use ports 2290–2298");
    assert.equal(await listening(port), false, `${ADDRESS}:${port} is free`);
    const dir = `/tmp/fleet-hk-${TAG}-${port}`;
    const parsed = utils.parseKey(hostKeyPem);
    if (parsed instanceof Error) throw parsed;
    const pub = `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
    const config = [
      `Port ${port}`,
      `ListenAddress ${ADDRESS}`,
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/pid`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "LogLevel DEBUG1",
      "MaxStartups 100:30:200",
      "MaxSessions 50",
      "",
    ].join("\n");
    await docker(
      ["exec", "-i", CONTAINER, "sh", "-c", `set -e; rm -rf ${dir}; umask 077; mkdir -p ${dir}; cat > ${dir}/host_key`],
      hostKeyPem.endsWith("\n") ? hostKeyPem : `${hostKeyPem}\n`,
    );
    await docker(["exec", "-i", CONTAINER, "sh", "-c", `cat > ${dir}/sshd_config`], config);
    await docker([
      "exec",
      CONTAINER,
      "sh",
      "-c",
      `/usr/sbin/sshd -t -f ${dir}/sshd_config && /usr/sbin/sshd -f ${dir}/sshd_config -E ${dir}/log`,
    ]);
    const sshd = new ThrowawaySshd(port, pub, dir);
    ThrowawaySshd.started.push(sshd);
    for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await listening(port), `the throwaway sshd answers on ${ADDRESS}:${port}`);
    return sshd;
  }

  /** Its log so far: "userauth-request" lines are login attempts, "Accepted" ones logins. */
  log(): Promise<string> {
    return docker(["exec", CONTAINER, "cat", `${this.dir}/log`]).catch(() => "");
  }

  /**
   * Stops it: the listener and every process it started (the sessions of pooled connections
   * included, as a rebuilt server would), by their pids; waits until the port is free.
   */
  async stop(): Promise<void> {
    const script =
      `pid=$(cat ${this.dir}/pid 2>/dev/null) || exit 0; ` +
      `desc() { for c in $(ps -o pid= --ppid "$1"); do echo "$c"; desc "$c"; done; }; ` +
      `kill $pid $(desc $pid) 2>/dev/null; ` +
      `for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; rm -f ${this.dir}/pid`;
    await docker(["exec", CONTAINER, "sh", "-c", script]);
    for (let i = 0; i < 50 && (await listening(this.port)); i++) await new Promise((r) => setTimeout(r, 100));
    ThrowawaySshd.started = ThrowawaySshd.started.filter((s) => s !== this);
    // Let the deploying side see its connections close, as it would when a server goes away.
    await new Promise((r) => setTimeout(r, 300));
  }

  async remove(): Promise<void> {
    await docker(["exec", CONTAINER, "rm", "-rf", this.dir]);
  }
}

/** How the test key reaches a throwaway sshd, pinning `hostKey`. */
function throwawayConnection(port: number, hostKey: string): SshConnection {
  return { ...connectionFor("web3"), port, hostKey };
}

/** A SQLite backup set on web3, reached through `connection`: something real to do on the host. */
function sqliteBackup(name: string, connection: SshConnection, over: Props = {}): Props {
  return {
    name,
    connection: secret(connection),
    engine: "sqlite",
    sqlite: { path: `${ROOT}/data.db` },
    backupsDir: `${ROOT}/${name}`,
    keep: 5,
    keepDays: 0,
    protectReleases: [],
    verifyTables: ["items"],
    releases: [],
    trigger: "",
    restore: "",
    stepTimeoutMs: 60_000,
    deleteBackupsOnDestroy: true,
    ...over,
  };
}

const backupResource = (h: ProviderHost, name: string) =>
  new SimulatedResource(h, backupProvider, { name, additionalSecretOutputs: ["connection"] });

/** The provider error of a run that must be refused. */
async function refused(run: Promise<unknown>): Promise<ProviderError> {
  let caught: unknown;
  await run.then(
    () => undefined,
    (e: unknown) => (caught = e),
  );
  assert.ok(caught, "the run must be refused");
  assert.ok(caught instanceof ProviderError, `a provider error, not ${String(caught)}`);
  return caught;
}

/** A refused mismatch says who presented what, what was pinned, and what to do. */
function assertMismatch(err: Error, who: string, presented: string, pinned: string): void {
  assert.ok(
    err.message.includes(`[${who}] host key mismatch: the host presented ${presented}, but ${pinned} is pinned.`),
    `expected a mismatch at ${who} (presented ${presented}, pinned ${pinned}), got:\n${err.message}`,
  );
  assert.match(err.message, MISMATCH_ADVICE);
}

async function lines(pattern: RegExp, sshd: ThrowawaySshd): Promise<number> {
  return (await sshd.log()).split("\n").filter((l) => pattern.test(l)).length;
}

describe("faults: host keys (web1, web3 and throwaway sshds, through Pulumi's provider host)", function () {
  this.timeout(180_000);
  let host: ProviderHost;

  before(async function () {
    this.timeout(60_000);
    ({ address: ADDRESS, container: CONTAINER } = testHost("web3"));
    await sh(
      "web3",
      // Also what an interrupted earlier run left (other tags): only this file's units.
      `for f in /etc/systemd/system/fhk-svc-*.service; do [ -e "$f" ] || continue; u=$(basename "$f" .service); ` +
        `systemctl disable --now "$u" 2>/dev/null; rm -f "$f"; done; systemctl daemon-reload; rm -rf ${ROOT}; mkdir -p ${ROOT} && ` +
        `sqlite3 ${ROOT}/data.db "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('a'), ('b');"`,
    );
    await sh("web1", `rm -rf ${ROOT}`);
    // Throwaway sshds an interrupted earlier run of this file left: stopped by their pid files.
    await docker([
      "exec",
      CONTAINER,
      "sh",
      "-c",
      `for p in /tmp/fleet-hk-*/pid; do [ -f "$p" ] && kill $(cat "$p") 2>/dev/null; done; rm -rf /tmp/fleet-hk-*; true`,
    ]);
    host = await ProviderHost.start();
  });

  after(async function () {
    this.timeout(60_000);
    for (const s of [...ThrowawaySshd.started]) await s.stop().catch((e) => console.error(`cleanup: ${String(e)}`));
    await host?.stop();
    await docker(["exec", CONTAINER, "sh", "-c", `rm -rf /tmp/fleet-hk-${TAG}-*`]).catch(() => undefined);
    await sshRun(
      "web3",
      `systemctl disable --now fhk-svc-${TAG} 2>/dev/null; rm -f /etc/systemd/system/fhk-svc-${TAG}.service; systemctl daemon-reload; rm -rf ${ROOT}`,
    );
    await sshRun("web1", `rm -rf ${ROOT}`);
  });

  describe("a changed host key is refused, and says what to do", () => {
    it("a shared server with a wrong pinned key: the service, backup and bootstrap providers all refuse before anything runs", async () => {
      const real = connectionFor("web1");
      const wrong = pin(ed25519());
      const conn = { ...real, hostKey: wrong };
      const presented = fingerprintOf(real.hostKey);

      const svc = new SimulatedResource(host, serviceProvider, { name: `fhk-wrong-${TAG}` });
      const app = new GitApp(PYAPP);
      const e1 = await refused(
        svc.up(
          serviceInputs({
            name: `fhk-wrong-${TAG}`,
            connection: conn,
            root: ROOT,
            source: { git: app.dir },
            start: "python3 app.py",
            health: { url: `http://${real.host}:${APP_PORT}/` },
          }),
        ),
      );
      assertMismatch(e1, `root@${real.host}:22`, presented, fingerprintOf(wrong));

      const e2 = await refused(
        backupResource(host, `fhk-wrong-db-${TAG}`).up({
          ...sqliteBackup(`fhk-wrong-db-${TAG}`, conn),
          sqlite: { path: `${ROOT}/none.db` },
        }),
      );
      assertMismatch(e2, `root@${real.host}:22`, presented, fingerprintOf(wrong));

      // A bootstrap waits up to readyTimeout for a booting server: a wrong key is not "not up yet".
      const spec = bootstrapSpec({ root: ROOT, deployUser: `fhk${TAG}` });
      const started = Date.now();
      const e3 = await refused(
        new SimulatedResource(host, hostBootstrapProvider, { name: `fhk-boot-${TAG}` }).up({
          connection: secret(conn),
          host: real.host,
          bootstrap: spec,
          script: bootstrapScript(spec, "x"),
          scriptSha: "x",
          readyTimeoutMs: 60_000,
          stepTimeoutMs: 60_000,
        }),
      );
      assertMismatch(e3, `root@${real.host}:22`, presented, fingerprintOf(wrong));
      assert.ok(
        Date.now() - started < 10_000,
        `refused at once, not retried for readyTimeout (${Date.now() - started} ms)`,
      );

      // A fingerprint pin ("SHA256:…") is held to the same standard.
      const e4 = await refused(
        backupResource(host, `fhk-fp-${TAG}`).up(
          sqliteBackup(
            `fhk-fp-${TAG}`,
            { ...real, hostKey: fingerprintOf(wrong) },
            { sqlite: { path: `${ROOT}/none.db` } },
          ),
        ),
      );
      assertMismatch(e4, `root@${real.host}:22`, presented, fingerprintOf(wrong));

      assert.equal(await sh("web1", `test -e ${ROOT} && echo ran || echo nothing`), "nothing", "nothing ran on web1");
      assert.equal(
        await sh("web1", `id fhk${TAG} >/dev/null 2>&1 && echo user || echo none`),
        "none",
        "no bootstrap ran",
      );
    });

    it("a server rebuilt with a new key (same address): deploy, refresh and destroy are refused; the impostor never sees a login; pinning the new key converges", async () => {
      const port = 2291;
      const k1 = ed25519();
      const k2 = ed25519();
      let sshd = await ThrowawaySshd.start(port, k1.private);
      const name = `fhk-svc-${TAG}`;
      const app = new GitApp(PYAPP);
      const svcInputs = (hostKey: string, ref?: string): Props =>
        serviceInputs({
          name,
          connection: throwawayConnection(port, hostKey),
          root: ROOT,
          source: ref ? { git: app.dir, ref } : { git: app.dir },
          start: "python3 app.py",
          env: { APP_HOST: ADDRESS, APP_PORT: String(APP_PORT) },
          health: {
            url: `http://${ADDRESS}:${APP_PORT}/api/health`,
            version: { url: `http://${ADDRESS}:${APP_PORT}/api/version` },
            timeout: "8s",
          },
        });
      const served = async () =>
        ((await (await fetch(`http://${ADDRESS}:${APP_PORT}/api/version`)).json()) as { commit: string }).commit;
      const svc = new SimulatedResource(host, serviceProvider, {
        name,
        additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
      });
      const bk = backupResource(host, `fhk-db-${TAG}`);
      const bkInputs = (hostKey: string, trigger: string) =>
        sqliteBackup(`fhk-db-${TAG}`, throwawayConnection(port, hostKey), { trigger });

      await svc.up(svcInputs(pin(k1)));
      const first = app.head();
      assert.equal(await served(), first);
      const taken = await bk.up(bkInputs(pin(k1), "one"));
      const manifest = () => sh("web3", `wc -l < ${ROOT}/fhk-db-${TAG}/manifest`);
      assert.equal(await manifest(), "1");

      // The rebuild: every session of the old server ends, the new one has another key.
      await sshd.stop();
      sshd = await ThrowawaySshd.start(port, k2.private);
      const probes = await lines(/Connection from/, sshd);
      const second = app.commit("after the rebuild", { "x.txt": "1\n" });
      const stateBefore = svc.state!.plainOutputs["releaseId"];

      const attempts: [string, () => Promise<unknown>][] = [
        ["deploy", () => svc.up(svcInputs(pin(k1)))],
        ["refresh of the service", () => svc.refresh()],
        ["destroy of the service", () => svc.destroy()],
        ["backup", () => bk.up(bkInputs(pin(k1), "two"))],
        ["refresh of the backups", () => bk.refresh()],
        ["destroy of the backups", () => bk.destroy()],
      ];
      for (const [what, run] of attempts) {
        const e = await refused(run());
        try {
          assertMismatch(e, `root@${ADDRESS}:${port}`, fingerprintOf(pin(k2)), fingerprintOf(pin(k1)));
        } catch (err) {
          throw new Error(`${what}: ${(err as Error).message}`);
        }
      }
      assert.equal(svc.state!.plainOutputs["releaseId"], stateBefore, "the service's state is unchanged");
      assert.equal(bk.state!.plainOutputs["latestId"], taken.state!.plainOutputs["latestId"]);
      assert.equal(await served(), first, "the service still serves, untouched");
      assert.equal(await manifest(), "1", "no backup was taken");
      assert.equal(
        await lines(/userauth-request|Accepted publickey|Failed publickey/, sshd),
        0,
        "no login was attempted",
      );
      assert.ok((await lines(/Connection from/, sshd)) - probes >= 6, "the refused runs did reach the new server");

      // Pinning the new key alone (same release) is recorded without touching the server, so
      // refresh and destroy use it from now on.
      const loginsBeforeRepin = await lines(/Accepted publickey for root/, sshd);
      const repinned = await svc.up(svcInputs(pin(k2), first));
      assert.equal(repinned.op, "update", "a re-pinned key is recorded");
      assert.equal(await lines(/Accepted publickey for root/, sshd), loginsBeforeRepin, "recording it ran nothing");
      await svc.refresh();
      assert.equal(
        svc.state!.plainOutputs["releaseId"],
        stateBefore,
        "refresh with the new pin reads the same release",
      );
      assert.ok((await lines(/Accepted publickey for root/, sshd)) > loginsBeforeRepin, "refresh logged in");

      // What the message says to do: pin the new key. The next deploy and backup then go through.
      await svc.up(svcInputs(pin(k2)));
      assert.equal(await served(), second);
      await bk.up(bkInputs(pin(k2), "three"));
      assert.equal(await manifest(), "2");
      assert.ok((await lines(/Accepted publickey for root/, sshd)) >= 1, "the re-pinned runs logged in");
      await svc.destroy();
      await bk.destroy();
      assert.equal(await sh("web3", `test -e ${ROOT}/${name} && echo left || echo gone`), "gone");
      await sshd.stop();
      await sshd.remove();
    });

    it("a server rebuilt with another key TYPE (pinned ecdsa, it now has only ed25519) is refused as a changed key", async () => {
      const port = 2292;
      const sshd = await ThrowawaySshd.start(port, ed25519().private);
      const ecdsa = utils.generateKeyPairSync("ecdsa", { bits: 256 });
      const e = await refused(
        backupResource(host, `fhk-type-${TAG}`).up(
          sqliteBackup(`fhk-type-${TAG}`, throwawayConnection(port, pin(ecdsa))),
        ),
      );
      assert.match(
        e.message,
        new RegExp(`\\[root@${ADDRESS.replace(/\./g, "\\.")}:${port}\\] host key mismatch`),
        e.message,
      );
      assert.match(e.message, /ecdsa-sha2-nistp256/, `names the pinned key type:\n${e.message}`);
      assert.match(e.message, MISMATCH_ADVICE);
      assert.equal(await lines(/userauth-request|Accepted publickey/, sshd), 0, "no login was attempted");
      await sshd.stop();
      await sshd.remove();
    });
  });

  describe("no key is trusted on first use", () => {
    it("no pinned key (missing, empty, not a key): refused with what to pin, before any connection", async () => {
      const port = 2293;
      const sshd = await ThrowawaySshd.start(port, ed25519().private);
      // Only what the runs below open counts (start() probed the port with plain TCP connects).
      const probes = await lines(/Connection from/, sshd);
      const base = throwawayConnection(port, "x");
      const withoutKey = Object.fromEntries(Object.entries(base).filter(([k]) => k !== "hostKey"));
      for (const [what, conn] of [
        ["missing", withoutKey],
        ["empty", { ...base, hostKey: "" }],
        ["blank", { ...base, hostKey: "   " }],
        ["not a key", { ...base, hostKey: "accept-new" }],
      ] as const) {
        for (const [provider, run] of [
          [
            "backup",
            () =>
              backupResource(host, `fhk-nokey-${TAG}`).up({
                ...sqliteBackup(`fhk-nokey-${TAG}`, base),
                connection: secret(conn),
              }),
          ],
          [
            "service",
            () =>
              new SimulatedResource(host, serviceProvider, { name: `fhk-nokey-svc-${TAG}` }).up({
                ...serviceInputs({
                  name: `fhk-nokey-svc-${TAG}`,
                  connection: base,
                  root: ROOT,
                  source: { path: PYAPP },
                  start: "python3 app.py",
                  health: { url: `http://${ADDRESS}:${APP_PORT}/` },
                }),
                connection: secret(conn),
              }),
          ],
        ] as const) {
          let caught: unknown;
          await run().catch((e: unknown) => (caught = e));
          const message = caught instanceof Error ? caught.message : String(caught);
          assert.ok(caught, `${provider}, hostKey ${what}: refused`);
          assert.match(
            message,
            /host ?key/i,
            `${provider}, hostKey ${what}: the error is about the host key:\n${message}`,
          );
          assert.match(
            message,
            /pin|hostKey|knownHostsFile/,
            `${provider}, hostKey ${what}: says what to give:\n${message}`,
          );
        }
      }
      assert.equal(await lines(/Connection from/, sshd), probes, "no connection was even opened");
      assert.equal(await sh("web3", `test -e ${ROOT}/fhk-nokey-${TAG} && echo ran || echo nothing`), "nothing");
      await sshd.stop();
      await sshd.remove();
    });

    it("the config refuses a host with neither hostKey nor knownHostsFile; a known_hosts without a usable entry (other port, hashed, revoked) too", () => {
      const parsed = hostSchema.safeParse({ address: ADDRESS, port: 2294, user: "root", privateKeyFile: "/dev/null" });
      assert.equal(parsed.success, false);
      assert.match(JSON.stringify(parsed.error?.issues), /give exactly one of hostKey .* and knownHostsFile/);

      const key = pin(ed25519());
      const other = pin(ed25519());
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-hk-"));
      const file = path.join(dir, "known_hosts");
      const cfg = (text: string): FleetConfig => {
        fs.writeFileSync(file, text);
        return {
          hosts: {
            h: hostSchema.parse({
              address: ADDRESS,
              port: 2294,
              user: "root",
              privateKeyFile: "/dev/null",
              knownHostsFile: file,
            }),
          },
          privateKeys: {},
        } as unknown as FleetConfig;
      };
      const noKey = /hosts\.h\.knownHostsFile: no key for 127\.0\.0\.13:2294/;
      try {
        assert.equal(configConnectionFor("h", cfg(`[${ADDRESS}]:2294 ${key}\n${ADDRESS} ${other}\n`)).hostKey, key);
        assert.throws(() => configConnectionFor("h", cfg(`${ADDRESS} ${key}\n[${ADDRESS}]:2295 ${key}\n`)), noKey);
        assert.throws(
          () => configConnectionFor("h", cfg(`|1|c2FsdHNhbHRzYWx0c2FsdA==|aGFzaGhhc2hoYXNoaGFzaA== ${key}\n`)),
          noKey,
        );
        // A revoked key is never accepted, even when a plain line lists it too.
        assert.throws(
          () => configConnectionFor("h", cfg(`@revoked [${ADDRESS}]:2294 ${key}\n[${ADDRESS}]:2294 ${key}\n`)),
          noKey,
        );
        assert.equal(
          configConnectionFor("h", cfg(`@revoked * ${other}\n[${ADDRESS}]:2294 ${other}\n[${ADDRESS}]:2294 ${key}\n`))
            .hostKey,
          key,
          "the revoked key is skipped, the other one is used",
        );
        assert.equal(hostKeyFromKnownHosts(`@cert-authority * ${key}\n`, ADDRESS, 2294), undefined);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("known_hosts through the provider host: the entry for the right port connects; the same key revoked, or another port's entry, never does", async () => {
      const port = 2294;
      const k = ed25519();
      const sshd = await ThrowawaySshd.start(port, k.private);
      const text = `${ADDRESS} ${pin(ed25519())}\n[${ADDRESS}]:${port} ${pin(k)}\n`;
      const hostKey = hostKeyFromKnownHosts(text, ADDRESS, port);
      assert.equal(hostKey, pin(k));
      const r = backupResource(host, `fhk-kh-${TAG}`);
      await r.up(sqliteBackup(`fhk-kh-${TAG}`, throwawayConnection(port, hostKey!)));
      // The port-22 entry of the same address is web3's real key: not this server's.
      const port22 = hostKeyFromKnownHosts(text, ADDRESS, 22)!;
      const e = await refused(
        backupResource(host, `fhk-kh2-${TAG}`).up(sqliteBackup(`fhk-kh2-${TAG}`, throwawayConnection(port, port22))),
      );
      assertMismatch(e, `root@${ADDRESS}:${port}`, fingerprintOf(pin(k)), fingerprintOf(port22));
      assert.equal(hostKeyFromKnownHosts(`@revoked [${ADDRESS}]:${port} ${pin(k)}\n${text}`, ADDRESS, port), undefined);
      await r.destroy();
      await sshd.stop();
      await sshd.remove();
    });

    it("the documented first-use path: a key fleet made (HostKey) and cloud-init installed is pinned from the first connection; an impostor there first is refused", async () => {
      const port = 2290;
      const made = new SimulatedResource(host, hostKeyProvider, {
        name: `fhk-made-${TAG}`,
        additionalSecretOutputs: ["privateKey"],
      });
      const { state } = await made.up({});
      const out = state!.plainOutputs as { privateKey: string; publicKey: string; fingerprint: string };
      assert.deepEqual(state!.secretOutputKeys, ["privateKey"]);
      // What cloud-init gets: this key and no other (no generated keys, defaults deleted).
      const userData = cloudInitUserData(out.privateKey, out.publicKey);
      assert.match(userData, /^ssh_deletekeys: true$/m);
      assert.match(userData, /^ssh_genkeytypes: \[\]$/m);
      for (const l of out.privateKey.trim().split("\n")) assert.ok(userData.includes(`    ${l}`));

      // Before the server is up, an impostor answers at its address: refused, no login offered.
      const impostor = await ThrowawaySshd.start(port, ed25519().private);
      const r = backupResource(host, `fhk-first-${TAG}`);
      const conn = throwawayConnection(port, out.publicKey);
      const e = await refused(r.up(sqliteBackup(`fhk-first-${TAG}`, conn)));
      assertMismatch(e, `root@${ADDRESS}:${port}`, fingerprintOf(impostor.hostKey), out.fingerprint);
      assert.equal(await lines(/userauth-request|Accepted publickey/, impostor), 0, "the impostor saw no login");
      assert.equal(r.state, undefined);
      await impostor.stop();
      await impostor.remove();

      // The real server boots with the key fleet made: the very first connection is verified.
      const server = await ThrowawaySshd.start(port, out.privateKey);
      assert.equal(fingerprintOf(server.hostKey), out.fingerprint);
      const { op } = await r.up(sqliteBackup(`fhk-first-${TAG}`, conn));
      assert.equal(op, "create");
      assert.equal(await lines(/Accepted publickey for root/, server), 1, "one login, on the pinned key");
      await r.destroy();
      await server.stop();
      await server.remove();
    });

    it("a connection verified under one pin is never reused for another pin to the same server (one provider host)", async () => {
      const port = 2295;
      const k = ed25519();
      const sshd = await ThrowawaySshd.start(port, k.private);
      const good = backupResource(host, `fhk-pool-${TAG}`);
      await good.up(sqliteBackup(`fhk-pool-${TAG}`, throwawayConnection(port, pin(k))));
      const wrong = pin(ed25519());
      const e = await refused(
        backupResource(host, `fhk-pool2-${TAG}`).up(sqliteBackup(`fhk-pool2-${TAG}`, throwawayConnection(port, wrong))),
      );
      assertMismatch(e, `root@${ADDRESS}:${port}`, fingerprintOf(pin(k)), fingerprintOf(wrong));
      await good.destroy();
      await sshd.stop();
      await sshd.remove();
    });

    it("through a bastion (ssh -J): the target's key and the bastion's key are each checked, and each mismatch names its host", async () => {
      const port = 2296;
      const k = ed25519();
      const sshd = await ThrowawaySshd.start(port, k.private);
      const bastion = connectionFor("web1");
      const via = (target: string, jumpKey: string): SshConnection => ({
        ...throwawayConnection(port, target),
        jump: { ...bastion, hostKey: jumpKey },
      });
      const wrong = pin(ed25519());
      const e1 = await refused(
        backupResource(host, `fhk-jump1-${TAG}`).up(sqliteBackup(`fhk-jump1-${TAG}`, via(wrong, bastion.hostKey))),
      );
      assertMismatch(e1, `root@${ADDRESS}:${port}`, fingerprintOf(pin(k)), fingerprintOf(wrong));
      const e2 = await refused(
        backupResource(host, `fhk-jump2-${TAG}`).up(sqliteBackup(`fhk-jump2-${TAG}`, via(pin(k), wrong))),
      );
      assertMismatch(e2, `root@${bastion.host}:22`, fingerprintOf(bastion.hostKey), fingerprintOf(wrong));
      assert.equal(await lines(/userauth-request/, sshd), 0, "no login reached the target");
      const ok = backupResource(host, `fhk-jump3-${TAG}`);
      await ok.up(sqliteBackup(`fhk-jump3-${TAG}`, via(pin(k), bastion.hostKey)));
      assert.equal(await lines(/Accepted publickey for root/, sshd), 1, "the target was reached through the bastion");
      await ok.destroy();
      await sshd.stop();
      await sshd.remove();
    });
  });
});
