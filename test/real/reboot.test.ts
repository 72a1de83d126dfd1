/**
 * `npm run reboot` on the real test servers (issue 20), web2 and web3 only: the script is spawned
 * as a user runs it, with a stack file. A test server is a container whose PID 1 is systemd:
 * `systemctl reboot` makes systemd exit, the container stops, and its restart policy
 * (`unless-stopped`, test/hosts/up.sh) starts it again, as firmware boots a machine. The test
 * watches too, and starts a stopped container itself. "Never comes back" is a container whose
 * restart policy the test has turned off; the `after` hook puts it back and starts it.
 */
import { strict as assert } from "assert";
import { execFile, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { shippedProvider } from "../../providers/ship";
import { closeAll } from "../../transport/ssh";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, loadInventory, sshRun, testHost } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const serviceProvider = shippedProvider("service");

/** The service on each host: its own name and port (all hosts share one network, see test/hosts/README.md). */
const DEPLOYED = [
  { host: "web2", name: "op-reboot", port: 18960 },
  { host: "web3", name: "op-reboot-w3", port: 18961 },
] as const;

const healthUrl = (d: (typeof DEPLOYED)[number]) => `http://${hostAddress(d.host)}:${d.port}/api/health`;

async function docker(...args: string[]): Promise<string> {
  return (await run("docker", args)).stdout.trim();
}

/** This boot of a host, as operate/reboot.ts tells boots apart (a container shares the kernel's boot id). */
async function bootOf(host: string): Promise<string> {
  const r = await sshRun(host, `echo "$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)"`, {
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, `${host}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Until `host` answers SSH with systemd running and its service healthy (or 3 minutes). */
async function waitHealthy(host: string, url: string): Promise<void> {
  const until = Date.now() + 180_000;
  let last = "";
  while (Date.now() < until) {
    const r = await sshRun(
      host,
      `systemctl is-system-running --wait >/dev/null; curl -gs -o /dev/null -w '%{http_code}' --max-time 2 '${url}'`,
      { timeoutMs: 30_000 },
    ).catch((err: Error) => ({ code: -1, stdout: "", stderr: err.message }));
    if (r.code === 0 && r.stdout.trim() === "200") return;
    last = `${r.code} ${r.stdout} ${r.stderr}`.trim();
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${host} is not back and healthy after 3 minutes: ${last}`);
}

/** The firmware: starts the containers again whenever they have stopped, until stopped itself. */
function powerOnWhenStopped(containers: readonly string[]): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const c of containers) {
        const state = await docker("inspect", "-f", "{{.State.Status}}", c).catch(() => "");
        if (state === "exited") await docker("start", c).catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return async () => {
    on = false;
    await loop;
  };
}

