import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import { planBatches } from "../../decisions/rollout";
import { connectionFor, hostAddress, sshRun } from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * Seed 002: pantherOS (an agent on several hosts, some on Hetzner), as Pulumi.prod.yaml expresses
 * it (`panther-agent` on `hosts: [panther-1, panther-2]` with `rollout: { batch: 100% }`), walked
 * on the three real web servers through Pulumi's dynamic-provider host: the rollout plan gives one
 * batch, the engine deploys its hosts in parallel (played here with Promise.allSettled), and the
 * per-host pass/fail summary is computed from the results.
 *
 * The Hetzner part (creating the servers, firewall, host keys, bootstrap) runs only under Pulumi
 * mocks: test/mocks/prod-stack.test.ts and test/mocks/host.test.ts. NixOS generations are not
 * fleet's: its "generations" are the retained releases (listed and switched back to below).
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-scenarios";
const NAME = "sc-panther";
const PORT = 18830;
const HOSTS = ["web1", "web2", "web3"];

async function sh(hostName: string, command: string): Promise<string> {
  const r = await sshRun(hostName, command);
  if (r.code !== 0) throw new Error(`ssh ${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function served(hostName: string): Promise<string> {
  const res = await fetch(`http://${hostAddress(hostName)}:${PORT}/api/version`);
  return ((await res.json()) as { commit: string }).commit;
}

interface HostResult {
  readonly host: string;
  readonly pass: boolean;
  readonly detail: string;
}

/** The per-host summary of one rollout: `web1  pass  <release>` or `web2  FAIL  <first line of the error>`. */
function summary(results: readonly HostResult[]): string {
  const lines = results.map((r) => `${r.host.padEnd(6)}${r.pass ? "pass" : "FAIL"}  ${r.detail}`);
  const passed = results.filter((r) => r.pass).length;
  return [...lines, `${passed}/${results.length} hosts passed`].join("\n");
}

describe("scenario pantherOS: one service on three hosts, deployed in parallel, with a per-host summary (real servers web1..web3)", function () {
  this.timeout(180_000);
  const app = new GitApp(PYAPP);
  let host: ProviderHost;
  const resources: Record<string, SimulatedResource> = {};
  const commits: string[] = [];

  const inputs = (h: string, over: { mode?: string; ref?: string } = {}): Props =>
    serviceInputs({
      name: NAME,
      connection: connectionFor(h),
      root: ROOT,
      source: { git: app.dir, ref: over.ref ?? "main" },
      start: "python3 app.py",
      env: { APP_HOST: hostAddress(h), APP_PORT: String(PORT), ...(over.mode ? { APP_MODE: over.mode } : {}) },
      health: {
        url: `http://${hostAddress(h)}:${PORT}/api/health`,
        version: { url: `http://${hostAddress(h)}:${PORT}/api/version`, field: "commit" },
        timeout: "6s",
        interval: "50ms",
      },
      keepReleases: 5,
    });

  /** One `pulumi up` of the rollout: batches in order, each batch's hosts in parallel; a failed batch stops the rest. */
  async function rollout(modes: Record<string, string> = {}, ref?: string): Promise<HostResult[]> {
    const batches = planBatches(HOSTS, { batch: "100%", canary: [] });
    const results: HostResult[] = [];
    for (const batch of batches) {
      const settled = await Promise.allSettled(
        batch.map((h) =>
          resources[h]!.up(inputs(h, { ...(modes[h] ? { mode: modes[h] } : {}), ...(ref ? { ref } : {}) })),
        ),
      );
      settled.forEach((s, i) =>
        results.push(
          s.status === "fulfilled"
            ? { host: batch[i]!, pass: true, detail: String(s.value.state!.plainOutputs["releaseId"]) }
            : { host: batch[i]!, pass: false, detail: String((s.reason as Error).message).split("\n")[0]! },
        ),
      );
      if (settled.some((s) => s.status === "rejected")) break;
    }
    return results;
  }

  before(async function () {
    this.timeout(60_000);
    await Promise.all(
      HOSTS.map((h) =>
        sh(
          h,
          `systemctl disable --now ${NAME} 2>/dev/null; rm -f /etc/systemd/system/${NAME}.service; systemctl daemon-reload; rm -rf ${ROOT}/${NAME}`,
        ),
      ),
    );
    host = await ProviderHost.start();
    for (const h of HOSTS)
      resources[h] = new SimulatedResource(host, serviceProvider, {
        name: `${NAME}@${h}`,
        additionalSecretOutputs: ["connection", "secretEnv"],
      });
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(HOSTS.map((h) => resources[h]?.destroy().catch(() => undefined)));
    await host?.stop();
  });

  it("Pulumi.prod.yaml: the panther hosts are Hetzner servers (provisioned only under mocks, see test/mocks/prod-stack.test.ts) and rollout 100% is one batch", () => {
    const stack = load(fs.readFileSync(path.resolve(__dirname, "..", "..", "Pulumi.prod.yaml"), "utf8")) as {
      config: Record<string, Record<string, Record<string, unknown>>>;
    };
    const agent = stack.config["fleet:services"]!["panther-agent"]!;
    const hosts = agent["hosts"] as string[];
    assert.deepEqual(hosts, ["panther-1", "panther-2"]);
    for (const h of hosts) assert.equal(stack.config["fleet:hosts"]![h]!["kind"], "hcloud");
    assert.deepEqual(agent["rollout"], { batch: "100%" });
    assert.deepEqual(planBatches(hosts, { batch: "100%", canary: [] }), [hosts]);
    assert.deepEqual(planBatches(HOSTS, { batch: "100%", canary: [] }), [HOSTS], "and so are web1..web3 here");
  });

  it("first deploy: all three hosts in one parallel batch; the summary says 3/3 passed; each host serves the commit", async () => {
    commits.push(app.head());
    const started = Date.now();
    const results = await rollout();
    const took = Date.now() - started;
    const text = summary(results);
    console.log(`      (3 hosts in ${took} ms)\n${text.replace(/^/gm, "      ")}`);
    assert.deepEqual(
      results.map((r) => [r.host, r.pass]),
      HOSTS.map((h) => [h, true]),
    );
    assert.match(text, /3\/3 hosts passed$/);
    for (const h of HOSTS) {
      assert.equal(await served(h), commits[0]);
      assert.equal(await sh(h, `systemctl is-active ${NAME}`), "active");
    }
  });

  it("a change that fails on web2 only: web1 and web3 switch, web2 rolls back by itself; the summary names the failure", async () => {
    commits.push(app.commit("v2", { "v.txt": "2\n" }));
    const results = await rollout({ web2: "unhealthy" });
    const text = summary(results);
    console.log(text.replace(/^/gm, "      "));
    assert.deepEqual(
      results.map((r) => [r.host, r.pass]),
      [
        ["web1", true],
        ["web2", false],
        ["web3", true],
      ],
      "one batch: every host was attempted",
    );
    assert.match(text, /^web2 {2}FAIL {2}.*failed its health gate/m);
    assert.match(text, /2\/3 hosts passed$/);
    assert.equal(await served("web1"), commits[1]);
    assert.equal(await served("web2"), commits[0], "web2 rolled back");
    assert.equal(await served("web3"), commits[1]);
    // Logs per host: each host's deploy.log has its own outcome.
    assert.match(await sh("web2", `tail -1 ${ROOT}/${NAME}/deploy.log`), /rolled-back/);
    assert.doesNotMatch(await sh("web1", `tail -1 ${ROOT}/${NAME}/deploy.log`), /rolled-back/);
  });

  it("the fix deploys everywhere; the retained releases (the 'generations') are listed per host", async () => {
    commits.push(app.commit("v3", { "v.txt": "3\n" }));
    const results = await rollout();
    assert.ok(
      results.every((r) => r.pass),
      summary(results),
    );
    for (const h of HOSTS) {
      assert.equal(await served(h), commits[2]);
      const retained = resources[h]!.state!.plainOutputs["retainedReleases"] as string[];
      assert.ok(retained.includes(commits[0]!.slice(0, 12)) && retained.includes(commits[2]!.slice(0, 12)), h);
      assert.deepEqual(retained, (await sh(h, `ls ${ROOT}/${NAME}/releases`)).split("\n").sort());
    }
  });

  it("roll back to a numbered one (the first release) on every host: switch only, no upload", async () => {
    const target = commits[0]!;
    const inodes = await Promise.all(
      HOSTS.map((h) => sh(h, `stat -c %i ${ROOT}/${NAME}/releases/${target.slice(0, 12)}/app.py`)),
    );
    app.git("checkout", "-q", target);
    let results: HostResult[];
    try {
      results = await rollout({}, target);
    } finally {
      app.git("checkout", "-q", "main");
    }
    assert.ok(
      results.every((r) => r.pass),
      summary(results),
    );
    for (const [i, h] of HOSTS.entries()) {
      assert.equal(await served(h), target);
      assert.equal(
        await sh(h, `stat -c %i ${ROOT}/${NAME}/releases/${target.slice(0, 12)}/app.py`),
        inodes[i],
        `${h}: not uploaded again`,
      );
    }
  });

  it("destroy removes the service from every host", async () => {
    await Promise.all(HOSTS.map((h) => resources[h]!.destroy()));
    for (const h of HOSTS) assert.equal(await sh(h, `test -e ${ROOT}/${NAME} && echo yes || echo no`), "no");
  });
});
