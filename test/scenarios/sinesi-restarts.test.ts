import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as fs from "fs";
import * as path from "path";
import { GitApp } from "../support/git-app";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, hostAddress, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * sinesiAI's "restart only what changed": two services from one repository, each declaring its
 * part (`source.paths`), so a commit to one part leaves the other service untouched: no update in
 * preview, no restart on the host.
 */
describe("scenario sinesiAI: a commit restarts only the service whose part changed (real server web2)", function () {
  this.timeout(180_000);
  const app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
  const appPy = fs.readFileSync(path.join(app.dir, "app.py"), "utf8");
  app.commit("split", { "backend/app.py": appPy, "frontend/app.py": appPy, "app.py": null });
  let conn: SshConnection;
  before(() => (conn = connectionFor("web2")));
  const inputs = (part: "backend" | "frontend", port: number): Props =>
    serviceInputs({
      name: `sc-${part}-paths`,
      connection: conn,
      root: "/srv/fleet-scenarios",
      source: { git: app.dir, paths: [part] },
      start: `cd ${part} && exec python3 app.py`,
      env: { APP_HOST: hostAddress("web2"), APP_PORT: String(port) },
      health: { url: `http://${hostAddress("web2")}:${port}/api/health` },
    });
  let host: ProviderHost;
  let back: SimulatedResource;
  let front: SimulatedResource;
  const mainPid = async (unit: string) =>
    (await sshRun("web2", `systemctl show -p MainPID --value ${unit}`)).stdout.trim();

  before(async () => {
    host = await ProviderHost.start();
    back = new SimulatedResource(host, serviceProvider, { name: "sc-backend-paths" });
    front = new SimulatedResource(host, serviceProvider, { name: "sc-frontend-paths" });
    await Promise.all([back.up(inputs("backend", 18880)), front.up(inputs("frontend", 18881))]);
  });
  after(async () => {
    await Promise.all([back.destroy().catch(() => undefined), front.destroy().catch(() => undefined)]);
    await host.stop();
  });

  it("a backend commit: the backend gets a new release, the frontend is 'same' and keeps running", async () => {
    const frontPid = await mainPid("sc-frontend-paths");
    const frontRelease = front.state!.plainOutputs["releaseId"];
    const commit = app.commit("backend change", { "backend/feature.txt": "x\n" });
    assert.equal(
      (await front.preview(inputs("frontend", 18881))).op,
      "same",
      "preview: nothing to do for the frontend",
    );
    assert.equal((await back.preview(inputs("backend", 18880))).op, "update");
    await Promise.all([back.up(inputs("backend", 18880)), front.up(inputs("frontend", 18881))]);
    assert.equal(back.state!.plainOutputs["commit"], commit);
    assert.equal(front.state!.plainOutputs["releaseId"], frontRelease);
    assert.equal(await mainPid("sc-frontend-paths"), frontPid, "the frontend was not restarted");
    const res = await fetch(`http://${hostAddress("web2")}:18880/api/version`);
    assert.equal(((await res.json()) as { commit: string }).commit, commit);
  });
});
