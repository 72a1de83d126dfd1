import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as path from "path";
import { planBatches } from "../../decisions/rollout";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress } from "../support/fleet";
import { SimulatedResource, type Props } from "../support/provider-host";
import { providerHostForSuite } from "../support/provider-host-suite";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * Rolling batches and pins on real servers, through Pulumi's provider host. The batch order and
 * the stop-on-failure come from the engine (dependsOn; see the mocks test of index.ts): here a
 * loop plays the engine's part: a batch runs only when every release before it succeeded.
 */

const APP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const PORT = 18520;

async function version(host: string): Promise<string> {
  const res = await fetch(`http://${hostAddress(host)}:${PORT}/api/version`);
  return ((await res.json()) as { commit: string }).commit;
}

describe("rolling batches and pins (real servers)", function () {
  this.timeout(180_000);
  const host = providerHostForSuite();

  it("a failed batch stops the rollout: earlier batches keep the new release, later ones are untouched", async () => {
    const app = new GitApp(APP);
    const hosts = ["web1", "web2", "web3"];
    const inputs = (h: string, mode = "ok"): Props =>
      serviceInputs({
        name: "rolling",
        connection: connectionFor(h),
        source: { git: app.dir },
        start: "python3 app.py",
        env: { APP_HOST: hostAddress(h), APP_PORT: String(PORT), APP_MODE: mode },
        health: { url: `http://${hostAddress(h)}:${PORT}/api/health`, timeout: "4s" },
      });
    const resources = Object.fromEntries(
      hosts.map((h) => [h, new SimulatedResource(host(), serviceProvider, { name: `rolling@${h}` })]),
    );
    const v1 = app.head();
    await Promise.all(hosts.map((h) => resources[h]!.up(inputs(h))));
    const v2 = app.commit("v2", { "v.txt": "2\n" });

    const batches = planBatches(hosts, { batch: 1, canary: [] });
    const attempted: string[] = [];
    let failure: Error | undefined;
    for (const batch of batches) {
      const results = await Promise.allSettled(
        batch.map((h) => (attempted.push(h), resources[h]!.up(inputs(h, h === "web2" ? "unhealthy" : "ok")))),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) {
        failure = (failed as PromiseRejectedResult).reason as Error;
        break;
      }
    }
    assert.deepEqual(attempted, ["web1", "web2"], "batch 3 never started");
    assert.match(failure!.message, /rolling.*failed its health gate[\s\S]*Rolled back automatically/);
    assert.equal(await version("web1"), v2, "batch 1 stays on the new release (and is reported)");
    assert.equal(await version("web2"), v1, "the failed batch rolled back");
    assert.equal(await version("web3"), v1, "batch 3 untouched");
    await Promise.all(hosts.map((h) => resources[h]!.destroy()));
  });

  it("a pinned release the host no longer has is refused before anything changes", async () => {
    const app = new GitApp(APP);
    const resource = new SimulatedResource(host(), serviceProvider, { name: "pinned" });
    const inputs = (over: Record<string, unknown> = {}): Props => ({
      ...serviceInputs({
        name: "pinned",
        connection: connectionFor("web1"),
        source: { git: app.dir, ref: (over["ref"] as string) ?? "main" },
        start: "python3 app.py",
        env: { APP_HOST: hostAddress("web1"), APP_PORT: String(PORT + 1) },
        health: { url: `http://${hostAddress("web1")}:${PORT + 1}/api/health` },
        keepReleases: 2,
      }),
      ...over,
    });
    const first = app.head();
    await resource.up(inputs());
    app.commit("v2", { "v.txt": "2\n" });
    await resource.up(inputs());
    const third = app.commit("v3", { "v.txt": "3\n" });
    await resource.up(inputs());
    const pinned = { ...inputs({ ref: first }), pinned: true };
    delete (pinned as Record<string, unknown>)["ref"];
    await assert.rejects(
      resource.up(pinned),
      /release \S+ is pinned \(a rollback\), but the host no longer has it; nothing was changed\.\s+Deploy it from source instead: set the service's source ref to [0-9a-f]{40}/,
    );
    const res = await fetch(`http://${hostAddress("web1")}:${PORT + 1}/api/version`);
    assert.equal(((await res.json()) as { commit: string }).commit, third, "still serving the last release");
    await resource.destroy();
  });
});