/** A project folder whose `pulumi` fails, so the script reads Pulumi.t.yaml (test/unit/operator-scripts.test.ts). */
function project(config: Record<string, unknown>): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-reboot-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\necho "error: passphrase must be set" >&2\nexit 255\n`, {
    mode: 0o755,
  });
  fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), JSON.stringify({ config }));
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, FLEET_PULUMI_BIN_DIR: bin } };
}

function reboot(args: string[], dir: string, env: NodeJS.ProcessEnv, onStdout?: (text: string) => void) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(TSX, [path.join(ROOT, "scripts", "reboot.ts"), "--stack", "t", "--cwd", dir, ...args], {
      env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
      onStdout?.(stdout);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

describe("npm run reboot (real servers: web2, web3)", function () {
  this.timeout(600_000);
  let provider: ProviderHost;
  const resources: SimulatedResource[] = [];
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let host: (name: string) => Record<string, string>;

  before(async () => {
    provider = await ProviderHost.start();
    const app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    for (const d of DEPLOYED) {
      const resource = new SimulatedResource(provider, serviceProvider, { name: d.name });
      resources.push(resource);
      await resource.up(
        serviceInputs({
          name: d.name,
          connection: connectionFor(d.host),
          root: "/srv/fleet-test",
          source: { git: app.dir },
          start: "python3 app.py",
          env: { APP_HOST: hostAddress(d.host), APP_PORT: String(d.port) },
          health: { url: healthUrl(d) },
        }),
      );
    }
    const inv = loadInventory();
    host = (name: string) => ({
      address: testHost(name, inv).address,
      privateKeyFile: inv.ssh_key,
      knownHostsFile: inv.known_hosts,
      connectTimeout: "3s",
    });
    ({ dir, env } = project({
      "fleet:hosts": { web2: host("web2"), web3: host("web3") },
      "fleet:services": Object.fromEntries(
        DEPLOYED.map((d) => [
          d.name,
          {
            host: d.host,
            root: "/srv/fleet-test",
            source: { path: "." },
            start: "python3 app.py",
            health: { url: healthUrl(d), bodyContains: "ok" },
          },
        ]),
      ),
    }));
  });

  after(async () => {
    // Every server up and healthy again, whatever happened: other tests run on them next.
    for (const d of DEPLOYED) {
      const c = testHost(d.host).container;
      await docker("update", "--restart", "unless-stopped", c).catch(() => undefined);
      if ((await docker("inspect", "-f", "{{.State.Status}}", c)) !== "running") await docker("start", c);
    }
    for (const d of DEPLOYED) await waitHealthy(d.host, healthUrl(d));
    for (const r of resources) await r.destroy().catch(() => undefined);
    await provider?.stop();
    await closeAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reboots web2, waits for its new boot and its service's health, and only then web3", async () => {
    const before = { web2: await bootOf("web2"), web3: await bootOf("web3") };
    const stopFirmware = powerOnWhenStopped(DEPLOYED.map((d) => testHost(d.host).container));
    const r = await reboot(["--hosts", "web3,web2", "--batch", "1", "--wait", "3m"], dir, env).finally(stopFirmware);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const after = { web2: await bootOf("web2"), web3: await bootOf("web3") };
    assert.notEqual(after.web2, before.web2, "web2 rebooted");
    assert.notEqual(after.web3, before.web3, "web3 rebooted");

    // Config order (web2 first), and web3 goes down only once web2 is back and healthy.
    const lines = r.stdout.split("\n");
    const at = (re: RegExp) => {
      const i = lines.findIndex((l) => re.test(l));
      assert.ok(i >= 0, `no line ${re} in:\n${r.stdout}`);
      return i;
    };
    const web2Rebooting = at(/^web2: rebooting$/);
    const web2Back = at(/^web2: back after \d+ s \(new boot, [1-9]\d* new SSH connection\(s\)\)$/);
    const web2Healthy = at(/^web2: op-reboot healthy \(HTTP 200\)$/);
    const web3Rebooting = at(/^web3: rebooting$/);
    const web3Healthy = at(/^web3: op-reboot-w3 healthy \(HTTP 200\)$/);
    assert.ok(web2Rebooting < web2Back && web2Back < web2Healthy && web2Healthy < web3Rebooting, r.stdout);
    assert.ok(web3Rebooting < web3Healthy, r.stdout);
    assert.match(r.stdout, /^reboot: done: web2, web3 rebooted and healthy$/m);

    // The same order on the hosts' clock (one kernel: start times in ticks since it booted):
    // web3's PID 1 started after web2's service process did, on web2's new boot.
    const tick = async (host: string, pidCommand: string) =>
      Number((await sshRun(host, `cut -d' ' -f22 /proc/$(${pidCommand})/stat`)).stdout.trim());
    const web2Service = await tick("web2", "systemctl show -p MainPID --value op-reboot");
    const web3Boot = await tick("web3", "echo 1");
    assert.ok(web2Service > 0 && web3Boot > web2Service, `web2 service ${web2Service}, web3 boot ${web3Boot}`);
    // The service came back by itself on each boot (enabled), on the new boot.
    assert.equal(Number(after.web2.split(" ")[1]) < web2Service, true);
  });

  it("stops at a host that never comes back, naming it and what it waited for; the next host is not rebooted; its locks go when it boots", async () => {
    const web2 = testHost("web2").container;
    const web3Before = await bootOf("web3");
    // The machine stays off: no restart policy, and no firmware watching.
    await docker("update", "--restart", "no", web2);
    let r: Awaited<ReturnType<typeof reboot>>;
    try {
      r = await reboot(["--wait", "20s"], dir, env);
      assert.equal(await docker("inspect", "-f", "{{.State.Status}}", web2), "exited");
    } finally {
      await docker("update", "--restart", "unless-stopped", web2);
      await docker("start", web2).catch(() => undefined);
    }
    assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^web2: rebooting$/m);
    assert.match(r.stdout, /^web2: down$/m);
    assert.match(
      r.stderr,
      /^reboot: web2 did not come back within 20s: waiting for SSH to answer again \(last: .+\)$/m,
    );
    assert.match(r.stderr, /^reboot: stopped; not rebooted: web3$/m);
    assert.doesNotMatch(r.stdout, /web3/);
    assert.equal(await bootOf("web3"), web3Before, "web3 was not rebooted");
    assert.match(r.stdout, /^web2: holding the deploy locks of op-reboot$/m);
    assert.match(r.stdout, /^web2: could not release its deploy locks \(.+\): a deploy takes them over/m);
    await waitHealthy("web2", healthUrl(DEPLOYED[0]));
    // It booted after the run had given up on it: the boot hold released the reboot's locks.
    const left = await sshRun(
      "web2",
      "ls -d /srv/fleet-test/op-reboot/.lock /etc/fleet/reboot-hold.sh /etc/systemd/system/fleet-reboot-hold.service 2>&1; journalctl -b -o cat -u fleet-reboot-hold.service",
    );
    assert.equal((left.stdout.match(/No such file or directory/g) ?? []).length, 3, left.stdout);
    assert.match(left.stdout, /^released=op-reboot$/m, left.stdout);
  });

  it("refuses to reboot anything while a deploy holds a service's lock, naming host and service", async () => {
    await waitHealthy("web2", healthUrl(DEPLOYED[0]));
    const web2Before = await bootOf("web2");
    const web3Before = await bootOf("web3");
    await sshRun(
      "web3",
      "mkdir /srv/fleet-test/op-reboot-w3/.lock && printf 'who=bob@ci pid=7\\n' > /srv/fleet-test/op-reboot-w3/.lock/owner",
    );
    try {
      const r = await reboot([], dir, env);
      assert.equal(r.status, 3, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /^reboot: refused, nothing was rebooted:$/m);
      assert.match(r.stderr, /^ {2}web3: a deploy of op-reboot-w3 is running \(lock held by who=bob@ci pid=7\)$/m);
      assert.doesNotMatch(r.stdout, /rebooting/);
    } finally {
      await sshRun("web3", "rm -rf /srv/fleet-test/op-reboot-w3/.lock");
    }
    assert.equal(await bootOf("web2"), web2Before);
    assert.equal(await bootOf("web3"), web3Before);
  });
  it("holds the host's deploy locks while it reboots it: a deploy is refused naming the reboot; released after the health ran", async () => {
    const d = DEPLOYED[0];
    await waitHealthy(d.host, healthUrl(d));
    const bootBefore = await bootOf(d.host);
    // The reboot's health gate, in this process: it answers once the test has tried its deploy.
    let gateOpen = false;
    const gatePort = 18967;
    const gate = http.createServer((_req, res) => {
      res.writeHead(gateOpen ? 200 : 503);
      res.end(gateOpen ? "ok" : "closed");
    });
    await new Promise<void>((r) => gate.listen(gatePort, hostAddress(d.host), r));
    const gated = project({
      "fleet:hosts": { [d.host]: host(d.host) },
      "fleet:services": {
        [d.name]: {
          host: d.host,
          root: "/srv/fleet-test",
          source: { path: "." },
          start: "python3 app.py",
          health: { url: `http://${hostAddress(d.host)}:${gatePort}/gate`, bodyContains: "ok" },
        },
      },
    });
    const deployInputs = serviceInputs({
      name: d.name,
      connection: connectionFor(d.host),
      root: "/srv/fleet-test",
      source: { git: new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp")).dir },
      start: "python3 app.py",
      env: { APP_HOST: hostAddress(d.host), APP_PORT: String(d.port), T_DURING_REBOOT: "1" },
      health: { url: healthUrl(d) },
    });
    const stopFirmware = powerOnWhenStopped([testHost(d.host).container]);
    let back: () => void = () => undefined;
    const isBack = new Promise<void>((r) => (back = r));
    try {
      const running = reboot(["--hosts", d.host, "--wait", "3m"], gated.dir, gated.env, (out) => {
        if (new RegExp(`^${d.host}: back after `, "m").test(out)) back();
      });
      await Promise.race([isBack, running]);
      assert.notEqual(await bootOf(d.host), bootBefore, "the host is on its new boot, its health not yet passed");

      // A deploy now: refused, naming the reboot (the deploy's own lock, runLocked).
      await assert.rejects(resources[0]!.up(deployInputs), (err: Error) => {
        assert.match(err.message, new RegExp(`service "${d.name}" is locked by another deploy`));
        assert.match(err.message, /release=reboot/);
        assert.match(err.message, /kind=reboot/);
        return true;
      });
      const owner = await sshRun(d.host, `cat /srv/fleet-test/${d.name}/.lock/owner`);
      assert.match(owner.stdout, /^kind=reboot$/m, owner.stderr);

      gateOpen = true;
      const r = await running;
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const lines = r.stdout.split("\n");
      const at = (re: RegExp) => {
        const i = lines.findIndex((l) => re.test(l));
        assert.ok(i >= 0, `no line ${re} in:\n${r.stdout}`);
        return i;
      };
      const holding = at(new RegExp(`^${d.host}: holding the deploy locks of ${d.name}$`));
      const rebooting = at(new RegExp(`^${d.host}: rebooting$`));
      const healthy = at(new RegExp(`^${d.host}: ${d.name} healthy \\(HTTP 200\\)$`));
      const released = at(new RegExp(`^${d.host}: released the deploy locks of ${d.name}$`));
      assert.ok(holding < rebooting && rebooting < healthy && healthy < released, r.stdout);

      // Through the boot, the hold stood for the reboot before sshd started, then left nothing behind.
      const hold = await sshRun(
        d.host,
        "journalctl -b -o short-monotonic -u fleet-reboot-hold.service; echo ssh_started=$(systemctl show -p ExecMainStartTimestampMonotonic --value ssh.service); " +
          "ls /etc/fleet/reboot-hold.sh /etc/systemd/system/fleet-reboot-hold.service /srv/fleet-test/" +
          d.name +
          "/.lock 2>&1 || true",
      );
      const heldAt = /^\[\s*(\d+\.\d+)\] .*: presence=\d+ \d+$/m.exec(hold.stdout);
      assert.ok(heldAt, `the hold ran on the new boot:\n${hold.stdout}`);
      const sshAt = Number(/^ssh_started=(\d+)$/m.exec(hold.stdout)?.[1]) / 1e6;
      assert.ok(Number(heldAt[1]) < sshAt, `the hold (${heldAt[1]} s) before sshd (${sshAt} s)`);
      assert.equal((hold.stdout.match(/No such file or directory/g) ?? []).length, 3, hold.stdout);

      // The locks are gone: the same deploy now runs.
      await resources[0]!.up(deployInputs);
    } finally {
      gateOpen = true;
      await stopFirmware();
      await new Promise<void>((r) => gate.close(() => r()));
      fs.rmSync(gated.dir, { recursive: true, force: true });
    }
  });
});
