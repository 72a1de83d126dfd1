import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as path from "path";
import { EXIT_CODES, outcomeOf } from "../../decisions/outcome";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource, type Props } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/** Real failures on a test server, through the provider host, classified as `npm run deploy` would. */
describe("deploy outcomes from real failures (exit codes of npm run deploy)", function () {
  this.timeout(180_000);
  const ROOT = "/srv/fleet-test";
  const PORT = 18540;
  let host: ProviderHost;
  let app: GitApp;
  let resource: SimulatedResource;
  const inputs = (over: Partial<ServiceCase> = {}): Props =>
    serviceInputs({
      name: "outcomes",
      connection: connectionFor("web3"),
      root: ROOT,
      source: { git: app.dir },
      start: "python3 app.py",
      env: { APP_HOST: hostAddress("web3"), APP_PORT: String(PORT) },
      health: { url: `http://${hostAddress("web3")}:${PORT}/api/health`, timeout: "4s" },
      ...over,
    });
  const codeOf = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => assert.fail("expected the deploy to fail"),
      (e: Error) => e,
    );
    return outcomeOf(1, err.message).code;
  };

  before(async () => {
    host = await ProviderHost.start();
    app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    resource = new SimulatedResource(host, serviceProvider, { name: "outcomes" });
    await resource.up(inputs());
  });
  after(async () => {
    await resource.destroy().catch(() => undefined);
    await host.stop();
  });

  it("a build that fails: 2 (build failed, nothing switched)", async () => {
    app.commit("b1", { "b.txt": "1\n" });
    assert.equal(await codeOf(resource.up(inputs({ build: "exit 9" }))), EXIT_CODES.build);
  });

  it("an install that fails: 2", async () => {
    app.commit("b2", { "requirements.txt": "x\n" });
    assert.equal(
      await codeOf(resource.up(inputs({ install: { run: "exit 4", when: ["requirements.txt"] } }))),
      EXIT_CODES.build,
    );
  });

  it("a held lock: 3 (deploy failed, nothing switched)", async () => {
    await sshRun("web3", `mkdir ${ROOT}/outcomes/.lock && echo who=other > ${ROOT}/outcomes/.lock/owner`);
    try {
      assert.equal(await codeOf(resource.up(inputs())), EXIT_CODES.failure);
    } finally {
      await sshRun("web3", `rm -rf ${ROOT}/outcomes/.lock`);
    }
  });

  it("a failed health gate, rolled back: 4", async () => {
    app.commit("unhealthy", { "mode.txt": "unhealthy\n" });
    assert.equal(await codeOf(resource.up(inputs())), EXIT_CODES.rollback);
  });

  it("a failed gate whose rollback target is broken too: 5 (critical)", async () => {
    const serving = String(resource.state!.plainOutputs["releaseId"]);
    await sshRun("web3", `echo unhealthy > ${ROOT}/outcomes/releases/${serving}/mode.txt`);
    app.commit("still unhealthy", { "mode.txt": "unhealthy\n", "c.txt": "2\n" });
    assert.equal(await codeOf(resource.up(inputs())), EXIT_CODES.critical);
  });
});
