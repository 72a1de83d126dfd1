import { strict as assert } from "assert";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { outputOf, type CliResult } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, served, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * Real failures through the real CLI on web2: a release that fails its health gate, an install
 * that fails, invalid config, and a rollback that fails too (critical). Each is seen as users
 * see it: `pulumi up`'s exit status and output, the state `pulumi stack export` keeps, what the
 * host serves, and `npm run deploy`'s exit code (README: 2 install/build, 4 health failed and
 * rolled back, 5 critical, 6 invalid config).
 */
const HOST = "web2";
const SVC = "eng-hf";
const PORT = 18711;

/** fleet's outcome markers in a CLI run's output (decisions/outcome.ts writes them). */
const markers = (r: CliResult) => [...outputOf(r).matchAll(/\(fleet outcome: ([a-z]+)\)/g)].map((m) => m[1]);

describe("engine: failed deploys with the real CLI, and npm run deploy's exit codes (web2)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let app: GitApp;
  let address: string;
  let healthUrl: string;
  let good: string;

  const deploy = () => stack.npm("deploy", "--stack", stack.name);
  /** The release the state records for the service. */
  const recorded = async () =>
    serviceReleases((await stack.exportState()).deployment)[`${SVC}-release`].outputs.releaseId as string;

  before(async function () {
    this.timeout(120_000);
    address = hostAddress(HOST);
    healthUrl = `http://${address}:${PORT}/api/health`;
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [SVC]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": { [SVC]: pyService({ hosts: [HOST], repo: app.dir, port: PORT, healthTimeout: "4s" }) },
    });
    await stack.ok("up", "--yes", "--non-interactive");
    good = app.head().slice(0, 12);
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [SVC]).catch(() => undefined);
  });

  it("a release failing its health gate: pulumi up fails with the failed check; state and host keep the old release", async () => {
    const bad = app.commit("unhealthy", { "mode.txt": "unhealthy\n" });
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.notEqual(r.code, 0, outputOf(r));
    const out = outputOf(r);
    assert.ok(out.includes(`release ${bad.slice(0, 12)} (commit ${bad}) failed its health gate`), out);
    assert.ok(out.includes(`${healthUrl} did not answer 200 within 4000 ms; last: HTTP 500`), out);
    assert.ok(out.includes(`Rolled back automatically: ${good} is serving and healthy again.`), out);
    assert.deepEqual([...new Set(markers(r))], ["rollback"], out);
    assert.equal(await recorded(), good, "pulumi stack export still records the old release");
    assert.equal(await currentRelease(HOST, ROOT, SVC), good);
    assert.equal((await served(address, PORT))?.release, good);
  });

  it("npm run deploy: 4 when the health gate fails and the release is rolled back", async () => {
    const r = await deploy();
    assert.equal(r.code, 4, outputOf(r));
    assert.equal((await served(address, PORT))?.release, good);
  });

  it("npm run deploy: 2 when the install fails (nothing switched)", async () => {
    await stack.ok("config", "set", "--path", `fleet:services.${SVC}.install.run`, "echo installing; exit 4");
    await stack.ok("config", "set", "--path", `fleet:services.${SVC}.install.when[0]`, "requirements.txt");
    try {
      app.commit("requirements", { "requirements.txt": "nothing\n", "mode.txt": null });
      const up = await stack.pulumi("up", "--yes", "--non-interactive");
      assert.notEqual(up.code, 0);
      assert.ok(outputOf(up).includes("installing"), outputOf(up));
      assert.deepEqual([...new Set(markers(up))], ["build"], outputOf(up));
      const r = await deploy();
      assert.equal(r.code, 2, outputOf(r));
      assert.equal(await currentRelease(HOST, ROOT, SVC), good);
      assert.equal(await recorded(), good);
    } finally {
      await stack.ok("config", "rm", "--path", `fleet:services.${SVC}.install`);
    }
  });

  it("npm run deploy: 6 for invalid config, which pulumi preview names by its path", async () => {
    await stack.ok("config", "set", "--path", `fleet:services.${SVC}.health.url`, "not-a-url");
    try {
      const preview = await stack.pulumi("preview", "--non-interactive");
      assert.notEqual(preview.code, 0);
      assert.ok(outputOf(preview).includes(`services.${SVC}.health.url: must be an http(s) URL`), outputOf(preview));
      assert.deepEqual(markers(preview), ["config"], "the error is printed once, not again by the CLI");
      assert.doesNotMatch(outputOf(preview), /Unhandled exception|    at /, "no stack trace for a config error");
      const r = await deploy();
      assert.equal(r.code, 6, outputOf(r));
      assert.ok(outputOf(r).includes(`services.${SVC}.health.url: must be an http(s) URL`), outputOf(r));
    } finally {
      await stack.ok("config", "set", "--path", `fleet:services.${SVC}.health.url`, healthUrl);
    }
    assert.equal(await recorded(), good);
  });

  it("a rollback that fails too: pulumi up says CRITICAL, npm run deploy exits 5", async () => {
    // The release to go back to breaks as well (what a shared dependency going away does).
    await sh(HOST, `echo unhealthy > ${ROOT}/${SVC}/releases/${good}/mode.txt`);
    const bad = app.commit("unhealthy again", { "mode.txt": "unhealthy\n" });
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.notEqual(r.code, 0);
    const out = outputOf(r);
    assert.ok(out.includes(`release ${bad.slice(0, 12)} (commit ${bad}) failed its health gate`), out);
    assert.ok(out.includes(`CRITICAL: rolled back to ${good}, but it is not healthy either`), out);
    assert.deepEqual([...new Set(markers(r))], ["critical"], out);
    const d = await deploy();
    assert.equal(d.code, 5, outputOf(d));
  });
});
