import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as path from "path";
import { parseFleetConfig } from "../../config/schema";
import { collectStatus, formatStatus } from "../../status/collect";
import { closeAll } from "../../transport/ssh";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, loadInventory, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

describe("npm run status (real servers)", function () {
  this.timeout(120_000);

  it("shows each service's live release, health and last deploy line per host, and who holds a lock", async () => {
    const host = await ProviderHost.start();
    const app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    const port = 18530;
    const url = `http://${hostAddress("web1")}:${port}/api/health`;
    const resource = new SimulatedResource(host, serviceProvider, { name: "shown" });
    try {
      await resource.up(
        serviceInputs({
          name: "shown",
          connection: connectionFor("web1"),
          root: "/srv/fleet-test",
          source: { git: app.dir },
          start: "python3 app.py",
          env: { APP_HOST: hostAddress("web1"), APP_PORT: String(port) },
          health: { url },
        }),
      );
      const inv = loadInventory();
      const cfg = parseFleetConfig({
        hosts: {
          web1: { address: hostAddress("web1"), privateKeyFile: inv.ssh_key, knownHostsFile: inv.known_hosts },
          gone: {
            address: "127.0.0.99",
            privateKeyFile: inv.ssh_key,
            hostKey: connectionFor("web1").hostKey,
            connectTimeout: "1s",
          },
        },
        services: {
          shown: {
            hosts: ["web1", "gone"],
            root: "/srv/fleet-test",
            source: { path: "." },
            start: "x",
            health: { url },
          },
        },
      });
      const rows = await collectStatus(cfg);
      const web1 = rows.find((r) => r.host === "web1")!;
      assert.equal(web1.release, app.head().slice(0, 12));
      assert.equal(web1.commit, app.head().slice(0, 12));
      assert.equal(web1.active, "active");
      assert.equal(web1.health, "200");
      assert.match(web1.lastDeploy, new RegExp(`-> ${app.head().slice(0, 12)} ok \\d+\\.\\d{3}s`));
      assert.match(rows.find((r) => r.host === "gone")!.note, /^unreachable: /);

      await sshRun(
        "web1",
        "mkdir /srv/fleet-test/shown/.lock && printf 'who=bob@ci\\npid=7\\n' > /srv/fleet-test/shown/.lock/owner",
      );
      const locked = (await collectStatus(cfg)).find((r) => r.host === "web1")!;
      assert.match(locked.note, /deploying now: who=bob@ci pid=7/);
      const table = formatStatus(await collectStatus(cfg));
      assert.match(table.split("\n")[0]!, /^SERVICE\s+HOST\s+RELEASE\s+COMMIT\s+ACTIVE\s+HEALTH\s+LAST DEPLOY$/);
      assert.equal(table.split("\n").length, 3);
      await sshRun("web1", "rm -rf /srv/fleet-test/shown/.lock");
    } finally {
      await resource.destroy().catch(() => undefined);
      await host.stop();
      await closeAll();
    }
  });
});
