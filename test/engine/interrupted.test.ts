import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { killTree, outputOf } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService, slowHealthApp } from "./support/fixtures";
import { currentRelease, served, VersionSampler, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * `pulumi up` killed (SIGKILL, the CLI and the engine/run.ts host and the provider together)
 * while a new release is in its health gate, on web3. Then `npm run deploy` must deal with what
 * the CLI left (the file backend's stack lock, the checkpoint) and converge, and the service
 * must answer with the old or the new release throughout (sampled every 100 ms).
 */
const HOST = "web3";
const SVC = "eng-int";
const PORT = 18741;
/** How long the slow release answers 500 on its health URL after it starts. */
const SLOW_MS = 8000;

describe("engine: pulumi up killed during the health phase, then npm run deploy (web3)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let app: GitApp;
  let address: string;
  let sampler: VersionSampler;
  let old: string;
  let fresh: string;
  const locks = () => {
    const dir = path.join(stack.backendDir, ".pulumi", "locks");
    return fs.existsSync(dir)
      ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".json"))
      : [];
  };

  before(async function () {
    this.timeout(120_000);
    address = hostAddress(HOST);
    app = new GitApp(PYAPP);
    await wipe(HOST, ROOT, [SVC]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": {
        // No breakStaleLock: the host itself tells that the killed deploy's connection is gone.
        [SVC]: pyService({ hosts: [HOST], repo: app.dir, port: PORT, healthTimeout: "30s" }),
      },
    });
    await stack.ok("up", "--yes", "--non-interactive");
    old = app.head();
  });
  after(async function () {
    this.timeout(120_000);
    await sampler?.stop();
    await stack.pulumi("cancel", "--yes", "--non-interactive").catch(() => undefined);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [SVC]).catch(() => undefined);
  });

  it("SIGKILL of the pulumi up tree while the new release is in its health gate", async () => {
    fresh = app.commit("slow to become healthy", {
      "app.py": slowHealthApp(SLOW_MS),
    });
    sampler = new VersionSampler(address, PORT);
    const up = stack.startPulumi("up", "--yes", "--non-interactive");
    let health = "";
    for (let i = 0; i < 600; i++) {
      if ((await served(address, PORT))?.commit === fresh) {
        health = await sh(HOST, `curl -s -o /dev/null -w '%{http_code}' http://${address}:${PORT}/api/health`);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(health, "500", "killed while the new release was still failing its health check");
    killTree(up.pgid);
    const r = await up.done;
    assert.equal(r.code, 128 + 9, outputOf(r));
    assert.equal(locks().length, 1, "the CLI left its stack lock");
    const pending = (await stack.exportState()).deployment.pending_operations ?? [];
    assert.deepEqual(
      pending.map((p) => `${p.type} ${String(p.resource.urn).split("::").pop()}`),
      [`updating ${SVC}-release`],
      "the checkpoint records the update it was doing",
    );
  });

  it("npm run deploy deals with what the killed update left and converges", async () => {
    const r = await stack.npm("deploy", "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(locks(), [], "no stack lock left");
    const exported = await stack.exportState();
    assert.deepEqual(exported.deployment.pending_operations ?? [], [], "no pending operations");
    const release = fresh.slice(0, 12);
    assert.equal(serviceReleases(exported.deployment)[`${SVC}-release`].outputs.releaseId, release);
    assert.equal(await currentRelease(HOST, ROOT, SVC), release);
    assert.equal((await served(address, PORT))?.commit, fresh);
    assert.equal(await sh(HOST, `test -e ${ROOT}/${SVC}/.lock && echo held || echo free`), "free");
  });

  it("the service answered with the old or the new release throughout", async () => {
    await sampler.stop();
    const answered = sampler.samples.filter((s) => s.commit !== undefined).map((s) => s.commit);
    assert.ok(sampler.samples.length > 50, `sampled ${sampler.samples.length} times`);
    assert.deepEqual([...new Set(answered)].sort(), [old, fresh].sort(), sampler.sequence().join(" → "));
    // Old, then the killed deploy's new release (unconfirmed); the next deploy takes the lock over,
    // puts the last good release back first (the takeover's revert), then deploys and confirms
    // the new one. Restart gaps aside, nothing else answers.
    // (The revert's old release may come and go between two samples.)
    const seq = sampler
      .sequence()
      .filter((v) => v !== "none")
      .filter((v, i, all) => v !== all[i - 1]);
    const shown = sampler.sequence().join(" → ");
    assert.ok(seq[0] === old && seq.at(-1) === fresh && seq.length <= 4, shown);
    assert.ok(
      seq.every((v) => v === old || v === fresh),
      shown,
    );
    const log = await sh(HOST, `cat ${ROOT}/${SVC}/deploy.log`);
    assert.match(
      log,
      new RegExp(
        ` ${old.slice(0, 12)} -> ${fresh.slice(0, 12)} interrupted .*it had switched: ${old.slice(0, 12)} restored`,
      ),
    );
    assert.match(log.trim().split("\n").at(-1)!, new RegExp(` ${old.slice(0, 12)} -> ${fresh.slice(0, 12)} ok `));
  });
});
